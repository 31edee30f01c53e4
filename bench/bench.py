#!/usr/bin/python3
"""Direct PostgreSQL, PgBouncer and Shoal side by side on the same pgbench scenarios, in one run.

Usage: bench/run [--seconds 10] [--scenarios select_simple,connect ...] (bench/run installs and
builds what is missing, then calls this file; see bench/README.md). Per scenario and target:
TPS, latency p50/p99 (pgbench -l), pooler CPU us per transaction (user and kernel, from
/proc/<pid>/stat, all threads), pooler RSS per client, and syscalls per transaction (strace -c -f
on a short separate run). Shoal's figures are also given as ratios to PgBouncer's and direct's.
Writes bench/results/<date>.json and bench/results/<date>.png and prints one table.
"""
import argparse
import datetime
import glob
import json
import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import PGBIN, ROOT, TICK, as_pg_user, free_port  # noqa: E402

TARGETS = ["direct", "pgbouncer", "shoal"]
MAX_CLIENTS = 5000


# Each scenario: pgbench arguments (besides -T/-c/-j/connection), client count, an optional
# script body, and the sleep inside it (subtracted from latencies: the figure is the query's).
SCENARIOS = {
    "select_simple": dict(args=["-S", "-M", "simple"], clients=50),
    "select_extended": dict(args=["-S", "-M", "extended"], clients=50),
    "select_prepared": dict(args=["-S", "-M", "prepared"], clients=50),
    "tpcb": dict(args=["-M", "simple"], clients=50),
    "connect": dict(args=["-S", "-C"], clients=50),
    # Clients that mostly sleep: pgbench --rate sleeps each client between its transactions
    # (random, Poisson) for about 1,000 transactions a second in all. A fixed \sleep makes every
    # client wake at once each period, and the burst then measures pgbench's own ppoll loop. The
    # figures count only the time after every client has connected (see measure).
    "sleep_1000": dict(script="SELECT 1;\n", args=["--rate", "1000"], clients=1000,
                       no_direct="needs 1,000 server backends"),
    "sleep_5000": dict(script="SELECT 1;\n", args=["--rate", "1000"], clients=5000,
                       no_direct="needs 5,000 server backends"),
    "large_rows": dict(script="SELECT g, repeat('x', 8000) FROM generate_series(1, 100) g;\n",
                       clients=10),
}


def proc_cpu(pid):
    """(user, system) seconds used by all threads of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def proc_rss_kb(pid):
    """Anonymous resident memory (heap, stacks): the part that grows with clients. VmRSS also
    counts shared-library code as it is first run, a fixed cost that differs between poolers."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def wait_port(port, proc, what):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        r = subprocess.run([PGBIN + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)])
        if r.returncode in (0, 1):
            return
        time.sleep(0.05)
    raise RuntimeError("%s did not start" % what)


def Postgres(scale):
    """The throwaway cluster of common.py, with the settings every target of this run gets."""
    return common.Postgres(scale, opts="-c max_connections=120 -c fsync=off "
                            "-c synchronous_commit=off -c shared_buffers=128MB")


class Pooler:
    """A pooler process started in the foreground; pid is the pooler itself (for /proc)."""

    def __init__(self, name, cmd, ini_text, user=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-%s-" % name)
        self.port = free_port()
        ini = os.path.join(self.dir, name + ".ini")
        with open(ini, "w") as f:
            f.write(ini_text.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir))
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        kw = {}
        if user and os.geteuid() == 0:  # PgBouncer refuses to run as root
            pw = pwd.getpwnam(user)
            for root, dirs, files in os.walk(self.dir):
                for p in [root] + [os.path.join(root, x) for x in files]:
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        self.log = open(os.path.join(self.dir, "stdout.log"), "w")
        env = dict(os.environ)
        if os.geteuid() == 0:
            env.setdefault("SHOAL_ALLOW_ROOT", "1")  # Shoal refuses root unless allowed
        self.proc = subprocess.Popen(cmd + [ini], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, **kw)
        self.pid = self.proc.pid
        wait_port(self.port, self.proc, name)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


