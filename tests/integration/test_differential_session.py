"""Differential tests of session state (issue 15, "never a different answer than a direct
connection"): SET/RESET/SHOW of tracked, reported and untracked parameters with login values
set, and cancels at random points. Raw wire, real PostgreSQL, seeded."""
import os
import random
import socket
import threading
import time

import pytest

from helpers import db_entry
from txnwire import bind, execute, parse, sync
from wire import Wire, parse_fields, query_message, send_cancel

# Login values, one set per client (the same on the direct and the Shoal side): reported
# parameters, tracked ones and untracked ones, in the startup packet and in options=-c.
LOGINS = [
    {"DateStyle": "Postgres, MDY", "TimeZone": "PST8PDT", "application_name": "diff_a",
     "search_path": '"$user", public', "options": "-c app.x=1 -c extra_float_digits=2"},
    {"DateStyle": "SQL, DMY", "TimeZone": "UTC", "IntervalStyle": "sql_standard",
     "options": "-c app.x=2 -c statement_timeout=1234 -c default_transaction_read_only=on"},
    {"application_name": "diff_c", "search_path": "public", "IntervalStyle": "iso_8601",
     "options": "-c app.x=3 -c app.y=yes -c work_mem=4MB"},
]

# Every client logs in with app.x, the one custom parameter the batches read: see
# test_custom_parameter_of_another_client_is_not_defined_for_this_one for why.

# name -> values a SET may give it (one bad value each where PostgreSQL checks).
PARAMS = {
    # reported by PostgreSQL 15 (ParameterStatus)
    "DateStyle": ["ISO, DMY", "'SQL, MDY'", "German", "'Postgres, YMD'", "bogus"],
    "TimeZone": ["'UTC'", "'Europe/Paris'", "'America/New_York'", "'Nowhere/Bogus'"],
    "application_name": ["'x1'", "'x2'", "''"],
    "IntervalStyle": ["postgres", "iso_8601", "sql_standard", "postgres_verbose", "nope"],
    "standard_conforming_strings": ["on", "off"],
    # tracked (track_extra_parameters), not reported by PostgreSQL 15
    "search_path": ["public", '"$user", public', "pg_catalog", "nosuch, public"],
    "default_transaction_read_only": ["on", "off", "maybe"],
    # untracked: a session SET of these pins the client in transaction mode
    "statement_timeout": ["0", "'5s'", "777"],
    "app.x": ["'7'", "'hello'"],
    "extra_float_digits": ["0", "3", "-2"],
    "work_mem": ["'64kB'", "'8MB'"],
}
TRACKED_OR_REPORTED = ("DateStyle", "TimeZone", "application_name", "IntervalStyle",
                       "standard_conforming_strings", "search_path",
                       "default_transaction_read_only")
# Reads whose answer depends on the parameters.
READS = ["SELECT '2024-02-03 04:05:06+00'::timestamptz, '2024-02-03'::date",
         "SELECT interval '1 day 2 hours 3 minutes'", "SELECT current_schemas(true)",
         "SELECT 0.1::float8, 1e100::float8", "SELECT 'a\\b' AS s",
         "SELECT current_setting('app.x', true)"]


def _set_statement(rnd):
    """One statement that reads or changes a parameter; and whether it may pin the client."""
    name = rnd.choice(sorted(PARAMS))
    untracked = name not in TRACKED_OR_REPORTED
    r = rnd.random()
    if r < 0.3:
        sql = rnd.choice(["SET %s = %s", "SET %s TO %s", "SET SESSION %s = %s"]) % (
            name, rnd.choice(PARAMS[name]))
        return sql, untracked
    if r < 0.38:
        return "SET LOCAL %s = %s" % (name, rnd.choice(PARAMS[name])), False
    if r < 0.5:
        return rnd.choice(["RESET %s", "SET %s TO DEFAULT", "SET %s = DEFAULT"]) % name, untracked
    if r < 0.6:
        return "SHOW %s" % name, False
    if r < 0.7:
        return "SELECT current_setting('%s')" % name, False
    if r < 0.74:
        local = rnd.choice(["true", "false"])
        value = rnd.choice(PARAMS[name]).strip("'").replace("'", "''")
        return "SELECT set_config('%s', '%s', %s)" % (name, value, local), local == "false"
    if r < 0.78:
        return rnd.choice(["SET TIME ZONE 'UTC'", "SET TIME ZONE DEFAULT", "SET TIME ZONE LOCAL",
                           "SET SCHEMA 'public'", "SET NAMES 'UTF8'"]), False
    if r < 0.8:
        return "RESET ALL", True
    if r < 0.82:
        return "DISCARD ALL", True
    if r < 0.9:
        return rnd.choice(READS), False
    return rnd.choice(["BEGIN", "COMMIT", "ROLLBACK", "SELECT 1/0", "SAVEPOINT s",
                       "ROLLBACK TO SAVEPOINT s", "START TRANSACTION READ WRITE"]), False


