#!/usr/bin/env bash
# deploy/run.sh: the README's run command.  Installs missing packages, builds
# snpd, prepares its database (a private PostgreSQL cluster in var/ unless
# SNPD_DATABASE_URL names an existing server), applies the migrations, loads
# the demo territory, creates one access token per role and starts snpd in the
# background.  Running it again rebuilds and restarts snpd and keeps the data.
#
#   deploy/run.sh
#
# Environment: SNPD_DATABASE_URL (use that database instead of the embedded
# cluster), SNPD_PORT (HTTP port, default 8080); the other SNPD_* variables
# reach snpd unchanged.  Stop with deploy/stop.sh, start afresh with
# deploy/reset.sh.
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

cd "$SNP_ROOT"

EMBEDDED_PORT=54329
TERRITORY=demo-redon
HTTP_PORT=${SNPD_PORT:-8080}
VAR=$SNP_ROOT/var
CONF=$VAR/snpd.conf
PIDFILE=$VAR/snpd.pid
LOGDIR=$VAR/log
RUNLOG=$LOGDIR/run.log
SERVER_LOG=$LOGDIR/snpd.log
TOKENS=$VAR/demo-tokens.txt
DEMO_SQL=$SNP_ROOT/sql/demo/demo_territory.sql

"$SNP_ROOT/deploy/install.sh"
require_owner_user

mkdir -p "$VAR" "$LOGDIR"
chmod 0755 "$VAR" "$LOGDIR"
: >"$RUNLOG"

# quietly COMMAND...: runs COMMAND with its output in var/log/run.log; on
# failure shows the end of that log and stops.
quietly() {
    printf '\n$ %s\n' "$*" >>"$RUNLOG"
    "$@" >>"$RUNLOG" 2>&1 || die_with_log "$RUNLOG" "failed: $*"
}

# --- Build -----------------------------------------------------------------

say "building snpd in build/ (output in var/log/run.log)"
quietly cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNP_TESTS=OFF
quietly cmake --build build -j2
SNPD=$SNP_ROOT/build/snpd

# The old server must not run against a schema that is about to change.
snpd_stop "$PIDFILE"

# --- Database --------------------------------------------------------------

PSQL=$(pg_bindir)/psql
DATADIR=""

# Sets DATADIR and SOCKDIR to var/pg and var/run, or, when root and user snpd
# cannot traverse the checkout, to folders under /var/lib/snpd that var/pg and
# var/run link to.  The choice made when the cluster was created is kept.
choose_cluster_dirs() {
    local fallback link
    # Links left dangling by a removed fallback folder are made again.
    for link in "$VAR/pg" "$VAR/run"; do
        if [ -L "$link" ] && [ ! -e "$link" ]; then
            rm -f "$link"
        fi
    done
    if [ ! -e "$VAR/pg" ] && is_root && ! owner_can_enter "$VAR"; then
        fallback=$(state_fallback_dir)
        say "user $SNP_USER cannot traverse $VAR, so the cluster goes to $fallback (var/pg and var/run link there)"
        mkdir -p "$SNP_STATE_BASE" "$fallback/pg" "$fallback/run"
        chmod 0755 "$SNP_STATE_BASE" "$fallback"
        ln -sfn "$fallback/pg" "$VAR/pg"
        ln -sfn "$fallback/run" "$VAR/run"
    fi
    mkdir -p "$VAR/pg" "$VAR/run"
    # Physical paths: user snpd may not be able to follow the links' path.
    DATADIR=$(readlink -f "$VAR/pg")
    SOCKDIR=$(readlink -f "$VAR/run")
}

if [ -n "${SNPD_DATABASE_URL:-}" ]; then
    say "using the database in SNPD_DATABASE_URL (no embedded cluster)"
    DATABASE=$SNPD_DATABASE_URL
else
    choose_cluster_dirs
    if pg_cluster_running "$DATADIR"; then
        PG_PORT=$(pg_cluster_setting "$DATADIR" port)
    else
        PG_PORT=$(pick_port "$EMBEDDED_PORT" $((EMBEDDED_PORT + 1)) $((EMBEDDED_PORT + 70)) "$SOCKDIR")
        if [ "$PG_PORT" != "$EMBEDDED_PORT" ]; then
            say "port $EMBEDDED_PORT is busy; the embedded cluster uses port $PG_PORT"
        fi
    fi
    pg_cluster_init "$DATADIR" "$SOCKDIR" "$PG_PORT"
    pg_cluster_start "$DATADIR"
    admin=$(pg_cluster_conninfo "$DATADIR" postgres)
    if [ "$("$PSQL" -X -A -t -q -d "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'snpd'")" != 1 ]; then
        say "creating database snpd"
        quietly "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE snpd"
    fi
    DATABASE=$(pg_cluster_conninfo "$DATADIR" snpd)
