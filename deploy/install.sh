#!/usr/bin/env bash
# deploy/install.sh: installs the Debian packages snpd needs, only those
# missing, and creates the unprivileged user "snpd" when run as root.
# Idempotent and non-interactive; uses sudo when not run as root.
#
#   deploy/install.sh [--browser] [--ha]
#
#   --browser   also install chromium and Node.js/npm (browser tests; Debian
#               12's nodejs 18 is enough for tests/web's playwright-core).
#   --ha        also install Patroni, etcd and HAProxy (deploy/ha/ and its
#               failover test).
set -euo pipefail

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Keep in step with the "Dependencies" section of README.md.
packages=(
    build-essential   # C compiler, make, libc headers
    cmake             # build system
    pkg-config        # finds the libraries below
    libuv1-dev        # event loop
    libwebsockets-dev # HTTP and WebSocket server
    libwebsockets-evlib-uv # libwebsockets' libuv event-loop plugin
    libpq-dev         # PostgreSQL client library
    libjansson-dev    # JSON
    libcurl4-openssl-dev # HTTP client of the appointment push to the SAS platform
    libcriterion-dev  # unit-test framework
    libssl-dev        # libcrypto: hashes and access-token randomness
    postgresql        # server binaries for the embedded and test clusters
    postgresql-client # psql
    openssl           # makes the throwaway certificate of the TLS test
    clang             # builds the fuzz targets (fuzz/), with ASan and UBSan
    libfuzzer-14-dev  # libFuzzer for clang 14: the fuzzing engine of fuzz/
    libclang-rt-14-dev # the runtimes -fsanitize=fuzzer,address,undefined links (only
                       # recommended by clang's libclang-common-14-dev; recommends are
                       # not installed)
)

browser=false
ha=false
while [ $# -gt 0 ]; do
    case $1 in
    --browser) browser=true ;;
    --ha) ha=true ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done

if $browser; then
    packages+=(chromium nodejs)
    # NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
    if ! command -v npm >/dev/null; then
        packages+=(npm)
    fi
fi

if $ha; then
    # Patroni's etcd3 module (deploy/ha/patroni.yml.in) imports python3-etcd,
    # which the patroni package only lists among alternatives.
    packages+=(patroni python3-etcd etcd-server haproxy)
fi

# Runs a command as root: directly, or through sudo (checked beforehand).
as_root() {
    if is_root; then
        "$@"
    else
        sudo "$@"
    fi
}

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${packages[@]}"; do
    if ! installed "$pkg"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#packages[@]} Debian packages already installed"
else
    say "missing Debian packages: ${missing[*]}"
    if ! is_root; then
        command -v sudo >/dev/null ||
            die "not root and sudo is not installed: run this as root, or install sudo"
        say "not root: apt-get runs through sudo"
        sudo -v || die "sudo refused: run this as root, or as a user allowed to use sudo"
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/snpd-apt.XXXXXX.log")
    # Wait for another apt or dpkg (unattended-upgrades on a fresh machine).
    apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
    say "running apt-get update (output in $log)"
    as_root "${apt[@]}" update >>"$log" 2>&1 ||
        die_with_log "$log" "apt-get update failed"
    say "running apt-get install ${missing[*]} (may take a few minutes; output in $log)"
    as_root "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
        die_with_log "$log" "apt-get install failed"
    for pkg in "${missing[@]}"; do
        installed "$pkg" || die "package $pkg is still not installed (see $log)"
    done
    say "installed ${missing[*]}"
    rm -f "$log"
fi

if is_root; then
    if getent passwd "$SNP_USER" >/dev/null; then
        say "system user $SNP_USER already exists"
    else
        say "creating system user $SNP_USER (PostgreSQL and snpd run as this user, never as root)"
        useradd --system --user-group --home-dir "$SNP_STATE_BASE" --no-create-home \
            --shell /usr/sbin/nologin --comment "snpd dispatcher" "$SNP_USER"
    fi
fi
