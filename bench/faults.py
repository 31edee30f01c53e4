#!/usr/bin/python3
"""The front door under faults (issue 16): each scenario against PgBouncer and Shoal on loopback,
one table: what clients saw, time to recover, the pooler's RSS and descriptors, log lines written
during the scenario, and committed rows lost.

Usage: bench/faults.py [--shoal build/shoal] [--only slow_logins,...] [--slow 600] [--names 1000]
                       [--nofile 128] [--fd-clients 300] [--storm 2000] [--entries 5000]
                       [--pool-names 5000]

Scenarios (all bounded, loopback only):
  slow_logins     N connections send one byte of a startup packet and stop; after 1.5 s a real
                  psql login is timed, then a console login (max_client_conn = 100 for both).
  second_instance a second pooler with the same configuration (same port): its exit code.
  wildcard_pools  N database names through "*" (server_idle_timeout = 1, autodb_idle_timeout =
                  20); RSS after the logins and once the pools are gone (or 60 s).
  pg_restart      new connections commit one row each in a loop; PostgreSQL is restarted
                  (pg_ctl restart -m fast): the longest time with no commit after the server is
                  back, and acknowledged rows missing afterwards.
  fd_limit        the pooler runs under RLIMIT_NOFILE = N (soft and hard, default 128) with
                  max_client_conn above it; M (default 300) raw logins, 20 at a time, all kept
                  open, each answer counted (ok, SQLSTATE, closed, none in 3 s); a psql login
                  while they hold the descriptors; then they close and the next login is timed.
  login_storm     2,000 logins (connect, startup, ReadyForQuery, Terminate), 20 at a time, while
                  a logged-in client runs SELECT 1 in a loop: logins per second, outcomes, and
                  the probe's latency before and during the storm.
  many_entries    5,000 [databases] entries before "*": the best of 5 console RELOADs (psql's
                  whole run), then login_storm to a name reached through "*".
  many_pools      5,000 names through "*", one login each (20 at a time): 5,000 live pools; then
                  login_storm to the last of them.
"""
import argparse
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import common  # noqa: E402
from common import PGBIN, ROOT, as_pg_user  # noqa: E402

# bench.py's settings (with connections logged, since log lines are counted here) plus a
# wildcard entry and the fault-related timeouts.
INI = (bench.COMMON_INI
       .replace("[%(section)s]", "* = host=127.0.0.1 port=%(pg)d dbname=postgres user=postgres\n"
                "[%(section)s]")
       .replace("log_connections = 0\nlog_disconnections = 0\n", "")
       + "admin_users = postgres\nserver_idle_timeout = 1\nautodb_idle_timeout = 20\n"
       "server_login_retry = 1\nlogfile = @DIR@/%(section)s.log\n")


def start(target, pg, args, name):
    """fd_limit: under prlimit (soft = hard = --nofile) and max_client_conn above it."""
    maxc = 100 if name != "fd_limit" else 2 * args.fd_clients
    ini = INI % dict(pg=pg.port, section="pgbouncer" if target == "pgbouncer" else "shoal",
                     pool=8, maxc=maxc)
    if name == "many_pools":  # every pool lives through the scenario
        ini = ini.replace("autodb_idle_timeout = 20", "autodb_idle_timeout = 600")
    if name == "many_entries":  # before *, so a scan passes every one
        ini = ini.replace("* = ", "".join("w%05d = host=127.0.0.1 port=%d dbname=postgres\n"
                                          % (i, pg.port) for i in range(args.entries))
                          + "* = ", 1)
    wrap = ["prlimit", "--nofile=%d:%d" % (args.nofile, args.nofile), "--"] \
        if name == "fd_limit" else []
    if target == "pgbouncer":
        return bench.Pooler("pgbouncer", wrap + ["pgbouncer"], ini, user="postgres")
    return bench.Pooler("shoal", wrap + [args.shoal], ini + "workers = 2\nstats_period = 0\n")


