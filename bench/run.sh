#!/usr/bin/env bash
# bench/run.sh: snpd's benchmarks, in one command.  Builds snpd and snpbench
# (Release, in build-bench/), starts a private PostgreSQL cluster with
# durable settings on a Unix socket in a temporary folder, loads the
# benchmark territory (20,000 slots over the next 48 hours, 10,000 pharmacy
# tokens), starts snpd, then measures:
#
#   1. booking end to end over WebSocket (request.create + offer.accept) at
#      1, 4 and 16 concurrent clients, by a bare WebSocket client, and once
#      at each count through the client library snpclient;
#   2. pgbench running the same two SQL calls (bench/booking.pgbench) at the
#      same client counts, on a fresh copy of the same data, and the
#      machine's limit: the minimal durable booking transaction
#      (bench/minimal.pgbench), without and with one notification;
#   3. capacity.query latency over WebSocket and HTTP (run first, while all
#      the slots are free);
#   4. snpd's memory with 10,000 idle authenticated WebSocket connections;
#   5. fanout: a capacity push to 1,000 subscribers, change by change;
#   6. cross: a push from one snpd to a subscriber of a second snpd on the
#      same database;
#   7. capacity100k: the capacity query over a territory of 100,000 free
#      slots (a database of its own, with its own snpd);
#   8. waiting: snpd's memory with those 100,000 slots and 10,000 waiting
#      requests that no slot can serve;
#   9. startup: snpd's start-up over 1,000,000 live slots, and its memory;
#  10. indicators (not by default: loading 5,000,000 events takes minutes):
#      a monthly extraction over 5,000,000 events;
#  11. fhir: the SAS platform's FHIR slot search (GET /fhir/Slot) for 25
#      practitioners over the next 3 days (2,500 slots an answer), then over
#      the next 6 hours (an answer the size of a real 3-day one), HTTP keep-alive;
#
# and prints a summary table.  Everything it started is stopped and the
# temporary folder removed on exit, failure or Ctrl-C.  It talks only to
# 127.0.0.x and Unix sockets.
#
#   bench/run.sh [--quick] [--only LIST] [--ref REV]
#
#   --quick     a smoke run: few bookings and queries, 1,000 connections,
#               and every new benchmark at a tenth of its size or less
#   --only      a comma-separated subset of booking,pgbench,capacity,
#               connections,fanout,cross,capacity100k,waiting,startup,
#               indicators,fhir (default: all but indicators)
#   --ref REV   measure the committed revision REV (git archive, with this
#               bench/ folder) instead of the working tree, e.g. --ref HEAD
#               while the tree holds unfinished changes
#
# Environment (defaults in brackets):
#   BENCH_BOOKINGS        bookings per run [800]
#   BENCH_CLIENTS         client counts ["1 4 16"]
#   BENCH_REPEAT          runs per client count, of snpd and of pgbench alike;
#                         the summary shows the best of them [3]
#   BENCH_QUERIES         capacity queries per transport [20000]
#   BENCH_CONNECTIONS     idle connections [10000]
#   BENCH_DB_CONNECTIONS  snpd's database pool size [snpd's default]
#   BENCH_QUIET_WAIT      seconds each run may wait for the machine to be
#                         nearly idle (other sessions' builds and tests) [10]
#   BENCH_KEEP=1          keep the temporary folder (logs, pgbench logs)
#   BENCH_PERF=1          profile snpd with perf during each booking run and
#                         print its hottest functions
#   BENCH_PGSS=1          load pg_stat_statements (every nested statement)
#                         and print, after each booking run through snpd
#                         and each prepared pgbench run of snpd's SQL,
#                         where PostgreSQL's time went, per booking
#   BENCH_PGLISTEN=1      pgbench's runs of snpd's SQL run beside a session
#                         listening on snp_change (snpbench listen), as
#                         snpd's is; its CPU counts among the others'
#   BENCH_IDLE            idle pharmacy connections subscribed to
#                         `requests`, held open during the booking runs
#                         (snpbench connections --hold) [0]
#   BENCH_WATCHERS        subscribers of the fan-out benchmark [1000]
#   BENCH_CHANGES         changes made in the fan-out benchmark [200]
#   BENCH_CROSS_CHANGES   changes made in the two-process benchmark [400]
#   BENCH_BIG_SLOTS       free slots of capacity100k and waiting [100000]
#   BENCH_WAITING         waiting requests [10000]
#   BENCH_STARTUP_SLOTS   live slots of the start-up benchmark [1000000]
#   BENCH_EVENTS          events of the indicators benchmark [5000000]
#   BENCH_FHIR_QUERIES    FHIR slot searches [2000]
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

