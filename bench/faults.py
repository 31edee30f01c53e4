#!/usr/bin/python3
"""The front door under faults (issue 16): each scenario against PgBouncer and Shoal on loopback,
one table: what clients saw, time to recover, the pooler's RSS and descriptors, log lines written
during the scenario, and committed rows lost.

Usage: bench/faults.py [--shoal build/shoal] [--only slow_logins,...] [--slow 1000] [--names 5000]
                       [--autodb 90] [--nofile 128] [--fd-clients 300] [--storm 2000]
                       [--entries 5000] [--pool-names 5000] [--reloads 100] [--flood 500]
                       [--flood-conc 50] [--auth-failure-limit 0]

Scenarios (all bounded, loopback only):
  slow_logins     N connections send one byte of a startup packet and stop; from 1.5 s on, a psql
                  login every 0.5 s for 10 s (the slowest, the failures), then a console login
                  (max_client_conn = 100 for both).
  second_instance a second pooler with the same configuration (same port): its exit code.
  wildcard_pools  N database names through "*", one raw login each, 20 at a time
                  (server_idle_timeout = 1, autodb_idle_timeout = --autodb, longer than the
                  logins take): RSS before, at the peak, and once the pools are freed.
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
  console_reload  100 console RELOADs one after another on one raw connection, each timed.
  bad_passwords   auth_type = md5: --storm logins with wrong answers (half md5, half SCRAM
                  users), 20 at a time, while a logged-in client runs SELECT 1 and a real login is
                  made every 0.2 s; outcomes, the real logins' times, the most times one log line
                  was written within a second. --auth-failure-limit N sets Shoal's throttle.
  scram_flood     auth_type = scram-sha-256: --flood right-password SCRAM logins of the user with
                  a plaintext secret, --flood-conc at a time; the probe's latency.
  scram_timing    auth_type = scram-sha-256: wrong SCRAM proofs for an unknown user, a plaintext
                  secret and a SCRAM secret, 200 each: median client-first -> server-first time
                  and whole-login time.
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
    if name == "wildcard_pools":
        ini = ini.replace("autodb_idle_timeout = 20", "autodb_idle_timeout = %d" % args.autodb)
    if name == "many_pools":  # every pool lives through the scenario
        ini = ini.replace("autodb_idle_timeout = 20", "autodb_idle_timeout = 600")
    if name == "many_entries":  # before *, so a scan passes every one
        ini = ini.replace("* = ", "".join("w%05d = host=127.0.0.1 port=%d dbname=postgres\n"
                                          % (i, pg.port) for i in range(args.entries))
                          + "* = ", 1)
    if name in AUTH_TYPE:  # users with plain, md5 and SCRAM secrets (auth_file_text)
        ini = ini.replace("auth_type = trust", "auth_type = " + AUTH_TYPE[name]) \
                 .replace("auth_file = @DIR@/userlist.txt", "auth_file = " + args.auth_file)
    wrap = ["prlimit", "--nofile=%d:%d" % (args.nofile, args.nofile), "--"] \
        if name == "fd_limit" else []
    if target == "pgbouncer":
        return bench.Pooler("pgbouncer", wrap + ["pgbouncer"], ini, user="postgres")
    if args.auth_failure_limit:  # Shoal's failed-login throttle (PgBouncer has none)
        ini += "auth_failure_limit = %d\n" % args.auth_failure_limit
    return bench.Pooler("shoal", wrap + [args.shoal], ini + "workers = 2\nstats_period = 0\n")


AUTH_TYPE = {"bad_passwords": "md5", "scram_flood": "scram-sha-256",
             "scram_timing": "scram-sha-256"}


def psql(port, sql, db="postgres", timeout=10):
    t0 = time.monotonic()
    try:
        r = subprocess.run(["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(port), "-U",
                            "postgres", "-d", db, "-c", sql], capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, PGCONNECT_TIMEOUT="10",
                                                     PGPASSWORD=PASSWORD))
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
    """--slow connections each send one byte of a startup packet and stop; from 1.5 s on, a psql
    login every 0.5 s for 10 s: the slowest and the failures; then a console login."""
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
        took, failed, t0 = [], [], time.monotonic()
        while time.monotonic() - t0 < 10:
            rc, out, t = psql(p.port, "SELECT 1")
            if rc == 0:
                took.append(t)
            else:
                failed.append(out.split("FATAL:")[-1].strip())
            time.sleep(0.5)
        crc, cout, ctook = psql(p.port, "SHOW VERSION", db="pgbouncer")
        closed = 0
        for x in socks:  # how many slow ones the pooler has answered (an error) or closed
            x.setblocking(False)
            try:
                x.recv(1)
                closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        seen = "%d slow held %d, cut %d; %d logins ok, slowest %.2f s, %d failed%s; console %s" % (
            args.slow, len(socks), closed, len(took), max(took) if took else float("nan"),
            len(failed), " (%s)" % short(failed[0], 40) if failed else "",
            "ok" if crc == 0 else "FAILED")
        return dict(saw=seen, recover="%.2f" % max(took) if took and not failed else "-",
                    rss=rss_mb(p.pid), fds=fds(p.pid))
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
    """--names database names through *, one raw login each, 20 at a time (faster than
    autodb_idle_timeout, so all are live at once): RSS before, at the peak, and once the janitor
    has freed the pools (or 60 s past the timeout)."""
    base, seen, t0 = rss_mb(p.pid), {}, time.monotonic()
    for k in range(0, args.names, 20):
        socks, got = raw_logins(p.port, min(20, args.names - k), 5,
                                [startup_packet("w%05d" % i)
                                 for i in range(k, min(k + 20, args.names))])
        end_logins(socks, got, seen)
    made = time.monotonic() - t0
    peak, pools = rss_mb(p.pid), pool_count(p)
    t1 = time.monotonic()
    while time.monotonic() - t1 < args.autodb + 60 and pool_count(p) > 3:
        time.sleep(1)
    gone = time.monotonic() - t1
    left = pool_count(p)
    time.sleep(1.5)  # the janitor's second after the last free
    after = rss_mb(p.pid)
    return dict(saw="%d names in %.0f s (%s); %d pools -> %d; RSS %+.2f MB over base" % (
                    args.names, made, outcome_text(seen), pools, left, after - base),
                recover="%.1f" % gone if left <= 3 else ">%d" % (args.autodb + 60),
                rss="%.1f -> %.1f -> %.1f" % (base, peak, after), fds=fds(p.pid))


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


def pg_down(p, pg, args):
    """PostgreSQL stopped: how fast new clients hear about it (10 psql, one after another, a
    second apart so that later ones meet the pool's failing logins), then how soon after the
    server is back a query succeeds."""
    psql(p.port, "SELECT 1")  # a pool with a server that will die
    pg_ctl = [PGBIN + "/pg_ctl", "-D", pg.data, "-m", "fast", "-w"]
    subprocess.run(as_pg_user(pg_ctl + ["stop"]), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    took, said = [], []
    for _ in range(10):
        rc, out, t = psql(p.port, "SELECT 1", timeout=30)
        took.append(t)
        errs = [l for l in out.splitlines() if "FATAL" in l or "ERROR" in l]
        said.append(short(errs[0].split("FATAL:")[-1].split("ERROR:")[-1].strip(), 70)
                    if errs else short(out, 70))
        time.sleep(max(0.0, 1 - t))
    subprocess.run(as_pg_user(pg_ctl + ["start", "-o", "-p %d -k %s -c max_connections=120 "
                                        "-c fsync=off" % (pg.port, pg.dir)]),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    back = time.monotonic()
    while psql(p.port, "SELECT 1", timeout=30)[0] != 0 and time.monotonic() - back < 30:
        time.sleep(0.05)
    recover = time.monotonic() - back
    later = max(range(1, 10), key=lambda i: took[i])
    return dict(saw="server down: 1st new client %.2f s (%s); the 9 after it: max %.2f s (%s)"
                    % (took[0], said[0], took[later], said[later]),
                recover="%.2f" % recover, rss=rss_mb(p.pid), fds=fds(p.pid))


def startup_packet(db, user="postgres"):
    body = b"".join(x.encode() + b"\0" for x in ("user", user, "database", db)) + b"\0"
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


def end_logins(socks, got, seen):
    """Terminate and close raw_logins' sockets; add its outcome counts to seen."""
    for x in socks:
        try:
            x.sendall(b"X\0\0\0\4")
        except OSError:
            pass
        x.close()
    for k, v in got.items():
        seen[k] = seen.get(k, 0) + v


def raw_logins(port, n, deadline_s, startup=STARTUP):
    """n connections at once (non-blocking connects), each sends a startup packet once
    connected; waits up to deadline_s in all. Returns the sockets and a count per outcome (ok,
    SQLSTATE, closed, connect failed, no answer)."""
    sel, socks, seen = selectors.DefaultSelector(), [], {}
    startups = startup if isinstance(startup, list) else [startup] * n
    for i in range(n):
        x = socket.socket()
        x.setblocking(False)
        x.connect_ex(("127.0.0.1", port))
        socks.append(x)
        sel.register(x, selectors.EVENT_WRITE, [bytearray(), startups[i]])
    deadline = time.monotonic() + deadline_s
    while sel.get_map() and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            x, what = key.fileobj, None
            if ev & selectors.EVENT_WRITE:
                if x.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    what = "connect failed"
                else:
                    try:
                        x.send(key.data[1])
                        sel.modify(x, selectors.EVENT_READ, key.data)
                    except OSError:
                        what = "closed"
            else:
                try:
                    chunk = x.recv(65536)
                except OSError:
                    chunk = b""
                key.data[0].extend(chunk)
                what = login_outcome(bytes(key.data[0])) if chunk else "closed"
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
        end_logins(socks, got, seen)
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


def raw_console(port):
    """A logged-in console connection (trust), read up to its ReadyForQuery."""
    x = socket.create_connection(("127.0.0.1", port), timeout=10)
    x.sendall(startup_packet("pgbouncer"))
    buf = b""
    while login_outcome(buf) is None:
        chunk = x.recv(65536)
        if not chunk:
            raise OSError("console closed the connection")
        buf += chunk
    return x


def simple_query(x, sql):
    """One simple query; its outcome ("ok" at ReadyForQuery, or an error's SQLSTATE)."""
    body = sql.encode() + b"\0"
    x.sendall(b"Q" + struct.pack("!i", 4 + len(body)) + body)
    buf = b""
    while True:
        chunk = x.recv(65536)
        if not chunk:
            return "closed"
        buf += chunk
        what = login_outcome(buf)  # the first E or the Z, whichever comes first
        if what is not None:
            while not buf.endswith(b"Z\0\0\0\5I") and what != "ok":
                more = x.recv(65536)
                if not more:
                    break
                buf += more
            return what


def console_reload(p, pg, args):
    """--reloads console RELOADs one after another on one raw console connection (no psql
    start-up in the figure): the time from sending each to its ReadyForQuery."""
    x = raw_console(p.port)
    took, seen = [], {}
    try:
        for _ in range(args.reloads):
            t0 = time.monotonic()
            what = simple_query(x, "RELOAD")
            took.append(time.monotonic() - t0)
            seen[what] = seen.get(what, 0) + 1
    finally:
        x.close()
    took.sort()
    return dict(saw="%d RELOADs (%s): p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
                    args.reloads, outcome_text(seen), took[len(took) // 2] * 1000,
                    took[min(len(took) - 1, int(0.99 * len(took)))] * 1000, took[-1] * 1000),
                recover="-", rss=rss_mb(p.pid), fds=fds(p.pid))


# ---- password logins by hand (md5 and SCRAM), so that each step is timed and a wrong password
# costs the client nothing ----------------------------------------------------------------------

PASSWORD = "pw-front16"
USERS = ("u_plain", "u_md5", "u_scram")  # their auth_file secrets: plain, md5, SCRAM


def scram_secret(password, salt=b"front16-salt-16b", iters=4096):
    import base64
    import hashlib
    import hmac
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iters, b64(salt), b64(stored), b64(server))


