#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_FORMAT_HUMAN;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level min_level, enum log_format format)
{
    log_min = min_level;
    log_fmt = format;
}

bool log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

bool log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "human") == 0) {
        *out = LOG_FORMAT_HUMAN;
        return true;
    }
    if (strcmp(s, "json") == 0) {
        *out = LOG_FORMAT_JSON;
        return true;
    }
    return false;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    if (level < log_min)
        return;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (log_fmt == LOG_FORMAT_JSON) {
        /* jansson escapes the message, so a stray quote or control byte in
         * an error text from libpq cannot break the line. */
        json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", stamp, "level", level_names[level],
                                 "module", module, "msg", msg);
        char *text = line ? json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (text)
            fprintf(stderr, "%s\n", text);
        free(text);
        json_decref(line);
    } else {
        fprintf(stderr, "%s %-5s %s: %s\n", stamp, level_names[level], module, msg);
    }
}
