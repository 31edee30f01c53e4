#!/usr/bin/env python3
"""Print a bench/run results file (bench/results/<date>.json) as the Markdown table of the README.
usage: bench/md_table.py bench/results/<date>.json"""
import json
import sys

COLS = [("tps", "TPS"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("user_us", "user µs/x"),
        ("sys_us", "kernel µs/x"), ("cpu_us", "CPU µs/x"), ("rss_kb_per_client", "RSS KB/client"),
        ("syscalls_per_xact", "syscalls/x")]
NAMES = {"direct": "direct", "pgbouncer": "PgBouncer", "shoal": "Shoal"}


def num(v, ratio=False):
    if v is None:
        return ""
    if ratio or v < 100:
        return "%.2f" % v
    return "{:,.0f}".format(v)


def rows(results):
    for scenario, targets in results.items():
        first = True
        for target, r in targets.items():
            if not r["ok"] and r["error"].startswith("skipped"):
                continue
            label = scenario if first else ""
            first = False
            if not r["ok"]:
                yield "| %s | %s | FAILED: `%s` |%s" % (label, NAMES[target], r["error"],
                                                        " |" * (len(COLS) - 1))
                continue
            yield "| %s | %s | %s |" % (label, NAMES[target],
                                        " | ".join(num(r.get(k)) for k, _ in COLS))
            for base in ("pgbouncer", "direct"):
                rr = r.get("vs_" + base)
                if rr:
                    yield "| | Shoal ÷ %s | %s |" % (NAMES[base], " | ".join(
                        num(rr.get(k), ratio=True) for k, _ in COLS))


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    print("| scenario | target | " + " | ".join(h for _, h in COLS) + " |")
    print("|---|---|" + "---|" * len(COLS))
    for line in rows(data["results"]):
        print(line)


if __name__ == "__main__":
    main()
