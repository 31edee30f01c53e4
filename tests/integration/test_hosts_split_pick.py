"""Many hosts (issue 18): the operator's way out of a split brain. Two hosts claim primary (a
replica promoted while the primary runs), writes go to neither, until PRIMARY HOST picks one:
writes then go to it alone; the pick is cleared (and logged) when the other steps down. A
module of its own: it promotes a replica of its replica set."""
import os

import psycopg
import pytest

from admin_helpers import admin
from conftest import PG_BIN
from helpers import wait_until
from test_hosts_failover import USER, _host_rows, write_alias


def _try_write(s, tag):
    """One write through the read-write alias on a new connection: the port it landed on, or
    None when it was refused (no host may take writes)."""
    try:
        with s.connect("writes", USER) as c:
            c.execute("INSERT INTO pick_t VALUES (%s)", (tag,))
            return c.execute("SELECT inet_server_port()").fetchone()[0]
    except psycopg.Error:
        return None


def _tagged(node, tag):
    return node.sql("SELECT count(*) FROM pick_t WHERE tag = %s", (tag,))[0][0]


def test_primary_host_picks_one_primary_during_a_split_brain(shoal, pg_replicas):
    rs = pg_replicas
    r1, r2 = rs.replicas
    s = write_alias(shoal, rs, 2, query_wait_timeout=1, host_check_interval="200ms",
                    host_check_timeout=2)
    rs.primary.sql("CREATE TABLE pick_t (tag text)")
    rs.primary.sql("GRANT ALL ON pick_t TO %s" % USER)
    assert _try_write(s, "before") == rs.primary.port
    rs.wait_replayed()
    pick = "PRIMARY HOST writes 127.0.0.1:%d" % r1.port
    with admin(s) as a:  # nothing to pick while one host is primary
        with pytest.raises(psycopg.errors.ProtocolViolation, match="no split brain"):
            a.execute(pick)
    r1._run([os.path.join(PG_BIN, "pg_ctl"), "-D", r1.data, "-w", "promote"])
    wait_until(lambda: _host_rows(s, "writes")[r1.port]["split_brain"] == "yes", timeout=10,
               what="split brain seen")
    assert _try_write(s, "split") is None  # the guard: writes go to neither
    with admin(s) as a:
        with pytest.raises(psycopg.errors.ProtocolViolation, match="not one of the hosts"):
            a.execute("PRIMARY HOST writes 127.0.0.1:%d" % r2.port)
        with pytest.raises(psycopg.errors.ProtocolViolation, match="no such database"):
            a.execute("PRIMARY HOST nosuch 127.0.0.1:%d" % r1.port)
        with pytest.raises(psycopg.errors.ProtocolViolation, match="usage: PRIMARY HOST"):
            a.execute("PRIMARY HOST writes")
        a.execute(pick)
    rows = _host_rows(s, "writes")
    assert rows[r1.port]["state"] == "picked" and rows[rs.primary.port]["state"] == "split"
    # Writes now go to the pick, and only there, while both still claim primary.
    port = wait_until(lambda: _try_write(s, "picked"), timeout=10, what="a write on the pick")
    assert port == r1.port
    for _ in range(20):
        assert _try_write(s, "picked") == r1.port
    assert _tagged(rs.primary, "picked") == 0 and _tagged(rs.primary, "split") == 0
    assert _tagged(r1, "picked") == 21 and _tagged(r1, "split") == 0
    assert "PRIMARY HOST writes 127.0.0.1:%d" % r1.port in s.log()
    assert _host_rows(s, "writes")[rs.primary.port]["split_brain"] == "yes"
    # The other steps down (stopped): the split is over and the pick is cleared, one line.
    rs.primary.stop("fast")
    wait_until(lambda: "pick as primary (PRIMARY HOST) is cleared" in s.log(), timeout=10,
               what="the pick cleared")
    assert s.log().count("pick as primary (PRIMARY HOST) is cleared") == 1
    assert _host_rows(s, "writes")[r1.port]["state"] == "up"
    assert wait_until(lambda: _try_write(s, "after"), timeout=10, what="writes") == r1.port