def auth_file_text():
    import hashlib
    md5 = "md5" + hashlib.md5((PASSWORD + "u_md5").encode()).hexdigest()
    return ('"postgres" "%s"\n"u_plain" "%s"\n"u_md5" "%s"\n"u_scram" "%s"\n'
            % (PASSWORD, PASSWORD, md5, scram_secret(PASSWORD)))


def read_msg(x, buf):
    """The next backend message (kind, body) from socket x; buf holds bytes read ahead."""
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
        chunk = x.recv(65536)
        if not chunk:
            raise EOFError
        buf.extend(chunk)
    n = struct.unpack("!i", buf[1:5])[0]
    kind, body = bytes(buf[:1]), bytes(buf[5:1 + n])
    del buf[:1 + n]
    return kind, body


def send_msg(x, kind, body):
    x.sendall(kind + struct.pack("!i", 4 + len(body)) + body)


_SALTED = {}


def scram_proof(password, first_bare, server_first, final_bare):
    import base64
    import hashlib
    import hmac
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    key = (attrs["s"], attrs["i"])
    if key not in _SALTED:  # the client's PBKDF2 once per salt: the flood measures the pooler
        _SALTED[key] = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                           base64.b64decode(attrs["s"]), int(attrs["i"]))
    ck = hmac.digest(_SALTED[key], b"Client Key", "sha256")
    sig = hmac.digest(hashlib.sha256(ck).digest(),
                      ("%s,%s,%s" % (first_bare, server_first, final_bare)).encode(), "sha256")
    return base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()


