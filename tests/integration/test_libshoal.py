"""libshoal, the in-process pool: the C scenarios of tests/libshoal/pooltest run directly against
PostgreSQL (not through the daemon). pooltest sits next to the daemon binary under test:
dirname(SHOAL_BIN)/tests/libshoal/pooltest, so a sanitizer build tests a sanitizer libshoal.
Each scenario prints key=value lines and exits 0 when its own checks passed; the test also fails
on any sanitizer report in its stderr."""
import os
import re
import selectors
import subprocess
import time

import pytest

from conftest import SANITIZER_PATTERNS, SHOAL_BIN
from helpers import BackendMonitor, free_port, wait_until

POOLTEST = os.path.join(os.path.dirname(os.path.abspath(SHOAL_BIN)), "tests", "libshoal",
                        "pooltest")
SCENARIO_TIMEOUT = 30


def conninfo(pg, user, dbname="postgres"):
    return "host=%s port=%d dbname=%s user=%s" % (pg.host, pg.port, dbname, user)


def sanitizer_report(stderr):
    for p in SANITIZER_PATTERNS + ("ERROR: ThreadSanitizer", "SUMMARY: "):
        i = stderr.find(p)
        if i >= 0:
            return stderr[max(0, i - 200):i + 3000]
    return None


def parse(stdout):
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def check(stdout, stderr, rc):
    report = sanitizer_report(stderr)
    assert report is None, "sanitizer report:\n" + report
    assert rc == 0, "pooltest exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, stdout, stderr[-3000:])
    return parse(stdout)


def run(scenario, ci, env=None):
    if not os.path.exists(POOLTEST):
        pytest.fail("%s not built (meson builds tests/libshoal)" % POOLTEST)
    full_env = dict(os.environ)
    full_env.update(env or {})
    r = subprocess.run([POOLTEST, scenario, ci], capture_output=True, text=True,
                       timeout=SCENARIO_TIMEOUT, env=full_env)
    return check(r.stdout, r.stderr, r.returncode)


def stats(line):
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


def test_libshoal_64_threads_on_max_4_never_exceed_4_backends(pg, role):
    with BackendMonitor(pg, role, interval=0.01) as mon:
        out = run("stress", conninfo(pg, role))
    assert mon.error is None
    assert int(out["calls_ok"]) == 64 * 40
    assert int(out["max_backends"]) <= 4
    assert int(out["max_inside"]) <= 4
    assert mon.samples and 1 <= mon.max <= 4, mon.max
    s = stats(out["stats"])
    assert s["created"] <= 4 and s["acquired"] == s["released"] == 64 * 40


def test_libshoal_waiters_are_served_in_fifo_order(pg, role):
    out = run("fifo", conninfo(pg, role))
    assert out["order"] == "0 1 2 3 4 5"


def test_libshoal_acquire_timeout_fires_and_reports(pg, role):
    out = run("timeout", conninfo(pg, role))
    assert 290 <= int(out["waited_ms"]) < 3000
    assert "timed out waiting for a connection" in out["error"]
    assert "1 of max 1 borrowed" in out["error"]
    assert stats(out["stats"])["timeouts"] == 2


def no_backends_left(pg, role):
    """The pool closed its connections; PostgreSQL's backends exit a moment later."""
    wait_until(lambda: pg.count_backends(usename=role) == 0, 10, what="backends of %s gone" % role)


def test_libshoal_idle_connections_shrink_to_min(pg, role):
    out = run("idle", conninfo(pg, role))
    assert int(out["backends_before"]) == 4
    assert int(out["backends_after"]) == 1
    assert int(out["backends_closed"]) == 0
    no_backends_left(pg, role)


def test_libshoal_connections_retire_after_lifetime(pg, role):
    out = run("lifetime", conninfo(pg, role))
    assert stats(out["stats"])["destroyed"] >= 2


def test_libshoal_backend_killed_while_idle_is_replaced(pg, role):
    out = run("kill_idle", conninfo(pg, role))
    a, b = out["pids"].split()
    assert a != b


def test_libshoal_backend_killed_while_borrowed_gives_clear_error(pg, role):
    out = run("kill_borrowed", conninfo(pg, role))
    assert out["borrowed_error"].startswith("connection to PostgreSQL lost: ")
    assert out["with_error"].startswith("connection to PostgreSQL lost: ")
    assert ("terminating connection" in out["with_error"]
            or "server closed the connection unexpectedly" in out["with_error"])


