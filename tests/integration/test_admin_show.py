"""Admin console SHOW commands: PgBouncer 1.25's columns and types, exporter queries, values."""
import subprocess
import threading

import psycopg
import pytest

from admin_helpers import OID_OF, admin, pool_row, show
from conftest import SHOAL_BIN
from helpers import wait_until
from pgbouncer_admin_reference import (EXPORTER_EXPECTATIONS, LISTS_ROWS, SHOW_COLUMNS,
                                       STATE_ROWS, TOTALS_ROWS)

SHOWN = ["STATS", "STATS_TOTALS", "STATS_AVERAGES", "TOTALS", "POOLS", "CLIENTS", "SERVERS",
         "SOCKETS", "ACTIVE_SOCKETS", "DATABASES", "USERS", "PEERS", "PEER_POOLS", "LISTS",
         "CONFIG", "MEM", "STATE", "VERSION", "DNS_HOSTS", "DNS_ZONES", "FDS"]


@pytest.fixture
def console(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "stats_period": 1})
    c = s.connect("db", role)
    c.execute("SELECT 1")
    return s, admin(s)


# Shoal's own columns, after all of PgBouncer's (docs/admin.md).
SHOAL_EXTRA_COLUMNS = {"CLIENTS": [("pinned", "text")]}


@pytest.mark.parametrize("what", SHOWN)
def test_show_columns_and_types_match_pgbouncer_1_25(console, what):
    s, a = console
    desc, rows = show(a, what.lower() if what in ("POOLS", "LISTS") else what)
    got = [(d.name, d.type_code) for d in desc]
    want = [(n, OID_OF[t]) for n, t in SHOW_COLUMNS[what] + SHOAL_EXTRA_COLUMNS.get(what, [])]
    assert got == want
    if what == "LISTS":
        assert [r["list"] for r in rows] == LISTS_ROWS
    if what == "STATE":
        assert [r["key"] for r in rows] == STATE_ROWS
        assert [r["value"] for r in rows] == ["yes", "no", "no"]
    if what == "TOTALS":
        assert [r["name"] for r in rows] == TOTALS_ROWS
    if what == "CONFIG":
        keys = [r["key"] for r in rows]
        assert keys == sorted(keys) and "max_client_conn" in keys
        assert {r["changeable"] for r in rows} <= {"yes", "no"}


def test_show_help_is_a_notice_and_commands_are_case_insensitive(console):
    s, a = console
    notices = []
    a.add_notice_handler(lambda d: notices.append((d.message_primary, d.message_detail)))
    a.execute("show help;")
    assert notices and notices[0][0] == "Console usage"
    assert "SHOW HELP|CONFIG" in notices[0][1]
    # PgBouncer's lines (pgbouncer_admin_reference.SHOW_HELP_NOTICE) and Shoal's own commands
    lines = notices[0][1].split("\n\t")
    assert {"SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS", "WAIT_CLOSE [<db>]",
            "HANDOFF"} <= set(lines)
    assert a.execute("sHoW vErSiOn").fetchone()[0].startswith("Shoal")


def test_show_version_is_the_first_line_of_version_flag(console):
    s, a = console
    flag = subprocess.run([SHOAL_BIN, "--version"], capture_output=True, text=True, timeout=20)
    assert a.execute("SHOW VERSION").fetchone()[0] == flag.stdout.splitlines()[0]


def test_show_stats_counts_client_logins(console, role):
    """total_client_login_count (PgBouncer 1.26): logins that completed, per database."""
    s, a = console  # one client of db has logged in
    for _ in range(2):
        s.connect("db", role).execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn("db", role, options="-c no_such.setting=1 -c bad_param=1"))
    stats = {r["database"]: r for r in show(a, "STATS")[1]}["db"]
    assert stats["total_client_login_count"] == 3
    totals = {r["database"]: r for r in show(a, "STATS_TOTALS")[1]}["db"]
    assert totals["client_login_count"] == 3
    rows = {r["name"]: r["value"] for r in show(a, "TOTALS")[1]}
    assert rows["total_client_login_count"] >= 3


def test_unknown_command_and_stats_user_get_pgbouncer_errors(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"stats_users": role, "admin_users": "nobody_here"})
    st = s.connect("pgbouncer", role)
    with pytest.raises(psycopg.Error) as e:
        st.execute("FROBNICATE")
    assert e.value.sqlstate == "08P01"
    assert "invalid command 'FROBNICATE', use SHOW HELP;" in str(e.value)
    with pytest.raises(psycopg.Error) as e:
        st.execute("PAUSE")
    assert e.value.sqlstate == "08P01" and "admin access needed" in str(e.value)
    assert show(st, "POOLS")[1][0]["database"] == "pgbouncer"
    notices = []
    st.add_notice_handler(lambda d: notices.append(d.message_primary))
    st.execute("SET client_encoding = 'UTF8'")  # what drivers send: answered, ignored
    assert notices == ["SET ignored"]
    with pytest.raises(psycopg.Error) as e:
        st.execute("SET default_pool_size = 3")
    assert "admin access needed" in str(e.value)
    assert show(st, "client_encoding")[1] == [{"client_encoding": "UTF-8"}]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn("pgbouncer", "someone_else"))


