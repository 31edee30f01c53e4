"""Protocol features through the pooler: extended protocol, pipelines, COPY, notifications."""
import hashlib
import threading
import time

import psycopg
import pytest

from helpers import run_threads, wait_until


@pytest.fixture
def txn_pool(shoal, pg, role_db):
    role, db = role_db
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, label text)", dbname=db, user=role)
    s = shoal(databases={"db": {"dbname": db, "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    return s, role, db


def test_extended_protocol_queries_with_parameters(txn_pool):
    s, role, db = txn_pool
    a = s.connect("db", role)
    b = s.connect("db", role)
    for i in range(10):
        conn = a if i % 2 else b
        cur = conn.cursor()
        cur.execute("SELECT %s::int + %s::int, %s::text", (i, 1, "v%d" % i), prepare=False)
        assert cur.fetchone() == (i + 1, "v%d" % i)
    cur = a.cursor(binary=True)
    cur.execute("SELECT %s::bigint * 2, %s::bytea", (2**40, b"\x00\xff"), prepare=False)
    assert cur.fetchone() == (2**41, b"\x00\xff")


def test_named_prepared_statement_inside_one_transaction(txn_pool):
    s, role, db = txn_pool
    a = s.connect("db", role)
    with a.transaction():
        for i in range(3):
            cur = a.execute("SELECT %s::int * 3", (i,), prepare=True)
            assert cur.fetchone()[0] == i * 3


def test_executemany_inserts_all_rows(txn_pool, pg):
    s, role, db = txn_pool
    a = s.connect("db", role)
    cur = a.cursor()
    cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, "l%d" % i) for i in range(200)])
    assert pg.sql("SELECT count(*), sum(id) FROM items", dbname=db) == [(200, sum(range(200)))]


def test_pipeline_mode_with_several_syncs(txn_pool, pg):
    s, role, db = txn_pool

    def pipeline_client(base):
        with psycopg.connect(s.dsn("db", role), autocommit=True,
                             prepare_threshold=None) as c:
            results = []
            with c.pipeline() as p:
                curs = []
                for i in range(20):
                    curs.append(c.execute("INSERT INTO items VALUES (%s, %s) RETURNING id",
                                          (base + i, "p")))
                    if i % 5 == 4:
                        p.sync()
                curs.append(c.execute("SELECT count(*) FROM items WHERE id >= %s AND id < %s",
                                      (base, base + 20)))
            for cur in curs[:-1]:
                results.append(cur.fetchone()[0])
            assert results == list(range(base, base + 20))
            assert curs[-1].fetchone()[0] == 20
        return True

    _, errors = run_threads(pipeline_client, [(1000,), (2000,), (3000,)], timeout=30)
    assert errors == [None] * 3, errors
    assert pg.sql("SELECT count(*) FROM items", dbname=db) == [(60,)]


def test_pipeline_error_aborts_only_its_sync_group(txn_pool, pg):
    s, role, db = txn_pool
    c = s.connect("db", role)
    with pytest.raises(psycopg.errors.UniqueViolation):
        with c.pipeline() as p:
            c.execute("INSERT INTO items VALUES (1, 'a')")
            p.sync()
            c.execute("INSERT INTO items VALUES (1, 'dup')")
            p.sync()
    c.execute("INSERT INTO items VALUES (2, 'b')")
    assert pg.sql("SELECT id, label FROM items ORDER BY id", dbname=db) == [(1, "a"), (2, "b")]
    # The connection and the shared backend are usable (not stuck in an aborted transaction).
    other = s.connect("db", role)
    assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 2


def _copy_data(nrows):
    lines = []
    for i in range(nrows):
        lines.append("%d\t%s\n" % (i, hashlib.sha256(str(i).encode()).hexdigest() * 2))
    return "".join(lines).encode()


def test_copy_from_stdin_and_to_stdout_roundtrip(txn_pool, pg):
    s, role, db = txn_pool
    data = _copy_data(25000)   # ~3.3 MB
    assert len(data) > 3_000_000
    c = s.connect("db", role)
    cur = c.cursor()
    with cur.copy("COPY items (id, label) FROM STDIN") as cp:
        for off in range(0, len(data), 100_000):
            cp.write(data[off:off + 100_000])
    assert pg.sql("SELECT count(*), md5(string_agg(id || E'\\t' || label, E'\\n' ORDER BY id))"
                  " FROM items", dbname=db)[0] == (
        25000, hashlib.md5(data.rstrip(b"\n")).hexdigest())
    out = bytearray()
    with cur.copy("COPY (SELECT id, label FROM items ORDER BY id) TO STDOUT") as cp:
        for chunk in cp:
            out += chunk
    assert bytes(out) == data
    # The connection is in a clean state afterwards.
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_listen_notify_delivers_notifications_in_session_mode(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "session"})
    listener = s.connect("db", role)
    notifier = s.connect("db", role)
    got = []
    listener.add_notify_handler(got.append)
    listener.execute("LISTEN shoal_chan")
    notifier.execute("NOTIFY shoal_chan, 'hello'")
    notifier.execute("SELECT pg_notify('shoal_chan', 'world')")

    def received():
        listener.execute("SELECT 1")
        return len(got) >= 2

    wait_until(received, timeout=3, interval=0.05, what="2 notifications")
    assert [(n.channel, n.payload) for n in got] == [("shoal_chan", "hello"),
                                                    ("shoal_chan", "world")]


def test_notice_response_reaches_client(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    notices = []
    # psycopg's Diagnostic is only valid inside the handler: copy the fields out.
    c.add_notice_handler(lambda d: notices.append((d.severity, d.message_primary)))
    c.execute("DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$")
    assert notices == [("NOTICE", "hello 42")]
    assert c.execute("SELECT 1").fetchone()[0] == 1