def _readline(proc, sel, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if line == "":
                break
            if line.startswith("FAIL"):
                pytest.fail(line)
            return line.strip()
    pytest.fail("pooltest restart: no line within %ss" % timeout)


def test_libshoal_retries_succeed_after_postgres_restart(pg_private, role):
    cluster = pg_private()
    cluster.sql('CREATE ROLE "%s" LOGIN' % role)
    proc = subprocess.Popen([POOLTEST, "restart", conninfo(cluster, role)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        assert _readline(proc, sel, 15) == "ready=1"
        cluster.stop("fast")
        proc.stdin.write("down\n")
        proc.stdin.flush()
        down = _readline(proc, sel, 15)
        assert down.startswith("down_error=could not connect to PostgreSQL: "), down
        time.sleep(0.3)  # with_retry is backing off meanwhile
        cluster.start()
        stdout, stderr = proc.communicate(timeout=SCENARIO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = check(stdout, stderr, proc.returncode)
    assert out["retry_rc"] == "SHOAL_OK"
    assert int(out["calls"]) == 1
    # PostgreSQL was down for at least 0.3 s of it: the first attempts failed and were retried
    assert int(out["retry_ms"]) >= 250
    assert stats(out["stats"])["errors"] >= 2


def test_libshoal_retries_only_serialization_and_connection_failures(pg, role):
    out = run("retry", conninfo(pg, role))
    assert out["calls"] == "3 3 1"
    assert "simulated 40P01" in out["deadlock_error"]


def test_libshoal_with_rolls_back_and_broken_transactions_are_discarded(pg, role_db):
    role, db = role_db
    run("rollback", conninfo(pg, role, db))


def test_libshoal_close_drains_borrowed_connections(pg, role):
    out = run("drain", conninfo(pg, role))
    assert 300 <= int(out["drained_ms"]) < 4000
    assert "1 connections still borrowed" in out["drain_error"]
    no_backends_left(pg, role)


def test_libshoal_use_after_close_returns_clear_error(pg, role):
    out = run("closed", conninfo(pg, role))
    assert out["closed_error"] == "pool is closed"
    no_backends_left(pg, role)


def test_libshoal_health_reports_latency_and_failure(pg, role):
    out = run("health", conninfo(pg, role))
    assert int(out["latency_us"]) > 0
    assert out["unhealthy"].startswith("could not connect to PostgreSQL: ")


def test_libshoal_reads_database_url_and_db_pool_env(pg, role):
    env = {"DATABASE_URL": "postgresql://%s@%s:%d/postgres" % (role, pg.host, pg.port),
           "DB_POOL_MAX": "3", "DB_POOL_MIN": "1", "DB_POOL_IDLE_MS": "1234",
           "DB_POOL_CONN_TIMEOUT_MS": "4321", "DB_POOL_MAX_LIFETIME_MS": "60000",
           "DB_POOL_STATEMENT_TIMEOUT_MS": "250"}
    out = run("env", "unused", env=env)
    assert "canceling statement due to statement timeout" in out["statement_timeout"]
    assert "DB_POOL_MAX" in out["bad_env"]


def test_libshoal_rejects_invalid_options_and_conninfo(pg, role):
    out = run("invalid", conninfo(pg, role))
    assert "nonsense_key" in out["bad_conninfo"]


def test_libshoal_reports_a_leaked_connection_once_with_its_site(pg, role):
    out = run("leak", conninfo(pg, role))
    assert "acquired at scen_leak+" in out["leak_report"]


EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(SHOAL_BIN)), "examples", "pool_example")


def run_example(url):
    if not os.path.exists(EXAMPLE):
        pytest.fail("%s not built (meson builds examples/)" % EXAMPLE)
    r = subprocess.run([EXAMPLE], capture_output=True, text=True, timeout=SCENARIO_TIMEOUT,
                       env=dict(os.environ, DATABASE_URL=url, DB_POOL_MIN="0"))
    report = sanitizer_report(r.stderr)
    assert report is None, "sanitizer report:\n" + report
    return r


def test_example_exits_0_when_every_query_succeeds(pg, role):
    r = run_example("postgresql://%s@%s:%d/postgres" % (role, pg.host, pg.port))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "healthy=1" in r.stdout and "errors=0" in r.stdout


def test_wrong_password_is_not_retried_and_the_example_exits_1(pg):
    """An authentication failure is SHOAL_EAUTH, which with_retry gives back at once: one
    failed login per worker (errors=8, not 8 x 4 with the default 3 retries)."""
    r = run_example("postgresql://scram_user:wrong@%s:%d/postgres" % (pg.host, pg.port))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "query failed: PostgreSQL refused the login: " in r.stderr, r.stderr
    assert "28P01" in r.stderr and "LOCATION" not in r.stderr, r.stderr
    assert "8 of 8 workers failed" in r.stderr
    errors = int(re.search(r"errors=(\d+)", r.stdout).group(1))
    assert errors <= 8 + 1, r.stdout  # each worker's one try (+ the health check's)


def test_unreachable_server_is_still_retried(pg):
    port = free_port()
    r = run_example("postgresql://nobody@127.0.0.1:%d/postgres" % port)
    assert r.returncode == 1
    assert "could not connect to PostgreSQL" in r.stderr, r.stderr
    errors = int(re.search(r"errors=(\d+)", r.stdout).group(1))
    assert errors > 8 + 1, r.stdout  # retried
