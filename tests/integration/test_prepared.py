"""Protocol-level prepared statements in transaction and statement modes (prepared.c)."""
import os
import subprocess

import psycopg
import pytest

from admin_helpers import admin, pool_row
from helpers import db_entry, run_threads, wait_until
from test_pgbench import assert_clean_run, pgbench
from txnwire import (bind, close, connect, describe, errors, execute, flush, kinds, parse,
                     read_until_ready, rows, sync)


@pytest.fixture(scope="module")
def prep_bench_db(pg):
    pg.sql("DROP DATABASE IF EXISTS bench_prepared")
    pg.sql("CREATE DATABASE bench_prepared")
    r = subprocess.run(["pgbench", "-i", "-q", "-s", "1", "-h", pg.host, "-p", str(pg.port),
                        "-U", "postgres", "bench_prepared"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return "bench_prepared"


def txn_shoal(shoal, pg, pool_size=1, mode="transaction", **settings):
    st = {"pool_mode": mode, "query_wait_timeout": 20}
    st.update(settings)
    return shoal(databases={"db": db_entry(pg, pool_size=pool_size)}, settings=st)


@pytest.mark.parametrize("mode,protocol,script", [
    ("transaction", "prepared", "tpcb"), ("transaction", "extended", "tpcb"),
    ("statement", "prepared", "select"), ("statement", "extended", "select")])
def test_pgbench_50_clients_on_pool_of_4(shoal, pg, prep_bench_db, mode, protocol, script):
    s = shoal(databases={"db": {"dbname": prep_bench_db, "host": pg.host, "port": pg.port,
                                "pool_size": 4}},
              settings={"pool_mode": mode, "query_wait_timeout": 30})
    # One thread per client: pgbench prepares a script's statements synchronously (PQprepare)
    # when a client first runs it, which blocks every client of that thread, so with shared
    # threads a client holding a server inside BEGIN..END would wait on its neighbour forever.
    args = ["-n", "-T", "3", "-c", "50", "-j", "50", "-M", protocol]
    if script == "select":
        args.append("-S")
    assert_clean_run(*pgbench(s, *args))


def test_two_clients_same_name_different_text_share_one_server(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1)
    a, b = connect(s), connect(s)
    a.send(parse("s1", "SELECT 'a:' || $1::text") + sync())
    assert kinds(read_until_ready(a)) == "1Z"
    b.send(parse("s1", "SELECT 'b:' || $1::text || ':' || $1::text") + sync())
    assert kinds(read_until_ready(b)) == "1Z"
    for i in range(5):
        a.send(bind("s1", [i]) + execute() + sync())
        b.send(bind("s1", [i]) + execute() + sync())
        assert rows(read_until_ready(a)) == [("a:%d" % i,)]
        assert rows(read_until_ready(b)) == [("b:%d:%d" % (i, i),)]
    # One backend served both.
    pids = []
    for w in (a, b):
        w.send(message_query("SELECT pg_backend_pid()"))
        pids += rows(read_until_ready(w))
    assert pids[0] == pids[1]


def test_same_text_is_prepared_afresh_per_parse_and_kept_once_per_server(shoal, pg):
    """Each client's Parse prepares the text again (a cached statement may be stale, issue 15);
    the one it replaces is closed, so the server holds one statement per text."""
    s = txn_shoal(shoal, pg, pool_size=1)
    a, b = connect(s), connect(s)
    for w in (a, b):
        w.send(parse("q", "SELECT 40 + $1::int") + bind("q", [2]) + execute() + sync())
        msgs = read_until_ready(w)
        assert kinds(msgs) == "12DCZ" and rows(msgs) == [("42",)]
    a.send(message_query("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'SHOAL_%'"))
    assert rows(read_until_ready(a)) == [("1",)]


def message_query(sql):
    from wire import query_message
    return query_message(sql)


def test_duplicate_parse_of_a_live_name_is_refused_like_postgresql(shoal, pg):
    s = txn_shoal(shoal, pg)
    a = connect(s)
    a.send(parse("d", "SELECT 1") + sync())
    assert kinds(read_until_ready(a)) == "1Z"
    a.send(parse("d", "SELECT 2") + bind("d") + execute() + sync())
    msgs = read_until_ready(a)
    assert errors(msgs) == ["42P05"] and kinds(msgs) == "EZ"
    a.send(bind("d") + execute() + sync())
    assert rows(read_until_ready(a)) == [("1",)]


def test_close_then_reparse_same_name_in_one_pipeline(shoal, pg):
    s = txn_shoal(shoal, pg)
    a = connect(s)
    a.send(parse("r", "SELECT 'old'") + sync())
    read_until_ready(a)
    a.send(close(b"S", "r") + parse("r", "SELECT 'new'") + bind("r") + execute() + sync())
    msgs = read_until_ready(a)
    assert kinds(msgs) == "312DCZ", msgs
    assert rows(msgs) == [("new",)]


def test_eviction_under_a_tiny_cache_gives_correct_results(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1, max_prepared_statements=2)
    a, b = connect(s), connect(s)
    for w, tag in ((a, "a"), (b, "b")):
        w.send(b"".join(parse("p%d" % i, "SELECT '%s%d' || $1::text" % (tag, i))
                        for i in range(6)) + sync())
        assert kinds(read_until_ready(w)) == "111111Z"
    for rnd in range(3):
        for w, tag in ((a, "a"), (b, "b")):
            order = list(range(6))[rnd::1] + list(range(6))[:rnd]
            w.send(b"".join(bind("p%d" % i, [rnd]) + execute() for i in order) + sync())
            msgs = read_until_ready(w)
            assert rows(msgs) == [("%s%d%d" % (tag, i, rnd),) for i in order], msgs
            assert not errors(msgs)
    a.send(message_query("SELECT count(*) FROM pg_prepared_statements"))
    assert int(rows(read_until_ready(a))[0][0]) <= 2


def test_eviction_by_bytes(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1, max_prepared_statement_bytes=120)
    a = connect(s)
    texts = ["SELECT '%s' AS padding_%d" % ("x" * 40, i) for i in range(5)]
    a.send(b"".join(parse("b%d" % i, t) for i, t in enumerate(texts)) + sync())
    assert kinds(read_until_ready(a)) == "11111Z"
    for i in reversed(range(5)):
        a.send(bind("b%d" % i) + execute() + sync())
        assert rows(read_until_ready(a)) == [("x" * 40,)]
    a.send(message_query("SELECT count(*) FROM pg_prepared_statements"))
    assert int(rows(read_until_ready(a))[0][0]) <= 2


@pytest.mark.parametrize("command", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_deallocate_all_forgets_the_clients_statements(shoal, pg, command):
    s = txn_shoal(shoal, pg, pool_size=1)
    a, b = connect(s), connect(s)
    b.send(parse("keep", "SELECT 'b kept'") + sync())
    read_until_ready(b)
    a.send(parse("x", "SELECT 'first'") + sync())
    read_until_ready(a)
    a.send(message_query(command))
    assert not errors(read_until_ready(a))
    a.send(bind("x") + execute() + sync())
    assert errors(read_until_ready(a)) == ["26000"]
    a.send(parse("x", "SELECT 'second'") + bind("x") + execute() + sync())
    assert rows(read_until_ready(a)) == [("second",)]
    # Another client's statements survive the server losing them (prepared again on use).
    b.send(bind("keep") + execute() + sync())
    assert rows(read_until_ready(b)) == [("b kept",)]


def test_pipeline_across_syncs_with_errors_keeps_maps_in_step(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1)
    a, b = connect(s), connect(s)
    b.send(parse("shared", "SELECT 'shared'") + sync())  # on the server already for a
    read_until_ready(b)
    a.send(parse("s1", "SELECT 1 + $1::int") + bind("s1", [1]) + execute() + sync()
           # an error in the second batch: the server skips to its Sync
           + parse("bad", "SELEKT") + bind("s1", [2]) + execute() + parse("shared", "SELECT 'shared'")
           + sync()
           # unnamed statements, several per batch
           + parse("", "SELECT $1::int * 10") + bind("", [3]) + execute()
           + parse("", "SELECT $1::int * 100") + bind("", [4]) + execute() + sync()
           + bind("s1", [5]) + execute() + sync())
    msgs = read_until_ready(a, count=4)
    assert kinds(msgs) == "12DCZ" "EZ" "12DC12DCZ" "2DCZ", msgs
    assert errors(msgs) == ["42601"]
    assert rows(msgs) == [("2",), ("30",), ("400",), ("6",)]
    # "bad" and "shared" were skipped by the server: they do not exist for this client.
    a.send(bind("bad") + execute() + sync() + bind("shared") + execute() + sync())
    msgs = read_until_ready(a, count=2)
    assert errors(msgs) == ["26000", "26000"]
    a.send(parse("shared", "SELECT 'shared'") + bind("shared") + execute() + sync())
    assert rows(read_until_ready(a)) == [("shared",)]


def _replies_text(w, count):
    """Replies of count batches, errors as (SQLSTATE, message): what a client sees."""
    return [(k, (v["C"], v["M"]) if k == "E" else v) for k, v in read_until_ready(w, count)]


def test_parse_skipped_after_an_error_is_not_prepared_for_later_batches(shoal, pg):
    """Issue 22 (PgBouncer's test_prepared_failed_prepare_pipeline): PostgreSQL skips a Parse
    that follows an error up to the Sync. Batches pipelined behind that Sync, sent before the
    error came back, see what a direct connection sees: the Bind 26000 naming the client's
    statement, a Parse of the same name then succeeding (not 42P05); a skipped Close leaves its
    statement in place."""
    from wire import Wire

    s = txn_shoal(shoal, pg, pool_size=1)
    pooled = connect(s)
    direct = Wire(pg.host, pg.port)
    assert direct.startup("postgres", "postgres") is None
    setup = parse("kept", "SELECT 'kept'") + sync()
    pipeline = (parse("bad", "SELEKT") + parse("s1", "SELECT 1") + close(b"S", "kept") + sync()
                + bind("s1") + execute() + sync()
                + parse("s1", "SELECT 2") + bind("s1") + execute() + sync()
                + bind("kept") + execute() + sync())
    got, want = [], []
    for w, out in ((pooled, got), (direct, want)):
        w.send(setup)
        read_until_ready(w)
        w.send(pipeline)  # all in one write: the error has not come back when the rest is sent
        out += _replies_text(w, 4)
    assert got == want, got
    assert [k for k, _ in got] == list("EZEZ12DCZ2DCZ"), got
    assert got[2][1][0] == "26000" and rows(got) == [("2",), ("kept",)]


def test_error_in_an_injected_parse_reaches_the_client(shoal, pg):
    pg.sql("DROP TABLE IF EXISTS prep_gone")
    pg.sql("CREATE TABLE prep_gone (x int)")
    s = txn_shoal(shoal, pg, pool_size=1, max_prepared_statements=1)
    a = connect(s)
    a.send(parse("g", "SELECT count(*) FROM prep_gone") + parse("h", "SELECT 'h'") + sync())
    assert kinds(read_until_ready(a)) == "11Z"  # "g" was evicted by "h"
    pg.sql("DROP TABLE prep_gone")
    a.send(bind("g") + execute() + sync() + bind("h") + execute() + sync())
    msgs = read_until_ready(a, count=2)
    assert errors(msgs) == ["42P01"] and rows(msgs) == [("h",)], msgs


def test_describe_and_flush(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1)
    a, b = connect(s), connect(s)
    b.send(parse("d", "SELECT $1::int AS n") + sync())
    read_until_ready(b)
    a.send(parse("d", "SELECT $1::int AS n") + describe(b"S", "d") + flush())
    t1, _ = a.read_msg()
    t2, _ = a.read_msg()
    t3, _ = a.read_msg()
    assert (t1, t2, t3) == (b"1", b"t", b"T")
    a.send(bind("d", [7]) + execute() + sync())
    assert rows(read_until_ready(a)) == [("7",)]


def test_psycopg_prepare_threshold_0_many_clients(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=2, max_prepared_statements=5)

    def work(i):
        with psycopg.connect(s.dsn("db", "postgres"), autocommit=True,
                             prepare_threshold=0) as conn:
            for j in range(30):
                q = "SELECT %%s::int + %d" % (j % 8)
                assert conn.execute(q, (i,)).fetchone() == (i + j % 8,)
                with conn.transaction():
                    assert conn.execute("SELECT %s::text || 'x'", (str(i),)).fetchone() == \
                        (str(i) + "x",)

    run_threads(work, [(i,) for i in range(6)], timeout=60)


def test_statement_mode_prepared(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1, mode="statement")
    a, b = connect(s), connect(s)
    for w, v in ((a, "1"), (b, "2")):
        w.send(parse("s", "SELECT %s" % v) + bind("s") + execute() + sync())
        assert rows(read_until_ready(w)) == [(v,)]
    for w, v in ((b, "2"), (a, "1")):
        w.send(bind("s") + execute() + sync())
        assert rows(read_until_ready(w)) == [(v,)]


def test_max_prepared_statements_0_passes_names_through(shoal, pg):
    s = txn_shoal(shoal, pg, pool_size=1, max_prepared_statements=0)
    a = connect(s)
    a.send(parse("plain", "SELECT 5") + bind("plain") + execute() + sync())
    assert rows(read_until_ready(a)) == [("5",)]
    a.send(message_query("SELECT name FROM pg_prepared_statements"))
    assert rows(read_until_ready(a)) == [("plain",)]
    a.send(message_query("DEALLOCATE ALL"))
    read_until_ready(a)


def _random_batch(rnd):
    """A batch of extended-protocol messages ending with Sync (or a simple Query)."""
    names = ["a", "b", "c", ""]
    # Every text takes one parameter, as every Bind supplies one.
    texts = ["SELECT $1::int + 1 AS x", "SELECT 'q' || $1::text", "SELECT 1 AS one WHERE $1 = 1",
             "SELEKT $1", "SELECT $1::int / 0", "SELECT g FROM generate_series(1, 3 + $1::int) g"]
    if rnd.random() < 0.1:
        return message_query(rnd.choice(["SELECT 42", "DEALLOCATE ALL", "SELECT 1/0", "BEGIN",
                                         "COMMIT", "ROLLBACK", "SELECT 1; SELECT 2"]))
    out = b""
    for _ in range(rnd.randint(1, 6)):
        op = rnd.random()
        name = rnd.choice(names)
        portal = rnd.choice(["", "", "p"])
        if op < 0.3:
            out += parse(name, rnd.choice(texts))
        elif op < 0.65:
            out += bind(name, [rnd.randint(0, 9)], portal=portal)
            out += execute(portal, rnd.choice([0, 0, 2]))
        elif op < 0.72:
            out += execute(portal, rnd.choice([0, 1]))
        elif op < 0.8:
            out += describe(rnd.choice([b"S", b"P"]), name if rnd.random() < 0.7 else portal)
        elif op < 0.92:
            out += close(b"S", name)
        elif op < 0.96:
            out += close(b"P", portal)
        else:
            out += flush()
    return out + sync()


def _replies(w):
    """One batch's replies, errors reduced to their SQLSTATE (messages name statements)."""
    return [(k, v["C"] if k == "E" else v) for k, v in read_until_ready(w)]


@pytest.mark.parametrize("cache", [1, 3])
@pytest.mark.parametrize("seed", [int(x) for x in os.environ.get("PREP_SEEDS", "1,2").split(",")])
def test_random_pipelines_match_a_direct_connection(shoal, pg, seed, cache):
    """Differential: three clients sharing one server through a tiny statement cache see, batch
    by batch, exactly what three direct connections see for the same random messages (Parse,
    Bind, Execute with row limits, Describe, Close of named and unnamed statements and portals,
    Flush, errors, DEALLOCATE ALL, transactions across Syncs). Set PREP_SEEDS / PREP_STEPS to
    run longer."""
    import random

    from wire import Wire

    s = txn_shoal(shoal, pg, pool_size=1, max_prepared_statements=cache)
    pooled = [connect(s), connect(s), connect(s)]
    direct = []
    for _ in range(3):
        w = Wire(pg.host, pg.port)
        assert w.startup("postgres", "postgres") is None
        direct.append(w)
    rnd = random.Random(seed)
    in_xact = None  # the one server is that client's until its transaction ends
    for step in range(int(os.environ.get("PREP_STEPS", "80"))):
        i = in_xact if in_xact is not None else rnd.randrange(3)
        batch = _random_batch(rnd)
        pooled[i].send(batch)
        direct[i].send(batch)
        got, want = _replies(pooled[i]), _replies(direct[i])
        assert got == want, "seed %d step %d client %d batch %r" % (seed, step, i, batch)
        in_xact = i if want[-1] != ("Z", "I") else None


def _backend_pid(w):
    w.send(message_query("BEGIN; SELECT pg_backend_pid()"))
    return rows(read_until_ready(w))[0][0]


def _wait_idle(s, n):
    with admin(s) as con:
        wait_until(lambda: pool_row(con, "db", "postgres")["sv_idle"] == n, 10,
                   what="%d idle servers" % n)


def _commit(w):
    w.send(message_query("COMMIT"))
    assert kinds(read_until_ready(w)) == "CZ"


def test_statement_described_before_a_result_type_change_fails_on_another_server(shoal, pg):
    """Issue 15.1: A's statement was described with x bytea; after x became int[] its Bind lands
    on a server where Shoal prepares the text afresh. PostgreSQL would refuse the Bind (0A000)
    and the driver re-prepare; Shoal must not hand A rows of the new shape."""
    pg.sql("DROP TABLE IF EXISTS sr_t")
    pg.sql("CREATE TABLE sr_t (x bytea)")
    pg.sql("INSERT INTO sr_t VALUES ('\\x01')")
    s = txn_shoal(shoal, pg, pool_size=2)
    a, c, d = connect(s), connect(s), connect(s)
    a_pid, c_pid = _backend_pid(a), _backend_pid(c)
    assert a_pid != c_pid
    a.send(parse("a1", "SELECT x FROM sr_t") + describe(b"S", "a1") + bind("a1") + execute()
           + sync())
    assert kinds(read_until_ready(a)) == "1tT2DCZ"
    # Released in this order, a's server is the most recently idle one, which d's transaction
    # takes. With several workers the two releases could land in either order: wait for each.
    _commit(c)
    _wait_idle(s, 1)
    _commit(a)
    _wait_idle(s, 2)
    pg.sql("DROP TABLE sr_t")
    pg.sql("CREATE TABLE sr_t (x int[])")
    pg.sql("INSERT INTO sr_t VALUES ('{1,2}')")
    assert _backend_pid(d) == a_pid  # a's statement is now prepared on c's server
    a.send(bind("a1") + execute() + sync())
    msgs = read_until_ready(a)
    assert kinds(msgs) == "EZ", msgs
    err = msgs[0][1]
    assert (err["S"], err["V"], err["C"], err["M"]) == (
        "ERROR", "ERROR", "0A000", "cached plan must not change result type")
    # As with PostgreSQL, it stays refused (a Describe gets the parameters, then the error);
    # a re-prepared statement works.
    a.send(bind("a1") + execute() + sync())
    assert errors(read_until_ready(a)) == ["0A000"]
    a.send(describe(b"S", "a1") + sync())
    msgs = read_until_ready(a)
    assert kinds(msgs) == "tEZ" and errors(msgs) == ["0A000"], msgs
    a.send(close(b"S", "a1") + parse("a1", "SELECT x FROM sr_t") + bind("a1") + execute()
           + sync())
    msgs = read_until_ready(a)
    assert kinds(msgs) == "312DCZ" and rows(msgs) == [("{1,2}",)], msgs
    _commit(d)


def test_fresh_parse_after_a_result_type_change_is_not_served_a_stale_statement(shoal, pg):
    """Issue 15.2: a new client's first Parse of a text the server prepared before the table
    changed must behave like a fresh Parse, not get the old statement's 0A000."""
    pg.sql("DROP TABLE IF EXISTS cp_t")
    pg.sql("CREATE TABLE cp_t (x int)")
    pg.sql("INSERT INTO cp_t VALUES (1)")
    s = txn_shoal(shoal, pg, pool_size=1)
    a = connect(s)
    a.send(parse("q", "SELECT x FROM cp_t") + bind("q") + execute() + sync())
    assert rows(read_until_ready(a)) == [("1",)]
    pg.sql("DROP TABLE cp_t")
    pg.sql("CREATE TABLE cp_t (x text)")
    pg.sql("INSERT INTO cp_t VALUES ('new')")
    b = connect(s)
    for _ in range(2):
        b.send(parse("q", "SELECT x FROM cp_t") + bind("q") + execute() + close(b"S", "q")
               + sync())
        msgs = read_until_ready(b)
        assert kinds(msgs) == "12DC3Z" and rows(msgs) == [("new",)], msgs
    # a's statement predates the change: refused, as PostgreSQL refuses it.
    a.send(bind("q") + execute() + sync())
    assert errors(read_until_ready(a)) == ["0A000"]


# Column types (and a value of each) for the DDL the differential test runs between transactions.
_DDL_TYPES = {"int": "1", "text": "'t'", "bytea": "'\\x01'", "int[]": "'{1,2}'",
              "numeric(6,2)": "1.5", "varchar(3)": "'v'"}
# Named statements on the tables the DDL changes, and some that no DDL touches.
_DDL_TEXTS = ["SELECT x FROM ddl_t WHERE $1::int >= 0", "SELECT * FROM ddl_t WHERE $1::int >= 0",
              "SELECT x FROM ddl_s.t2 WHERE $1::int >= 0",
              "SELECT count(*) FROM ddl_t WHERE $1::int >= 0"]
_PLAIN_TEXTS = ["SELECT $1::int + 1 AS x", "SELECT 'q' || $1::text", "SELEKT $1",
                "SELECT $1::int / 0"]


def _ddl(rnd):
    """One DDL change, run on its own connection while no client is in a transaction."""
    t = rnd.choice(sorted(_DDL_TYPES))
    return rnd.choice([
        "DROP TABLE IF EXISTS ddl_t; CREATE TABLE ddl_t (x %s); INSERT INTO ddl_t VALUES (%s)"
        % (t, _DDL_TYPES[t]),
        "ALTER TABLE ddl_t ADD COLUMN IF NOT EXISTS y int DEFAULT 7",
        "ALTER TABLE ddl_t DROP COLUMN IF EXISTS y",
        "ALTER TABLE ddl_t ALTER COLUMN x TYPE text USING x::text",
        "ALTER TABLE ddl_t RENAME COLUMN x TO z", "ALTER TABLE ddl_t RENAME COLUMN z TO x",
        "ALTER TABLE ddl_t RENAME COLUMN y TO w", "ALTER TABLE ddl_t DROP COLUMN IF EXISTS w",
        "DROP SCHEMA IF EXISTS ddl_s CASCADE; CREATE SCHEMA ddl_s; CREATE TABLE ddl_s.t2 (x %s);"
        " INSERT INTO ddl_s.t2 VALUES (%s)" % (t, _DDL_TYPES[t]),
    ])


def _random_ddl_batch(rnd):
    """Like _random_batch, with named statements on tables that DDL changes. The unnamed
    statement keeps to texts no DDL touches (see docs/transaction-pooling.md, known limits)."""
    if rnd.random() < 0.1:
        return message_query(rnd.choice(["SELECT 42", "DEALLOCATE ALL", "DISCARD ALL", "BEGIN",
                                         "COMMIT", "ROLLBACK", "SELECT * FROM ddl_t"]))
    out = b""
    for _ in range(rnd.randint(1, 6)):
        op = rnd.random()
        name = rnd.choice(["a", "b", "c", ""])
        portal = rnd.choice(["", "", "p"])
        if op < 0.3:
            out += parse(name, rnd.choice(_PLAIN_TEXTS + (_DDL_TEXTS * 2 if name else [])))
        elif op < 0.65:
            out += bind(name, [rnd.randint(0, 9)], portal=portal)
            out += execute(portal, rnd.choice([0, 0, 1]))
        elif op < 0.8:
            out += describe(rnd.choice([b"S", b"P"]), name if rnd.random() < 0.7 else portal)
        elif op < 0.92:
            out += close(b"S", name)
        elif op < 0.96:
            out += close(b"P", portal)
        else:
            out += flush()
    return out + sync()


def _full_replies(w):
    """One batch's replies, byte for byte but for an error's source location (F, L, R: Shoal
    writes the 0A000 it answers for a stale statement without them) and the statement name in
    42P05's message (Shoal's name for it on the server)."""
    out = []
    for k, v in read_until_ready(w):
        if k == "E":
            v = {f: x for f, x in v.items() if f not in "FLR" and (f != "M" or v["C"] != "42P05")}
        out.append((k, v))
    return out


@pytest.mark.parametrize("mode,cache", [("transaction", 1), ("transaction", 3), ("session", 1),
                                        ("session", 3)])
def test_random_pipelines_with_ddl_match_a_direct_connection(shoal, pg, mode, cache):
    """Differential, with DDL between transactions: tables dropped and created again with other
    column types, columns added, dropped, renamed and retyped, a schema dropped and created
    again, DISCARD ALL. Three clients on two servers (any two may hold one in a transaction)
    must see, byte for byte, what three direct connections see: 2 x 5,000 random batches per
    mode. Seeded: PREP_DDL_SEED / PREP_DDL_STEPS reproduce or lengthen a run."""
    import random

    from wire import Wire

    admin = Wire(pg.host, pg.port)
    assert admin.startup("postgres", "postgres") is None
    for sql in ("DROP TABLE IF EXISTS ddl_t; CREATE TABLE ddl_t (x int); "
                "INSERT INTO ddl_t VALUES (1)",
                "DROP SCHEMA IF EXISTS ddl_s CASCADE; CREATE SCHEMA ddl_s; "
                "CREATE TABLE ddl_s.t2 (x int); INSERT INTO ddl_s.t2 VALUES (1)"):
        assert admin.query(sql)[1] is None
    pool_size = 2 if mode == "transaction" else 3
    s = txn_shoal(shoal, pg, pool_size=pool_size, mode=mode, max_prepared_statements=cache)
    pooled = [connect(s) for _ in range(3)]
    direct = []
    for _ in range(3):
        w = Wire(pg.host, pg.port)
        assert w.startup("postgres", "postgres") is None
        direct.append(w)
    seed = int(os.environ.get("PREP_DDL_SEED", "15")) * 100 + cache + len(mode)
    rnd = random.Random(seed)
    in_xact = set()  # clients whose server is theirs until their transaction ends
    for step in range(int(os.environ.get("PREP_DDL_STEPS", "5000"))):
        if not in_xact and rnd.random() < 0.04:
            admin.query(_ddl(rnd))  # may fail (no column z): the same for both
        i = rnd.choice(sorted(in_xact) if len(in_xact) == 2 else range(3))
        batch = _random_ddl_batch(rnd)
        pooled[i].send(batch)
        direct[i].send(batch)
        got, want = _full_replies(pooled[i]), _full_replies(direct[i])
        assert got == want, "seed %d step %d client %d batch %r" % (seed, step, i, batch)
        if want[-1] == ("Z", "I"):
            in_xact.discard(i)
        else:
            in_xact.add(i)


def test_query_skipped_after_an_extended_error_lets_the_server_go(shoal, pg):
    """A Query behind a failing Parse, before the Sync: PostgreSQL skips it (no ReadyForQuery
    for it). Shoal once still waited for that ReadyForQuery and kept the pool's only server
    (issue 14); the next client then waited for query_wait_timeout. (With prepared statements
    on, the default; with max_prepared_statements = 0 it is still a known defect.)"""
    s = txn_shoal(shoal, pg)
    a = connect(s)
    a.send(parse("s1", "SELEC 1") + message_query("select 1") + sync() + sync())
    msgs = read_until_ready(a, count=2)
    assert kinds(msgs) == "EZZ" and errors(msgs) == ["42601"], msgs
    b = connect(s)
    b.sock.settimeout(5)
    rows_b, err, status = b.query("select 2")
    assert err is None and rows_b == [("2",)] and status == "I"
    b.close()
    a.close()
