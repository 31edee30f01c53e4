"""Minimal PostgreSQL v3 wire client for tests that need to see exact bytes.

psycopg hides the SQLSTATE of errors that arrive during login and cannot send malformed
messages; this module can. It speaks just enough protocol: startup (trust, cleartext and md5
authentication), simple queries, cancel requests, and reading raw messages.
"""
import hashlib
import socket
import struct
import time

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


def startup_packet(params):
    body = struct.pack("!i", PROTOCOL_3)
    for k, v in params.items():
        body += k.encode() + b"\0" + str(v).encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def message(mtype, payload=b""):
    return mtype + struct.pack("!i", len(payload) + 4) + payload


def query_message(sql):
    return message(b"Q", sql.encode() + b"\0")


def parse_fields(body):
    """ErrorResponse/NoticeResponse body -> {'S': ..., 'C': ..., 'M': ...}."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def md5_password(user, password, salt):
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


def send_cancel(host, port, pid, key, timeout=5):
    """Send a CancelRequest (key: a 32-bit int, or bytes of any length as protocol 3.2 allows);
    return once the pooler closed the socket (or after timeout)."""
    if isinstance(key, int):
        key = struct.pack("!i", key)
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(struct.pack("!iii", 12 + len(key), CANCEL_REQUEST, pid) + key)
        try:
            s.recv(1)
        except OSError:
            pass
    finally:
        s.close()


class Wire:
    def __init__(self, host="127.0.0.1", port=None, timeout=5.0, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.params = {}
        self.backend_key = None
        self.auth_codes = []

    # -- raw I/O -------------------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by peer")
            self.buf += chunk

    def recv_exact(self, n):
        self._fill(n)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_byte(self):
        return self.recv_exact(1)

    def read_msg(self):
        mtype = self.recv_exact(1)
        (length,) = struct.unpack("!i", self.recv_exact(4))
        body = self.recv_exact(length - 4)
        return mtype, body

    def is_closed(self, timeout=3.0):
        """True if the peer closes (EOF/reset) within timeout with no further data."""
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                return False
            try:
                chunk = self.sock.recv(1)
            except ConnectionResetError:
                return True
            if chunk:
                self.buf += chunk
                return False
            return True
        except socket.timeout:
            return False

    def wait_error(self, timeout=5.0):
        """Read messages until an ErrorResponse; return its fields. Raises Closed on EOF."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no ErrorResponse within %.1fs" % timeout)
            self.sock.settimeout(remaining)
            mtype, body = self.read_msg()
            if mtype == b"E":
                return parse_fields(body)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- protocol ------------------------------------------------------------------------
    def startup(self, user, database, password=None, **params):
        """Log in. Returns None on success (ReadyForQuery seen), else the ErrorResponse fields."""
        p = {"user": user, "database": database}
        p.update(params)
        self.send(startup_packet(p))
        while True:
            mtype, body = self.read_msg()
            if mtype == b"R":
                (code,) = struct.unpack("!i", body[:4])
                self.auth_codes.append(code)
                if code == 0:
                    continue
                if code == 3:
                    self.send(message(b"p", (password or "").encode() + b"\0"))
                elif code == 5:
                    pw = md5_password(user, password or "", body[4:8])
                    self.send(message(b"p", pw.encode() + b"\0"))
                else:
                    raise AssertionError("unsupported auth request %d" % code)
            elif mtype == b"S":
                k, v = body.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif mtype == b"K":
                self.backend_key = struct.unpack("!ii", body[:8])
            elif mtype == b"E":
                return parse_fields(body)
            elif mtype == b"Z":
                return None

    def query(self, sql):
        """Simple query. Returns (rows, error_fields_or_None, rfq_status); rfq_status is None
        when the connection was closed after the error."""
        self.send(query_message(sql))
        rows, error = [], None
        while True:
            try:
                mtype, body = self.read_msg()
            except Closed:
                if error is None:
                    raise
                return rows, error, None  # FATAL: error then close, no ReadyForQuery
            if mtype == b"D":
                (n,) = struct.unpack("!h", body[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", body[pos : pos + 4])
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(body[pos : pos + ln].decode())
                        pos += ln
                rows.append(tuple(row))
            elif mtype == b"E":
                error = parse_fields(body)
            elif mtype == b"Z":
                return rows, error, body.decode()
