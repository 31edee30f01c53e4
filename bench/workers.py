#!/usr/bin/python3
"""Shoal with workers = 1, 2, 4 (and direct PostgreSQL) on the same pgbench workload, back to back
in one run: TPS, and Shoal's CPU per transaction (user and kernel, from /proc/<pid>/stat).

Usage (as root or as a user that can run initdb): bench/workers.py [--seconds 10] [--clients 50]
Writes bench/results/workers-<date>.json and prints a table. Ratios within one run are the result;
absolute numbers move with the machine.
"""
import argparse
import datetime
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = "/usr/lib/postgresql/15/bin"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port if port < 32768 else 20000 + port % 10000


def as_pg_user(cmd):
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--"] + cmd


class Postgres:
    """A throwaway cluster (initdb into a temp dir, a free loopback port), pgbench-initialized.
    opts: the server options on top of the port and socket directory."""

    def __init__(self, scale, opts="-c max_connections=200 -c fsync=off"):
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        subprocess.run(as_pg_user([PGBIN + "/initdb", "-A", "trust", "-U", "postgres",
                                   "-D", self.data]), check=True, stdout=subprocess.DEVNULL)
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-l",
                                   self.data + "/log", "-w", "-o",
                                   "-p %d -k %s %s" % (self.port, self.dir, opts), "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-m", "immediate",
                                   "stop"]), stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


class Shoal:
    def __init__(self, binary, pg, workers, pool_size):
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-")
        self.port = free_port()
        ini = os.path.join(self.dir, "shoal.ini")
        with open(ini, "w") as f:
            f.write("[databases]\npostgres = host=127.0.0.1 port=%d dbname=postgres "
                    "user=postgres\n[shoal]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
                    "unix_socket_dir =\nauth_type = trust\npool_mode = transaction\n"
                    "default_pool_size = %d\nmax_client_conn = 2000\nworkers = %d\n"
                    "stats_period = 0\n" % (pg.port, self.port, pool_size, workers))
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([binary, ini], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("shoal did not start")

    def cpu(self):
        """(user, system) seconds used by the process so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / TICK, int(fields[12]) / TICK

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pgbench(port, seconds, clients, mode):
    r = subprocess.run(["pgbench", "-n", "-S", "-M", mode, "-T", str(seconds), "-c", str(clients),
                        "-j", "2", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "postgres"], capture_output=True, text=True, timeout=seconds * 3 + 60)
    m = re.search(r"tps = ([\d.]+) \(without initial", r.stdout)
    n = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    failed = r.returncode != 0 or not m
    return {"tps": float(m.group(1)) if m else 0.0, "xacts": int(n.group(1)) if n else 0,
            "ok": not failed, "error": (r.stderr.strip().splitlines() or [""])[-1] if failed
            else None}


def run(args):
    pg = Postgres(args.scale)
    rows = []
    try:
        direct = pgbench(pg.port, args.seconds, args.clients, args.mode)
        rows.append(dict(target="direct", workers=None, **direct))
        for n in args.workers:
            s = Shoal(args.shoal, pg, n, args.pool_size)
            try:
                u0, k0 = s.cpu()
                res = pgbench(s.port, args.seconds, args.clients, args.mode)
                u1, k1 = s.cpu()
            finally:
                s.stop()
            x = max(res["xacts"], 1)
            rows.append(dict(target="shoal", workers=n, **res,
                             user_us_per_xact=(u1 - u0) * 1e6 / x,
                             sys_us_per_xact=(k1 - k0) * 1e6 / x))
    finally:
        pg.stop()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument("--mode", default="simple", choices=["simple", "extended"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    rows = run(args)
    direct = rows[0]["tps"] or 1.0
    print("pgbench -S -M %s, %d clients, %d s, scale %d, pool_size %d, %d CPUs"
          % (args.mode, args.clients, args.seconds, args.scale, args.pool_size, os.cpu_count()))
    print("%-8s %7s %10s %9s %12s %12s" % ("target", "workers", "tps", "x direct",
                                         "user us/xact", "sys us/xact"))
    for r in rows:
        print("%-8s %7s %10.0f %9.2f %12s %12s%s" % (
            r["target"], r["workers"] or "-", r["tps"], r["tps"] / direct,
            "%.1f" % r["user_us_per_xact"] if "user_us_per_xact" in r else "-",
            "%.1f" % r["sys_us_per_xact"] if "sys_us_per_xact" in r else "-",
            "" if r["ok"] else "  FAILED: %s" % r["error"]))
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "workers-%s.json" % datetime.date.today().isoformat())
    with open(path, "w") as f:
        json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                   "cpus": os.cpu_count(), "settings": vars(args), "rows": rows}, f, indent=1)
    print("written:", os.path.relpath(path, ROOT))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
