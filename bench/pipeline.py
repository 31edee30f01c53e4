#!/usr/bin/python3
"""Long libpq pipelines through Shoal and PgBouncer, in one run (issue 14).

Usage: bench/pipeline.py [--shoal build/shoal] [--counts 200000,1000000]

tests/pipeline/pqpipe (built with Shoal) sends N executions in libpq's non-blocking pipeline
mode while it reads the results, with one Sync at the end: of one named prepared statement
(`named`) or of unnamed ones (`unnamed`). Each count runs in session, transaction and statement
mode, with prepared-statement rewriting on (max_prepared_statements = 200) and off (0), against
a fresh pooler each time. Prints one line per run: ok (and seconds) or what pqpipe said.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from common import ROOT  # noqa: E402

MODES = ["session", "transaction", "statement"]


def start(target, pg, args, mode, ps):
    ini = bench.COMMON_INI % dict(pg=pg.port, section=target, pool=4, maxc=100)
    ini = ini.replace("pool_mode = transaction", "pool_mode = " + mode)
    if target == "pgbouncer":
        ini += "logfile = @DIR@/pgbouncer.log\n"
        return bench.Pooler("pgbouncer", ["pgbouncer"], ini, user="postgres")
    ini += "stats_period = 0\nmax_prepared_statements = %d\n" % (200 if ps else 0)
    return bench.Pooler("shoal", [args.shoal], ini)


def run(pqpipe, port, n, kind):
    dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres" % port
    t = time.monotonic()
    r = subprocess.run([pqpipe, dsn, str(n), kind], capture_output=True, text=True,
                       timeout=900)
    secs = time.monotonic() - t
    if r.returncode == 0 and r.stdout.strip() == "ok %d" % n:
        return "ok %.1fs" % secs
    return "FAILED: " + (r.stderr or r.stdout).strip().splitlines()[-1][:70]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--counts", default="200000,1000000")
    args = ap.parse_args()
    pqpipe = os.path.join(os.path.dirname(os.path.abspath(args.shoal)), "tests", "pipeline",
                          "pqpipe")
    pg = bench.Postgres(1)
    try:
        for n in [int(x) for x in args.counts.split(",")]:
            for mode in MODES:
                for kind in ("named", "unnamed"):
                    row = []
                    for target, ps in (("shoal", True), ("shoal", False), ("pgbouncer", None)):
                        p = start(target, pg, args, mode, ps)
                        try:
                            row.append(run(pqpipe, p.port, n, kind))
                        finally:
                            p.stop()
                    print("%8d %-11s %-7s | shoal ps on: %-12s | shoal ps off: %-12s | "
                          "pgbouncer: %s" % ((n, mode, kind) + tuple(row)), flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
