"""Many hosts (issue 18), the background side: the health check per host (host_check_interval),
against a real primary and two streaming replicas (`pg_basebackup -R`). The replica set is made
once for the module (tests that change roles come last); each test starts its own Shoal."""
import pytest

from admin_helpers import admin, show
from helpers import wait_until

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


@pytest.mark.parametrize("limit", ["bytes", "seconds"])
def test_replica_over_max_replica_lag_is_out_of_rotation_until_it_catches_up(shoal, pg_replicas,
                                                                            limit):
    rs = pg_replicas
    r1, r2 = rs.replicas
    lag = {"max_replica_lag_bytes": 8192} if limit == "bytes" else {"max_replica_lag": 1}
    # server_lifetime = 1: servers are replaced all the time, so reads go round the replicas
    s = _start(shoal, rs, {"reads": _entry(rs, "standby", pool_size=4)}, server_lifetime=1,
               **lag)
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
        # No read lands on it from now on: no new server, its idle ones are not handed out.
        for _ in range(100):
            assert port_of() == r2.port
        assert _host_rows(s, "reads")[r1.port]["servers"] == 0
    finally:
        r1.sql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: _host_rows(s, "reads")[r1.port]["lagging"] == "no", timeout=15,
               what="r1 caught up")
    assert "%d of reads: replica caught up" % r1.port in s.log()
    wait_until(lambda: port_of() == r1.port, timeout=10, what="reads on r1 again")
