#!/usr/bin/env bash
# Install what running needs (scripts/deps.sh run), build Shoal, and run it in the foreground
# in front of PostgreSQL: DATABASE_URL's server if set (Shoal then runs with no file, the
# twelve-factor way), else the one named by PGHOST/PGPORT (and PGUSER/PGPASSWORD), else a
# throwaway local cluster started here (removed on exit).
#   scripts/run.sh [--port N] [--pg-port N] [--http-port N] [SHOAL ARGS...]
# Ports also come from the environment: SHOAL_LISTEN_PORT (default 6432), PGPORT (the server's,
# or the throwaway cluster's: default 25432), SHOAL_HTTP_PORT (the dashboard, default port+1).
# Other arguments go to shoal (e.g. -v). SHOAL_BIN=path runs that binary instead of building
# (tests/integration/test_first_run.py's walkthrough from a fresh clone).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${SHOAL_LISTEN_PORT:-6432}
HTTP_PORT=${SHOAL_HTTP_PORT:-}
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--port) PORT=$2; shift 2 ;;
	--pg-port) PGPORT=$2; shift 2 ;;
	--http-port) HTTP_PORT=$2; shift 2 ;;
	--port=*) PORT=${1#*=}; shift ;;
	--pg-port=*) PGPORT=${1#*=}; shift ;;
	--http-port=*) HTTP_PORT=${1#*=}; shift ;;
	*) args+=("$1"); shift ;;
	esac
done
HTTP_PORT=${HTTP_PORT:-$((PORT + 1))}
scripts/deps.sh run
BIN=${SHOAL_BIN:-build/shoal}
if [ -z "${SHOAL_BIN:-}" ]; then
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build >/dev/null
fi
work=$(mktemp -d /tmp/shoal-run.XXXXXX)
chmod 755 "$work"
cleanup() {
	[ -n "${PGDATA_OWN:-}" ] && as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDATA_OWN" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
trap cleanup EXIT
# What every mode shares, as SHOAL_<NAME> overrides: they win over the file too, so the banner
# below is right whatever the file says.
export SHOAL_LISTEN_ADDR=127.0.0.1 SHOAL_LISTEN_PORT=$PORT SHOAL_UNIX_SOCKET_DIR=$work
export SHOAL_HTTP_PORT=$HTTP_PORT
# A throwaway run as root (the quick start): Shoal refuses root unless allowed
if [ "$(id -u)" -eq 0 ]; then export SHOAL_ALLOW_ROOT=${SHOAL_ALLOW_ROOT:-1}; fi
USER_HINT=${PGUSER:-postgres}
export SHOAL_ADMIN_USERS=$USER_HINT # the admin console over TCP; over the Unix socket, the
                                    # user Shoal runs as is admin anyway
if [ -n "${DATABASE_URL:-}" ] && [ -z "${PGHOST:-}" ]; then
	rest=${DATABASE_URL#*://}
	hostpart=${rest%%/*}
	DB=postgres
	case $rest in */*) DB=${rest#*/}; DB=${DB%%\?*}; DB=${DB:-postgres} ;; esac
	TARGET="DATABASE_URL's server ${hostpart#*@} (database $DB, and any other by name)"
	cmd=("$BIN" "${args[@]}")
else
	unset DATABASE_URL
	if [ -z "${PGHOST:-}" ]; then
		PGDATA_OWN=$work/pgdata
		PGPORT=${PGPORT:-25432}
		mkdir -p "$PGDATA_OWN"
		if [ "$(id -u)" -eq 0 ]; then chown postgres "$work" "$PGDATA_OWN"; fi
		as_pg /usr/lib/postgresql/15/bin/initdb -D "$PGDATA_OWN" -U postgres -A trust >/dev/null
		as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDATA_OWN" -l "$work/postgres.log" -w \
			-o "-p $PGPORT -k $work -c listen_addresses=127.0.0.1" start >/dev/null
		PGHOST=127.0.0.1
		PGUSER=postgres
		echo "started a throwaway PostgreSQL 15 on 127.0.0.1:$PGPORT (data in $PGDATA_OWN)"
	fi
	PWPART=
	# the password stays out of the file: Shoal expands ${PGPASSWORD} from its environment
	[ -z "${PGPASSWORD:-}" ] || { export PGPASSWORD; PWPART=' password=${PGPASSWORD}'; }
	DB=postgres
	TARGET="PostgreSQL $PGHOST:${PGPORT:-5432} (every database by name)"
	cat >"$work/shoal.ini" <<INI
[databases]
* = host=${PGHOST} port=${PGPORT:-5432}${PGUSER:+ user=$PGUSER}$PWPART
[shoal]
auth_type = trust
pool_mode = transaction
default_pool_size = 20
INI
	cmd=("$BIN" "${args[@]}" "$work/shoal.ini")
fi
cat <<EOF_BANNER
Shoal on 127.0.0.1:$PORT -> $TARGET
  connect:    psql -h 127.0.0.1 -p $PORT -U $USER_HINT $DB
  admin:      psql -h 127.0.0.1 -p $PORT -U $USER_HINT pgbouncer      (then SHOW POOLS;)
  dashboard:  http://127.0.0.1:$HTTP_PORT/
  Unix socket: $work/.s.PGSQL.$PORT
Stop with Ctrl-C.
EOF_BANNER
"${cmd[@]}"