quick=false
ref=""
ONLY=booking,pgbench,capacity,connections,fanout,cross,capacity100k,waiting,startup,fhir
ALL_PHASES="booking pgbench capacity connections fanout cross capacity100k waiting startup indicators fhir"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=true ;;
    --only)
        [ $# -ge 2 ] || die "--only needs a list"
        ONLY=$2
        shift
        ;;
    --ref)
        [ $# -ge 2 ] || die "--ref needs a revision"
        ref=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

for phase in ${ONLY//,/ }; do
    [[ " $ALL_PHASES " == *" $phase "* ]] || die "--only: unknown benchmark $phase ($ALL_PHASES)"
done

BOOKINGS=${BENCH_BOOKINGS:-800}
CLIENTS=${BENCH_CLIENTS:-1 4 16}
REPEAT=${BENCH_REPEAT:-3}
QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
QUERIES=${BENCH_QUERIES:-20000}
CONNECTIONS=${BENCH_CONNECTIONS:-10000}
IDLE=${BENCH_IDLE:-0}
WATCHERS=${BENCH_WATCHERS:-1000}
CHANGES=${BENCH_CHANGES:-200}
CROSS_CHANGES=${BENCH_CROSS_CHANGES:-400}
BIG_SLOTS=${BENCH_BIG_SLOTS:-100000}
WAITING=${BENCH_WAITING:-10000}
STARTUP_SLOTS=${BENCH_STARTUP_SLOTS:-1000000}
EVENTS=${BENCH_EVENTS:-5000000}
FHIR_QUERIES=${BENCH_FHIR_QUERIES:-2000}
FHIR_SLOTS="?"
if $quick; then
    FHIR_QUERIES=${BENCH_FHIR_QUERIES:-200}
    BOOKINGS=${BENCH_BOOKINGS:-320}
    REPEAT=${BENCH_REPEAT:-1}
    QUERIES=${BENCH_QUERIES:-2000}
    CONNECTIONS=${BENCH_CONNECTIONS:-1000}
    WATCHERS=${BENCH_WATCHERS:-200}
    CHANGES=${BENCH_CHANGES:-40}
    CROSS_CHANGES=${BENCH_CROSS_CHANGES:-60}
    BIG_SLOTS=${BENCH_BIG_SLOTS:-20000}
    WAITING=${BENCH_WAITING:-1000}
    STARTUP_SLOTS=${BENCH_STARTUP_SLOTS:-100000}
    EVENTS=${BENCH_EVENTS:-500000}
fi
SLOTS=20000
TOKENS=10000
WARMUP_BOOKINGS=200
LITERAL_BOOKINGS=60
TERRITORY=bench-t

for n in $CLIENTS; do
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 64 ]; then
        die "BENCH_CLIENTS: $n is not a client count from 1 to 64"
    fi
    [ $((BOOKINGS % n)) -eq 0 ] || die "BENCH_BOOKINGS ($BOOKINGS) must divide by every client count"
done
# pgbench gives each transaction its own slot id; snpd takes the slots it
# ranks best.  Both must have enough: warm-up, then every client count
# (through snpd REPEAT runs over a bare WebSocket and one through snpclient).
[[ $REPEAT =~ ^[1-9]$ ]] || die "BENCH_REPEAT: from 1 to 9"
if ! [[ $QUIET_WAIT =~ ^[0-9]+$ ]] || [ "$QUIET_WAIT" -gt 600 ]; then
    die "BENCH_QUIET_WAIT: from 0 to 600 seconds"
fi
need=$((WARMUP_BOOKINGS + LITERAL_BOOKINGS + BOOKINGS * (REPEAT + 1) * $(wc -w <<<"$CLIENTS")))
[ "$need" -le $((SLOTS * 9 / 10)) ] ||
    die "$need bookings need more than the $((SLOTS * 9 / 10)) slots open to pharmacies"
[ "$CONNECTIONS" -le "$TOKENS" ] || die "BENCH_CONNECTIONS is at most $TOKENS"

cd "$SNP_ROOT"
require_owner_user
command -v pgbench >/dev/null ||
    die "pgbench is missing: apt-get install -y postgresql-contrib (or postgresql-client)"
command -v psql >/dev/null || die "psql is missing: apt-get install -y postgresql-client"

# 10,000 connections need as many descriptors in snpd and in the clients.
want_fds=$((CONNECTIONS + 2000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_fds" ]; then
    warn "the hard limit on open files is $hard; the connection benchmark may fall short"
    want_fds=$hard
fi
ulimit -n "$want_fds"

# --- Temporary folder, cleanup ---------------------------------------------

tmp=""
snpd_pid=""
bench_pid=""
perf_pid=""
idle_pid=""
listen_pid=""

# Runs on every exit: stops what this script started, then removes the folder.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    [ -z "$idle_pid" ] || idle_stop
    [ -z "$listen_pid" ] || kill -TERM "$listen_pid" 2>/dev/null || true
    if [ -n "$bench_pid" ]; then
        # snpbench runs in its own process group with its workers.
        kill -TERM -- "-$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    if [ -n "$tmp" ]; then
        local pidfile
        for pidfile in "$tmp"/*.pid; do
            [ -e "$pidfile" ] || continue
            snpd_stop "$pidfile" >/dev/null || true
        done
        if [ -f "$tmp/pg/PG_VERSION" ]; then
            pg_cluster_stop "$tmp/pg" immediate >/dev/null || true
        fi
        if [ "${BENCH_KEEP:-}" = 1 ]; then
            say "kept $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A short path: the PostgreSQL socket lives in it.
tmp=$(mktemp -d /tmp/snpbench.XXXXXX)
chmod 0755 "$tmp"
own "$tmp"
mkdir -p "$tmp/bin" "$tmp/out" "$tmp/web"
chmod 0755 "$tmp/bin" "$tmp/out" "$tmp/web"

# --- Build -----------------------------------------------------------------

# SRC: the source measured, the working tree or a copy of revision $ref.
SRC=$SNP_ROOT
BUILD=$SNP_ROOT/build-bench
if [ -n "$ref" ]; then
    rev=$(git rev-parse --verify --quiet "$ref^{commit}") || die "no revision $ref"
    SRC=$tmp/src
    BUILD=$tmp/build
    mkdir -p "$SRC"
    git archive "$rev" | tar -x -C "$SRC"
    rm -rf "$SRC/bench"
    cp -R "$SNP_ROOT/bench" "$SRC/bench"
    if ! grep -q 'add_subdirectory(bench)' "$SRC/CMakeLists.txt"; then
        printf '\noption(SNP_BENCH "Build the benchmark programs in bench/" OFF)\n%s\n' \
            'if(SNP_BENCH)
  add_subdirectory(bench)
endif()' >>"$SRC/CMakeLists.txt"
    fi
    version="$(git rev-parse --short "$rev")"
    say "building revision $version and snpbench (Release) in $BUILD"
else
    version="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    git diff --quiet HEAD 2>/dev/null || version+="+uncommitted changes"
    say "building the working tree ($version) and snpbench (Release) in build-bench/"
fi
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSNP_TESTS=OFF -DSNP_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 >/dev/null
# snpd runs as user snpd, which may not traverse the checkout.
cp "$BUILD/snpd" "$BUILD/bench/snpbench" "$tmp/bin/"
SNPD=$tmp/bin/snpd
SNPBENCH=$tmp/bin/snpbench
OUT=$tmp/out
RESULTS=$OUT/results.txt
: >"$RESULTS"

# runbench NAME ARGS...: runs snpbench in its own process group (so that
# cleanup can stop it with its workers), shows and keeps its output, and
# keeps its RESULT line.
runbench() {
    local name=$1 rc=0
    shift
    setsid "$SNPBENCH" "$@" >"$OUT/$name.txt" 2>&1 </dev/null &
    bench_pid=$!
    wait "$bench_pid" || rc=$?
    bench_pid=""
    grep -v '^RESULT ' "$OUT/$name.txt" || true
    grep '^RESULT ' "$OUT/$name.txt" | sed "s/^RESULT /RESULT name=$name /" >>"$RESULTS" || true
    [ "$rc" -eq 0 ] || warn "$name: snpbench exited with status $rc"
}

# --- PostgreSQL ------------------------------------------------------------

pg_port=$(pick_random_port 56000 56999 "$tmp/run")
pg_cluster_init "$tmp/pg" "$tmp/run" "$pg_port" durable >/dev/null
# Durable: every commit waits for its WAL to reach the disk (the defaults,
# written out so that the report can show them).  No run pays for another's
# writes: no checkpoint falls due during a run, and autovacuum, which would
# clean up one run's dead rows (in any of the three databases) during a
# later run, is off; instead every run starts after VACUUM ANALYZE of all
# three databases and a checkpoint (settle below).
{
    echo "fsync = on"
    echo "synchronous_commit = on"
    echo "full_page_writes = on"
    echo "max_wal_size = '8GB'"
    echo "checkpoint_timeout = '30min'"
    echo "autovacuum = off"
    echo "max_connections = 200"
    if [ "${BENCH_PGSS:-}" = 1 ]; then
        echo "shared_preload_libraries = 'pg_stat_statements'"
        echo "pg_stat_statements.track = all"
        echo "pg_stat_statements.track_utility = off"
    fi
} | as_owner tee -a "$tmp/pg/$SNP_PG_SETTINGS" >/dev/null
pg_cluster_start "$tmp/pg" >/dev/null
pg_pid=$(head -n 1 "$tmp/pg/postmaster.pid")
sockdir=$tmp/run
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$pg_port" -U "$SNP_USER")
conninfo() { printf 'host=%s port=%s dbname=%s user=%s' "$sockdir" "$pg_port" "$1" "$SNP_USER"; }

say "PostgreSQL $("${PSQL[@]}" -d postgres -Atc 'SHOW server_version') on $sockdir:" \
    "$("${PSQL[@]}" -d postgres -Atc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name)
        FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes',
                                        'wal_sync_method', 'shared_buffers')")"

say "loading the territory: $SLOTS slots, $TOKENS pharmacy tokens"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
"$SNPD" migrate --database "$(conninfo bench)" >"$OUT/migrate.log" 2>&1 ||
    die_with_log "$OUT/migrate.log" "snpd migrate failed"
"$SNPBENCH" setup --slots "$SLOTS" --tokens "$TOKENS" --sql "$tmp/territory.sql" \
    --tokens-file "$tmp/tokens.txt" --watchers "$WATCHERS" --watchers-file "$tmp/watchers.txt" \
    --gp-token-file "$tmp/gp-token.txt" --platform-token-file "$tmp/platform-token.txt"
"${PSQL[@]}" -d bench -f "$tmp/territory.sql" >/dev/null
"${PSQL[@]}" -d bench -c "VACUUM ANALYZE"
# pgbench gets copies made now, before snpd changes anything: one for the
# extended protocol with unnamed statements, one for prepared statements
# (what snpd sends: dispatcher/db/db.c), one for the minimal booking
# transaction (bench/minimal.pgbench).
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench_pgx TEMPLATE bench" \
    -c "CREATE DATABASE bench_pgp TEMPLATE bench" -c "CREATE DATABASE bench_min TEMPLATE bench"
if [ "${BENCH_PGSS:-}" = 1 ]; then
    "${PSQL[@]}" -d bench -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
fi
read -r org_first orgs < <("${PSQL[@]}" -d bench -AtF ' ' \
    -c "SELECT min(id), count(*) FROM organisation WHERE kind = 'pharmacy'")
read -r slot_first < <("${PSQL[@]}" -d bench -At -c "SELECT min(id) FROM slot")

# --- snpd ------------------------------------------------------------------

snpd_port=""

# spawn_snpd NAME DB: starts an snpd on database DB, on a free port, as the
# cluster's owner, logging to $OUT/NAME.log, its pid in $tmp/NAME.pid (which
# cleanup stops) and, in $tmp/NAME.t0, the wall clock in microseconds just
# before it was exec'ed.  Sets spawned_port and spawned_pid; does not wait.
spawn_snpd() {
    local name=$1 db=$2
    spawned_port=$(pick_random_port 18100 18999)
    rm -f "$tmp/$name.t0"
    (
        export SNPD_DATABASE_URL SNPD_PORT SNPD_WEB_ROOT SNPD_MAX_CONNECTIONS SNPD_MAX_PER_ADDRESS
        SNPD_DATABASE_URL=$(conninfo "$db")
        SNPD_PORT=$spawned_port
        SNPD_WEB_ROOT=$tmp/web
        SNPD_MAX_CONNECTIONS=$((CONNECTIONS + WATCHERS + 1000))
        # snpd allows the protocol's max_connections_per_address (32) per
        # address by default; the benchmarks open thousands from a few
        # loopback addresses, so they raise it here.
        SNPD_MAX_PER_ADDRESS=$((CONNECTIONS + WATCHERS + 1000))
        if [ -n "${BENCH_DB_CONNECTIONS:-}" ]; then
            export SNPD_DB_CONNECTIONS=$BENCH_DB_CONNECTIONS
        fi
        date +%s%6N >"$tmp/$name.t0"
        exec_as_owner "$SNPD" >>"$OUT/$name.log" 2>&1 </dev/null
    ) &
    spawned_pid=$!
    echo "$spawned_pid" >"$tmp/$name.pid"
}

# wait_ready NAME: waits (60 s at most) until the snpd spawned as NAME
# answers /readyz.
wait_ready() {
    local name=$1 pid port=$spawned_port i
    pid=$(cat "$tmp/$name.pid")
    for ((i = 0; i < 300; i++)); do
        [ "$(http_status "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
        pid_alive "$pid" || die_with_log "$OUT/$name.log" "snpd ($name) exited"
        sleep 0.2
    done
    die_with_log "$OUT/$name.log" "snpd ($name) not ready after 60 s"
}

# start_snpd: the snpd of the main benchmark database.
start_snpd() {
    spawn_snpd snpd bench
    snpd_port=$spawned_port
    snpd_pid=$spawned_pid
    wait_ready snpd
}

start_snpd
say "snpd $("$SNPD" --version | cut -d' ' -f2) on 127.0.0.1:$snpd_port (pid $snpd_pid)," \
    "database pool: ${BENCH_DB_CONNECTIONS:-default}"

# settle: what autovacuum and the checkpointer would do, done between runs.
settle() {
    local db
    for db in bench bench_pgx bench_pgp bench_min; do
        "${PSQL[@]}" -d "$db" -c "VACUUM ANALYZE"
    done
    "${PSQL[@]}" -d postgres -c CHECKPOINT
}
# Other sessions may be building or testing on this machine: each measured
# run waits (BENCH_QUIET_WAIT seconds at most) for it to be nearly idle, and
# reports the share of CPU other processes took while it ran.
quiet() { "$SNPBENCH" quiet --below-pct 15 --max-wait-s "$QUIET_WAIT"; }

# --- 1. Booking through snpd -----------------------------------------------

# perf_start PID NAME: with BENCH_PERF=1, profiles process PID until
# perf_stop NAME, which prints its hottest functions.
perf_start() {
    if [ "${BENCH_PERF:-}" = 1 ] && command -v perf >/dev/null; then
        perf record -q -F 999 -g -p "$1" -o "$OUT/perf-$2.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
}

perf_stop() {
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf_pid=""
        echo "  snpd's hottest functions (perf, self time):"
        perf report -i "$OUT/perf-$1.data" --stdio --no-children --sort sym -g none \
            2>/dev/null | grep -E '^ +[0-9]' | sed -n '1,12s/^ */    /p' || true
    fi
}

# booking_run N R [TRANSPORT]: snpd's booking benchmark with N clients, run
# R, by the bare WebSocket client (or TRANSPORT: snpclient, the run then
# named booking-snpclient-N).
booking_run() {
    local n=$1 r=$2 transport=${3:-wsraw} name=booking-$1-$2
    [ "$transport" = wsraw ] || name=booking-$transport-$n
    pgss_reset
    perf_start "$snpd_pid" "$name"
    runbench "$name" booking --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --clients "$n" --count "$BOOKINGS" --run "c$n-$r-$transport" --snpd-pid "$snpd_pid" \
        --pg-pid "$pg_pid" --transport "$transport"
    perf_stop "$name"
    pgss_report bench "$BOOKINGS"
}

# booking_check: every booking snpd answered is in the database.
booking_check() {
    local want got
    want=$((WARMUP_BOOKINGS + LITERAL_BOOKINGS + BOOKINGS * (REPEAT + 1) * $(wc -w <<<"$CLIENTS")))
    got=$("${PSQL[@]}" -d bench -At -c "SELECT count(*) FROM booking WHERE status = 'booked'")
    [ "$got" -eq "$want" ] || warn "the database holds $got bookings; $want were answered"
    echo "  the database holds the $got bookings snpd answered"
}

# --- 2. pgbench with the same SQL ------------------------------------------

# norm: an SQL text with its comments dropped and its blanks squeezed.
norm() { sed -e 's/--.*$//' | tr -s ' \t\n' ' ' | sed -e 's/^ //; s/[ ;]*$//'; }

# check_pgbench_sql: dies unless the two SELECTs of booking.pgbench are the
# named queries snpd sends, once each pgbench variable is put back as $n.
# shellcheck disable=SC2016 # the $n are SQL parameters, not shell variables
check_pgbench_sql() {
    local script=$SRC/bench/booking.pgbench got_create got_accept
    got_create=$(awk '/^\\gset/ { exit } !/^--/ && !/^\\set/' "$script" |
        sed -e 's/:territory/$1/; s/:org::bigint/$2::bigint/; s/:actor/$3/' \
            -e "s/replace(:request, '@REF@', :ref::text)::jsonb/\$4::jsonb/" \
            -e 's/:identity::jsonb/$5::jsonb/; s/:slot::bigint/$6::bigint/; s/:hold::int/$7::int/' |
        norm)
    got_accept=$(awk 'go && !/^--/; /^\\gset/ { go = 1 }' "$script" |
        sed -e 's/:c_request_id::bigint/$1::bigint/; s/:org::bigint/$2::bigint/' \
            -e 's/:slot::bigint/$3::bigint/; s/:actor/$4/' | norm)
    [ "$got_create" = "$(norm <"$SRC/sql/queries/request_create.sql")" ] ||
        die "bench/booking.pgbench no longer matches sql/queries/request_create.sql"
    [ "$got_accept" = "$(norm <"$SRC/sql/queries/offer_accept.sql")" ] ||
        die "bench/booking.pgbench no longer matches sql/queries/offer_accept.sql"
}

# pgbench_exec NAME DB MODE CLIENTS PER_CLIENT SCRIPT [-D VAR=VALUE...]: one
# pgbench run of SCRIPT, timed, with PostgreSQL's CPU time around it.
# Appends a RESULT line (tps, latency percentiles, CPU per transaction).
pgbench_exec() {
    local name=$1 db=$2 mode=$3 n=$4 per=$5 script=$6 cpu0 cpu1 busy0 busy1 rc=0
    shift 6
    rm -f "$OUT/$name".log*
    cpu0=$("$SNPBENCH" cpu --pid "$pg_pid" --tree)
    busy0=$("$SNPBENCH" cpu --system)
    /usr/bin/time -f '%U %S %e' -o "$OUT/$name.time" \
        pgbench -n -M "$mode" -f "$script" -c "$n" -j "$n" -t "$per" \
        -h "$sockdir" -p "$pg_port" -U "$SNP_USER" -l --log-prefix "$OUT/$name.log" \
        "$@" "$db" >"$OUT/$name.txt" 2>&1 || rc=$?
    cpu1=$("$SNPBENCH" cpu --pid "$pg_pid" --tree)
    busy1=$("$SNPBENCH" cpu --system)
    [ "$rc" -eq 0 ] || die_with_log "$OUT/$name.txt" "pgbench failed"
    # Percentiles of the transaction latencies (third column, microseconds).
    cat "$OUT/$name".log* | awk '{ print $3 }' | sort -n | awk -v name="$name" -v mode="$mode" \
        -v n="$n" -v total=$((n * per)) \
        -v tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/$name.txt")" \
        -v pg="$(((cpu1 - cpu0) / (n * per)))" \
        -v cl="$(awk -v t=$((n * per)) '{ printf "%.0f", ($1 + $2) * 1e6 / t }' "$OUT/$name.time")" \
        -v others="$(awk -v busy=$((busy1 - busy0)) -v pg=$((cpu1 - cpu0)) -v ncpu="$(nproc)" '
            { o = (busy - pg - ($1 + $2) * 1e6) / ($3 * 1e6 * ncpu) * 100; printf "%.0f", o < 0 ? 0 : o }' \
            "$OUT/$name.time")" '
        { v[NR] = $1 }
        function pct(p,  k) { k = int(p / 100 * NR); if (k < p / 100 * NR) k++; if (k < 1) k = 1; return v[k] }
        END {
            printf "RESULT name=%s bench=pgbench mode=%s clients=%d transactions=%d tps=%.1f " \
                   "p50=%d p90=%d p99=%d pg_cpu_us=%s client_cpu_us=%s others_pct=%s\n",
                   name, mode, n, total, tps, pct(50), pct(90), pct(99), pg, cl, others
        }' >>"$RESULTS"
    tail -n 1 "$RESULTS" | sed 's/^RESULT /  /'
}

# bench_wait_listening DB: waits (5 s at most) until a session listens on DB.
bench_wait_listening() {
    local i
    for i in $(seq 1 50); do
        [ "$("${PSQL[@]}" -d "$1" -At -c "SELECT count(*) FROM pg_stat_activity
            WHERE datname = '$1' AND query = 'LISTEN snp_change'")" -ge 1 ] && return 0
        sleep 0.1
    done
    die "snpbench listen did not start listening on $1"
}

# pgbench_run NAME DB MODE CLIENTS PER_CLIENT BASE RUN: one run of snpd's SQL
# (booking.pgbench); its clients take the slots after BASE.  Checks that
# every transaction booked.
pgbench_run() {
    local name=$1 db=$2 mode=$3 n=$4 per=$5 base=$6 run=$7 before after
    before=$("${PSQL[@]}" -d "$db" -At -c "SELECT count(*) FROM booking")
    if [ "${BENCH_PGLISTEN:-}" = 1 ]; then
        "$SNPBENCH" listen --conninfo "host=$sockdir port=$pg_port user=$SNP_USER dbname=$db" &
        listen_pid=$!
        bench_wait_listening "$db"
    fi
    pgbench_exec "$name" "$db" "$mode" "$n" "$per" "$SRC/bench/booking.pgbench" \
        -D territory=$TERRITORY -D actor=token:pgbench -D "request=$request" \
        -D 'identity={"initials":"J. D."}' -D hold=180 -D org_first="$org_first" \
        -D orgs="$orgs" -D run="$run" -D base="$base" -D per_client="$per" -D seq=0
    if [ -n "$listen_pid" ]; then
        kill -TERM "$listen_pid"
        wait "$listen_pid" || true
        listen_pid=""
    fi
    after=$("${PSQL[@]}" -d "$db" -At -c "SELECT count(*) FROM booking")
    [ $((after - before)) -eq $((n * per)) ] ||
        die "$name: $((after - before)) bookings made, $((n * per)) expected"
}

# minimal_run NAME CLIENTS NOTIFY: the minimal durable booking transaction
# (minimal.pgbench, prepared statements) on its own copy of the data, whose
# slots are all made free again first.  Checks that every transaction
# booked a slot.
minimal_run() {
    local name=$1 n=$2 notify=$3 per=$((BOOKINGS / $2)) booked
    "${PSQL[@]}" -d bench_min -c "BEGIN" -c "SET LOCAL session_replication_role = replica" \
        -c "UPDATE slot SET status = 'free' WHERE status = 'booked'" -c "COMMIT" \
        -c "VACUUM ANALYZE slot" -c "VACUUM ANALYZE event"
    "${PSQL[@]}" -d postgres -c CHECKPOINT
    pgbench_exec "$name" bench_min prepared "$n" "$per" "$SRC/bench/minimal.pgbench" \
        -D notify="$notify" -D base=$((slot_first - 1)) -D per_client="$per" -D seq=0
    booked=$("${PSQL[@]}" -d bench_min -At -c "SELECT count(*) FROM slot WHERE status = 'booked'")
    [ "$booked" -eq $((n * per)) ] || die "$name: $booked slots booked, $((n * per)) expected"
}

# pgbench_prepare: checks the script and builds the request JSON as snpd
# builds it (dispatch_request_create) for the benchmark patient; born in
# 1980, so the age is this year's difference.
pgbench_prepare() {
    check_pgbench_sql
    local deadline age
    deadline=$(TZ=Europe/Paris date -d '+48 hours' +%Y-%m-%dT%H:%M:%S%:z)
    age=$(($(date +%Y) - 1980))
    request="{\"client_ref\":\"pgb-@REF@\",\"motif\":\"ent\",\"urgency\":\"48h\","
    request+="\"deadline\":\"$deadline\",\"modes\":[\"office\",\"home\",\"teleconsultation\"],"
    request+="\"patient_commune\":\"35236\",\"patient_birth_year\":1980,\"patient_age\":$age,"
    request+="\"patient_sex\":\"female\",\"has_mt\":false,\"priority_groups\":[],"
    request+="\"source\":{\"pharmacy\":{\"protocol\":\"sore_throat\",\"test_result\":\"positive\"}}}"
}

# pgss_reset: forgets what pg_stat_statements gathered (BENCH_PGSS=1), in
# every database (it is one view of the cluster).
pgss_reset() {
    [ "${BENCH_PGSS:-}" != 1 ] ||
        "${PSQL[@]}" -d bench -Atc "SELECT pg_stat_statements_reset()" >/dev/null
}

# pgss_report DB N: the statements run in database DB since pgss_reset
# (BENCH_PGSS=1), by total time per booking (N bookings), nested ones
# included: a function's time contains its statements', so the lines do not
# add up.  Through snpd (DB bench) this also shows what snpd's other
# connections ran meanwhile: the listener's reads, the outbox, the jobs.
pgss_report() {
    [ "${BENCH_PGSS:-}" = 1 ] || return 0
    echo "  where the time went in $1, µs per booking (pg_stat_statements, nested included):"
    "${PSQL[@]}" -d bench -AtF $'\t' -c "
        SELECT round((total_exec_time * 1000 / $2)::numeric, 1), round((calls::numeric / $2), 2),
               regexp_replace(left(query, 90), '\s+', ' ', 'g')
          FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$1')
         ORDER BY total_exec_time DESC LIMIT 30" |
        awk -F '\t' '{ printf "    %8s  x%-5s %s\n", $1, $2, $3 }'
}

# Each pgbench database's clients take slot ids after pg_base; pg_run makes
# client_refs unique from one run to the next.
pg_base=0
pg_run=1

# pgbench_level N R: pgbench with N clients, run R: snpd's SQL with the
# extended protocol then prepared, then the minimal booking without and with
# a notification.
pgbench_level() {
    local n=$1 r=$2 per=$((BOOKINGS / $1)) run=$((pg_run + 1))
    settle
    pgbench_run "pgbench-extended-$n-$r" bench_pgx extended "$n" "$per" "$pg_base" "$run"
    settle
    pgss_reset
    pgbench_run "pgbench-prepared-$n-$r" bench_pgp prepared "$n" "$per" "$pg_base" "$run"
    pgss_report bench_pgp $((n * per))
    pg_base=$((pg_base + BOOKINGS))
    pg_run=$run
    minimal_run "minimal-$n-$r" "$n" 0
    minimal_run "minimal-notify-$n-$r" "$n" 1
}

# --- 1 and 2: booking through snpd, and pgbench with the same SQL ----------
#
# For each client count, snpd's run, then pgbench's two, back to back, so
# that the work other sessions put on this machine weighs on both alike.

# idle_start: with BENCH_IDLE=N, N pharmacy connections, authenticated and
# subscribed to `requests` (the tokens of the booking clients' pharmacies
# among them), held open by snpbench connections --hold until idle_stop.
idle_start() {
    [ "$IDLE" -gt 0 ] || return 0
    setsid "$SNPBENCH" connections --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --snpd-pid "$snpd_pid" --count "$IDLE" --procs 10 --subscribe requests \
        --hold 1 >"$OUT/idle.txt" 2>&1 </dev/null &
    idle_pid=$!
    local waited=0
    until grep -q '^holding' "$OUT/idle.txt" 2>/dev/null; do
        if ! kill -0 "$idle_pid" 2>/dev/null || [ "$waited" -ge 600 ]; then
            cat "$OUT/idle.txt" >&2 || true
            die "the idle connections did not open"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "  ($(grep '^holding' "$OUT/idle.txt") during the booking runs)"
}

idle_stop() {
    [ -n "$idle_pid" ] || return 0
    kill -TERM -- "-$idle_pid" 2>/dev/null || true
    wait "$idle_pid" 2>/dev/null || true
    idle_pid=""
}

phase_booking() {
    echo
    if wants booking; then
        say "1. booking end to end through snpd (WebSocket, durable commits)," \
            "and 2. pgbench with the same SQL"
    else
        say "2. pgbench: the same two SQL calls (bench/booking.pgbench), durable commits"
    fi
    if wants booking; then
        runbench booking-warmup booking --port "$snpd_port" --tokens "$tmp/tokens.txt" \
            --clients 4 --count "$WARMUP_BOOKINGS" --run w >/dev/null
        echo "  (one client on one connection, within the protocol's rate limit:)"
        runbench booking-1conn booking --port "$snpd_port" --tokens "$tmp/tokens.txt" \
            --clients 1 --pool 1 --count "$LITERAL_BOOKINGS" --run l --snpd-pid "$snpd_pid" \
            --pg-pid "$pg_pid"
    fi
    if wants pgbench; then
        pgbench_prepare
        pg_base=$((slot_first - 1))
        pg_run=1
        pgbench_run pgbench-extended-warmup bench_pgx extended 4 $((WARMUP_BOOKINGS / 4)) \
            "$pg_base" 1 >/dev/null
        pgbench_run pgbench-prepared-warmup bench_pgp prepared 4 $((WARMUP_BOOKINGS / 4)) \
            "$pg_base" 1 >/dev/null
        pg_base=$((pg_base + WARMUP_BOOKINGS))
    fi
    local n r
    if wants booking; then
        idle_start
    fi
    for n in $CLIENTS; do
        for ((r = 1; r <= REPEAT; r++)); do
            settle
            quiet
            if wants booking; then
                echo "  -- $n client(s), run $r of $REPEAT, through snpd:"
                booking_run "$n" "$r"
            fi
            if wants pgbench; then
                echo "  -- $n client(s), run $r of $REPEAT, pgbench:"
                pgbench_level "$n" "$r"
            fi
        done
        if wants booking; then
            settle
            quiet
            echo "  -- $n client(s), through snpd, by the client library snpclient:"
            booking_run "$n" 1 snpclient
        fi
    done
    idle_stop
    if wants booking; then
        booking_check
    fi
}

# --- 3. Capacity query -----------------------------------------------------

phase_capacity() {
    echo
    say "3. capacity.query latency, one query at a time ($QUERIES queries per transport)"
    settle
    quiet
    # 50 connections: enough that the rate limit seldom makes a query wait
    # (waiting is not counted in its latency), few enough that snpclient's
    # poll() over its sockets stays cheap: with one connection per 38
    # queries (532) it added 0.3 ms to every query.
    runbench capacity-ws capacity --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --transport ws --count "$QUERIES" --pool 50 --snpd-pid "$snpd_pid"
    quiet
    runbench capacity-keepalive capacity --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --transport keepalive --count "$QUERIES" --snpd-pid "$snpd_pid"
    # A new TCP connection per query: fewer of them, to spare ephemeral ports.
    quiet
    runbench capacity-http capacity --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --transport http --count $((QUERIES / 2)) --snpd-pid "$snpd_pid"
}

# --- 11. FHIR slot search -----------------------------------------------------

# The SAS platform's CPTS search (docs/fhir.md) for the first 25
# practitioners (RPPS 8000000000g, identifier 8 + RPPS), with every include:
# each answers a Bundle of all their free slots in the window.  Twice: over
# the next three days (the issue's query, on data ten times denser than a
# real SNP offer: 2,500 slots an answer), then over the next 6 hours, whose
# answer is the size a real three-day offer of 25 GPs would give (about 300
# slots, bench/README.md section 11).
fhir_search() {
    local name=$1 hours=$2 label=$3
    local ids="" g ge le path total
    for g in $(seq 1 25); do
        ids+="${ids:+,}urn:oid:1.2.250.1.71.4.2.1%7C8$(printf '8%010d' "$g")"
    done
    ge=$(date -u '+%Y-%m-%dT%H:%M:%S.000%%2B00:00')
    le=$(date -u -d "+$hours hours" '+%Y-%m-%dT%H:%M:%S.000%%2B00:00')
    path="/fhir/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
    path+="&_include=Slot:service-type-reference&_include:iterate=HealthcareService:organization"
    path+="&start=ge$ge&start=le$le&schedule.actor:Practitioner.identifier=$ids&status=free"
    total=$(curl -s -H "Authorization: Bearer $(cat "$tmp/platform-token.txt")" \
        "http://127.0.0.1:$snpd_port$path" | grep -o '"total":[0-9]*' | cut -d: -f2 || true)
    FHIR_SLOTS=${total:-?}
    say "11. the SAS platform's FHIR search, 25 practitioners $label ($FHIR_SLOTS slots" \
        "in each answer), $FHIR_QUERIES searches one at a time"
    settle
    quiet
    runbench "$name" capacity --port "$snpd_port" --tokens "$tmp/platform-token.txt" \
        --transport keepalive --path "$path" --bench fhir --connections 20 \
        --count "$FHIR_QUERIES" --warmup 20 --snpd-pid "$snpd_pid"
}

phase_fhir() {
    echo
    fhir_search fhir-keepalive 72 "over 3 days"
    FHIR_SLOTS_DENSE=$FHIR_SLOTS
    fhir_search fhir-realistic 6 "over 6 hours, a real 3-day answer's size"
}

# --- 4. Connections and memory ---------------------------------------------

phase_connections() {
    echo
    say "4. $CONNECTIONS idle authenticated WebSocket connections" \
        "(snpd restarted for a clean baseline)"
    snpd_stop "$tmp/snpd.pid" >/dev/null
    start_snpd
    settle
    quiet
    runbench connections connections --port "$snpd_port" --tokens "$tmp/tokens.txt" \
        --snpd-pid "$snpd_pid" --count "$CONNECTIONS" --procs 10 --rounds 2
}

# --- 5 and 6. Pushes: fan-out, and across two processes ---------------------

# The changes are publications and withdrawals of one slot at a time by the
# first practitioner at their practice (bench/push.c).
push_args() {
    local site
    site=$("${PSQL[@]}" -d bench -At -c "SELECT id FROM site WHERE territory_id = '$TERRITORY'
                                           AND name = 'Cabinet 1'")
    printf '%s\n' --watchers-file "$tmp/watchers.txt" --gp-token "$(cat "$tmp/gp-token.txt")" \
        --site "$site" --pg-pid "$pg_pid"
}

phase_fanout() {
    echo
    say "5. a capacity push to $WATCHERS subscribers, $CHANGES changes one at a time"
    settle
    quiet
    local args
    mapfile -t args < <(push_args)
    perf_start "$snpd_pid" fanout
    runbench fanout push --port "$snpd_port" --snpd-pid "$snpd_pid" "${args[@]}" \
        --watchers "$WATCHERS" --procs "${BENCH_WATCHER_PROCS:-1}" --changes "$CHANGES" --gap-ms 100 \
        --name fanout
    perf_stop fanout
}

phase_cross() {
    echo
    say "6. a push across two snpd processes on one database: $CROSS_CHANGES changes on the" \
        "first, one subscriber on the second"
    spawn_snpd snpd-b bench
    local b_port=$spawned_port b_pid=$spawned_pid args
    wait_ready snpd-b
    settle
    quiet
    mapfile -t args < <(push_args)
    runbench cross push --port "$snpd_port" --snpd-pid "$snpd_pid" --watch-port "$b_port" \
        --watch-snpd-pid "$b_pid" "${args[@]}" --watchers 1 --procs 1 \
        --changes "$CROSS_CHANGES" --gap-ms 50 --name cross
    snpd_stop "$tmp/snpd-b.pid" >/dev/null
}

# --- 7 to 10: benchmarks on databases of their own ---------------------------

# load_db DB SLOTS GPS TOKENS: a database of its own for a benchmark, with
# every migration and the benchmark territory with SLOTS free slots (loaded
# in bulk: no notification, no foreign-key check), GPS practitioners and
# TOKENS pharmacy tokens (in $tmp/DB-tokens.txt), vacuumed and analysed.
load_db() {
    local db=$1 slots=$2 gps=$3 ntokens=$4 t0=$SECONDS
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db"
    "$SNPD" migrate --database "$(conninfo "$db")" >"$OUT/migrate-$db.log" 2>&1 ||
        die_with_log "$OUT/migrate-$db.log" "snpd migrate failed on $db"
    "$SNPBENCH" setup --slots "$slots" --gps "$gps" --tokens "$ntokens" --bulk \
        --sql "$tmp/$db.sql" --tokens-file "$tmp/$db-tokens.txt"
    "${PSQL[@]}" -d "$db" -f "$tmp/$db.sql" >/dev/null
    "${PSQL[@]}" -d "$db" -c "VACUUM ANALYZE"
    echo "  $db: $slots slots, $gps practitioners, loaded in $((SECONDS - t0)) s"
}

# ready NAME RUN: measures how long the snpd just spawned as NAME took to be
# ready (bench/ready.c), as the run named RUN.
ready() {
    local i=0
    while [ ! -s "$tmp/$1.t0" ] && [ $((i++)) -lt 50 ]; do
        sleep 0.1
    done
    runbench "$2" ready --port "$spawned_port" --pid "$spawned_pid" --t0-us "$(cat "$tmp/$1.t0")" \
        --name "$2" --log "$OUT/$1.log" --pg-pid "$pg_pid"
}

# A commune of the territory far from every site (about 140 km from Redon):
# a patient there who goes no further than 1 km can be served by no slot.
FAR_COMMUNE=35998

phase_big() {
    echo
    say "7. capacity.query over $BIG_SLOTS free slots, and 8. snpd's memory with them and" \
        "$WAITING waiting requests (a database and an snpd of their own)"
    load_db bench_big "$BIG_SLOTS" $((BIG_SLOTS / 100 > 200 ? BIG_SLOTS / 100 : 200)) 2000
    "${PSQL[@]}" -d bench_big \
        -c "INSERT INTO commune (insee, name, postal_code, latitude, longitude)
            VALUES ('$FAR_COMMUNE', 'Commune lointaine', '35000', 48.85, -1.20)" \
        -c "INSERT INTO territory_commune VALUES ('$TERRITORY', '$FAR_COMMUNE')"
    settle
    quiet
    spawn_snpd snpd-big bench_big
    local big_port=$spawned_port big_pid=$spawned_pid
    ready snpd-big ready-big
    if wants capacity100k; then
        quiet
        perf_start "$big_pid" capacity100k
        runbench capacity100k-ws capacity --port "$big_port" --tokens "$tmp/bench_big-tokens.txt" \
            --transport ws --count "$QUERIES" --pool 50 --snpd-pid "$big_pid"
        perf_stop capacity100k
        quiet
        runbench capacity100k-keepalive capacity --port "$big_port" \
            --tokens "$tmp/bench_big-tokens.txt" --transport keepalive --count "$QUERIES" \
            --snpd-pid "$big_pid"
        quiet
        runbench capacity100k-wsraw capacity --port "$big_port" \
            --tokens "$tmp/bench_big-tokens.txt" --transport wsraw --count "$QUERIES" \
            --snpd-pid "$big_pid"
    fi
    if wants waiting; then
        quiet
        perf_start "$big_pid" waiting
        runbench waiting booking --port "$big_port" --tokens "$tmp/bench_big-tokens.txt" \
            --clients 2 --count "$WAITING" --waiting-at "$FAR_COMMUNE" --run w \
            --snpd-pid "$big_pid" --pg-pid "$pg_pid"
        perf_stop waiting
        # The same state read back from the database by a new snpd.
        snpd_stop "$tmp/snpd-big.pid" >/dev/null
        quiet
        spawn_snpd snpd-big bench_big
        ready snpd-big ready-waiting
    fi
    snpd_stop "$tmp/snpd-big.pid" >/dev/null
}

phase_startup() {
    echo
    say "9. snpd's start-up over $STARTUP_SLOTS live slots (a database of its own)"
    load_db bench_1m "$STARTUP_SLOTS" $((STARTUP_SLOTS / 200 > 200 ? STARTUP_SLOTS / 200 : 200)) 10
    "${PSQL[@]}" -d postgres -c CHECKPOINT
    local r
    for r in 1 2 3; do
        quiet
        spawn_snpd snpd-1m bench_1m
        [ "$r" -eq 1 ] && perf_start "$spawned_pid" startup
        ready snpd-1m "startup-$r"
        [ "$r" -eq 1 ] && perf_stop startup
        snpd_stop "$tmp/snpd-1m.pid" >/dev/null
    done
}

# indicators_run NAME MONTH: one timed extraction of MONTH's indicators of
# the benchmark territory (snpd indicators, CSV) from bench_ind.
indicators_run() {
    local name=$1 month=$2 rc=0
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$SNPD" --database "$(conninfo bench_ind)" \
        indicators --territory "$TERRITORY" --month "$month" --format csv \
        --output "$OUT/$name.csv" >"$OUT/$name.txt" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || die_with_log "$OUT/$name.txt" "snpd indicators failed"
    read -r secs kb <"$OUT/$name.time"
    echo "RESULT name=$name bench=indicators month=$month seconds=$secs max_rss_kb=$kb" \
        "rows=$(($(wc -l <"$OUT/$name.csv") - 1))" >>"$RESULTS"
    echo "  $name: $month extracted in $secs s ($(($(wc -l <"$OUT/$name.csv") - 1)) rows," \
        "snpd indicators' peak RSS $((kb / 1024)) MB)"
}

phase_indicators() {
    echo
    say "10. monthly indicators over $EVENTS events (a database of its own)"
    local t0=$SECONDS month territories=20 months=24
    load_db bench_ind 100 200 10
    "${PSQL[@]}" -d bench_ind -v events="$EVENTS" -v territories="$territories" \
        -v months="$months" -f "$SRC/bench/events.sql" >/dev/null
    "${PSQL[@]}" -d bench_ind -c "VACUUM ANALYZE event"
    "${PSQL[@]}" -d postgres -c CHECKPOINT
    month=$(date -d "$(date +%Y-%m-15) -1 month" +%Y-%m)
    echo "  $("${PSQL[@]}" -d bench_ind -At -c "SELECT count(*) || ' events, ' ||
            count(*) FILTER (WHERE territory_id = '$TERRITORY') || ' of them in $TERRITORY, ' ||
            pg_size_pretty(pg_total_relation_size('event')) FROM event")," \
        "over $territories territories and $months months, loaded in $((SECONDS - t0)) s"
    local r
    for r in 1 2 3; do
        quiet
        indicators_run "indicators-$r" "$month"
    done
}

wants() { [[ ,$ONLY, == *,$1,* ]]; }
# Capacity first, while all 20,000 slots are free (every free slot in the
# window is a distance to compute); then bookings, which take slots.
if wants capacity; then
    phase_capacity
fi
# And the FHIR search, while the slots are free too.
if wants fhir; then
    phase_fhir
fi
if wants booking || wants pgbench; then
    phase_booking
fi
if wants connections; then
    phase_connections
fi
if wants fanout; then
    phase_fanout
fi
if wants cross; then
    phase_cross
fi
if wants capacity100k || wants waiting; then
    phase_big
fi
if wants startup; then
    phase_startup
fi
if wants indicators; then
    phase_indicators
fi

# --- Summary ---------------------------------------------------------------

# field NAME KEY: the value of KEY in the RESULT line of NAME ("" if none).
field() {
    awk -v name="$1" -v key="$2" '$2 == "name=" name {
        for (i = 3; i <= NF; i++) if (index($i, key "=") == 1) { print substr($i, length(key) + 2); exit }
    }' "$RESULTS"
}
# lat NAME KEY_PREFIX: "p50/p90/p99" in ms from the fields PREFIXp50... of NAME.
lat() {
    local a b c
    a=$(field "$1" "${2}p50")
    b=$(field "$1" "${2}p90")
    c=$(field "$1" "${2}p99")
    [ -n "$a" ] || {
        echo -
        return 0
    }
    awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "%.2f/%.2f/%.2f", a / 1000, b / 1000, c / 1000 }'
}

# share A B: A / B with two decimals, "-" when either is missing.
share() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }

