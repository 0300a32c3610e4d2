#!/usr/bin/env bash
# fuzz/run.sh: builds one libFuzzer target with clang in build-fuzz/ and runs
# it for a chosen time, then prints what it reached.
#
#   fuzz/run.sh TARGET SECONDS [LIBFUZZER_OPTIONS...]
#
#   TARGET    codec, http, csv, config, fhir or payload (fuzz/fuzz_TARGET.c)
#   SECONDS   how long to fuzz (-max_total_time)
#   options   passed on to libFuzzer, e.g. -jobs=2 or -only_ascii=1
#
# The run starts from the committed seeds of fuzz/corpus/TARGET and from what
# earlier runs found (build-fuzz/corpus/TARGET, where new inputs go).  A crash
# is saved in build-fuzz/crashes/TARGET/ and makes the script exit non-zero;
# the full output is in build-fuzz/logs/TARGET.log.  The last line gives the
# executions and libFuzzer's coverage figures: cov (code edges reached) and ft
# (features: edges with hit counts, compared values).
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

case ${1:-} in
-h | --help)
    usage
    exit 0
    ;;
esac
[ $# -ge 2 ] || die "usage: fuzz/run.sh TARGET SECONDS [LIBFUZZER_OPTIONS...] (try --help)"
target=$1
seconds=$2
shift 2
[ -f "$SNP_ROOT/fuzz/fuzz_$target.c" ] ||
    die "no target $target (fuzz/fuzz_$target.c); targets: codec, http, csv, config, fhir, payload"
case $seconds in
'' | *[!0-9]*) die "SECONDS must be a whole number, got \"$seconds\"" ;;
esac

build=$SNP_ROOT/build-fuzz
say "building fuzz_$target with clang in build-fuzz/"
fuzz_configure
cmake --build "$build" --target "fuzz_$target" -j2 >/dev/null

mkdir -p "$build/corpus/$target" "$build/crashes/$target" "$build/logs"
log=$build/logs/$target.log
say "fuzzing $target for $seconds s (output in build-fuzz/logs/$target.log)"
rc=0
"$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$target/" "$@" \
    "$build/corpus/$target" "$SNP_ROOT/fuzz/corpus/$target" >"$log" 2>&1 || rc=$?

# libFuzzer's last status line ("#123 DONE cov: 456 ft: 789 corp: ...").
last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
execs=$(grep -Eo '^stat::number_of_executed_units: [0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    die "fuzz_$target failed (exit status $rc); the input is in build-fuzz/crashes/$target/"
fi
echo "$target: $seconds s, ${execs:-?} executions, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}"