def psql(port, sql, db="postgres", timeout=10):
    t0 = time.monotonic()
    try:
        r = subprocess.run(["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(port), "-U",
                            "postgres", "-d", db, "-c", sql], capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    except subprocess.TimeoutExpired:
        return -1, "no answer in %d s" % timeout, time.monotonic() - t0
    return r.returncode, (r.stdout.strip() or r.stderr.strip()), time.monotonic() - t0


def log_lines(p):
    path = os.path.join(p.dir, p.name + ".log")
    try:
        with open(path, errors="replace") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def rss_mb(pid):
    return bench.proc_rss_kb(pid) / 1024


def short(msg, n=60):
    msg = msg.splitlines()[-1] if msg else ""
    return msg if len(msg) <= n else msg[:n - 3] + "..."


# ---- scenarios: each returns a dict of the table's columns ----------------------------------

def slow_logins(p, pg, args):
    socks = []
    try:
        for _ in range(args.slow):
            try:
                x = socket.create_connection(("127.0.0.1", p.port), timeout=5)
                x.sendall(b"\x00")
                socks.append(x)
            except OSError:
                break
        time.sleep(1.5)
        rc, out, took = psql(p.port, "SELECT 1")
        crc, cout, ctook = psql(p.port, "SHOW VERSION", db="pgbouncer")
        seen = "login %s in %.2f s; console %s" % (
            "ok" if rc == 0 else "FAILED (%s)" % short(out, 40), took,
            "ok" if crc == 0 else "FAILED")
        return dict(saw=seen, recover="%.2f" % took, rss=rss_mb(p.pid), fds=fds(p.pid))
    finally:
        for x in socks:
            x.close()


def second_instance(p, pg, args):
    ini = os.path.join(p.dir, p.name + ".ini")
    cmd = (["pgbouncer"] if p.name == "pgbouncer" else [args.shoal]) + [ini]
    if p.name == "pgbouncer" and os.geteuid() == 0:
        cmd = as_pg_user(cmd)
    env = dict(os.environ, SHOAL_ALLOW_ROOT="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=5)
        seen = "exit %d: %s" % (proc.returncode, short(out, 70))
    except subprocess.TimeoutExpired:
        seen = "STARTED (still running after 5 s)"
        os.killpg(proc.pid, 15)  # the group of the process started just above
        proc.communicate()
    rc, _, _ = psql(p.port, "SELECT 1")
    return dict(saw=seen + ("; first still serves" if rc == 0 else "; first BROKEN"),
                recover="-", rss=rss_mb(p.pid), fds=fds(p.pid))


def pool_count(p):
    rc, out, _ = psql(p.port, "SHOW POOLS", db="pgbouncer")
    return len(out.splitlines()) if rc == 0 else -1


def wildcard_pools(p, pg, args):
    base = rss_mb(p.pid)
    failed = 0
    for i in range(args.names):
        rc, _, _ = psql(p.port, "SELECT 1", db="w%d" % i)
        failed += rc != 0
    peak, pools = rss_mb(p.pid), pool_count(p)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and pool_count(p) > 3:
        time.sleep(1)
    gone = time.monotonic() - t0
    left = pool_count(p)
    return dict(saw="%d names, %d failed; %d pools -> %d" % (args.names, failed, pools, left),
                recover="%.1f" % gone if left <= 3 else ">60",
                rss="%.1f -> %.1f (base %.1f)" % (peak, rss_mb(p.pid), base), fds=fds(p.pid))


def pg_restart(p, pg, args):
    psql(pg.port, "CREATE TABLE IF NOT EXISTS fault_rows (id int primary key)")
    psql(pg.port, "TRUNCATE fault_rows")
    acked, stamps, stop = [], [], threading.Event()
    errors = {}

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            rc, out, _ = psql(p.port, "INSERT INTO fault_rows VALUES (%d) RETURNING id" % i)
            if rc == 0 and out.strip().splitlines()[:1] == [str(i)]:
                acked.append(i)
                stamps.append(time.monotonic())
            else:
                key = short(out, 50)
                errors[key] = errors.get(key, 0) + 1
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(1.5)
    subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", pg.data, "-m", "fast", "-w",
                               "restart", "-o", "-p %d -k %s -c max_connections=120 "
                               "-c fsync=off" % (pg.port, pg.dir)]),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    back = time.monotonic()
    time.sleep(4)
    stop.set()
    t.join()
    after = [s for s in stamps if s >= back]
    recover = (after[0] - back) if after else float("inf")
    rc, out, _ = psql(pg.port, "SELECT count(*) FROM fault_rows WHERE id = ANY('{%s}')"
                      % ",".join(map(str, acked)))
    lost = len(acked) - int(out) if rc == 0 else -1
    worst = max(errors.items(), key=lambda kv: kv[1])[0] if errors else "no error"
    return dict(saw="%d commits, %d errors (%s)" % (len(acked), sum(errors.values()), worst),
                recover="%.2f" % recover, rss=rss_mb(p.pid), fds=fds(p.pid), lost=lost)


