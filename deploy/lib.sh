# deploy/lib.sh: shell functions shared by the deploy scripts (logging, the
# repository root, running commands as the cluster owner, private PostgreSQL
# clusters).  Source it from bash; it does nothing by itself.
# shellcheck shell=bash

# The unprivileged system user that owns PostgreSQL clusters and runs snpd
# when the scripts run as root (PostgreSQL refuses to run as root).
SNP_USER=snpd

# Where clusters go when the checkout cannot be traversed by $SNP_USER.
SNP_STATE_BASE=/var/lib/snpd

# The repository root: the parent of the folder holding this file.
SNP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

SNP_SCRIPT=$(basename "${0:-snpd}")

# say MESSAGE...: one line saying what is being done.
say() {
    printf '[%s] %s\n' "$SNP_SCRIPT" "$*"
}

# usage: prints the header comment of the running script (its help text).
usage() {
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
}

# warn MESSAGE...: a problem worth knowing about that does not stop the script.
warn() {
    printf '[%s] warning: %s\n' "$SNP_SCRIPT" "$*" >&2
}

# die MESSAGE...: stops the script with an error.
die() {
    printf '[%s] error: %s\n' "$SNP_SCRIPT" "$*" >&2
    exit 1
}

# die_with_log LOGFILE MESSAGE...: shows the end of LOGFILE, then stops with
# an error.
die_with_log() {
    local log=$1
    shift
    printf '[%s] last lines of %s:\n' "$SNP_SCRIPT" "$log" >&2
    tail -n 40 "$log" | sed 's/^/    /' >&2
    die "$*"
}

is_root() {
    [ "$(id -u)" -eq 0 ]
}

# as_owner COMMAND...: runs COMMAND as the cluster owner: $SNP_USER when root,
# the invoking user otherwise.  It runs from / so that a working directory
# that $SNP_USER cannot enter does not matter.
as_owner() {
    if is_root; then
        (cd / && runuser -u "$SNP_USER" -- "$@")
    else
        "$@"
    fi
}

# exec_as_owner COMMAND...: like as_owner but replaces the current process
# (setpriv execs, where runuser would stay as a parent that kills its child two
# seconds after a SIGTERM).  Use it in a background subshell to get the real
# pid of a long-running server.
exec_as_owner() {
    if is_root; then
        exec setpriv --reuid="$SNP_USER" --regid="$SNP_USER" --init-groups -- "$@"
    else
        exec "$@"
    fi
}

# owner_can_enter DIR: true when the cluster owner can traverse DIR (and every
# folder above it).
owner_can_enter() {
    as_owner test -x "$1" 2>/dev/null
}

# own PATH...: gives PATH to the cluster owner (no-op when not root).
own() {
    if is_root; then
        chown "$SNP_USER:$SNP_USER" "$@"
    fi
}

# require_owner_user: when root, checks that $SNP_USER exists (deploy/install.sh
# creates it).
require_owner_user() {
    if is_root && ! getent passwd "$SNP_USER" >/dev/null; then
        die "user $SNP_USER does not exist; run deploy/install.sh first"
    fi
}

# pg_bindir: prints the folder holding initdb, pg_ctl, postgres and psql.
pg_bindir() {
    local dir
    if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
        echo /usr/lib/postgresql/15/bin
        return 0
    fi
    if command -v pg_config >/dev/null; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    fi
    # Any other installed major version, newest first.
    dir=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sort -V | tail -n 1)
    if [ -n "$dir" ]; then
        dirname "$dir"
        return 0
    fi
    die "PostgreSQL server binaries not found (no initdb); run deploy/install.sh"
}

# state_fallback_dir: the folder under $SNP_STATE_BASE used for this checkout
# when $SNP_USER cannot traverse it (named by a hash of the checkout path).
state_fallback_dir() {
    local hash
    hash=$(printf '%s' "$SNP_ROOT" | sha256sum | cut -c1-12)
    echo "$SNP_STATE_BASE/$hash"
}

# port_is_free PORT [SOCKETDIR]: true when no PostgreSQL socket for PORT exists
# (in SOCKETDIR, /var/run/postgresql or /tmp) and nothing accepts TCP
# connections on 127.0.0.1:PORT.
port_is_free() {
    local port=$1 sockdir=${2:-} dir
    for dir in "$sockdir" /var/run/postgresql /tmp; do
        if [ -n "$dir" ] && [ -e "$dir/.s.PGSQL.$port" ]; then
            return 1
        fi
    done
    ! tcp_port_open 127.0.0.1 "$port"
}

