#!/usr/bin/env bash
# deploy/reset.sh: stops snpd and the embedded PostgreSQL, then deletes var/
# (database, configuration, tokens, logs) and, when the cluster lived there,
# this checkout's folder under /var/lib/snpd.  The next deploy/run.sh starts
# from scratch.  Build folders are kept.
#
#   deploy/reset.sh
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
'') ;;
-h | --help)
    usage
    exit 0
    ;;
*) die "unknown argument: $1 (try --help)" ;;
esac

VAR=$SNP_ROOT/var

"$SNP_ROOT/deploy/stop.sh"

# This checkout's folder under /var/lib/snpd, and the one var/pg links to
# (they differ if the checkout was moved).
fallbacks=("$(state_fallback_dir)")
if [ -L "$VAR/pg" ]; then
    fallbacks+=("$(dirname "$(readlink "$VAR/pg")")")
fi
for dir in "${fallbacks[@]}"; do
    if [[ $dir == "$SNP_STATE_BASE"/* ]] && [ -d "$dir" ]; then
        say "deleting $dir (this checkout's cluster and runtime copy)"
        rm -rf "$dir"
    fi
done
if [ -e "$VAR" ] || [ -L "$VAR" ]; then
    say "deleting $VAR (database, configuration, tokens, logs)"
    rm -rf "$VAR"
else
    say "nothing to delete: $VAR does not exist"
fi
