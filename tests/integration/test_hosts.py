"""Many hosts (issue 18): host lists per database entry, target_session_attrs and a circuit
breaker per host, against a real primary and two streaming replicas (`pg_basebackup -R`).
The replica set is made once for the module; each test starts its own Shoal."""
import time
import urllib.request

import psycopg
import pytest

from admin_helpers import admin, show
from helpers import free_port, wait_until

USER = "trust_user"  # created on the primary by the fixture, replicated to the standbys


def _hosts(rs, order=None):
    nodes = order or [rs.primary] + rs.replicas
    return {"host": ",".join(n.host for n in nodes),
            "port": ",".join(str(n.port) for n in nodes)}


def _entry(rs, tsa, **kw):
    e = dict(_hosts(rs), dbname="postgres", target_session_attrs=tsa)
    e.update(kw)
    return e


def _start(shoal, rs, databases, **settings):
    cfg = {"pool_mode": "transaction", "server_connect_timeout": 3, "query_wait_timeout": 20,
           "server_login_retry": 1}
    cfg.update(settings)
    return shoal(databases=databases, settings=cfg, pg_cluster=rs.primary)


def _where(conn):
    return conn.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone()


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_standby_alias_reads_replicas_and_read_write_alias_writes_primary(shoal, pg_replicas,
                                                                          mode):
    rs = pg_replicas
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=4),
                           "writes": _entry(rs, "read-write", pool_size=2)}, pool_mode=mode)
    replica_ports = {r.port for r in rs.replicas}
    rs.primary.sql("GRANT CREATE ON SCHEMA public TO %s" % USER)
    w = s.connect("writes", USER)
    assert _where(w) == (False, rs.primary.port)
    w.execute("CREATE TABLE IF NOT EXISTS hosts_t (x int)")
    w.execute("INSERT INTO hosts_t VALUES (1)")
    assert w.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    rs.wait_replayed()
    seen = set()
    for _ in range(20):
        c = s.connect("reads", USER)
        in_recovery, port = _where(c)
        assert in_recovery and port in replica_ports
        assert c.execute("SELECT count(*) FROM hosts_t").fetchone()[0] >= 1
        seen.add(port)
        c.close()
    assert seen and seen <= replica_ports  # one at a time: one server, handed round
    # A write through the standby alias fails as on any standby; the primary was never used.
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        s.connect("reads", USER).execute("INSERT INTO hosts_t VALUES (2)")
    rows = _host_rows(s, "reads")
    assert rows[rs.primary.port]["role"] == "primary"
    assert rows[rs.primary.port]["servers"] == 0
    for p in replica_ports:  # a replica not used yet has not been asked
        assert rows[p]["role"] in (("standby",) if p in seen else ("standby", "unknown"))
        assert rows[p]["breaker"] == "closed"
    assert _host_rows(s, "writes")[rs.primary.port]["servers"] >= 1


def test_round_robin_spreads_read_transactions_evenly_over_the_replicas(shoal, pg_replicas):
    """Round-robin picks a host per new server connection; transactions follow the
    connections. 20 session-mode clients hold 20 servers, then run 1,000 reads between them."""
    rs = pg_replicas
    http = free_port()
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=20, pool_mode="session")},
               http_port=http)
    clients = []
    for _ in range(20):
        c = s.connect("reads", USER)
        c.execute("SELECT 1")  # its server is linked (and its role checked) before the next
        clients.append(c)
    counts = {}
    for i in range(1000):
        port = clients[i % 20].execute("SELECT inet_server_port()").fetchone()[0]
        counts[port] = counts.get(port, 0) + 1
    assert set(counts) == {r.port for r in rs.replicas}
    for port, n in counts.items():
        assert 450 <= n <= 550, counts
    rows = _host_rows(s, "reads")
    assert rows[rs.primary.port]["servers"] == 0
    assert sorted(rows[r.port]["servers"] for r in rs.replicas) == [10, 10]
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
        metrics = r.read().decode()
    for rep in rs.replicas:
        labels = 'database="reads",host="127.0.0.1",port="%d"' % rep.port
        assert "shoal_host_servers{%s} 10\n" % labels in metrics
        assert "shoal_host_standby{%s} 1\n" % labels in metrics
        assert "shoal_host_breaker_open{%s} 0\n" % labels in metrics