def password_login(port, user, password=None, db="postgres", keep=False):
    """One login by hand: password None sends a wrong answer (md5 or SCRAM proof) without
    computing anything. Returns (outcome: "ok", a SQLSTATE or "closed"; the seconds from the
    client-first-message to the server-first-message, or None; the whole login's seconds)."""
    import base64
    import hashlib
    t0, step = time.monotonic(), None
    x = socket.create_connection(("127.0.0.1", port), timeout=30)
    buf = bytearray()
    try:
        x.sendall(startup_packet(db, user))
        first_bare = nonce = None
        while True:
            kind, body = read_msg(x, buf)
            if kind == b"E":
                fields = body.split(b"\0")
                return next((f[1:].decode() for f in fields if f[:1] == b"C"), "E"), step, \
                    time.monotonic() - t0
            if kind == b"Z":
                return "ok", step, time.monotonic() - t0
            if kind != b"R":
                continue
            code = struct.unpack("!i", body[:4])[0]
            if code == 3:
                send_msg(x, b"p", (password or "wrong").encode() + b"\0")
            elif code == 5:
                h = hashlib.md5
                inner = h(((password or "wrong") + user).encode()).hexdigest()
                send_msg(x, b"p", ("md5" + h(inner.encode() + body[4:8]).hexdigest())
                         .encode() + b"\0")
            elif code == 10:
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = "n=,r=" + nonce
                msg = ("n,," + first_bare).encode()
                send_msg(x, b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(msg)) + msg)
                t1 = time.monotonic()
            elif code == 11:
                step = time.monotonic() - t1
                server_first = body[4:].decode()
                r = dict(kv.split("=", 1) for kv in server_first.split(","))["r"]
                final_bare = "c=biws,r=" + r
                proof = scram_proof(password, first_bare, server_first, final_bare) \
                    if password else base64.b64encode(os.urandom(32)).decode()
                send_msg(x, b"p", (final_bare + ",p=" + proof).encode())
    except (EOFError, OSError):
        return "closed", step, time.monotonic() - t0
    finally:
        if not keep:
            try:
                x.sendall(b"X\0\0\0\4")
            except OSError:
                pass
            x.close()


