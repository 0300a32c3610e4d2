/* snpbench: the benchmark programs of snpd, one subcommand each (see
 * bench/README.md).  Each entry point takes the arguments after the
 * subcommand's name and returns the process's exit status.
 */
#ifndef SNP_BENCH_H
#define SNP_BENCH_H

#include "bench/util.h"

/* The territory that `snpbench setup` writes. */
#define BENCH_TERRITORY "bench-t"

/* The patient's commune of every benchmark request, and the centre of the
 * capacity queries. */
#define BENCH_COMMUNE "35236"

/* The first practitioner of the territory, who practises at 'Cabinet 1';
 * `setup --gp-token-file` writes a token of theirs. */
#define BENCH_GP_RPPS "80000000001"

/* setup: the territory as SQL and its token secrets (bench/setup.c). */
int bench_setup(int argc, char **argv);

/* booking: request.create then offer.accept by N concurrent clients
 * (bench/booking.c). */
int bench_booking(int argc, char **argv);

/* capacity: capacity.query latency over WebSocket and HTTP
 * (bench/capacity.c). */
int bench_capacity(int argc, char **argv);

/* connections: many idle authenticated WebSocket connections and snpd's
 * memory (bench/connections.c). */
int bench_connections(int argc, char **argv);

/* push: the latency of capacity pushes to many subscribers, on the process
 * that made the change or on another (bench/push.c). */
int bench_push(int argc, char **argv);

/* ready: the time snpd takes from its start to /readyz, and its memory then
 * (bench/ready.c). */
int bench_ready(int argc, char **argv);

#endif
