"""Many hosts (issue 18): a replica stopped under load is back in rotation within one health
check interval after it accepts connections again. A module of its own (its replica set)."""
import threading
import time

import psycopg

from admin_helpers import admin, show
from helpers import wait_until

USER = "trust_user"
INTERVAL = 0.5  # host_check_interval


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


class Readers:
    """n clients reading in a loop through `reads`, each reconnecting after an error; reads
    holds (port, time) of each answered read."""

    def __init__(self, s, n):
        self.s, self.reads, self.errors = s, [], 0
        self.done = threading.Event()
        self.stop_at = time.monotonic() + 60  # bounded whatever happens
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = None
        while not self.done.is_set() and time.monotonic() < self.stop_at:
            try:
                if conn is None:
                    conn = self.s.connect("reads", USER)
                port = conn.execute("SELECT inet_server_port()").fetchone()[0]
                self.reads.append((port, time.monotonic()))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(10)

    def first_on(self, port, after):
        return min((t for p, t in list(self.reads) if p == port and t >= after), default=None)


def _accepts(node):
    try:
        with psycopg.connect(host=node.host, port=node.port, user="postgres",
                             dbname="postgres", connect_timeout=2) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def test_stopped_replica_is_back_in_rotation_within_one_check_interval(shoal, pg_replicas):
    rs = pg_replicas
    r1, r2 = rs.replicas
    nodes = rs.replicas
    entry = {"host": ",".join(n.host for n in nodes),
             "port": ",".join(str(n.port) for n in nodes),
             "dbname": "postgres", "target_session_attrs": "standby", "pool_size": 4}
    s = shoal(databases={"reads": entry},
              settings={"pool_mode": "transaction", "server_connect_timeout": 3,
                        "query_wait_timeout": 10, "server_login_retry": 1,
                        "host_check_interval": "%dms" % (INTERVAL * 1000),
                        "host_check_timeout": 2},
              pg_cluster=rs.primary)
    load = Readers(s, 4)
    try:
        wait_until(lambda: load.first_on(r1.port, 0) and load.first_on(r2.port, 0),
                   timeout=15, what="reads on both replicas")
        r1.stop("fast")
        stopped = time.monotonic()
        wait_until(lambda: _host_rows(s, "reads")[r1.port]["breaker"] == "open", timeout=10,
                   what="r1 out of rotation")
        # Reads go on, on r2 alone, for a few intervals (the pool settles on r2's servers).
        wait_until(lambda: len([1 for p, t in list(load.reads)
                                if p == r2.port and t > stopped + 3 * INTERVAL]) > 20,
                   timeout=15, what="reads on r2 alone")
        errors_down = load.errors
        r1.start()
        back = wait_until(lambda: _accepts(r1) and time.monotonic(), timeout=30,
                          interval=0.02, what="r1 accepts connections")
        first = wait_until(lambda: load.first_on(r1.port, back - 1), timeout=15,
                           interval=0.02, what="a read on r1 again")
    finally:
        load.stop()
    delay = first - back
    print("replica back: first read on it %.2f s after it accepted connections "
          "(host_check_interval %.1f s); %d reads, %d errors while it was down"
          % (delay, INTERVAL, len(load.reads), errors_down))
    assert delay <= INTERVAL + 0.5  # one interval plus a janitor tick and a login
    # At most one failed transaction per client connected to it when it stopped.
    assert errors_down <= 4
    assert "%d of reads: breaker closed, health check passed" % r1.port in s.log()
