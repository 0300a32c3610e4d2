#include "tests/support/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/http.h"
#include "tests/support/wait.h"

const char *proc_scratch_dir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

int proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

struct status_wait {
    struct snpd_proc *p;
    const char *path;
    int status;
    bool answered; /* the wanted status, as opposed to the process's exit */
};

static bool answered_or_exited(void *arg)
{
    struct status_wait *w = arg;
    struct http_response r;
    if (http_request(w->p->port, "GET", w->path, NULL, NULL, &r) == 0) {
        w->answered = r.status == w->status;
        http_response_free(&r);
        if (w->answered)
            return true;
    }
    int st;
    if (waitpid(w->p->pid, &st, WNOHANG) == w->p->pid) {
        w->p->pid = 0;
        return true;
    }
    return false;
}

bool snpd_proc_wait_status(struct snpd_proc *p, const char *path, int status, int timeout_ms)
{
    struct status_wait w = {.p = p, .path = path, .status = status};
    return wait_until(answered_or_exited, &w, timeout_ms) && w.answered;
}

void snpd_proc_start(struct snpd_proc *p, const char *conninfo, const char *const *extra_args,
                     bool wait_ready)
{
    const char *bin = getenv("SNPD_BINARY");
    cr_assert(bin, "SNPD_BINARY is not set");
    memset(p, 0, sizeof(*p));
    p->port = proc_free_port();
    static int counter;
    snprintf(p->log_path, sizeof(p->log_path), "%s/snpd-test-%ld-%d.log", proc_scratch_dir(),
             (long)getpid(), ++counter);
    char port[16];
    snprintf(port, sizeof(port), "%d", p->port);

    const char *argv[32] = {bin, "--database", conninfo, "--port", port, "--log-level", "debug"};
    int argc = 7;
    for (int i = 0; extra_args && extra_args[i] && argc < 30; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        /* The messages to patients go to the scratch folder, not to the
         * machine's /var/lib/snpd, unless the test chose a sender. */
        if (!getenv("SNPD_MESSAGE_FILE")) {
            char messages[300];
            snprintf(messages, sizeof(messages), "%s/snpd-test-messages-%ld.jsonl",
                     proc_scratch_dir(), (long)getppid());
            setenv("SNPD_MESSAGE_FILE", messages, 1);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    if (wait_ready) {
        bool ready = snpd_proc_wait_status(p, "/readyz", 200, 20000);
        if (!ready) {
            char *log = snpd_proc_log(p);
            cr_assert_fail("snpd did not become ready; its log:\n%s", log ? log : "(none)");
        }
    }
}

int snpd_proc_wait_exit(struct snpd_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    int st;
    bool exited;
    WAIT_UNTIL(exited, waitpid(p->pid, &st, WNOHANG) == p->pid, timeout_ms);
    if (exited) {
        p->pid = 0;
        if (WIFEXITED(st))
            return WEXITSTATUS(st);
        return 128 + WTERMSIG(st);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

int snpd_proc_stop(struct snpd_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    return snpd_proc_wait_exit(p, timeout_ms);
}

char *snpd_proc_log(const struct snpd_proc *p)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    size_t n;
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *bigger = realloc(s, cap * 2);
            if (!bigger)
                break;
            s = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}