# tcp_port_open HOST PORT: true when something accepts TCP connections there.
tcp_port_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pick_port PREFERRED FIRST LAST [SOCKETDIR]: prints PREFERRED if free, else
# the first free port from FIRST to LAST.
pick_port() {
    local preferred=$1 first=$2 last=$3 sockdir=${4:-} port
    if port_is_free "$preferred" "$sockdir"; then
        echo "$preferred"
        return 0
    fi
    for ((port = first; port <= last; port++)); do
        if port_is_free "$port" "$sockdir"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port from $first to $last"
}

# pick_random_port FIRST LAST [SOCKETDIR]: prints a free port drawn at random
# in FIRST..LAST (so that concurrent test runs rarely collide).
pick_random_port() {
    local first=$1 last=$2 sockdir=${3:-} port i
    for ((i = 0; i < 100; i++)); do
        port=$((first + RANDOM % (last - first + 1)))
        if port_is_free "$port" "$sockdir"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found from $first to $last"
}

# conninfo_quote VALUE: VALUE quoted for a libpq connection string.
conninfo_quote() {
    local v=$1
    if [[ $v =~ ^[A-Za-z0-9_./@:-]+$ ]]; then
        printf '%s' "$v"
        return 0
    fi
    v=${v//\\/\\\\}
    v=${v//\'/\\\'}
    printf "'%s'" "$v"
}

# The settings file that pg_cluster_init writes into the data folder and
# postgresql.conf includes.
SNP_PG_SETTINGS=snpd_cluster.conf

# pg_cluster_init DATADIR SOCKETDIR PORT [durable|throwaway]: creates a private
# cluster in DATADIR unless one is there, owned by the cluster owner, with
# superuser "snpd", trust authentication on the Unix socket in SOCKETDIR only
# (no TCP), and PORT.  Settings are (re)written on every call, so an existing
# cluster moves to PORT.  "throwaway" (for tests) turns durability off and
# lets any local user reach the socket folder; the default is "durable".
# The server log goes to postgresql.log beside the data folder.
pg_cluster_init() {
    local datadir sockdir port=$3 kind=${4:-durable} bindir locale locales log
    datadir=$(realpath -m -- "$1")
    sockdir=$(realpath -m -- "$2")
    bindir=$(pg_bindir)
    require_owner_user

    # Unix socket paths are limited to 107 bytes.
    if [ $((${#sockdir} + 16)) -gt 107 ]; then
        die "socket folder path too long for a Unix socket (${#sockdir} bytes): $sockdir"
    fi

    mkdir -p "$sockdir"
    own "$sockdir"
    if [ "$kind" = throwaway ]; then
        chmod 0755 "$sockdir"
    else
        chmod 0700 "$sockdir"
    fi

    if [ ! -f "$datadir/PG_VERSION" ]; then
        mkdir -p "$datadir"
        own "$datadir"
        chmod 0700 "$datadir"
        log=$(pg_cluster_log "$datadir")
        # C.UTF-8 sorts by code point like C but knows every character.
        locales=(C)
        if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
            locales=(C.UTF-8 C)
        fi
        for locale in "${locales[@]}"; do
            say "creating PostgreSQL cluster in $datadir (locale $locale, log: $log)"
            # initdb empties DATADIR again when it fails.
            if as_owner "$bindir/initdb" -D "$datadir" -U "$SNP_USER" --auth-local=trust \
                --auth-host=reject -E UTF8 --locale="$locale" >>"$log" 2>&1; then
                break
            fi
        done
        [ -f "$datadir/PG_VERSION" ] || die_with_log "$log" "initdb failed"
        printf "\ninclude_if_exists = '%s'\n" "$SNP_PG_SETTINGS" |
            as_owner tee -a "$datadir/postgresql.conf" >/dev/null
    fi

    {
        echo "# Written by deploy/lib.sh (pg_cluster_init); rewritten on every run."
        echo "listen_addresses = ''"
        echo "port = $port"
        printf "unix_socket_directories = '%s'\n" "${sockdir//\'/\'\'}"
        if [ "$kind" = throwaway ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        else
            echo "fsync = on"
        fi
    } | as_owner tee "$datadir/$SNP_PG_SETTINGS" >/dev/null
}

# pg_cluster_log DATADIR: prints the path of the server log of DATADIR.
pg_cluster_log() {
    # The physical parent: DATADIR may be a symbolic link to the fallback folder.
    echo "$(dirname "$(readlink -f "$1")")/postgresql.log"
}

# pg_cluster_setting DATADIR NAME: prints a setting written by pg_cluster_init.
pg_cluster_setting() {
    sed -n "s/^$2 = '\{0,1\}\([^']*\)'\{0,1\}\$/\1/p" "$1/$SNP_PG_SETTINGS" | tail -n 1
}

# pg_cluster_running DATADIR: true when the server of DATADIR is running.
pg_cluster_running() {
    [ -f "$1/PG_VERSION" ] &&
        as_owner "$(pg_bindir)/pg_ctl" status -D "$(realpath -- "$1")" >/dev/null 2>&1
}

# pg_cluster_start DATADIR: starts the server of DATADIR unless it runs, and
# waits until it accepts connections.
pg_cluster_start() {
    local datadir log
    datadir=$(realpath -- "$1")
    log=$(pg_cluster_log "$datadir")
    if pg_cluster_running "$datadir"; then
        say "PostgreSQL already running ($datadir)"
        return 0
    fi
    # The owner writes the log; create it first so its folder need not be writable.
    touch "$log"
    own "$log"
    say "starting PostgreSQL on socket $(pg_cluster_setting "$datadir" unix_socket_directories), port $(pg_cluster_setting "$datadir" port) (log: $log)"
    as_owner "$(pg_bindir)/pg_ctl" start -D "$datadir" -l "$log" -w -t 60 >/dev/null ||
        die_with_log "$log" "PostgreSQL did not start"
}

# pg_cluster_stop DATADIR [MODE]: stops the server of DATADIR if it runs
# (MODE: fast by default, or immediate).
pg_cluster_stop() {
    local datadir mode=${2:-fast}
    datadir=$(realpath -- "$1")
    if pg_cluster_running "$datadir"; then
        say "stopping PostgreSQL ($datadir)"
        as_owner "$(pg_bindir)/pg_ctl" stop -D "$datadir" -m "$mode" -w -t 60 >/dev/null
    fi
}

# pg_cluster_conninfo DATADIR DBNAME: prints a libpq connection string for
# database DBNAME of the cluster in DATADIR.
pg_cluster_conninfo() {
    local sockdir port
    sockdir=$(pg_cluster_setting "$1" unix_socket_directories)
    port=$(pg_cluster_setting "$1" port)
    printf 'host=%s port=%s dbname=%s user=%s\n' "$(conninfo_quote "$sockdir")" "$port" "$2" "$SNP_USER"
}

# pid_alive PID: true while process PID exists and is not a zombie (an exited
# child that its new parent has not reaped yet: in containers whose init
# reaps late, kill -0 would keep succeeding).
pid_alive() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# stop_process PID NAME SECONDS: sends SIGTERM to PID, waits up to SECONDS
# for it to exit, then sends SIGKILL and waits up to 5 more seconds.  The
# caller has checked that PID still is the process it means (NAME, for the
# messages).
stop_process() {
    local pid=$1 name=$2 seconds=$3 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) did not stop within $seconds s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
}

# snpd_stop PIDFILE: stops the snpd whose pid PIDFILE holds, if it runs:
# SIGTERM (snpd then finishes in-flight writes and exits), and SIGKILL if it
# is still there after 10 seconds.  Removes PIDFILE.
snpd_stop() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    # Check the process is still snpd: the pid may have been reused.
    if [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" &&
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = snpd ]; then
        say "stopping snpd (pid $pid)"
        stop_process "$pid" snpd 10
    fi
    rm -f "$pidfile"
}

# http_status URL: prints the HTTP status code of a GET of URL (000 when there
# is no answer).  Uses curl when installed, else bash's /dev/tcp (plain HTTP).
http_status() {
    local url=$1 rest hostport host port path line
    if command -v curl >/dev/null; then
        curl -k -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true
        return 0
    fi
    rest=${url#http://}
    hostport=${rest%%/*}
    path=/${rest#*/}
    [ "$rest" = "$hostport" ] && path=/
    host=${hostport%:*}
    port=${hostport##*:}
    [ "$host" = "$hostport" ] && port=80
    # shellcheck disable=SC2016 # expanded by the inner bash
    line=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3
        IFS= read -r line <&3 && printf "%s" "$line"' _ "$host" "$port" "$path" 2>/dev/null) || true
    line=${line#HTTP/* }
    if [[ $line =~ ^[0-9]{3} ]]; then
        echo "${line:0:3}"
    else
        echo 000
    fi
}

# fuzz_configure: configures build-fuzz/, where clang builds the libFuzzer
# targets of fuzz/ (SNP_FUZZ; no Criterion suite), with the extra cmake
# arguments given.  Shared by fuzz/run.sh and deploy/test.sh.
fuzz_configure() {
    command -v clang >/dev/null || die "clang is missing; run deploy/install.sh"
    cmake -S "$SNP_ROOT" -B "$SNP_ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang -DSNP_FUZZ=ON \
        -DSNP_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
}
