/* Running the real snpd binary from a test.
 *
 * snpd_proc_start() forks and executes $SNPD_BINARY with the given database
 * and a free port, its standard error captured in a file, and waits for
 * /readyz to answer 200.  Tests then talk to it over real sockets.
 */
#ifndef SNP_TEST_PROC_H
#define SNP_TEST_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct snpd_proc {
    pid_t pid;
    int port;
    char log_path[256];
};

/* The folder for the tests' scratch files: $TMPDIR (deploy/test.sh points
 * it at its throwaway folder), else /tmp. */
const char *proc_scratch_dir(void);

/* Returns a TCP port on 127.0.0.1 that was free a moment ago. */
int proc_free_port(void);

/* Starts snpd on `conninfo` with extra arguments (NULL-terminated, may be
 * NULL).  When `wait_ready` is true, fails the test unless /readyz answers
 * 200 within 20 s. */
void snpd_proc_start(struct snpd_proc *p, const char *conninfo, const char *const *extra_args,
                     bool wait_ready);

/* Waits up to `timeout_ms` for /readyz to answer `status`; returns whether it did. */
bool snpd_proc_wait_status(struct snpd_proc *p, const char *path, int status, int timeout_ms);

/* Sends `sig` and waits up to `timeout_ms` for the process to exit.  Returns
 * its exit status (0-255), 128 + signal number when it was killed by one, or
 * -1 on timeout (the process is then killed). */
int snpd_proc_stop(struct snpd_proc *p, int sig, int timeout_ms);

/* Waits for the process to exit by itself; same return as snpd_proc_stop. */
int snpd_proc_wait_exit(struct snpd_proc *p, int timeout_ms);

/* Reads the captured log into a malloc'ed string. */
char *snpd_proc_log(const struct snpd_proc *p);

#endif
