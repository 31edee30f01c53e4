#!/usr/bin/python3
"""Memory under loads a client chooses: Shoal beside PgBouncer, in one run (issue 14).

Usage: bench/memory.py [--shoal build/shoal] [--only NAME,...]

Each scenario starts a fresh pooler (peak RSS only grows), measures its memory before, during
and after the load, and prints one table of the growth above the idle baseline, in MB:
- query_100mb: one 100 MB simple Query (peak, VmHWM).
- query_100mb_x10: ten of them at once (peak).
- bind_100mb: a Bind of a named prepared statement with a 100 MB parameter (peak).
- parse_100k: 100,000 named Parse of 1 KB from one client (resident after, RssAnon).
- parse_100mb_left: one 100 MB named Parse, then its client leaves (resident after it left).
- idle_plain_1000 / idle_tls_1000: 1,000 idle clients, plain and TLS (KB per client).
Both poolers run in transaction mode against one throwaway PostgreSQL 15; Shoal with its
defaults (max_prepared_statements = 200, message_inspect_limit = 1 MB).
"""
import argparse
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import common  # noqa: E402
from common import ROOT  # noqa: E402

MB = 1024 * 1024


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def msg(t, body):
    return t + struct.pack("!i", len(body) + 4) + body


class Client:
    """A raw protocol-3 client (trust auth), optionally over TLS."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        if tls:
            self.sock.sendall(struct.pack("!ii", 8, 80877103))
            assert self.sock.recv(1) == b"S"
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock)
        body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.buf = b""
        self.until_ready()

    def read_msg(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("closed")
            self.buf += chunk
        n = 1 + struct.unpack("!i", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m

    def until_ready(self, errors=None):
        """Read to ReadyForQuery; an ErrorResponse raises, or is appended (its SQLSTATE) to
        errors when given."""
        while True:
            m = self.read_msg()
            if m[:1] == b"E" and errors is not None:
                fields = dict((f[:1], f[1:]) for f in m[5:].split(b"\0") if f)
                errors.append(fields.get(b"C", b"?").decode())
            elif m[:1] == b"E":
                raise RuntimeError(m[5:].decode(errors="replace"))
            if m[:1] == b"Z":
                return

    def send_large(self, t, body):
        self.sock.sendall(t + struct.pack("!i", len(body) + 4))
        for i in range(0, len(body), 4 * MB):
            self.sock.sendall(body[i:i + 4 * MB])

    def close(self):
        self.sock.close()


def big_query(port):
    c = Client(port)
    c.send_large(b"Q", b"select length('" + b"y" * (100 * MB) + b"')\0")
    c.until_ready()
    c.close()


def sc_query_100mb(p):
    big_query(p.port)
    return status_kb(p.pid, "VmHWM")


def sc_query_100mb_x10(p):
    ts = [threading.Thread(target=big_query, args=(p.port,)) for _ in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return status_kb(p.pid, "VmHWM")


def sc_bind_100mb(p):
    c = Client(p.port)
    c.sock.sendall(msg(b"P", b"b\0select length($1::text)\0\0\0") + msg(b"D", b"Sb\0") +
                   msg(b"S", b""))
    c.until_ready()
    size = 100 * MB
    body = b"\0b\0" + struct.pack("!hhi", 0, 1, size)
    c.sock.sendall(b"B" + struct.pack("!i", 4 + len(body) + size + 2) + body)
    for _ in range(size // (4 * MB)):
        c.sock.sendall(b"z" * (4 * MB))
    c.sock.sendall(struct.pack("!h", 0) + msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
    c.until_ready()
    c.close()
    return status_kb(p.pid, "VmHWM")


NOTES = {}


def sc_parse_100k(p):
    """Batches of 1,000 Parses and a Sync; a Parse over max_client_prepared_bytes is refused
    (53200) and the rest of its batch skipped: the note says how many batches were."""
    c = Client(p.port)
    pad = "x" * 1000
    errors = []
    for start in range(0, 100_000, 1000):
        c.sock.sendall(b"".join(
            msg(b"P", b"s%d\0select '%s' || %d\0\0\0" % (i, pad.encode(), i))
            for i in range(start, start + 1000)) + msg(b"S", b""))
        c.until_ready(errors)
    kb = status_kb(p.pid, "RssAnon")
    c.close()
    if errors:
        NOTES.setdefault("parse_100k", []).append(
            "%s: %d of 100 batches refused (%s)" % (p.name, len(errors),
                                                    ",".join(sorted(set(errors)))))
    return kb


def sc_parse_100mb_left(p):
    c = Client(p.port)
    c.send_large(b"P", b"big\0select length('" + b"y" * (100 * MB) + b"')\0\0\0")
    c.sock.sendall(msg(b"S", b""))
    c.until_ready()
    c.close()
    time.sleep(1)
    return status_kb(p.pid, "RssAnon")


def idle_clients(p, tls):
    cs = [Client(p.port, tls) for _ in range(1000)]
    time.sleep(1)
    kb = status_kb(p.pid, "RssAnon")
    for c in cs:
        c.close()
    return kb


SCENARIOS = {
    "query_100mb": (sc_query_100mb, "VmHWM", "MB"),
    "query_100mb_x10": (sc_query_100mb_x10, "VmHWM", "MB"),
    "bind_100mb": (sc_bind_100mb, "VmHWM", "MB"),
    "parse_100k": (sc_parse_100k, "RssAnon", "MB"),
    "parse_100mb_left": (sc_parse_100mb_left, "RssAnon", "MB"),
    "idle_plain_1000": (lambda p: idle_clients(p, False), "RssAnon", "KB/client"),
    "idle_tls_1000": (lambda p: idle_clients(p, True), "RssAnon", "KB/client"),
}


def make_cert(d):
    key, crt = os.path.join(d, "server.key"), os.path.join(d, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)
    return key, crt


def start(name, pg, args, tls_files):
    ini = bench.COMMON_INI % dict(pg=pg.port, section=name, pool=4, maxc=2100)
    ini += "client_tls_sslmode = allow\nclient_tls_key_file = %s\nclient_tls_cert_file = %s\n" \
        % tls_files
    if name == "pgbouncer":
        ini += "logfile = @DIR@/pgbouncer.log\nlog_stats = 0\n"
        return bench.Pooler("pgbouncer", ["pgbouncer"], ini, user="postgres")
    ini += "stats_period = 0\n"
    return bench.Pooler("shoal", [args.shoal], ini)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    bench.raise_fd_limit()
    names = [n for n in SCENARIOS if not args.only or n in args.only.split(",")]
    pg = bench.Postgres(1)
    tmp = tempfile.mkdtemp(prefix="shoal-bench-mem-")
    os.chmod(tmp, 0o755)  # PgBouncer runs as postgres and reads the key
    tls_files = make_cert(tmp)
    rows = []
    try:
        for n in names:
            fn, key, unit = SCENARIOS[n]
            row = [n]
            for target in ("pgbouncer", "shoal"):
                p = start(target, pg, args, tls_files)
                try:
                    Client(p.port).close()  # one login: pools and arenas exist
                    base = status_kb(p.pid, key)
                    try:
                        after = fn(p)
                        grew = after - base
                        row.append("%.1f" % (grew / 1024 if unit == "MB" else grew / 1000))
                    except Exception as e:  # noqa: BLE001  a pooler that fails is reported
                        row.append("failed: %s" % str(e)[:60])
                finally:
                    p.stop()
            row.append(unit)
            rows.append(row)
            print("%-18s pgbouncer %-12s shoal %-12s %s" % tuple(row), flush=True)
    finally:
        pg.stop()
    print("\n| load | PgBouncer | Shoal | unit |\n|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s |" % tuple(r))
    for n, notes in NOTES.items():
        print("%s: %s" % (n, "; ".join(notes)))


if __name__ == "__main__":
    main()
