#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests: installs Debian's `postgresql` if
# it is missing, makes a cluster in $TMPDIR/gatehouse-postgres (outside the checkout, which
# the server's own user may not be allowed to enter), starts it on a free port, and prints
# the URL of an empty database `gatehouse`. `scripts/postgres.sh stop` stops it, and
# `scripts/postgres.sh resume` starts it again with its data, on the same port.
# PG_NAME=other runs a second, separate server (the restart test stops its own);
# PG_DURABLE=1 keeps PostgreSQL's durability settings (fsync) on, for benchmarks.
# Used by scripts/test.sh (TEST_POSTGRES_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${TMPDIR:-/tmp}/${PG_NAME:-gatehouse-postgres}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"

as_owner() {
    # The server refuses to run as root: it runs as the `postgres` user the package makes.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    # Tests only: durability settings off for speed, unless PG_DURABLE=1 (benchmarks).
    local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-}" = 1 ] && durability=""
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $1 -k $dir $durability -c max_connections=300" \
        start >/dev/null
}

case "${1:-}" in
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    exit 0
    ;;
resume)
    start "$(cat "$dir/port")"
    exit 0
    ;;
esac

if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "installing postgresql (Debian)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    else sudo apt-get update -qq >&2 && sudo apt-get install -y -qq postgresql >&2; fi
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
fi
rm -rf "$dir"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_owner "$bin/initdb" -D "$dir/data" -U gatehouse --auth=trust -E UTF8 --no-sync >/dev/null
echo "$port" > "$dir/port"
start "$port"
as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U gatehouse gatehouse
echo "postgres://gatehouse@127.0.0.1:$port/gatehouse"
