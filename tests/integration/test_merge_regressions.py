"""Regressions found when the admin console, health probe, auth/TLS and transaction-pooling
work met: each test failed on the first merged build (a crash, a leaked row, a broken
connection, a probe that hurt real clients) and passes now."""
import struct
import time

import psycopg
import pytest

from admin_helpers import admin
from conftest import MD5_PW, SCRAM_PW
from helpers import db_entry, free_port, http_get
from wire import Wire, message


def until_ready(w):
    out = []
    while True:
        t, b = w.read_msg()
        out.append((t, b))
        if t == b"Z":
            return out


def test_console_login_over_tcp_with_md5(shoal, pg):
    """A console user authenticating with a password (not the Unix peer) used to crash the
    daemon in the auth_query check (no database entry for the console)."""
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"adm": "pw"},
              settings={"auth_type": "md5", "admin_users": "adm"})
    c = psycopg.connect(s.dsn("pgbouncer", "adm", password="pw"), autocommit=True)
    assert c.execute("SHOW VERSION").fetchone()[0].startswith("Shoal")
    c.close()
    assert s.alive()


def test_auth_query_does_not_take_over_an_unnamed_statement(shoal, pg):
    """auth_query runs Parse "" on a pooled server; a client whose unnamed statement was on
    that server must get its own statement again, never the password lookup."""
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"postgres": "pw"},
              settings={"auth_type": "md5", "auth_user": "postgres", "workers": 1,
                        "default_pool_size": 1})
    x = Wire(s.host, s.port)
    assert x.startup("postgres", "db", password="pw") is None
    x.send(message(b"P", b"\0SELECT $1::text AS mine\0\0\0") + message(b"S"))
    until_ready(x)
    y = s.connect("db", "md5_user", password=MD5_PW)  # looked up with auth_query
    assert y.execute("SELECT current_user").fetchone() == ("md5_user",)
    y.close()
    param = b"md5_user"
    bind = b"\0\0" + struct.pack("!hhi", 0, 1, len(param)) + param + struct.pack("!h", 0)
    x.send(message(b"B", bind) + message(b"D", b"P\0") +
           message(b"E", b"\0" + struct.pack("!i", 0)) + message(b"S"))
    replies = until_ready(x)
    rows = [b for t, b in replies if t == b"D"]
    desc = [b for t, b in replies if t == b"T"]
    assert desc and b"mine" in desc[0] and b"rolpassword" not in desc[0]
    assert rows and b"md5" not in rows[0].split(b"md5_user")[-1]


def test_prepared_statements_survive_set_max_prepared_statements(shoal, pg, role_db):
    """Rewriting is fixed per pool: a SET of max_prepared_statements under live clients must not
    leave their names or the servers' reply queues out of step."""
    role, db = role_db
    s = shoal(databases={"app": db_entry(pg, db, user=role)})
    c = s.connect("app", role, prepare_threshold=0)
    for i in range(2):
        assert c.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
    a = admin(s)
    a.execute("SET max_prepared_statements = 0")
    for i in range(2):
        assert c.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
    c2 = s.connect("app", role, prepare_threshold=0)
    for i in range(2):
        assert c2.execute("SELECT %s::int + 2", (i,)).fetchone() == (i + 2,)
    a.execute("SET max_prepared_statements = 100")
    for i in range(2):
        assert c2.execute("SELECT %s::int + 2", (i,)).fetchone() == (i + 2,)
        assert c.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
    assert "out of step" not in s.log()


def test_probe_waits_for_a_client_when_only_a_scram_secret_is_known(shoal, pg):
    """With SCRAM pass-through (no plaintext anywhere) a server login needs a client's SCRAM
    login first: the probe must not try before that, fail the pool's waiters or slow them."""
    secret = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'")[0][0]
    port = free_port()
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"scram_user": secret},
              settings={"auth_type": "scram-sha-256", "http_port": port,
                        "health_probe_user": "scram_user", "health_probe_interval": "0.2",
                        "server_login_retry": "5"})
    for _ in range(4):
        st, body = http_get(port, "/health")
        assert st == 200, body  # nothing probed yet: nothing failed
        time.sleep(0.25)
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT 1").fetchone() == (1,)
    assert "needs a plaintext password" not in s.log()
    st, body = http_get(port, "/health")  # now the pool has the client's keys: probed
    assert st == 200 and '"database":"db"' in body.split('"pools"')[0], body


def test_probe_takes_no_client_slot_and_logs_quietly(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db, user=role)},
              settings={"http_port": port, "health_probe_interval": "0.2", "max_client_conn": 2},
              verbose=False)
    a = s.connect("app", role)
    b = s.connect("app", role)
    for _ in range(3):
        st, body = http_get(port, "/health")
        assert st == 200, body
        time.sleep(0.25)
    assert "health-probe" not in s.log()  # its logins are at debug level
    a.close()
    b.close()


def test_sighup_reload_to_a_host_name_connects_at_once(shoal, pg, role_db):
    """A SIGHUP reload resolves new host names before the config takes effect."""
    import signal
    role, db = role_db
    s = shoal(databases={"app": db_entry(pg, db, user=role)})
    s.connect("app", role).execute("SELECT 1")
    with open(s.ini) as f:
        ini = f.read().replace("host=127.0.0.1", "host=localhost")
    with open(s.ini, "w") as f:
        f.write(ini)
    s.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    a = admin(s)
    a.execute("RECONNECT")  # old servers go; the next query needs a server for localhost
    c = s.connect("app", role)
    assert c.execute("SELECT 1").fetchone() == (1,)
    assert "resolving localhost" not in s.log()
