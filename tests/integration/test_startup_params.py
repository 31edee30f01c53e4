"""Startup parameters follow the client onto whatever server it gets."""
import struct

import psycopg
import pytest

import wire
from wire import Wire


def show(conn, name):
    return conn.execute("SHOW %s" % name).fetchone()[0]


@pytest.mark.parametrize("mode", ["transaction", "statement"])
def test_startup_options_follow_client_on_shared_backend(shoal, pg, role, mode):
    pg.sql("CREATE SCHEMA IF NOT EXISTS sa; CREATE SCHEMA IF NOT EXISTS sb")
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": mode})
    a = s.connect("db", role, options="-c statement_timeout=1234 -c search_path=sa")
    b = s.connect("db", role, options="-c statement_timeout=4321 -c search_path=sb")
    plain = s.connect("db", role)
    pids = set()
    for _ in range(3):
        for conn, timeout, path in ((a, "1234ms", "sa"), (b, "4321ms", "sb"),
                                    (plain, "0", "\"$user\", public")):
            assert show(conn, "statement_timeout") == timeout
            assert show(conn, "search_path") == path
            pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    assert len(pids) == 1, "pool_size=1: all clients should share one backend"


def test_startup_options_applied_in_session_mode_after_reuse(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "session"})
    pids = set()
    for timeout in (1234, 4321, None, 1234):
        kw = {"options": "-c statement_timeout=%d" % timeout} if timeout else {}
        with psycopg.connect(s.dsn("db", role, **kw), autocommit=True) as c:
            assert show(c, "statement_timeout") == ("%dms" % timeout if timeout else "0")
            pids.add(c.execute("SELECT pg_backend_pid()").fetchone()[0])
    assert len(pids) == 1


def test_direct_startup_parameters_applied(shoal, pg, role):
    pg.sql("CREATE SCHEMA IF NOT EXISTS sc")
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    other = s.connect("db", role, options="-c search_path=sa")
    w = Wire(s.host, s.port)
    assert w.startup(role, "db", search_path="sc", application_name="raw_app") is None
    assert w.params.get("application_name") == "raw_app"
    for _ in range(2):
        rows, err, _ = w.query("SHOW search_path")
        assert err is None and rows == [("sc",)], (rows, err)
        rows, err, _ = w.query("SELECT application_name FROM pg_stat_activity "
                               "WHERE pid = pg_backend_pid()")
        assert err is None and rows == [("raw_app",)], (rows, err)
        assert show(other, "search_path") == "sa"
    w.close()


def test_application_name_visible_in_pg_stat_activity(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    a = s.connect("db", role, application_name="app_alpha")
    b = s.connect("db", role, application_name="app_beta")
    q = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    for _ in range(2):
        assert a.execute(q).fetchone()[0] == "app_alpha"
        assert b.execute(q).fetchone()[0] == "app_beta"
    assert show(a, "application_name") == "app_alpha"


def test_invalid_startup_option_fails_login_with_server_error(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    warm = s.connect("db", role)
    assert warm.execute("SELECT 1").fetchone()[0] == 1
    w = Wire(s.host, s.port)
    err = w.startup(role, "db", options="-c statement_timeout=banana")
    w.close()
    assert err is not None, "login with an invalid option succeeded"
    assert err.get("S") == "FATAL", err
    assert err.get("C") == "22023", err
    assert "statement_timeout" in err.get("M", ""), err
    with pytest.raises(psycopg.OperationalError, match="statement_timeout"):
        psycopg.connect(s.dsn("db", role, options="-c statement_timeout=banana"))
    # The shared backend was not poisoned.
    assert show(warm, "statement_timeout") == "0"
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_replication_connection_refused_by_server_for_unprivileged_role(shoal, pg, role):
    """Replication connections pass through (issue 22, test_replication.py); a role without
    REPLICATION gets the server's refusal, and its ordinary pool is not affected."""
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    w = Wire(s.host, s.port)
    err = w.startup(role, "db", replication="database")
    w.close()
    assert err is not None, "replication connection accepted"
    with pytest.raises(psycopg.OperationalError, match="replication|WAL sender|walsender"):
        psycopg.connect(s.dsn("db", role, replication="database"))
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def raw_login(host, port, params):
    """Log in with a startup packet built from bytes (values in any encoding)."""
    body = struct.pack("!i", wire.PROTOCOL_3)
    for k, v in params.items():
        body += k + b"\0" + v + b"\0"
    w = Wire(host, port)
    w.send(struct.pack("!i", len(body) + 5) + body + b"\0")
    while True:
        mtype, payload = w.read_msg()
        if mtype == b"E":
            return w, wire.parse_fields(payload)
        if mtype == b"Z":
            return w, None


def hex_setting(w, name):
    rows, err, _ = w.query("SELECT encode(convert_to(current_setting('%s'), 'UTF8'), 'hex')"
                           % name)
    assert err is None, err
    return bytes.fromhex(rows[0][0])


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_startup_option_name_that_is_a_keyword_logs_in(shoal, pg, role, mode):
    """-c user.id=42: the name is quoted as an identifier ("user" is a reserved word)."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": mode})
    with pg.connect(user=role, options="-c user.id=42") as direct:
        assert show(direct, '"user.id"') == "42"
    c = psycopg.connect(s.dsn("db", role, options="-c user.id=42 -c some.Var=x"),
                        autocommit=True)
    assert show(c, '"user.id"') == "42"
    assert show(c, '"some.var"') == "x"
    c.close()


@pytest.mark.parametrize("scs", ["on", "off"])
def test_startup_value_with_quote_and_backslash_arrives_byte_for_byte(shoal, pg, role, scs):
    """The value is a literal read back exactly, whatever standard_conforming_strings the
    shared server has when the client's values are applied."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    first = s.connect("db", role, options="-c standard_conforming_strings=%s" % scs)
    assert show(first, "standard_conforming_strings") == scs  # the server is left so
    value = "a\\b'c\\'$shoal0$ d"
    results = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = Wire(host, port)
        assert w.startup(role, db, **{"my.val": value, "application_name": value}) is None
        rows, err, _ = w.query("SELECT current_setting('my.val'), "
                               "current_setting('application_name')")
        assert err is None, err
        results.append(rows)
        w.close()
    assert results[0] == results[1] == [(value, value[:63])]


def test_sjis_value_with_backslash_trail_byte_arrives_intact(shoal, pg, role):
    """0x955c is one SJIS character whose second byte is a backslash: an E'' literal doubled it
    and the server saw a different string. (PostgreSQL itself stores startup values without
    conversion, which in a UTF8 database gives an unreadable value; Shoal's SET is converted
    from the client's encoding, so the client reads back what it sent.)"""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    warm = s.connect("db", role, client_encoding="SJIS")
    assert show(warm, "client_encoding") == "SJIS"  # the shared server now speaks SJIS
    value = "\u8868n".encode("shift_jis")  # 0x95 0x5c 'n'
    assert value[1:2] == b"\\"
    w, err = raw_login(s.host, s.port, {b"user": role.encode(), b"database": b"db",
                                        b"client_encoding": b"SJIS", b"my.val": value})
    assert err is None, err
    assert hex_setting(w, "my.val") == "\u8868n".encode()
    w.close()
