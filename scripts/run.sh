#!/usr/bin/env bash
# Install what is missing, build Shoal, and run it in the foreground in front of PostgreSQL:
# the one named by PGHOST/PGPORT (and PGUSER/PGPASSWORD) if set, else a throwaway local
# cluster started here (removed on exit). Extra arguments go to shoal (e.g. -v).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
work=$(mktemp -d /tmp/shoal-run.XXXXXX)
chmod 755 "$work"
cleanup() {
	[ -n "${PGDATA_OWN:-}" ] && as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDATA_OWN" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
trap cleanup EXIT
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
cat >"$work/shoal.ini" <<INI
[databases]
* = host=${PGHOST} port=${PGPORT:-5432}${PGUSER:+ user=$PGUSER}${PGPASSWORD:+ password=$PGPASSWORD}
[shoal]
listen_addr = 127.0.0.1
listen_port = 6432
unix_socket_dir = $work
auth_type = trust
pool_mode = transaction
default_pool_size = 20
INI
echo "Shoal on 127.0.0.1:6432 -> PostgreSQL $PGHOST:${PGPORT:-5432}. Connect with:"
echo "    psql -h 127.0.0.1 -p 6432 -U ${PGUSER:-postgres} postgres"
echo "Stop with Ctrl-C."
build/shoal "$@" "$work/shoal.ini"