COMMON_INI = """[databases]
postgres = host=127.0.0.1 port=%(pg)d dbname=postgres user=postgres
[%(section)s]
listen_addr = 127.0.0.1
listen_port = @PORT@
unix_socket_dir =
auth_type = trust
auth_file = @DIR@/userlist.txt
pool_mode = transaction
default_pool_size = %(pool)d
max_client_conn = %(maxc)d
max_db_connections = 0
log_connections = 0
log_disconnections = 0
"""


def start_pgbouncer(pg, args):
    ini = COMMON_INI % dict(pg=pg.port, section="pgbouncer", pool=args.pool_size,
                            maxc=MAX_CLIENTS + 100)
    ini += "logfile = @DIR@/pgbouncer.log\nlog_stats = 0\n"
    return Pooler("pgbouncer", ["pgbouncer"], ini, user="postgres")


def start_shoal(pg, args):
    ini = COMMON_INI % dict(pg=pg.port, section="shoal", pool=args.pool_size,
                            maxc=MAX_CLIENTS + 100)
    if args.shoal_workers:  # 0: Shoal's own default (from the usable CPUs)
        ini += "workers = %d\n" % args.shoal_workers
    ini += "stats_period = 0\n"
    return Pooler("shoal", [args.shoal], ini)


START = {"pgbouncer": start_pgbouncer, "shoal": start_shoal}


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, int(round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def log_entries(log_prefix):
    """(end time, latency ms) of each transaction in pgbench's -l logs. With --rate the
    latency counts from the scheduled start (it includes the wait for pgbench's schedule)."""
    out = []
    for path in glob.glob(log_prefix + ".*"):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[2].isdigit():
                    out.append((int(p[4]) + int(p[5]) / 1e6, int(p[2]) / 1000.0))
    return out


def add_latencies(res, entries):
    vals = sorted(lat for _, lat in entries)
    res["p50_ms"], res["p99_ms"] = percentile(vals, 0.5), percentile(vals, 0.99)


def first_error(text):
    for line in text.splitlines():
        if "error" in line.lower() or "fatal" in line.lower() or "abort" in line.lower():
            return line.strip()[:300]
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else "pgbench failed"


def pgbench_cmd(sc, port, seconds, clients, workdir, log):
    cmd = ["pgbench", "-n", "-T", str(seconds), "-c", str(clients), "-j", "2",
           "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    cmd += sc.get("args", [])
    if "script" in sc:
        path = os.path.join(workdir, "script.sql")
        with open(path, "w") as f:
            f.write(sc["script"])
        cmd += ["-f", path]
    if log:
        cmd += ["-l", "--log-prefix", os.path.join(workdir, "tx")]
    return cmd + ["postgres"]


def run_pgbench(sc, port, seconds, clients, log=True):
    workdir = tempfile.mkdtemp(prefix="shoal-bench-run-")
    try:
        cmd = pgbench_cmd(sc, port, seconds, clients, workdir, log)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir,
                           timeout=seconds * 4 + 120)
        m = re.search(r"tps = ([\d.]+) \((?:without initial|including reconn)", r.stdout)
        n = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
        res = {"tps": float(m.group(1)) if m else None, "xacts": int(n.group(1)) if n else 0}
        if r.returncode != 0 or not m or (failed and int(failed.group(1)) > 0):
            res.update(ok=False, error=first_error(r.stderr + r.stdout), tps=None)
            return res
        res["ok"] = True
        if log:
            res["entries"] = log_entries(os.path.join(workdir, "tx"))
            add_latencies(res, res["entries"])
        return res
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, proc_rss_kb(self.pid))
            except OSError:
                return


class Connected(threading.Thread):
    """Notes the time and CPU when the pooler holds a socket for every client, so that many
    clients' connection setup stays out of the per-transaction figures."""

    def __init__(self, pid, clients):
        super().__init__(daemon=True)
        self.pid, self.clients, self.at, self.stop = pid, clients, None, threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            try:
                if len(os.listdir("/proc/%d/fd" % self.pid)) >= self.clients:
                    self.cpu, self.at = proc_cpu(self.pid), time.time()
                    return
            except OSError:
                return


def measure(sc, port, pooler, args):
    res = measure_run(sc, port, pooler, args)
    res.pop("entries", None)
    return res


