/* One line per event, to standard error.
 *
 * Human lines by default ("2026-11-22T04:12:27.123Z info  db: connected"),
 * JSON lines when configured ({"ts":"...","level":"info","module":"db",
 * "msg":"connected"}).  Patient data never goes through this module: callers
 * log identifiers (request 42, slot 7), never names, phones or birth dates.
 */
#ifndef SNP_LOG_H
#define SNP_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_HUMAN = 0, LOG_FORMAT_JSON };

/* Sets the minimum level written and the line format.  Safe to call at any
 * time; the defaults are LOG_INFO and LOG_FORMAT_HUMAN. */
void log_setup(enum log_level min_level, enum log_format format);

/* Parses "debug", "info", "warn" or "error"; returns false on anything else. */
bool log_level_parse(const char *s, enum log_level *out) __attribute__((warn_unused_result));

/* Parses "human" or "json"; returns false on anything else. */
bool log_format_parse(const char *s, enum log_format *out) __attribute__((warn_unused_result));

/* Writes one line for `module` at `level` when the level is enabled. */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(module, ...) log_write(LOG_DEBUG, module, __VA_ARGS__)
#define log_info(module, ...)  log_write(LOG_INFO, module, __VA_ARGS__)
#define log_warn(module, ...)  log_write(LOG_WARN, module, __VA_ARGS__)
#define log_error(module, ...) log_write(LOG_ERROR, module, __VA_ARGS__)

#endif
