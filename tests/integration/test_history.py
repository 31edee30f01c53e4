"""/api/history: the dashboard's last 15 minutes, kept by Shoal so that a reloaded page starts
with its charts full: per pool and in total, TPS/QPS, query and transaction latency quantiles,
servers, waiting clients, login failures and client errors (also by SQLSTATE)."""
import json
import subprocess
import urllib.request

import psycopg
import pytest

from helpers import db_entry, free_port, wait_until


def history(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/history" % port, timeout=10) as r:
        h = json.loads(r.read())
    fields = h["fields"]
    rows = lambda pts: [dict(zip(fields, p)) for p in pts]  # noqa: E731
    return h, rows(h["total"]), {(p["database"], p["user"]): rows(p["points"])
                                 for p in h["pools"]}


def test_history_has_rates_latency_and_errors(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db, user=role)},
              settings={"http_port": port, "default_pool_size": 2})
    h, total, pools = history(port)
    assert h["step_s"] == 2 and h["fields"][0] == "t"
    pgbench = ["pgbench", "-h", "127.0.0.1", "-p", str(s.port), "-U", role, "-n", "-S",
               "-c", "4", "-T", "5", "app"]
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(s.port), "-U", role, "-i", "-s",
                    "1", "-q", "app"], check=True, capture_output=True, timeout=60)
    subprocess.run(pgbench, check=True, capture_output=True, timeout=60)

    def busy_points():
        _, t, p = history(port)
        busy = [x for x in p.get(("app", role), []) if x["tps"] > 0]
        return (t, p, busy) if len(busy) >= 2 else None
    total, pools, busy = wait_until(busy_points, 10, interval=0.5, what="two busy samples")
    for x in busy:
        assert x["qps"] >= x["tps"] > 0
        assert 0 < x["query_p50_ms"] <= x["query_p99_ms"] <= 10000
        assert x["xact_p99_ms"] > 0 and x["max"] == 2 and x["active"] <= 2
    assert max(x["tps"] for x in total) >= max(x["tps"] for x in busy)
    ts = [x["t"] for x in total]
    assert ts == sorted(ts) and 1.5 <= ts[-1] - ts[-2] <= 4, ts[-3:]
    assert not any(x["errors_per_s"] for x in total), total
    # a client error: counted by SQLSTATE, and as a rate in the next sample
    c = s.connect("app", role)
    with pytest.raises(psycopg.errors.DivisionByZero):
        c.execute("SELECT 1/0")
    wait_until(lambda: any(x["errors_per_s"] > 0 for x in history(port)[1]), 6, interval=0.5,
               what="the error in a sample")
    by_state = {e["sqlstate"]: e for e in history(port)[0]["errors"]}
    assert by_state["22012"]["server"] == 1, by_state


def test_api_pools_lists_the_hosts_of_a_host_list(shoal, pg, role_db):
    """The dashboard's hosts card: every host of a host list with its role, breaker, servers,
    connections started and failures (a dead second host: its breaker opens)."""
    role, db = role_db
    port, dead = free_port(), free_port()
    entry = "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=%s" % (pg.port, dead, db, role)
    s = shoal(databases={"app": entry}, settings={"http_port": port, "pool_mode": "session"})
    conns = [s.connect("app", role) for _ in range(3)]  # round robin: the dead host is tried
    for c in conns:
        assert c.execute("SELECT 1").fetchone() == (1,)

    def hosts():
        with urllib.request.urlopen("http://127.0.0.1:%d/api/pools" % port, timeout=10) as r:
            return {h["port"]: h for h in json.loads(r.read())["hosts"]}
    hs = wait_until(lambda: (lambda h: h if h.get(dead, {}).get("failures") else None)(hosts()),
                    5, interval=0.2, what="the dead host's failure")
    assert set(hs) == {pg.port, dead} and all(h["database"] == "app" for h in hs.values())
    assert hs[dead]["breaker"] in ("open", "half-open") and hs[dead]["servers"] == 0
    assert hs[pg.port]["breaker"] == "closed" and hs[pg.port]["servers"] == 3
    assert hs[pg.port]["connects"] >= 3