def measure_run(sc, port, pooler, args):
    clients = sc["clients"]
    if pooler is None:
        return run_pgbench(sc, port, args.seconds, clients)
    rss0 = proc_rss_kb(pooler.pid)
    sampler = RssSampler(pooler.pid)
    sampler.start()
    conn = Connected(pooler.pid, clients) if clients >= 500 else None
    if conn:
        conn.start()
    u0, k0 = proc_cpu(pooler.pid)
    res = run_pgbench(sc, port, args.seconds, clients)
    u1, k1 = proc_cpu(pooler.pid)
    t1 = time.time()
    sampler.stop.set()
    sampler.join()
    if conn:
        conn.stop.set()
        conn.join()
    if not res["ok"]:
        return res
    x = max(res["xacts"], 1)
    if conn and conn.at:
        (u0, k0), window = conn.cpu, [e for e in res["entries"] if conn.at <= e[0] <= t1]
        add_latencies(res, window)
        x = max(len(window), 1)
        res["measured_xacts"] = len(window)
    res["user_us"] = (u1 - u0) * 1e6 / x
    res["sys_us"] = (k1 - k0) * 1e6 / x
    res["cpu_us"] = res["user_us"] + res["sys_us"]
    if clients >= 500:  # with fewer, fixed costs (pools, arenas) swamp the per-client part
        res["rss_kb_per_client"] = max(0, sampler.peak - rss0) / clients
    return res


def strace_count(sc, port, pooler, args):
    """Syscalls per transaction of the pooler on a short run under strace -c -f."""
    out = tempfile.NamedTemporaryFile(prefix="shoal-bench-strace-", delete=False)
    out.close()
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out.name, "-p", str(pooler.pid)],
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # attached to every thread
        # Sleeping clients: enough of them for a few hundred transactions in the short run.
        cap = args.strace_clients if sc["clients"] < 500 else 100
        clients = min(sc["clients"], cap)
        res = run_pgbench(sc, port, args.strace_seconds, clients, log=False)
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(30)
    with open(out.name) as f:
        text = f.read()
    os.unlink(out.name)
    calls = None
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[-1] == "total" and f[3].isdigit():
            calls = int(f[3])  # % time, seconds, usecs/call, calls, [errors,] total
    if not res["ok"] or calls is None or not res["xacts"]:
        return None, text
    return calls / res["xacts"], text


def run_scenario(name, pg, args):
    """Each pooler is started afresh for each scenario: RSS deltas start from an empty process."""
    sc = SCENARIOS[name]
    rows = {}
    for t in args.targets:
        if t == "direct":
            if sc.get("no_direct"):
                rows[t] = {"ok": False, "skipped": True, "error": "skipped: " + sc["no_direct"]}
                continue
            rows[t] = measure(sc, pg.port, None, args)
        else:
            p = START[t](pg, args)
            try:
                rows[t] = measure(sc, p.port, p, args)
                if args.strace_seconds > 0 and rows[t]["ok"]:
                    rows[t]["syscalls_per_xact"], text = strace_count(sc, p.port, p, args)
                    rows[t]["strace_summary"] = text  # strace -c's table, call by call
            finally:
                p.stop()
        print("  %-10s %-9s %s" % (name, t, short(rows[t])), flush=True)
    return rows


def short(r):
    if not r["ok"]:
        return "FAILED: " + r["error"]
    return "tps %.0f" % r["tps"]


FIGS = [("tps", "TPS", "%.0f"), ("p50_ms", "p50 ms", "%.3f"), ("p99_ms", "p99 ms", "%.3f"),
        ("user_us", "user us/x", "%.2f"), ("sys_us", "kernel us/x", "%.2f"),
        ("cpu_us", "CPU us/x", "%.2f"), ("rss_kb_per_client", "RSS KB/cl", "%.2f"),
        ("syscalls_per_xact", "syscalls/x", "%.2f")]


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def add_ratios(results):
    for rows in results.values():
        s = rows.get("shoal")
        if not s or not s["ok"]:
            continue
        for base in ("pgbouncer", "direct"):
            b = rows.get(base)
            if b and b["ok"]:
                s["vs_" + base] = {k: ratio(s.get(k), b.get(k)) for k, _, _ in FIGS
                                   if ratio(s.get(k), b.get(k)) is not None}


