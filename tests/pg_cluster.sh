#!/bin/sh
# tests/pg_cluster.sh: a throwaway PostgreSQL server for tests.
#
#   sh tests/pg_cluster.sh start <dir>   create <dir> (missing or empty), initdb into it, start the
#                                        server on a Unix socket in <dir>/sock (no TCP) and print
#                                        its libpq conninfo on stdout once it accepts connections:
#                                          host=<dir>/sock port=5432 dbname=postgres user=postgres
#   sh tests/pg_cluster.sh stop <dir>    stop the server and delete <dir> (a no-op when <dir> does
#                                        not exist; refuses a directory that start did not create)
#   sh tests/pg_cluster.sh status <dir>  exit 0 when the server answers, 1 otherwise
#   sh tests/pg_cluster.sh pause <dir>   stop the server (fast shutdown) but keep <dir>, so that a
#                                        test can see the database go away mid-stream
#   sh tests/pg_cluster.sh resume <dir>  start a paused server again on the same data and socket
#
# Messages go to stderr; stdout carries only the conninfo.  Exit codes: 0 success, 1 failure
# (the server log is printed), 2 usage error, 77 no PostgreSQL server binaries on this machine
# (the code ctest's SKIP_RETURN_CODE understands).  When start fails it stops what it started and
# deletes <dir> itself.  Callers stop the cluster from a trap, for example:
#
#   dir=$(mktemp -d) && trap 'sh tests/pg_cluster.sh stop "$dir"' EXIT
#   conninfo=$(sh tests/pg_cluster.sh start "$dir") || exit $?
#
# The server: trust authentication on the socket only, listen_addresses='', fsync off, small
# shared_buffers, pg_stat_statements preloaded with track=all.  Extra postgresql.conf lines can
# be passed in NPROF_PG_CONF (newline separated), e.g. "log_min_duration_statement=0".
#
# initdb and postgres refuse to run as root: when the effective uid is 0 every server command runs
# as the `postgres` user (NPROF_PG_USER overrides) through runuser, and <dir> is chowned to it.
# The binaries are looked up in $PG_BINDIR, then the newest /usr/lib/postgresql/*/bin, then PATH.
# The start timeout is 30 s (NPROF_PG_TIMEOUT overrides).

set -u