def _is_reset(sql):
    return sql.startswith(("RESET", "DISCARD")) or sql.startswith("SET") and sql.endswith(
        ("DEFAULT", "ZONE LOCAL"))


def _param_batch(rnd, in_block):
    """Messages for one round trip (simple Query with one or several statements, or Parse/
    Bind/Execute of one or several statements before one Sync), and whether it may pin the
    client (conservatively: any session SET in a transaction block may, as the block may not
    simply commit)."""
    stmts = [_set_statement(rnd) for _ in range(rnd.choice([1, 1, 1, 2, 3]))]
    texts = [s for s, _ in stmts]
    extended = rnd.random() >= 0.6
    if extended:
        # A reset in a Parse is acted on at the next ReadyForQuery, so what is pipelined behind
        # it sees the server's default (a documented difference): reads go before the resets,
        # session SETs (test_set_pipelined_behind_a_reset_is_kept) may follow them.
        texts.sort(key=lambda t: _is_reset(t) or t.startswith("SET ") and
                   not t.startswith("SET LOCAL"))
    changes = any(p for _, p in stmts) or any(
        s.startswith(("SET ", "RESET")) and not s.startswith("SET LOCAL") for s in texts)
    pins = any(p for _, p in stmts) or changes and (
        len(stmts) > 1 or in_block or any(s.startswith(("BEGIN", "START")) for s in texts))
    if not extended:
        return query_message("; ".join(texts)), pins
    return b"".join(parse("", t) + bind("") + execute() for t in texts) + sync(), pins


def _replies(w):
    """Every message up to ReadyForQuery, raw (type, body)."""
    out = []
    while True:
        t, body = w.read_msg()
        out.append((t, body))
        if t == b"Z":
            return out


def _status(body):
    name, value = body.split(b"\0")[:2]
    return name.decode(), value.decode()


def _sorted_reports(replies):
    """replies with each run of consecutive ParameterStatus messages in name order (after a
    reset Shoal sends the reports it held in an order of its own)."""
    out, run = [], []
    for m in replies + [(None, None)]:
        if m[0] == b"S":
            run.append(m)
            continue
        out += sorted(run, key=lambda r: _status(r[1])[0].lower())
        run = []
        if m[0] is not None:
            out.append(m)
    return out


