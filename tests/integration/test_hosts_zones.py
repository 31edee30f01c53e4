"""Many hosts (issue 18): zones. Hosts carry a zone (zone=a,b in the entry); the `zone` setting
names this instance's: its healthy hosts are chosen first, the others only as a fallback. Two
loopback replicas tagged with zones stand for two regions."""
import json
import socket
import threading
import time
import urllib.request

import psycopg
import pytest

from admin_helpers import admin, show
from helpers import free_port, wait_until
from test_hosts_balance import _read_transactions

USER = "trust_user"


def _host_rows(s, db):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return {r["port"]: r for r in rows if r["database"] == db}


def _reads(s, clients, each):
    """clients threads run each reads in transaction mode: the count per server port."""
    return _read_transactions(s, "reads", clients, clients * each)


def _api_hosts(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/pools" % port, timeout=10) as r:
        return {h["port"]: h for h in json.loads(r.read())["hosts"]}


def _start(shoal, rs, zone, **extra):
    r1, r2 = rs.replicas
    entry = {"host": "127.0.0.1,127.0.0.1", "port": "%d,%d" % (r1.port, r2.port),
             "dbname": "postgres", "target_session_attrs": "standby", "zone": "a,b",
             "pool_size": 4}
    # One worker: a worker takes its own idle servers first, so with several a client's worker
    # may hold only the far zone's idle server while another holds the near one
    # (docs/replicas.md, Zones), which the shares below do not allow for.
    settings = {"pool_mode": "transaction", "server_connect_timeout": 3,
                "query_wait_timeout": 10, "server_login_retry": 1,
                "host_check_interval": "200ms", "host_check_timeout": 2, "workers": 1}
    if zone:
        settings["zone"] = zone
    settings.update(extra)
    return shoal(databases={"reads": entry}, settings=settings, pg_cluster=rs.primary)


def _hold_servers(s, n):
    """n clients each hold a server in a transaction at once, so that the pool opens n (placed
    by the host rule), then let them go: the reads below then find servers on every host the
    rule allows, however the reading threads happen to overlap on a loaded machine (on one,
    a single server once served all 400 reads of the no-zone case)."""
    conns = [s.connect("reads", USER) for _ in range(n)]
    for c in conns:
        c.execute("BEGIN")
        c.execute("SELECT 1")
    for c in conns:
        c.execute("COMMIT")
        c.close()


@pytest.mark.parametrize("zone", ["b", None])
def test_hosts_of_this_instance_s_zone_are_chosen_first(shoal, pg_replicas, zone):
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = _start(shoal, rs, zone)
    _hold_servers(s, 4)
    counts = _reads(s, 4, 100)
    rows = _host_rows(s, "reads")
    assert (rows[r1.port]["zone"], rows[r2.port]["zone"]) == ("a", "b")
    print("zone=%s: reads per replica %s" % (zone, counts))
    if zone:
        assert counts == {r2.port: 400}, counts  # all in the instance's zone
        assert rows[r1.port]["servers"] == 0
    else:
        assert counts.get(r1.port, 0) > 100 and counts.get(r2.port, 0) > 100, counts


def test_other_zones_are_the_fallback_while_the_own_zone_is_down(shoal, pg_replicas):
    rs = pg_replicas
    r1, r2 = rs.replicas
    http = free_port()
    s = _start(shoal, rs, "b", http_port=http)
    c = s.connect("reads", USER)
    port = lambda: c.execute("SELECT inet_server_port()").fetchone()[0]  # noqa: E731
    assert port() == r2.port
    r2.stop("fast")
    try:
        wait_until(lambda: _host_rows(s, "reads")[r2.port]["breaker"] == "open", timeout=10,
                   what="the own zone's replica out")

        def on_r1():
            try:
                return port() == r1.port
            except psycopg.Error:  # the read in flight when its server went away
                return False
        wait_until(on_r1, timeout=10, what="reads fall back to the other zone")
        for _ in range(20):
            assert port() == r1.port
        # The dashboard's feed: each host's zone and one-word state.
        api = _api_hosts(http)
        assert (api[r1.port]["zone"], api[r2.port]["zone"]) == ("a", "b")
        assert api[r2.port]["state"] == "broken" and api[r1.port]["state"] == "up"
        assert api[r1.port]["transactions"] >= 20
    finally:
        r2.start()
    # Back: the reads return to the own zone (its first server at once, then every idle pick).
    t0 = time.monotonic()
    wait_until(lambda: all(port() == r2.port for _ in range(10)), timeout=15,
               what="reads back in the own zone")
    print("reads back in the own zone %.2f s after its replica started" % (time.monotonic() - t0))


def test_max_host_connections_limits_each_host_of_a_list(shoal, pg_replicas):
    """max_host_connections = 2 with two replicas and pool_size = 10: four session-mode
    clients get two servers on each replica, and a fifth waits (it is not sent to a third
    server on either) until one of them leaves."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    entry = {"host": "127.0.0.1,127.0.0.1", "port": "%d,%d" % (r1.port, r2.port),
             "dbname": "postgres", "target_session_attrs": "standby", "pool_size": 10,
             "pool_mode": "session"}
    s = shoal(databases={"reads": entry},
              settings={"max_host_connections": 2, "query_wait_timeout": 20,
                        "server_connect_timeout": 3},
              pg_cluster=rs.primary)
    held = [s.connect("reads", USER) for _ in range(4)]
    ports = [c.execute("SELECT inet_server_port()").fetchone()[0] for c in held]
    assert sorted(ports) == sorted([r1.port, r2.port] * 2), ports
    got = {}

    def fifth():
        try:
            with s.connect("reads", USER) as c:
                got["port"] = c.execute("SELECT inet_server_port()").fetchone()[0]
        except psycopg.Error as e:
            got["error"] = e
    t = threading.Thread(target=fifth, daemon=True)
    t.start()
    try:
        def waiting():
            with admin(s) as a:
                _, rows = show(a, "POOLS")
            return sum(r["cl_waiting"] for r in rows if r["database"] == "reads") == 1
        wait_until(waiting, timeout=10, what="the fifth client waiting")
        rows = _host_rows(s, "reads")
        assert (rows[r1.port]["servers"], rows[r2.port]["servers"]) == (2, 2)
        assert not got
        held[0].close()  # a server of its host is free again
        t.join(15)
        assert got.get("port") == ports[0], got
    finally:
        for c in held[1:]:
            c.close()


class SlowProxy:
    """A loopback TCP proxy to `port` that holds each chunk `delay` seconds each way: a
    replica in a far region. Bounded: daemon threads, closed by close()."""

    def __init__(self, port, delay):
        self.port_to, self.delay = port, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.port_to), timeout=5)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                time.sleep(self.delay)
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for s in self.conns:
            s.close()


def test_zone_nearest_prefers_the_zone_whose_host_answers_fastest(shoal, pg_replicas):
    """zone = nearest: r1 (zone a) sits behind a proxy adding 20 ms each way, r2 (zone b) is
    direct: the health checks' durations make b the near zone, and new servers and reads go
    there."""
    rs = pg_replicas
    r1, r2 = rs.replicas
    far = SlowProxy(r1.port, 0.02)
    try:
        entry = {"host": "127.0.0.1,127.0.0.1", "port": "%d,%d" % (far.port, r2.port),
                 "dbname": "postgres", "target_session_attrs": "standby", "zone": "a,b",
                 "pool_size": 4}
        s = shoal(databases={"reads": entry},
                  settings={"pool_mode": "transaction", "server_connect_timeout": 3,
                            "query_wait_timeout": 10, "host_check_interval": "200ms",
                            "host_check_timeout": 3, "zone": "nearest", "workers": 1},
                  pg_cluster=rs.primary)
        s.connect("reads", USER).execute("SELECT 1")  # the pool exists: checks start
        wait_until(lambda: "nearest zone is now b" in s.log(), timeout=15,
                   what="zone b found nearest")
        rows = wait_until(lambda: (lambda r: r if all(x["rtt_ms"] for x in r.values())
                                   else None)(_host_rows(s, "reads")),
                          timeout=15, what="both hosts' checks timed")
        print("check durations: a %s ms, b %s ms" % (rows[far.port]["rtt_ms"],
                                                    rows[r2.port]["rtt_ms"]))
        assert float(rows[far.port]["rtt_ms"]) > float(rows[r2.port]["rtt_ms"])
        # 3 clients: b's 3 servers (pool_size 4, one went to a before the choice) can serve
        # them all; a's one server is taken only while b's are all busy (with 4 clients on a
        # loaded machine that was a quarter of the reads).
        counts = _reads(s, 3, 60)
        print("reads per replica: %s" % counts)
        # Every new server goes to b.
        assert _host_rows(s, "reads")[far.port]["connects"] == rows[far.port]["connects"]
        assert counts.get(r2.port, 0) >= 162, counts
    finally:
        far.close()
