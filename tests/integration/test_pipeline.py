"""The data path under pipelines far larger than the socket buffers (issue 14).

A raw-wire client writes a long pipeline from one thread while it reads the results in another,
as libpq's pipeline mode does. Every result must come back in order and byte-exact, in every
pool mode, with prepared statements on and off, whether the client reads fast or slowly; and
neither direction may stall waiting for the other (docs/internals.md, "Flow control").
"""
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import SHOAL_BIN
from helpers import db_entry, wait_until
from txnwire import bind, connect, execute, parse, read_until_ready, sync
from wire import message, query_message

MODES = ["transaction", "session", "statement"]
PQPIPE = os.path.join(os.path.dirname(os.path.abspath(SHOAL_BIN)), "tests", "pipeline", "pqpipe")


class PipelineReader:
    """Reads messages off a socket in bulk and checks them against the expected stream."""

    def __init__(self, sock, deadline, slow=False):
        self.sock = sock
        self.deadline = deadline
        self.slow = slow
        self.buf = bytearray()
        self.counts = {}
        self.values = []
        self.errors = []
        self.ready = None

    def _more(self):
        self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))
        chunk = self.sock.recv(256 * 1024 if not self.slow else 8192)
        if not chunk:
            raise AssertionError("connection closed; counts so far %r" % self.counts)
        self.buf += chunk
        if self.slow:
            time.sleep(0.0005)

    def run(self):
        """Until the ReadyForQuery that ends the pipeline."""
        pos = 0
        while self.ready is None:
            if len(self.buf) - pos < 5:
                del self.buf[:pos]
                pos = 0
                self._more()
                continue
            t = self.buf[pos]
            (n,) = struct.unpack_from("!i", self.buf, pos + 1)
            if len(self.buf) - pos < n + 1:
                del self.buf[:pos]
                pos = 0
                self._more()
                continue
            body = bytes(self.buf[pos + 5:pos + 1 + n])
            pos += n + 1
            c = chr(t)
            self.counts[c] = self.counts.get(c, 0) + 1
            if c == "D":
                (ln,) = struct.unpack_from("!i", body, 2)
                self.values.append(int(body[6:6 + ln]))
            elif c == "E":
                self.errors.append(body)
            elif c == "Z":
                self.ready = body.decode()


def run_pipeline(w, chunks, slow=False, timeout=120):
    """Send the byte chunks from a writer thread while reading; return the reader."""
    deadline = time.monotonic() + timeout
    reader = PipelineReader(w.sock, deadline, slow)
    failure = []

    def write():
        try:
            for c in chunks:
                w.sock.sendall(c)
        except OSError as e:
            failure.append(e)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    reader.run()
    t.join(max(0.1, deadline - time.monotonic()))
    assert not t.is_alive(), "the writer is still blocked after the last result"
    assert not failure, failure
    return reader


def pipeline_shoal(shoal, pg, mode, ps):
    return shoal(databases={"db": db_entry(pg, pool_size=2)},
                 settings={"pool_mode": mode, "max_prepared_statements": 200 if ps else 0,
                           "query_wait_timeout": 30})


