"""Connection limits: max_client_conn, max_db_connections, max_user_connections, reserve pool."""
import threading
import time

import psycopg
import pytest

from helpers import BackendMonitor, run_threads
from wire import Wire


def test_max_client_conn_refuses_extra_client_with_53300(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "max_client_conn": 3})
    conns = [s.connect("db", role) for _ in range(3)]
    for c in conns:
        assert c.execute("SELECT 1").fetchone()[0] == 1
    w = Wire(s.host, s.port)
    err = w.startup(role, "db")
    w.close()
    assert err is not None, "4th client was admitted"
    assert err.get("C") == "53300", err
    assert err.get("M", "").startswith("no more connections allowed (max_client_conn)"), err
    with pytest.raises(psycopg.OperationalError, match=r"max_client_conn"):
        psycopg.connect(s.dsn("db", role))
    # A slot frees up when a client leaves.
    conns[0].close()
    time.sleep(0.2)
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def _hold(dsn, seconds):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("BEGIN")
        c.execute("SELECT pg_sleep(%s)", (seconds,))
        c.execute("COMMIT")


def test_max_db_connections_limits_servers_across_user_pools(shoal, pg, role):
    other = pg.create_role("maxdb_other")
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 5,
                                "max_db_connections": 2}},
              settings={"pool_mode": "transaction", "server_idle_timeout": 0.5,
                        "query_wait_timeout": 20})
    dsns = [s.dsn("db", role)] * 3 + [s.dsn("db", other)] * 3
    with BackendMonitor(pg, [role, other]) as mon:
        _, errors = run_threads(_hold, [(d, 0.3) for d in dsns], timeout=40)
    assert errors == [None] * len(dsns), errors
    assert mon.error is None
    assert mon.max == 2, "backends peaked at %s (limit 2)" % mon.max


def test_max_user_connections_limits_servers_across_databases(shoal, pg, role):
    s = shoal(databases={"db1": {"dbname": "postgres", "pool_size": 5},
                         "db2": {"dbname": "template1", "pool_size": 5}},
              users={role: {"max_user_connections": 2}},
              settings={"pool_mode": "transaction", "server_idle_timeout": 0.5,
                        "query_wait_timeout": 20})
    dsns = [s.dsn("db1", role)] * 3 + [s.dsn("db2", role)] * 3
    with BackendMonitor(pg, role) as mon:
        _, errors = run_threads(_hold, [(d, 0.3) for d in dsns], timeout=40)
    assert errors == [None] * len(dsns), errors
    assert mon.error is None
    assert mon.max == 2, "backends peaked at %s (limit 2)" % mon.max


