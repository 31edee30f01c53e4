"""The pid a client is told (BackendKeyData): in session mode its server's real pid, as on a
direct connection; in transaction mode a Shoal id that names no backend."""
import signal

import psycopg
import pytest

from helpers import wait_until
from test_reload import rewrite
from wire import Wire, query_message, send_cancel

PID_FLOOR = 1 << 22  # Linux pids are below this (PID_MAX_LIMIT)


def session_shoal(shoal, pool_size=1):
    return shoal(databases={"db": {"dbname": "postgres", "pool_size": pool_size}},
                 settings={"pool_mode": "session"})


def test_session_client_is_told_its_servers_pid(shoal, pg, role):
    s = session_shoal(shoal)
    for _ in range(2):  # the second client reuses the first one's server
        c = psycopg.connect(s.dsn("db", role, application_name="pid_probe"), autocommit=True)
        pid = c.info.backend_pid
        assert pid == c.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pg.connect() as direct:
            row = direct.execute("SELECT usename, application_name FROM pg_stat_activity "
                                 "WHERE pid = %s", (pid,)).fetchone()
        assert row == (role, "pid_probe"), row
        c.close()


def test_session_client_terminated_by_its_pid(shoal, pg, role):
    s = session_shoal(shoal)
    c = s.connect("db", role)
    pid = c.info.backend_pid
    with pg.connect() as direct:
        assert direct.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    with pytest.raises(psycopg.OperationalError):
        c.execute("SELECT 1")
    other = s.connect("db", role)  # the pool goes on with a new server
    assert other.execute("SELECT 1").fetchone()[0] == 1
    assert other.info.backend_pid != pid


def test_session_cancel_with_real_pid_and_shoal_key(shoal, pg, role):
    s = session_shoal(shoal, pool_size=2)
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    pid, key = w.backend_key
    rows, err, _ = w.query("SELECT pg_backend_pid()")
    assert err is None and int(rows[0][0]) == pid
    w.send(query_message("SELECT pg_sleep(10)"))
    wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
               what="query running")
    send_cancel(s.host, s.port, pid, key ^ 1)  # the real pid alone cancels nothing
    send_cancel(s.host, s.port, pid, key)
    w.sock.settimeout(5)
    codes = []
    while True:
        mtype, body = w.read_msg()
        if mtype == b"E":
            codes.append(body)
        if mtype == b"Z":
            break
    assert len(codes) == 1 and b"C57014" in codes[0], codes
    w.close()


def test_transaction_client_pid_names_no_backend(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    pid = c.info.backend_pid
    assert pid >= PID_FLOOR
    assert pid != c.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pg.connect() as direct:
        # "PID ... is not a PostgreSQL backend process": a warning, never someone's backend
        assert direct.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is False
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_session_client_keeps_its_server_after_reload_to_transaction(shoal, pg, role):
    s = session_shoal(shoal, pool_size=2)
    c = s.connect("db", role)
    pid = c.info.backend_pid
    rewrite(s, "pool_mode = session", "pool_mode = transaction")
    s.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in s.log(), timeout=5, what="reload")
    other = s.connect("db", role)
    for _ in range(3):
        # c's server must not be given back between its transactions: other, in a
        # transaction, would find it idle
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        other.execute("BEGIN")
        assert other.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
        other.execute("COMMIT")
