"""Session parameters follow the client across pooled servers in transaction mode (txn.c,
params.c): SETs the server reports (ParameterStatus) and plain SETs of track_extra_parameters
that PostgreSQL 15 does not report (search_path, default_transaction_read_only)."""
import psycopg
import pytest

from helpers import db_entry
from txnwire import connect, errors, read_until_ready, rows
from wire import query_message


@pytest.fixture
def schemas(pg):
    for name, val in (("sp_a", "a"), ("sp_b", "b"), ("Weird Schema", "w")):
        pg.sql('DROP SCHEMA IF EXISTS "%s" CASCADE' % name)
        pg.sql('CREATE SCHEMA "%s"' % name)
        pg.sql('CREATE TABLE "%s".t (v text)' % name)
        pg.sql('INSERT INTO "%s".t VALUES (\'%s\')' % (name, val))
    yield
    for name in ("sp_a", "sp_b", "Weird Schema"):
        pg.sql('DROP SCHEMA IF EXISTS "%s" CASCADE' % name)


def one_server(shoal, pg, **settings):
    st = {"pool_mode": "transaction", "query_wait_timeout": 10}
    st.update(settings)
    return shoal(databases={"db": db_entry(pg, pool_size=1)}, settings=st)


def q(w, sql):
    w.send(query_message(sql))
    msgs = read_until_ready(w)
    assert not errors(msgs), msgs
    return rows(msgs)


def test_search_path_follows_each_client_on_one_server(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    q(a, "SET search_path TO sp_a")
    q(b, "SET SESSION search_path = sp_b, public")
    for _ in range(3):
        assert q(a, "SELECT v FROM t") == [("a",)]
        assert q(b, "SELECT v FROM t") == [("b",)]
    assert q(a, "SELECT pg_backend_pid()") == q(b, "SELECT pg_backend_pid()")
    assert q(b, "SHOW search_path") == [("sp_b, public",)]
    # RESET and SET ... TO DEFAULT go back to the server default, for this client only.
    c = connect(s)
    default = q(c, "SHOW search_path")
    q(a, "RESET search_path")
    assert q(a, "SHOW search_path") == default
    assert q(b, "SELECT v FROM t") == [("b",)]
    q(b, "SET search_path TO DEFAULT")
    assert q(b, "SHOW search_path") == default
    assert "pinned" not in s.log()


def test_search_path_with_quotes_and_comments(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    q(a, 'SET search_path = "Weird Schema", public -- the tenant\n')
    assert q(b, "SELECT count(*) FROM pg_namespace WHERE nspname = 'sp_a'") == [("1",)]
    assert q(a, "SELECT v FROM t") == [("w",)]
    assert "pinned" not in s.log()


def test_search_path_set_through_extended_protocol(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    b = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    try:
        a.execute("SET search_path TO sp_a")
        b.execute("SET search_path TO sp_b")
        for _ in range(3):
            assert a.execute("SELECT v FROM t").fetchone() == ("a",)
            assert b.execute("SELECT v FROM t").fetchone() == ("b",)
        assert a.execute("SELECT pg_backend_pid()").fetchone() == \
            b.execute("SELECT pg_backend_pid()").fetchone()
        # A transaction of its own keeps it too.
        with a.transaction():
            assert a.execute("SELECT v FROM t").fetchone() == ("a",)
    finally:
        a.close()
        b.close()
    assert "pinned" not in s.log()


def test_failed_set_is_not_tracked(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    default = q(b, "SHOW search_path")
    a.send(query_message("SET default_transaction_read_only = maybe"))
    assert errors(read_until_ready(a)) == ["22023"]
    assert q(a, "SHOW default_transaction_read_only") == [("off",)]
    assert q(a, "SHOW search_path") == default


def test_default_transaction_read_only_follows(shoal, pg):
    pg.sql("DROP TABLE IF EXISTS ro_probe")
    pg.sql("CREATE TABLE ro_probe (x int)")
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    q(a, "SET default_transaction_read_only = on")
    q(b, "INSERT INTO ro_probe VALUES (1)")
    a.send(query_message("INSERT INTO ro_probe VALUES (2)"))
    assert errors(read_until_ready(a)) == ["25006"]
    q(b, "INSERT INTO ro_probe VALUES (3)")
    assert pg.sql("SELECT x FROM ro_probe ORDER BY x") == [(1,), (3,)]


def test_reported_parameters_follow(shoal, pg):
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    q(a, "SET IntervalStyle = 'iso_8601'")
    q(b, "SET TIME ZONE 'Asia/Tokyo'")
    assert q(b, "SHOW IntervalStyle") == [("postgres",)]
    assert q(a, "SHOW IntervalStyle") == [("iso_8601",)]
    assert q(a, "SHOW TimeZone") != [("Asia/Tokyo",)]
    assert q(b, "SHOW TimeZone") == [("Asia/Tokyo",)]


def test_track_extra_parameters_setting_decides(shoal, pg):
    """A plain SET of a parameter not in track_extra_parameters pins instead of leaking."""
    s = one_server(shoal, pg, track_extra_parameters="IntervalStyle")
    a = connect(s)
    q(a, "SET search_path TO public")
    assert "pinned to its server for the rest of its session: SET of a parameter not in " \
        "track_extra_parameters" in s.log()


def test_discard_all_drops_tracked_sets(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    default = q(b, "SHOW search_path")
    q(a, "SET search_path TO sp_a")
    assert q(a, "SELECT v FROM t") == [("a",)]
    q(a, "DISCARD ALL")
    q(b, "SELECT 1")  # the server passes through another client in between
    assert q(a, "SHOW search_path") == default


def test_set_inside_a_committed_block_follows_psycopg_default_transactions(shoal, pg, schemas):
    """psycopg's default (autocommit off) runs SET inside BEGIN ... COMMIT."""
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"))
    b = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    try:
        default = b.execute("SHOW search_path").fetchone()
        a.execute("SET search_path TO sp_a")
        a.commit()
        assert b.execute("SHOW search_path").fetchone() == default
        assert a.execute("SELECT v FROM t").fetchone() == ("a",)
        a.commit()
        a_pid = a.execute("SELECT pg_backend_pid()").fetchone()
        a.commit()
        assert b.execute("SELECT pg_backend_pid()").fetchone() == a_pid
    finally:
        a.close()
        b.close()
    assert "pinned" not in s.log()


def test_set_inside_a_rolled_back_block_pins(shoal, pg, schemas):
    s = one_server(shoal, pg)
    a = connect(s)
    q(a, "BEGIN")
    q(a, "SET search_path TO sp_a")
    q(a, "ROLLBACK")
    assert "SET in a transaction block that did not simply commit" in s.log()


def test_set_followed_by_begin_in_one_pipeline_counts_with_the_block(shoal, pg, schemas):
    from txnwire import bind, execute, parse, sync
    s = one_server(shoal, pg)
    a, b = connect(s), connect(s)
    default = q(b, "SHOW search_path")
    a.send(parse("", "SET search_path TO sp_a") + bind("") + execute()
           + parse("", "BEGIN") + bind("") + execute() + sync())
    assert read_until_ready(a)[-1] == ("Z", "T")
    q(a, "COMMIT")
    assert q(b, "SHOW search_path") == default
    assert q(a, "SELECT v FROM t") == [("a",)]
    assert "pinned" not in s.log()