def _login(host, port, db, params):
    w = Wire(host, port, timeout=10)
    assert w.startup("postgres", db, **params) is None
    return w


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_random_parameter_batches_match_a_direct_connection(shoal, pg, mode):
    """Differential: three clients logged in with different non-default startup parameters
    (reported ones, track_extra_parameters ones, untracked ones, custom ones in options=-c)
    send random batches of SET / SET LOCAL / SET SESSION / RESET / SET ... TO DEFAULT /
    RESET ALL / DISCARD ALL / SHOW / current_setting() / set_config() and reads whose answer
    depends on them, in simple and extended protocol, inside and outside transaction blocks
    (with errors and savepoints), on two servers in transaction mode and three in session
    mode: 3,000 batches per mode. Every message each client receives, ParameterStatus and
    notices included, must equal byte for byte what a direct connection with the same login
    receives; only the order of the ParameterStatus messages in one reply of a batch with a
    reset in it is not compared (they are put in name order on both sides).

    Kept out of the batches because they hit documented differences (docs/transaction-
    pooling.md, "What differs", RESET): in an extended batch reads go before the resets (what
    is pipelined behind a reset in a Parse reads the server's default until its ReadyForQuery;
    session SETs may follow one, test_set_pipelined_behind_a_reset_is_kept); every client logs
    in with app.x, the custom parameter the batches read (the strict xfail
    test_custom_parameter_of_another_client_is_not_defined_for_this_one). Client 0 logs in with
    a search_path of two schemas, one of them quoted. Seeded: PARAM_DIFF_SEED /
    PARAM_DIFF_STEPS reproduce or lengthen a run (PARAM_DIFF_HISTORY: how many of the client's
    earlier batches a failure shows). Differences this test found, now fixed, each have a
    regression test below.

    In transaction mode a client that may have pinned itself (an untracked SET, RESET ALL,
    DISCARD ALL, several SETs in one batch) is treated as holding a server, and reconnected
    (on both sides) now and then, so that the third client always finds a server."""
    _parameter_differential(shoal, pg, mode, int(os.environ.get("PARAM_DIFF_SEED", "15")))


def _parameter_differential(shoal, pg, mode, seed_base):
    pool_size = 2 if mode == "transaction" else 3
    s = shoal(databases={"db": db_entry(pg, pool_size=pool_size)},
              settings={"pool_mode": mode, "query_wait_timeout": 10})
    pooled = [_login(s.host, s.port, "db", p) for p in LOGINS]
    direct = [_login(pg.host, pg.port, "postgres", p) for p in LOGINS]
    seed = seed_base * 10 + len(mode)
    rnd = random.Random(seed)
    in_xact, pinned = set(), set()
    history = [[], [], []]
    assert [w.params for w in pooled] == [w.params for w in direct]
    try:
        for step in range(int(os.environ.get("PARAM_DIFF_STEPS", "3000"))):
            holders = in_xact | pinned
            if mode == "transaction" and len(holders) >= pool_size:
                i = rnd.choice(sorted(holders))
            else:
                i = rnd.randrange(3)
            if i in pinned and i not in in_xact and rnd.random() < 0.1:
                for w in (pooled[i], direct[i]):
                    w.close()
                pooled[i] = _login(s.host, s.port, "db", LOGINS[i])
                direct[i] = _login(pg.host, pg.port, "postgres", LOGINS[i])
                pinned.discard(i)
            batch, pins = _param_batch(rnd, i in in_xact)
            pooled[i].send(batch)
            direct[i].send(batch)
            got, want = _replies(pooled[i]), _replies(direct[i])
            if b"DEFAULT" in batch or b"RESET" in batch or b"DISCARD" in batch:
                got, want = _sorted_reports(got), _sorted_reports(want)
            before = [b for b, _ in history[i][-int(os.environ.get("PARAM_DIFF_HISTORY", "8")):]]
            assert got == want, (
                "seed %d step %d client %d batch %r\ngot  %r\nwant %r\nbatches before: %r"
                % (seed, step, i, batch, got, want, before))
            history[i].append((batch, want))
            if pins:
                pinned.add(i)
            if want[-1] == (b"Z", b"I"):
                in_xact.discard(i)
            else:
                in_xact.add(i)
    finally:  # a client left in a transaction would hold up Shoal's shutdown
        for w in pooled + direct:
            w.close()


@pytest.mark.parametrize("value", ['"$user", public', 'pg_catalog,"public"'])
@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_startup_search_path_of_several_schemas_matches_a_direct_connection(shoal, pg, mode,
                                                                            value):
    """A startup search_path is a list of schemas, as PostgreSQL reads it, spelled as sent
    (SHOW), also after DISCARD ALL; a RESET in a simple Query or in a block puts it back as a
    list in PostgreSQL's own spelling (docs/transaction-pooling.md): the same schemas."""
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"search_path": value})
        answers.append([w.query(sql)[0] for sql in (
            "SHOW search_path", "SELECT current_schemas(false)", "DISCARD ALL",
            "SHOW search_path", "SET search_path = public", "RESET search_path",
            "SELECT current_schemas(false)", "BEGIN", "SET search_path = public", "RESET search_path",
            "SELECT current_schemas(false)", "COMMIT")])
        w.close()
    assert answers[0][0] == [(value,)]
    assert answers[1] == answers[0]


