"""Many hosts (issue 18), the background side: the health check per host (host_check_interval),
against a real primary and two streaming replicas (`pg_basebackup -R`). The replica set is made
once for the module (tests that change roles come last); each test starts its own Shoal."""
import os
import time
import urllib.request

import psycopg
import pytest

from admin_helpers import admin, show
from conftest import PG_BIN
from helpers import free_port, wait_until

USER = "trust_user"


def _entry(rs, tsa, **kw):
    nodes = [rs.primary] + rs.replicas
    e = {"host": ",".join(n.host for n in nodes),
         "port": ",".join(str(n.port) for n in nodes),
         "dbname": "postgres", "target_session_attrs": tsa}
    e.update(kw)
    return e


def _start(shoal, rs, databases, **settings):
    cfg = {"pool_mode": "transaction", "server_connect_timeout": 3, "query_wait_timeout": 20,
           "server_login_retry": 1, "host_check_interval": "200ms", "host_check_timeout": 2}
    cfg.update(settings)
    return shoal(databases=databases, settings=cfg, pg_cluster=rs.primary)


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


def _checked(s, db):
    """SHOW HOSTS rows once every host of db has had a good check."""
    rows = _host_rows(s, db)
    return rows if all(r["checked"] is not None for r in rows.values()) else None


def test_health_check_reads_roles_and_positions_and_drives_the_breaker(shoal, pg_replicas):
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=2)})
    c = s.connect("reads", USER)
    c.execute("SELECT 1")  # the pool exists: its janitor checks the entry's hosts
    c.close()
    rows = wait_until(lambda: _checked(s, "reads"), timeout=10, what="every host checked")
    assert rows[rs.primary.port]["role"] == "primary"
    assert rows[rs.primary.port]["read_only"] == "off"
    for r in (r1, r2):
        assert rows[r.port]["role"] == "standby" and rows[r.port]["read_only"] == "on"
    # Positions are the servers' own: replayed on a standby, written on the primary.
    rs.wait_replayed()
    primary_lsn = int(rs.primary.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
                      [0][0])
    wait_until(lambda: all(int(_host_rows(s, "reads")[n.port]["lsn"]) >= primary_lsn
                           for n in [rs.primary, r1, r2]), timeout=10, what="positions read")
    # Checks are not servers: no host counts one, the standby alias never connected to the
    # primary, and checks keep coming (their age stays under a few intervals).
    rows = _host_rows(s, "reads")
    assert rows[rs.primary.port]["servers"] == 0
    assert all(float(r["checked"]) < 3 for r in rows.values())

    # A standby stopped with no client around: the check alone opens its breaker, one line.
    r1.stop("fast")
    try:
        wait_until(lambda: _host_rows(s, "reads")[r1.port]["breaker"] == "open", timeout=10,
                   what="r1's breaker open by the check")
        fails = _host_rows(s, "reads")[r1.port]["failures"]
        wait_until(lambda: _host_rows(s, "reads")[r1.port]["failures"] >= fails + 2,
                   timeout=15, what="more failed checks")  # it keeps being checked
        opened = [l for l in s.log().splitlines()
                  if ":%d of reads: breaker open" % r1.port in l]
        assert len(opened) == 1, opened
        assert "health check failed" in opened[0]
        # Clients are not sent to it meanwhile.
        for _ in range(10):
            c = s.connect("reads", USER)
            assert c.execute("SELECT inet_server_port()").fetchone()[0] == r2.port
            c.close()
    finally:
        r1.start()
    # Back within a check interval or so of answering, without any client trying it.
    wait_until(lambda: _host_rows(s, "reads")[r1.port]["breaker"] == "closed", timeout=15,
               interval=0.1, what="r1's breaker closed by a check")
    assert "%d of reads: breaker closed, health check passed" % r1.port in s.log()
    assert _host_rows(s, "reads")[r1.port]["role"] == "standby"


def test_health_check_off_by_default(shoal, pg_replicas):
    rs = pg_replicas
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=2)},
               host_check_interval=0)
    c = s.connect("reads", USER)
    c.execute("SELECT 1")
    rows = _host_rows(s, "reads")
    assert all(r["checked"] is None for r in rows.values())


