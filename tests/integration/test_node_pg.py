"""A real node-postgres client (npm `pg`) through Shoal in transaction mode.

tests/clients/node/pg_client.js runs one scenario per call and prints a JSON result; these tests
start Shoal, run it with `node`, and assert on that result (and on what PostgreSQL saw). Node and
the pg module are installed by scripts/deps.sh; without them the tests fail, they do not skip.
"""
import json
import os
import shutil
import subprocess

import pytest

from helpers import BackendMonitor

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.abspath(os.path.join(HERE, "..", "clients", "node"))
CLIENT = os.path.join(CLIENT_DIR, "pg_client.js")
NODE = shutil.which(os.environ.get("NODE") or "node")
NODE_TIMEOUT = 60  # seconds; pg_client.js has its own 45 s watchdog

_node_checked = []


def require_node():
    """Fail (not skip) with instructions if node or the pg module is missing."""
    if _node_checked:
        return
    if not NODE:
        pytest.fail("`node` not found (PATH, or $NODE): run scripts/deps.sh as root (installs "
                    "nodejs and npm, then `npm ci` in tests/clients/node)", pytrace=False)
    r = subprocess.run([NODE, "-e", "console.log(require('pg/package.json').version)"],
                       cwd=CLIENT_DIR, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail("node-postgres (npm `pg`) is not installed in %s: run scripts/deps.sh "
                    "(or `npm ci` there)\n%s" % (CLIENT_DIR, r.stderr.strip()[-2000:]),
                    pytrace=False)
    _node_checked.append(r.stdout.strip())


def node_env():
    # No PG* variables from the caller: node-pg would use PGAPPNAME, PGOPTIONS, ... as defaults.
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PG") and k not in ("DATABASE_URL", "NODE_OPTIONS")}


def run_node(s, scenario, dbname, user, extra_env=None):
    """Run pg_client.js <scenario> against Shoal s; the parsed JSON result."""
    require_node()
    url = "postgresql://%s@%s:%d/%s" % (user, s.host, s.port, dbname)
    env = node_env()
    env.update(extra_env or {})
    try:
        r = subprocess.run([NODE, CLIENT, scenario, url], cwd=CLIENT_DIR, env=env,
                           capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail("node pg_client.js %s hung for %ds\nstdout: %s\nstderr: %s" % (
            scenario, NODE_TIMEOUT, e.stdout, e.stderr))
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail("node pg_client.js %s (exit %d) printed no JSON result\nstdout: %s\n"
                    "stderr: %s" % (scenario, r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
    assert r.returncode == 0 and result.get("ok") is True, (
        "node pg_client.js %s failed (exit %d):\n%s\nstderr: %s" % (
            scenario, r.returncode, json.dumps(result, indent=1)[:6000], r.stderr[-2000:]))
    return result


def test_node_pg_pool_200_concurrent_parameterized_queries(shoal, pg, role):
    """pg.Pool(max 20), 200 concurrent `SELECT $1::int` (Parse/Bind/Describe/Execute/Sync with
    unnamed statements) over a pool of 3 servers."""
    require_node()
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 3}},
              settings={"pool_mode": "transaction", "max_client_conn": 100,
                        "query_wait_timeout": 30})
    with BackendMonitor(pg, role) as mon:
        res = run_node(s, "pool_queries", "db", role)
    assert res["queries"] == 200
    assert res["correct"] == 200, res
    assert res["error_count"] == 0 and res["wrong"] == [], res
    assert 1 <= res["max_pool_connections"] <= 20
    assert mon.error is None
    assert mon.samples, "BackendMonitor took no sample"
    assert 0 < mon.max <= 3, "backends for %s peaked at %s (pool_size 3)" % (role, mon.max)
    assert pg.count_backends(usename=role) <= 3


def test_node_pg_transactions_from_20_concurrent_workers(shoal, pg, role_db):
    require_node()
    role, db = role_db
    s = shoal(databases={"db": {"dbname": db, "pool_size": 3}},
              settings={"pool_mode": "transaction", "max_client_conn": 100,
                        "query_wait_timeout": 30})
    with BackendMonitor(pg, role) as mon:
        res = run_node(s, "transactions", "db", role)
    n = res["workers"] * res["transactions_per_worker"]
    assert res["workers"] == 20
    assert res["committed"] == n and res["error_count"] == 0, res
    assert res["split"] == [], "statements of one transaction ran on different backends"
    assert res["final"]["rows"] == n and res["final"]["rolled_back_rows"] == 0, res["final"]
    # What PostgreSQL itself has, not only what the client saw through Shoal.
    rows = pg.sql("SELECT count(*), count(DISTINCT worker), count(*) FILTER (WHERE n < 0), "
                  "count(DISTINCT xid) FROM node_tx", dbname=db)
    assert rows == [(n, 20, 0, n)]
    assert 1 <= res["final"]["backends"] <= 3
    assert mon.error is None and 0 < mon.max <= 3, "backends peaked at %s" % mon.max


def test_node_pg_error_keeps_client_working(shoal, pg, role):
    require_node()
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    res = run_node(s, "error_recovery", "db", role)
    assert res["simple_error"]["code"] == "22012"
    assert res["extended_error"]["code"] == "22012"
    assert "division by zero" in res["extended_error"]["message"]
    assert res["parse_error"]["code"] == "42601"
    assert res["in_failed_tx"]["code"] == "25P02"
    assert (res["after_simple"], res["after_extended"], res["after_parse"],
            res["after_rollback"]) == (7, 8, "ok", 42)
    assert res["pool"]["division_by_zero"] == 10 and res["pool"]["good"] == 10, res["pool"]
    # The servers went back to the pool in a usable state.
    c = s.connect("db", role)
    assert c.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True


def test_node_pg_statement_timeout_connection_option(shoal, pg, role):
    """node-pg sends `statement_timeout` as a startup parameter; with pool_size 1 the client
    without it shares the backend and must not inherit it."""
    require_node()
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    res = run_node(s, "statement_timeout", "db", role)
    assert res["show"] == "500ms" and res["show_after"] == "500ms"
    assert res["sleep_error"]["code"] == "57014", res["sleep_error"]
    assert res["sleep_extended_error"]["code"] == "57014", res["sleep_extended_error"]
    assert res["sleep_ms"] < 1900 and res["sleep_extended_ms"] < 1900
    assert res["after"] == 5
    assert res["plain_show_before"] == "0" and res["plain_show"] == "0"
    assert res["plain_sleep_ms"] >= 700
    # Shoal itself is still fine, and the shared backend has no statement_timeout left over.
    c = s.connect("db", role)
    assert c.execute("SHOW statement_timeout").fetchone()[0] == "0"


def test_node_pg_application_name_in_pg_stat_activity(shoal, pg, role):
    require_node()
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    res = run_node(s, "application_name", "db", role)
    assert res["seen"] == {"node_app_alpha": ["node_app_alpha"],
                           "node_app_beta": ["node_app_beta"]}, res["seen"]
    assert res["show"] == {"node_app_alpha": "node_app_alpha",
                           "node_app_beta": "node_app_beta"}
    assert res["in_tx"] == "node_app_alpha"
    # pool_size 2: both applications' clients were served by the same (at most 2) backends.
    pids = set(res["pids"]["node_app_alpha"]) | set(res["pids"]["node_app_beta"])
    assert 1 <= len(pids) <= 2
