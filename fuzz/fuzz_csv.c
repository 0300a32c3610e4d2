/*
 * fuzz_csv: the CSV reader of snpctl (clients/cli/csv.c) and the checks of
 * `snpctl import` on the lines it reads (clients/cli/cmd_import.c), which
 * need no server.
 *
 * An input is up to three CSV files separated by form feeds (\f): the
 * communes, the practitioners and the organisations files, an empty part
 * meaning that the file is not given.  An optional fourth part holds
 * letters that choose options: 'j' adds --json; 's' leaves out --dry-run,
 * so that the records are built and each batch goes through the client's
 * own validation (ctl_call() checks it against the protocol) before
 * snpctl finds that it has no token and stops, without any network.
 *
 *     insee,name,latitude,longitude\n35236,Redon,47.65,-2.08\n\f\f\fs
 *
 * Each file is first read alone with csv_next(), which must end (no more
 * records than lines) and hand out NUL-terminated fields of valid UTF-8;
 * then cmd_import() runs on all of them as `snpctl import` would.  Beyond
 * the sanitizers, the target checks that, when the lines are valid, the
 * batches built from them pass the protocol's validation, and that the
 * report of --json lists as many invalid lines as it counts errors.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/csv.h"
#include "clients/cli/ctl.h"
#include "fuzz/fuzz_util.h"

static struct fuzz_file files[3];
static struct fuzz_file empty_config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_protocol_init();
    fuzz_file_init(&files[0], "communes.csv");
    fuzz_file_init(&files[1], "practitioners.csv");
    fuzz_file_init(&files[2], "organisations.csv");
    /* snpctl's configuration: an empty file and no SNPCTL_* variables, so
     * that an import that would send stops for want of a token. */
    fuzz_file_init(&empty_config, "snpctl.conf");
    unsetenv("SNPCTL_SERVER");
    unsetenv("SNPCTL_TOKEN");
    unsetenv("SNPCTL_CONFIG");
    fuzz_quiet_stdio();
    return 0;
}

/* Reads the file at `path`, of `size` bytes holding `newlines` line
 * feeds, with csv_next() alone. */
static void read_alone(const char *path, size_t newlines)
{
    struct csv csv;
    const char *why;
    int r;
    size_t records = 0;
    long last_line = 0;
    FUZZ_CHECK(csv_open(&csv, path) == 0, "cannot open %s", path);
    while ((r = csv_next(&csv, &why)) != 0) {
        records++;
        FUZZ_CHECK(records <= newlines + 1, "more records than lines: csv_next() does not end");
        if (r < 0) {
            FUZZ_CHECK(why != NULL && why[0] != '\0', "a record refused without a reason");
            continue;
        }
        FUZZ_CHECK(csv.nfields >= 1, "a record without fields");
        FUZZ_CHECK(csv.line > last_line, "record line %ld after line %ld", csv.line, last_line);
        last_line = csv.line;
        for (size_t i = 0; i < csv.nfields; i++)
            FUZZ_CHECK(csv_utf8_valid(csv.fields[i]), "field %zu is not UTF-8", i);
    }
    csv_close(&csv);
}

/* Checks the report that `snpctl --json import` printed (`len` bytes at
 * `out`): one object whose "errors" counts the items of "invalid".  An
 * import that got as far as sending prints nothing on standard output,
 * unless it had nothing to send (its summary, zero batches). */
static void check_report(const char *out, size_t len)
{
    if (len == 0)
        return;
    json_error_t jerr;
    json_t *report = json_loadb(out, len, 0, &jerr);
    FUZZ_CHECK(report != NULL, "--json printed what is not one JSON object: %s", jerr.text);
    /* Files without a data line (a header alone) pass every check and leave
     * nothing to send: the import ends with its summary, zero batches. */
    json_t *batches = json_object_get(report, "batches");
    if (json_is_integer(batches) && json_integer_value(batches) == 0 &&
        !json_object_get(report, "errors")) {
        json_decref(report);
        return;
    }
    json_t *errors = json_object_get(report, "errors");
    json_t *invalid = json_object_get(report, "invalid");
    FUZZ_CHECK(json_is_integer(errors) && json_is_array(invalid), "a report without its errors");
    FUZZ_CHECK((size_t)json_integer_value(errors) == json_array_size(invalid),
               "the report counts %lld errors and lists %zu", (long long)json_integer_value(errors),
               json_array_size(invalid));
    json_decref(report);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const options[3] = {"--communes", "--practitioners", "--organisations"};
    const uint8_t *parts[4];
    size_t lens[4];
    size_t nparts = fuzz_split(data, size, '\f', parts, lens, 4);
    bool send = false, json = false;
    if (nparts == 4) {
        send = memchr(parts[3], 's', lens[3]) != NULL;
        json = memchr(parts[3], 'j', lens[3]) != NULL;
    }

    char *argv[16];
    int argc = 0;
    argv[argc++] = "import";
    for (size_t k = 0; k < 3 && k < nparts; k++) {
        if (lens[k] == 0)
            continue;
        size_t newlines = 0;
        for (size_t i = 0; i < lens[k]; i++)
            newlines += parts[k][i] == '\n';
        fuzz_file_set(&files[k], parts[k], lens[k]);
        read_alone(files[k].path, newlines);
        argv[argc++] = (char *)options[k];
        argv[argc++] = files[k].path;
    }
    bool any_file = argc > 1;
    if (!send)
        argv[argc++] = "--dry-run";
    if (json)
        argv[argc++] = "--json";
    argv[argc++] = "--config";
    argv[argc++] = empty_config.path;
    argv[argc] = NULL;

    /* The report of --json is kept to be checked; see fuzz_quiet_stdio()
     * for why `stdout` may be replaced. */
    char *out = NULL;
    size_t out_len = 0;
    FILE *quiet = stdout;
    if (json && (stdout = open_memstream(&out, &out_len)) == NULL)
        abort();
    struct ctl c;
    ctl_init(&c);
    int rc = cmd_import(&c, argc, argv);
    ctl_close(&c);
    if (json) {
        fclose(stdout);
        stdout = quiet;
        check_report(out, out_len);
        free(out);
    }
    /* With valid lines, an import that sends stops at ctl_connect() (no
     * token).  CTL_USAGE would mean that ctl_call() refused a batch built
     * from lines that the checks had accepted. */
    if (send && any_file)
        FUZZ_CHECK(rc != CTL_USAGE, "a batch built from valid lines fails the protocol");
    return 0;
}
