"""Many hosts (issue 18): read_write_split on one alias, against a real primary and two
streaming replicas (`pg_basebackup -R`): autocommit reads and READ ONLY transactions go to the
standbys, the rest to the primary; hints, SET shoal.route, read-your-writes; and the one retry
of a read whose server died before answering. Each test starts its own Shoal."""
import threading
import time

import psycopg
import pytest

from admin_helpers import admin, show
from helpers import wait_until
from txnwire import bind, connect, execute, parse, read_until_ready, sync
from wire import query_message

USER = "trust_user"


def _entry(rs, **kw):
    nodes = [rs.primary] + rs.replicas
    e = {"host": ",".join(n.host for n in nodes),
         "port": ",".join(str(n.port) for n in nodes),
         "dbname": "postgres", "read_write_split": 1}
    e.update(kw)
    return e


def _start(shoal, rs, entry, **settings):
    cfg = {"pool_mode": "transaction", "server_connect_timeout": 3, "query_wait_timeout": 20,
           "server_login_retry": 1}
    cfg.update(settings)
    return shoal(databases={"app": entry}, settings=cfg, pg_cluster=rs.primary)


def _table(rs, name, cols="id int"):
    rs.primary.sql("CREATE TABLE IF NOT EXISTS %s (%s)" % (name, cols))
    rs.primary.sql("GRANT ALL ON %s TO %s" % (name, USER))
    rs.wait_replayed()


def _all_checked(s):
    with admin(s) as a:
        _, rows = show(a, "HOSTS")
    return all(r["checked"] is not None for r in rows if r["database"] == "app")


def _where(c, sql="SELECT pg_is_in_recovery(), inet_server_port()"):
    return c.execute(sql).fetchone()


def test_split_sends_reads_to_standbys_and_the_rest_to_the_primary(shoal, pg_replicas):
    rs = pg_replicas
    r_ports = {r.port for r in rs.replicas}
    s = _start(shoal, rs, _entry(rs, pool_size=6))
    _table(rs, "split_t")
    rs.primary.sql("CREATE SEQUENCE IF NOT EXISTS split_s")
    rs.primary.sql("GRANT ALL ON SEQUENCE split_s TO %s" % USER)
    c = s.connect("app", USER)
    for _ in range(20):
        rec, port = _where(c)
        assert rec and port in r_ports  # a plain SELECT: a standby
    assert c.execute("SHOW transaction_read_only").fetchone()[0] == "on"
    # Writes, doubts and locks: the primary.
    assert not c.execute("INSERT INTO split_t VALUES (1) RETURNING pg_is_in_recovery()"
                         ).fetchone()[0]
    assert not c.execute("SELECT nextval('split_s') > 0, pg_is_in_recovery()").fetchone()[1]
    assert not _where(c, "SELECT pg_is_in_recovery(), 1 FROM split_t FOR UPDATE")[0]
    assert not _where(c, "SELECT pg_is_in_recovery(), 1; SELECT pg_is_in_recovery(), 2")[0]
    # A transaction block: the primary, unless it says READ ONLY.
    with s.connect("app", USER, autocommit=False) as t:
        assert not _where(t)[0]
        t.commit()
    c.execute("BEGIN READ ONLY")
    assert _where(c)[0] and _where(c)[0]
    c.execute("COMMIT")
    c.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    assert _where(c)[0]
    c.execute("COMMIT")
    # The hint at the head of a statement, and SET shoal.route (answered by Shoal).
    assert not _where(c, "/* shoal:route=primary */ SELECT pg_is_in_recovery(), 1")[0]
    c.execute("SET shoal.route = primary")
    assert not _where(c)[0] and not _where(c)[0]
    c.execute("SET shoal.route TO 'standby'")
    c.execute("BEGIN")  # a transaction block too
    assert _where(c)[0]
    c.execute("COMMIT")
    c.execute("SET shoal.route = auto")
    assert _where(c)[0]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        c.execute("SET shoal.route = sideways")
    assert _where(c)[0]  # the connection goes on
    # No server ever saw shoal.route: PostgreSQL would have kept it as a placeholder.
    for n in [rs.primary] + rs.replicas:
        assert n.sql("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%shoal.route%'"
                     " AND pid <> pg_backend_pid()")[0][0] == 0
    # The extended protocol: a Parse of a read sent with its one Execute and Sync (a driver
    # with parameters) goes to a standby, and so does a later Bind of that statement (its text
    # from Shoal's prepared statements); a write, or two Executes before a Sync, the primary.
    assert c.execute("SELECT pg_is_in_recovery() AND %s", (True,)).fetchone()[0]
    assert not c.execute("INSERT INTO split_t VALUES (%s) RETURNING pg_is_in_recovery()",
                         (2,)).fetchone()[0]
    w = connect(s, USER, "app")
    run = bind("") + execute() + sync()
    for msgs, want in [(parse("", "SELECT pg_is_in_recovery()") + run, "t"),
                       (parse("s1", "SELECT pg_is_in_recovery()") + bind("s1") + execute() +
                        sync(), "t"),
                       (bind("s1") + execute() + sync(), "t"),
                       (parse("s2", "SELECT pg_is_in_recovery() FROM split_t FOR SHARE") +
                        bind("s2") + execute() + sync(), "f"),
                       (bind("s2") + execute() + sync(), "f"),
                       (parse("", "SELECT pg_is_in_recovery()") + bind("") + execute() +
                        execute() + sync(), "f")]:
        w.send(msgs)
        rows = [v for t, v in read_until_ready(w) if t in ("D", "E")]
        assert rows and rows[0] == (want,), (msgs, rows)


