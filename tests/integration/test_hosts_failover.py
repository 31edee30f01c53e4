"""Many hosts (issue 18): failover with health checks. The primary stops under a stream of
writes through a read-write alias, a replica is promoted; writes reach the new primary within
5 s of the promotion and every acknowledged write is there. A module of its own: it changes the
replica set's roles for good."""
import os
import threading
import time

import psycopg

from admin_helpers import admin, show
from conftest import PG_BIN
from helpers import wait_until

USER = "trust_user"


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


class Writer(threading.Thread):
    """Inserts 1, 2, 3, ... one autocommit statement at a time through `writes`, reconnecting
    after an error; acked holds (id, port, time) of each acknowledged insert."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.acked, self.errors = s, [], 0
        self.stop_at = time.monotonic() + 60  # bounded whatever happens
        self.done = threading.Event()

    def run(self):
        n, conn = 0, None
        while not self.done.is_set() and time.monotonic() < self.stop_at:
            try:
                if conn is None:
                    conn = self.s.connect("writes", USER)
                n += 1
                port = conn.execute("INSERT INTO fo_t VALUES (%s) RETURNING inet_server_port()",
                                    (n,)).fetchone()[0]
                self.acked.append((n, port, time.monotonic()))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()


def write_alias(shoal, rs, pool_size, **settings):
    """Shoal with `writes`: a read-write alias over the primary and both replicas, in
    transaction mode, with settings."""
    nodes = [rs.primary] + rs.replicas
    entry = {"host": ",".join(n.host for n in nodes),
             "port": ",".join(str(n.port) for n in nodes),
             "dbname": "postgres", "target_session_attrs": "read-write",
             "pool_size": pool_size}
    s = shoal(databases={"writes": entry},
              settings={"pool_mode": "transaction", "server_connect_timeout": 3,
                        "server_login_retry": 1, **settings},
              pg_cluster=rs.primary)
    return s


def fail_over(rs, w, r1, writes_after):
    """With Writer w writing: stop the primary, promote r1, wait for writes_after writes on it.
    Returns (seconds from the promotion to the first write on r1, acknowledged ids lost)."""
    w.start()
    try:
        wait_until(lambda: len(w.acked) >= 50, timeout=20, what="writes on the primary")
        rs.primary.stop("fast")  # its walsenders hand the replicas all WAL first
        r1._run([os.path.join(PG_BIN, "pg_ctl"), "-D", r1.data, "-w", "promote"])
        promoted = time.monotonic()
        wait_until(lambda: any(p == r1.port for _, p, _ in w.acked), timeout=15,
                   what="a write on the promoted replica")
        first = min(t for _, p, t in w.acked if p == r1.port)
        wait_until(lambda: len([a for a in w.acked if a[1] == r1.port]) >= writes_after,
                   timeout=20, what="writes go on")
    finally:
        w.done.set()
        w.join(10)
    ids = {r[0] for r in r1.sql("SELECT id FROM fo_t")}
    return first - promoted, {a[0] for a in w.acked} - ids


def test_failover_writes_reach_the_promoted_replica_within_5_s(shoal, pg_replicas):
    rs = pg_replicas
    r1 = rs.replicas[0]
    s = write_alias(shoal, rs, 2, query_wait_timeout=5, host_check_interval="200ms",
                    host_check_timeout=2)
    rs.primary.sql("CREATE TABLE fo_t (id int PRIMARY KEY)")
    rs.primary.sql("GRANT ALL ON fo_t TO %s" % USER)
    rs.wait_replayed()
    w = Writer(s)
    delay, lost = fail_over(rs, w, r1, 50)
    acked = {a[0] for a in w.acked}
    print("failover: first write on the new primary %.2f s after promotion; %d writes "
          "acknowledged, %d lost, %d errors meanwhile" % (delay, len(acked), len(lost),
                                                           w.errors))
    assert delay < 5
    assert not lost
    assert {a[1] for a in w.acked} == {rs.primary.port, r1.port}
    assert _host_rows(s, "writes")[r1.port]["role"] == "primary"
    assert "role is now primary" in s.log()