def log_repeats(p, start_line):
    """The most times one log line (digits and addresses masked) was written within one
    second, from line start_line on; and that line."""
    import re
    path = os.path.join(p.dir, p.name + ".log")
    counts = {}
    try:
        with open(path, errors="replace") as f:
            for k, line in enumerate(f):
                if k < start_line or len(line) < 20:
                    continue
                text = re.sub(r"^[.\d]* \w+ \[\d+\] ", "", line[19:].strip())
                key = (line[:19], re.sub(r"0x[0-9a-f]+|\d+", "#", text))
                counts[key] = counts.get(key, 0) + 1
    except FileNotFoundError:
        return 0, ""
    if not counts:
        return 0, ""
    (sec, text), n = max(counts.items(), key=lambda kv: kv[1])
    return n, text


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def storm(p, n, conc, one_login, real_login=None):
    """n logins by conc threads (one_login(i) -> outcome) while a logged-in client runs SELECT 1
    every 5 ms and, if real_login, a real login (-> (outcome, seconds)) is made every 0.05 s.
    Returns outcomes, seconds, probe latencies before and during, real logins' results."""
    import concurrent.futures
    probe, real, stop = [], [], threading.Event()

    def prober():
        import psycopg
        try:
            with psycopg.connect(host="127.0.0.1", port=p.port, user="u_plain",
                                 password=PASSWORD, dbname="postgres", autocommit=True,
                                 sslmode="disable") as c:
                while not stop.is_set():
                    t0 = time.monotonic()
                    c.execute("SELECT 1")
                    probe.append((t0, time.monotonic() - t0))
                    time.sleep(0.005)
        except Exception as e:  # shown: the probe's figures are then missing
            print("probe failed: %s" % e, file=sys.stderr)

    def realer():
        while not stop.is_set():
            real.append(real_login())
            time.sleep(0.05)
    threads = [threading.Thread(target=prober)] + \
        ([threading.Thread(target=realer)] if real_login else [])
    threads[0].start()
    time.sleep(1)
    for t in threads[1:]:
        t.start()
    seen, t0 = {}, time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        for what in ex.map(one_login, range(n)):
            seen[what] = seen.get(what, 0) + 1
    took = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join()
    before = [d for s, d in probe if s < t0]
    during = [d for s, d in probe if t0 <= s < t0 + took]
    return seen, took, before, during, real


