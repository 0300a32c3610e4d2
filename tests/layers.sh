#!/bin/sh
# tests/layers.sh SOURCE_DIR: the map of the house (README, "folder, what lives
# there, what it may include") as a check.  Every #include "folder/..." of a
# source file must name a folder its own may include; fails naming each one
# that does not.
set -eu
cd "$1"
status=0
check() { # FOLDER ALLOWED...: the quoted includes of FOLDER's files
    folder=$1
    shift
    for f in $(find "$folder" -name '*.[ch]' | sort); do
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\)\/.*/\1/p' "$f"); do
            ok=false
            for a in "$@"; do
                [ "$inc" = "$a" ] && ok=true
            done
            if [ "$ok" = false ]; then
                echo "layers: $f includes $inc/, which $folder/ may not (allowed: $*)"
                status=1
            fi
        done
    done
}
check base base
check protocol base protocol
check clients/lib clients
check clients/cli base protocol clients
check dispatcher base protocol dispatcher
check bench base protocol clients bench dispatcher
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
internal server_internal.h server
internal dispatch_internal.h dispatch
if [ "$status" = 0 ]; then
    echo "layers: every include follows the map"
fi
exit "$status"