def test_health_check_timeout_opens_the_breaker_of_a_host_that_never_answers(shoal,
                                                                             pg_replicas):
    """A host that takes the TCP connection and then says nothing (a hung server)."""
    import socket
    rs = pg_replicas
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # never accepted: connects succeed, the startup is never answered
    try:
        port = hole.getsockname()[1]
        entry = {"host": "127.0.0.1,127.0.0.1", "port": "%d,%d" % (rs.primary.port, port),
                 "dbname": "postgres", "target_session_attrs": "read-write"}
        s = _start(shoal, rs, {"writes": entry}, host_check_timeout="500ms")
        s.connect("writes", USER).execute("SELECT 1")
        wait_until(lambda: _host_rows(s, "writes")[port]["breaker"] == "open", timeout=10,
                   what="the silent host's breaker open")
        line = [l for l in s.log().splitlines() if ":%d of writes: breaker open" % port in l]
        assert len(line) == 1 and "health check failed: host_check_timeout" in line[0], line
        rows = _host_rows(s, "writes")
        assert rows[rs.primary.port]["breaker"] == "closed"
        assert rows[rs.primary.port]["checked"] is not None
        assert rows[port]["checked"] is None
    finally:
        hole.close()


@pytest.mark.parametrize("limit", ["bytes", "seconds"])
def test_replica_over_max_replica_lag_is_out_of_rotation_until_it_catches_up(shoal, pg_replicas,
                                                                            limit):
    rs = pg_replicas
    r1, r2 = rs.replicas
    lag = {"max_replica_lag_bytes": 8192} if limit == "bytes" else {"max_replica_lag": 1}
    http = free_port()
    # server_lifetime = 1: servers are replaced all the time, so reads go round the replicas
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=4)}, server_lifetime=1,
               http_port=http, **lag)
    c = s.connect("reads", USER)
    port_of = lambda: c.execute("SELECT inet_server_port()").fetchone()[0]  # noqa: E731
    wait_until(lambda: port_of() == r1.port, timeout=10, what="a read on r1")
    rs.primary.sql("CREATE TABLE IF NOT EXISTS lag_t (x int)")
    rs.wait_replayed()
    r1.sql("SELECT pg_wal_replay_pause()")
    try:
        # The primary moves on (about 70 kB of WAL); r1 receives it but does not replay it.
        rs.primary.sql("INSERT INTO lag_t SELECT generate_series(1, 2000)")
        wait_until(lambda: _host_rows(s, "reads")[r1.port]["lagging"] == "yes", timeout=15,
                   what="r1 out of rotation")
        row = _host_rows(s, "reads")[r1.port]
        if limit == "bytes":
            assert int(row["lag_bytes"]) > 8192
        assert "%d of reads: replica lag" % r1.port in s.log()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as m:
            metrics = m.read().decode()
        labels = 'database="reads",host="127.0.0.1",port="%d"' % r1.port
        assert "shoal_host_lagging{%s} 1\n" % labels in metrics
        assert "shoal_host_split_brain{%s} 0\n" % labels in metrics
        # No read lands on it from now on: no new server, its idle ones are not handed out.
        for _ in range(100):
            assert port_of() == r2.port
        # Its idle server is held back at once and closed at the janitor's next tick.
        wait_until(lambda: _host_rows(s, "reads")[r1.port]["servers"] == 0, timeout=5,
                   what="r1's idle server closed")
    finally:
        r1.sql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: _host_rows(s, "reads")[r1.port]["lagging"] == "no", timeout=15,
               what="r1 caught up")
    assert "%d of reads: replica caught up" % r1.port in s.log()
    wait_until(lambda: port_of() == r1.port, timeout=10, what="reads on r1 again")
    # One line each way: it did not flap in and out while paused.
    assert s.log().count(":%d of reads: replica lag" % r1.port) == 1
    assert s.log().count(":%d of reads: replica caught up" % r1.port) == 1