prog=pg_cluster.sh
marker=.nprof_pg_cluster
port=5432
timeout=${NPROF_PG_TIMEOUT:-30}

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { say "$*"; exit 1; }
usage() { printf 'usage: %s start|stop|status|pause|resume <dir>\n' "$prog" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage
case $dir in
/*) ;;
*) dir=$(pwd)/$dir ;;
esac
dir=${dir%/}

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] && { echo "$PG_BINDIR"; return 0; }
        say "PG_BINDIR=$PG_BINDIR holds no initdb"
        return 1
    fi
    best=
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v=${d#/usr/lib/postgresql/}
        v=${v%/bin}
        if [ -z "$best" ] || [ "${v%%.*}" -gt "${best%%.*}" ] 2>/dev/null; then
            best=$v
        fi
    done
    if [ -n "$best" ]; then
        echo "/usr/lib/postgresql/$best/bin"
        return 0
    fi
    p=$(command -v initdb 2>/dev/null) && { dirname "$p"; return 0; }
    return 1
}

# Runs a command as the server's owner.
if [ "$(id -u)" -eq 0 ]; then
    pguser=${NPROF_PG_USER:-postgres}
    id "$pguser" >/dev/null 2>&1 || die "running as root, but there is no '$pguser' user to run the server as (set NPROF_PG_USER)"
    as_owner() { (cd / && runuser -u "$pguser" -- "$@"); }
else
    pguser=$(id -un)
    as_owner() { (cd / && "$@"); }
fi

server_pid() {
    [ -r "$dir/data/postmaster.pid" ] || return 1
    pid=$(sed -n 1p "$dir/data/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

print_log() {
    if [ -s "$dir/postgres.log" ]; then
        say "server log $dir/postgres.log:"
        sed 's/^/    /' "$dir/postgres.log" >&2
    fi
}

do_stop() {
    [ -e "$dir" ] || return 0
    [ -f "$dir/$marker" ] || die "$dir was not created by $prog start; not touching it"
    rc=0
    if [ -f "$dir/data/postmaster.pid" ]; then
        bindir=$(cat "$dir/$marker")
        if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t "$timeout" stop >/dev/null 2>&1; then
            if pid=$(server_pid); then
                say "pg_ctl stop failed; killing postmaster $pid"
                kill -9 "$pid" 2>/dev/null
                sleep 1
            fi
        fi
        if server_pid >/dev/null; then
            say "the server in $dir is still running"
            rc=1
        fi
    fi
    [ $rc -eq 0 ] && rm -rf "$dir"
    return $rc
}

fail_start() {
    say "$*"
    print_log
    do_stop
    exit 1
}

do_start() {
    bindir=$(find_bindir) || { say "no PostgreSQL server binaries (initdb) found: apt-get install -y postgresql, or set PG_BINDIR"; exit 77; }
    for b in initdb pg_ctl postgres pg_isready; do
        [ -x "$bindir/$b" ] || { say "$bindir/$b missing"; exit 77; }
    done
    libdir=$("$bindir/pg_config" --pkglibdir 2>/dev/null || echo "$bindir/../lib")
    if [ ! -e "$libdir/pg_stat_statements.so" ]; then
        say "warning: $libdir/pg_stat_statements.so not found (package postgresql-contrib on older Debian)"
    fi

    if [ -e "$dir" ]; then
        [ -d "$dir" ] || die "$dir exists and is not a directory"
        [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    else
        mkdir -p "$dir" || die "cannot create $dir"
    fi
    sock=$dir/sock
    # sun_path holds 107 bytes; the socket is $sock/.s.PGSQL.$port.
    [ ${#sock} -le 90 ] || die "socket directory path too long for a Unix socket: $sock"
    echo "$bindir" >"$dir/$marker" || die "cannot write in $dir"
    mkdir "$sock" "$dir/data" || fail_start "cannot create directories in $dir"
    : >"$dir/postgres.log"
    chmod 700 "$dir" "$dir/data"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$pguser" "$dir" || fail_start "cannot chown $dir to $pguser"
    fi

    if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
        sed 's/^/    /' "$dir/initdb.log" >&2
        fail_start "initdb failed"
    fi
    {
        echo "# added by tests/pg_cluster.sh"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$sock'"
        echo "port = $port"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "shared_buffers = 16MB"
        echo "max_connections = 20"
        echo "max_wal_size = 64MB"
        echo "shared_preload_libraries = 'pg_stat_statements'"
        echo "pg_stat_statements.track = all"
        echo "pg_stat_statements.track_utility = on"
        echo "pg_stat_statements.max = 10000"
        echo "timezone = 'UTC'"
        echo "log_timezone = 'UTC'"
        if [ -n "${NPROF_PG_CONF:-}" ]; then
            printf '%s\n' "$NPROF_PG_CONF"
        fi
    } >>"$dir/data/postgresql.conf"

    # pg_ctl -w notices a postmaster that dies during start-up; pg_isready then confirms that
    # the socket we hand out answers.
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$timeout" start \
        >"$dir/pg_ctl.log" 2>&1; then
        sed 's/^/    /' "$dir/pg_ctl.log" >&2
        fail_start "pg_ctl start failed"
    fi
    waited=0
    until "$bindir/pg_isready" -q -h "$sock" -p "$port" -d postgres -U postgres -t 1 >/dev/null 2>&1; do
        server_pid >/dev/null || fail_start "the server exited during start-up"
        [ $waited -lt $((timeout * 5)) ] || fail_start "the server did not accept connections within ${timeout}s"
        sleep 0.2
        waited=$((waited + 1))
    done
    printf 'host=%s port=%s dbname=postgres user=postgres\n' "$sock" "$port"
}

do_pause() {
    [ -f "$dir/$marker" ] || die "$dir was not created by $prog start"
    bindir=$(cat "$dir/$marker")
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t "$timeout" stop >/dev/null 2>&1 ||
        die "pg_ctl stop failed"
}

do_resume() {
    [ -f "$dir/$marker" ] || die "$dir was not created by $prog start"
    bindir=$(cat "$dir/$marker")
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$timeout" start \
        >"$dir/pg_ctl.log" 2>&1; then
        sed 's/^/    /' "$dir/pg_ctl.log" >&2
        print_log
        die "pg_ctl start failed"
    fi
}

case $cmd in
start) do_start ;;
pause) do_pause ;;
resume) do_resume ;;
stop) do_stop || exit 1 ;;
status)
    [ -f "$dir/$marker" ] || exit 1
    bindir=$(cat "$dir/$marker")
    "$bindir/pg_isready" -q -h "$dir/sock" -p "$port" -d postgres -U postgres -t 2 ;;
*) usage ;;
esac
