#!/usr/bin/env bash
# deploy/ha/up.sh: starts a three-node PostgreSQL 15 cluster under Patroni on
# this one machine, for trying and testing snpd's high availability: one etcd
# member, three Patroni nodes (one primary, one synchronous standby, one
# asynchronous replica), and HAProxy routing to the current primary.  It
# waits until all of it is ready, creates the role and database "snpd", and
# prints snpd's connection string.  Everything lives in DIR (created; must not
# hold a set-up already) and listens on 127.0.0.1 only, on free ports drawn at
# random.  Stop it with deploy/ha/down.sh DIR.
#
#   deploy/ha/up.sh DIR
#
# Written in DIR: ha.env (ports, pids and paths, for scripts and tests),
# snpd.conninfo (snpd's connection string, through HAProxy), the rendered
# configurations, one folder per node (data, socket, patroni.log) and the
# logs of etcd and HAProxy.  Needs the Debian packages patroni, etcd-server
# and haproxy (deploy/install.sh --ha).
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=deploy/ha/ha.sh
. "$SNP_ROOT/deploy/ha/ha.sh"

case ${1:-} in
'' | -h | --help)
    usage
    [ -n "${1:-}" ] && exit 0
    exit 2
    ;;
esac
[ $# -eq 1 ] || die "one argument expected: DIR (try --help)"

# haproxy is in /usr/sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin
for tool in patroni etcd haproxy; do
    command -v "$tool" >/dev/null ||
        die "$tool is missing: run deploy/install.sh --ha (Debian packages patroni, etcd-server, haproxy)"
done
require_owner_user
bindir=$(pg_bindir)

mkdir -p "$1"
DIR=$(realpath -- "$1")
if [ -e "$DIR/ha.env" ]; then
    die "$DIR already holds a set-up (each run makes a new one): stop and delete it with deploy/ha/down.sh --purge $DIR, or choose another folder"
fi
own "$DIR"
chmod 0755 "$DIR"
if is_root && ! owner_can_enter "$DIR"; then
    die "user $SNP_USER cannot traverse $DIR; choose a folder it can reach (not under /root)"
fi
# The longest Unix socket path: DIR/nodeN/run/.s.PGSQL.NNNNN.
if [ $((${#DIR} + 27)) -gt 107 ]; then
    die "folder path too long for PostgreSQL's Unix sockets (${#DIR} bytes): $DIR"
fi

# --- Ports and secrets -------------------------------------------------------

picked=()
# pick: prints a free port from 24000-31999 that is not in "picked" (nothing
# listens on the ports picked before until the processes start); the caller
# adds it there, since this runs in a subshell.  The range is below Linux's
# ephemeral ports (32768-60999), which the kernel hands to every program
# asking for "any free port" (the tests' snpd processes do) and could give
# away between this pick and the start.
pick() {
    local port
    while :; do
        port=$(pick_random_port 24000 31999)
        if [[ " ${picked[*]} " != *" $port "* ]]; then
            echo "$port"
            return 0
        fi
    done
}
etcd_port=$(pick)
picked+=("$etcd_port")
etcd_peer_port=$(pick)
picked+=("$etcd_peer_port")
proxy_port=$(pick)
picked+=("$proxy_port")
declare -A pg_port rest_port
for node in "${HA_NODES[@]}"; do
    pg_port[$node]=$(pick)
    picked+=("${pg_port[$node]}")
    rest_port[$node]=$(pick)
    picked+=("${rest_port[$node]}")
done

secret() {
    openssl rand -hex 16
}
superuser_password=$(secret)
replication_password=$(secret)
snpd_password=$(secret)

locale=C
if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
    locale=C.UTF-8
fi
scope="snpd-$(printf '%s' "$DIR" | sha256sum | cut -c1-8)"

# --- Configuration -------------------------------------------------------------

# render TEMPLATE OUTPUT NAME=VALUE...: copies TEMPLATE to OUTPUT with each
# @NAME@ replaced (values hold no '|' and no newline), owned by the cluster
# owner and readable by it only (the files hold passwords).
render() {
    local template=$1 out=$2 pair expr=()
    shift 2
    for pair in "$@"; do
        expr+=(-e "s|@${pair%%=*}@|${pair#*=}|g")
    done
    (umask 077 && sed "${expr[@]}" "$template" >"$out")
    own "$out"
}

servers=""
for node in "${HA_NODES[@]}"; do
    mkdir -p "$DIR/$node/run"
    own "$DIR/$node" "$DIR/$node/run"
    chmod 0700 "$DIR/$node" "$DIR/$node/run"
    render "$SNP_ROOT/deploy/ha/patroni.yml.in" "$DIR/$node/patroni.yml" \
        SCOPE="$scope" NAME="$node" DIR="$DIR" BINDIR="$bindir" LOCALE="$locale" \
        REST_PORT="${rest_port[$node]}" PG_PORT="${pg_port[$node]}" ETCD_PORT="$etcd_port" \
        SUPERUSER_PASSWORD="$superuser_password" REPLICATION_PASSWORD="$replication_password"
    servers+="    server $node 127.0.0.1:${pg_port[$node]} check port ${rest_port[$node]}"$'\n'
done
render "$SNP_ROOT/deploy/ha/haproxy.cfg.in" "$DIR/haproxy.cfg" PROXY_PORT="$proxy_port" SERVERS=""
printf '%s' "$servers" | as_owner tee -a "$DIR/haproxy.cfg" >/dev/null

# --- Start -------------------------------------------------------------------------

# start NAME PIDFILE LOG COMMAND...: starts COMMAND as the cluster owner in the
# background, in a session of its own (it outlives this script and its
# terminal), and writes its pid.
start() {
    local name=$1 pidfile=$2 log=$3
    shift 3
    touch "$log"
    own "$log"
    (
        cd "$DIR"
        exec_as_owner setsid "$@"
    ) </dev/null >>"$log" 2>&1 &
    echo $! >"$pidfile"
    say "started $name (pid $!, log: $log)"
}

# wait_for WHAT SECONDS COMMAND...: runs COMMAND every 200 ms until it
# succeeds; stops the script (after stopping what was started) past SECONDS.
wait_for() {
    local what=$1 seconds=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "$what: not ready after $seconds s; stopping what was started"
            "$SNP_ROOT/deploy/ha/down.sh" "$DIR" >&2 || true
            die "$what did not become ready (logs in $DIR)"
        fi
        sleep 0.2
    done
}

# Written first, so that down.sh finds the pid files if anything fails below.
{
    echo "# Written by deploy/ha/up.sh: the local Patroni set-up in this folder."
    echo "HA_DIR='$DIR'"
    echo "HA_SCOPE=$scope"
    echo "HA_ETCD_PORT=$etcd_port"
    echo "HA_PROXY_PORT=$proxy_port"
    echo "HA_NODES='${HA_NODES[*]}'"
    for node in "${HA_NODES[@]}"; do
        echo "HA_PG_PORT_$node=${pg_port[$node]}"
        echo "HA_REST_PORT_$node=${rest_port[$node]}"
    done
} >"$DIR/ha.env"

start etcd "$DIR/etcd.pid" "$DIR/etcd.log" etcd --name etcd1 --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "etcd1=http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster-token "$scope" --initial-cluster-state new
# status_is CODE URL: true when a GET of URL answers CODE.
status_is() {
    [ "$(http_status "$2")" = "$1" ]
}
wait_for etcd 30 status_is 200 "http://127.0.0.1:$etcd_port/health"

# The first node bootstraps the cluster (initdb); the others then copy it
# (pg_basebackup) and follow.
for node in "${HA_NODES[@]}"; do
    start "patroni $node" "$DIR/$node/patroni.pid" "$DIR/$node/patroni.log" \
        patroni "$DIR/$node/patroni.yml"
    if [ "$node" = "${HA_NODES[0]}" ]; then
        wait_for "the primary ($node)" 60 status_is 200 "http://127.0.0.1:${rest_port[$node]}/primary"
    fi
done

# ready_replicas: true once both replicas stream and one is synchronous.
ready_replicas() {
    local node sync=0
    for node in "${HA_NODES[@]:1}"; do
        [ "$(ha_rest_status "${rest_port[$node]}" /replica)" = 200 ] || return 1
        [ "$(ha_rest_status "${rest_port[$node]}" /sync)" = 200 ] && sync=$((sync + 1))
    done
    [ "$sync" -eq 1 ]
}
wait_for "the replicas (one synchronous)" 90 ready_replicas

start haproxy "$DIR/haproxy.pid" "$DIR/haproxy.log" haproxy -f "$DIR/haproxy.cfg"
wait_for haproxy 30 tcp_port_open 127.0.0.1 "$proxy_port"

# --- snpd's role and database --------------------------------------------------------

# Through the primary's Unix socket, as the cluster owner (trust): once, at
# creation.  snpd creates its tables itself (migrations at start).
primary=${HA_NODES[0]}
say "creating the role and database snpd"
as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/$primary/run" -p "${pg_port[$primary]}" \
    -U postgres -d postgres -v pw="$snpd_password" >>"$DIR/$primary/patroni.log" 2>&1 <<'SQL' ||
CREATE ROLE snpd LOGIN PASSWORD :'pw';
CREATE DATABASE snpd OWNER snpd ENCODING 'UTF8';
REVOKE CONNECT ON DATABASE snpd FROM PUBLIC;
SQL
    die_with_log "$DIR/$primary/patroni.log" "cannot create the role and database snpd"

conninfo="host=127.0.0.1 port=$proxy_port dbname=snpd user=snpd password=$snpd_password"
conninfo+=" target_session_attrs=read-write"
(umask 077 && echo "$conninfo" >"$DIR/snpd.conninfo")
echo "HA_CONNINFO_FILE='$DIR/snpd.conninfo'" >>"$DIR/ha.env"

echo
echo "Patroni cluster $scope is up in $DIR:"
for node in "${HA_NODES[@]}"; do
    role=replica
    [ "$(ha_rest_status "${rest_port[$node]}" /primary)" = 200 ] && role=primary
    [ "$(ha_rest_status "${rest_port[$node]}" /sync)" = 200 ] && role="synchronous standby"
    printf '  %s  PostgreSQL 127.0.0.1:%s  REST http://127.0.0.1:%s  %s\n' \
        "$node" "${pg_port[$node]}" "${rest_port[$node]}" "$role"
done
echo "  etcd     http://127.0.0.1:$etcd_port"
echo "  HAProxy  127.0.0.1:$proxy_port (to the primary)"
echo
echo "snpd's connection string (also in $DIR/snpd.conninfo):"
echo "  $conninfo"
echo "Cluster state: patronictl -c $DIR/node1/patroni.yml list"
echo "Stop:          deploy/ha/down.sh $DIR"
