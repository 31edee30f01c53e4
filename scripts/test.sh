#!/usr/bin/env bash
# Install what is missing, build Shoal three times (plain, ASan+UBSan, TSan) and run the whole
# suite: unit tests (cmocka), fuzz-corpus replay, integration tests (pytest against a real
# PostgreSQL) with workers = 1 and workers = 4. Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh test || exit 1
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
build_clang() { # dir, meson options...: clang's warnings differ from gcc's
	CC=clang build "$@"
}
fuzz_smoke() { # build dir: each libFuzzer target for 10 s, from a copy of its corpus
	local t name tmp st rc=0
	for t in "$1"/tests/fuzz/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=${t##*/fuzz_}
		tmp=$(mktemp -d)
		cp -r "tests/fuzz/corpus/$name/." "$tmp/"
		"$t" -max_total_time=10 -print_final_stats=1 "$tmp" >"$tmp.log" 2>&1
		st=$?
		echo "fuzz_$name: exit $st, $(grep -m1 '^stat::number_of_executed_units' "$tmp.log")"
		[ "$st" -eq 0 ] || { rc=1; tail -30 "$tmp.log"; }
		rm -rf "$tmp" "$tmp.log"
	done
	return $rc
}
integration() { # build dir, workers[, pytest processes]
	local par=()
	[ "${3:-1}" -gt 1 ] && par=(-n "$3")
	SHOAL_TEST_WORKERS=$2 SHOAL_BIN="$ROOT/$1/shoal" $PY -m pytest -q -p no:cacheprovider \
		"${par[@]}" --junitxml="$1/pytest-junit-w$2.xml" tests/integration
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=0
rm -f build*/pytest-junit*.xml
run "layer order of src/ (scripts/layercheck.py)" $PY scripts/layercheck.py
run "build (release-like, asserts on)" build build
run "unit + fuzz replay (plain build)" unit build
# The plain builds' runs use two pytest processes (pytest-xdist; helpers.free_port gives each
# its own ports); the sanitizer runs stay serial.
run "integration, workers=1 (plain build, 2 pytest processes)" integration build 1 2
run "integration, workers=4 (plain build, 2 pytest processes)" integration build 4 2
if [ "${SHOAL_SKIP_SANITIZERS:-0}" != 1 ]; then
	run "build (ASan+UBSan)" build build-asan -Db_sanitize=address,undefined -Db_lundef=false
	run "unit + fuzz replay (ASan+UBSan build)" unit build-asan
	run "integration, workers=4 (ASan+UBSan build)" integration build-asan 4
	run "build (clang, libFuzzer targets)" build_clang build-clang -Dfuzz=true
	run "fuzz smoke (clang build, 10 s per target)" fuzz_smoke build-clang
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
