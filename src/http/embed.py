#!/usr/bin/env python3
"""Write a C file holding a file's bytes: embed.py INPUT OUTPUT SYMBOL (SYMBOL and SYMBOL_len)."""
import sys

src, out, sym = sys.argv[1:4]
data = open(src, "rb").read()
with open(out, "w") as f:
    f.write("/* Generated from %s by embed.py: do not edit. */\n#include <stddef.h>\n" % src.split("/")[-1])
    f.write("const char %s[] = {\n" % sym)
    for i in range(0, len(data), 16):
        f.write("\t" + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("\t0x00};\nconst size_t %s_len = %d;\n" % (sym, len(data)))
