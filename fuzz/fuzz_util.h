/*
 * What the fuzz targets of fuzz/ share: libFuzzer's entry points, a file
 * that holds one input (for parsers that read a path), splitting an input
 * into parts, and the check that stops a run on a broken promise.
 */
#ifndef SNP_FUZZ_UTIL_H
#define SNP_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points, defined by each target. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A file in memory (memfd) whose contents are replaced for each input, for
 * parsers that take a path: fuzz_file_path() names it through /proc, and
 * every fopen() of that name reads it from the start.
 */
struct fuzz_file {
    int fd;
    char path[64];
};

/* Creates the file; aborts when the system refuses (nothing can be fuzzed). */
void fuzz_file_init(struct fuzz_file *f, const char *name);

/* Makes `size` bytes at `data` the whole contents of the file. */
void fuzz_file_set(struct fuzz_file *f, const void *data, size_t size);

/*
 * Cuts `size` bytes at `data` at each byte `sep`, into at most `max` parts
 * stored in `parts` / `lens` (the last part keeps any further separators).
 * Returns the number of parts, at least 1.
 */
size_t fuzz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **parts,
                  size_t *lens, size_t max);

/*
 * Loads the protocol's tables (snp_proto_init()) with logging down to
 * errors, for the targets that drive the codec; aborts when they cannot be
 * built.
 */
void fuzz_protocol_init(void);

/*
 * Checks what every refusal of the codec promises (codec.h): a declared
 * code other than internal (the input is at fault, not snpd) and a message.
 */
struct snp_proto_error;
void fuzz_check_refusal(const struct snp_proto_error *err);

/*
 * Stops the run with a message when `ok` is false: a promise of the code
 * under test does not hold.  libFuzzer then saves the input as a crash.
 */
#define FUZZ_CHECK(ok, ...) fuzz_check((ok), __FILE__, __LINE__, __VA_ARGS__)
void fuzz_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Sends what the code under test prints on standard output and standard
 * error to /dev/null: printing every input would slow fuzzing down a
 * hundredfold.  libFuzzer and the sanitizers keep reporting on the real
 * standard error (see fuzz_util.c).
 */
void fuzz_quiet_stdio(void);

#endif
