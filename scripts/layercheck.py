#!/usr/bin/env python3
"""layercheck.py: each folder of src/ is one layer; an #include may only point to the same or a
lower layer (docs/internals.md, "Layers"). Fails on an include that points upward, on an
internal header (name_int.h: what the files of one module share) included from another folder,
on a folder the order does not name, on a header name two folders share (includes are by bare
name), on a folder cycle, and on an allowlist entry that no longer occurs (so the allowlist only
shrinks).
Usage: layercheck.py [source root]   (default: the src/ beside this script's folder)"""
import os
import re
import sys

# Bottom first. Keep in step with docs/internals.md.
LAYERS = ["core", "protocol", "auth", "config", "runtime", "pool", "session", "http", "admin",
          "daemon"]

# Upward includes tolerated while a fix is under way, "file: header". Each entry is a debt: keep
# it empty; a stale entry fails the check.
ALLOW = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(root):
    for d in sorted(os.listdir(root)):
        path = os.path.join(root, d)
        if os.path.isdir(path):
            for f in sorted(os.listdir(path)):
                if f.endswith((".c", ".h")):
                    yield d, f


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    errors, owner, edges, seen = [], {}, {}, set()
    for d, f in sources(root):
        if d not in LAYERS:
            errors.append(f"src/{d}/: a folder the layer order does not name (add it to LAYERS)")
        if f.endswith(".h") and f in owner and owner[f] != d:
            errors.append(f"{f}: in both src/{owner[f]}/ and src/{d}/ (includes are by name)")
        owner.setdefault(f, d)
    for d, f in sources(root):
        name = f"src/{d}/{f}"
        with open(os.path.join(root, d, f), encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = os.path.basename(m.group(1))
                to = owner.get(inc)  # None: generated (shoal_version.h) or a system header
                if to is None or to == d or d not in LAYERS or to not in LAYERS:
                    continue
                if inc.endswith("_int.h"):
                    errors.append(f"{name}:{n}: includes {inc}, internal to src/{to}/")
                key = f"{name}: {inc}"
                if LAYERS.index(to) > LAYERS.index(d):
                    if key in ALLOW:
                        seen.add(key)
                        continue
                    errors.append(f"{name}:{n}: includes {inc} from src/{to}/, a higher layer "
                                  f"than src/{d}/ ({' < '.join(LAYERS)})")
                edges.setdefault(d, set()).add(to)
    errors += cycles(edges)
    for key in sorted(ALLOW - seen):
        errors.append(f"{key}: allowlisted but no longer an upward include; remove it from ALLOW")
    for e in errors:
        print("layercheck: " + e)
    print(f"layercheck: {len(LAYERS)} layers, {len(ALLOW)} allowlisted upward includes, "
          f"{len(errors)} errors")
    return 1 if errors else 0


def cycles(edges):
    """Folder cycles among the includes not allowlisted (depth-first search)."""
    out, state = [], {}

    def visit(d, stack):
        state[d] = 1
        for t in sorted(edges.get(d, ())):
            if state.get(t) == 1:
                loop = stack[stack.index(t):] + [t]
                out.append("folder cycle: " + " -> ".join(loop))
            elif t not in state:
                visit(t, stack + [t])
        state[d] = 2

    for d in sorted(edges):
        if d not in state:
            visit(d, [d])
    return out


if __name__ == "__main__":
    sys.exit(main())
