"""Rolling restart with client handoff (issue 20): a new instance on the same port listens on
handoff_socket; the old one, told by the console (HANDOFF) or by SIGWINCH, closes its listeners
and hands each idle transaction-mode client (plain TCP or Unix socket) over with its socket and
its state: startup and tracked parameters, cancel key, prepared statements. The client notices
nothing: same socket, same session. A TLS client gets 57P01 when idle (its TLS session lives in
the old process)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest

from admin_helpers import admin, show
from conftest import MD5_PW, SCRAM_PW
from cancel_helpers import wait_running
from fleet_helpers import PROTOCOL_3_2, SLEEP, cancel_at, key_issuer, read_until_ready, startup
from helpers import free_port, wait_until
from test_auth_query import LOOKUP, auth_user  # noqa: F401 (a fixture)
from test_fleet_haproxy import HAPROXY, HAProxy
from test_scram import stored_secret
from tls_fixtures import client_tls_settings, tls_certs  # noqa: F401 (a fixture)
from wire import Wire, query_message

N = 20


@pytest.fixture
def handoff_path():
    d = tempfile.mkdtemp(prefix="shoal-ho-")  # short: a Unix socket path has 107 bytes
    yield os.path.join(d, "handoff.sock")
    shutil.rmtree(d, ignore_errors=True)


def _instance(shoal, port, n, path, **settings):
    st = {"pool_mode": "transaction", "listen_port": port, "so_reuseport": 1, "peer_id": n,
          "handoff_socket": path, "shutdown_timeout": 10,
          "track_extra_parameters": "statement_timeout",
          # the fixture's 5 s: under load, before idle clients were held for the tick, a
          # pgbench client of the draining process once waited longer for a server
          "query_wait_timeout": 30}
    st.update(settings)
    return shoal(databases={"db": {"dbname": "postgres", "pool_size": 4}}, settings=st)


def _local_port(conn):
    s = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


def _prepare_clients(old, role, n=N):
    """n idle clients on old, each with its own application_name, a tracked SET and a named
    prepared statement (psycopg's _pg3_0)."""
    clients = []
    for i in range(n):
        c = old.connect("db", role)
        c.execute("SET application_name = 'ho%d'" % i)
        c.execute("SET statement_timeout = '%ds'" % (100 + i))
        assert c.execute("SELECT %s::int + 1", (i,), prepare=True).fetchone() == (i + 1,)
        clients.append(c)
    return clients


def _handed(old):
    """Clients the old process's workers say they handed over (one line each at exit)."""
    return sum(int(n) for n in re.findall(r"worker \d+ handed (\d+) clients? over", old.log()))


def _taken(new):
    return sum(int(n) for n in re.findall(r"done: (\d+) clients? taken over", new.log()))


def _client_ports(s, db="db"):
    with admin(s) as con:
        _, rows = show(con, "CLIENTS")
    return {r["port"] for r in rows if r["database"] == db}


def _check_moved(old, new, clients, rc):
    assert rc == 0, (rc, old.log_tail())
    ports = [_local_port(c) for c in clients]  # the same sockets as before
    assert set(ports) <= _client_ports(new), new.log_tail()
    for i, c in enumerate(clients):
        assert c.execute("SHOW application_name").fetchone() == ("ho%d" % i,)
        assert c.execute("SHOW statement_timeout").fetchone() == ("%ds" % (100 + i),)
        assert c.execute("SELECT %s::int + 1", (i * 7,), prepare=True).fetchone() == (i * 7 + 1,)
    assert _handed(old) == len(clients), old.log_tail()
    assert _taken(new) == len(clients), new.log_tail()


def _restart(shoal, role, handoff_path, start):
    port = free_port()
    old = _instance(shoal, port, 1, handoff_path)
    clients = _prepare_clients(old, role)
    new = _instance(shoal, port, 2, handoff_path)
    start(old)
    rc = old.wait(15)
    old.stopped_by_test = True
    _check_moved(old, new, clients, rc)
    return old, new, clients


def test_handoff_by_console_moves_idle_clients_with_their_state(shoal, role, handoff_path):
    def by_console(old):
        with admin(old) as con:
            con.execute("HANDOFF")
    _restart(shoal, role, handoff_path, by_console)


def test_handoff_by_sigwinch_moves_idle_clients_with_their_state(shoal, role, handoff_path):
    _restart(shoal, role, handoff_path, lambda old: old.send_signal(signal.SIGWINCH))


def test_handoff_refused_without_a_new_process_by_console_and_signal(shoal, role, handoff_path):
    old = _instance(shoal, free_port(), 1, handoff_path)
    c = old.connect("db", role)
    with admin(old) as con:
        with pytest.raises(psycopg.Error, match="this process's own"):
            con.execute("HANDOFF")
    old.send_signal(signal.SIGWINCH)
    wait_until(lambda: "SIGWINCH: no handoff" in old.log(), timeout=5, what="SIGWINCH ignored")
    assert c.execute("SELECT 1").fetchone() == (1,)  # nothing changed
    assert old.alive() and "shutting down" not in old.log()


SCRIPT = """\\set a random(1, 100000)
BEGIN;
SELECT :a::int + 1;
SELECT count(*) FROM pg_class WHERE oid = :a;
END;
"""
PGBENCH_CLIENTS = 6


def _db_clients(s):
    with admin(s) as con:
        _, rows = show(con, "CLIENTS")
    return [r for r in rows if r["database"] == "db"]


@pytest.mark.parametrize("mode", ["simple", "prepared"])
def test_handoff_under_pgbench_loses_no_transaction(shoal, role, handoff_path, tmp_path, mode):
    port = free_port()
    old = _instance(shoal, port, 1, handoff_path)
    script = tmp_path / "handoff.sql"
    script.write_text(SCRIPT)
    bench = subprocess.Popen(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", role, "-T", "10", "-c",
         str(PGBENCH_CLIENTS), "-j", "2", "-M", mode, "-f", str(script), "db"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: len(_db_clients(old)) == PGBENCH_CLIENTS, timeout=10,
                   what="pgbench's clients on the old instance")
        new = _instance(shoal, port, 2, handoff_path)
        with admin(old) as con:
            con.execute("HANDOFF")
        rc = old.wait(15)
        old.stopped_by_test = True
        assert rc == 0, old.log_tail()
        moved = len(_db_clients(new))
        out, _ = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 0, out
    assert "error" not in out.lower() and "abort" not in out.lower(), out
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert failed is None or failed.group(1) == "0", out
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    assert done and int(done.group(1)) > 0, out
    assert moved == PGBENCH_CLIENTS, (moved, new.log_tail())
    assert _handed(old) == PGBENCH_CLIENTS, old.log_tail()
    print("handoff under pgbench -M %s: %s transactions, %d clients moved, 0 failed"
          % (mode, done.group(1), moved))


def test_cancel_reaches_a_client_moved_to_the_new_process(shoal, pg, role, handoff_path):
    """The moved client keeps the cancel key the old process (peer 1) issued; the new one (peer
    2) finds it among its own before routing it to peer 1, which is gone."""
    port = free_port()
    old = _instance(shoal, port, 1, handoff_path)
    c = old.connect("db", role)
    c.execute("SELECT 1")
    new = _instance(shoal, port, 2, handoff_path)
    with admin(old) as con:
        con.execute("HANDOFF")
    assert old.wait(15) == 0, old.log_tail()
    old.stopped_by_test = True
    result = {}

    def sleep():
        t0 = time.monotonic()
        try:
            c.execute("SELECT pg_sleep(10)")
            result["outcome"] = "finished"
        except psycopg.errors.QueryCanceled:
            result["outcome"] = "canceled"
        result["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=sleep, daemon=True)
    t.start()
    wait_until(lambda: pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query = "
                              "'SELECT pg_sleep(10)' AND state = 'active'")[0][0] == 1,
               timeout=5, what="the query running")
    c.cancel()
    t.join(10)
    assert result.get("outcome") == "canceled", (result, new.log_tail())
    assert result["seconds"] < 5, result
    assert c.execute("SELECT 2").fetchone() == (2,)  # the session goes on


def test_tls_client_gets_57p01_while_plain_and_unix_clients_move(shoal, role, handoff_path,
                                                                 tls_certs):
    port = free_port()
    tls = client_tls_settings(tls_certs, "prefer")
    old = _instance(shoal, port, 1, handoff_path, **tls)
    secure = old.connect("db", role, sslmode="require")
    assert secure.pgconn.ssl_in_use
    plain = old.connect("db", role, sslmode="disable")
    local = old.connect("db", role, host=old.dir)  # the Unix socket: never TLS
    for c in (secure, plain, local):
        c.execute("SET application_name = 'kept'")
    new = _instance(shoal, port, 2, handoff_path, **tls)
    with admin(old) as con:
        con.execute("HANDOFF")
    wait_until(lambda: "cannot be handed over" in old.log(), timeout=5, what="the TLS close")
    with pytest.raises(psycopg.OperationalError, match="pooler is restarting"):
        secure.execute("SELECT 1")
    assert old.wait(15) == 0, old.log_tail()
    old.stopped_by_test = True
    for c in (plain, local):
        assert c.execute("SHOW application_name").fetchone() == ("kept",)
    assert _taken(new) == 2, new.log_tail()


def test_protocol_32_client_keeps_its_long_key_across_a_handoff(shoal, role, handoff_path):
    """A raw 3.2 client: its 32-byte key (naming peer 1) cancels its statement on the new
    process; the protocol version went along (a 3.0 key would be 4 bytes)."""
    port = free_port()
    old = _instance(shoal, port, 1, handoff_path)
    w = Wire(port=port)
    _, (pid, key) = startup(w, role, "db", PROTOCOL_3_2)
    assert len(key) == 32 and key_issuer(pid, key) == 1
    new = _instance(shoal, port, 2, handoff_path)
    old.send_signal(signal.SIGWINCH)
    assert old.wait(15) == 0, old.log_tail()
    old.stopped_by_test = True
    assert _taken(new) == 1, new.log_tail()
    w.send(query_message(SLEEP))
    wait_running(w)
    cancel_at("127.0.0.1", port, pid, key)
    errors, seconds = read_until_ready(w, 10)
    assert [e.get("C") for e in errors] == ["57014"], errors
    assert seconds < 5, seconds
    w.close()


def test_session_mode_client_stays_on_the_old_process_until_it_leaves(shoal, role, handoff_path):
    port = free_port()
    dbs = {"db": {"dbname": "postgres", "pool_size": 4},
           "sess": {"dbname": "postgres", "pool_mode": "session"}}

    def start(n):
        return shoal(databases=dbs, settings={
            "pool_mode": "transaction", "listen_port": port, "so_reuseport": 1, "peer_id": n,
            "handoff_socket": handoff_path, "shutdown_timeout": 10})
    old = start(1)
    moving = old.connect("db", role)
    staying = old.connect("sess", role)
    staying.execute("SET application_name = 'sess'")
    new = start(2)
    with admin(old) as con:
        con.execute("HANDOFF")
    wait_until(lambda: len(_db_clients(new)) == 1, timeout=5,
               what="the transaction-mode client moved")
    assert moving.execute("SELECT 1").fetchone() == (1,)
    assert staying.execute("SHOW application_name").fetchone() == ("sess",)
    assert _local_port(staying) in _client_ports(old, "sess")  # still the old process's
    assert old.alive()
    staying.close()
    assert old.wait(15) == 0, old.log_tail()
    old.stopped_by_test = True


def test_bad_records_on_the_handoff_socket_are_refused(shoal, role, handoff_path):
    """The handoff socket's records are untrusted input: a malformed one closes the descriptor
    it carried, so does one of an older version (from a process of before the credentials), one
    without a descriptor is dropped, and the process serves on."""
    s = _instance(shoal, free_port(), 1, handoff_path)
    a, b = socket.socketpair()
    c1, c2 = socket.socketpair()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as ho:
        ho.connect(handoff_path)
        socket.send_fds(ho, [b"SHHO\x00\x02\x00\x00\x00\x00\x00\x0cjunk"], [b.fileno()])
        socket.send_fds(ho, [b"SHHO\x00\x01\x00\x00\x00\x00\x00\x0c"], [c2.fileno()])
        ho.send(b"SHHO no descriptor")
        b.close()
        c2.close()
        a.settimeout(5)
        c1.settimeout(5)
        assert a.recv(100) == b""  # closed without a word
        assert c1.recv(100) == b""
    wait_until(lambda: "without one descriptor" in s.log(), timeout=5, what="the third record")
    assert "length mismatch" in s.log(), s.log_tail()
    assert "unsupported handoff version" in s.log(), s.log_tail()
    c1.close()
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone() == (1,)
    a.close()


@pytest.mark.skipif(not HAPROXY, reason="haproxy is not installed")
def test_rolling_handoff_of_three_behind_haproxy_under_pgbench(shoal, pg, role_db, tmp_path):
    """Three instances behind HAProxy, each replaced in turn by a new one that its old one
    hands its clients to, under pgbench (TPC-B, clients connected throughout): 0 failed, 0
    aborted, every old instance gone before pgbench ends (its clients moved, none left to wait
    for), every committed transaction in the tables once."""
    role, dbname = role_db
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", "-h", pg.host, "-p", str(pg.port), "-U",
                    role, dbname], check=True, capture_output=True, timeout=60)
    ports = [free_port() for _ in range(3)]
    sock_dir = tempfile.mkdtemp(prefix="shoal-ho-")

    def instance(slot, generation):
        return shoal(databases={"db": {"dbname": dbname, "pool_size": 8}}, settings={
            "pool_mode": "transaction", "listen_port": ports[slot], "so_reuseport": 1,
            "peer_id": slot + 1 + 3 * generation, "shutdown_timeout": 20,
            "handoff_socket": os.path.join(sock_dir, "h%d.sock" % slot)})
    old = [instance(s, 0) for s in range(3)]
    h = HAProxy(tmp_path, ports)
    try:
        bench = subprocess.Popen(
            ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(h.port), "-U", role, "-T", "20", "-c",
             "6", "-j", "2", "db"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # (HAProxy's round robin may give an instance none under load: not assumed)
        wait_until(lambda: sum(len(_db_clients(i)) for i in old) == 6, timeout=10,
                   what="pgbench's clients on the old instances")
        new = []
        for slot in range(3):
            new.append(instance(slot, 1))
            with admin(old[slot]) as con:
                con.execute("HANDOFF")
            assert old[slot].wait(15) == 0, old[slot].log_tail()
            old[slot].stopped_by_test = True
        assert bench.poll() is None, "pgbench ended before the restart was over"
        out, _ = bench.communicate(timeout=30)
    finally:
        h.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert bench.returncode == 0, out
    assert "aborted" not in out and "error" not in out.lower(), out
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert failed is None or failed.group(1) == "0", out
    done = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    (rows, delta), = pg.sql("SELECT count(*), coalesce(sum(delta), 0) FROM pgbench_history",
                            dbname=dbname)
    (balance,), = pg.sql("SELECT sum(abalance) FROM pgbench_accounts", dbname=dbname)
    assert (rows, balance) == (done, delta), (rows, done, balance, delta)
    moved = sum(_handed(i) for i in old)
    assert moved == 6, moved  # each of pgbench's clients, once
    print("rolling handoff behind haproxy: %d transactions, 0 failed, %d handoffs" % (done, moved))


# -- the pool's credentials move with the client ---------------------------------------------


def _db_servers(s):
    with admin(s) as con:
        _, rows = show(con, "SERVERS")
    return [r for r in rows if r["database"] == "db"]


def _handoff_login(shoal, handoff_path, user, password, userlist=None, **settings):
    """user logs in on the old process (which learns the pool's server credentials from the
    login), is handed over, and its next query needs a new server login on the new process,
    which has no server for db at all. Returns the query's answer."""
    port = free_port()

    def instance(n):
        st = {"pool_mode": "transaction", "listen_port": port, "so_reuseport": 1,
              "peer_id": n, "handoff_socket": handoff_path, "shutdown_timeout": 10,
              "auth_type": "scram-sha-256"}
        st.update(settings)
        return shoal(databases={"db": {"dbname": "postgres"}}, settings=st, userlist=userlist)

    old = instance(1)
    c = old.connect("db", user, password=password)
    assert c.execute("SELECT current_user").fetchone() == (user,)
    new = instance(2)
    with admin(old) as con:
        con.execute("HANDOFF")
    assert old.wait(15) == 0, old.log_tail()
    old.stopped_by_test = True
    assert _local_port(c) in _client_ports(new), new.log_tail()
    assert _db_servers(new) == []  # nothing to reuse: the next query logs a server in
    try:
        answer = c.execute("SELECT current_user").fetchone()
    except psycopg.Error as e:
        answer = e
    assert [r["user"] for r in _db_servers(new)] == ([user] if answer == (user,) else [])
    return answer, old, new


def _no_secret_logged(old, new, *secrets):
    for s in (old, new):
        for secret in secrets:
            assert secret not in s.log()


@pytest.mark.parametrize("user,password", [("md5_user", MD5_PW), ("scram_user", SCRAM_PW)])
def test_handoff_moves_the_auth_query_password(shoal, pg, auth_user, handoff_path,  # noqa: F811
                                               user, password):
    """The pool's password came from auth_query on the old process (an md5 secret; a SCRAM
    secret with the pass-through keys): the new process's pool gets it with the client."""
    answer, old, new = _handoff_login(shoal, handoff_path, user, password,
                                      auth_user=auth_user, auth_query=LOOKUP,
                                      auth_type="md5" if user == "md5_user" else "scram-sha-256")
    assert answer == (user,), new.log_tail()
    _no_secret_logged(old, new, password, stored_secret(pg, user))


def test_handoff_moves_the_scram_pass_through_keys(shoal, pg, handoff_path):
    """auth_file holds PostgreSQL's SCRAM secret only: the old process's pool recovered the keys
    from the client's proof; the new process's pool gets them with the client."""
    secret = stored_secret(pg, "scram_user")
    answer, old, new = _handoff_login(shoal, handoff_path, "scram_user", SCRAM_PW,
                                      userlist={"scram_user": secret})
    assert answer == ("scram_user",), new.log_tail()
    _no_secret_logged(old, new, SCRAM_PW, secret)