fi

# --- Configuration ---------------------------------------------------------

# write_conf FILE WEB_ROOT MESSAGE_FILE: writes snpd's configuration file.  It
# holds the connection string, so only its owner (and group snpd when root)
# may read it.  The messages to patients and practitioners go to MESSAGE_FILE
# (docs/messages.md), created here for the user snpd runs as: it holds
# addresses and health data, so only that user may read it.
write_conf() {
    local file=$1 web_root=$2 messages=$3
    (
        umask 077
        touch "$messages"
    )
    if is_root; then
        chown "$SNP_USER" "$messages"
    fi
    (
        umask 077
        cat >"$file" <<CONF
# Written by deploy/run.sh at each run: edits here are lost.  Every key is
# described in deploy/snpd.conf.example; SNPD_* variables override this file.
database = "$DATABASE"
listen = "127.0.0.1"
port = $HTTP_PORT
log_format = human
log_level = info
web_root = "$web_root"
message_sender = file
message_file = "$messages"
CONF
    )
    if is_root; then
        chown "root:$SNP_USER" "$file"
        chmod 0640 "$file"
    fi
}

say "writing var/snpd.conf"
write_conf "$CONF" "$SNP_ROOT/clients/web" "$VAR/messages.jsonl"

# --- Schema, demo territory, tokens ----------------------------------------

# snpd's options go before its subcommand: `snpd --config FILE migrate`.

say "applying migrations"
quietly "$SNPD" --config "$CONF" migrate

[ -f "$DEMO_SQL" ] || die "missing $DEMO_SQL"
say "loading the demo territory ($TERRITORY)"
quietly "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DATABASE" -f "$DEMO_SQL"

# query SQL: prints the single value SQL returns; stops if it returns nothing.
query() {
    local value
    value=$("$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DATABASE" -c "$1" 2>>"$RUNLOG") ||
        die_with_log "$RUNLOG" "query failed: $1"
    [ -n "$value" ] || die "the demo territory has no row for: $1"
    echo "$value"
}

say "replacing the demo access tokens"
quietly "$SNPD" --config "$CONF" token revoke --label demo

