"""Timeouts: query_wait_timeout, query_timeout, idle_transaction_timeout, client_idle_timeout,
client_login_timeout, server_idle_timeout, server_lifetime, and min_pool_size upkeep."""
import socket
import threading
import time

import psycopg
import pytest

from helpers import primary_message, run_threads, sqlstate_of, wait_until
from wire import Wire


def pid_of(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_query_wait_timeout_fails_waiting_client_with_08P01(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 1})
    holder = s.connect("db", role)
    waiter = Wire(s.host, s.port)
    assert waiter.startup(role, "db") is None
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    t0 = time.monotonic()
    _, err, status = waiter.query("SELECT 1")
    elapsed = time.monotonic() - t0
    assert err is not None and err.get("C") == "08P01", err
    assert err.get("M", "").startswith("query_wait_timeout"), err
    assert 0.8 <= elapsed < 3.5, elapsed
    assert status is None or waiter.is_closed(timeout=2)
    waiter.close()
    # The holder was not affected.
    assert holder.execute("SELECT 2").fetchone()[0] == 2
    holder.execute("COMMIT")


def test_query_wait_timeout_reported_to_psycopg_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 1})
    holder = s.connect("db", role)
    waiter = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="query_wait_timeout"):
        waiter.execute("SELECT 1")
    holder.execute("COMMIT")


def test_query_timeout_cancels_query_and_keeps_connection(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_timeout": 1})
    c = s.connect("db", role)
    t0 = time.monotonic()
    with pytest.raises(psycopg.Error) as ei:
        c.execute("SELECT pg_sleep(5)")
    elapsed = time.monotonic() - t0
    assert sqlstate_of(ei.value) == "57014", repr(ei.value)
    assert primary_message(ei.value).startswith("query timeout"), primary_message(ei.value)
    assert elapsed < 3.5, elapsed
    assert c.execute("SELECT 1").fetchone()[0] == 1
    # The backend is not still running the sleep.
    assert pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND "
                  "state = 'active' AND query LIKE '%%pg_sleep(5)%%'", (role,)) == [(0,)]


