/*
 * fuzz_config: snpd's configuration (dispatcher/config.c): the `key = value`
 * file read by config_load_file(), the SNPD_* environment variables read by
 * config_load_env(), and config_check() on what they gave, in the order of
 * dispatcher/main.c.
 *
 * An input is the file, then optionally a form feed (\f) and the
 * environment, one NAME=value per line:
 *
 *     port = 8081\nlog_level = "debug"  # comment\n\fSNPD_PORT=9000\n
 *
 * Beyond the sanitizers, the target checks that a refusal always explains
 * itself: the message is not empty, and one about the file names the file.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/config.h"
#include "fuzz/fuzz_util.h"

/* The most environment lines an input gives; the rest are ignored. */
#define MAX_ENV 32

static struct fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_init(&file, "snpd.conf");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *parts[2];
    size_t lens[2];
    size_t nparts = fuzz_split(data, size, '\f', parts, lens, 2);
    fuzz_file_set(&file, parts[0], lens[0]);

    struct config cfg;
    char err[1024] = "";
    config_defaults(&cfg);
    if (!config_load_file(&cfg, file.path, err, sizeof(err))) {
        FUZZ_CHECK(strncmp(err, file.path, strlen(file.path)) == 0 &&
                       strlen(err) > strlen(file.path) + 2,
                   "a refused file is not named in \"%s\"", err);
        return 0;
    }

    /* The environment: NUL-terminated copies of its lines. */
    char *env[MAX_ENV + 1];
    size_t nenv = 0;
    if (nparts == 2) {
        const uint8_t *lines[MAX_ENV];
        size_t line_lens[MAX_ENV];
        size_t nlines = fuzz_split(parts[1], lens[1], '\n', lines, line_lens, MAX_ENV);
        for (size_t i = 0; i < nlines; i++) {
            env[nenv] = strndup((const char *)lines[i], line_lens[i]);
            if (env[nenv] == NULL)
                abort();
            nenv++;
        }
    }
    env[nenv] = NULL;
    err[0] = '\0';
    if (!config_load_env(&cfg, env, err, sizeof(err)))
        FUZZ_CHECK(err[0] != '\0', "environment refused without a reason");
    else if (!config_check(&cfg, err, sizeof(err)))
        FUZZ_CHECK(err[0] != '\0', "configuration refused without a reason");
    for (size_t i = 0; i < nenv; i++)
        free(env[i]);
    return 0;
}
