#!/usr/bin/env bash
# deploy/test.sh: the README's test command.  Installs missing packages,
# builds the test suite, starts a throwaway PostgreSQL cluster (removed on
# exit, failure or Ctrl-C), runs every test through ctest and ends with a line
# "N passed, M failed".  Exits non-zero when any test fails.  After ctest it
# runs the fuzz targets of fuzz/ briefly (built with clang in build-fuzz/,
# SNP_FUZZ_SECONDS each, 20 by default), then the browser tests of the web
# pages (tests/web/run.sh, headless chromium), both counted in the same line.
#
#   deploy/test.sh [--sanitize] [-- CTEST_ARGS...]
#
#   --sanitize   build in build-asan with AddressSanitizer and UBSan
#                (default: build-test); skips the browser and fuzz tests
#   -- ARGS      passed on to ctest, e.g. -- -R test_migrate; skips the
#                browser and fuzz tests
#
# SNP_SKIP_BROWSER=1 skips the browser tests (and their packages);
# SNP_SKIP_FUZZ=1 skips the fuzz tests.  The failover test (test_failover:
# a Patroni cluster of deploy/ha/) needs Patroni, etcd and HAProxy, installed
# here unless SNP_SKIP_HA=1; without them ctest reports it skipped, and the
# final line counts it neither passed nor failed.
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sanitize=false
ctest_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --sanitize) sanitize=true ;;
    --)
        shift
        ctest_args=("$@")
        break
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

cd "$SNP_ROOT"

# The browser tests run in the plain variant of the whole suite.
browser_skip=""
if [ "${SNP_SKIP_BROWSER:-}" = 1 ]; then
    browser_skip="SNP_SKIP_BROWSER=1"
elif $sanitize; then
    browser_skip="--sanitize (they run without it)"