# best PREFIX KEY: the name of the run PREFIX-1...PREFIX-$REPEAT with the
# highest KEY.  Other sessions' work on this machine only ever slows a run
# down: the best run is the least disturbed one, of snpd and pgbench alike.
best() {
    local r v top="" name=""
    for ((r = 1; r <= REPEAT; r++)); do
        v=$(field "$1-$r" "$2")
        [ -n "$v" ] || continue
        if [ -z "$top" ] || awk -v a="$v" -v b="$top" 'BEGIN { exit !(a > b) }'; then
            top=$v
            name=$1-$r
        fi
    done
    echo "$name"
}

# capacity_rows PREFIX TRANSPORT...: one summary row per transport of the
# capacity runs PREFIX-TRANSPORT.
capacity_rows() {
    local prefix=$1 t
    shift
    for t in "$@"; do
        printf '  %-10s %-20s (%s us; %s%%)\n' "$t" "$(lat "$prefix-$t" "")" \
            "$(field "$prefix-$t" snpd_cpu_us)" "$(field "$prefix-$t" others_pct)"
    done
}

echo
echo "Summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m); snpd $version)"
if wants booking || wants pgbench; then
    echo
    echo "Booking, durable: bookings/s and latency p50/p90/p99 in ms, best of $REPEAT runs" \
        "of $BOOKINGS bookings by the bare WebSocket client; pgbench -M prepared, as snpd" \
        "sends them, and the ratio to it; -M extended, unnamed statements, and one run" \
        "through the client library snpclient, beside"
    printf '  %-7s %-7s %-19s %-20s %-7s %-20s %-5s %-11s %s\n' clients snpd accept \
        create+accept pgbench "pgbench latency" ratio "-M extended" snpclient
    for n in $CLIENTS; do
        b=$(best "booking-$n" per_s)
        x=$(best "pgbench-prepared-$n" tps)
        s=$(field "$b" per_s)
        t=$(field "$x" tps)
        ratio=$(share "$s" "$t")
        printf '  %-7s %-7s %-19s %-20s %-7s %-20s %-5s %-11s %s\n' "$n" "${s:--}" \
            "$(lat "$b" accept_)" "$(lat "$b" total_)" "${t:--}" "$(lat "$x" "")" "$ratio" \
            "$(field "$(best "pgbench-extended-$n" tps)" tps)" \
            "$(field "booking-snpclient-$n" per_s)"
    done
    if wants booking; then
        echo "  one client on one connection: $(field booking-1conn per_s) bookings/s" \
            "(20 messages/s per connection: 10 bookings/s once the burst of 40 is spent)"
        echo
        echo "CPU per booking in us, snpd / PostgreSQL / clients, in the runs above" \
            "(and the share of the machine other processes took)"
        for n in $CLIENTS; do
            b=$(best "booking-$n" per_s)
            x=$(best "pgbench-prepared-$n" tps)
            c=booking-snpclient-$n
            echo "  $n client(s): through snpd $(field "$b" snpd_cpu_us) /" \
                "$(field "$b" pg_cpu_us) / $(field "$b" client_cpu_us)" \
                "($(field "$b" others_pct)%); by snpclient $(field "$c" snpd_cpu_us) /" \
                "$(field "$c" pg_cpu_us) / $(field "$c" client_cpu_us)" \
                "($(field "$c" others_pct)%); pgbench - / $(field "$x" pg_cpu_us) /" \
                "$(field "$x" client_cpu_us) ($(field "$x" others_pct)%)"
        done
    fi
    if wants pgbench; then
        echo
        echo "The machine's limit: the minimal durable booking (bench/minimal.pgbench, one" \
            "slot update, one event, no trigger), tps, latency p50/p90/p99 in ms and" \
            "PostgreSQL's CPU per transaction in us; the same with one NOTIFY; snpd's rate and" \
            "pgbench's with snpd's SQL as a share of the minimal"
        printf '  %-7s %-8s %-17s %-6s %-8s %-6s %-12s %s\n' clients minimal latency cpu \
            +notify cpu snpd/minimal pgbench/minimal
        for n in $CLIENTS; do
            m=$(best "minimal-$n" tps)
            mn=$(best "minimal-notify-$n" tps)
            t=$(field "$m" tps)
            s=$(field "$(best "booking-$n" per_s)" per_s)
            x=$(field "$(best "pgbench-prepared-$n" tps)" tps)
            printf '  %-7s %-8s %-17s %-6s %-8s %-6s %-12s %s\n' "$n" "${t:--}" "$(lat "$m" "")" \
                "$(field "$m" pg_cpu_us)" "$(field "$mn" tps)" "$(field "$mn" pg_cpu_us)" \
                "$(share "$s" "$t")" "$(share "$x" "$t")"
        done
    fi
