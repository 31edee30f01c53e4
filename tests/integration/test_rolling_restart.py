"""Rolling restart (issue 20): two instances on one port with so_reuseport = 1. SIGTERM makes the
old one close its listener (the new one takes every new connection) and serve its clients, new
transactions included, until they leave; then it exits. New connections see no failure."""
import os
import signal
import threading

import psycopg

from helpers import free_port, wait_until


def _instance(shoal, tmp_path, port, n):
    d = str(tmp_path / ("i%d" % n))
    os.mkdir(d)
    return shoal(databases={"db": {"dbname": "postgres", "pool_size": 4}},
                 settings={"pool_mode": "transaction", "listen_port": port, "so_reuseport": 1,
                           "peer_id": n, "unix_socket_dir": d, "shutdown_timeout": 30})


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
