"""SHUTDOWN WAIT_FOR_SERVERS / WAIT_FOR_CLIENTS from the console, as PgBouncer 1.25 documents
them: clients that would wait for a server are refused at once, and the Unix socket stays open
for the console (only) until the process exits."""
import os
import signal
import time

import psycopg
import pytest

from admin_helpers import admin
from helpers import wait_until
from wire import Wire


def _tcp_refused(s, role):
    """A new TCP client is refused by the kernel (every worker closed its listener); until a
    worker has, the one it reaches gets 57P01 at its startup, which is no success either."""
    try:
        psycopg.connect(s.dsn("db", role)).close()
    except psycopg.OperationalError as e:
        if "Connection refused" in str(e):
            return True
        assert "pooler is shutting down" in str(e), e
        return False
    raise AssertionError("a new client was served during SHUTDOWN WAIT_FOR_SERVERS")


def test_shutdown_wait_for_servers_refuses_an_idle_clients_next_query(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 30,
                        "shutdown_timeout": 10})
    holder = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    assert w.query("SELECT 1")[1] is None
    a = admin(s)
    a.execute("SHUTDOWN WAIT_FOR_SERVERS")
    # Before the fix the query waited for a server (here up to query_wait_timeout, 30 s).
    t0 = time.monotonic()
    _, err, status = w.query("SELECT 1")
    w.close()
    assert err is not None and err.get("C") == "57P01", err
    assert err.get("M", "").startswith("pooler is shutting down"), err
    assert status is None and time.monotonic() - t0 < 2
    with pytest.raises(psycopg.Error, match="pooler is shutting down"):
        a.execute("RESUME")  # the shutdown's pause is not undone
    # The console is still reachable over the Unix socket; other clients are refused (the TCP
    # listener is closed, as PgBouncer 1.23+).
    a2 = admin(s)
    assert a2.execute("SHOW VERSION").fetchone()[0].startswith("Shoal")
    wait_until(lambda: _tcp_refused(s, role), timeout=5, what="the TCP listeners closed")
    with pytest.raises(psycopg.OperationalError, match="pooler is shutting down"):
        psycopg.connect(s.dsn("db", role, host=s.dir))
    # The open transaction still finishes; then the last server goes and the process exits.
    holder.execute("SELECT 2")
    holder.execute("COMMIT")
    rc = s.wait(10)
    s.stopped_by_test = True
    assert rc == 0, "exit code %r" % rc


def test_console_reachable_over_unix_socket_during_shutdown_wait_for_clients(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 20})
    holder = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    a = admin(s)
    a.execute("SHUTDOWN WAIT_FOR_CLIENTS")
    time.sleep(0.5)  # every worker has begun to drain; those without clients have stopped
    assert os.path.exists(s.unix_socket)
    a2 = admin(s)
    assert a2.execute("SHOW VERSION").fetchone()[0].startswith("Shoal")
    a2.close()
    with pytest.raises(psycopg.OperationalError, match="pooler is shutting down"):
        psycopg.connect(s.dsn("db", role, host=s.dir))
    assert s.alive()
    with pytest.raises(psycopg.Error, match="pooler is shutting down"):
        a.execute("RESUME")  # as PgBouncer: a shutdown's wait is not undone
    s.send_signal(signal.SIGUSR2)
    wait_until(lambda: "got SIGUSR2 while shutting down, ignoring" in s.log(), timeout=5,
               what="SIGUSR2 ignored")
    holder.execute("COMMIT")
    holder.execute("SELECT 1")  # served until it leaves
    assert s.alive()
    holder.close()
    a.close()  # console clients count too, as PgBouncer's
    rc = s.wait(10)
    s.stopped_by_test = True
    assert rc == 0, "exit code %r" % rc
    assert not os.path.exists(s.unix_socket)