def _connects_while_open(log, port):
    """Connections started to host:port while the log says its breaker is open."""
    state, bad = "closed", []
    for line in log.splitlines():
        if ":%d of reads: breaker open" % port in line:
            state = "open"
        elif ":%d of reads: breaker half-open" % port in line:
            state = "half-open"
        elif ":%d of reads: breaker closed" % port in line:
            state = "closed"
        elif "127.0.0.1:%d/postgres connecting" % port in line and state == "open":
            bad.append(line)
    return bad


def test_stopped_replica_gets_no_connections_while_its_breaker_is_open(shoal, pg_replicas):
    rs = pg_replicas
    r1, r2 = rs.replicas
    # server_lifetime = 1: servers are replaced all the time, so new connections keep being
    # placed, and a sequential client's reads go round the replicas.
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=4)}, server_lifetime=1)
    c = s.connect("reads", USER)

    def read_on():
        try:
            return _where(c)[1]
        except psycopg.Error:  # the one in flight on r1 when it stopped
            return None

    wait_until(lambda: read_on() == r1.port, timeout=10, what="a read on r1")
    r1.stop("fast")
    try:
        # The lost connections make r1's breaker half-open; the next connection to it is the
        # probe, refused, which opens it. Reads go on meanwhile (servers are replaced).
        wait_until(lambda: read_on() and "%d of reads: breaker open" % r1.port in s.log(),
                   timeout=10, what="r1's breaker open")
        # Reads keep landing on r2 while r1 is down (its breaker opens again after each
        # refused half-open probe, for longer each time).
        t_end = time.monotonic() + 2
        n = 0
        while time.monotonic() < t_end:
            assert read_on() == r2.port
            n += 1
        assert n > 20
        row = _host_rows(s, "reads")[r1.port]
        assert row["failures"] >= 2 and row["servers"] == 0
        assert "breaker half-open" in s.log()
    finally:
        r1.start()
    # Back in rotation once it answers: the next half-open probe closes the breaker.
    wait_until(lambda: read_on() == r1.port, timeout=40, interval=0.1,
               what="reads on the returned replica")
    assert _host_rows(s, "reads")[r1.port]["breaker"] == "closed"
    assert "%d of reads: breaker closed, back in rotation" % r1.port in s.log()
    assert _connects_while_open(s.log(), r1.port) == []


def test_pgbouncer_host_list_disable_then_reload_to_round_robin(shoal, pg_replicas):
    """A PgBouncer-style entry (host list, one port each, load_balance_hosts): disable sends
    every server to the first host; RELOAD to round-robin recycles them over both."""
    import signal
    rs = pg_replicas
    r1, r2 = rs.replicas
    entry = "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=postgres pool_mode=session" % (
        r1.port, r2.port)
    s = _start(shoal, rs, {"ro": entry + " load_balance_hosts=disable"})
    clients = [s.connect("ro", USER) for _ in range(4)]
    assert {_where(c)[1] for c in clients} == {r1.port}
    for c in clients:
        c.close()
    text = open(s.ini).read()
    with open(s.ini, "w") as f:
        f.write(text.replace("load_balance_hosts=disable", "load_balance_hosts=round-robin"))
    s.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in s.log(), timeout=5, what="reload")
    # the idle servers of the old setting close at the janitor's tick
    wait_until(lambda: _host_rows(s, "ro")[r1.port]["servers"] == 0, timeout=10,
               what="old servers closed")
    clients = [s.connect("ro", USER) for _ in range(4)]
    ports = [_where(c)[1] for c in clients]
    assert sorted(ports) == sorted([r1.port, r2.port] * 2), ports
    rows = _host_rows(s, "ro")
    assert rows[r1.port]["role"] == "unknown"  # target_session_attrs=any: never asked