roles=(gp pharmacy emergency sas professional desk coordinator admin platform reception)
declare -A secret scope
for role in "${roles[@]}"; do
    territory=$TERRITORY
    extra=()
    case $role in
    gp)
        extra=(--practitioner "$(query "SELECT rpps FROM territory_practitioner
            WHERE territory_id = '$TERRITORY' ORDER BY rpps LIMIT 1")")
        ;;
    pharmacy | emergency | sas | professional | desk)
        # The organisation may belong to a neighbouring territory (the SAS of
        # the département has its own); the token then acts in that one.
        row=$(query "SELECT id || ' ' || territory_id FROM organisation
            WHERE kind = '$role' AND (territory_id = '$TERRITORY' OR territory_id IN
                (SELECT neighbour_id FROM territory_neighbour WHERE territory_id = '$TERRITORY'))
            ORDER BY territory_id <> '$TERRITORY', id LIMIT 1")
        territory=${row#* }
        extra=(--organisation "${row%% *}")
        ;;
    reception)
        # The reception desk of the demo's care centre (docs/rota.md).
        extra=(--site "$(query "SELECT id FROM site WHERE territory_id = '$TERRITORY'
            AND kind = 'csnp' ORDER BY id LIMIT 1")")
        ;;
    esac
    scope[$role]=$territory
    args=(--role "$role" --territory "$territory" "${extra[@]}" --label demo)
    printf '\n$ %s --config %s token create %s\n' "$SNPD" "$CONF" "${args[*]}" >>"$RUNLOG"
    secret[$role]=$("$SNPD" --config "$CONF" token create "${args[@]}" 2>>"$RUNLOG") ||
        die_with_log "$RUNLOG" "could not create the $role token"
done

(
    umask 077
    {
        echo "# Demo access tokens (label \"demo\"), one per role, replaced by each deploy/run.sh."
        echo "# role         territory    secret"
        for role in "${roles[@]}"; do
            printf '%-13s %-12s %s\n' "$role" "${scope[$role]}" "${secret[$role]}"
        done
    } >"$TOKENS"
)

# --- Start -----------------------------------------------------------------

SERVE_CONF=$CONF
SERVE_DIR=$SNP_ROOT
SERVE_BIN=$SNPD
# User snpd must reach the binary, its configuration and the web client; when
# it cannot (a checkout under /root, say), it runs copies of them.
if is_root && ! { owner_can_enter "$SNP_ROOT/clients/web" &&
    as_owner test -x "$SNPD" && as_owner test -r "$CONF"; }; then
    SERVE_DIR=$(state_fallback_dir)/app
    say "user $SNP_USER cannot reach $SNP_ROOT, so it runs a copy of snpd, its configuration and the web client from $SERVE_DIR"
    rm -rf "$SERVE_DIR"
    mkdir -p "$SERVE_DIR"
    chmod 0755 "$SNP_STATE_BASE" "$(dirname "$SERVE_DIR")" "$SERVE_DIR"
    install -m 0755 "$SNPD" "$SERVE_DIR/snpd"
    cp -R "$SNP_ROOT/clients/web" "$SERVE_DIR/web"
    chmod -R a+rX "$SERVE_DIR/web"
    SERVE_BIN=$SERVE_DIR/snpd
    SERVE_CONF=$SERVE_DIR/snpd.conf
    write_conf "$SERVE_CONF" "$SERVE_DIR/web" "$SERVE_DIR/messages.jsonl"
fi

if tcp_port_open 127.0.0.1 "$HTTP_PORT"; then
    die "port $HTTP_PORT is already in use; stop what listens there, or set SNPD_PORT"
fi

say "starting snpd on port $HTTP_PORT (log: var/log/snpd.log)"
printf -- '--- started by deploy/run.sh at %s\n' "$(date -Is)" >>"$SERVER_LOG"
# setsid: snpd leaves this terminal's session, so closing it or pressing
# Ctrl-C here does not stop the server.
(
    cd "$SERVE_DIR"
    exec_as_owner setsid "$SERVE_BIN" --config "$SERVE_CONF"
) </dev/null >>"$SERVER_LOG" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"

host=${SNPD_LISTEN:-127.0.0.1}
case $host in
0.0.0.0 | '::' | '*') host=127.0.0.1 ;;
*:*) host="[$host]" ;;
esac
scheme=http
[ -n "${SNPD_TLS_CERT:-}" ] && scheme=https
url="$scheme://$host:$HTTP_PORT"

deadline=$((SECONDS + 20))
until [ "$(http_status "$url/readyz")" = 200 ]; do
    if ! pid_alive "$pid"; then
        rm -f "$PIDFILE"
        die_with_log "$SERVER_LOG" "snpd exited during start-up"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        die_with_log "$SERVER_LOG" "snpd (pid $pid) is not ready after 20 s: $url/readyz does not answer 200; stop it with deploy/stop.sh"
    fi
    sleep 0.5
done

# --- Summary ---------------------------------------------------------------

echo
echo "snpd is running at $url/ (pid $pid)"
echo
echo "Access tokens, one per role (also in var/demo-tokens.txt):"
for role in "${roles[@]}"; do
    printf '  %-13s %-12s %s\n' "$role" "${scope[$role]}" "${secret[$role]}"
done
echo
echo "Logs:    var/log/snpd.log (snpd), var/log/run.log (build and set-up)"
if [ -n "$DATADIR" ]; then
    echo "         $(pg_cluster_log "$DATADIR") (PostgreSQL)"
    echo "Data:    $DATADIR (PostgreSQL cluster, owned by $(stat -c %U "$DATADIR"); database snpd;"
    echo "         Unix socket in $SOCKDIR, port $PG_PORT, no TCP)"
else
    echo "Data:    the database in SNPD_DATABASE_URL"
fi
echo "Config:  var/snpd.conf"
echo "Messages: $(sed -n 's/^message_file = "\(.*\)"$/\1/p' "$SERVE_CONF")   (SMS, e-mails and secure messages, written rather than sent)"
echo "Stop:    deploy/stop.sh   (snpd and the embedded PostgreSQL)"
if [ -n "$DATADIR" ]; then
    echo "Reset:   deploy/reset.sh  (stops them, then deletes var/ with the database)"
else
    echo "Reset:   deploy/reset.sh  (stops snpd, then deletes var/; the database is left alone)"
fi
