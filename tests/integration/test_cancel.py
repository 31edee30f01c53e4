"""Cancel requests: a real key cancels the client's query, a forged key cancels nothing."""
import random
import threading
import time

import psycopg
import pytest

from helpers import wait_until
from wire import Wire, query_message, send_cancel


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_psycopg_cancel_cancels_running_query(shoal, pg, role, mode):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": mode})
    c = s.connect("db", role)
    assert c.info.backend_pid > 0
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            c.execute("SELECT pg_sleep(10)")
        except Exception as e:
            out["error"] = e
        out["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
               what="query running")
    c.cancel()
    t.join(8)
    assert not t.is_alive(), "query not cancelled"
    e = out.get("error")
    assert isinstance(e, psycopg.errors.QueryCanceled), repr(e)
    assert e.sqlstate == "57014"
    assert "canceling statement due to user request" in str(e)
    assert out["elapsed"] < 4
    assert c.execute("SELECT 1").fetchone()[0] == 1


def _start_sleep(s, role, seconds):
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    assert w.backend_key is not None and w.backend_key[0] > 0
    w.send(query_message("SELECT pg_sleep(%s)" % seconds))
    return w


def _finish(w, timeout):
    w.sock.settimeout(timeout)
    error = None
    while True:
        mtype, body = w.read_msg()
        if mtype == b"E":
            from wire import parse_fields
            error = parse_fields(body)
        elif mtype == b"Z":
            return error


def test_raw_cancel_request_with_real_key_cancels(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    w = _start_sleep(s, role, 10)
    wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
               what="query running")
    pid, key = w.backend_key
    send_cancel(s.host, s.port, pid, key)
    error = _finish(w, 5)
    assert error is not None and error.get("C") == "57014", error
    w.close()


def test_cancel_request_with_forged_key_cancels_nothing(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    w = _start_sleep(s, role, 1.5)
    t0 = time.monotonic()
    wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
               what="query running")
    pid, key = w.backend_key
    forged = (key + random.randint(1, 2**30)) % 2**31
    send_cancel(s.host, s.port, pid, forged)                   # right pid, wrong key
    send_cancel(s.host, s.port, random.randint(1, 2**31 - 1), key)   # wrong pid, right key
    send_cancel(s.host, s.port, 0, 0)
    error = _finish(w, 5)
    assert error is None, "forged cancel cancelled the query: %r" % error
    assert time.monotonic() - t0 >= 1.2
    w.close()
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
