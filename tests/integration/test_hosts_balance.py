"""Many hosts (issue 18), the operator's side: weighted balancing (weight=), per-host
transaction counts and state in SHOW HOSTS, and DISABLE HOST / ENABLE HOST for planned
maintenance, against a real primary and two streaming replicas (`pg_basebackup -R`)."""
import threading
import time
import urllib.request

import psycopg
import pytest

from admin_helpers import admin, show
from helpers import free_port, wait_until
from wire import Wire

USER = "trust_user"  # created on the primary by the fixture, replicated to the standbys


def _start(shoal, rs, databases, **settings):
    cfg = {"pool_mode": "transaction", "server_connect_timeout": 3, "query_wait_timeout": 20,
           "server_login_retry": 1}
    cfg.update(settings)
    return shoal(databases=databases, settings=cfg, pg_cluster=rs.primary)


def _replicas_entry(rs, **kw):
    r1, r2 = rs.replicas
    e = {"host": "127.0.0.1,127.0.0.1", "port": "%d,%d" % (r1.port, r2.port),
         "dbname": "postgres"}
    e.update(kw)
    return e


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


def _waiting(s, db):
    with admin(s) as a:
        _, rows = show(a, "POOLS")
    return sum(r["cl_waiting"] for r in rows if r["database"] == db)


def _port(conn):
    return conn.execute("SELECT inet_server_port()").fetchone()[0]


@pytest.mark.parametrize("lb", ["round-robin", "least-connections"])
def test_weighted_hosts_share_1000_read_transactions_by_weight(shoal, pg_replicas, lb):
    """weight=3,1: 20 session-mode clients hold 20 servers, 15 on the first replica and 5 on
    the second; 1,000 reads between them land 3:1 (within 10% of each share), counted both by
    the server's port and by SHOW HOSTS' per-host transactions."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = _start(shoal, rs, {"reads": _replicas_entry(rs, weight="3,1", load_balance_hosts=lb,
                                                     pool_size=20, pool_mode="session")})
    clients = []
    for _ in range(20):
        c = s.connect("reads", USER)
        c.execute("SELECT 1")  # its server is linked before the next client comes
        clients.append(c)
    before = _host_rows(s, "reads")
    counts = {r1.port: 0, r2.port: 0}
    for i in range(1000):
        counts[_port(clients[i % 20])] += 1
    after = _host_rows(s, "reads")
    assert 675 <= counts[r1.port] <= 825, counts
    assert 225 <= counts[r2.port] <= 275, counts
    for port, n in counts.items():
        assert after[port]["transactions"] - before[port]["transactions"] == n
        assert after[port]["state"] == "up"
    assert (after[r1.port]["weight"], after[r2.port]["weight"]) == (3, 1)
    assert (after[r1.port]["servers"], after[r2.port]["servers"]) == (15, 5)
    assert (after[r1.port]["in_use"], after[r2.port]["in_use"]) == (15, 5)
    assert (after[r1.port]["idle"], after[r2.port]["idle"]) == (0, 0)
    for c in clients:
        c.close()
    # session mode: each server goes back to the idle list when its client leaves
    wait_until(lambda: {p: (r["in_use"], r["idle"]) for p, r in _host_rows(s, "reads").items()}
               == {r1.port: (0, 15), r2.port: (0, 5)}, timeout=10, what="all servers idle")


def _read_transactions(s, db, clients, total):
    """clients threads, each on its own connection, run total/clients reads in transaction
    mode; how many each replica (by server port) answered."""
    conns = [s.connect(db, USER) for _ in range(clients)]
    counts, lock, errors = {}, threading.Lock(), []

    def run(c):
        try:
            for _ in range(total // clients):
                port = _port(c)
                with lock:
                    counts[port] = counts.get(port, 0) + 1
        except Exception as e:  # reported below: a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads), errors
    for c in conns:
        c.close()
    return counts


@pytest.mark.parametrize("weight,shares,turn_wait", [
    (None, (500, 500), "2s"), ("3,1", (750, 250), "2s"), (None, (500, 500), "0"),
    ("3,1", (750, 250), "0")])
def test_transaction_mode_balances_each_read_transaction_over_the_replicas(
        shoal, pg_replicas, weight, shares, turn_wait):
    """The host choice counts per transaction, not per server connection: 10 transaction-mode
    clients run 1,000 reads between them through a standby alias with two replicas, and each
    replica answers its share (500/500 round-robin, 750/250 with weight=3,1), whichever idle
    servers the clients happen to find: within 10% with host_turn_wait (a client whose host is
    next in turn but busy waits for it). With host_turn_wait = 0 (the default) it takes the
    other host's idle server instead, so on a loaded machine the shares drift (778/222 for 3,1
    in one CI run with two pytest processes on 2 cores; 868/132 and 891/109 under TSan beside
    two builds): there the test asks only that each host answers 5% at least. One worker:
    with several, a worker with no idle server takes another worker's by that worker's turn,
    and the 3,1 shares came out 813/187 and 852/148 (docs/replicas.md)."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    kw = {"weight": weight} if weight else {}
    s = _start(shoal, rs, {"reads": _replicas_entry(rs, target_session_attrs="standby",
                                                     pool_size=20, **kw)},
               workers=1, host_turn_wait=turn_wait)
    counts = _read_transactions(s, "reads", 10, 1000)
    assert set(counts) <= {r1.port, r2.port}, counts
    for port, share in zip((r1.port, r2.port), shares):
        if turn_wait == "0":
            assert counts.get(port, 0) >= 50, counts
        else:
            assert share * 0.9 <= counts.get(port, 0) <= share * 1.1, counts
    rows = _host_rows(s, "reads")
    assert sum(rows[p]["transactions"] for p in (r1.port, r2.port)) >= 1000