def test_user_pool_size_wins_over_database_pool_size(shoal, pg, role):
    # PgBouncer's order: [users] pool_size, then the database's, then default_pool_size.
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 3}},
              users={role: {"pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 20})
    dsns = [s.dsn("db", role)] * 3
    with BackendMonitor(pg, role) as mon:
        _, errors = run_threads(_hold, [(d, 0.3) for d in dsns], timeout=40)
    assert errors == [None] * len(dsns), errors
    assert mon.error is None
    assert mon.max == 1, "backends peaked at %s (user pool_size 1)" % mon.max


def test_pool_size_queues_extra_clients_fifo(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 20})
    holder = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    ran_at = {}
    waiters = [s.connect("db", role) for _ in range(4)]

    def wait_turn(i, c):
        # The server's clock says in which order the single backend ran the queries.
        ran_at[i] = c.execute("SELECT clock_timestamp()").fetchone()[0]

    threads = []
    for i, c in enumerate(waiters):
        t = threading.Thread(target=wait_turn, args=(i, c), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.15)  # make the arrival order unambiguous
    assert ran_at == {}
    holder.execute("COMMIT")
    for t in threads:
        t.join(20)
    assert sorted(ran_at, key=ran_at.get) == [0, 1, 2, 3], ran_at


# reserve_pool is PgBouncer's documented alias of reserve_pool_size in a database entry; "user":
# the [users] entry's reserve_pool_size wins over the database's 0.
@pytest.mark.parametrize("key", ["reserve_pool_size", "reserve_pool", "user"])
def test_reserve_pool_serves_waiting_client_after_reserve_pool_timeout(shoal, pg, role, key):
    db = {"dbname": "postgres", "pool_size": 1}
    db.update({"reserve_pool_size": 0} if key == "user" else {key: 1})
    s = shoal(databases={"db": db},
              users={role: {"reserve_pool_size": 1}} if key == "user" else None,
              settings={"pool_mode": "transaction", "reserve_pool_timeout": 0.5,
                        "query_wait_timeout": 10})
    holder = s.connect("db", role)
    b = s.connect("db", role)
    c = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    times = {}

    def run(name, conn):
        t0 = time.monotonic()
        conn.execute("SELECT pg_sleep(0.2)")
        times[name] = time.monotonic() - t0

    with BackendMonitor(pg, role) as mon:
        _, errors = run_threads(run, [("b", b), ("c", c)], timeout=15)
    assert errors == [None, None], errors
    first = min(times.values())
    assert 0.4 <= first < 3.0, times
    assert mon.max == 2, "backends peaked at %s (pool 1 + reserve 1)" % mon.max
    holder.execute("COMMIT")
    # PgBouncer's warning, one per reserve server: operators alert on it.
    assert s.log().count("taking connection from reserve_pool") == 1, s.log_tail()


def _open_idle_servers(s, db, user, n):
    """n servers of pool (db, user), left idle: n clients hold a transaction at once."""
    conns = [s.connect(db, user) for _ in range(n)]
    for c in conns:
        c.execute("BEGIN")
        c.execute("SELECT 1")
    for c in conns:
        c.execute("COMMIT")
    return conns


def _first_query_seconds(s, db, user):
    c = s.connect(db, user)
    t0 = time.monotonic()
    c.execute("SELECT 1")
    return time.monotonic() - t0


# PgBouncer closes an idle server of another pool to make room under max_db_connections /
# max_user_connections ("evicted"). Before, the new pool's client waited until
# query_wait_timeout while the idle servers stayed until server_idle_timeout.
def test_max_db_connections_closes_an_idle_server_of_another_pool(shoal, pg, role):
    other = pg.create_role("evict_db_other")
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 5,
                                "max_db_connections": 2}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 10})
    _open_idle_servers(s, "db", other, 2)
    assert pg.count_backends(usename=other) == 2
    with BackendMonitor(pg, [role, other]) as mon:
        elapsed = _first_query_seconds(s, "db", role)
    assert elapsed < 2, "waited %.1f s for a server" % elapsed
    assert mon.error is None and mon.max <= 2, "backends peaked at %s (limit 2)" % mon.max
    assert pg.count_backends(usename=other) == 1
    assert "evicted" in s.log()


def test_max_user_connections_closes_an_idle_server_of_another_database(shoal, pg, role):
    s = shoal(databases={"db1": {"dbname": "postgres", "pool_size": 5},
                         "db2": {"dbname": "template1", "pool_size": 5}},
              users={role: {"max_user_connections": 2}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 10})
    _open_idle_servers(s, "db1", role, 2)
    with BackendMonitor(pg, role) as mon:
        elapsed = _first_query_seconds(s, "db2", role)
    assert elapsed < 2, "waited %.1f s for a server" % elapsed
    assert mon.error is None and mon.max <= 2, "backends peaked at %s (limit 2)" % mon.max
    assert pg.count_backends(usename=role, datname="postgres") == 1
    assert pg.count_backends(usename=role, datname="template1") == 1


def test_eviction_under_load_keeps_the_limit_and_serves_every_pool(shoal, pg, role):
    """Clients of three users take turns on a database limited to 2 servers: every query is
    served, and the limit holds while idle servers move between pools."""
    users = [role, pg.create_role("evict_load_b"), pg.create_role("evict_load_c")]
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 3,
                                "max_db_connections": 2}},
              settings={"pool_mode": "transaction", "query_wait_timeout": 20})

    def work(user):
        with psycopg.connect(s.dsn("db", user), autocommit=True) as c:
            for _ in range(15):
                c.execute("SELECT pg_sleep(0.01)")

    with BackendMonitor(pg, users) as mon:
        _, errors = run_threads(work, [(u,) for u in users for _ in range(2)], timeout=60)
    assert errors == [None] * 6, errors
    assert mon.error is None and mon.max <= 2, "backends peaked at %s (limit 2)" % mon.max
