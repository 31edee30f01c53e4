"""What the log says: connections, disconnections with a reason, and the periodic stats line."""
import re

import psycopg
import pytest

from helpers import wait_until


def test_stats_line_every_stats_period_counts_transactions(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "stats_period": 1})
    c = s.connect("db", role)
    for _ in range(20):
        c.execute("SELECT 1")
    pattern = re.compile(r"stats: %s@db (\d+) xacts/s, (\d+) queries/s" % re.escape(role))
    # Twenty transactions in a one-second period give a positive rate in some line.
    wait_until(lambda: any(int(m.group(1)) > 0 and int(m.group(2)) > 0
                           for m in pattern.finditer(s.log())),
               timeout=5, what="a stats line with a positive transaction rate")


def test_login_and_disconnect_logged_with_reason(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "client_idle_timeout": 1})
    c = s.connect("db", role)
    c.execute("SELECT 1")
    wait_until(lambda: re.search(r"%s@db login ok \(pool %s@db, transaction mode, worker \d+\)"
                                 % (re.escape(role), re.escape(role)), s.log()),
               timeout=5, what="the login line")
    wait_until(lambda: re.search(r"%s@db closing because: client_idle_timeout" % re.escape(role),
                                 s.log()),
               timeout=5, what="the disconnect line with its reason")


def test_unknown_database_logged_with_pgbouncer_wording(shoal, pg, role):
    # PgBouncer's "closing because: <reason>", which operators' alerts and PgBouncer's own
    # test suite look for.
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    with pytest.raises(psycopg.OperationalError, match="no such database: nosuchdb"):
        psycopg.connect(s.dsn("nosuchdb", role))
    wait_until(lambda: "closing because: no such database: nosuchdb" in s.log(),
               timeout=5, what="the disconnect line with PgBouncer's wording")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("how", ["SIGHUP", "RELOAD"])
def test_logfile_is_reopened_on_reload_for_logrotate(shoal, pg, role, how, tmp_path):
    """logrotate without copytruncate moves the file, then asks for a reload: the lines that
    follow go to a new file at the configured path (issue 16)."""
    import os
    import signal
    from admin_helpers import admin
    path = str(tmp_path / "shoal.log")
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"logfile": path})
    wait_until(lambda: "started" in _read(path), timeout=5, what="the first lines")
    os.rename(path, path + ".1")
    if how == "SIGHUP":
        s.send_signal(signal.SIGHUP)
    else:
        admin(s).execute("RELOAD")
    wait_until(lambda: "configuration reloaded" in _read(path), timeout=10,
               what="a new logfile at the path")
    with psycopg.connect(s.dsn("db", role, application_name="after_rotate")) as c:
        c.execute("SELECT 1")
    line = "%s@db login ok" % role
    wait_until(lambda: line in _read(path), timeout=5, what="the login in the new file")
    assert line not in _read(path + ".1")