@pytest.mark.xfail(strict=True, reason=(
    "Shoal limit, documented in docs/transaction-pooling.md (\"A custom parameter's "
    "placeholder outlives its client\": PostgreSQL cannot drop a placeholder, and keeping "
    "such servers from other clients means closing them or sorting idle servers by custom "
    "names in pool.c), found by "
    "test_random_parameter_batches_match_a_direct_connection (seed 161 step 438, before every "
    "client logged in with app.x): client A logs in with options='-c app.only_a=1'; client B "
    "(no such option) then gets A's server and SELECT current_setting('app.only_a', true) "
    "answers '' where a direct connection answers NULL (and SHOW app.only_a answers '' where "
    "it fails with 42704): the placeholder PostgreSQL creates for a custom parameter outlives "
    "RESET and DISCARD ALL in that backend, so one client's custom startup parameter names "
    "leak to the next client of the server, in every pool mode."))
@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_custom_parameter_of_another_client_is_not_defined_for_this_one(shoal, pg, mode):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        a = _login(host, port, db, {"options": "-c app.only_a=1"})
        assert a.query("SHOW app.only_a")[0] == [("1",)]
        a.close()
        time.sleep(0.2)  # session mode: A's server is reset and free again
        b = _login(host, port, db, {})
        answers.append((b.query("SELECT current_setting('app.only_a', true)")[0],
                        b.query("SHOW app.only_a")[1] is None))
        b.close()
    assert answers[1] == answers[0] == ([(None,)], False)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_discard_all_then_an_error_in_one_pipeline_keeps_the_login_values(shoal, pg, mode):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    batch = b"".join(parse("", t) + bind("") + execute()
                     for t in ("DISCARD ALL", "SELECT 1/0")) + sync()
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"DateStyle": "SQL, DMY"})
        w.send(batch)
        reports = [_status(b) for t, b in _replies(w) if t == b"S"]
        answers.append((reports, w.query("SHOW DateStyle")[0]))
        w.close()
    assert answers[1] == answers[0] == ([], [("SQL, DMY",)])


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_position_of_a_warning_after_a_reset_in_one_query_matches_a_direct_connection(
        shoal, pg, mode):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    sql = "SET TimeZone TO DEFAULT; SELECT 'a\\b'"
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"TimeZone": "PST8PDT"})
        assert w.query("SET standard_conforming_strings = off")[1] is None
        w.send(query_message(sql))
        answers.append([parse_fields(b).get("P") for t, b in _replies(w) if t == b"N"])
        w.close()
    assert answers[0] == [str(sql.index("'a") + 1)]
    assert answers[1] == answers[0]


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_positions_after_several_resets_and_multibyte_text_match_a_direct_connection(
        shoal, pg, mode):
    """Positions are counted in characters: UTF-8 text before and between two RESETs of login
    values (each followed by Shoal's SET), a warning and a syntax error after them."""
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    texts = ["SELECT 'ĉ€ü'; RESET DateStyle; SELECT 'ẞ\\b', '\\x'; SET TimeZone TO DEFAULT; "
             "SELECT 'é\\c'",
             "RESET TimeZone; SELECT 'ü€'; RESET DateStyle; SELECT 1 FROM WHERE"]
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"TimeZone": "PST8PDT", "DateStyle": "SQL, DMY"})
        assert w.query("SET standard_conforming_strings = off")[1] is None
        got = []
        for sql in texts:
            w.send(query_message(sql))
            got.append([(t, parse_fields(b).get("P")) for t, b in _replies(w) if t in b"NE"])
        answers.append((got, w.query("SHOW DateStyle")[0], w.query("SHOW TimeZone")[0]))
        w.close()
    assert len(answers[0][0][0]) == 3 and answers[0][0][1][0][0] == b"E"
    assert answers[1] == answers[0]


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_reset_with_a_request_pipelined_behind_its_sync_ends_at_the_login_value(shoal, pg, mode):
    """A request pipelined behind the Sync of an extended RESET makes Shoal put the login value
    back only after it (a documented difference: the client may hear the server's default
    first); what the client was told last, and the session, end at the login value."""
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    batch = (parse("", "RESET TimeZone") + bind("") + execute() + sync() +
             query_message("SELECT 1"))
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"TimeZone": "PST8PDT"})
        assert w.query("SET TimeZone = 'Europe/Paris'")[1] is None
        w.send(batch)
        told = [_status(b) for t, b in _replies(w) + _replies(w) if t == b"S"]
        answers.append((told[-1:], w.query("SHOW TimeZone")[0]))
        w.close()
    assert answers[1] == answers[0] == ([("TimeZone", "PST8PDT")], [("PST8PDT",)])


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_set_pipelined_behind_a_reset_is_kept(shoal, pg, mode):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)}, settings={"pool_mode": mode})
    batch = b"".join(parse("", t) + bind("") + execute() for t in (
        "SET TimeZone = DEFAULT", "SET SESSION TimeZone = 'Europe/Paris'")) + sync()
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"TimeZone": "PST8PDT"})
        w.send(batch)
        _replies(w)
        answers.append(w.query("SHOW TimeZone")[0])
        w.close()
    assert answers[1] == answers[0] == [("Europe/Paris",)]


