# deploy/ha/ha.sh: shell functions shared by deploy/ha/up.sh and down.sh (the
# local three-node Patroni set-up).  Source it after deploy/lib.sh.
# shellcheck shell=bash

# The nodes of the local set-up, in order.
HA_NODES=(node1 node2 node3)

# ha_process_is PID NAME: true when PID is alive and its command line
# mentions NAME (the pid may have been reused since it was written).
ha_process_is() {
    [[ $1 =~ ^[0-9]+$ ]] && pid_alive "$1" &&
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# ha_stop_pidfile PIDFILE NAME: stops the process of PIDFILE if it still is
# NAME: SIGTERM, then SIGKILL after 15 s.  Removes PIDFILE.
ha_stop_pidfile() {
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if ha_process_is "$pid" "$2"; then
        stop_process "$pid" "$2" 15
    fi
    rm -f "$1"
}

# ha_rest_status PORT PATH: the HTTP status of Patroni's REST API on PORT.
ha_rest_status() {
    http_status "http://127.0.0.1:$1$2"
}