def test_extended_protocol_gets_a_clear_error(console):
    s, a = console
    with pytest.raises(psycopg.Error) as e:
        a.execute("SHOW POOLS WHERE %s", (1,))
    assert "extended query protocol not supported by admin console" in str(e.value)


def test_exporter_queries_parse_as_pgbouncer_exporter_expects(console):
    s, a = console
    exp = EXPORTER_EXPECTATIONS
    a.execute("SHOW STATS")
    desc, rows = show(a, "VERSION;")
    assert [d.name for d in desc] == ["version"] and len(rows) == 1
    desc, rows = show(a, "LISTS;")
    assert len(desc) == 2
    lists = {r["list"]: float(r["items"]) for r in rows}
    assert set(exp["lists_rows_used"]) <= set(lists)
    desc, rows = show(a, "CONFIG;")
    assert len(desc) in (3, 4)
    cfg = {r["key"]: r["value"] for r in rows}
    for key in exp["config_keys_used"]:
        float(cfg[key])
    for ns, cols in exp["namespaces"].items():
        desc, rows = show(a, "%s;" % ns)
        names = [d.name for d in desc]
        for col, (usage, _metric, _factor) in cols.items():
            if col in ("requests", "reserve_pool", "server_assignment_count") and col not in names:
                continue  # legacy or newer-exporter columns that PgBouncer 1.25 lacks too
            assert col in names, (ns, col)
            for r in rows:
                if usage != "LABEL" and r[col] is not None:
                    float(r[col])
    desc, rows = show(a, "CLIENTS;")
    assert any(r["database"] == "db" for r in rows)


def test_pool_numbers_move_under_load(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    a = admin(s)
    holder = s.connect("db", role)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    waiter = s.connect("db", role)
    t = threading.Thread(target=lambda: waiter.execute("SELECT 2"))
    t.start()
    wait_until(lambda: pool_row(a, "db", role)["cl_waiting"] == 1, timeout=5,
               what="a waiting client in SHOW POOLS")
    wait_until(lambda: pool_row(a, "db", role)["maxwait_us"] > 0
               or pool_row(a, "db", role)["maxwait"] > 0, timeout=5, what="maxwait moving")
    r = pool_row(a, "db", role)
    assert r["cl_active"] == 1 and r["sv_active"] == 1 and r["sv_idle"] == 0
    states = {row["id"]: row["state"] for row in show(a, "CLIENTS")[1] if row["user"] == role}
    assert sorted(states.values()) == ["active", "waiting"]
    holder.execute("COMMIT")
    t.join(5)
    wait_until(lambda: pool_row(a, "db", role)["sv_idle"] == 1, timeout=5, what="server idle")
    r = pool_row(a, "db", role)
    assert r["cl_waiting"] == 0 and r["sv_active"] == 0 and r["cl_active"] == 2
    before = {x["database"]: x for x in show(a, "STATS_TOTALS")[1]}["db"]
    for _ in range(5):
        holder.execute("SELECT 1")
    after = {x["database"]: x for x in show(a, "STATS_TOTALS")[1]}["db"]
    assert after["xact_count"] - before["xact_count"] == 5
    assert after["query_count"] - before["query_count"] == 5
    assert after["bytes_received"] > before["bytes_received"]
    assert after["server_assignment_count"] > before["server_assignment_count"]
    # The client may read its ReadyForQuery before the server's worker has filed the server as
    # idle (the console answers from another worker), so the state is waited for.
    wait_until(lambda: [x["state"] for x in show(a, "SERVERS")[1]] == ["idle"], timeout=5,
               what="the one server idle in SHOW SERVERS")
    servers = show(a, "SERVERS")[1]
    assert len(servers) == 1 and servers[0]["remote_pid"] > 0
    assert servers[0]["local_addr"] == "127.0.0.1" and servers[0]["local_port"] > 0
    assert servers[0]["port"] == s.pg.port


def _wait_for_an_average(s, a, role):
    """Transactions on db until SHOW STATS_AVERAGES has a positive xact_count for it."""
    c = s.connect("db", role)

    def avg():
        c.execute("SELECT 1")
        rows = {x["database"]: x for x in show(a, "STATS_AVERAGES")[1]}
        return rows.get("db", {}).get("xact_count", 0) > 0
    wait_until(avg, timeout=5, what="a positive xact_count average")


def test_stats_averages_follow_stats_period(console, role):
    s, a = console
    _wait_for_an_average(s, a, role)
    assert "xacts/s" in s.log()


def test_log_stats_0_keeps_the_averages_and_writes_no_stats_line(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "transaction", "stats_period": 1, "log_stats": 0})
    _wait_for_an_average(s, admin(s), role)
    assert "xacts/s" not in s.log()


def test_show_clients_reports_pinning(console, role):
    """A client that LISTENs keeps its server in transaction mode; SHOW CLIENTS says why."""
    s, a = console
    c = s.connect("db", role)
    c.execute("LISTEN shoal_test_channel")
    other = s.connect("db", role)
    other.execute("SELECT 1")
    rows = [r for r in show(a, "CLIENTS")[1] if r["user"] == role]
    assert sorted(r["pinned"] for r in rows) == ["", "", "LISTEN"]  # the fixture's client too
