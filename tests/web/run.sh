#!/usr/bin/env bash
# tests/web/run.sh: the browser tests of the web pages.  Starts a throwaway
# PostgreSQL cluster and a real snpd serving clients/web on free ports, loads
# the demo territory, creates one access token per role, then drives Debian's
# headless chromium through the pages with playwright-core (node --test).
# Everything it started is stopped and removed on exit, failure or Ctrl-C.
# Ends with a line "browser: N passed, M failed"; exits non-zero on failure.
#
#   tests/web/run.sh [--serve]
#
#   --serve   set everything up, print the address and the tokens, and keep
#             snpd running until Ctrl-C instead of running the tests (to look
#             at the pages by hand against a throwaway database).
#
# Needs chromium, node and npm: deploy/install.sh --browser (Debian 12's own
# nodejs 18 and npm do; the node version needed is the pinned playwright-core's
# "engines", read from package-lock.json).
# Environment:
#   SNPD_BINARY         snpd to run (default build-test/snpd)
#   SNP_WEB_ARTIFACTS   where screenshots go (default tests/artifacts/web)
#   SNP_WEB_RESULT      a file to write "PASSED FAILED" into (for deploy/test.sh)
#   SNP_WEB_HEADED=1    show the browser window (needs a display)
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

serve=false
case ${1:-} in
'') ;;
--serve) serve=true ;;
-h | --help)
    usage
    exit 0
    ;;
*) die "unknown argument: $1 (try --help)" ;;
esac

cd "$SNP_ROOT"
WEB_TESTS=$SNP_ROOT/tests/web
SNPD=${SNPD_BINARY:-$SNP_ROOT/build-test/snpd}
ARTIFACTS=${SNP_WEB_ARTIFACTS:-$SNP_ROOT/tests/artifacts/web}
TERRITORY=demo-redon
DEMO_SQL=$SNP_ROOT/sql/demo/demo_territory.sql

# write_result PASSED FAILED: tells deploy/test.sh what this run counted.
write_result() {
    if [ -n "${SNP_WEB_RESULT:-}" ]; then
        echo "$1 $2" >"$SNP_WEB_RESULT"
    fi
}
# A run that stops before the tests count as one failure.
write_result 0 1

