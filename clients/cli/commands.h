/* The snpctl commands.  Each takes the shared context and its arguments,
 * `argv[0]` being the command's own name ("slots", "request"...), parses
 * them with getopt_long (common options included), does its work and
 * returns the process exit code (enum ctl_exit).  Each has --help.
 *
 *   cmd_slots.c      slots, bookings, outcome        (gp, coordinator)
 *   cmd_request.c    request, slip                   (requesters)
 *   cmd_capacity.c   capacity, watch                 (sas, desk, others)
 *   cmd_territory.c  territory, indicators, whoami   (coordinator; whoami: all)
 *   cmd_import.c     import                          (CSV files: validation, import)
 *   cmd_token.c      token                           (coordinator, admin)
 *   cmd_call.c       call                            (sas: the call record)
 *   cmd_push.c       push                            (coordinator, admin)
 *   cmd_participation.c participation               (gp, coordinator, admin)
 *   cmd_shift.c      shift                           (coordinator, admin; list: gp)
 *   cmd_message.c    message                         (coordinator, admin)
 */
#ifndef SNPCTL_COMMANDS_H
#define SNPCTL_COMMANDS_H

#include "clients/cli/ctl.h"
#include "clients/cli/labels.h"
#include "clients/cli/timearg.h"

int cmd_slots(struct ctl *c, int argc, char **argv);
int cmd_bookings(struct ctl *c, int argc, char **argv);
int cmd_outcome(struct ctl *c, int argc, char **argv);
int cmd_request(struct ctl *c, int argc, char **argv);
int cmd_slip(struct ctl *c, int argc, char **argv);
int cmd_capacity(struct ctl *c, int argc, char **argv);
int cmd_watch(struct ctl *c, int argc, char **argv);
int cmd_territory(struct ctl *c, int argc, char **argv);
int cmd_indicators(struct ctl *c, int argc, char **argv);
int cmd_whoami(struct ctl *c, int argc, char **argv);
int cmd_import(struct ctl *c, int argc, char **argv);
int cmd_token(struct ctl *c, int argc, char **argv);
int cmd_call(struct ctl *c, int argc, char **argv);
int cmd_push(struct ctl *c, int argc, char **argv);
int cmd_participation(struct ctl *c, int argc, char **argv);
int cmd_shift(struct ctl *c, int argc, char **argv);
int cmd_message(struct ctl *c, int argc, char **argv);

/* Runs getopt_long over `argv` with `options` (which end with
 * CTL_COMMON_OPTIONS and a zero entry), handling the common options and
 * --help itself: calls `on_option(state, id, optarg)` for every other
 * option, which returns CTL_OK or an exit code.  Stores the index of the
 * first operand in `*first_operand`.  Returns CTL_OK, or -1 when --help was
 * given (the usage was printed: the command returns CTL_OK), or an exit
 * code (a usage error has been printed). */
int cmd_parse(struct ctl *c, int argc, char **argv, const struct option *options,
              int (*on_option)(void *state, int id, const char *arg), void *state,
              int *first_operand);

/* Starts a command that has subcommands ("territory show"): makes `usage`
 * the command's usage and stores its subcommand, argv[1], in `*sub`.
 * Returns CTL_OK; -1 when argv[1] is --help or -h (the usage was printed:
 * the command returns CTL_OK); CTL_USAGE, after a usage error naming the
 * command and `expected` (the subcommands, e.g. "show ou set", or NULL), when
 * there is none. */
int cmd_subcommand(struct ctl *c, int argc, char **argv, const char *usage, const char *expected,
                   const char **sub);

/* Returns `value` as a JSON string when it is one value of the enumeration
 * `kind`; otherwise prints a usage error naming `option` and the values,
 * and returns NULL. */
json_t *cmd_one_value(struct ctl *c, const char *option, const char *value, enum labels_kind kind);

/* Puts `value`, the value of `option` (e.g. "--state"), as the member `key`
 * of `data` when it is one value of the enumeration `kind`; otherwise prints
 * a usage error naming `option` and the values, and returns false.  A NULL
 * `value` (the option was not given) puts nothing and returns true. */
bool cmd_put_value(struct ctl *c, json_t *data, const char *key, const char *option,
                   const char *value, enum labels_kind kind) CTL_MUST_CHECK;

/* Sends `message` with `data` (stolen: released here) through ctl_call().
 * With --json, prints the answer and stores NULL in `*answer`; otherwise
 * stores the answer (a new reference) for the command to print for people.
 * Returns CTL_OK, or the exit code of the failure with `*answer` NULL. */
int cmd_send(struct ctl *c, const char *message, json_t *data, json_t **answer) CTL_MUST_CHECK;

/* Sets the date of `*day` to today's date in the territory's time zone
 * (read with ctl_territory()), leaving its other members alone.  Returns
 * CTL_OK or the exit code of the failed call. */
int cmd_today(struct ctl *c, struct timearg *day) CTL_MUST_CHECK;

/* Formats the practitioner (when `with_practitioner`), site and commune of
 * a slot in one short line, e.g. "Dr Anne Le Guen, Cabinet du Port, Redon",
 * into `buf`. */
void cmd_slot_place(const json_t *slot, bool with_practitioner, char *buf, size_t n);

/* Formats a patient as "J. D., F, 1980" into `buf`. */
void cmd_patient(const json_t *patient, char *buf, size_t n);

/* Formats where a message (protocol 1.6.0, the `message` of
 * request.confirmation.send and booking.mt_handover) is, to follow its name
 * and number: " en attente d'envoi par SMS", " : envoi fait par e-mail" or
 * " : envoi abandonné (MSSanté)", into `buf`. */
void cmd_message_progress(const json_t *message, char *buf, size_t n);

/* Joins the parts of a file answer (indicators.export,
 * participation.attestation) and writes them to `path` through a temporary
 * file renamed over it, or to standard output when `path` is NULL; stores
 * the file's size in `*len`.  Returns false after saying why. */
bool cmd_write_parts(const json_t *answer, const char *path, size_t *len);

#endif
