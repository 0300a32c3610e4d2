#!/usr/bin/env bash
# deploy/ha/down.sh: stops the local Patroni set-up that deploy/ha/up.sh
# started in DIR: HAProxy, the three Patroni nodes (each stops its
# PostgreSQL), then etcd.  Only the processes whose pids up.sh wrote in DIR
# are signalled.  The data stays in DIR unless --purge is given.
#
#   deploy/ha/down.sh [--purge] DIR
#
#   --purge   then delete DIR
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=deploy/ha/ha.sh
. "$SNP_ROOT/deploy/ha/ha.sh"

purge=false
dir=""
while [ $# -gt 0 ]; do
    case $1 in
    --purge) purge=true ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*) die "unknown option: $1 (try --help)" ;;
    *)
        [ -z "$dir" ] || die "one folder expected (try --help)"
        dir=$1
        ;;
    esac
    shift
done
[ -n "$dir" ] || die "DIR expected (try --help)"
[ -d "$dir" ] || die "no such folder: $dir"
DIR=$(realpath -- "$dir")
[ -f "$DIR/ha.env" ] || die "$DIR holds no set-up of deploy/ha/up.sh (no ha.env)"

say "stopping the set-up in $DIR"
ha_stop_pidfile "$DIR/haproxy.pid" haproxy
# The nodes stop together: Patroni stops its PostgreSQL on SIGTERM.
for node in "${HA_NODES[@]}"; do
    ha_stop_pidfile "$DIR/$node/patroni.pid" patroni &
done
wait
# A PostgreSQL left behind by a Patroni that was killed.
for node in "${HA_NODES[@]}"; do
    if [ -f "$DIR/$node/data/postmaster.pid" ] && pg_cluster_running "$DIR/$node/data"; then
        pg_cluster_stop "$DIR/$node/data" immediate || true
    fi
done
ha_stop_pidfile "$DIR/etcd.pid" etcd

if $purge; then
    say "deleting $DIR"
    rm -rf "$DIR"
fi
