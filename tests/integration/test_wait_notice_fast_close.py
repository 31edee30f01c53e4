"""query_wait_notify (a NOTICE to a client that waits for a server, once per wait) and
server_fast_close (RECONNECT ends a session between transactions), as in PgBouncer."""
import threading

import psycopg
import pytest

from admin_helpers import admin
from helpers import wait_until

QUEUED = "No server connection available in postgres backend, client being queued"


def test_waiting_client_gets_one_notice_per_wait(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction", "query_wait_notify": 0.3})
    holder = s.connect("db", role)
    waiter = s.connect("db", role)
    notices = []
    waiter.add_notice_handler(lambda d: notices.append(d.message_primary))
    assert waiter.execute("SELECT 1").fetchone()[0] == 1
    assert notices == []  # no wait, no notice
    for n in (1, 2):  # the waiter queues behind the holder's open transaction
        holder.execute("BEGIN")
        holder.execute("SELECT 1")
        t = threading.Thread(target=lambda: waiter.execute("SELECT 1"))
        t.start()
        wait_until(lambda: len(notices) == n, 5, what="notice %d" % n)
        holder.execute("COMMIT")
        t.join(5)
        assert not t.is_alive()
    assert notices == [QUEUED, QUEUED]


@pytest.mark.parametrize("fast", [0, 1])
def test_server_fast_close_ends_session_on_reconnect(shoal, pg, role, fast):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "session", "server_fast_close": fast})
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    admin(s).execute("RECONNECT db")
    if not fast:
        assert c.execute("SELECT 2").fetchone()[0] == 2  # kept until the session ends
        return
    wait_until(lambda: "closing because: database configuration changed" in s.log(), 5,
               what="the session to be closed")
    with pytest.raises(psycopg.OperationalError):
        c.execute("SELECT 1")
