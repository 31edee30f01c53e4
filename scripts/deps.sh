#!/usr/bin/env bash
# Install what Shoal needs on Debian 12 (as root), skipping what is there.
#   scripts/deps.sh run    building Shoal and running it (scripts/run.sh): compiler, meson,
#                          OpenSSL, inih, libpq (tests/pipeline is part of the build), scdoc
#                          (the man pages `meson install` lays out), and PostgreSQL 15 for
#                          run.sh's throwaway cluster and psql
#   scripts/deps.sh test   the run set plus the whole test toolchain (scripts/test.sh, CI);
#                          the default when no set is named
set -euo pipefail
SET=${1:-test}
RUN_PKGS=(build-essential pkg-config meson ninja-build libssl-dev libinih-dev libpq-dev scdoc
          postgresql-15 postgresql-client-15)
# cmocka: unit tests; pytest + psycopg: integration tests; prometheus: promtool checks
# /metrics; chromium + chromium-driver + python3-selenium: the dashboard's browser test
# (tests/integration/test_dashboard.py); clang + libclang-rt-14-dev (the sanitizer and libFuzzer
# runtimes, only a Recommends of clang): the libFuzzer build; pgbouncer, matplotlib, strace:
# bench/run; man-db, systemd (systemd-analyze verify), yamllint and python3-yaml:
# tests/integration/test_packaging.py renders the man pages and checks the unit and manifests;
# haproxy: tests/integration/test_fleet_haproxy.py (a fleet behind a TCP load balancer).
TEST_PKGS=(libcmocka-dev python3-pytest python3-psycopg prometheus chromium chromium-driver
           python3-selenium clang libclang-rt-14-dev pgbouncer python3-matplotlib strace
           man-db systemd yamllint python3-yaml haproxy python3-pytest-xdist)
case $SET in
run) PKGS=("${RUN_PKGS[@]}") ;;
test) PKGS=("${RUN_PKGS[@]}" "${TEST_PKGS[@]}") ;;
*) echo "usage: $0 [run|test]" >&2; exit 2 ;;
esac

apt_install() { # packages...
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing: $* (run as root to install them)" >&2
		exit 1
	fi
	echo "installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
[ "$SET" = test ] || exit 0

# node-postgres client for tests/integration/test_node_pg.py: Debian's nodejs/npm unless node and
# npm are already there (e.g. from NodeSource), then the locked modules in tests/clients/node.
NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/clients/node"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi
if [ ! -d "$NODE_DIR/node_modules" ] ||
   [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules" ]; then
	echo "npm ci in $NODE_DIR"
	(cd "$NODE_DIR" && npm ci --no-audit --no-fund)
fi