def test_disable_host_drains_a_replica_and_enable_host_brings_it_back(shoal, pg_replicas):
    """DISABLE HOST: no new server to the host and its idle servers are not handed out (closed
    at release or the janitor's tick), so every read goes to the other replica; ENABLE HOST
    puts it back. server_lifetime = 1 keeps new servers being placed."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    http = free_port()
    s = _start(shoal, rs, {"reads": _replicas_entry(rs, pool_size=4)}, server_lifetime=1,
               http_port=http)
    c = s.connect("reads", USER)
    wait_until(lambda: _port(c) == r1.port, timeout=10, what="a read on r1")
    with admin(s) as a:
        a.execute("DISABLE HOST reads 127.0.0.1:%d" % r1.port)
        with pytest.raises(psycopg.errors.ProtocolViolation, match="not a host of database"):
            a.execute("DISABLE HOST reads 127.0.0.1:1")
        with pytest.raises(psycopg.errors.ProtocolViolation, match="no such database"):
            a.execute("DISABLE HOST nosuch 127.0.0.1:%d" % r1.port)
        with pytest.raises(psycopg.errors.ProtocolViolation, match="usage"):
            a.execute("ENABLE HOST reads")
    assert "DISABLE HOST reads 127.0.0.1:%d" % r1.port in s.log()
    for _ in range(100):
        assert _port(c) == r2.port
    wait_until(lambda: _host_rows(s, "reads")[r1.port]["servers"] == 0, timeout=10,
               what="r1's servers closed")
    row = _host_rows(s, "reads")[r1.port]
    assert row["state"] == "disabled" and row["breaker"] == "closed"
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
        metrics = r.read().decode()
    labels = 'database="reads",host="127.0.0.1",port="%d"' % r1.port
    assert "shoal_host_disabled{%s} 1\n" % labels in metrics
    assert "shoal_host_transactions_total{%s} %d\n" % (labels, row["transactions"]) in metrics
    with admin(s) as a:
        a.execute("ENABLE HOST reads 127.0.0.1:%d" % r1.port)
    assert _host_rows(s, "reads")[r1.port]["state"] == "up"
    wait_until(lambda: _port(c) == r1.port, timeout=10, what="reads on r1 again")


def _writes_entry(nodes, **kw):
    e = {"host": ",".join(n.host for n in nodes), "port": ",".join(str(n.port) for n in nodes),
         "dbname": "postgres", "target_session_attrs": "read-write"}
    e.update(kw)
    return e


def test_write_with_no_primary_fails_after_primary_wait_timeout(shoal, pg_replicas):
    """A read-write alias whose primary is out (DISABLE HOST; the others are standbys): each
    write waits primary_wait_timeout (1 s) and fails with 57P03, not query_wait_timeout's
    08P01 after 20 s. One warning for the episode however many fail, one line when it ends."""
    rs = pg_replicas
    primary = "%s:%d" % (rs.primary.host, rs.primary.port)
    s = _start(shoal, rs, {"writes": _writes_entry([rs.primary] + rs.replicas)},
               primary_wait_timeout=1)
    with s.connect("writes", USER) as c:
        assert _port(c) == rs.primary.port
    with admin(s) as a:
        a.execute("DISABLE HOST writes " + primary)
    for _ in range(3):  # the raw client: psycopg hides a FATAL's SQLSTATE
        w = Wire(s.host, s.port, timeout=15)
        assert w.startup(USER, "writes") is None
        t0 = time.monotonic()
        _, err, rfq = w.query("CREATE TEMP TABLE t (x int)")
        waited = time.monotonic() - t0
        w.close()
        assert err and err["C"] == "57P03" and rfq is None, err
        assert "no primary host for database writes within primary_wait_timeout" in err["M"]
        assert 0.9 <= waited < 10, waited
    assert s.log().count("WARNING pool trust_user@writes: no primary host") == 1
    with admin(s) as a:
        a.execute("ENABLE HOST writes " + primary)
    wait_until(lambda: "3 writes failed by primary_wait_timeout" in s.log(), timeout=10,
               what="the episode's end logged")
    with s.connect("writes", USER) as c:
        assert _port(c) == rs.primary.port


def test_write_waits_for_a_primary_that_comes_back(shoal, pg_replicas):
    """The primary out (DISABLE HOST) with primary_wait_timeout = 20: a write waits, and goes
    through once ENABLE HOST brings the primary back, long before the timeout."""
    rs = pg_replicas
    nodes = [rs.primary] + rs.replicas
    s = _start(shoal, rs, {"writes": _writes_entry(nodes)}, primary_wait_timeout=20)
    with admin(s) as a:
        a.execute("DISABLE HOST writes %s:%d" % (rs.primary.host, rs.primary.port))
    out = {}

    def write():
        t0 = time.monotonic()
        try:
            with s.connect("writes", USER) as c:
                out["port"] = _port(c)
        except psycopg.Error as e:
            out["error"] = e
        out["waited"] = time.monotonic() - t0

    t = threading.Thread(target=write, daemon=True)
    t.start()
    wait_until(lambda: any(r["port"] != rs.primary.port and r["role"] == "standby"
                           for r in _host_rows(s, "writes").values()),
               timeout=10, what="a standby tried and refused")
    wait_until(lambda: _waiting(s, "writes") == 1, timeout=10, what="the write waiting")
    assert t.is_alive() and not out, out
    with admin(s) as a:
        a.execute("ENABLE HOST writes %s:%d" % (rs.primary.host, rs.primary.port))
    t.join(timeout=20)
    assert out.get("port") == rs.primary.port, out
    assert out["waited"] < 15, out
