"""Replication connections through Shoal (issue 22): a startup packet with replication=true or
replication=database gets a server of its own, opened with that parameter, linked for the
client's whole session in any pool mode and closed when the client leaves (PgBouncer 1.23+).
A cluster with wal_level=logical and replication lines in pg_hba.conf is made for the module."""
import os
import subprocess
import tempfile

import psycopg
import pytest

from admin_helpers import admin, show
from conftest import PG_BIN, PgCluster
from helpers import wait_until


@pytest.fixture(scope="module")
def pg_repl():
    c = PgCluster("repl").init()
    with open(os.path.join(c.data, "postgresql.conf"), "a") as f:
        f.write("\nwal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n")
    with open(os.path.join(c.data, "pg_hba.conf"), "a") as f:
        f.write("local replication all trust\nhost replication all 127.0.0.1/32 trust\n")
    try:
        c.start().setup_roles()
        yield c
    finally:
        c.destroy()


def _start(shoal, pg, mode="transaction", **settings):
    cfg = {"pool_mode": mode}
    cfg.update(settings)
    # physical clients (pg_basebackup) send database=replication, as to PostgreSQL
    return shoal(databases={"postgres": {"dbname": "postgres"},
                            "replication": {"dbname": "replication"}},
                 settings=cfg, pg_cluster=pg)


def _dsn(s, **kw):
    parts = {"host": s.host, "port": s.port, "dbname": "postgres", "user": "postgres"}
    parts.update(kw)
    return " ".join("%s=%s" % kv for kv in parts.items())


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_pg_basebackup_through_shoal(shoal, pg_repl, mode):
    s = _start(shoal, pg_repl, mode)
    out = tempfile.mkdtemp(prefix="shoal-bb-")
    os.chmod(out, 0o777)
    target = os.path.join(out, "data")
    r = subprocess.run(
        [os.path.join(PG_BIN, "pg_basebackup"), "-d", _dsn(s), "-D", target, "-X", "stream",
         "-c", "fast", "--no-sync", "-w"],
        capture_output=True, text=True, timeout=120)
    try:
        assert r.returncode == 0, r.stderr + s.log_tail()
        assert os.path.exists(os.path.join(target, "PG_VERSION"))
        assert os.path.exists(os.path.join(target, "backup_label"))
    finally:
        subprocess.run(["rm", "-rf", out])
    # Both of its connections (base backup and WAL stream) ended with the client: none pooled.
    wait_until(lambda: pg_repl.sql("SELECT count(*) FROM pg_stat_replication")[0][0] == 0,
               timeout=10)
    with admin(s) as a:
        _, rows = show(a, "SERVERS")
    assert all(r["replication"] == "none" for r in rows), rows


