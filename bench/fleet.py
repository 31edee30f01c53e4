#!/usr/bin/python3
"""One Shoal process vs a fleet of three on one port (so_reuseport, issue 20), back to back in one
run against the same PostgreSQL: pgbench TPS and the processes' CPU per transaction, then the
latency of cancel requests (a client's pg_sleep cancelled through the shared port: with three
processes about two cancels in three land on a process that did not issue the key and are
forwarded to the issuer over its Unix socket).

Usage (as root or as a user that can run initdb):
    bench/fleet.py [--shoal build/shoal] [--seconds 10] [--clients 50] [--cancels 100]
Every process gets `workers = 1` and `default_pool_size = --pool-size`, so the fleet may open
three times the server connections. Writes bench/results/fleet-<date>.json and prints a table.
Ratios within one run are the result; absolute numbers move with the machine.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Postgres, proc_cpu  # noqa: E402
from common import PGBIN, ROOT, free_port  # noqa: E402

INI = """[databases]
postgres = host=127.0.0.1 port=%(pg)d dbname=postgres user=postgres
[peers]
%(peers)s
[shoal]
listen_addr = 127.0.0.1
listen_port = %(port)d
so_reuseport = 1
peer_id = %(id)d
unix_socket_dir = %(dir)s
auth_type = trust
pool_mode = transaction
default_pool_size = %(pool)d
max_client_conn = 500
workers = 1
log_connections = 0
log_disconnections = 0
stats_period = 0
"""


class Fleet:
    """n Shoal processes on one TCP port, peer ids 1..n, [peers] by Unix socket directory (the
    TCP address is shared, so a peer can only be reached on its own socket)."""

    def __init__(self, shoal, pg, n, pool_size):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-fleet-")
        dirs = [os.path.join(self.dir, "s%d" % i) for i in range(n)]
        peers = "\n".join("%d = host=%s port=%d" % (i + 1, d, self.port)
                          for i, d in enumerate(dirs))
        env = dict(os.environ)
        if os.geteuid() == 0:
            env.setdefault("SHOAL_ALLOW_ROOT", "1")
        self.procs = []
        for i, d in enumerate(dirs):
            os.mkdir(d)
            ini = os.path.join(d, "shoal.ini")
            with open(ini, "w") as f:
                f.write(INI % dict(pg=pg.port, peers=peers, port=self.port, id=i + 1, dir=d,
                                   pool=pool_size))
            log = open(os.path.join(d, "shoal.log"), "w")
            p = subprocess.Popen([shoal, ini], stdout=log, stderr=subprocess.STDOUT, env=env)
            self.procs.append((p, log))
            self._wait_ready(p, d)

    def _wait_ready(self, proc, sockdir):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("shoal exited with %s" % proc.returncode)
            r = subprocess.run([PGBIN + "/pg_isready", "-q", "-h", sockdir, "-p",
                                str(self.port)])
            if r.returncode in (0, 1):
                return
            time.sleep(0.05)
        raise RuntimeError("shoal did not start")

    def cpu(self):
        return [sum(x) for x in zip(*(proc_cpu(p.pid) for p, _ in self.procs))]

    def forwarded(self):
        n = 0
        for p, log in self.procs:
            log.flush()
            with open(log.name) as f:
                n += f.read().count("forwarded to peer")
        return n

    def stop(self):
        for p, _ in self.procs:
            p.terminate()
        for p, log in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pgbench(port, seconds, clients):
    r = subprocess.run(["pgbench", "-n", "-S", "-M", "simple", "-T", str(seconds), "-c",
                        str(clients), "-j", "2", "-h", "127.0.0.1", "-p", str(port), "-U",
                        "postgres", "postgres"], capture_output=True, text=True,
                       timeout=seconds * 3 + 60)
    m = re.search(r"tps = ([\d.]+) \(without initial", r.stdout)
    n = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    ok = r.returncode == 0 and m is not None
    return {"tps": float(m.group(1)) if m else 0.0, "xacts": int(n.group(1)) if n else 0,
            "ok": ok, "error": None if ok else (r.stderr.strip().splitlines() or [""])[-1]}


def one_cancel(pg, port):
    """Seconds from the cancel request to the client's error; a fresh connection each time, so
    that the clients spread over the fleet as the port's hash spreads them."""
    dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5" % port
    with psycopg.connect(dsn, autocommit=True) as c:
        done = {}

        def run():
            try:
                c.execute("SELECT pg_sleep(10)")
                done["error"] = "not cancelled"
            except psycopg.errors.QueryCanceled:
                done["t"] = time.monotonic()
            except Exception as e:  # noqa: BLE001 (reported below)
                done["error"] = repr(e)
        t = threading.Thread(target=run)
        t.start()
        with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres",
                             dbname="postgres", autocommit=True) as direct:
            deadline = time.monotonic() + 10
            while not direct.execute("SELECT 1 FROM pg_stat_activity WHERE query = "
                                     "'SELECT pg_sleep(10)' AND state = 'active'").fetchall():
                if time.monotonic() > deadline:
                    raise RuntimeError("pg_sleep did not start")
                time.sleep(0.002)
        t0 = time.monotonic()
        c.cancel()
        t.join(15)
    if "t" not in done:
        raise RuntimeError("cancel failed: %s" % done.get("error"))
    return done["t"] - t0


def run_target(pg, args, n):
    fleet = Fleet(args.shoal, pg, n, args.pool_size)
    try:
        c0 = fleet.cpu()
        res = pgbench(fleet.port, args.seconds, args.clients)
        c1 = fleet.cpu()
        x = max(res["xacts"], 1)
        res["user_us_per_xact"] = (c1[0] - c0[0]) * 1e6 / x
        res["sys_us_per_xact"] = (c1[1] - c0[1]) * 1e6 / x
        lat = sorted(one_cancel(pg, fleet.port) * 1000 for _ in range(args.cancels))
        res["cancel_ms"] = {"p50": statistics.median(lat),
                            "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
                            "max": lat[-1], "n": len(lat)}
        res["forwarded"] = fleet.forwarded()
        res["processes"] = n
    finally:
        fleet.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument("--cancels", type=int, default=100)
    args = ap.parse_args()
    pg = Postgres(args.scale)
    try:
        rows = [run_target(pg, args, n) for n in (1, 3)]
    finally:
        pg.stop()
    print("pgbench -S -M simple, %d clients, %d s, scale %d, pool_size %d per process, "
          "%d CPUs, load %.1f; %d cancels of pg_sleep each"
          % (args.clients, args.seconds, args.scale, args.pool_size, os.cpu_count(),
             os.getloadavg()[0], args.cancels))
    print("%-9s %10s %12s %12s %14s %14s %14s %9s" % ("processes", "tps", "user us/xact",
                                                     "sys us/xact", "cancel p50 ms",
                                                     "cancel p99 ms", "cancel max ms",
                                                     "forwarded"))
    for r in rows:
        print("%-9d %10.0f %12.1f %12.1f %14.2f %14.2f %14.2f %9d%s" % (
            r["processes"], r["tps"], r["user_us_per_xact"], r["sys_us_per_xact"],
            r["cancel_ms"]["p50"], r["cancel_ms"]["p99"], r["cancel_ms"]["max"], r["forwarded"],
            "" if r["ok"] else "  FAILED: %s" % r["error"]))
    out = os.path.join(ROOT, "bench", "results",
                       "fleet-%s.json" % datetime.date.today().isoformat())
    with open(out, "w") as f:
        json.dump({"args": vars(args), "loadavg": os.getloadavg(), "rows": rows}, f, indent=1)
    print("wrote", out)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
