"""Host names are resolved by the resolver thread, never by a worker: a database given by name
works, and a name that does not resolve gives waiting clients a clear error, not a hang."""
import time

import psycopg
import pytest

from admin_helpers import admin
from helpers import db_entry


def test_database_by_host_name(shoal, pg, role_db):
    """New server connections keep finding the name while the cache is refreshed (the TTL is
    floored at 1 s; server_lifetime makes every idle server close so each query reconnects)."""
    role, db = role_db
    s = shoal(databases={"app": db_entry(pg, db, user=role, host="localhost")},
              settings={"dns_max_ttl": "0", "server_lifetime": "0.2"})
    c = s.connect("app", role)
    pids = set()
    deadline = time.monotonic() + 2.5  # across two refreshes of the cached name
    while time.monotonic() < deadline:
        pids.add(c.execute("SELECT pg_backend_pid()").fetchone()[0])
        time.sleep(0.3)
    assert len(pids) >= 3  # several server connections, each from the cached address
    assert "resolv" not in s.log()
    cur = admin(s).execute("SHOW DNS_HOSTS")
    rows = {r[0]: r for r in cur.fetchall()}
    assert "127.0.0.1" in rows["localhost"][2] and 0 <= rows["localhost"][1] <= 1


def test_unresolvable_host_fails_waiters_cleanly(shoal, pg, role):
    s = shoal(databases={"app": db_entry(pg, "postgres", user=role,
                                         host="no-such-host.invalid")},
              settings={"query_wait_timeout": 2})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("app", role).execute("SELECT 1")
    msg = str(e.value)
    assert "query_wait_timeout (server login failing: cannot resolve no-such-host.invalid" in msg
    assert "dns: cannot resolve no-such-host.invalid" in s.log()
    assert s.alive()