def bad_passwords(p, pg, args):
    """--storm logins with wrong passwords, half to the md5 user, half to the SCRAM user, 20 at
    a time; a real login (right password) every 0.05 s meanwhile."""
    seen, took, before, during, real = storm(
        p, args.storm, 20,
        lambda i: password_login(p.port, "u_md5" if i % 2 else "u_scram")[0],
        lambda: password_login(p.port, "u_plain", PASSWORD)[::2])
    ok = [t for what, t in real if what == "ok"]
    bad = [what for what, t in real if what != "ok"]
    reps, line = log_repeats(p, p.log_before)
    return dict(saw="%d wrong (md5/SCRAM) in %.1f s (%.0f/s): %s; real logins %d ok (p50 %.1f, "
                "max %.1f ms), %d refused%s; probe p99 %.2f -> %.2f ms; one line x%d in 1 s%s" % (
                    args.storm, took, args.storm / took, outcome_text(seen), len(ok),
                    pct(ok, 0.5), max(ok) * 1000 if ok else float("nan"), len(bad),
                    " (%s)" % bad[0] if bad else "", pct(before, 0.99), pct(during, 0.99),
                    reps, " (%s)" % short(line, 50) if reps > 1 else ""),
                recover="%.2f" % time_to_login(p.port), rss=rss_mb(p.pid), fds=fds(p.pid))


