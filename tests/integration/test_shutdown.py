"""Signals, as PgBouncer 1.23+: SIGTERM (SHUTDOWN WAIT_FOR_CLIENTS) stops accepting and serves the
clients until they leave; SIGINT (WAIT_FOR_SERVERS) closes each client with 57P01 as its
transaction ends; SIGQUIT exits at once. shutdown_timeout bounds both waits."""
import signal
import time

import psycopg
import pytest

from helpers import wait_until


def test_sigterm_lets_open_transaction_commit_then_exits_zero(shoal, pg, role_db):
    role, db = role_db
    pg.sql("CREATE TABLE t (x int)", dbname=db, user=role)
    s = shoal(databases={"db": {"dbname": db, "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 5})
    a = s.connect("db", role)
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (1)")
    s.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn("db", role, connect_timeout=2))
    assert s.alive(), "shoal exited while a transaction was open"
    a.execute("INSERT INTO t VALUES (2)")
    a.execute("COMMIT")
    a.execute("SELECT 1")  # still served: it waits for the client to leave
    assert s.alive()
    a.close()
    rc = s.wait(10)
    s.stopped_by_test = True
    assert rc == 0, "exit code %r" % rc
    assert pg.sql("SELECT array_agg(x ORDER BY x) FROM t", dbname=db) == [([1, 2],)]


def test_sigterm_serves_idle_clients_until_they_leave(shoal, pg, role):
    """PgBouncer's WAIT_FOR_CLIENTS: an idle client's new transactions are served (a rolling
    restart relies on it); new connections are refused; it exits when the last client leaves."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 20})
    a = s.connect("db", role)
    a.execute("SELECT 1")
    s.send_signal(signal.SIGTERM)
    wait_until(lambda: not _accepts(s), timeout=5, what="listener closed")
    for i in range(3):
        assert a.execute("SELECT %s::int", (i,)).fetchone() == (i,)
    a.execute("BEGIN")
    a.execute("SELECT 1")
    a.execute("COMMIT")
    assert s.alive()
    a.close()
    rc = s.wait(10)
    s.stopped_by_test = True
    assert rc == 0, "exit code %r" % rc


def _accepts(s):
    import socket
    try:
        socket.create_connection((s.host, s.port), timeout=1).close()
        return True
    except OSError:
        return False


def test_sigint_disconnects_idle_clients_with_57P01(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 5})
    from wire import Wire
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    s.send_signal(signal.SIGINT)
    fields = w.wait_error(timeout=5)
    assert fields.get("C") == "57P01", fields
    assert fields.get("M", "").startswith("pooler is shutting down"), fields
    w.close()
    rc = s.wait(10)
    s.stopped_by_test = True
    assert rc == 0, "exit code %r" % rc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_gives_up_after_shutdown_timeout(shoal, pg, role, sig):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 1})
    a = s.connect("db", role)
    a.execute("BEGIN")
    a.execute("SELECT 1")
    t0 = time.monotonic()
    s.send_signal(sig)
    rc = s.wait(10)
    s.stopped_by_test = True
    elapsed = time.monotonic() - t0
    assert rc is not None, "shoal still running 10s after SIGTERM with shutdown_timeout=1"
    assert 0.8 <= elapsed < 4, elapsed
    with pytest.raises(psycopg.OperationalError):
        a.execute("SELECT 1")


def test_sigquit_exits_at_once_despite_open_transaction(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 10})
    a = s.connect("db", role)
    a.execute("BEGIN")
    a.execute("SELECT 1")
    t0 = time.monotonic()
    rc = s.stop(signal.SIGQUIT, timeout=10)
    assert time.monotonic() - t0 < 3
    assert rc == 0, rc
    wait_until(lambda: pg.count_backends(usename=role) == 0, timeout=3,
               what="server connections closed")


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_statement_completing_during_sigint_then_next_request_gets_57P01(shoal, pg, role,
                                                                           mode):
    """SIGINT (WAIT_FOR_SERVERS) in transaction mode: the next transaction would wait for a
    server, so it is refused (PgBouncer's 'server shutting down'); in session mode the client
    keeps its server and is served, as PgBouncer's test_repeated_sigint expects.
    The 57P01 does not ride in the packet of the statement's ReadyForQuery (libpq reads it
    there as a notice and reports a bare EOF later): the next request is answered with it."""
    import threading
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": mode, "shutdown_timeout": 5})
    c = s.connect("db", role)
    res = {}

    def run():
        res["row"] = c.execute("SELECT pg_sleep(1), %s::int", (7,)).fetchone()
        try:
            res["next_row"] = c.execute("SELECT 1").fetchone()
            c.close()
        except psycopg.OperationalError as e:
            res["next"] = str(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.3)
    s.send_signal(signal.SIGINT)
    t.join(10)
    assert res.get("row") == ("", 7), res
    if mode == "transaction":
        assert "pooler is shutting down" in res.get("next", ""), res
    else:
        assert res.get("next_row") == (1,), res
    assert s.wait(10) == 0
    s.stopped_by_test = True


def test_statement_completing_during_sigint_over_the_wire(shoal, pg, role):
    from wire import Wire, query_message
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 5})
    asks, quiet = Wire(s.host, s.port), Wire(s.host, s.port)
    for w in (asks, quiet):
        assert w.startup(role, "db") is None
        w.send(query_message("SELECT pg_sleep(0.8)"))
    time.sleep(0.2)
    s.send_signal(signal.SIGINT)
    for w in (asks, quiet):
        types = []
        while not types or types[-1] != b"Z":
            types.append(w.read_msg()[0])
        assert types == [b"T", b"D", b"C", b"Z"], types
    rows, err, status = asks.query("SELECT 1")  # answered with the FATAL, then closed
    assert rows == [] and status is None and err["C"] == "57P01" and err["S"] == "FATAL", err
    assert err["M"] == "pooler is shutting down", err
    fields = quiet.wait_error(timeout=3)  # sends nothing: told a moment later
    assert fields["C"] == "57P01", fields
    assert quiet.is_closed(timeout=3)
    assert s.wait(10) == 0
    s.stopped_by_test = True
