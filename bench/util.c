#include "bench/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/lib/snpclient.h"

int64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void bench_sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool samples_add(struct samples *s, int64_t us)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint32_t *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return true;
}

bool samples_merge(struct samples *to, const struct samples *from)
{
    for (size_t i = 0; i < from->n; i++)
        if (!samples_add(to, from->v[i]))
            return false;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void samples_sort(struct samples *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
}

uint32_t samples_pct(const struct samples *s, double p)
{
    if (s->n == 0)
        return 0;
    /* Nearest rank: the smallest value with at least p% of the samples at
     * or below it. */
    double rank = p / 100.0 * (double)s->n;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k == 0)
        k = 1;
    if (k > s->n)
        k = s->n;
    return s->v[k - 1];
}

double samples_mean(const struct samples *s)
{
    if (s->n == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return sum / (double)s->n;
}

void samples_free(struct samples *s)
{
    free(s->v);
    *s = (struct samples){0};
}

bool bench_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool bench_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool samples_write(int fd, const struct samples *s)
{
    uint64_t n = s->n;
    return bench_write_all(fd, &n, sizeof(n)) && bench_write_all(fd, s->v, s->n * sizeof(*s->v));
}

bool samples_read(int fd, struct samples *s)
{
    uint64_t n;
    if (!bench_read_all(fd, &n, sizeof(n)) || n > 100000000)
        return false;
    uint32_t *v = malloc(n ? n * sizeof(*v) : 1);
    if (!v || !bench_read_all(fd, v, n * sizeof(*v))) {
        free(v);
        return false;
    }
    free(s->v);
    s->v = v;
    s->n = s->cap = (size_t)n;
    return true;
}

long bench_parse_long(const char *what, const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "snpbench: %s: expected a whole number from %ld to %ld, got \"%s\"\n", what,
                min, max, text);
        exit(2);
    }
    return v;
}

void tokens_load(struct tokens *t, const char *path)
{
    *t = (struct tokens){0};
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "snpbench: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char line[256];
    size_t cap = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **v = realloc(t->v, cap * sizeof(*v));
            if (!v) {
                fprintf(stderr, "snpbench: out of memory\n");
                exit(1);
            }
            t->v = v;
        }
        if (!(t->v[t->n++] = strdup(line))) {
            fprintf(stderr, "snpbench: out of memory\n");
            exit(1);
        }
    }
    fclose(f);
}

void tokens_free(struct tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    *t = (struct tokens){0};
}

/* Sums the values of the lines of `text` that start with `prefix`. */
static double metric_sum(const char *text, const char *prefix)
{
    double sum = 0;
    size_t plen = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, plen) == 0) {
            const char *sp = strchr(line, ' ');
            if (sp)
                sum += strtod(sp + 1, NULL);
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return sum;
}

bool snpd_metrics_read(int port, struct snpd_metrics *m)
{
    struct snpclient *c = snpclient_new("127.0.0.1", port, false);
    if (!c)
        return false;
    int status = 0;
    char *body = NULL;
    int rc = snpclient_http(c, "GET", "/metrics", NULL, NULL, 5000, &status, &body);
    snpclient_free(c);
    if (rc != 0 || status != 200 || !body) {
        free(body);
        return false;
    }
    m->db_queries = metric_sum(body, "snpd_db_query_seconds_count ");
    m->db_seconds = metric_sum(body, "snpd_db_query_seconds_sum ");
    m->websockets = metric_sum(body, "snpd_websockets ");
    m->live_slots = metric_sum(body, "snpd_live_slots ");
    m->waiting_requests = metric_sum(body, "snpd_waiting_requests ");
    /* The result label comes last: split the sum by looking for it. */
    double ok = 0, err = 0;
    for (const char *line = body; line && *line;) {
        if (strncmp(line, "snpd_messages_total{", 20) == 0) {
            const char *end = strchr(line, '\n');
            const char *sp = strchr(line, ' ');
            double v = sp ? strtod(sp + 1, NULL) : 0;
            const char *res = strstr(line, "result=\"error\"");
            if (res && (!end || res < end))
                err += v;
            else
                ok += v;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    m->messages_ok = ok;
    m->messages_error = err;
    free(body);
    return true;
}

/* What proc_stat reads of /proc/<pid>/stat. */
struct proc_sample {
    pid_t ppid;        /* field 4 */
    int64_t minflt;    /* field 10: minor page faults */
    int64_t self_us;   /* utime + stime (fields 14, 15) */
    int64_t reaped_us; /* cutime + cstime (16, 17: the children it waited for) */
};

static bool proc_stat(pid_t pid, struct proc_sample *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    char state;
    int parent;
    unsigned long long faults, utime, stime, cutime, cstime;
    if (sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu %llu %llu", &state,
               &parent, &faults, &utime, &stime, &cutime, &cstime) != 7)
        return false;
    long hz = sysconf(_SC_CLK_TCK);
    unsigned long long tick_us = 1000000ULL / (unsigned long long)(hz > 0 ? hz : 100);
    *out = (struct proc_sample){
        .ppid = parent,
        .minflt = (int64_t)faults,
        .self_us = (int64_t)((utime + stime) * tick_us),
        .reaped_us = (int64_t)((cutime + cstime) * tick_us),
    };
    return true;
}

int64_t proc_cpu_us(pid_t pid)
{
    struct proc_sample ps;
    return proc_stat(pid, &ps) ? ps.self_us : -1;
}

int64_t proc_minor_faults(pid_t pid)
{
    struct proc_sample ps;
    return proc_stat(pid, &ps) ? ps.minflt : -1;
}

int64_t proc_tree_cpu_us(pid_t postmaster)
{
    int64_t total = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        struct proc_sample ps;
        if (!proc_stat((pid_t)pid, &ps))
            continue;
        if (pid == postmaster)
            total += ps.self_us + ps.reaped_us; /* backends that exited are counted here */
        else if (ps.ppid == postmaster)
            total += ps.self_us;
    }
    closedir(d);
    return total;
}

int64_t sys_busy_us(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -1;
    /* user nice system idle iowait irq softirq steal */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)(busy * (1000000ULL / (unsigned long long)(hz > 0 ? hz : 100)));
}

long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t flen = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

void bench_client_address(long index, char *buf, size_t size)
{
    snprintf(buf, size, "127.0.%ld.%ld", (2 + index) / 250, (2 + index) % 250);
}