def scram_flood(p, pg, args):
    """--flood SCRAM logins with the right password for the user with a plaintext secret (the
    pooler runs PBKDF2 for each), --flood-conc at a time, while a logged-in client runs SELECT 1:
    its latency before and during."""
    seen, took, before, during, _ = storm(
        p, args.flood, args.flood_conc,
        lambda i: password_login(p.port, "u_plain", PASSWORD)[0])
    return dict(saw="%d SCRAM logins, %d at a time, in %.1f s (%.0f/s): %s; probe p50 %.2f -> "
                "%.2f ms, p99 %.2f -> %.2f ms" % (
                    args.flood, args.flood_conc, took, args.flood / took, outcome_text(seen),
                    pct(before, 0.5), pct(during, 0.5), pct(before, 0.99), pct(during, 0.99)),
                recover="-", rss=rss_mb(p.pid), fds=fds(p.pid))


def scram_timing(p, pg, args):
    """SCRAM with a wrong proof for an unknown user, the user with a plaintext secret and the
    one with a SCRAM secret, interleaved, 200 each: the median time from client-first-message
    to server-first-message, and of the whole failed login."""
    firsts, wholes = {}, {}
    kinds = (("unknown", "nobody_here"), ("plain", "u_plain"), ("SCRAM", "u_scram"))
    for _ in range(200):
        for label, user in kinds:
            what, step, whole = password_login(p.port, user)
            if step is not None:
                firsts.setdefault(label, []).append(step)
            wholes.setdefault(label, []).append(whole)
    return dict(saw="; ".join("%s: first %.0f us, login %.0f us" % (
                    label, pct(firsts.get(label, []), 0.5) * 1000, pct(wholes[label], 0.5) * 1000)
                    for label, _ in kinds) + " (medians of 200)",
                recover="-", rss=rss_mb(p.pid), fds=fds(p.pid))


SCENARIOS = {"slow_logins": slow_logins, "second_instance": second_instance,
             "wildcard_pools": wildcard_pools, "pg_restart": pg_restart, "pg_down": pg_down,
             "fd_limit": fd_limit,
             "login_storm": login_storm, "many_entries": many_entries, "many_pools": many_pools,
             "console_reload": console_reload, "bad_passwords": bad_passwords,
             "scram_flood": scram_flood, "scram_timing": scram_timing}


def raise_nofile(need):
    """This process holds --slow sockets (and the poolers, its children, as many): the soft
    descriptor limit goes up to the hard one."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        to = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (to, hard))
        if to < need:
            print("warning: descriptor limit %d (hard) < %d needed" % (to, need), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--targets", default="pgbouncer,shoal")
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--names", type=int, default=5000)
    ap.add_argument("--autodb", type=int, default=90)
    ap.add_argument("--nofile", type=int, default=128)
    ap.add_argument("--fd-clients", type=int, default=300)
    ap.add_argument("--storm", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--pool-names", type=int, default=5000)
    ap.add_argument("--reloads", type=int, default=100)
    ap.add_argument("--flood", type=int, default=500)
    ap.add_argument("--flood-conc", type=int, default=50)
    ap.add_argument("--auth-failure-limit", type=int, default=0)
    args = ap.parse_args()
    raise_nofile(args.slow + args.storm + 200)
    import tempfile
    auth_dir = tempfile.mkdtemp(prefix="shoal-faults-")
    os.chmod(auth_dir, 0o755)  # PgBouncer runs as postgres when this runs as root
    args.auth_file = os.path.join(auth_dir, "users.txt")
    with open(args.auth_file, "w") as f:
        f.write(auth_file_text())
    os.chmod(args.auth_file, 0o644)
    pg = common.Postgres(1, opts="-c max_connections=120 -c fsync=off")
    rows = []
    try:
        for name in args.only.split(","):
            for target in args.targets.split(","):
                p = start(target, pg, args, name)
                try:
                    before = p.log_before = log_lines(p)
                    r = SCENARIOS[name](p, pg, args)
                    r["log"] = log_lines(p) - before
                finally:
                    p.stop()
                rows.append((name, target, r))
                print("%-15s %-9s done" % (name, target), file=sys.stderr)
    finally:
        pg.stop()
        import shutil
        shutil.rmtree(auth_dir, ignore_errors=True)
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