def test_logical_slot_streams_changes(shoal, pg_repl):
    pg_repl.sql("CREATE TABLE IF NOT EXISTS repl_t (x int)")
    s = _start(shoal, pg_repl, "transaction")
    out = os.path.join(tempfile.mkdtemp(prefix="shoal-rl-"), "out.txt")
    os.chmod(os.path.dirname(out), 0o777)
    conn = psycopg.connect(_dsn(s, replication="database"), autocommit=True)
    try:
        row = conn.execute("IDENTIFY_SYSTEM").fetchone()
        assert row[0] and row[1] == 1
        conn.execute("CREATE_REPLICATION_SLOT shoal_slot TEMPORARY LOGICAL test_decoding")
        with admin(s) as a:
            _, rows = show(a, "SERVERS")
            _, clients = show(a, "CLIENTS")
        assert [r["replication"] for r in rows] == ["logical"], rows
        assert [r["replication"] for r in clients if r["addr"] != "unix"] == ["logical"], clients
        pg_repl.sql("INSERT INTO repl_t VALUES (42)")
        # pg_recvlogical streams a slot's changes through Shoal (START_REPLICATION, CopyBoth).
        pg_repl.sql("SELECT pg_create_logical_replication_slot('shoal_rl', 'test_decoding')")
        pg_repl.sql("INSERT INTO repl_t VALUES (43)")
        p = subprocess.Popen(
            [os.path.join(PG_BIN, "pg_recvlogical"), "-d", _dsn(s), "-S", "shoal_rl",
             "--start", "-f", out, "-F", "1", "-n"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: os.path.exists(out) and "43" in open(out).read(), timeout=20)
        finally:
            p.terminate()
            p.wait(timeout=10)
        assert "table public.repl_t: INSERT: x[integer]:43" in open(out).read()
    finally:
        conn.close()
        pg_repl.sql("SELECT pg_drop_replication_slot('shoal_rl')")
        subprocess.run(["rm", "-rf", os.path.dirname(out)])
    wait_until(lambda: pg_repl.sql("SELECT count(*) FROM pg_stat_replication")[0][0] == 0,
               timeout=10)


def test_replication_server_never_reused_and_plain_clients_unaffected(shoal, pg_repl):
    s = _start(shoal, pg_repl, "session", default_pool_size=2)
    pids = set()
    for _ in range(2):
        with psycopg.connect(_dsn(s, replication="database"), autocommit=True) as c:
            c.execute("IDENTIFY_SYSTEM").fetchone()
            pid = pg_repl.sql("SELECT pid FROM pg_stat_replication")[0][0]
            pids.add(pid)
            # an ordinary client of the same database and user still gets a normal server
            n = s.connect("postgres", "postgres")
            assert n.execute("SELECT 1").fetchone() == (1,)
            n.close()
        wait_until(lambda: pg_repl.sql("SELECT count(*) FROM pg_stat_replication")[0][0] == 0,
                   timeout=10)
    assert len(pids) == 2


def test_bad_replication_value_refused(shoal, pg_repl):
    s = _start(shoal, pg_repl)
    with pytest.raises(psycopg.OperationalError, match='invalid value for parameter "replication"'):
        psycopg.connect(_dsn(s, replication="maybe"))


def test_replication_server_counts_in_pool_size_and_evicts_an_idle_one(shoal, pg_repl):
    """PgBouncer counts a replication server in its pool's pool_size: with the pool full of
    idle servers, a replication client gets one of them closed for its own."""
    s = _start(shoal, pg_repl, "transaction", default_pool_size=2)
    a, b = s.connect("postgres", "postgres"), s.connect("postgres", "postgres")
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("SELECT 1")
    b.execute("SELECT 1")
    a.execute("COMMIT")
    b.execute("COMMIT")
    with admin(s) as adm:
        _, rows = show(adm, "SERVERS")
    assert len(rows) == 2, rows
    with psycopg.connect(_dsn(s, replication="database", connect_timeout=10),
                         autocommit=True) as r:
        assert r.execute("IDENTIFY_SYSTEM").fetchone()[1] == 1
        with admin(s) as adm:
            _, rows = show(adm, "SERVERS")
        assert sorted(x["replication"] for x in rows) == ["logical", "none"], rows
    assert "closing because: evicted" in s.log()
    a.close()
    b.close()


def test_hba_replication_keyword_for_physical_clients(shoal, pg_repl, tmp_path):
    """auth_hba_file: a physical replication client matches only lines whose database is the
    keyword replication (PostgreSQL's rule), not all; a logical one matches its database."""
    hba = tmp_path / "hba.conf"
    hba.write_text("host replication postgres 127.0.0.1/32 trust\n"
                   "host postgres postgres 127.0.0.1/32 trust\n")
    s = _start(shoal, pg_repl, "session", auth_type="hba", auth_hba_file=str(hba))
    with psycopg.connect(_dsn(s, replication="true"), autocommit=True) as c:
        assert c.execute("IDENTIFY_SYSTEM").fetchone()[1] == 1
    with psycopg.connect(_dsn(s, replication="database"), autocommit=True) as c:
        assert c.execute("IDENTIFY_SYSTEM").fetchone()[1] == 1
    hba.write_text("host all postgres 127.0.0.1/32 trust\n")
    with admin(s) as a:
        a.execute("RELOAD")
    with pytest.raises(psycopg.OperationalError,
                       match="no pg_hba.conf entry for replication connection from host"):
        psycopg.connect(_dsn(s, replication="true"))
    with psycopg.connect(_dsn(s, replication="database"), autocommit=True) as c:
        assert c.execute("IDENTIFY_SYSTEM").fetchone()[1] == 1
