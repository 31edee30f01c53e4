"""Helpers for the cancel tests: raw-wire statements, bursts of CancelRequests, and a proxy in
front of PostgreSQL that holds cancels back so that their races can be staged on purpose."""
import socket
import struct
import threading
import time

from wire import CANCEL_REQUEST, parse_fields, query_message

# A statement that says it is running (a notice, which PostgreSQL flushes at once, unlike rows)
# and then runs until it is cancelled: a cancel sent after that notice can only land inside it.
LONG = "DO $$BEGIN RAISE NOTICE 'running'; PERFORM pg_sleep(30); END$$"


def wait_running(w, timeout=10):
    """Read up to LONG's notice."""
    w.sock.settimeout(timeout)
    while True:
        mtype, body = w.read_msg()
        if mtype == b"N":
            return
        if mtype in (b"E", b"Z"):
            raise AssertionError("statement ended before it said it runs: %r %r" % (mtype, body))


def read_result(w, timeout=10):
    """Messages up to ReadyForQuery: (number of rows, [error fields])."""
    w.sock.settimeout(timeout)
    rows, errors = 0, []
    while True:
        mtype, body = w.read_msg()
        if mtype == b"D":
            rows += 1
        elif mtype == b"E":
            errors.append(parse_fields(body))
        elif mtype == b"Z":
            return rows, errors


def start_long(w):
    w.send(query_message(LONG))
    wait_running(w)


def cancel_burst(host, port, key, n, timeout=10):
    """n CancelRequests for key, all connected first and then sent back to back; returns once
    the pooler has closed every one of them (a libpq client's wait)."""
    pid, secret = key
    socks = [socket.create_connection((host, port), timeout=timeout) for _ in range(n)]
    packet = struct.pack("!iiii", 16, CANCEL_REQUEST, pid, secret)
    for s in socks:
        s.sendall(packet)
    for s in socks:
        try:
            s.recv(1)
        except OSError:
            pass
        s.close()


def assert_cancelled(errors, what):
    assert [e.get("C") for e in errors] == ["57014"], "%s: %r" % (what, errors)


def assert_clean(errors, what):
    assert errors == [], "%s was cancelled or failed: %r" % (what, errors)


class CancelHoldingProxy:
    """A TCP proxy to PostgreSQL. Ordinary connections are piped through. A CancelRequest is
    held until `hold` of them have arrived, then forwarded after delays[i] (i: its arrival
    order); the pooler's side is closed only once PostgreSQL has closed its own, so the EOF the
    pooler sees still means "answered". `answered` counts those answers."""

    def __init__(self, pg, hold=1, delays=(0.0,)):
        self.pg = pg
        self.hold = hold
        self.delays = delays
        self.seen = 0
        self.answered = 0
        self.cond = threading.Condition()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.lsock.close()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv_exact(s, n):
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _serve(self, conn):
        try:
            first = self._recv_exact(conn, 8)
            length, code = struct.unpack("!ii", first)
            if length == 16 and code == CANCEL_REQUEST:
                self._cancel(conn, first + self._recv_exact(conn, 8))
            else:
                self._pipe(conn, first)
        except OSError:
            conn.close()

    def _cancel(self, conn, packet):
        with self.cond:
            i = self.seen
            self.seen += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.seen >= self.hold, timeout=20)
        time.sleep(self.delays[min(i, len(self.delays) - 1)])
        up = socket.create_connection((self.pg.host, self.pg.port), timeout=20)
        up.sendall(packet)
        try:
            up.recv(1)  # PostgreSQL closes once it has signalled the backend
        except OSError:
            pass
        up.close()
        with self.cond:
            self.answered += 1
            self.cond.notify_all()
        conn.close()

    def _pipe(self, conn, first):
        up = socket.create_connection((self.pg.host, self.pg.port), timeout=20)
        up.sendall(first)
        for s in (conn, up):
            s.settimeout(None)

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()
