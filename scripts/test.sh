#!/usr/bin/env bash
# Install what is missing, build Shoal twice (plain, and ASan+UBSan), and run the whole suite on
# both: unit tests (cmocka), fuzz-corpus replay, integration tests (pytest against a real
# PostgreSQL). Ends with one summary line.
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
suite() { # build dir
	local dir=$1
	meson test -C "$dir" --print-errorlogs --suite unit --suite fuzz
	local rc=$?
	SHOAL_BIN="$ROOT/$dir/shoal" $PY -m pytest -q -p no:cacheprovider \
		--junitxml="$dir/pytest-junit.xml" tests/integration || rc=1
	return $rc
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run "build (release-like, asserts on)" build build
run "suite (plain build)" suite build
if [ "${SHOAL_SKIP_ASAN:-0}" != 1 ]; then
	run "build (ASan+UBSan)" build build-asan -Db_sanitize=address,undefined -Db_lundef=false
	run "suite (ASan+UBSan build)" suite build-asan
fi
echo
echo "stages: $passed passed, $failed failed"
# The closing line counts every test case of every build (meson's and pytest's JUnit reports).
$PY scripts/junit_total.py build/meson-logs/testlog.junit.xml build/pytest-junit.xml \
	build-asan/meson-logs/testlog.junit.xml build-asan/pytest-junit.xml
[ "$failed" -eq 0 ]
