"""Client-count limits: max_db_client_connections and max_user_client_connections (PgBouncer
1.24+), global and per entry, with PgBouncer's error text and SHOW DATABASES / SHOW USERS."""
import psycopg
import pytest

from admin_helpers import admin, show
from helpers import wait_until
from wire import Wire

DB_FULL = "client connections exceeded (max_db_client_connections)"
USER_FULL = "client connections exceeded (max_user_client_connections)"


def _row(console, what, name):
    _, rows = show(console, what)
    return next((r for r in rows if r["name"] == name), None)


def _refused(s, db, user, text):
    w = Wire(s.host, s.port)
    err = w.startup(user, db)
    w.close()
    assert err is not None, "client of %s/%s was admitted" % (db, user)
    assert err.get("C") == "53300", err
    assert err.get("M") == text, err


def test_database_entry_limit_refuses_the_extra_client_and_frees_on_close(shoal, pg, role):
    s = shoal(databases={"lim": {"dbname": "postgres", "max_db_client_connections": 2},
                         "free": {"dbname": "postgres"}},
              settings={"max_db_client_connections": 5})
    conns = [s.connect("lim", role) for _ in range(2)]
    _refused(s, "lim", role, DB_FULL)
    with pytest.raises(psycopg.OperationalError, match="max_db_client_connections"):
        psycopg.connect(s.dsn("lim", role))
    assert "closing because: " + DB_FULL in s.log()
    assert s.connect("free", role).execute("SELECT 1").fetchone()[0] == 1
    console = admin(s)
    row = _row(console, "DATABASES", "lim")
    assert (row["max_client_connections"], row["current_client_connections"]) == (2, 2)
    assert _row(console, "DATABASES", "free")["max_client_connections"] == 5
    conns[0].close()
    wait_until(lambda: _row(console, "DATABASES", "lim")["current_client_connections"] == 1,
               10, what="the count to drop after a client left")
    assert s.connect("lim", role).execute("SELECT 1").fetchone()[0] == 1


def test_user_limit_counts_the_login_user_across_databases(shoal, pg, role):
    other = pg.create_role("climit_other")
    s = shoal(databases={"a": {"dbname": "postgres"},
                         "forced": {"dbname": "postgres", "user": other}},
              users={role: {"max_user_client_connections": 2}},
              settings={"max_user_client_connections": 1})
    s.connect("a", role)
    s.connect("forced", role)  # counted for the login user, not the forced one
    _refused(s, "a", role, USER_FULL)
    s.connect("a", other)  # the global limit of 1
    _refused(s, "forced", other, USER_FULL)
    console = admin(s)
    row = _row(console, "USERS", role)
    assert (row["max_user_client_connections"], row["current_client_connections"]) == (2, 2)
    row = _row(console, "USERS", other)
    assert (row["max_user_client_connections"], row["current_client_connections"]) == (1, 1)


def test_console_counts_as_database_pgbouncer_and_admin_users_are_exempt(shoal, pg, role):
    s = shoal(databases={"a": {"dbname": "postgres"}},
              settings={"max_db_client_connections": 1, "stats_users": role})
    consoles = [admin(s), admin(s)]  # the pooler's own user over the Unix socket: admin
    _, rows = show(consoles[0], "DATABASES")
    row = next(r for r in rows if r["name"] == "pgbouncer")
    assert (row["max_client_connections"], row["current_client_connections"]) == (1, 2)
    _refused(s, "pgbouncer", role, DB_FULL)  # a stats user is not exempt


def test_a_failed_login_is_not_counted(shoal, pg, role):
    pg.sql("ALTER ROLE \"%s\" PASSWORD 'right'" % role)
    s = shoal(databases={"a": {"dbname": "postgres"}},
              settings={"auth_type": "plain", "max_user_client_connections": 1},
              userlist={role: "right"})
    for _ in range(3):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(s.dsn("a", role, password="wrong"))
    c = s.connect("a", role, password="right")
    assert c.execute("SELECT 1").fetchone()[0] == 1
    _, rows = show(admin(s), "USERS")
    assert next(r for r in rows if r["name"] == role)["current_client_connections"] == 1
