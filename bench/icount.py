#!/usr/bin/env python3
"""Instructions per transaction of Shoal and PgBouncer under callgrind: the repeatable figure
(timings move by tens of percent between runs on a shared machine; instruction counts do not).

Each target runs twice under valgrind --tool=callgrind, with pgbench -t N and with -t 1 (10
clients, one connection each); the difference over the extra transactions removes start-up and
shutdown. Prints the total per transaction and writes the per-function difference (self cost,
highest first) to OUTDIR/<target>_<mode>.txt. Shoal built with -g names its own functions:

    meson setup build-prof --buildtype=release -Dcassert=false -Dc_args=-g
    bench/icount.py simple --shoal build-prof/shoal
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

MODES = {"simple": ["-S", "-M", "simple"], "extended": ["-S", "-M", "extended"],
         "prepared": ["-S", "-M", "prepared"], "connect": ["-S", "-C"], "tpcb": []}
CLIENTS = 10


def pgbench(port, transactions, extra):
    cmd = ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
           "-c", str(CLIENTS), "-j", "1", "-t", str(transactions)] + extra + ["postgres"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("pgbench failed: %s%s" % (r.stdout, r.stderr))


def start(target, pg, shoal, callgrind_out, workers=1):
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + callgrind_out]
    common = bench.COMMON_INI % dict(pg=pg.port, section=target, pool=8, maxc=200)
    if target == "shoal":
        return bench.Pooler("shoal", vg + [shoal],
                            common + "workers = %d\nstats_period = 0\n" % workers)
    return bench.Pooler("pgbouncer", vg + ["pgbouncer"],
                        common + "logfile = @DIR@/pgbouncer.log\nlog_stats = 0\n",
                        user="postgres")


def profile(target, pg, args, transactions):
    """Total instructions and callgrind_annotate's self-cost table of one run."""
    outdir = tempfile.mkdtemp(prefix="shoal-icount-")
    os.chmod(outdir, 0o777)  # PgBouncer runs as postgres
    try:
        out = os.path.join(outdir, "cg.out")
        p = start(target, pg, args.shoal, out, args.workers)
        extra = MODES[args.mode]
        if target == "pgbouncer" and args.mode == "prepared":
            extra = MODES["extended"]  # PgBouncer 1.18 cannot run -M prepared here
        pgbench(p.port, transactions, extra)
        p.stop()
        files = sorted(glob.glob(out + "*"))[-1:]  # the last file: the daemon's
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                              "--auto=no"] + files,
                             capture_output=True, text=True, check=True).stdout
        if args.calls:
            ann += "\n".join("CALLS %s %d" % (f, calls_of(files[0], f))
                              for f in args.calls.split(","))
        if args.keep:
            shutil.copy(files[0],
                        os.path.join(args.keep, "%s_%s_%d.cg" % (target, args.mode, transactions)))
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann).group(1).replace(",", ""))
    return total, ann


def calls_of(path, name):
    """How often the function name was called, from the callgrind file's call records
    ("cfn=(id) name" then "calls=N ..."); names are compressed to "(id)" after first use."""
    names, total, want = {}, 0, False
    with open(path) as f:
        for line in f:
            if line.startswith(("fn=", "cfn=", "cfi=", "cfl=", "fl=", "fi=", "fe=")):
                m = re.match(r"(\w+)=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if not m:
                    continue
                key = (m.group(1) in ("fn", "cfn"), m.group(2))
                if m.group(3):
                    names[key] = m.group(3)
                if m.group(1) == "cfn":
                    want = names.get(key, "").split("'")[0] == name
            elif line.startswith("calls=") and want:
                total += int(line.split("=")[1].split()[0])
                want = False
    return total


def per_function(ann):
    costs = {}
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            costs[m.group(2)] = costs.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--targets", default="shoal,pgbouncer")
    ap.add_argument("--shoal", default=os.path.join(bench.ROOT, "build-bench", "shoal"))
    ap.add_argument("-n", "--transactions", type=int, default=2000,
                    help="per client (connect mode: a tenth of it)")
    ap.add_argument("--outdir", default=".")
    ap.add_argument("--workers", type=int, default=1, help="Shoal's workers (default 1)")
    ap.add_argument("--calls", metavar="F1,F2",
                    help="also print calls per transaction of these functions (not inlined "
                    "ones), e.g. pool_lock,cancel_set_target,worker_mail")
    ap.add_argument("--keep", metavar="DIR", help="also keep each run's callgrind file in DIR "
                    "(for callgrind_annotate --tree=caller)")
    args = ap.parse_args()
    n = args.transactions if args.mode != "connect" else max(2, args.transactions // 10)
    extra_txns = (n - 1) * CLIENTS
    pg = bench.Postgres(1)
    try:
        for target in args.targets.split(","):
            big_total, big = profile(target, pg, args, n)
            small_total, small = profile(target, pg, args, 1)
            a, b = per_function(big), per_function(small)
            rows = sorted(((a[k] - b.get(k, 0)) / extra_txns, k) for k in a)[::-1]
            path = os.path.join(args.outdir, "%s_%s.txt" % (target, args.mode))
            with open(path, "w") as f:
                f.write("".join("%9.1f  %s\n" % r for r in rows if abs(r[0]) >= 1))
            print("%-9s %-8s %8.0f instructions per transaction   (by function: %s)"
                  % (target, args.mode, (big_total - small_total) / extra_txns, path),
                  flush=True)
            for line in big.splitlines():
                if line.startswith("CALLS "):
                    _, fn, count = line.split()
                    small_count = re.search(r"CALLS %s (\d+)" % re.escape(fn), small)
                    extra = int(count) - int(small_count.group(1) if small_count else 0)
                    print("%-9s %-8s %8.2f calls of %s per transaction"
                          % (target, args.mode, extra / extra_txns, fn), flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
