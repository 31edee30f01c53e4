"""Many hosts (issue 18): failover without health checks. The primary stops under a stream of
writes through a read-write alias and a replica is promoted; with host_check_interval off the
lost primary makes Shoal read its hosts' roles again at once (before, a standby's role was
trusted for 30 s and the promoted replica was skipped that long). A module of its own: it
changes the replica set's roles for good."""
import os
import time

from conftest import PG_BIN
from helpers import wait_until
from test_hosts_failover import USER, Writer, _host_rows


def test_failover_without_health_checks_finds_the_promoted_replica_within_5_s(shoal,
                                                                               pg_replicas):
    rs = pg_replicas
    r1 = rs.replicas[0]
    nodes = [rs.primary] + rs.replicas
    entry = {"host": ",".join(n.host for n in nodes),
             "port": ",".join(str(n.port) for n in nodes),
             "dbname": "postgres", "target_session_attrs": "read-write", "pool_size": 4}
    s = shoal(databases={"writes": entry},
              settings={"pool_mode": "transaction", "server_connect_timeout": 3,
                        "query_wait_timeout": 5, "server_login_retry": 1,
                        "host_check_interval": 0},
              pg_cluster=rs.primary)
    rs.primary.sql("CREATE TABLE fo_t (id int PRIMARY KEY)")
    rs.primary.sql("GRANT ALL ON fo_t TO %s" % USER)
    rs.wait_replayed()
    # Every host's role is known (and fresh) before the failover: each got a connection.
    held = [s.connect("writes", USER, autocommit=False) for _ in range(4)]
    for c in held:
        c.execute("SELECT 1")
    wait_until(lambda: all(r["role"] != "unknown" for r in _host_rows(s, "writes").values()),
               timeout=10, what="every role read")
    for c in held:
        c.close()
    assert _host_rows(s, "writes")[r1.port]["role"] == "standby"
    w = Writer(s)
    w.start()
    try:
        wait_until(lambda: len(w.acked) >= 50, timeout=20, what="writes on the primary")
        rs.primary.stop("fast")
        r1._run([os.path.join(PG_BIN, "pg_ctl"), "-D", r1.data, "-w", "promote"])
        promoted = time.monotonic()
        wait_until(lambda: any(p == r1.port for _, p, _ in w.acked), timeout=15,
                   what="a write on the promoted replica")
        first = min(t for _, p, t in w.acked if p == r1.port)
        wait_until(lambda: len([a for a in w.acked if a[1] == r1.port]) >= 20, timeout=20,
                   what="writes go on")
    finally:
        w.done.set()
        w.join(10)
    delay = first - promoted
    ids = {r[0] for r in r1.sql("SELECT id FROM fo_t")}
    acked = {a[0] for a in w.acked}
    print("failover without health checks: first write on the new primary %.2f s after "
          "promotion; %d writes acknowledged, %d lost, %d errors meanwhile"
          % (delay, len(acked), len(acked - ids), w.errors))
    assert delay < 5
    assert not acked - ids
    assert "the primary failed" in s.log()
    assert ":%d of writes: found as primary" % r1.port in s.log()
    assert all(r["checked"] is None for r in _host_rows(s, "writes").values())
