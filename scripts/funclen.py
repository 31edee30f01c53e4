#!/usr/bin/env python3
"""funclen.py: how long the functions in src/ are (../shared/STYLE.md: median about 12 lines,
most under about 40). A function's length is its lines from the first line of its signature to
its closing brace; its body is the lines between the braces. Reports the count, the median and
mean length and body, and the longest functions. Only reports: it fails on nothing, and no CI
step runs it.
Usage: funclen.py [--top N] [--over N] [source root]   (default root: src/ beside this script's
folder; --top: how many of the longest to list, 15; --over: also count functions longer than N)"""
import argparse
import os
import re
import statistics
import sys

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def strip(text):
    """text with comments, string and character literals blanked, newlines kept, so that braces
    and parentheses can be counted line by line."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(ch + ch)
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, length, body lines) of each function defined in the file at path."""
    with open(path, encoding="utf-8") as fh:
        lines = strip(fh.read()).split("\n")
    found, depth, start, sig, macro = [], 0, None, [], False
    for n, line in enumerate(lines, 1):
        if macro or (depth == 0 and line.lstrip().startswith("#")):
            macro = line.rstrip().endswith("\\")  # a #define's continued lines
            continue
        if depth == 0:
            s = line.strip()
            if not s or (s.endswith(";") and "{" not in s):
                start, sig = None, []
                continue
            if start is None:
                start = n
            sig.append(line)
        opened = line.count("{")
        closed = line.count("}")
        if depth == 0 and opened:
            brace = n
            text = " ".join(sig)
            is_func = "(" in text.split("{")[0] and "=" not in text.split("(")[0]
        depth += opened - closed
        if depth == 0 and closed and start is not None:
            if is_func:
                m = NAME.search(text.split("{")[0])
                name = m.group(1) if m else "?"
                found.append((name, start, n - start + 1, max(0, n - brace - 1)))
            start, sig = None, []
    return found


def sources(root):
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith(".c"):
                yield os.path.join(d, f)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--over", type=int, default=40)
    ap.add_argument("root", nargs="?", default=os.path.join(here, "..", "src"))
    a = ap.parse_args()
    root = os.path.normpath(a.root)
    base = os.path.dirname(root)
    rows = []
    for path in sources(root):
        for name, line, length, body in functions(path):
            rows.append((length, body, f"{os.path.relpath(path, base)}:{line}", name))
    if not rows:
        print(f"funclen: no functions under {root}")
        return 1
    lengths = [r[0] for r in rows]
    bodies = [r[1] for r in rows]
    over = sum(1 for x in lengths if x > a.over)
    print(f"funclen: {len(rows)} functions in {os.path.relpath(root)}: length median {statistics.median(lengths):g}"
          f", mean {statistics.mean(lengths):.1f}; body median {statistics.median(bodies):g}, "
          f"mean {statistics.mean(bodies):.1f}; {over} longer than {a.over} lines")
    print(f"funclen: the {min(a.top, len(rows))} longest (length, body, where, name):")
    for length, body, where, name in sorted(rows, key=lambda r: (-r[0], r[2]))[: a.top]:
        print(f"  {length:4d} {body:4d}  {where}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
