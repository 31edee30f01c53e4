"""A restarting PostgreSQL (issue 16): the login backoff counts failed rounds, not parallel
logins, and new requests are refused at once while the pool's logins fail."""
import re
import signal
import threading
import time

import psycopg
import pytest

from helpers import wait_until
from wire import Wire


def _pool(shoal, cluster, role, **settings):
    cluster.sql('CREATE ROLE "%s" LOGIN' % role)
    cfg = {"pool_mode": "transaction", "server_connect_timeout": 2, "query_wait_timeout": 20}
    cfg.update(settings)
    return shoal(databases={"db": {"dbname": "postgres", "host": cluster.host,
                                   "port": cluster.port, "pool_size": 6}},
                 settings=cfg, pg_cluster=cluster)


def test_parallel_failed_logins_are_one_round_of_backoff(shoal, pg_private, role):
    cluster = pg_private()
    s = _pool(shoal, cluster, role, server_login_retry=15)
    clients = [s.connect("db", role) for _ in range(6)]
    s.send_signal(signal.SIGUSR1)  # paused: the six queries below wait without a server
    wait_until(lambda: "pausing" in s.log(), timeout=5, what="pause")
    done, errors = [], []

    def query(c):
        try:
            c.execute("SELECT 1")
            done.append(time.monotonic())
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=query, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    time.sleep(0.3)
    cluster.stop("fast")
    s.send_signal(signal.SIGUSR2)  # six logins start together, and fail together
    time.sleep(1.0)
    cluster.start()
    up = time.monotonic()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(done) == 6
    # Rounds wait 0.1, 0.2, 0.4, 0.8 s (with jitter): the pool finds the server again within
    # about one round of it coming back. Counting each parallel login doubled the wait six
    # times per round: 1.6-3.2 s after the first round, then the 15 s cap.
    assert max(done) - up < 2.5, "served %.1f s after PostgreSQL was back" % (max(done) - up)
    rounds = _failed_rounds(s.log())
    assert len(rounds) >= 2, rounds
    assert len(rounds[0]) == 6, rounds  # the six logins failed together...
    assert rounds[1][0] - rounds[0][0] < 0.3, rounds  # ...and the next round came ~0.1 s later


def _failed_rounds(log):
    """Times of failed server logins, grouped into rounds (failures within 50 ms)."""
    times = []
    for m in re.finditer(r"^\S+ (\d\d):(\d\d):(\d\d\.\d+) UTC .* closing because: connect failed", log,
                         re.M):
        times.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    rounds = []
    for t in times:
        if rounds and t - rounds[-1][-1] < 0.05:
            rounds[-1].append(t)
        else:
            rounds.append([t])
    return rounds


def test_new_requests_fail_fast_while_logins_fail_and_recover(shoal, pg_private, role):
    cluster = pg_private()
    s = _pool(shoal, cluster, role, server_login_retry=2)
    s.connect("db", role).execute("SELECT 1")  # the pool's welcome is known
    cluster.stop("fast")
    waiter = s.connect("db", role)
    result = {}

    def wait_query():
        try:
            result["row"] = waiter.execute("SELECT 42").fetchone()
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=wait_query, daemon=True)
    t.start()  # waits from before the failures: it keeps waiting
    wait_until(lambda: "closing because: connect failed" in s.log(), timeout=5,
               what="a failed server login")
    late = Wire(s.host, s.port)
    assert late.startup(role, "db") is None  # the welcome is cached: login needs no server
    t0 = time.monotonic()
    rows, err, status = late.query("SELECT 1")
    assert time.monotonic() - t0 < 1, "a new request waited while logins failed"
    assert status is None and err["S"] == "FATAL" and err["C"] == "08P01", err
    assert err["M"] == ("server login has been failing, try again later (server_login_retry): "
                        "connect failed: Connection refused"), err
    late.close()
    with pytest.raises(psycopg.OperationalError) as e:  # what a driver shows
        s.connect("db", role).execute("SELECT 1")
    assert "server login has been failing" in str(e.value), str(e.value)
    assert t.is_alive() and not result, result
    cluster.start()
    up = time.monotonic()

    def served():
        try:
            with psycopg.connect(s.dsn("db", role, connect_timeout=3)) as c:
                return c.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    wait_until(served, timeout=10, interval=0.1, what="a new client served")
    assert time.monotonic() - up < 2 + 1.5, "recovery took longer than server_login_retry"
    t.join(10)
    assert result.get("row") == (42,), result
    assert s.alive()


def test_commits_resume_quickly_after_a_fast_restart(shoal, pg_private, role):
    """Eight clients commit in a loop (reconnecting after an error) while PostgreSQL restarts
    with -m fast; the longest gap between commits is measured. Bounded: 8 s of traffic."""
    cluster = pg_private()
    cluster.sql("CREATE TABLE t (v int)")
    s = _pool(shoal, cluster, role, server_login_retry=15)
    cluster.sql('GRANT INSERT ON t TO "%s"' % role)
    commits, lock, stop = [], threading.Lock(), threading.Event()

    def loop():
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(s.dsn("db", role, connect_timeout=3), autocommit=True)
                conn.execute("INSERT INTO t VALUES (1)")
                with lock:
                    commits.append(time.monotonic())
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    t_restart = time.monotonic()
    cluster.stop("fast")
    time.sleep(0.3)  # down long enough for the reconnecting clients' logins to fail
    cluster.start()
    t_up = time.monotonic()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(10)
    around = [x for x in commits if x > t_restart - 1]
    gaps = [b - a for a, b in zip(around, around[1:])]
    assert around and around[-1] > t_up, "no commit after the restart"
    print("restart took %.2f s; longest gap between commits %.2f s" % (t_up - t_restart,
                                                                       max(gaps)))
    assert max(gaps) < (t_up - t_restart) + 2.0, "%.2f s without commits" % max(gaps)
    failed = len(re.findall(r"closing because: connect failed", s.log()))
    assert failed < 40, failed


def test_reload_to_a_working_target_ends_the_failing_state(shoal, pg, role):
    from helpers import free_port
    dead = free_port()  # nothing listens there
    s = shoal(databases={"db": {"dbname": "postgres", "port": dead}},
              settings={"server_login_retry": 15, "query_wait_timeout": 1})
    with pytest.raises(psycopg.OperationalError):
        s.connect("db", role).execute("SELECT 1")  # waits, then query_wait_timeout
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", role).execute("SELECT 1")  # refused at once
    assert "server login has been failing" in str(e.value)
    s.databases["db"]["port"] = pg.port
    s.write_config(s.port)
    s.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload" in s.log().lower(), timeout=5, what="the reload")
    time.sleep(0.3)
    # The backoff and the failing state belonged to the old target.
    assert s.connect("db", role).execute("SELECT 1").fetchone() == (1,)