def test_split_read_after_a_pipelined_write_waits_for_its_own_server(shoal, pg_replicas):
    """A read and a write sent in one go: the write must not follow the read to a standby."""
    rs = pg_replicas
    s = _start(shoal, rs, _entry(rs, pool_size=4))
    _table(rs, "split_p")
    c = s.connect("app", USER)
    with c.pipeline():  # psycopg sends both before reading: the extended protocol's Syncs
        c.execute("SELECT pg_is_in_recovery()")
        c.execute("INSERT INTO split_p VALUES (1)")
    # The simple protocol: two Queries back to back in one send.
    w = connect(s, USER, "app")
    w.send(query_message("SELECT pg_is_in_recovery()") +
           query_message("INSERT INTO split_p VALUES (2) RETURNING pg_is_in_recovery()"))
    rows = [v for t, v in read_until_ready(w, 2) if t in ("D", "E")]
    assert rows == [("t",), ("f",)], rows  # the read on a standby, the write on the primary


@pytest.mark.parametrize("ryw", ["on", "off"])
def test_split_reads_follow_the_clients_writes(shoal, pg_replicas, ryw):
    """100 write-then-read loops through one split alias, replay paused on both replicas."""
    rs = pg_replicas
    s = _start(shoal, rs, _entry(rs, pool_size=6), host_check_interval="200ms",
               host_check_timeout=2, read_your_writes=ryw, read_your_writes_window=5)
    _table(rs, "split_ryw", "mode text, id int")
    c = s.connect("app", USER)  # (a SET synchronous_commit would pin it to one server)
    # every host checked once: read_your_writes compares their positions
    wait_until(lambda: _all_checked(s), timeout=10, what="every host checked")
    for r in rs.replicas:
        r.sql("SELECT pg_wal_replay_pause()")
    stale = 0
    try:
        for i in range(100):
            c.execute("INSERT INTO split_ryw VALUES ('%s', %d)" % (ryw, i))
            n = c.execute("SELECT count(*) FROM split_ryw WHERE mode = '%s' AND id = %d"
                          % (ryw, i)).fetchone()[0]
            stale += n == 0
    finally:
        for r in rs.replicas:
            r.sql("SELECT pg_wal_replay_resume()")
    print("read_write_split, read_your_writes=%s: %d stale reads of 100" % (ryw, stale))
    if ryw == "on":
        assert stale == 0
    else:
        assert stale == 100  # every read went to a paused standby


def _kill_when_running(nodes, marker, timeout=10):
    """pg_terminate_backend of the backend running the query containing marker, on whichever
    node runs it: that node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            rows = n.sql("SELECT pid FROM pg_stat_activity WHERE query LIKE %s "
                         "AND state = 'active' AND pid <> pg_backend_pid()",
                         ("%" + marker + "%",))
            if rows:
                n.sql("SELECT pg_terminate_backend(%s)", (rows[0][0],))
                return n
        time.sleep(0.02)
    raise TimeoutError("no backend ran " + marker)


def _run(c, sql, out):
    try:
        out.append(c.execute(sql).fetchall())
    except psycopg.Error as e:
        out.append(e)


def test_split_retries_a_read_whose_server_died_before_answering(shoal, pg_replicas):
    rs = pg_replicas
    s = _start(shoal, rs, _entry(rs, pool_size=6))
    _table(rs, "split_w")
    c = s.connect("app", USER)
    assert _where(c)[0]
    out = []
    t = threading.Thread(target=_run, args=(c, "SELECT 'retry-me', pg_sleep(2), "
                                               "pg_is_in_recovery(), inet_server_port()", out))
    t.start()
    killed = _kill_when_running(rs.replicas, "retry-me")
    t.join(20)
    assert len(out) == 1 and not isinstance(out[0], Exception), out
    _, _, rec, port = out[0][0]
    assert port != killed.port  # sent again, to another host
    assert "sent again once, to another host" in s.log()
    assert _where(c)[0]  # and the client goes on
    # A write whose server died is not sent again: the client gets the error as before.
    out = []
    # (2 s: on a loaded machine a 0.5 s statement was over, committed, before the kill came;
    # RETURNING: fetchall() of a plain INSERT raises too, which hid that)
    t = threading.Thread(target=_run, args=(c, "INSERT INTO split_w SELECT 1 FROM "
                                               "(SELECT 'no-retry', pg_sleep(2)) x "
                                               "RETURNING 1", out))
    t.start()
    _kill_when_running([rs.primary], "no-retry")
    t.join(20)
    assert len(out) == 1 and isinstance(out[0], psycopg.OperationalError), out
    assert rs.primary.sql("SELECT count(*) FROM split_w")[0][0] == 0