[ -x "$SNPD" ] || die "no snpd binary at $SNPD: build it first (deploy/test.sh does), or set SNPD_BINARY"
[ -x /usr/bin/chromium ] || die "chromium is not installed: run deploy/install.sh --browser"
command -v node >/dev/null || die "node is not installed: run deploy/install.sh --browser"
command -v npm >/dev/null || die "npm is not installed: run deploy/install.sh --browser"
# The oldest node the locked playwright-core accepts (its "engines" field, a
# ">=N" range): Debian 12's nodejs is 18.
node_needed=$(cd "$WEB_TESTS" && node -p '
    const range = require("./package-lock.json").packages["node_modules/playwright-core"].engines.node;
    const m = /^>=\s*(\d+)/.exec(range);
    if (!m) throw new Error(`unexpected engines range ${range}`);
    m[1]') || die "could not read playwright-core's engines from tests/web/package-lock.json"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge "$node_needed" ] ||
    die "node $(node --version) is too old: the locked playwright-core needs $node_needed or later"

# --- playwright-core from the lock file -------------------------------------

# npm ci reinstalls from package-lock.json; --prefer-offline takes the
# package from npm's cache when it is there, so only the first run needs the
# registry.  Skipped when node_modules already matches the lock file.
if ! cmp -s "$WEB_TESTS/package-lock.json" "$WEB_TESTS/node_modules/.snp-lock" 2>/dev/null; then
    say "installing playwright-core with npm ci (tests/web/node_modules)"
    (cd "$WEB_TESTS" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed in tests/web"
    cp "$WEB_TESTS/package-lock.json" "$WEB_TESTS/node_modules/.snp-lock"
fi

# --- Throwaway cluster and snpd ---------------------------------------------

tmp=""
snpd_pid=""
node_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$node_pid" ]; then
        # node runs in its own process group with the browser it started.
        kill -TERM -- "-$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    if [ -n "$snpd_pid" ] && pid_alive "$snpd_pid"; then
        kill -TERM "$snpd_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            pid_alive "$snpd_pid" || break
            sleep 0.1
        done
        kill -KILL "$snpd_pid" 2>/dev/null || true
    fi
    if [ -n "$tmp" ]; then
        if [ -f "$tmp/data/PG_VERSION" ]; then
            pg_cluster_stop "$tmp/data" immediate >/dev/null || true
        fi
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_owner_user
tmp=$(mktemp -d "${TMPDIR:-/tmp}/snpd-web.XXXXXX")
tmp=$(realpath -- "$tmp")
own "$tmp"
chmod 0755 "$tmp"
if is_root && ! owner_can_enter "$tmp"; then
    rm -rf "$tmp"
    tmp=$(mktemp -d /tmp/snpd-web.XXXXXX)
    own "$tmp"
    chmod 0755 "$tmp"
fi

pg_port=$(pick_random_port 56000 56999 "$tmp/run")
pg_cluster_init "$tmp/data" "$tmp/run" "$pg_port" throwaway >/dev/null
pg_cluster_start "$tmp/data" >/dev/null
PSQL=$(pg_bindir)/psql
admin=$(pg_cluster_conninfo "$tmp/data" postgres)
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE snpd" >/dev/null
DATABASE=$(pg_cluster_conninfo "$tmp/data" snpd)
export SNPD_DATABASE_URL=$DATABASE
# The messages to patients and practitioners (dispatcher/jobs/sender.h) go to a
# file of the throwaway directory, removed with it: they are sent, as they
# would be, and never written to the machine's /var/lib/snpd.
export SNPD_MESSAGE_FILE=$tmp/messages.jsonl

log=$tmp/setup.log
"$SNPD" migrate >>"$log" 2>&1 || die_with_log "$log" "snpd migrate failed"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DATABASE" -f "$DEMO_SQL" >>"$log" 2>&1 ||
    die_with_log "$log" "loading the demo territory failed"

# query SQL: the single value SQL returns.
query() {
    "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DATABASE" -c "$1"
}

# One token per role, as deploy/run.sh makes them; the gp is the first
# practitioner of the territory, each requester the first organisation of its
# kind (the SAS belongs to the neighbouring département's territory).
tokens=$tmp/tokens.json
{
    echo "{"
    first=true
    for role in gp pharmacy emergency sas professional desk coordinator admin reception; do
        territory=$TERRITORY
        extra=()
        case $role in
        gp)
            rpps=$(query "SELECT rpps FROM territory_practitioner
                WHERE territory_id = '$TERRITORY' ORDER BY rpps LIMIT 1")
            extra=(--practitioner "$rpps")
            ;;
        pharmacy | emergency | sas | professional | desk)
            row=$(query "SELECT id || ' ' || territory_id FROM organisation
                WHERE kind = '$role' AND (territory_id = '$TERRITORY' OR territory_id IN
                    (SELECT neighbour_id FROM territory_neighbour WHERE territory_id = '$TERRITORY'))
                ORDER BY territory_id <> '$TERRITORY', id LIMIT 1")
            territory=${row#* }
            extra=(--organisation "${row%% *}")
            ;;
        reception)
            site=$(query "SELECT id FROM site WHERE territory_id = '$TERRITORY' AND kind = 'csnp'
                ORDER BY id LIMIT 1")
            extra=(--site "$site")
            ;;
        esac
        secret=$("$SNPD" token create --role "$role" --territory "$territory" "${extra[@]}" \
            --label web-test 2>>"$log") || die_with_log "$log" "could not create the $role token"
        $first || echo ","
        first=false
        printf '  "%s": "%s"' "$role" "$secret"
    done
    echo
    echo "}"
} >"$tokens"

# start_snpd PORT: starts snpd on PORT; true once /readyz answers 200, false
# when snpd could not bind the port (it then keeps running without a
# listener, so it is stopped here).
start_snpd() {
    local port=$1 deadline
    "$SNPD" --port "$port" --listen 127.0.0.1 --web-root "$SNP_ROOT/clients/web" \
        </dev/null >"$tmp/snpd.log" 2>&1 &
    snpd_pid=$!
    deadline=$((SECONDS + 20))
    until [ "$(http_status "http://127.0.0.1:$port/readyz")" = 200 ]; do
        pid_alive "$snpd_pid" || die_with_log "$tmp/snpd.log" "snpd exited during start-up"
        if grep -q "ERROR on binding" "$tmp/snpd.log"; then
            kill -TERM "$snpd_pid" 2>/dev/null || true
            wait "$snpd_pid" 2>/dev/null || true
            snpd_pid=""
            return 1
        fi
        [ "$SECONDS" -lt "$deadline" ] || die_with_log "$tmp/snpd.log" "snpd is not ready after 20 s"
        sleep 0.2
    done
}

# Ports below the kernel's ephemeral range (32768-60999 by default), which
# outgoing connections use without listening: a free-looking port there may
# still be taken when snpd binds it.  Another port is tried if it is.
for attempt in 1 2 3 4 5; do
    http_port=$(pick_random_port 20000 29999)
    if start_snpd "$http_port"; then
        break
    fi
    say "port $http_port was taken; trying another"
    [ "$attempt" -lt 5 ] || die_with_log "$tmp/snpd.log" "snpd could bind no port"
done
url=http://127.0.0.1:$http_port

if $serve; then
    write_result 0 0
    echo
    echo "snpd (throwaway database) at $url/"
    echo "tokens:"
    sed -n 's/^ *"\([a-z]*\)": "\(.*\)",\{0,1\}$/  \1 \2/p' "$tokens"
    echo "log: $tmp/snpd.log"
    echo "Ctrl-C stops snpd and removes the database."
    wait "$snpd_pid"
    exit 0
fi

# --- Tests --------------------------------------------------------------------

mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png
say "running the browser tests against $url (screenshots in ${ARTIFACTS#"$SNP_ROOT"/})"
out=$tmp/node-test.log
rc=0
# In the background, in its own process group, so that a signal to this
# script is handled at once (bash defers traps while a foreground command
# runs) and cleanup can stop node together with chromium.
# shellcheck disable=SC2016 # expanded by the inner bash
SNP_WEB_URL=$url SNP_WEB_TOKENS=$tokens SNP_WEB_ARTIFACTS=$ARTIFACTS SNP_WEB_PSQL=$PSQL \
    setsid bash -c 'node --test --test-reporter=spec --test-concurrency=1 "$@" 2>&1 | tee "$0"
        exit "${PIPESTATUS[0]}"' "$out" "$WEB_TESTS"/*.test.mjs </dev/null &
node_pid=$!
wait "$node_pid" || rc=$?
node_pid=""
cp "$tmp/snpd.log" "$ARTIFACTS/snpd.log"

# The spec reporter ends with "ℹ pass N" and "ℹ fail M".
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -n 1)
if [ -z "$passed" ] || [ -z "$failed" ]; then
    passed=${passed:-0}
    failed=$((${failed:-0} > 0 ? ${failed:-0} : 1))
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi
write_result "$passed" "$failed"
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
