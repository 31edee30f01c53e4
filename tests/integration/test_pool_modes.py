"""Session, transaction and statement pooling."""
import threading
import time

import psycopg
import pytest

from helpers import BackendMonitor, primary_message, run_threads


def pid_of(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_session_mode_keeps_same_backend_for_whole_session(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "session"})
    a = s.connect("db", role)
    b = s.connect("db", role)
    pid_a = pid_of(a)
    pid_b = pid_of(b)
    assert pid_a != pid_b
    for _ in range(5):
        with a.transaction():
            assert pid_of(a) == pid_a
        assert pid_of(b) == pid_b
        assert pid_of(a) == pid_a


def test_session_mode_runs_reset_query_before_reuse(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "session"})
    a = s.connect("db", role)
    pid_a = pid_of(a)
    a.execute("SET application_name = 'leaky_app'")
    a.execute("CREATE TEMP TABLE leaky_tmp (x int)")
    a.execute("SET work_mem = '7777kB'")
    a.close()

    b = s.connect("db", role)
    assert pid_of(b) == pid_a, "pool_size=1: the backend should be reused"
    assert b.execute("SHOW application_name").fetchone()[0] != "leaky_app"
    assert b.execute("SHOW work_mem").fetchone()[0] != "7777kB"
    n = b.execute("SELECT count(*) FROM pg_class WHERE relname = 'leaky_tmp'").fetchone()[0]
    assert n == 0, "temp table of the previous client is visible"


def test_transaction_mode_clients_share_one_backend(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    a = s.connect("db", role)
    b = s.connect("db", role)
    pids = set()
    for _ in range(3):
        pids.add(pid_of(a))
        pids.add(pid_of(b))
    assert len(pids) == 1
    assert pg.count_backends(usename=role) == 1


def test_transaction_mode_login_does_not_hold_server(shoal, pg, role):
    """The server a pool opens to answer the first client's login is released at once: a
    second client can use it while the first one sits idle without ever sending a query."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 2})
    first = s.connect("db", role)   # logs in, then stays idle
    second = s.connect("db", role)
    assert second.execute("SELECT 1").fetchone()[0] == 1
    assert first.execute("SELECT 2").fetchone()[0] == 2


def test_transaction_mode_holds_backend_until_transaction_ends(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    a = s.connect("db", role)
    b = s.connect("db", role)
    a.execute("BEGIN")
    pid_a = pid_of(a)
    # While a is inside a transaction its backend is not given to b.
    for _ in range(3):
        assert pid_of(b) != pid_a
        assert pid_of(a) == pid_a
    a.execute("COMMIT")


def test_statement_mode_runs_single_statements(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "statement"})
    a = s.connect("db", role)
    b = s.connect("db", role)
    for i in range(3):
        assert a.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        assert b.execute("SELECT 'x' || %s", (str(i),)).fetchone()[0] == "x%d" % i
    assert pid_of(a) == pid_of(b)


def test_statement_mode_refuses_transaction_block_and_disconnects(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "statement"})
    a = s.connect("db", role)
    with pytest.raises(psycopg.Error) as ei:
        a.execute("BEGIN")
        a.execute("SELECT 1")
    assert "transaction blocks not allowed in statement pooling mode" in str(ei.value)
    with pytest.raises(psycopg.OperationalError):
        a.execute("SELECT 1")
    # The single backend was not left inside the refused transaction block.
    time.sleep(0.05)
    b = s.connect("db", role)
    assert b.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True
    assert b.execute("SELECT 42").fetchone()[0] == 42


def test_transaction_mode_100_clients_never_exceed_pool_size(shoal, pg, role_db):
    role, db = role_db
    pg.sql("CREATE TABLE hits (client int, n int)", dbname=db, user=role)
    s = shoal(databases={"db": {"dbname": db, "pool_size": 4}},
              settings={"pool_mode": "transaction", "max_client_conn": 200,
                        "query_wait_timeout": 30})
    nclients, ntx = 100, 3
    start = threading.Barrier(nclients, timeout=15)

    def client(i):
        with psycopg.connect(s.dsn("db", role), autocommit=True,
                             prepare_threshold=None) as c:
            start.wait()
            for n in range(ntx):
                c.execute("BEGIN")
                c.execute("SELECT pg_sleep(0.01)")
                c.execute("INSERT INTO hits VALUES (%s, %s)", (i, n))
                c.execute("COMMIT")
        return True

    with BackendMonitor(pg, role) as mon:
        results, errors = run_threads(client, [(i,) for i in range(nclients)], timeout=60)
    failures = [e for e in errors if e is not None]
    # Show the root cause first: a client that fails to connect breaks the barrier for all.
    failures.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
    assert not failures, "%d clients failed, first: %r" % (len(failures), failures[0])
    assert mon.error is None
    assert len(mon.samples) > 10
    assert 0 < mon.max <= 4, "backends peaked at %s" % mon.max
    rows = pg.sql("SELECT count(*), count(DISTINCT client) FROM hits", dbname=db)
    assert rows == [(nclients * ntx, nclients)]