elif [ ${#ctest_args[@]} -gt 0 ]; then
    browser_skip="ctest arguments given (tests/web/run.sh runs them alone)"
fi
# So do the fuzz tests: their targets already run under ASan and UBSan.
fuzz_skip=""
if [ "${SNP_SKIP_FUZZ:-}" = 1 ]; then
    fuzz_skip="SNP_SKIP_FUZZ=1"
elif $sanitize; then
    fuzz_skip="--sanitize (they run without it, under their own sanitizers)"
elif [ ${#ctest_args[@]} -gt 0 ]; then
    fuzz_skip="ctest arguments given (fuzz/run.sh runs one target alone)"
fi
install_args=()
[ -z "$browser_skip" ] && install_args+=(--browser)
[ "${SNP_SKIP_HA:-}" = 1 ] || install_args+=(--ha)
"$SNP_ROOT/deploy/install.sh" "${install_args[@]}"
require_owner_user

if $sanitize; then
    build="build-asan"
    cmake_args=(-DSNP_TESTS=ON -DSNP_CHECK_DECLARATION=ON -DSNP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
    build="build-test"
    cmake_args=(-DSNP_TESTS=ON -DSNP_CHECK_DECLARATION=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

say "building the tests in $build/"
cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j2
if [ -z "$fuzz_skip" ]; then
    say "building the fuzz targets in build-fuzz/ (clang)"
    fuzz_configure -DSNP_FUZZ_SECONDS="${SNP_FUZZ_SECONDS:-20}"
    cmake --build build-fuzz -j2 --target fuzz
fi

# --- FHIR schema validator ---------------------------------------------------

# test_fhir validates its answers against the FHIR R4 JSON schema with the npm
# package of tests/fhir (node, like the browser tests), when
# SNP_FHIR_VALIDATOR names the script; without it that test is skipped.
fhir_skip=""
if $sanitize; then
    fhir_skip="--sanitize (it runs without it)"
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fhir_skip="node and npm are not installed (deploy/install.sh --browser)"
fi
if [ -z "$fhir_skip" ]; then
    fhir_dir=$SNP_ROOT/tests/fhir
    if ! cmp -s "$fhir_dir/package-lock.json" "$fhir_dir/node_modules/.snp-lock" 2>/dev/null; then
        say "installing the FHIR schema validator with npm ci (tests/fhir/node_modules)"
        (cd "$fhir_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
            die "npm ci failed in tests/fhir"
        cp "$fhir_dir/package-lock.json" "$fhir_dir/node_modules/.snp-lock"
    fi
    export SNP_FHIR_VALIDATOR=$fhir_dir/validate.mjs
else
    unset SNP_FHIR_VALIDATOR
    say "FHIR schema validation skipped: $fhir_skip"
fi

# --- Throwaway cluster -----------------------------------------------------

tmp=""
ctest_pid=""
web_pid=""

# Runs on every exit, including failures, Ctrl-C and SIGTERM: stops ctest and
# the cluster, then removes the cluster's folder.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$ctest_pid" ]; then
        # ctest runs in its own process group with the tests it started.
        kill -TERM -- "-$ctest_pid" 2>/dev/null || true
        wait "$ctest_pid" 2>/dev/null || true
    fi
    if [ -n "$web_pid" ]; then
        # tests/web/run.sh stops its own snpd and cluster on SIGTERM.
        kill -TERM "$web_pid" 2>/dev/null || true
        wait "$web_pid" 2>/dev/null || true
    fi
    if [ -n "$tmp" ]; then
        # A Patroni set-up a failover test left running (killed before its
        # teardown): deploy/ha/down.sh stops only what it started there.
        for ha in "$tmp"/scratch/ha.*; do
            if [ -f "$ha/ha.env" ]; then
                "$SNP_ROOT/deploy/ha/down.sh" "$ha" || true
            fi
        done
        if [ -f "$tmp/data/PG_VERSION" ]; then
            pg_cluster_stop "$tmp/data" immediate || true
        fi
        say "removing the throwaway cluster in $tmp"
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# make_tmp BASE: creates the cluster's folder under BASE, owned by user snpd
# when root; fails when that user cannot traverse it.
make_tmp() {
    tmp=$(mktemp -d "$1/snpd-test.XXXXXX")
    tmp=$(realpath -- "$tmp")
    own "$tmp"
    chmod 0755 "$tmp"
    if is_root && ! owner_can_enter "$tmp"; then
        rm -rf "$tmp"
        tmp=""
        return 1
    fi
}
if ! make_tmp "${TMPDIR:-/tmp}"; then
    say "user $SNP_USER cannot traverse ${TMPDIR:-/tmp}; using /tmp"
    make_tmp /tmp || die "user $SNP_USER cannot traverse /tmp"
fi

port=$(pick_random_port 55000 55999 "$tmp/run")
pg_cluster_init "$tmp/data" "$tmp/run" "$port" throwaway >/dev/null
pg_cluster_start "$tmp/data"
SNP_TEST_PG="host=$(conninfo_quote "$tmp/run") port=$port dbname=postgres user=$SNP_USER"
export SNP_TEST_PG
say "SNP_TEST_PG=$SNP_TEST_PG"

# --- Tests -----------------------------------------------------------------

if $sanitize; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

say "running ctest in $build/"
# The tests' scratch files (snpd's logs) go with the throwaway folder.
mkdir -p "$tmp/scratch"
export TMPDIR=$tmp/scratch
# In the background, in its own process group, so that a signal to this
# script is handled at once (bash defers traps while a foreground command
# runs) and cleanup can stop ctest together with the tests it started.
setsid ctest --test-dir "$build" --output-on-failure -j2 --no-tests=error \
    -O "$tmp/ctest.log" "${ctest_args[@]}" </dev/null &
ctest_pid=$!
rc=0
wait "$ctest_pid" || rc=$?
ctest_pid=""

# Criterion's summary line for each test program, from ctest's full log.
last_log=$build/Testing/Temporary/LastTest.log
synthesis=""
if [ -f "$last_log" ]; then
    synthesis=$(sed 's/\x1b\[[0-9;]*m//g' "$last_log" | awk '
        /^[0-9]+\/[0-9]+ Test: / { name = $3 }
        /Synthesis: / {
            sub(/.*Synthesis: /, ""); sub(/[ \t\r]+$/, "")
            printf "  %-28s %s\n", name, $0
            split($0, f, /[^0-9]+/)
            tested += f[2]; passing += f[3]; failing += f[4]; crashing += f[5]
        }
        END {
            if (tested != "")
                printf "  %-28s Tested: %d | Passing: %d | Failing: %d | Crashing: %d\n",
                    "all", tested, passing, failing, crashing
        }')
fi
if [ -n "$synthesis" ]; then
    printf '\nCriterion summaries:\n%s\n\n' "$synthesis"
fi

summary=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$tmp/ctest.log" | tail -n 1 || true)
if [ -z "$summary" ]; then
    echo "0 passed, 0 failed"
    die "ctest reported no result (exit status $rc)"
fi
failed=${summary%% *}
total=${summary##* }
# ctest counts a skipped test (SKIP_RETURN_CODE) in the total, not as failed.
skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$tmp/ctest.log" || true)
passed=$((total - failed - skipped))
if [ "$skipped" -gt 0 ]; then
    say "$skipped test(s) skipped:"
    grep -E '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$tmp/ctest.log" | sed 's/^[[:space:]]*/    /'
fi
# The failover test's figures (time to recover, bookings, errors).
if [ -f "$last_log" ] && grep -q '^\[failover\]' "$last_log"; then
    echo "Failover test:"
    grep '^\[failover\]' "$last_log" | sed 's/^/  /'
fi

# --- Fuzz tests ------------------------------------------------------------------

if [ -z "$fuzz_skip" ]; then
    say "running the fuzz targets for ${SNP_FUZZ_SECONDS:-20} s each (ctest -L fuzz in build-fuzz/)"
    # As for ctest above: in the background and its own process group.
    setsid ctest --test-dir build-fuzz --output-on-failure -j2 --no-tests=error -L fuzz \
        -O "$tmp/fuzz.log" </dev/null &
    ctest_pid=$!
    fuzz_rc=0
    wait "$ctest_pid" || fuzz_rc=$?
    ctest_pid=""
    fuzz_summary=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$tmp/fuzz.log" | tail -n 1 || true)
    if [ -n "$fuzz_summary" ]; then
        fuzz_failed=${fuzz_summary%% *}
        fuzz_total=${fuzz_summary##* }
    else
        fuzz_failed=1
        fuzz_total=1
    fi
    if [ "$fuzz_rc" -ne 0 ] && [ "$fuzz_failed" -eq 0 ]; then
        fuzz_failed=1
    fi
    # Each target's last libFuzzer status line: executions and coverage.
    if [ -f build-fuzz/Testing/Temporary/LastTest.log ]; then
        awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 }
             /^#[0-9]+[ \t]+DONE/ { sub(/^#/, ""); printf "  %-28s %s executions, %s\n", name, $1,
                                                       substr($0, index($0, "cov:")) }' \
            build-fuzz/Testing/Temporary/LastTest.log
    fi
    passed=$((passed + fuzz_total - fuzz_failed))
    failed=$((failed + fuzz_failed))
else
    say "fuzz tests skipped: $fuzz_skip"
fi

# --- Browser tests -------------------------------------------------------------

if [ -z "$browser_skip" ]; then
    say "running the browser tests (tests/web/run.sh)"
    web_result=$tmp/web-result
    SNPD_BINARY=$SNP_ROOT/$build/snpd SNP_WEB_RESULT=$web_result \
        "$SNP_ROOT/tests/web/run.sh" </dev/null &
    web_pid=$!
    web_rc=0
    wait "$web_pid" || web_rc=$?
    web_pid=""
    read -r web_passed web_failed <"$web_result" 2>/dev/null || { web_passed=0; web_failed=1; }
    if [ "$web_rc" -ne 0 ] && [ "$web_failed" -eq 0 ]; then
        web_failed=1
    fi
    passed=$((passed + web_passed))
    failed=$((failed + web_failed))
else
    say "browser tests skipped: $browser_skip"
fi

echo "$passed passed, $failed failed"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
    exit 1
fi