fi
if wants capacity; then
    echo
    echo "Capacity query, one at a time: p50/p90/p99 in ms (snpd CPU per query;" \
        "other processes' share of the machine)"
    capacity_rows capacity ws keepalive http
fi
if wants fhir; then
    echo
    echo "FHIR slot search, 25 practitioners: p50/p90/p99 in ms (target p99 < 5 ms);" \
        "keepalive: over 3 days ($FHIR_SLOTS_DENSE slots an answer), realistic: over 6 hours" \
        "($FHIR_SLOTS slots, the size of a real 3-day answer)"
    capacity_rows fhir keepalive realistic
fi
if wants connections; then
    echo
    echo "Connections: $(field connections opened) of $CONNECTIONS open; snpd VmRSS" \
        "$(field connections rss_before_mb) MB idle, $(field connections rss_open_mb) MB with" \
        "them ($(field connections mb_per_10k) MB per 10,000 above idle);" \
        "$(field connections rss_last_open_mb) MB with them open again in round" \
        "$(field connections rounds)"
fi
# ms NAME KEY: the value of KEY (microseconds) of NAME in ms, "-" if none.
ms() { awk -v v="$(field "$1" "$2")" 'BEGIN { if (v == "") print "-"; else printf "%.2f", v / 1000 }'; }
for p in fanout cross; do
    wants "$p" || continue
    echo
    echo "Push, $p: $(field "$p" watchers) subscriber(s), $(field "$p" changes) changes;" \
        "change sent -> subscriber p50/p90/p99/max $(ms "$p" p50)/$(ms "$p" p90)/$(ms "$p" p99)/$(ms "$p" max) ms" \
        "(target p99 <= $([ "$p" = fanout ] && echo 20 || echo 100) ms); missing $(field "$p" missing)," \
        "twice $(field "$p" twice); others $(field "$p" others_pct)%"
