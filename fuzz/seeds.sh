#!/usr/bin/env bash
# fuzz/seeds.sh: writes the seed inputs that come from the specification
# into fuzz/corpus/, so that fuzzing starts from real messages.
#
#   fuzz/seeds.sh           rewrites fuzz/corpus/*/spec-* from protocol/snp.v1.md
#                           and deploy/snpd.conf.example
#   fuzz/seeds.sh --check   exits 1 when the committed seeds differ from them
#                           (the fuzz step of deploy/test.sh runs it)
#
# codec/spec-NAME-N.json   the N-th JSON example under the heading NAME of
#                          protocol/snp.v1.md: WebSocket requests, responses,
#                          pushes and errors
# http/spec-NAME-N.txt     its N-th curl example, as "METHOD PATH?QUERY",
#                          a line feed, then the body
# config/spec-snpd.conf    the documented example configuration
#
# The other seeds of fuzz/corpus/ are written by hand or are inputs that
# once crashed a target; this script leaves them alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=false
case ${1:-} in
--check) check=true ;;
"") ;;
*)
    echo "usage: fuzz/seeds.sh [--check]" >&2
    exit 2
    ;;
esac

out=$(mktemp -d "${TMPDIR:-/tmp}/snp-seeds.XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/codec" "$out/http" "$out/config"

# Headings name the seeds: "#### `slot.publish`" gives slot.publish, "## 5.
# Limits and bad input" gives 5-limits-and-bad-input.
awk -v out="$out" '
function slug(s) {
    s = tolower(s)
    gsub(/[`.]$/, "", s)
    gsub(/`/, "", s)
    gsub(/\. /, " ", s)
    gsub(/[^a-z0-9.]+/, "-", s)
    gsub(/^-+|-+$/, "", s)
    return s
}
/^#+ / { heading = $0; sub(/^#+ /, "", heading); name = slug(heading); next }
/^```json$/ { in_json = 1; text = ""; next }
/^```sh$/ { in_sh = 1; text = ""; next }
/^```$/ && in_json {
    in_json = 0
    file = sprintf("%s/codec/spec-%s-%d.json", out, name, ++njson[name])
    printf "%s", text > file
    close(file)
    next
}
/^```$/ && in_sh {
    in_sh = 0
    if (text !~ /^curl /)
        next
    method = "GET"
    if (match(text, /-X [A-Z]+/))
        method = substr(text, RSTART + 3, RLENGTH - 3)
    if (!match(text, /'\''http:\/\/localhost:8080[^'\'']*'\''/))
        next
    target = substr(text, RSTART + 22, RLENGTH - 23)
    body = ""
    if (match(text, /--data '\''.*'\''/)) {
        body = substr(text, RSTART + 8, RLENGTH - 9)
        gsub(/'\''\\'\'''\''/, "'\''", body)
    }
    file = sprintf("%s/http/spec-%s-%d.txt", out, name, ++nsh[name])
    printf "%s %s\n%s", method, target, body > file
    close(file)
    next
}
in_json || in_sh { text = text $0 "\n" }
' "$root/protocol/snp.v1.md"
cp "$root/deploy/snpd.conf.example" "$out/config/spec-snpd.conf"

status=0
for dir in codec http config; do
    if $check; then
        # Compares the spec-* seeds only, both ways.
        want=$(cd "$out/$dir" && ls)
        have=$(cd "$root/fuzz/corpus/$dir" && ls spec-* 2>/dev/null || true)
        if [ "$want" != "$have" ]; then
            echo "fuzz/corpus/$dir: the spec-* seeds are not those of the specification" >&2
            status=1
            continue
        fi
        for f in $want; do
            if ! cmp -s "$out/$dir/$f" "$root/fuzz/corpus/$dir/$f"; then
                echo "fuzz/corpus/$dir/$f differs from the specification" >&2
                status=1
            fi
        done
    else
        mkdir -p "$root/fuzz/corpus/$dir"
        rm -f "$root/fuzz/corpus/$dir"/spec-*
        cp "$out/$dir"/* "$root/fuzz/corpus/$dir/"
    fi
done
if $check && [ "$status" -ne 0 ]; then
    echo "run fuzz/seeds.sh to rewrite them" >&2
fi
exit "$status"
