"""Regression tests for daemon bugs fixed together (login hand-off, stale cancel keys, COPY in
the extended protocol, role/session_authorization startup parameters, unsynced batches and
idle_transaction_timeout, cancel connections at shutdown, malformed-client isolation).

Each test fails if its bug comes back; waits are bounded (helpers.wait_until or socket
timeouts), never sleeps used as assertions.
"""
import signal
import socket
import struct
import threading
import time

import psycopg
import pytest
from psycopg import pq

import wire
from helpers import wait_until
from wire import Wire, message, parse_fields, query_message, send_cancel, startup_packet

# ---------------------------------------------------------------------------------------
# small raw extended-protocol helpers


def parse_msg(sql, name="", oids=()):
    payload = name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", len(oids))
    for oid in oids:
        payload += struct.pack("!i", oid)
    return message(b"P", payload)


def bind_msg(portal="", stmt="", params=()):
    payload = portal.encode() + b"\0" + stmt.encode() + b"\0"
    payload += struct.pack("!h", 0)                     # all parameters in text
    payload += struct.pack("!h", len(params))
    for p in params:
        if p is None:
            payload += struct.pack("!i", -1)
        else:
            b = str(p).encode()
            payload += struct.pack("!i", len(b)) + b
    payload += struct.pack("!h", 0)                     # all results in text
    return message(b"B", payload)


def describe_portal_msg(portal=""):
    return message(b"D", b"P" + portal.encode() + b"\0")


def execute_msg(portal="", max_rows=0):
    return message(b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows))


SYNC = message(b"S")
FLUSH = message(b"H")
COPY_DONE = message(b"c")


def copy_data_msg(data):
    return message(b"d", data)


def read_until(w, stop_types, timeout=5.0):
    """Read messages until one whose type is in stop_types (inclusive); list of (type, body)."""
    deadline = time.monotonic() + timeout
    out = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no %r within %.1fs; got %r" % (stop_types, timeout, types(out)))
        w.sock.settimeout(remaining)
        mtype, body = w.read_msg()
        out.append((mtype, body))
        if mtype in stop_types:
            return out


def types(msgs):
    return b"".join(t for t, _ in msgs).decode()


def errors_in(msgs):
    return [parse_fields(b) for t, b in msgs if t == b"E"]


def data_rows(msgs):
    rows = []
    for t, body in msgs:
        if t != b"D":
            continue
        (n,) = struct.unpack("!h", body[:2])
        pos, row = 2, []
        for _ in range(n):
            (ln,) = struct.unpack("!i", body[pos:pos + 4])
            pos += 4
            if ln < 0:
                row.append(None)
            else:
                row.append(body[pos:pos + ln].decode())
                pos += ln
        rows.append(tuple(row))
    return rows


def command_tags(msgs):
    return [b.rstrip(b"\0").decode() for t, b in msgs if t == b"C"]


def assert_no_more_data(w, timeout=0.3):
    """Nothing else is queued on the socket (e.g. a stray ReadyForQuery)."""
    assert not w.buf, "unexpected extra bytes: %r" % w.buf
    w.sock.settimeout(timeout)
    try:
        chunk = w.sock.recv(65536)
    except socket.timeout:
        return
    raise AssertionError("unexpected extra data from the pooler: %r" % chunk)


def single_pool(shoal, dbname="postgres", **settings):
    s = {"pool_mode": "transaction", "query_wait_timeout": 3}
    s.update(settings)
    return shoal(databases={"db": {"dbname": dbname, "pool_size": 1}}, settings=s)


def sleeping_backends(pg, role):
    return pg.backends(usename=role, extra="state = 'active' AND query LIKE %s",
                       params=("%pg_sleep%",))


# ---------------------------------------------------------------------------------------
# 1. md5/plain client auth: the PasswordMessage is consumed once, never re-read as a query


@pytest.fixture(params=["md5", "plain"])
def password_shoal(shoal, pg, request):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              userlist={"alice": "alice_pw"},
              settings={"auth_type": request.param, "pool_mode": "transaction"})
    s.auth_type = request.param
    return s


def test_password_login_then_immediate_query_psycopg(password_shoal):
    s = password_shoal
    for i in range(4):
        # psycopg sends its first query as soon as the connection is ready.
        with psycopg.connect(s.dsn("db", "alice", password="alice_pw"), autocommit=True) as c:
            assert c.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
            assert c.execute("SELECT current_user").fetchone()[0] == "trust_user"


