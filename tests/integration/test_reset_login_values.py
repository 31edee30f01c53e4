"""RESET goes back to the value the client logged in with (its startup packet), as on a direct
connection, in every pool mode: RESET name, SET name TO DEFAULT, RESET ALL, DISCARD ALL."""
import pytest

import wire
from wire import Wire

LOGIN = {"DateStyle": "Postgres, MDY", "TimeZone": "PST8PDT",
         "options": "-c statement_timeout=1234"}
SHOWN = ("DateStyle", "TimeZone", "statement_timeout")

SCRIPTS = {
    "reset": ["set datestyle = iso", "set timezone = 'UTC'", "set statement_timeout = 4321",
              "reset datestyle", "reset timezone", "reset statement_timeout"],
    "to-default": ["set datestyle = iso", "set datestyle to default",
                   "set time zone 'UTC'", "set time zone default",
                   "set statement_timeout = 4321", "set session statement_timeout = default"],
    "reset-all": ["set datestyle = iso", "set timezone = 'UTC'", "set statement_timeout = 4321",
                  "reset all"],
    "discard-all": ["set datestyle = iso", "set timezone = 'UTC'",
                    "set statement_timeout = 4321", "discard all"],
    "block-commit": ["set datestyle = iso", "begin", "reset datestyle", "show datestyle",
                     "commit"],
    "block-rollback": ["set datestyle = iso", "begin", "reset datestyle", "show datestyle",
                       "rollback"],
    "failed": ["set datestyle = iso", "reset datestyle; select 1/0"],
    # several statements in one Query (psql -c): those after the RESET see the login value
    "one-query": ["set datestyle=iso; reset datestyle; show datestyle",
                  "set timezone = 'UTC'; select 1; set time zone default; show timezone",
                  "set statement_timeout = 4321; reset all; show statement_timeout;"
                  "show datestyle; show timezone",
                  "set datestyle = iso; set datestyle to default -- back\n",
                  "reset foo.bar; reset datestyle ; select 2",
                  "set datestyle = iso; reset datestyle; show datestyle; discard all"],
    "one-query-block": ["set datestyle = iso",
                        "begin; reset datestyle; show datestyle; rollback; show datestyle",
                        "begin; reset all; commit; show datestyle",
                        "set datestyle = iso; reset datestyle; select 1/0",
                        "show datestyle"],
}


def run(w, sql):
    """One simple Query: rows and command tags, SQLSTATE of an error, the status, and every
    ParameterStatus."""
    w.send(wire.query_message(sql))
    rows, code, reported = [], None, []
    while True:
        mtype, body = w.read_msg()
        if mtype in (b"D", b"C"):
            rows.append(body)
        elif mtype == b"E":
            code = wire.parse_fields(body).get("C")
        elif mtype == b"S":
            reported.append(tuple(x.decode() for x in body.split(b"\0")[:2]))
        elif mtype == b"Z":
            return rows, code, body, reported


def session(host, port, db, role):
    w = Wire(host, port)
    assert w.startup(role, db, **LOGIN) is None
    return w


def transcript(w, script):
    """Per statement: rows, error, status, and the value of each parameter the client was told
    of last. (Through Shoal a RESET may first report the server's own default and then the
    login value; what the client ends up knowing is what counts.)"""
    out = []
    for sql in script + ["show " + n for n in SHOWN]:
        rows, code, status, reported = run(w, sql)
        out.append((sql, rows, code, status, dict(reported)))
    return out


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("mode", ["session", "transaction", "statement"])
def test_reset_returns_to_the_login_value(shoal, pg, role, mode, script):
    steps = SCRIPTS[script]
    if mode == "statement" and "begin" in steps:
        pytest.skip("no transaction blocks in statement mode")
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": mode})
    direct = session(pg.host, pg.port, "postgres", role)
    want = transcript(direct, steps)
    direct.close()
    for _ in range(2):  # the second time on a server the first client used
        w = session(s.host, s.port, "db", role)
        got = transcript(w, steps)
        w.close()
        assert got == want


def test_login_values_follow_after_reset_on_a_shared_server(shoal, pg, role):
    """Transaction mode: after RESET the client's login value, not the server's, is carried to
    whatever server it gets next, and another client's values are not disturbed."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    a = session(s.host, s.port, "db", role)
    b = Wire(s.host, s.port)
    assert b.startup(role, "db", DateStyle="SQL, DMY") is None
    # (RESET ALL pins the client to its server, so it comes last)
    for sql in ("reset datestyle", "set datestyle to default", "discard all", "reset all"):
        assert run(a, "set datestyle = iso")[1] is None
        assert run(b, "show datestyle")[0][0] == b"\x00\x01\x00\x00\x00\x08SQL, DMY"
        assert run(a, sql)[1] is None
        assert run(b, "show datestyle")[0][0] == b"\x00\x01\x00\x00\x00\x08SQL, DMY"
        assert run(a, "show datestyle")[0][0] == b"\x00\x01\x00\x00\x00\x0dPostgres, MDY"
    a.close()
    b.close()


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_reset_through_extended_protocol_matches_direct(shoal, pg, role, mode):
    """psycopg sends each statement with Parse/Bind/Execute: the login value is put back after
    the server confirms the RESET, before the client hears ReadyForQuery."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": mode})
    steps = ["set datestyle = iso", "reset datestyle", "set timezone = 'UTC'",
             "set time zone default", "set statement_timeout = 4321", "reset all",
             "set datestyle = iso", "discard all"]
    kw = {"options": "-c DateStyle=Postgres,MDY -c TimeZone=PST8PDT -c statement_timeout=1234"}

    def trace(conn):
        out = []
        for sql in steps:
            conn.execute(sql)
            out.append((sql, [conn.execute("show " + n).fetchone()[0] for n in SHOWN],
                        conn.info.parameter_status("DateStyle"),
                        conn.info.parameter_status("TimeZone")))
        return out

    with pg.connect(user=role, prepare_threshold=None, **kw) as direct:
        want = trace(direct)
    assert want[1][1] == ["Postgres, MDY", "PST8PDT", "1234ms"], want
    for _ in range(2):
        c = s.connect("db", role, **kw)
        assert trace(c) == want
        c.close()
    assert "resync for" in s.log()  # the extended-protocol path was taken