def test_refused_discard_all_does_not_put_back_login_values_later(shoal, pg):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)},
              settings={"pool_mode": "transaction"})
    batch = b"".join(parse("", t) + bind("") + execute() for t in (
        "SET SESSION app.x = 'hello'", "SET extra_float_digits = DEFAULT")) + sync()
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"options": "-c app.x=1 -c extra_float_digits=2"})
        assert w.query("SET SESSION extra_float_digits = 3; DISCARD ALL")[1]["C"] == "25001"
        w.send(batch)
        _replies(w)
        answers.append(w.query("SHOW app.x")[0])
        w.close()
    assert answers[1] == answers[0] == [("hello",)]


def test_discard_all_refused_in_a_block_does_not_put_back_login_values_later(shoal, pg):
    s = shoal(databases={"db": db_entry(pg, pool_size=1)},
              settings={"pool_mode": "transaction"})
    discard = parse("", "DISCARD ALL") + bind("") + execute() + sync()
    reset = parse("", "SET statement_timeout = DEFAULT") + bind("") + execute() + sync()
    answers = []
    for host, port, db in ((pg.host, pg.port, "postgres"), (s.host, s.port, "db")):
        w = _login(host, port, db, {"options": "-c app.x=2 -c statement_timeout=1234"})
        assert w.query("SET LOCAL TimeZone = 'Europe/Paris'; BEGIN")[1] is None
        w.send(discard)
        assert [parse_fields(b)["C"] for t, b in _replies(w) if t == b"E"] == ["25001"]
        assert w.query('COMMIT; SET search_path = "$user", public; '
                       "SET standard_conforming_strings = DEFAULT")[1] is None
        assert w.query("RESET extra_float_digits; SET work_mem = '8MB'; "
                       "SET SESSION app.x = '7'")[1] is None
        w.send(reset)
        _replies(w)
        answers.append(w.query("SHOW app.x")[0])
        w.close()
    assert answers[1] == answers[0] == [("7",)]


def _cancel_unit(rnd, k):
    """One statement of a cancel pipeline, ending with its own ReadyForQuery: sometimes a
    pg_sleep, simple or extended protocol. k makes its answer its own."""
    sql = rnd.choice(["SELECT %d AS k" % k, "SELECT %d AS k, pg_sleep(0.02)" % k,
                      "SELECT %d AS k, pg_sleep(0.05)" % k, "SELECT %d AS k, pg_sleep(0.1)" % k])
    if rnd.random() < 0.5:
        return query_message(sql)
    return parse("", sql) + bind("") + execute() + sync()