def test_password_and_query_in_one_send(password_shoal):
    """PasswordMessage + Query in ONE send(): the query must be answered as a query and the
    password message must not be taken for one (cold pool first, then warm)."""
    s = password_shoal
    expected_code = 5 if s.auth_type == "md5" else 3
    for i in range(3):
        w = Wire(s.host, s.port)
        try:
            w.send(startup_packet({"user": "alice", "database": "db"}))
            mtype, body = w.read_msg()
            assert mtype == b"R", (mtype, body)
            (code,) = struct.unpack("!i", body[:4])
            assert code == expected_code, code
            if code == 5:
                pw = wire.md5_password("alice", "alice_pw", body[4:8])
            else:
                pw = "alice_pw"
            sql = "SELECT 'q%d' AS v" % i
            w.send(message(b"p", pw.encode() + b"\0") + query_message(sql))
            login = read_until(w, (b"Z", b"E"))
            assert errors_in(login) == [], "client %d login: %r" % (i, errors_in(login))
            assert login[0][0] == b"R" and struct.unpack("!i", login[0][1][:4])[0] == 0
            assert login[-1] == (b"Z", b"I")
            result = read_until(w, (b"Z",))
            assert errors_in(result) == [], "client %d query: %r" % (i, errors_in(result))
            assert types(result) == "TDCZ", types(result)
            assert data_rows(result) == [("q%d" % i,)]
            assert command_tags(result) == ["SELECT 1"]
            assert result[-1] == (b"Z", b"I")
            assert_no_more_data(w)
            # The connection keeps working.
            rows, err, status = w.query("SELECT 7")
            assert err is None and rows == [("7",)] and status == "I", (rows, err, status)
        finally:
            w.close()


# ---------------------------------------------------------------------------------------
# 2. Transaction mode: a client that only logged in does not hold a server


@pytest.mark.parametrize("a_setup", ["login-only", "options-and-query", "raw-login"])
def test_logged_in_idle_client_holds_no_server(shoal, pg, role, a_setup):
    s = single_pool(shoal)
    if a_setup == "login-only":
        a = s.connect("db", role)
    elif a_setup == "options-and-query":
        a = s.connect("db", role, options="-c statement_timeout=1234")
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "1234ms"
    else:
        a = Wire(s.host, s.port)
        assert a.startup(role, "db", application_name="idle_a") is None
    try:
        b = s.connect("db", role)
        t0 = time.monotonic()
        assert b.execute("SELECT 42").fetchone()[0] == 42
        assert time.monotonic() - t0 < 2, "B waited for a server A should not hold"
        assert b.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert pg.count_backends(usename=role) == 1
        # A is still usable afterwards on the same single backend.
        if isinstance(a, Wire):
            rows, err, status = a.query("SELECT 1")
            assert err is None and rows == [("1",)] and status == "I"
        else:
            assert a.execute("SELECT 1").fetchone()[0] == 1
        assert pg.count_backends(usename=role) == 1
    finally:
        if isinstance(a, Wire):
            a.close()


# ---------------------------------------------------------------------------------------
# 3. A stale cancel key (client whose server was released) cancels nothing


def test_stale_cancel_key_does_not_cancel_other_clients_query(shoal, pg, role):
    s = single_pool(shoal)
    # A (raw) and A2 (psycopg): each runs a quick query, keeps its connection; its server
    # goes back to the pool.
    a = Wire(s.host, s.port)
    assert a.startup(role, "db") is None
    assert a.backend_key is not None
    rows, err, status = a.query("SELECT 1")
    assert err is None and status == "I"
    a2 = s.connect("db", role)
    assert a2.execute("SELECT 1").fetchone()[0] == 1

    b = Wire(s.host, s.port)
    assert b.startup(role, "db") is None
    assert b.backend_key != a.backend_key
    t0 = time.monotonic()
    b.send(query_message("SELECT pg_sleep(2)"))
    wait_until(lambda: sleeping_backends(pg, role), timeout=3, what="B's query running")
    send_cancel(s.host, s.port, *a.backend_key)     # raw CancelRequest with A's key
    a2.cancel()                                     # psycopg PQcancel with A2's key
    result = read_until(b, (b"Z",), timeout=6)
    elapsed = time.monotonic() - t0
    assert errors_in(result) == [], "B's query was cancelled by a stale key: %r" % (
        errors_in(result),)
    assert data_rows(result) == [("",)]
    assert elapsed >= 1.8, elapsed
    b.close()

    # Control: A's key is genuine - it does cancel A's own running query.
    a.send(query_message("SELECT pg_sleep(10)"))
    wait_until(lambda: sleeping_backends(pg, role), timeout=3, what="A's query running")
    send_cancel(s.host, s.port, *a.backend_key)
    result = read_until(a, (b"Z",), timeout=5)
    errs = errors_in(result)
    assert len(errs) == 1 and errs[0].get("C") == "57014", errs
    a.close()