def startup_packet(db):
    body = b"".join(x.encode() + b"\0" for x in ("user", "postgres", "database", db)) + b"\0"
    return struct.pack("!ii", 8 + len(body), 196608) + body


STARTUP = startup_packet("postgres")


def login_outcome(data):
    """What a raw login's bytes so far say: "ok" (ReadyForQuery), the SQLSTATE of an
    ErrorResponse, or None (incomplete)."""
    while len(data) >= 5:
        kind, n = data[:1], struct.unpack("!i", data[1:5])[0]
        if len(data) < 1 + n:
            return None
        if kind == b"Z":
            return "ok"
        if kind == b"E":
            fields = data[5:1 + n].split(b"\0")
            return next((f[1:].decode() for f in fields if f[:1] == b"C"), "E")
        data = data[1 + n:]
    return None


def raw_logins(port, n, deadline_s, startup=STARTUP):
    """n connections at once (non-blocking connects), each sends a startup packet once
    connected; waits up to deadline_s in all. Returns the sockets and a count per outcome (ok,
    SQLSTATE, closed, connect failed, no answer)."""
    sel, socks, seen = selectors.DefaultSelector(), [], {}
    for _ in range(n):
        x = socket.socket()
        x.setblocking(False)
        x.connect_ex(("127.0.0.1", port))
        socks.append(x)
        sel.register(x, selectors.EVENT_WRITE, bytearray())
    deadline = time.monotonic() + deadline_s
    while sel.get_map() and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            x, what = key.fileobj, None
            if ev & selectors.EVENT_WRITE:
                if x.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    what = "connect failed"
                else:
                    try:
                        x.send(startup)
                        sel.modify(x, selectors.EVENT_READ, key.data)
                    except OSError:
                        what = "closed"
            else:
                try:
                    chunk = x.recv(65536)
                except OSError:
                    chunk = b""
                key.data.extend(chunk)
                what = login_outcome(bytes(key.data)) if chunk else "closed"
            if what:
                seen[what] = seen.get(what, 0) + 1
                sel.unregister(x)
    left = len(sel.get_map())
    if left:
        seen["no answer"] = left
    sel.close()
    return socks, seen


def outcome_text(seen):
    return ", ".join("%d %s" % (v, k) for k, v in sorted(seen.items(), key=lambda kv: -kv[1]))


def time_to_login(port, limit_s=15):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        rc, _, _ = psql(port, "SELECT 1", timeout=5)
        if rc == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return float("inf")


