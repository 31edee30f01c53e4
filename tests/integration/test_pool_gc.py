"""Pools are freed (issue 16): autodb_idle_timeout frees pools nobody uses (databases reached
through "*", users that came and went); max_pools caps how many there are."""
import psycopg
import pytest

from admin_helpers import admin, show
from helpers import wait_until

NAMES = 40  # wildcard database names: bounded


def _pools(s):
    with admin(s) as a:
        _, rows = show(a, "POOLS")
    return {(r["database"], r["user"]) for r in rows}


def test_unused_wildcard_pools_are_freed_after_autodb_idle_timeout(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}, "*": {"dbname": "postgres"}},
              settings={"autodb_idle_timeout": 2, "server_idle_timeout": 1})
    keep = s.connect("db", role)  # a pool in use stays
    keep.execute("SELECT 1")
    for i in range(NAMES):
        with psycopg.connect(s.dsn("w%d" % i, role)) as c:
            c.execute("SELECT 1")
    assert sum(1 for d, _ in _pools(s) if d.startswith("w")) == NAMES
    wait_until(lambda: not any(d.startswith("w") for d, _ in _pools(s)), timeout=30,
               interval=0.5, what="the wildcard pools freed")
    assert ("db", role) in _pools(s)
    assert "autodb_idle_timeout: freed" in s.log()
    keep.execute("SELECT 1")
    # A freed name comes back as a new pool.
    with psycopg.connect(s.dsn("w0", role)) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_max_pools_refuses_a_new_pool_with_a_clear_error(shoal, pg, role):
    s = shoal(databases={"*": {"dbname": "postgres"}},
              settings={"max_pools": 2, "autodb_idle_timeout": 2, "server_idle_timeout": 1})
    held = [s.connect("m%d" % i, role) for i in range(2)]
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(s.dsn("m2", role))
    assert "too many pools (max_pools)" in str(e.value), str(e.value)
    held[0].execute("SELECT 1")  # an existing pool still serves
    assert s.log().count("max_pools (2) reached") == 1
    for c in held:
        c.close()

    def fits():
        try:
            with psycopg.connect(s.dsn("m2", role)) as c:
                return c.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False
    wait_until(fits, timeout=30, interval=0.5, what="room once unused pools are freed")
