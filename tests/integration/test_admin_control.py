"""Admin console control: PAUSE/RESUME, RELOAD under load, SIGTERM under load, KILL_CLIENT."""
import re
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from admin_helpers import admin, pool_row, show
from helpers import wait_until


def test_pause_waits_for_transaction_then_resume_releases_waiters(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    a = admin(s)
    tx = s.connect("db", role)
    tx.execute("BEGIN")
    tx.execute("SELECT 1")
    done = {}
    p = threading.Thread(target=lambda: done.setdefault("pause", a.execute("PAUSE")))
    p.start()
    time.sleep(0.3)
    assert p.is_alive(), "PAUSE returned while a transaction was open"
    tx.execute("SELECT 2")  # the open transaction goes on
    tx.execute("COMMIT")
    p.join(5)
    assert not p.is_alive(), "PAUSE did not return after the transaction ended"
    a2 = admin(s)
    assert {r["key"]: r["value"] for r in show(a2, "STATE")[1]}["paused"] == "yes"
    q = threading.Thread(target=lambda: done.setdefault("q", tx.execute("SELECT 3").fetchone()))
    q.start()
    wait_until(lambda: pool_row(a2, "db", role)["cl_waiting"] == 1, timeout=5,
               what="the new query waiting while paused")
    assert q.is_alive()
    a2.execute("RESUME")
    q.join(5)
    assert done.get("q") == (3,)


def test_disable_refuses_new_clients_and_enable_admits_them(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    a = admin(s)
    a.execute("DISABLE db")
    with pytest.raises(psycopg.OperationalError, match='database "db" is disabled'):
        psycopg.connect(s.dsn("db", role))
    a.execute("ENABLE db")
    assert s.connect("db", role).execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.Error) as e:
        a.execute("DISABLE nosuchdb")
    assert "no such database: nosuchdb" in str(e.value)


def test_reconnect_never_hands_out_an_idle_server_again(shoal, role):
    """After RECONNECT an idle server is not given to the next transaction (PgBouncer's
    "obsolete connection"): it runs on a new server at once, without waiting for the janitor."""
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "statement"})
    c = s.connect("db", role)
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
    admin(s).execute("RECONNECT")
    assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_kill_client_closes_that_client_only(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    a = admin(s)
    x = s.connect("db", role)
    y = s.connect("db", role)
    ids = [r["id"] for r in show(a, "CLIENTS")[1] if r["database"] == "db"]
    assert len(ids) == 2
    a.execute("KILL_CLIENT %d" % ids[0])
    wait_until(lambda: len([r for r in show(a, "CLIENTS")[1] if r["database"] == "db"]) == 1,
               timeout=5, what="one client left")
    alive = 0
    for c in (x, y):
        try:
            c.execute("SELECT 1")
            alive += 1
        except psycopg.Error:
            pass
    assert alive == 1
    with pytest.raises(psycopg.Error) as e:
        a.execute("KILL_CLIENT 999999")
    assert "client not found" in str(e.value)
    with pytest.raises(psycopg.Error) as e:
        a.execute("RESUME")
    assert "pooler is not paused/suspended" in str(e.value)


def test_reload_with_bad_file_fails_with_F0000_and_keeps_config(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    a = admin(s)
    good = open(s.ini).read()
    with open(s.ini, "a") as f:
        f.write("default_pool_size = not_a_number\n")
    with pytest.raises(psycopg.Error) as e:
        a.execute("RELOAD")
    assert e.value.sqlstate == "F0000"
    with open(s.ini, "w") as f:
        f.write(good)
    assert s.connect("db", role).execute("SELECT 1").fetchone() == (1,)
    a.execute("SET default_pool_size = 7")
    cfg = {r["key"]: r["value"] for r in show(a, "CONFIG")[1]}
    assert cfg["default_pool_size"] == "7"
    with pytest.raises(psycopg.Error):
        a.execute("SET listen_port = 1")


@pytest.fixture(scope="module")
def bench_db(pg):
    pg.sql("CREATE DATABASE admin_bench")
    r = subprocess.run(["pgbench", "-i", "-q", "-s", "1", "-h", pg.host, "-p", str(pg.port),
                        "-U", "postgres", "admin_bench"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    pg.sql("CREATE TABLE IF NOT EXISTS done (x int)", dbname="admin_bench")
    return "admin_bench"


def start_pgbench(s, *args):
    return subprocess.Popen(["pgbench", "-h", s.host, "-p", str(s.port), "-U", "postgres",
                             "-n", *args, "db"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_reload_under_pgbench_changes_pool_size_without_client_errors(shoal, pg, bench_db):
    s = shoal(databases={"db": {"dbname": bench_db, "pool_size": 2}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 20})
    a = admin(s)
    b = start_pgbench(s, "-S", "-T", "4", "-c", "6")
    wait_until(lambda: pool_row(a, "db", "postgres") is not None, timeout=5, what="pool")
    text = open(s.ini).read().replace("pool_size=2", "pool_size=4")
    with open(s.ini, "w") as f:
        f.write(text)
    a.execute("RELOAD")
    wait_until(lambda: (lambda r: r["sv_active"] + r["sv_idle"] + r["sv_login"] > 2)(
        pool_row(a, "db", "postgres")), timeout=5, what="more than 2 servers after reload")
    out = b.communicate(timeout=30)[0]
    assert b.returncode == 0, out
    assert not re.search(r"error", out, re.I), out
    db = [r for r in show(a, "DATABASES")[1] if r["name"] == "db"][0]
    assert db["pool_size"] == 4


def test_sigint_under_pgbench_commits_every_started_transaction(shoal, pg, bench_db):
    """SIGINT (WAIT_FOR_SERVERS): each client is refused at its next transaction; every
    started one commits. (SIGTERM would serve pgbench until its -T ends.)"""
    pg.sql("TRUNCATE done", dbname=bench_db)
    s = shoal(databases={"db": {"dbname": bench_db, "pool_size": 3}},
              settings={"pool_mode": "transaction", "shutdown_timeout": 10})
    script = s.dir + "/tx.sql"
    with open(script, "w") as f:
        f.write("BEGIN;\nINSERT INTO done VALUES (1);\nSELECT pg_sleep(0.01);\n"
                "INSERT INTO done VALUES (2);\nCOMMIT;\n")
    b = start_pgbench(s, "-f", script, "-T", "10", "-c", "4")
    wait_until(lambda: pg.sql("SELECT count(*) FROM done", dbname=bench_db)[0][0] > 20,
               timeout=10, what="load running")
    s.send_signal(signal.SIGINT)
    rc = s.wait(15)
    s.stopped_by_test = True
    assert rc == 0, rc
    out = b.communicate(timeout=20)[0]
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    ones, twos = pg.sql("SELECT count(*) FILTER (WHERE x = 1), count(*) FILTER (WHERE x = 2) "
                        "FROM done", dbname=bench_db)[0]
    assert ones == twos and ones > 0, (ones, twos)
    assert m and int(m.group(1)) == ones, out  # what pgbench saw commit is what is there
