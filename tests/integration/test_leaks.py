"""Leak probes: in transaction mode nothing a client creates for its session reaches the next
client of its server (txn.c). Client A does one session-level thing; client B, given the same
server (pool_size 1), observes none of it; A still sees its own state while it is connected."""
import threading

import psycopg
import pytest

from helpers import db_entry, wait_until

# name: (A's statements, A's probe that shows the state, B's probe, B's expected result)
CASES = {
    "set_role": (["SET ROLE leak_role"], "SELECT current_user", "SELECT current_user",
                 ("postgres",)),
    "set_session_authorization": (["SET SESSION AUTHORIZATION leak_role"],
                                  "SELECT session_user", "SELECT session_user", ("postgres",)),
    "temp_table": (["CREATE TEMP TABLE leak_tmp (x int)"],
                   "SELECT count(*) FROM pg_class WHERE relname = 'leak_tmp'",
                   "SELECT count(*) FROM pg_class WHERE relname = 'leak_tmp'", (0,)),
    "select_into_temp": (["SELECT 1 AS x INTO TEMPORARY leak_tmp2"],
                         "SELECT count(*) FROM pg_class WHERE relname = 'leak_tmp2'",
                         "SELECT count(*) FROM pg_class WHERE relname = 'leak_tmp2'", (0,)),
    "listen": (["/* a comment first */ LISTEN leak_chan"],
               "SELECT count(*) FROM pg_listening_channels()",
               "SELECT count(*) FROM pg_listening_channels()", (0,)),
    "advisory_lock": (["SELECT pg_advisory_lock(4242)"],
                      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND pid = pg_backend_pid()",
                      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND pid = pg_backend_pid()", (0,)),
    "sql_prepare": (["PREPARE leak_p AS SELECT 1"],
                    "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leak_p'",
                    "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leak_p'", (0,)),
    "with_hold_cursor": (["BEGIN", "DECLARE leak_c CURSOR WITH HOLD FOR SELECT 1", "COMMIT"],
                         "SELECT count(*) FROM pg_cursors WHERE name = 'leak_c'",
                         "SELECT count(*) FROM pg_cursors WHERE name = 'leak_c'", (0,)),
    "untracked_set": (["SET statement_timeout = '4321s'"], "SHOW statement_timeout",
                      "SHOW statement_timeout", ("0",)),
    "set_config_session": (["SELECT set_config('statement_timeout', '1234s', false)"],
                           "SHOW statement_timeout", "SHOW statement_timeout", ("0",)),
    "set_in_block_with_savepoint_rollback": (["BEGIN", "SET search_path TO leak_schema_x",
                                              "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s",
                                              "COMMIT"],
                           "SHOW search_path", "SELECT current_setting('search_path') "
                           "LIKE '%leak_schema_x%'", (False,)),
    "dynamic_listen_in_do": (["DO $body$ BEGIN EXECUTE 'LISTEN leak_dyn'; END $body$"],
                             "SELECT count(*) FROM pg_listening_channels()",
                             "SELECT count(*) FROM pg_listening_channels()", (0,)),
}


@pytest.fixture(scope="module")
def leak_role(pg):
    pg.sql("DROP ROLE IF EXISTS leak_role")
    pg.sql("CREATE ROLE leak_role")
    yield "leak_role"


def one_server(shoal, pg):
    return shoal(databases={"db": db_entry(pg, pool_size=1)},
                 settings={"pool_mode": "transaction", "query_wait_timeout": 20})


def pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_leak_probe(shoal, pg, leak_role, case):
    statements, a_probe, b_probe, b_expected = CASES[case]
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    for st in statements:
        a.execute(st)
    a_state = a.execute(a_probe).fetchone()
    assert a_state != b_expected, "client A should see its own state"
    a_pid = pid(a)
    # B asks for the server while A is still connected: it must wait for A to leave.
    result = {}
    started = threading.Event()

    def client_b():
        with psycopg.connect(s.dsn("db", "postgres"), autocommit=True) as b:
            started.set()
            result["probe"] = b.execute(b_probe).fetchone()
            result["pid"] = pid(b)

    t = threading.Thread(target=client_b)
    t.start()
    started.wait(10)
    # A's next transactions still see its state: it kept its server.
    assert a.execute(a_probe).fetchone() == a_state
    assert "probe" not in result
    a.close()
    t.join(20)
    assert result.get("pid") == a_pid, "B was not given A's server"
    assert result["probe"] == b_expected
    assert "pinned to its server" in s.log()


def test_harmless_text_does_not_pin(shoal, pg):
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    b = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    try:
        a.execute("SELECT 'LISTEN x; PREPARE p AS SELECT 1; SET ROLE nobody' AS s")
        a.execute("SELECT 1 -- pg_advisory_lock(1)\n")
        a.execute("SELECT $q$ CREATE TEMP $q$ IS NULL, pg_advisory_xact_lock(7)")
        a.execute("SELECT set_config('application_name', 'x', true)")
        a.execute('SELECT 1 AS "temp", 2 AS hold')
        # B runs while A is connected: A did not keep the server.
        assert b.execute("SELECT 1").fetchone() == (1,)
        assert a.execute("SELECT pg_backend_pid()").fetchone() == \
            b.execute("SELECT pg_backend_pid()").fetchone()
    finally:
        a.close()
        b.close()
    assert "pinned" not in s.log()


def test_pinned_client_keeps_the_server_while_others_wait(shoal, pg):
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    a.execute("LISTEN keep_me")
    waiter_done = threading.Event()

    def client_b():
        with psycopg.connect(s.dsn("db", "postgres"), autocommit=True) as b:
            b.execute("SELECT 1")
            waiter_done.set()

    t = threading.Thread(target=client_b)
    t.start()
    got = []
    a.add_notify_handler(lambda n: got.append(n.payload))
    pg.sql("NOTIFY keep_me, 'hello'")
    wait_until(lambda: a.execute("SELECT 1") and got, 10, what="the notification")
    assert got == ["hello"]
    assert not waiter_done.is_set()
    a.close()
    wait_until(waiter_done.is_set, 20, what="B to get the server after A left")
    t.join(5)


def test_search_path_does_not_leak_and_stays_with_its_client(shoal, pg):
    """search_path is tracked, not pinned: B shares the server while A is connected."""
    pg.sql("DROP SCHEMA IF EXISTS leak_tenant CASCADE")
    pg.sql("CREATE SCHEMA leak_tenant")
    s = one_server(shoal, pg)
    a = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    b = psycopg.connect(s.dsn("db", "postgres"), autocommit=True)
    try:
        default = b.execute("SHOW search_path").fetchone()
        a.execute("SET search_path TO leak_tenant")
        assert b.execute("SHOW search_path").fetchone() == default
        assert pid(a) == pid(b)
        with a.transaction():
            assert a.execute("SHOW search_path").fetchone() == ("leak_tenant",)
        assert b.execute("SHOW search_path").fetchone() == default
    finally:
        a.close()
        b.close()
    assert "pinned" not in s.log()