def _read_units(w, n, out):
    """Read n units' replies into out: (messages, monotonic time of their ReadyForQuery)."""
    try:
        for _ in range(n):
            msgs = _replies(w)
            out.append(([m for m in msgs if m[0] not in (b"N", b"S")], time.monotonic()))
    except (OSError, socket.timeout) as e:
        out.append((e, time.monotonic()))


def _cancelled(msgs):
    return [parse_fields(b).get("C") for t, b in msgs if t == b"E"] == ["57014"]


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_cancel_at_a_random_point_fails_only_a_running_or_queued_statement(shoal, pg, mode):
    """A cancel cannot be compared byte for byte (its timing decides what it hits), so this
    checks the property instead. Each round three clients (two servers in transaction mode,
    so statements also wait for one; three in session mode) pipeline 2-6 statements each,
    some pg_sleep, simple and extended protocol; at a random moment one client's
    CancelRequest is sent. Then: only the victim's statements may fail with 57014, and only
    those that had not completed when the cancel was sent (running or queued); every
    other statement's replies equal a direct connection's byte for byte; and a pg_sleep each
    client sends after the cancel was answered is never cancelled. Seeded: CANCEL_DIFF_SEED /
    CANCEL_DIFF_ROUNDS. (Not "at most one": PostgreSQL itself, cancelled directly, sometimes
    fails two consecutive statements of such a pipeline for one CancelRequest.)"""
    pool_size = 2 if mode == "transaction" else 3
    s = shoal(databases={"db": db_entry(pg, pool_size=pool_size)},
              settings={"pool_mode": mode, "query_wait_timeout": 10})
    pooled = [_login(s.host, s.port, "db", p) for p in LOGINS]
    direct = [_login(pg.host, pg.port, "postgres", p) for p in LOGINS]
    seed = int(os.environ.get("CANCEL_DIFF_SEED", "15")) * 10 + len(mode)
    rnd = random.Random(seed)
    after = query_message("SELECT 'after', pg_sleep(0.05)")
    hits = 0
    for rnd_no in range(int(os.environ.get("CANCEL_DIFF_ROUNDS", "15"))):
        pipes = [[_cancel_unit(rnd, 100 * c + j) for j in range(rnd.randint(2, 6))]
                 for c in range(3)]
        victim, delay = rnd.randrange(3), rnd.uniform(0, 0.15)
        got, want = [[], [], []], [[], [], []]
        readers = []
        for c in range(3):
            for w, out in ((pooled[c], got[c]), (direct[c], want[c])):
                t = threading.Thread(target=_read_units, args=(w, len(pipes[c]), out),
                                     daemon=True)
                t.start()
                readers.append(t)
                w.send(b"".join(pipes[c]))
        time.sleep(delay)
        sent_at = time.monotonic()
        send_cancel(s.host, s.port, *pooled[victim].backend_key, timeout=10)
        for t in readers:
            t.join(20)
        where = "seed %d round %d victim %d delay %.3f" % (seed, rnd_no, victim, delay)
        for c in range(3):
            assert len(got[c]) == len(pipes[c]) and len(want[c]) == len(pipes[c]), (
                where, c, got[c], want[c])
            failed = [j for j, (msgs, _) in enumerate(got[c]) if _cancelled(msgs)]
            assert c == victim or not failed, (where, c, got[c])
            for j, (msgs, done_at) in enumerate(got[c]):
                if j in failed:
                    assert done_at > sent_at, (where, c, j, "finished before the cancel")
                    hits += 1
                else:
                    assert msgs == want[c][j][0], (where, c, j, msgs, want[c][j][0])
        # After the cancel was answered nothing of anybody's may be cancelled.
        for w in pooled:
            w.send(after)
        for w in pooled:
            msgs = _replies(w)
            assert not [m for m in msgs if m[0] == b"E"], (where, "after", msgs)
    print("%s: %d statements cancelled in %d rounds" % (mode, hits, rnd_no + 1))
    assert hits > 0, "no cancel landed: the test tested nothing"
