"""Many hosts (issue 18): failover without health checks. The primary stops under a stream of
writes through a read-write alias and a replica is promoted; with host_check_interval off the
lost primary makes Shoal read its hosts' roles again at once (before, a standby's role was
trusted for 30 s and the promoted replica was skipped that long). A module of its own: it
changes the replica set's roles for good."""
from helpers import wait_until
from test_hosts_failover import USER, Writer, _host_rows, fail_over, write_alias


def test_failover_without_health_checks_finds_the_promoted_replica_within_5_s(shoal,
                                                                               pg_replicas):
    rs = pg_replicas
    r1 = rs.replicas[0]
    s = write_alias(shoal, rs, 4, query_wait_timeout=5, host_check_interval=0)
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
    delay, lost = fail_over(rs, w, r1, 20)
    acked = {a[0] for a in w.acked}
    print("failover without health checks: first write on the new primary %.2f s after "
          "promotion; %d writes acknowledged, %d lost, %d errors meanwhile"
          % (delay, len(acked), len(lost), w.errors))
    assert delay < 5
    assert not lost
    assert "the primary failed" in s.log()
    assert ":%d of writes: found as primary" % r1.port in s.log()
    assert all(r["checked"] is None for r in _host_rows(s, "writes").values())
