/* Helpers of the fuzz targets.  See fuzz_util.h. */
#include "fuzz/fuzz_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "protocol/codec.h"

void fuzz_file_init(struct fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

void fuzz_file_set(struct fuzz_file *f, const void *data, size_t size)
{
    const char *p = data;
    size_t done = 0;
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    while (done < size) {
        ssize_t n = pwrite(f->fd, p + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)n;
    }
}

size_t fuzz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **parts,
                  size_t *lens, size_t max)
{
    size_t n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n + 1 < max) {
        const uint8_t *cut = p < end ? memchr(p, sep, (size_t)(end - p)) : NULL;
        if (cut == NULL)
            break;
        parts[n] = p;
        lens[n++] = (size_t)(cut - p);
        p = cut + 1;
    }
    parts[n] = p;
    lens[n++] = (size_t)(end - p);
    return n;
}

void fuzz_check(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok)
        return;
    /* Straight to file descriptor 2: `stderr` may be /dev/null by now
     * (fuzz_quiet_stdio()). */
    va_list ap;
    va_start(ap, fmt);
    dprintf(STDERR_FILENO, "%s:%d: broken promise: ", file, line);
    vdprintf(STDERR_FILENO, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "\n");
    abort();
}

void fuzz_quiet_stdio(void)
{
    /* libFuzzer copied the value of `stderr` into its own output stream
     * before calling LLVMFuzzerInitialize(), and the sanitizers write to
     * file descriptor 2 directly, so replacing the two streams silences
     * only the code under test.  glibc documents stdout and stderr as
     * ordinary variables that may be assigned ("Standard Streams" in its
     * manual). */
    FILE *null = fopen("/dev/null", "w");
    if (null == NULL) {
        perror("/dev/null");
        abort();
    }
    stdout = null;
    stderr = null;
}

void fuzz_protocol_init(void)
{
    /* The codec logs only mistakes of the schema; keep fuzzing output
     * readable. */
    log_setup(LOG_ERROR, LOG_FORMAT_HUMAN);
    if (snp_proto_init() != 0)
        abort();
}

void fuzz_check_refusal(const struct snp_proto_error *err)
{
    FUZZ_CHECK(err->code > SNP_PROTO_OK && err->code < SNP_PROTO_CODE_COUNT, "refusal with code %d",
               (int)err->code);
    FUZZ_CHECK(err->code != SNP_PROTO_E_INTERNAL, "internal error: %s", err->message);
    FUZZ_CHECK(err->message[0] != '\0', "refusal %s without a message",
               snp_proto_code_name(err->code));
}
