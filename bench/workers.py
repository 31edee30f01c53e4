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
import re
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import proc_cpu, start_shoal  # noqa: E402
from common import ROOT, Postgres  # noqa: E402


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
            s = start_shoal(pg, types.SimpleNamespace(shoal=args.shoal, pool_size=args.pool_size,
                                                      shoal_workers=n))
            try:
                u0, k0 = proc_cpu(s.pid)
                res = pgbench(s.port, args.seconds, args.clients, args.mode)
                u1, k1 = proc_cpu(s.pid)
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
