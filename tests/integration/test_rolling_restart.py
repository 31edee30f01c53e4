"""Rolling restart (issue 20): two instances on one port with so_reuseport = 1. SIGTERM makes the
old one close its listener (the new one takes every new connection) and serve its clients, new
transactions included, until they leave; then it exits. New connections see no failure."""
import datetime
import os
import signal
import threading
import time

import psycopg

from fleet_helpers import PROTOCOL_3_0, key_issuer, startup
from helpers import free_port, wait_until
from wire import Closed, Wire, parse_fields, startup_packet


def _instance(shoal, tmp_path, port, n, **settings):
    d = str(tmp_path / ("i%d" % n))
    os.mkdir(d)
    st = {"pool_mode": "transaction", "listen_port": port, "so_reuseport": 1, "peer_id": n,
          "unix_socket_dir": d, "shutdown_timeout": 30}
    st.update(settings)
    return shoal(databases={"db": {"dbname": "postgres", "pool_size": 4}}, settings=st)


def test_rolling_restart_new_connections_never_fail(shoal, pg, role, tmp_path):
    port = free_port()
    old = _instance(shoal, tmp_path, port, 1)
    busy = [old.connect("db", role) for _ in range(3)]  # only the old one listens yet
    for c in busy:
        c.execute("SELECT 1")
    new = _instance(shoal, tmp_path, port, 2)
    stop = threading.Event()
    counts = {"ok": 0, "failed": []}

    def loop():
        while not stop.is_set() and counts["ok"] < 5000:  # bounded
            try:
                with psycopg.connect(old.dsn("db", role, connect_timeout=5)) as c:
                    assert c.execute("SELECT 1").fetchone() == (1,)
                counts["ok"] += 1
            except Exception as e:  # noqa: BLE001 (every failure counts)
                counts["failed"].append(repr(e))

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    wait_until(lambda: counts["ok"] >= 20, timeout=20, what="loop running")
    old.send_signal(signal.SIGTERM)
    wait_until(lambda: "shutting down once every client has left" in old.log(), timeout=5,
               what="old instance draining")
    before = counts["ok"]
    wait_until(lambda: counts["ok"] >= before + 50, timeout=30, what="connections after SIGTERM")
    for i, c in enumerate(busy):  # the old one still serves its clients' new transactions
        with c.transaction():
            assert c.execute("SELECT %s::int", (i,)).fetchone() == (i,)
    assert old.alive()
    for c in busy:
        c.close()
    rc = old.wait(15)
    old.stopped_by_test = True
    after_exit = counts["ok"]
    wait_until(lambda: counts["ok"] >= after_exit + 20, timeout=20, what="connections after exit")
    stop.set()
    t.join(10)
    assert rc == 0, rc
    assert counts["failed"] == [], counts["failed"][:3]
    assert new.alive()
    print("rolling restart: %d connections, 0 failed" % counts["ok"])


def _login_outcome(w):
    """None once ReadyForQuery came, else what ended the login (reset, EOF, an error)."""
    try:
        while True:
            mtype, body = w.read_msg()
            if mtype == b"Z":
                return None
            if mtype == b"E":
                return parse_fields(body).get("M")
    except (Closed, OSError) as e:
        return repr(e)


def test_connections_queued_at_the_closing_listener_are_served_not_reset(shoal, pg, role,
                                                                         tmp_path):
    """With so_reuseport the kernel does not move a closing listener's queue to the other socket:
    what is queued when the old instance closes its listener would be reset (and a batch of
    accepts takes 64). The old instance is stopped while 300 clients connect and send their
    startup packets (about half queue at it), then SIGTERM and SIGCONT: every one logs in."""
    port = free_port()
    old = _instance(shoal, tmp_path, port, 1, max_client_conn=1000, max_login_clients=1000)
    new = _instance(shoal, tmp_path, port, 2, max_client_conn=1000, max_login_clients=1000)
    ws = []
    old.send_signal(signal.SIGSTOP)
    try:
        for _ in range(1000):
            w = Wire("127.0.0.1", port, timeout=20)
            w.send(startup_packet({"user": role, "database": "db"}))
            ws.append(w)
    finally:
        old.send_signal(signal.SIGTERM)  # handled once it runs again, with its queue full
        old.send_signal(signal.SIGCONT)
    try:
        outcomes = [_login_outcome(w) for w in ws]
    finally:
        for w in ws:
            w.close()
    failed = [o for o in outcomes if o is not None]
    assert failed == [], (len(failed), failed[:3])
    assert old.wait(15) == 0
    old.stopped_by_test = True
    assert new.alive()


def _log_time(line):
    """Wall-clock seconds of a log line ("2026-12-07 10:55:38.022 UTC [pid] ...")."""
    stamp = datetime.datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S.%f")
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_connections_made_while_the_old_listener_closes_go_to_the_new_one(shoal, pg, role,
                                                                          tmp_path):
    """For its last 250 ms the old instance's listener drops new connections' SYNs (a socket
    filter) while it takes those already queued: a client retries its SYN after 1 s and reaches
    the new instance. Connections begun after the old one started to drain: every one is served,
    none by the old instance, and some were retried (the filter was in place)."""
    port = free_port()
    old = _instance(shoal, tmp_path, port, 1)
    new = _instance(shoal, tmp_path, port, 2)
    made = []

    def connect_one():
        t0 = time.time()
        w = Wire("127.0.0.1", port, timeout=10)
        try:
            _, (pid, key) = startup(w, role, "db", PROTOCOL_3_0)
        finally:
            w.close()
        made.append((t0, key_issuer(pid, key), time.time() - t0))
    # a connection every 10 ms for 0.6 s, each on its own thread (a retried one waits 1 s)
    threads = [threading.Thread(target=connect_one) for _ in range(60)]
    old.send_signal(signal.SIGTERM)
    for t in threads:
        t.start()
        time.sleep(0.01)  # pacing, not a wait for a condition
    for t in threads:
        t.join(30)
    assert len(made) == len(threads)
    # logged by the worker just before it puts the filter on its listener
    wait_until(lambda: "shutting down: waiting" in old.log(), timeout=5, what="drain begins")
    began = _log_time(next(l for l in old.log().splitlines() if "shutting down: waiting" in l))
    after = [(issuer, took) for t0, issuer, took in made if t0 > began + 0.05]
    assert len(after) > 10, made
    assert [i for i, _ in after if i != 2] == [], after
    retried = [took for _, took in after if took > 0.9]
    assert retried, after  # hashed to the old socket during its grace: SYN dropped, retried
    assert old.wait(15) == 0
    old.stopped_by_test = True
    print("during the grace: %d connections, all to the new instance, %d after a SYN retry"
          % (len(after), len(retried)))