@pytest.mark.parametrize("ryw", ["on", "off"])
def test_read_your_writes_through_a_lagging_replica(shoal, pg_replicas, ryw):
    """200 write-then-read loops through one application (a connection to the read-write
    alias and one to the standby alias of the same hosts) while r1 does not replay."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = _start(shoal, rs, {"writes": _entry(rs, "read-write", pool_size=2),
                           "reads": _entry(rs, "standby", pool_size=4)},
               read_your_writes=ryw, read_your_writes_window=5)
    rs.primary.sql("CREATE TABLE IF NOT EXISTS ryw_t (mode text, id int)")
    rs.primary.sql("GRANT ALL ON ryw_t TO %s" % USER)
    rs.wait_replayed()
    # Four servers for the reads, two on each replica (transactions held open at once); the
    # pool then takes its idle servers in turn.
    held = [s.connect("reads", USER, autocommit=False) for _ in range(4)]
    ports = [c.execute("SELECT inet_server_port()").fetchone()[0] for c in held]
    assert sorted(ports) == sorted([r1.port, r2.port] * 2), ports
    for c in held:
        c.close()
    w = s.connect("writes", USER)
    # The fixture's clusters run with synchronous_commit = off: a commit would reach the
    # replicas only at the WAL writer's next round (200 ms). An application that reads its
    # writes from replicas commits with it on.
    w.execute("SET synchronous_commit = on")
    r = s.connect("reads", USER)
    r1.sql("SELECT pg_wal_replay_pause()")
    stale, on_r1 = 0, 0
    t0 = time.monotonic()
    try:
        for i in range(200):
            w.execute("INSERT INTO ryw_t VALUES (%s, %s)", (ryw, i))
            n, port = r.execute("SELECT count(*), inet_server_port() FROM ryw_t "
                                "WHERE mode = %s AND id = %s", (ryw, i)).fetchone()
            stale += n == 0
            on_r1 += port == r1.port
    finally:
        r1.sql("SELECT pg_wal_replay_resume()")
    print("read_your_writes=%s: %d stale reads of 200, %d on the paused replica, %.1f s"
          % (ryw, stale, on_r1, time.monotonic() - t0))
    if ryw == "on":
        assert stale == 0 and on_r1 == 0
    else:
        assert stale > 0 and on_r1 > 0  # what the feature is for


def _try_write(s, tag):
    """One write through the read-write alias on a new connection: the port it landed on, or
    None when it was refused (no host may take writes)."""
    try:
        with s.connect("writes", USER) as c:
            c.execute("INSERT INTO sb_t VALUES (%s)", (tag,))
            return c.execute("SELECT inet_server_port()").fetchone()[0]
    except psycopg.Error:
        return None


def _tagged(node, tag):
    return node.sql("SELECT count(*) FROM sb_t WHERE tag = %s", (tag,))[0][0]


def test_split_brain_sends_writes_to_neither_primary_until_one_stops(shoal, pg_replicas):
    """Last in the module: it promotes r1 and stops the old primary."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = _start(shoal, rs, {"writes": _entry(rs, "read-write", pool_size=2),
                           "reads": _entry(rs, "prefer-standby", pool_size=2)},
               query_wait_timeout=1)
    rs.primary.sql("CREATE TABLE IF NOT EXISTS sb_t (tag text)")
    rs.primary.sql("GRANT ALL ON sb_t TO %s" % USER)
    assert _try_write(s, "before") == rs.primary.port
    rs.wait_replayed()
    s.connect("reads", USER).execute("SELECT 1")  # the read alias's hosts are checked too
    # A replica promoted while the primary runs: two hosts claim primary.
    r1._run([os.path.join(PG_BIN, "pg_ctl"), "-D", r1.data, "-w", "promote"])
    wait_until(lambda: _host_rows(s, "writes")[r1.port]["split_brain"] == "yes", timeout=10,
               what="split brain seen")
    rows = _host_rows(s, "writes")
    assert rows[rs.primary.port]["split_brain"] == "yes"
    assert rows[r2.port]["split_brain"] == "no"
    loud = [l for l in s.log().splitlines() if "SPLIT BRAIN in writes" in l]
    assert len(loud) == 1 and ":%d" % r1.port in loud[0], loud
    # Zero writes reach either while both claim it (each attempt waits out
    # query_wait_timeout = 1 s); reads are served as configured.
    refused = 0
    for i in range(5):
        refused += _try_write(s, "during") is None
    assert refused == 5
    assert _tagged(rs.primary, "during") == 0 and _tagged(r1, "during") == 0
    assert s.connect("reads", USER).execute("SELECT 1").fetchone()[0] == 1
    # The old primary stops: the split is over, writes go to the one left (r1).
    rs.primary.stop("fast")
    t0 = time.monotonic()
    port = wait_until(lambda: _try_write(s, "after"), timeout=15, what="writes again")
    assert port == r1.port
    print("writes again %.1f s after the old primary stopped" % (time.monotonic() - t0))
    assert "split brain in writes is over: 127.0.0.1:%d" % r1.port in s.log()
    assert _tagged(r1, "after") >= 1 and _tagged(r1, "before") == 1