def fmt(v, f):
    return "-" if v is None else f % v


def table(results):
    head = "%-16s %-10s" % ("scenario", "target") + "".join(" %11s" % h for _, h, _ in FIGS)
    lines = [head, "-" * len(head)]
    for name, rows in results.items():
        for t, r in rows.items():
            if not r["ok"]:
                lines.append("%-16s %-10s FAILED: %s" % (name, t, r["error"]))
                continue
            lines.append("%-16s %-10s" % (name, t) +
                         "".join(" %11s" % fmt(r.get(k), f) for k, _, f in FIGS))
            for base in ("pgbouncer", "direct"):
                rr = r.get("vs_" + base)
                if rr:
                    lines.append("%-16s %-10s" % ("", "  x " + base) +
                                 "".join(" %11s" % fmt(rr.get(k), "%.2f") for k, _, _ in FIGS))
    return "\n".join(lines)


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib missing: no plot")
        return
    figs = [("tps", "TPS (log)", True), ("p99_ms", "p99 latency ms (log)", True),
            ("cpu_us", "pooler CPU us/xact (log)", True),
            ("syscalls_per_xact", "syscalls/xact (log)", True)]
    names = list(results)
    fig, axes = plt.subplots(len(figs), 1, figsize=(max(8, len(names) * 1.4), 3.2 * len(figs)))
    width = 0.27
    for ax, (key, title, log) in zip(axes, figs):
        for i, t in enumerate(TARGETS):
            xs, ys = [], []
            for j, n in enumerate(names):
                r = results[n].get(t)
                if r and r["ok"] and r.get(key):
                    xs.append(j + (i - 1) * width)
                    ys.append(r[key])
                elif r and not r.get("skipped") and not r["ok"]:
                    ax.text(j + (i - 1) * width, 0.02, "fail", rotation=90, fontsize=7,
                            ha="center", va="bottom", transform=ax.get_xaxis_transform())
            ax.bar(xs, ys, width, label=t)
        ax.set_title(title)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8)
        if log:
            ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * MAX_CLIENTS + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            sys.exit("ulimit -n is %d: 5,000 clients need %d (raise the hard limit)"
                     % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build-bench", "shoal"))
    ap.add_argument("--seconds", type=int, default=10, help="per scenario and target")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated, from: " + ", ".join(SCENARIOS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument("--shoal-workers", type=int, default=0,
                    help="Shoal's workers; 0 (the default): Shoal's own default")
    ap.add_argument("--strace-seconds", type=int, default=3, help="0: no syscall counts")
    ap.add_argument("--strace-clients", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    for s in args.scenarios:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s" % s)
    raise_fd_limit()
    started = datetime.datetime.now()
    pg = Postgres(args.scale)
    results = {}
    try:
        for name in args.scenarios:
            results[name] = run_scenario(name, pg, args)
    finally:
        pg.stop()
    add_ratios(results)
    cmd = "bench/run " + " ".join(sys.argv[1:])
    header = ("%s; %d CPUs, load %s; %d s per run, scale %d, pool_size %d, transaction mode, "
              "Shoal workers %d; strace: %d s, %d clients"
              % (cmd.strip(), os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg()),
                 args.seconds, args.scale, args.pool_size, args.shoal_workers,
                 args.strace_seconds, args.strace_clients))
    print()
    print(header)
    print(table(results))
    os.makedirs(args.out, exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H%M")
    path = os.path.join(args.out, stamp + ".json")
    with open(path, "w") as f:
        json.dump({"date": started.isoformat(timespec="seconds"), "command": cmd.strip(),
                   "cpus": os.cpu_count(), "loadavg_end": os.getloadavg(),
                   "pgbouncer": subprocess.run(["pgbouncer", "--version"], capture_output=True,
                                               text=True).stdout.splitlines()[0],
                   "settings": {k: v for k, v in vars(args).items()}, "results": results},
                  f, indent=1)
    plot(results, path[:-5] + ".png")
    print("written: %s, %s" % (os.path.relpath(path, ROOT), os.path.relpath(path[:-5] + ".png",
                                                                             ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