def assert_pipeline_results(r, n):
    assert not r.errors, r.errors[:3]
    assert r.ready == "I"
    assert r.counts.get("2") == n and r.counts.get("C") == n, r.counts
    assert r.values == [i + 1 for i in range(n)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ps", [True, False], ids=["ps_on", "ps_off"])
@pytest.mark.parametrize("kind", ["named", "unnamed"])
def test_libpq_pipeline_200k(shoal, pg, mode, ps, kind):
    """The issue's libpq program (tests/pipeline/pqpipe.c): PQsendQueryPrepared (or
    PQsendQueryParams) 200,000 times in non-blocking pipeline mode while reading results, one
    Sync at the end. Before the fix, Shoal sent PostgreSQL a Bind of length 0 within it."""
    s = pipeline_shoal(shoal, pg, mode, ps)
    dsn = "host=%s port=%d user=postgres dbname=db" % (s.host, s.port)
    r = subprocess.run([PQPIPE, dsn, "200000", kind], capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0 and r.stdout.strip() == "ok 200000", r.stdout + r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_slow_reader_pipeline_of_unnamed_statements(shoal, pg, mode):
    """Results far beyond the socket buffers to a client that reads slowly, while it is still
    writing: Shoal must keep reading the client's requests it can forward and stop only the
    side that feeds a full buffer."""
    s = pipeline_shoal(shoal, pg, mode, True)
    w = connect(s)
    n = 20_000
    pad = "x" * 200

    def chunks():
        for start in range(0, n, 1000):
            yield b"".join(parse("", "select $1::int + 1, '%s'" % pad) + bind("", [i]) + execute()
                           for i in range(start, start + 1000))
        yield sync()

    r = run_pipeline(w, chunks(), slow=True)
    assert_pipeline_results(r, n)
    w.close()


@pytest.mark.parametrize("mode", MODES)
def test_copy_both_ways_larger_than_socket_buffers(shoal, pg, mode):
    """COPY FROM STDIN of 20 MB written while reading, then COPY TO STDOUT of the same rows
    read slowly: byte-exact both ways."""
    pg.sql("DROP TABLE IF EXISTS pipe_copy")
    pg.sql("CREATE TABLE pipe_copy (i int, t text)")
    s = pipeline_shoal(shoal, pg, mode, True)
    w = connect(s, dbname="db")
    n = 100_000
    rows = [b"%d\t%s\n" % (i, b"y" * 190) for i in range(n)]
    w.send(query_message("copy pipe_copy from stdin"))
    t, _ = w.read_msg()
    assert t == b"G"

    def copy_chunks():
        for start in range(0, n, 2000):
            yield message(b"d", b"".join(rows[start:start + 2000]))
        yield message(b"c")

    writer = threading.Thread(target=lambda: [w.sock.sendall(c) for c in copy_chunks()],
                              daemon=True)
    writer.start()
    w.sock.settimeout(60)
    msgs = read_until_ready(w)
    writer.join(10)
    assert [k for k, _ in msgs] == ["C", "Z"], msgs[:3]
    assert msgs[0][1] == b"COPY %d\0" % n
    w.send(query_message("copy pipe_copy to stdout"))
    got = bytearray()
    while True:
        t, body = w.read_msg()
        if t == b"d":
            got += body
            if len(got) % 65536 < len(body):
                time.sleep(0.001)  # a slow reader
        elif t == b"Z":
            break
        else:
            assert t in (b"H", b"c", b"C"), (t, body[:100])
    assert bytes(got) == b"".join(rows)
    w.close()


def test_client_killed_mid_pipeline_frees_its_server(shoal, pg):
    """A client that dies with results unread and requests unsent: its server is closed (it is
    inside a transaction), so its locks go and the next transaction runs."""
    pg.sql("DROP TABLE IF EXISTS pipe_lock")
    pg.sql("CREATE TABLE pipe_lock (i int)")
    s = pipeline_shoal(shoal, pg, "transaction", True)
    w = connect(s)
    w.send(parse("ins", "insert into pipe_lock values ($1)") + sync())
    read_until_ready(w)
    w.send(query_message("begin; lock table pipe_lock"))
    read_until_ready(w)

    def chunks():
        for start in range(0, 400_000, 2000):
            yield b"".join(bind("ins", [i]) + execute() for i in range(start, start + 2000))

    def write():
        try:
            for c in chunks():
                w.sock.sendall(c)
        except OSError:
            pass

    t = threading.Thread(target=write, daemon=True)
    t.start()
    time.sleep(0.5)  # let the pipeline fill every buffer on the way
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.sock.close()  # reset: unread results, unsent requests
    t.join(10)
    other = connect(s)
    other.sock.settimeout(15)
    rows, err, status = other.query("lock table pipe_lock; select count(*) from pipe_lock")
    assert err is None and status == "I", err
    assert rows == [("0",)]  # the dead client's transaction was rolled back
    other.close()


def test_server_lost_mid_message_is_never_spliced(shoal, pg):
    """A server that dies while one of its messages is half forwarded: the client gets the
    part that arrived and then the end of the connection, never an ErrorResponse of Shoal's
    inside the message (clients reported 'lost synchronization with server: got message type
    "t", length 1397113172', the bytes of "SFAT")."""
    s = pipeline_shoal(shoal, pg, "transaction", True)
    w = connect(s)
    rows, err, _ = w.query("begin; select pg_backend_pid()")
    assert err is None
    pid = int(rows[0][0])
    size = 40_000_000
    w.send(query_message("select repeat('x', %d)" % size))
    t, _ = w.read_msg()
    assert t == b"T"
    t = w.read_byte()
    (length,) = struct.unpack("!i", w.recv_exact(4))
    assert t == b"D" and length > size
    w.recv_exact(100_000)  # then stop reading: Shoal pauses the server
    # Killed while blocked in its write, the backend dies at once, mid-row; killed between two
    # writes it may send the whole row first once the client drains (a CI run got all 40 MB
    # and then the FATAL, correctly forwarded after it).
    wait_until(lambda: pg.sql("select wait_event from pg_stat_activity where pid = %d" % pid)
               == [("ClientWrite",)], timeout=10, what="the backend blocked in its write")
    pg.sql("select pg_terminate_backend(%d)" % pid)
    got = bytearray(w.buf)
    w.buf = b""
    w.sock.settimeout(30)
    while True:
        try:
            chunk = w.sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    rest = length - 4 - 100_000
    assert len(got) < rest, "the whole row arrived: the server was not cut mid-message"
    assert b"SFATAL" not in got and b"server connection lost" not in got
    assert set(got) <= set(b"x"), "bytes other than the row's inside the row"
    w.close()