def test_idle_transaction_timeout_closes_client_with_08P01(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "idle_transaction_timeout": 1})
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    _, err, status = w.query("BEGIN")
    assert err is None and status == "T"
    t0 = time.monotonic()
    fields = w.wait_error(timeout=5)
    elapsed = time.monotonic() - t0
    assert fields.get("C") == "08P01", fields
    assert fields.get("M", "").startswith("idle transaction timeout"), fields
    assert 0.8 <= elapsed < 3.5, elapsed
    assert w.is_closed(timeout=3)
    w.close()
    # The abandoned transaction is not left open on a pooled backend.
    wait_until(lambda: pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND "
                              "state LIKE 'idle in transaction%%'", (role,)) == [(0,)],
               timeout=3, what="no idle-in-transaction backend")
    c = s.connect("db", role)
    assert c.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_transaction_timeout_closes_a_client_whose_transaction_runs_too_long(shoal, pg, role,
                                                                             mode):
    """PgBouncer 1.25's transaction_timeout: a transaction open longer than it (busy or idle)
    closes its client with 08P01 'transaction timeout'; short ones are not touched."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": mode, "transaction_timeout": 1})
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    for _ in range(3):  # short transactions, more than the timeout in all
        rows, err, status = w.query("BEGIN; SELECT pg_sleep(0.4); COMMIT")
        assert err is None and status == "I"
    t0 = time.monotonic()
    _, err, status = w.query("BEGIN")
    assert err is None and status == "T"
    fields = w.wait_error(timeout=5)
    elapsed = time.monotonic() - t0
    assert fields.get("C") == "08P01" and fields.get("M") == "transaction timeout", fields
    assert 0.8 <= elapsed < 3.5, elapsed
    assert w.is_closed(timeout=3)
    w.close()


def test_idle_transaction_timeout_reported_to_psycopg_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "idle_transaction_timeout": 1})
    c = s.connect("db", role)
    c.execute("BEGIN")
    c.execute("SELECT 1")
    time.sleep(2)
    with pytest.raises(psycopg.OperationalError) as ei:
        c.execute("SELECT 1")
    assert "idle transaction timeout" in str(ei.value)


def test_client_idle_timeout_closes_idle_client_with_08P01(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "client_idle_timeout": 1})
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    t0 = time.monotonic()
    fields = w.wait_error(timeout=5)
    elapsed = time.monotonic() - t0
    assert fields.get("C") == "08P01", fields
    assert fields.get("M", "").startswith("client_idle_timeout"), fields
    assert 0.8 <= elapsed < 3.5, elapsed
    assert w.is_closed(timeout=3)
    w.close()


def test_client_idle_timeout_spares_active_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "client_idle_timeout": 1})
    c = s.connect("db", role)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert c.execute("SELECT 1").fetchone()[0] == 1
        time.sleep(0.3)


def test_client_login_timeout_closes_silent_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"client_login_timeout": 1})
    sock = socket.create_connection((s.host, s.port), timeout=5)
    t0 = time.monotonic()
    try:
        data = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    assert 0.5 <= elapsed < 3.5, elapsed
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_server_idle_timeout_closes_servers_down_to_min_pool_size(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "user": role, "pool_size": 4,
                                "min_pool_size": 1}},
              settings={"pool_mode": "transaction", "server_idle_timeout": 1})
    n = 4
    barrier = threading.Barrier(n, timeout=10)
    conns = [s.connect("db", role) for _ in range(n)]

    def burst(c):
        barrier.wait()
        c.execute("BEGIN")
        c.execute("SELECT pg_sleep(0.4)")
        c.execute("COMMIT")

    _, errors = run_threads(burst, [(c,) for c in conns], timeout=20)
    assert errors == [None] * n, errors
    t_end = time.monotonic()
    assert pg.count_backends(usename=role) == 4
    time.sleep(0.3)
    assert pg.count_backends(usename=role) == 4, "servers closed before server_idle_timeout"
    wait_until(lambda: pg.count_backends(usename=role) == 1, timeout=5,
               what="idle servers closed down to min_pool_size")
    assert time.monotonic() - t_end >= 0.8
    time.sleep(1.5)
    assert pg.count_backends(usename=role) == 1, "min_pool_size server was closed too"
    assert conns[0].execute("SELECT 1").fetchone()[0] == 1


def test_server_lifetime_replaces_old_server_in_transaction_mode(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "server_lifetime": 1})
    c = s.connect("db", role)
    t0 = time.monotonic()
    first = pid_of(c)
    # Well inside the lifetime (minus its jitter) the server is kept.
    assert pid_of(c) == first
    time.sleep(0.2)
    assert pid_of(c) == first

    def changed():
        time.sleep(0.2)
        return pid_of(c) != first

    wait_until(changed, timeout=6, interval=0, what="a new backend pid")
    assert time.monotonic() - t0 >= 0.7
    wait_until(lambda: first not in pg.backends(usename=role), timeout=3,
               what="old backend gone")


def test_min_pool_size_opens_servers_without_clients_and_refills(shoal, pg, role):
    shoal(databases={"db": {"dbname": "postgres", "user": role, "pool_size": 4,
                            "min_pool_size": 2}},
          settings={"pool_mode": "transaction"})
    pids = wait_until(lambda: len(pg.backends(usename=role)) == 2 and pg.backends(usename=role),
                      timeout=5, what="2 warm servers")
    time.sleep(0.3)
    assert pg.count_backends(usename=role) == 2, "more than min_pool_size servers opened"
    pg.sql("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
    wait_until(lambda: not set(pids) & set(pg.backends(usename=role)), timeout=3,
               what="terminated backends gone")

    def refilled():
        now = pg.backends(usename=role)
        return len(now) == 2 and not set(now) & set(pids)

    wait_until(refilled, timeout=6, what="2 new warm servers")
