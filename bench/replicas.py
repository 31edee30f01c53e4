#!/usr/bin/python3
"""Read replicas (issue 18): read throughput spread across two streaming replicas, and the time
writes take to reach a promoted replica, on loopback.

Usage: bench/replicas.py [--shoal build/shoal] [--seconds 10] [--clients 10] [--scale 10]

A primary (pgbench -i -s SCALE) and two replicas made with `pg_basebackup -R`, then:
  reads     pgbench -S (select only, simple protocol) for SECONDS with CLIENTS clients: direct
            to one replica, through Shoal to one replica (`one`), to both in turn (`ro`,
            target_session_attrs=standby, round-robin) and to both weighted 3:1 (`ro_w`).
            TPS, and each replica's share of the transactions (SHOW HOSTS `transactions`).
  failover  one client inserts rows one autocommit statement at a time through `rw`
            (target_session_attrs=read-write over all three hosts, host_check_interval 200 ms,
            primary_wait_timeout 10 s); the primary is stopped (pg_ctl stop -m fast) and the
            first replica promoted (pg_ctl promote): the time from the promotion to the first
            write the new primary acknowledged, the longest gap between acknowledged writes,
            the errors the client saw, and acknowledged rows missing on the new primary.
All processes are started here and stopped by pid at the end; every loop is bounded.
"""
import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import common  # noqa: E402
from common import PGBIN, ROOT, as_pg_user, free_port  # noqa: E402

INI = """[databases]
one  = host=127.0.0.1 port=%(r1)d dbname=postgres user=postgres
ro   = host=127.0.0.1,127.0.0.1 port=%(r1)d,%(r2)d dbname=postgres user=postgres target_session_attrs=standby
ro_w = host=127.0.0.1,127.0.0.1 port=%(r1)d,%(r2)d dbname=postgres user=postgres target_session_attrs=standby weight=3,1
rw   = host=127.0.0.1,127.0.0.1,127.0.0.1 port=%(p)d,%(r1)d,%(r2)d dbname=postgres user=postgres target_session_attrs=read-write pool_size=2
[shoal]
listen_addr = 127.0.0.1
listen_port = @PORT@
unix_socket_dir =
auth_type = trust
auth_file = @DIR@/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
log_connections = 0
log_disconnections = 0
stats_period = 0
workers = %(workers)d
host_check_interval = 200ms
host_check_timeout = 2
server_connect_timeout = 3
server_login_retry = 1
primary_wait_timeout = 10
query_wait_timeout = 30
"""


class Replica:
    """A streaming replica of pg made with pg_basebackup -R, on its own port."""

    def __init__(self, pg):
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-replica-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        subprocess.run(as_pg_user([PGBIN + "/pg_basebackup", "-D", self.data, "-R", "-X",
                                   "stream", "-c", "fast", "-h", "127.0.0.1", "-p",
                                   str(pg.port), "-U", "postgres"]),
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        self.ctl("start", "-l", self.data + "/log", "-o",
                 "-p %d -k %s -c hot_standby=on -c max_connections=200" % (self.port, self.dir))

    def ctl(self, *args):
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-w"] + list(args)),
                       check=True, stdout=subprocess.DEVNULL, timeout=120)

    def stop(self):
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-m", "immediate",
                                   "stop"]), stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def conn(port, db="postgres"):
    return psycopg.connect(host="127.0.0.1", port=port, dbname=db, user="postgres",
                           autocommit=True, connect_timeout=10)


def wait_replayed(pg, replicas, timeout=60):
    with conn(pg.port) as c:
        lsn = c.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    for r in replicas:
        with conn(r.port) as c:
            while not c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                (lsn,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError("replica %d did not catch up" % r.port)
                time.sleep(0.05)


def host_xacts(shoal, db):
    """{port: (transactions, servers)} of db's hosts, from SHOW HOSTS."""
    with conn(shoal.port, "pgbouncer") as c:
        cur = c.execute("SHOW HOSTS")
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    return {r["port"]: (int(r["transactions"]), int(r["servers"])) for r in rows
            if r["database"] == db}


def reads(shoal, replicas, args):
    sc = dict(args=["-S"])
    out = []
    r = bench.run_pgbench(dict(sc), replicas[0].port, args.seconds, args.clients, log=False)
    out.append(("direct, one replica", r.get("tps"), None, r.get("error")))
    for db, what in (("one", "Shoal, one replica"), ("ro", "Shoal, two replicas"),
                     ("ro_w", "Shoal, two replicas, weight=3,1")):
        before = host_xacts(shoal, db)
        cmd = bench.pgbench_cmd(sc, shoal.port, args.seconds, args.clients, "/tmp", False)
        cmd[-1] = db
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 4 + 120)
        m = [ln for ln in p.stdout.splitlines() if ln.startswith("tps = ")]
        tps = float(m[0].split()[2]) if m and p.returncode == 0 else None
        after = host_xacts(shoal, db)
        spread = None
        if after:
            n = {port: after[port][0] - before.get(port, (0, 0))[0] for port in after}
            total = sum(n.values()) or 1
            spread = " / ".join("%d%% (%d servers)" % (round(100 * n[r.port] / total),
                                                       after[r.port][1]) for r in replicas)
        out.append((what, tps, spread, None if tps else bench.first_error(p.stderr)))
    return out


