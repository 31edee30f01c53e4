#!/usr/bin/env bash
# Install what is missing, build Shoal three times (plain, ASan+UBSan, TSan) and run the whole
# suite: unit tests (cmocka), fuzz-corpus replay, integration tests (pytest against a real
# PostgreSQL) with workers = 1 and workers = 4. Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh || exit 1
PY=/usr/bin/python3   # Debian's interpreter: python3-pytest/psycopg are installed for it
failed=0
passed=0
run() { # name, command...
	local name=$1; shift
	echo "=== $name"
	if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "=== FAILED: $name"; fi
}
build() { # dir, meson options...
	local dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dwerror=true "$@" >/dev/null || return 1
	ninja -C "$dir" >/dev/null
}
unit() { # build dir
	meson test -C "$1" --print-errorlogs --suite unit --suite fuzz
}
integration() { # build dir, workers
	SHOAL_TEST_WORKERS=$2 SHOAL_BIN="$ROOT/$1/shoal" $PY -m pytest -q -p no:cacheprovider \
		--junitxml="$1/pytest-junit-w$2.xml" tests/integration
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=0
rm -f build*/pytest-junit*.xml
run "build (release-like, asserts on)" build build
run "unit + fuzz replay (plain build)" unit build
run "integration, workers=1 (plain build)" integration build 1
run "integration, workers=4 (plain build)" integration build 4
if [ "${SHOAL_SKIP_SANITIZERS:-0}" != 1 ]; then
	run "build (ASan+UBSan)" build build-asan -Db_sanitize=address,undefined -Db_lundef=false
	run "unit + fuzz replay (ASan+UBSan build)" unit build-asan
	run "integration, workers=4 (ASan+UBSan build)" integration build-asan 4
	run "build (TSan)" build build-tsan -Db_sanitize=thread -Db_lundef=false
	run "integration, workers=4 (TSan build)" integration build-tsan 4
fi
echo
echo "stages: $passed passed, $failed failed"
# The closing line counts every test case of every build (meson's and pytest's JUnit reports).
$PY scripts/junit_total.py build/meson-logs/testlog.junit.xml build/pytest-junit-w1.xml \
	build/pytest-junit-w4.xml build-asan/meson-logs/testlog.junit.xml \
	build-asan/pytest-junit-w4.xml build-tsan/pytest-junit-w4.xml
[ "$failed" -eq 0 ]
