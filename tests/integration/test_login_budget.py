"""Before authentication (issue 16): the startup-packet timeout, the login budget
(max_login_clients) and the console's reserved slots (admin_reserved_conn)."""
import socket
import subprocess
import time

import psycopg
import pytest

from admin_helpers import admin
from helpers import wait_until

SLOW = 200  # slow clients: bounded, loopback only


def _slow_clients(s, n):
    """n connections that have sent one byte of a startup packet, and nothing more."""
    socks = []
    for _ in range(n):
        x = socket.create_connection((s.host, s.port), timeout=5)
        x.sendall(b"\x00")
        socks.append(x)
    return socks


def _closed(x):
    """True once the server closed x (what it sent first, if anything, is read and dropped)."""
    x.setblocking(False)
    try:
        while True:
            b = x.recv(4096)
            if not b:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_logins_lock_out_neither_clients_nor_the_console(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"max_client_conn": 20, "max_login_clients": 50,
                        "client_startup_timeout": 60}, verbose=False)
    socks = _slow_clients(s, SLOW)
    try:
        time.sleep(1.2)  # setup: the slow ones are now over a second into their logins
        t0 = time.monotonic()
        r = subprocess.run(["psql", s.dsn("db", role), "-Atc", "SELECT 42"],
                           capture_output=True, text=True, timeout=30)
        took = time.monotonic() - t0
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stderr
        assert took < 1.0, "a real login took %.2f s behind %d slow ones" % (took, SLOW)
        a = admin(s)
        assert a.execute("SHOW VERSION").fetchone()
        log = s.log()
        # One line per episode (an episode ends after a quiet second: the wait above may end
        # the first), never one per connection.
        assert 1 <= log.count("max_login_clients (50) reached") <= 2, log
        assert "closing because: too many clients" not in log, log
        # Past the budget the slow ones were refused or dropped, not kept.
        wait_until(lambda: sum(_closed(x) for x in socks) >= SLOW - 50, timeout=10,
                   what="slow clients past the budget closed")
    finally:
        for x in socks:
            x.close()
    wait_until(lambda: "max_login_clients: no longer reached" in s.log(), timeout=10,
               what="the end of the episode logged")


def test_startup_timeout_closes_a_silent_connection(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"client_startup_timeout": 1, "client_login_timeout": 60})
    x = socket.create_connection((s.host, s.port), timeout=10)
    x.sendall(b"\x00")
    t0 = time.monotonic()
    got = b""
    while True:
        b = x.recv(4096)
        if not b:
            break
        got += b
    x.close()
    assert b"client_startup_timeout" in got and b"08P01" in got, got
    assert time.monotonic() - t0 < 5
    wait_until(lambda: "client_startup_timeout: closed 1 connections" in s.log(), timeout=5,
               what="the timeout counted in one line")
    # A client that sends its startup packet at once is not concerned.
    with psycopg.connect(s.dsn("db", role)) as c:
        time.sleep(1.5)
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_console_has_reserved_slots_past_max_client_conn(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"max_client_conn": 2, "admin_reserved_conn": 1})
    held = [s.connect("db", role) for _ in range(2)]
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(s.dsn("db", role))
    assert "max_client_conn" in str(e.value)
    a = admin(s)  # the reserved slot
    assert a.execute("SHOW VERSION").fetchone()
    with pytest.raises(psycopg.OperationalError) as e:
        admin(s)  # the reserve is used up too
    assert "max_client_conn" in str(e.value)
    for c in held:
        c.execute("SELECT 1")
