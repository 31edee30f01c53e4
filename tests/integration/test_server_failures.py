"""Server connections that die: pg_terminate_backend, PostgreSQL restart."""
import threading
import time

import psycopg
import pytest

from helpers import wait_until
from wire import Wire


def test_terminated_backend_gives_client_57P01_and_spares_others(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    victim = Wire(s.host, s.port)
    assert victim.startup(role, "db") is None
    _, err, status = victim.query("BEGIN")
    assert err is None and status == "T"
    rows, err, _ = victim.query("SELECT pg_backend_pid()")
    victim_pid = int(rows[0][0])

    other = s.connect("db", role)
    stop = threading.Event()
    other_errors, other_count = [], [0]

    def keep_querying():
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with other.transaction():
                    assert other.execute("SELECT pg_backend_pid()").fetchone()[0] != victim_pid
                other_count[0] += 1
            except Exception as e:
                other_errors.append(e)
                return
            time.sleep(0.01)

    t = threading.Thread(target=keep_querying, daemon=True)
    t.start()
    time.sleep(0.2)
    assert pg.sql("SELECT pg_terminate_backend(%s)", (victim_pid,)) == [(True,)]
    fields = victim.wait_error(timeout=5)
    assert fields.get("C") == "57P01", fields
    assert victim.is_closed(timeout=3)
    victim.close()
    time.sleep(0.3)
    stop.set()
    t.join(10)
    assert other_errors == []
    assert other_count[0] > 5
    # The pool refills: new clients and the surviving one get servers.
    c = s.connect("db", role)
    with c.transaction():
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != victim_pid
    assert other.execute("SELECT 1").fetchone()[0] == 1
    assert pg.count_backends(usename=role) <= 2


def test_terminated_backend_reported_to_psycopg_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    c.execute("BEGIN")
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    pg.sql("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.3)
    with pytest.raises(psycopg.OperationalError,
                       match="terminating connection due to administrator command"):
        c.execute("SELECT 1")
    c2 = s.connect("db", role)
    assert c2.execute("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_terminated_backend_during_query_gives_57P01(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    w.send(__import__("wire").query_message("SELECT pg_sleep(10)"))
    pids = wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
                      what="active backend")
    pg.sql("SELECT pg_terminate_backend(%s)", (pids[0],))
    t0 = time.monotonic()
    fields = w.wait_error(timeout=5)
    assert fields.get("C") == "57P01", fields
    assert time.monotonic() - t0 < 3
    assert w.is_closed(timeout=3)
    w.close()


def test_waiting_client_succeeds_after_postgres_restart(shoal, pg_private, role):
    cluster = pg_private()
    cluster.sql('CREATE ROLE "%s" LOGIN' % role)
    s = shoal(databases={"db": {"dbname": "postgres", "host": cluster.host,
                                "port": cluster.port, "pool_size": 2}},
              settings={"pool_mode": "transaction", "server_login_retry": 1,
                        "server_connect_timeout": 2, "query_wait_timeout": 20},
              pg_cluster=cluster)
    c = s.connect("db", role)
    old_pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    cluster.stop("fast")
    result = {}

    def query():
        t0 = time.monotonic()
        try:
            result["row"] = c.execute("SELECT pg_backend_pid(), 42").fetchone()
        except Exception as e:
            result["error"] = e
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=query, daemon=True)
    t.start()
    time.sleep(2)
    assert t.is_alive() and not result, "client did not wait for the server: %r" % result
    cluster.start()
    t.join(20)
    assert not t.is_alive(), "client still waiting 20s after PostgreSQL came back"
    assert "error" not in result, repr(result.get("error"))
    assert result["row"][1] == 42 and result["row"][0] != old_pid
    # New clients work too.
    c2 = s.connect("db", role)
    assert c2.execute("SELECT 1").fetchone()[0] == 1


def test_refused_server_login_is_logged_with_pgbouncers_wording(shoal, pg, role):
    s = shoal(databases={"gone": {"dbname": "no_such_db_here"}},
              settings={"pool_mode": "session"})
    with pytest.raises(psycopg.OperationalError, match='database "no_such_db_here" does not'):
        s.connect("gone", role)
    server = 'server login failed: FATAL database "no_such_db_here" does not exist'
    client = 'closing because: database "no_such_db_here" does not exist'
    wait_until(lambda: client in s.log(), 5, what=client)
    log = s.log()  # the server's line comes first, as in PgBouncer (its tests read it so)
    assert server in log and log.index(server) < log.index(client), log
    # the server's own close line has PgBouncer's form too: one line each, client and server
    wait_until(lambda: s.log().count(client) == 2, 5, what="the server's close line")