def fd_limit(p, pg, args):
    """Started under RLIMIT_NOFILE = --nofile (soft and hard) with max_client_conn above it:
    --fd-clients logins, 20 at a time, all kept open; a psql login meanwhile; then all close
    and the next psql login is timed."""
    socks, seen = [], {}
    for _ in range(args.fd_clients // 20):  # 20 at a time: under the login budget
        more, got = raw_logins(p.port, 20, 3)
        socks += more
        for k, v in got.items():
            seen[k] = seen.get(k, 0) + v
    peak_fds, peak_rss = fds(p.pid), rss_mb(p.pid)
    rc, out, _ = psql(p.port, "SELECT 1", timeout=5)
    during = "ok" if rc == 0 else short(out.split("failed: ")[-1].strip(), 60)
    for x in socks:
        x.close()
    took = time_to_login(p.port)
    return dict(saw="%d logins: %s; psql while full: %s" % (args.fd_clients, outcome_text(seen),
                                                               during),
                recover="%.2f" % took, rss=peak_rss, fds=peak_fds)


def login_storm(p, pg, args, db="postgres"):
    """--storm logins to db, 20 at a time (connect, startup, ReadyForQuery, Terminate), while
    one logged-in client runs SELECT 1 in a loop: its latency before and during the storm."""
    probe = []
    stop = threading.Event()

    def prober():
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="postgres",
                             autocommit=True) as c:
            while not stop.is_set():
                t0 = time.monotonic()
                c.execute("SELECT 1")
                probe.append((t0, time.monotonic() - t0))
                time.sleep(0.005)
    t = threading.Thread(target=prober)
    t.start()
    time.sleep(1)
    seen, t0 = {}, time.monotonic()
    for _ in range(args.storm // 20):
        socks, got = raw_logins(p.port, 20, 5, startup_packet(db))
        for x in socks:
            try:
                x.sendall(b"X\0\0\0\4")
            except OSError:
                pass
            x.close()
        for k, v in got.items():
            seen[k] = seen.get(k, 0) + v
    took = time.monotonic() - t0
    peak_fds, peak_rss = fds(p.pid), rss_mb(p.pid)
    stop.set()
    t.join()

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")
    before = [d for s, d in probe if s < t0]
    during = [d for s, d in probe if t0 <= s < t0 + took]
    return dict(saw="%d logins in %.1f s (%.0f/s): %s; probe p50 %.2f -> %.2f ms, p99 %.2f -> "
                "%.2f ms" % (args.storm, took, args.storm / took, outcome_text(seen),
                             pct(before, 0.5), pct(during, 0.5), pct(before, 0.99),
                             pct(during, 0.99)),
                recover="%.2f" % time_to_login(p.port), rss=peak_rss, fds=peak_fds)


def many_entries(p, pg, args):
    """--entries [databases] entries before *: the best of 5 console RELOADs, then the login
    storm to a name reached through * (after every entry)."""
    reloads = []
    for _ in range(5):
        rc, out, took = psql(p.port, "RELOAD", db="pgbouncer")
        reloads.append(took if rc == 0 else float("inf"))
    psql(p.port, "SELECT 1", db="not_listed")  # its pool made before the storm
    r = login_storm(p, pg, args, db="not_listed")
    r["saw"] = "%d entries; RELOAD (psql) %.0f ms; %s" % (args.entries, min(reloads) * 1000,
                                                         r["saw"])
    return r


def many_pools(p, pg, args):
    """--pool-names database names through *, one raw login each (20 at a time): as many live
    pools; then the login storm to the last of them."""
    seen, t0 = {}, time.monotonic()
    for k in range(0, args.pool_names, 20):
        for i in range(k, min(k + 20, args.pool_names)):
            socks, got = raw_logins(p.port, 1, 5, startup_packet("p%05d" % i))
            for x in socks:
                x.close()
            for key, v in got.items():
                seen[key] = seen.get(key, 0) + v
    made = time.monotonic() - t0
    pools = pool_count(p)
    r = login_storm(p, pg, args, db="p%05d" % (args.pool_names - 1))
    r["saw"] = "%d names in %.0f s (%s), %d pools; %s" % (
        args.pool_names, made, outcome_text(seen), pools, r["saw"])
    return r


SCENARIOS = {"slow_logins": slow_logins, "second_instance": second_instance,
             "wildcard_pools": wildcard_pools, "pg_restart": pg_restart, "fd_limit": fd_limit,
             "login_storm": login_storm, "many_entries": many_entries, "many_pools": many_pools}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--targets", default="pgbouncer,shoal")
    ap.add_argument("--slow", type=int, default=600)
    ap.add_argument("--names", type=int, default=1000)
    ap.add_argument("--nofile", type=int, default=128)
    ap.add_argument("--fd-clients", type=int, default=300)
    ap.add_argument("--storm", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--pool-names", type=int, default=5000)
    args = ap.parse_args()
    pg = common.Postgres(1, opts="-c max_connections=120 -c fsync=off")
    rows = []
    try:
        for name in args.only.split(","):
            for target in args.targets.split(","):
                p = start(target, pg, args, name)
                try:
                    before = log_lines(p)
                    r = SCENARIOS[name](p, pg, args)
                    r["log"] = log_lines(p) - before
                finally:
                    p.stop()
                rows.append((name, target, r))
                print("%-15s %-9s done" % (name, target), file=sys.stderr)
    finally:
        pg.stop()
    head = ("scenario", "target", "what clients saw", "recover s", "RSS MB", "fds", "log lines",
            "lost rows")
    table = [head] + [(n, t, r["saw"], str(r["recover"]),
                       r["rss"] if isinstance(r["rss"], str) else "%.1f" % r["rss"],
                       str(r["fds"]), str(r["log"]), str(r.get("lost", "-")))
                      for n, t, r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