done
if wants capacity100k; then
    echo
    echo "Capacity query over $BIG_SLOTS free slots: p50/p90/p99 in ms (target p99 <= 1 ms)"
    capacity_rows capacity100k ws keepalive wsraw
fi
if wants waiting; then
    echo
    echo "Memory with $(field waiting live_slots) open slots and $(field waiting waiting) waiting" \
        "requests: VmRSS $(field waiting rss_before_mb) MB before them, $(field waiting rss_after_mb) MB" \
        "after; $(field ready-waiting rss_mb) MB once read back at a restart, ready after" \
        "$(field ready-waiting ready_ms) ms (\"ready\" logged after $(field ready-waiting logged_ready_ms) ms);" \
        "creation p50/p99 $(ms waiting create_p50)/$(ms waiting create_p99) ms"
fi
if wants startup; then
    echo
    echo "Start-up over $STARTUP_SLOTS slots (target <= 2000 ms): ready after" \
        "$(field startup-1 ready_ms) / $(field startup-2 ready_ms) / $(field startup-3 ready_ms) ms;" \
        "snpd's CPU until then $(field startup-1 cpu_ms) / $(field startup-2 cpu_ms) / $(field startup-3 cpu_ms) ms," \
        "PostgreSQL's $(field startup-1 pg_cpu_ms) / $(field startup-2 pg_cpu_ms) / $(field startup-3 pg_cpu_ms) ms," \
        "minor page faults $(field startup-1 minflt) / $(field startup-2 minflt) / $(field startup-3 minflt);" \
        "VmRSS $(field startup-3 rss_mb) MB, peak $(field startup-3 hwm_mb) MB"
fi
if wants indicators; then
    echo
    echo "Indicators of one month over $EVENTS events (target <= 5 s):" \
        "$(field indicators-1 seconds) / $(field indicators-2 seconds) / $(field indicators-3 seconds) s"
fi
echo
echo "Goals: booking >= 0.9 x pgbench; booking p99 < 5 ms; capacity p99 < 1 ms;" \
    "10,000 connections in 150 MB; push p99 <= 20 ms to 1,000 subscribers, <= 100 ms across" \
    "processes; capacity p99 < 1 ms at 100,000 slots; start-up <= 2 s at 1,000,000 slots;" \
    "indicators <= 5 s over 5,000,000 events"
mkdir -p "$SNP_ROOT/build-bench"
cp "$RESULTS" "$SNP_ROOT/build-bench/last-results.txt"
say "RESULT lines kept in build-bench/last-results.txt"
