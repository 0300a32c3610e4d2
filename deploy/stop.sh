#!/usr/bin/env bash
# deploy/stop.sh: stops what deploy/run.sh started: snpd (SIGTERM, then
# SIGKILL after 10 s) and the embedded PostgreSQL cluster in var/pg.  The data
# stay; deploy/run.sh starts everything again.
#
#   deploy/stop.sh
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

if [ -f "$VAR/snpd.pid" ]; then
    snpd_stop "$VAR/snpd.pid"
else
    say "snpd is not running (no var/snpd.pid)"
fi

if [ -f "$VAR/pg/PG_VERSION" ]; then
    datadir=$(readlink -f "$VAR/pg")
    if pg_cluster_running "$datadir"; then
        pg_cluster_stop "$datadir"
    else
        say "the embedded PostgreSQL is not running"
    fi
fi
