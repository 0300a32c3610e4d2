#!/bin/sh
# tests/layers.sh SOURCE_DIR: the map of the house (README, "folder, what lives
# there, what it may include") as a check.  Every #include "folder/..." of a
# source file must name a folder (or, for dispatcher/config.h, the one file)
# its own folder may include; fails naming each one that does not.
set -eu
cd "$1"
status=0
check() { # FOLDER ALLOWED...: the quoted includes of FOLDER's own files
    folder=$1
    shift
    for f in $(find "$folder" -maxdepth 1 -name '*.[ch]' | sort); do
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_/]*\/[a-z_0-9.]*\)".*/\1/p' "$f"); do
            dir=${inc%/*}
            ok=false
            for a in "$@"; do
                if [ "$dir" = "$a" ] || [ "$inc" = "$a" ]; then
                    ok=true
                fi
            done
            if [ "$ok" = false ]; then
                echo "layers: $f includes $inc, which $folder/ may not (allowed: $*)"
                status=1
            fi
        done
    done
}
check base base
check protocol base protocol
check clients/lib clients/lib
check clients/cli base protocol clients/lib clients/cli
# The server, bottom to top: each layer may include those below it.
config=dispatcher/config.h
check dispatcher/net base protocol $config dispatcher/net
check dispatcher/db base protocol $config dispatcher/net dispatcher/db
check dispatcher/jobs base protocol $config dispatcher/net dispatcher/db dispatcher/jobs
check dispatcher/core base protocol $config dispatcher/net dispatcher/db dispatcher/core
check dispatcher/commands base protocol $config dispatcher/net dispatcher/db dispatcher/jobs \
    dispatcher/core dispatcher/commands
check dispatcher base protocol dispatcher dispatcher/net dispatcher/db dispatcher/jobs \
    dispatcher/core dispatcher/commands
for sub in bench; do
    check "$sub" base protocol clients/lib bench dispatcher/core
done
# Internal headers: only the files of their module.
internal() { # HEADER PREFIX: dispatcher/HEADER is included only by dispatcher/PREFIX*.c
    for f in $(grep -rl "#include \"dispatcher/$1\"" --include='*.[ch]' \
        base protocol clients dispatcher tests bench fuzz | sort); do
        case "$f" in
        dispatcher/"$2"*.c) ;;
        *)
            echo "layers: $f includes dispatcher/$1, internal to dispatcher/$2*.c"
            status=1
            ;;
        esac
    done
}
internal net/server_internal.h net/server
internal core/dispatch_internal.h core/dispatch
if [ "$status" = 0 ]; then
    echo "layers: every include follows the map"
fi
exit "$status"
