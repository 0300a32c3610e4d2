/* snpd's administrative commands: `snpd migrate`, `snpd token ...` and
 * `snpd territory create`.
 *
 * Each runs a libuv loop of its own with one database connection, does its
 * work through the same asynchronous db module as the server, prints its
 * result, and returns the process exit code (0 ok, 1 failure, 2 usage).
 */
#ifndef SNP_ADMIN_H
#define SNP_ADMIN_H

#include <stddef.h>

#include "dispatcher/config.h"

/* Applies the embedded migrations and exits; waits up to 15 s for the
 * database. */
int admin_migrate(const struct config *cfg);

/* Who runs an administrative command, for the audit: "cli:<login>" (the
 * invoking user under sudo), written into `out`. */
void admin_operator_actor(char *out, size_t n);

/* `snpd token create|revoke|list ...`: `argv[0]` is the subcommand.  Tokens
 * are created and revoked through the audited functions that token.create
 * and token.revoke use (sql/migrations/0008, 0024), as an admin named
 * "cli:<login>". */
int admin_token(const struct config *cfg, int argc, char **argv);

/* `snpd territory create --id ID --name NAME --kind cpts|sas [--time-zone TZ]`:
 * the first step of a new territory, before its admin token; its communes,
 * practitioners and organisations are then imported with `snpctl import`.
 * `snpd territory set --id ID [--finess N|none] [--sas-platform-url URL|none]`:
 * what the national SAS platform needs, audited (docs/fhir.md). */
int admin_territory(const struct config *cfg, int argc, char **argv);

#endif
