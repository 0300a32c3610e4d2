/* prompt: terminal questions and keys.  See prompt.h. */
#include "clients/cli/prompt.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static struct termios saved;
static bool keys_on;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void prompt_catch_interrupt(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking read returns EINTR, so Ctrl-C ends a
     * question at once. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool prompt_interrupted(void)
{
    return interrupted != 0;
}

bool prompt_line(const char *question, const char *def, char *buf, size_t n)
{
    if (def && *def)
        printf("%s [%s] : ", question, def);
    else
        printf("%s : ", question);
    fflush(stdout);
    /* read() rather than fgets(): stdio would retry after EINTR and keep
     * waiting after Ctrl-C. */
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR && !interrupted)
            continue;
        if (r <= 0 || interrupted) {
            putchar('\n');
            return false;
        }
        if (ch == '\n')
            break;
        if (len + 1 < n)
            buf[len++] = ch;
    }
    buf[len] = '\0';
    char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l > 0 && isspace((unsigned char)s[l - 1]))
        s[--l] = '\0';
    memmove(buf, s, l + 1);
    if (!*buf && def)
        snprintf(buf, n, "%s", def);
    return true;
}

static void restore_at_exit(void)
{
    prompt_keys_end();
}

void prompt_keys_begin(void)
{
    if (keys_on || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
        return;
    struct termios t = saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0)
        return;
    static bool registered;
    if (!registered) {
        atexit(restore_at_exit);
        registered = true;
    }
    keys_on = true;
}

void prompt_keys_end(void)
{
    if (!keys_on)
        return;
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    keys_on = false;
}

int prompt_key(int timeout_ms)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0 || interrupted)
        return -1;
    unsigned char ch;
    ssize_t n = read(STDIN_FILENO, &ch, 1);
    if (n == 0)
        return -2;
    if (n < 0)
        return -1;
    return ch;
}