# ---------------------------------------------------------------------------------------
# 4. COPY FROM STDIN over the extended protocol in transaction mode


def extended_copy_in(w, table, rows):
    """libpq's PQexecParams + PQputCopyData + PQputCopyEnd: Parse/Bind/Describe/Execute/Sync,
    then CopyData.../CopyDone/Sync. Returns (messages up to CopyInResponse, messages after)."""
    w.send(parse_msg("COPY %s FROM STDIN" % table) + bind_msg() + describe_portal_msg()
           + execute_msg() + SYNC)
    head = read_until(w, (b"G", b"E", b"Z"))
    assert types(head) == "12nG", (types(head), errors_in(head))
    payload = b"".join(b"%d\t%s\n" % (i, label.encode()) for i, label in rows)
    w.send(copy_data_msg(payload[: len(payload) // 2]) + copy_data_msg(payload[len(payload) // 2:])
           + COPY_DONE + SYNC)
    tail = read_until(w, (b"Z",))
    return head, tail


def test_extended_protocol_copy_from_stdin(shoal, pg, role_db):
    role, db = role_db
    pg.sql("CREATE TABLE t (id int, label text)", dbname=db, user=role)
    rows = [(i, "row%d" % i) for i in range(5)]

    # Reference: the same bytes straight to PostgreSQL.
    ref = Wire(pg.host, pg.port)
    assert ref.startup(role, db) is None
    _, ref_tail = extended_copy_in(ref, "t", rows)
    assert types(ref_tail) == "CZ" and command_tags(ref_tail) == ["COPY 5"], ref_tail
    assert_no_more_data(ref)
    ref.close()
    pg.sql("TRUNCATE t", dbname=db, user=role)

    s = single_pool(shoal, dbname=db)
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    for batch in range(2):
        _, tail = extended_copy_in(w, "t", rows)
        assert errors_in(tail) == [], errors_in(tail)
        assert types(tail) == types(ref_tail), types(tail)
        assert command_tags(tail) == ["COPY 5"]
        assert tail[-1] == (b"Z", b"I")
        assert_no_more_data(w)
        # The connection works for a following query (and answers are not off by one).
        r, err, status = w.query("SELECT count(*) FROM t")
        assert err is None and r == [(str(5 * (batch + 1)),)] and status == "I", (r, err)
        assert_no_more_data(w)
    # The server was released: another client on the single server is served at once.
    other = s.connect("db", role)
    t0 = time.monotonic()
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 10
    assert time.monotonic() - t0 < 2
    assert pg.count_backends(usename=role, datname=db) == 1
    r, err, status = w.query("SELECT 1")
    assert err is None and r == [("1",)] and status == "I"
    w.close()


def _copy_via_psycopg(s, role, rows):
    """psycopg 3.1 always sends COPY as a simple Query."""
    a = s.connect("db", role)
    with a.cursor().copy("COPY t FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    return a


def _copy_via_libpq_exec_params(s, role, rows):
    """libpq's own extended-protocol COPY: PQexecParams (Parse/Bind/Describe/Execute/Sync),
    PQputCopyData, PQputCopyEnd (CopyDone + Sync)."""
    conn = pq.PGconn.connect(s.dsn("db", role).encode())
    assert conn.status == pq.ConnStatus.OK, conn.error_message
    res = conn.exec_params(b"COPY t FROM STDIN", [])
    assert res.status == pq.ExecStatus.COPY_IN, (res.status, res.error_message)
    assert conn.put_copy_data(b"".join(b"%d\t%s\n" % (i, v.encode()) for i, v in rows)) == 1
    assert conn.put_copy_end() == 1
    res = conn.get_result()
    assert res.status == pq.ExecStatus.COMMAND_OK, (res.status, res.error_message)
    assert res.command_status == b"COPY %d" % len(rows)
    assert conn.get_result() is None
    res = conn.exec_(b"SELECT 1")
    assert res.status == pq.ExecStatus.TUPLES_OK and res.get_value(0, 0) == b"1"
    return conn


@pytest.mark.parametrize("how", ["psycopg-copy", "libpq-extended"])
def test_copy_then_other_client_on_same_server(shoal, pg, role_db, how):
    """After a COPY FROM STDIN the single server is released to another client."""
    role, db = role_db
    pg.sql("CREATE TABLE t (id int, label text)", dbname=db, user=role)
    s = single_pool(shoal, dbname=db)
    do_copy = _copy_via_psycopg if how == "psycopg-copy" else _copy_via_libpq_exec_params
    held = []
    try:
        for batch in range(2):
            held.append(do_copy(s, role, [(batch * 10 + i, "v%d" % i) for i in range(3)]))
            # The copying client stays connected; another client gets the server at once.
            b = s.connect("db", role)
            t0 = time.monotonic()
            assert b.execute("SELECT count(*) FROM t").fetchone()[0] == 3 * (batch + 1)
            assert time.monotonic() - t0 < 2
            b.close()
        assert pg.sql("SELECT sum(id) FROM t", dbname=db) == [(0 + 1 + 2 + 10 + 11 + 12,)]
        assert pg.count_backends(usename=role, datname=db) == 1
    finally:
        for h in held:
            if isinstance(h, pq.PGconn):
                h.finish()
            else:
                h.close()


# ---------------------------------------------------------------------------------------
# 5. role / session_authorization startup parameters are refused


@pytest.mark.parametrize("params", [
    {"role": "postgres"},
    {"session_authorization": "postgres"},
    {"ROLE": "postgres"},
    {"options": "-c role=postgres"},
    {"options": "-c session_authorization=postgres"},
    {"options": "-crole=postgres"},
    {"options": "--session-authorization=postgres"},
    {"options": "-c statement_timeout=0 -c Role=postgres"},
], ids=["role", "session_authorization", "ROLE", "opt-role", "opt-session_authorization",
        "opt-crole", "opt-long-session-authorization", "opt-second-Role"])
def test_role_and_session_authorization_startup_params_refused(shoal, pg, role, params):
    s = single_pool(shoal)
    warm = s.connect("db", role)
    assert warm.execute("SELECT current_user").fetchone()[0] == role
    w = Wire(s.host, s.port)
    err = w.startup(role, "db", **params)
    assert err is not None, "login with %r succeeded" % (params,)
    assert err.get("C") == "0A000", err
    assert err.get("S") == "FATAL", err
    assert w.is_closed(timeout=3)
    w.close()
    if "options" in params:   # libpq only passes GUCs through "options"
        with pytest.raises(psycopg.OperationalError, match="not supported"):
            psycopg.connect(s.dsn("db", role, options=params["options"]))
    # The shared backend still runs as the role, and the daemon still serves.
    assert warm.execute("SELECT current_user, session_user").fetchone() == (role, role)
    c = s.connect("db", role)
    assert c.execute("SELECT current_user").fetchone()[0] == role


# ---------------------------------------------------------------------------------------
# 6. idle_transaction_timeout covers an extended-protocol batch left open without Sync


def test_idle_transaction_timeout_covers_unsynced_extended_batch(shoal, pg, role):
    s = single_pool(shoal, idle_transaction_timeout=1)
    w = Wire(s.host, s.port)
    assert w.startup(role, "db") is None
    w.send(parse_msg("SELECT 1") + bind_msg() + execute_msg() + FLUSH)
    got = read_until(w, (b"C", b"E"))
    assert types(got) == "12DC", (types(got), errors_in(got))
    t0 = time.monotonic()
    fields = w.wait_error(timeout=6)
    elapsed = time.monotonic() - t0
    assert fields.get("C") == "08P01", fields
    assert fields.get("M", "").startswith("idle transaction timeout"), fields
    assert 0.8 <= elapsed < 4, elapsed
    assert w.is_closed(timeout=3)
    w.close()
    # Another client on the single server is served, in a fresh transaction.
    c = s.connect("db", role)
    assert c.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True
    c.execute("BEGIN")
    assert c.execute("SELECT 2").fetchone()[0] == 2
    c.execute("COMMIT")


# ---------------------------------------------------------------------------------------
# 7. SCRAM server login is covered by test_auth.py
#    (test_server_login_with_password_from_database_entry[scram_user],
#     test_server_login_with_password_from_auth_file[scram_user],
#     test_server_login_with_postgres_url_entry).

# ---------------------------------------------------------------------------------------
# 8. Outgoing cancel connections at shutdown


def _run_sleep_in_thread(conn, seconds):
    out = {}

    def run():
        try:
            conn.execute("SELECT pg_sleep(%s)" % seconds)
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_cancel_then_sigint_shutdown_is_clean(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    t, out = _run_sleep_in_thread(c, 10)
    wait_until(lambda: sleeping_backends(pg, role), timeout=3, what="query running")
    c.cancel()
    t.join(6)
    assert not t.is_alive(), "query not cancelled"
    assert isinstance(out.get("error"), psycopg.errors.QueryCanceled), repr(out.get("error"))
    assert c.execute("SELECT 1").fetchone()[0] == 1
    rc = s.stop(signal.SIGINT, timeout=10)
    assert rc == 0, rc
    assert s.sanitizer_report() is None, s.sanitizer_report()
    wait_until(lambda: pg.count_backends(usename=role) == 0, timeout=3,
               what="server connections closed")


class CancelHoldingProxy:
    """TCP proxy in front of PostgreSQL that forwards ordinary connections but swallows
    CancelRequests and keeps those connections open without answering, so the pooler's
    outgoing cancel connection is deterministically still in flight."""

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.cancels = []          # (pid, key) of swallowed CancelRequests
        self.held = []             # their sockets, kept open
        self.socks = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.stopped.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.socks.append(c)
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    @staticmethod
    def _recv_exact(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise OSError("eof")
            data += chunk
        return data

    def _pump(self, src, dst):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _handle(self, c):
        try:
            head = self._recv_exact(c, 8)
            length, code = struct.unpack("!ii", head)
            if code == wire.CANCEL_REQUEST and length == 16:
                self.cancels.append(struct.unpack("!ii", self._recv_exact(c, 8)))
                self.held.append(c)
                return
            up = socket.create_connection(self.upstream, timeout=5)
            up.settimeout(None)
            self.socks.append(up)
            up.sendall(head)
            threading.Thread(target=self._pump, args=(up, c), daemon=True).start()
            self._pump(c, up)
        except OSError:
            pass

    def close(self):
        self.stopped.set()
        for sock in [self.lsock] + self.socks:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def cancel_holding_proxy(pg):
    proxy = CancelHoldingProxy(pg.host, pg.port)
    yield proxy
    proxy.close()


def test_sigint_with_cancel_connection_in_flight_is_clean(shoal, pg, role,
                                                          cancel_holding_proxy):
    """SIGINT while the pooler's outgoing cancel connection has had no answer: it must be
    closed and freed at shutdown (the ASan build reports a leak otherwise)."""
    proxy = cancel_holding_proxy
    s = shoal(databases={"db": {"dbname": "postgres", "host": "127.0.0.1",
                                "port": proxy.port, "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    t, out = _run_sleep_in_thread(c, 10)
    try:
        wait_until(lambda: sleeping_backends(pg, role), timeout=3, what="query running")
        # The requester now waits for the answer (never, here) like libpq does: not this thread.
        threading.Thread(target=c.cancel, daemon=True).start()
        wait_until(lambda: proxy.cancels, timeout=3, what="cancel forwarded by the pooler")
        rc = s.stop(signal.SIGQUIT, timeout=10)
        assert rc == 0, rc
        assert s.sanitizer_report() is None, s.sanitizer_report()
        t.join(5)
        assert not t.is_alive(), "client not disconnected at shutdown"
        assert "error" in out, "query finished normally despite shutdown"
    finally:
        # PostgreSQL does not notice the closed socket during pg_sleep: end it here.
        pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
               (role,))


# ---------------------------------------------------------------------------------------
# malformed client isolation


@pytest.mark.parametrize("garbage", [
    ("startup", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("after-login", b"\x01\x00\x00\x00\x08junk"),
    ("short-length", b"Q\x00\x00\x00\x02"),
], ids=lambda g: g[0])
def test_malformed_client_does_not_disturb_open_transaction(shoal, pg, role_db, garbage):
    role, db = role_db
    pg.sql("CREATE TABLE t (x int)", dbname=db, user=role)
    s = single_pool(shoal, dbname=db)
    a = s.connect("db", role)
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (1)")
    where, data = garbage
    b = Wire(s.host, s.port)
    if where != "startup":
        assert b.startup(role, "db") is None
    b.send(data)
    fields = b.wait_error(timeout=5)
    assert fields.get("C") == "08P01", fields
    assert b.is_closed(timeout=3)
    b.close()
    a.execute("INSERT INTO t VALUES (2)")
    a.execute("COMMIT")
    assert pg.sql("SELECT array_agg(x ORDER BY x) FROM t", dbname=db) == [([1, 2],)]
    assert a.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    assert s.alive()
