/* prompt: questions and single keys on the terminal, for snpctl's
 * interactive request form, offer decision and live board.
 *
 * Line questions use the terminal as it is (canonical mode, echo).  While
 * "key mode" is on (prompt_keys_begin), the terminal delivers each key at
 * once without echo so that a countdown can be redrawn while waiting for a
 * decision; the previous settings are restored by prompt_keys_end(), at exit
 * and on the signals snpctl catches.  Ctrl-C sets a flag that loops poll
 * with prompt_interrupted() instead of killing the process, so that
 * connections are closed and the terminal restored.
 */
#ifndef SNPCTL_PROMPT_H
#define SNPCTL_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

/* Asks `question` on standard output (followed by " [default] : " when
 * `def` is not NULL or empty, else " : ") and reads one line from standard
 * input into `buf` (`n` bytes), blanks trimmed; an empty answer gives `def`
 * (or ""). Returns false at the end of input or on Ctrl-C. */
bool prompt_line(const char *question, const char *def, char *buf, size_t n);

/* Catches SIGINT and SIGTERM: they set the flag read by
 * prompt_interrupted() instead of ending the process. */
void prompt_catch_interrupt(void);

/* Returns whether Ctrl-C (or SIGTERM) was received since
 * prompt_catch_interrupt(). */
bool prompt_interrupted(void);

/* Switches the terminal on standard input to key mode (no line buffering,
 * no echo).  Does nothing when standard input is not a terminal. */
void prompt_keys_begin(void);

/* Restores the terminal settings saved by prompt_keys_begin(). */
void prompt_keys_end(void);

/* Waits up to `timeout_ms` for a key on standard input and returns it, or -1
 * when none came (or on Ctrl-C), or -2 at the end of input. */
int prompt_key(int timeout_ms);

#endif