class Writer(threading.Thread):
    """Inserts 1, 2, 3, ... through rw, one autocommit statement each, reconnecting after an
    error; acked holds (id, server port, time)."""

    def __init__(self, shoal, seconds):
        super().__init__(daemon=True)
        self.shoal, self.acked, self.errors = shoal, [], []
        self.stop_at = time.monotonic() + seconds
        self.done = threading.Event()

    def run(self):
        n, c = 0, None
        while not self.done.is_set() and time.monotonic() < self.stop_at:
            try:
                if c is None:
                    c = conn(self.shoal.port, "rw")
                n += 1
                port = c.execute("INSERT INTO fo_t VALUES (%s) RETURNING inet_server_port()",
                                 (n,)).fetchone()[0]
                self.acked.append((n, port, time.monotonic()))
            except psycopg.Error as e:
                self.errors.append(str(e).splitlines()[0][:100])
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.05)
        if c is not None:
            c.close()


def failover(shoal, pg, replicas):
    with conn(pg.port) as c:
        c.execute("CREATE TABLE fo_t (id int PRIMARY KEY)")
    wait_replayed(pg, replicas)
    r1 = replicas[0]
    w = Writer(shoal, 90)
    w.start()
    deadline = time.monotonic() + 30
    while len(w.acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    t_stop = time.monotonic()
    subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", pg.data, "-m", "fast", "-w", "stop"]),
                   stdout=subprocess.DEVNULL, timeout=60)
    stopped = time.monotonic()
    r1.ctl("promote")
    promoted = time.monotonic()
    deadline = promoted + 30
    while time.monotonic() < deadline and \
            len([a for a in w.acked if a[1] == r1.port]) < 200:
        time.sleep(0.05)
    w.done.set()
    w.join(10)
    times = [t for _, _, t in w.acked]
    gap = max((b - a for a, b in zip(times, times[1:])), default=None)
    first_new = min((t for _, p, t in w.acked if p == r1.port), default=None)
    with conn(r1.port) as c:
        have = {x[0] for x in c.execute("SELECT id FROM fo_t").fetchall()}
    lost = [i for i, _, _ in w.acked if i not in have]
    return dict(acked=len(w.acked), errors=w.errors, lost=len(lost), gap=gap,
                stop_s=stopped - t_stop,
                after_promote=None if first_new is None else first_new - promoted,
                after_stop=None if first_new is None else first_new - stopped)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build-prof", "shoal"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="Shoal's workers")
    args = ap.parse_args()
    pg = common.Postgres(args.scale, opts="-c max_connections=200 -c fsync=off "
                         "-c synchronous_commit=off -c wal_level=replica")
    replicas, shoal = [], None
    try:
        replicas = [Replica(pg), Replica(pg)]
        wait_replayed(pg, replicas)
        shoal = bench.Pooler("shoal", [args.shoal], INI % dict(
            p=pg.port, r1=replicas[0].port, r2=replicas[1].port, workers=args.workers))
        print("reads: pgbench -S -c %d -j 2 -T %d, scale %d, Shoal workers %d (replica ports "
              "%d, %d)" % (args.clients, args.seconds, args.scale, args.workers,
                           replicas[0].port, replicas[1].port))
        print("| target | TPS | share per replica |\n|---|---:|---|")
        for what, tps, spread, err in reads(shoal, replicas, args):
            print("| %s | %s | %s |" % (what, "%.0f" % tps if tps else "failed: %s" % err,
                                        spread or "-"))
        f = failover(shoal, pg, replicas)
        print("\nfailover: pg_ctl stop -m fast took %.2f s; first write on the promoted "
              "replica %.2f s after pg_ctl promote returned (%.2f s after the stop); longest "
              "gap between acknowledged writes %.2f s; %d writes acknowledged, %d missing on "
              "the new primary; %d errors%s"
              % (f["stop_s"], f["after_promote"] or -1, f["after_stop"] or -1, f["gap"] or -1,
                 f["acked"], f["lost"], len(f["errors"]),
                 (": " + "; ".join(sorted(set(f["errors"])))) if f["errors"] else ""))
    finally:
        if shoal:
            shoal.stop()
        for r in replicas:
            r.stop()
        pg.stop()


if __name__ == "__main__":
    main()
