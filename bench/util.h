/* Shared helpers of snpbench: clocks, latency samples and their
 * percentiles, command-line numbers, reading a token file, and what the
 * benchmarks read about other processes (snpd's /metrics, CPU time and
 * resident memory from /proc).
 */
#ifndef SNP_BENCH_UTIL_H
#define SNP_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MUST_CHECK __attribute__((warn_unused_result))

/* CLOCK_MONOTONIC in microseconds; comparable across processes. */
int64_t bench_now_us(void);

/* Sleeps `us` microseconds (at least). */
void bench_sleep_us(int64_t us);

/* A growable array of latencies in microseconds. */
struct samples {
    uint32_t *v;
    size_t n;
    size_t cap;
};

/* Appends one latency; returns false when out of memory. */
bool samples_add(struct samples *s, int64_t us) BENCH_MUST_CHECK;

/* Appends every value of `from`. */
bool samples_merge(struct samples *to, const struct samples *from) BENCH_MUST_CHECK;

/* Sorts the values; call before samples_pct(). */
void samples_sort(struct samples *s);

/* The nearest-rank percentile `p` (0 < p <= 100) of sorted samples, in
 * microseconds; 0 when empty. */
uint32_t samples_pct(const struct samples *s, double p);

/* The mean in microseconds; 0 when empty. */
double samples_mean(const struct samples *s);

void samples_free(struct samples *s);

/* Writes the samples to `fd` as a count followed by the values, and reads
 * them back (the worker processes hand their latencies to the parent so). */
bool samples_write(int fd, const struct samples *s) BENCH_MUST_CHECK;
bool samples_read(int fd, struct samples *s) BENCH_MUST_CHECK;

/* write() / read() of exactly `len` bytes, retrying on EINTR; false on EOF
 * or error. */
bool bench_write_all(int fd, const void *buf, size_t len) BENCH_MUST_CHECK;
bool bench_read_all(int fd, void *buf, size_t len) BENCH_MUST_CHECK;

/* Parses a whole decimal number from `min` to `max`; exits with a message
 * naming `what` when it is not one. */
long bench_parse_long(const char *what, const char *text, long min, long max);

/* The tokens of a token file, one secret per line. */
struct tokens {
    char **v;
    size_t n;
};

/* Reads `path`; exits with a message when it cannot. */
void tokens_load(struct tokens *t, const char *path);
void tokens_free(struct tokens *t);

/* Counters read from snpd's /metrics: queries sent to the database, their
 * summed latency (from queueing in snpd's pool to the result), and protocol
 * messages answered, in success and in error. */
struct snpd_metrics {
    double db_queries;
    double db_seconds;
    double messages_ok;
    double messages_error;
    double websockets;       /* open WebSocket connections (a gauge) */
    double live_slots;       /* slots in memory, free, held or booked (a gauge) */
    double waiting_requests; /* requests waiting in memory (a gauge) */
};

/* GETs /metrics from snpd at 127.0.0.1:`port`; false when it cannot. */
bool snpd_metrics_read(int port, struct snpd_metrics *m) BENCH_MUST_CHECK;

/* CPU time (user + system) of process `pid`, in microseconds; -1 when the
 * process is gone. */
int64_t proc_cpu_us(pid_t pid);

/* Minor page faults of process `pid` so far (each a page the kernel mapped,
 * and zeroed when new); -1 when the process is gone. */
int64_t proc_minor_faults(pid_t pid);

/* CPU time of `postmaster` and of all its children (the backends, the
 * checkpointer, the WAL writer...), in microseconds. */
int64_t proc_tree_cpu_us(pid_t postmaster);

/* CPU time the whole machine spent busy (every state of /proc/stat but
 * idle and iowait, summed over the CPUs), in microseconds; -1 when unknown.
 * Its growth minus what the benchmark's own processes used is what other
 * processes took from the run. */
int64_t sys_busy_us(void);

/* The source address of the `index`-th client process: 127.0.0.2,
 * 127.0.0.3 ...  Loopback answers on all of 127/8, and each address has
 * its own ephemeral ports and its own per-address count in snpd. */
void bench_client_address(long index, char *buf, size_t size);

/* A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); -1 when unknown. */
long proc_status_kb(pid_t pid, const char *field);

#endif
