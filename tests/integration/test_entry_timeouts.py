"""Per-user timeouts in [users] (query_timeout, idle_transaction_timeout, client_idle_timeout,
transaction_timeout) and per-database server_lifetime: the entry's value wins over the global
one, as in PgBouncer 1.24/1.25."""
import time

import psycopg
import pytest

from helpers import primary_message, sqlstate_of, wait_until
from wire import Wire

GLOBAL = {"pool_mode": "transaction", "query_timeout": 100, "idle_transaction_timeout": 100,
          "client_idle_timeout": 100, "transaction_timeout": 100}


def _two_roles(pg, role):
    return role, pg.create_role("entry_timeouts_other")


def test_user_query_timeout_overrides_global(shoal, pg, role):
    short, other = _two_roles(pg, role)
    s = shoal(databases={"db": {"dbname": "postgres"}},
              users={short: {"query_timeout": 0.5}}, settings=GLOBAL)
    c = s.connect("db", short)
    t0 = time.monotonic()
    with pytest.raises(psycopg.Error) as ei:
        c.execute("SELECT pg_sleep(5)")
    assert sqlstate_of(ei.value) == "57014", repr(ei.value)
    assert primary_message(ei.value).startswith("query timeout"), primary_message(ei.value)
    assert time.monotonic() - t0 < 3.5
    assert "query timeout: canceling its query (query_timeout)" in s.log()
    # The other user keeps the global 100 s.
    assert s.connect("db", other).execute("SELECT pg_sleep(1.2), 1").fetchone()[1] == 1


def _closed_with(w, text):
    fields = w.wait_error(timeout=6)
    assert fields.get("C") == "08P01", fields
    assert fields.get("M", "").startswith(text), fields


@pytest.mark.parametrize("setting,message", [
    ("idle_transaction_timeout", "idle transaction timeout"),
    ("transaction_timeout", "transaction timeout")])
def test_user_transaction_timeouts_override_global(shoal, pg, role, setting, message):
    s = shoal(databases={"db": {"dbname": "postgres"}}, users={role: {setting: 1}},
              settings=GLOBAL)
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    _, err, status = w.query("BEGIN")
    assert err is None and status == "T"
    _closed_with(w, message)


def test_user_client_idle_timeout_overrides_global(shoal, pg, role):
    short, other = _two_roles(pg, role)
    s = shoal(databases={"db": {"dbname": "postgres"}},
              users={short: {"client_idle_timeout": 1}}, settings=GLOBAL)
    w = Wire(s.host, s.port)
    assert w.startup(short, "db") is None
    keep = s.connect("db", other)
    _closed_with(w, "client_idle_timeout")
    assert keep.execute("SELECT 1").fetchone()[0] == 1  # global 100 s


def test_database_server_lifetime_overrides_global(shoal, pg, role):
    s = shoal(databases={"short": {"dbname": "postgres", "server_lifetime": 1},
                         "long": {"dbname": "template1"}},
              settings={"pool_mode": "transaction", "server_lifetime": 3600})
    s.connect("short", role).execute("SELECT 1")
    s.connect("long", role).execute("SELECT 1")
    wait_until(lambda: pg.count_backends(usename=role, datname="postgres") == 0, 10,
               what="the short-lived server to close")
    assert pg.count_backends(usename=role, datname="template1") == 1
    assert "server_lifetime reached" in s.log()


def test_query_timeout_also_bounds_the_wait_for_a_server(shoal, pg, role):
    """As PgBouncer: a query that waited longer than query_timeout for a server is refused and
    the client closed (08P01 'query_timeout'), before query_wait_timeout."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_timeout": 0.5,
                        "query_wait_timeout": 20})
    holder = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    t0 = time.monotonic()
    _, err, _ = w.query("SELECT 1")
    assert err is not None and err.get("C") == "08P01" and err.get("M") == "query_timeout", err
    assert time.monotonic() - t0 < 5
    holder.execute("COMMIT")


def test_query_timeout_bounds_a_login_that_waits_for_a_server(shoal, pg, role):
    """A session-mode login waits for a server to confirm its parameters; with no server
    (nothing listens there) query_timeout ends the wait, as PgBouncer's does."""
    s = shoal(databases={"db": {"dbname": "postgres", "host": "127.0.0.1", "port": 1}},
              settings={"pool_mode": "session", "query_timeout": 0.5,
                        "query_wait_timeout": 20})
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="query_timeout"):
        s.connect("db", role)
    assert time.monotonic() - t0 < 5
