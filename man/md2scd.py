#!/usr/bin/env python3
"""Turn docs/configuration.md into shoal.ini(5) in scdoc, so that the man page and the reference
never disagree: headings become sections, the settings table a list of settings, links and
inline code plain text. Usage: md2scd.py INPUT.md OUTPUT.scd"""
import re
import sys

HEAD = """shoal.ini(5)

# NAME

shoal.ini - configuration file of *shoal*(1), in PgBouncer's pgbouncer.ini format

# SYNOPSIS

/etc/shoal/shoal.ini

"""
TAIL = """
# SEE ALSO

*shoal*(1), *libshoal*(3). This page is made from docs/configuration.md of the Shoal sources.
"""


def inline(text):
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)  # links: their text
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")
    return text.replace("`", "")


def row_cells(line):
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip() for c in cells]


def convert(lines):
    out, in_code, in_table = [], False, False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
            out.append("```")
            continue
        if in_code:
            out.append(line)
            continue
        if line.startswith("|"):
            cells = row_cells(line)
            if not in_table:  # the header row and its |---| line
                in_table = True
                continue
            if set("".join(cells)) <= set("-: "):
                continue
            name, default, meaning = cells[0], cells[1], " | ".join(cells[2:])
            out.append("*%s* (default: %s)" % (inline(name), inline(default)))
            out.append("\t" + inline(meaning))
            out.append("")
            continue
        in_table = False
        m = re.match(r"^(#+) (.*)", line)
        if m:
            level = len(m.group(1))
            if level == 1:
                continue  # the page's title: NAME says it
            out.append("%s %s" % ("#" * (level - 1), inline(m.group(2)).upper()
                                  if level == 2 else inline(m.group(2))))
            continue
        if re.match(r"^ {4}[^ -]", line) and not (out and out[-1].startswith("- ")):
            # an indented example, not a wrapped list item
            out.append("\t" + line.strip().replace("\\", "\\\\"))
            continue
        text = inline(line.strip())
        if out and text and not text.startswith("- ") and out[-1].startswith("- "):
            out[-1] += " " + text  # a list item's continuation joins its item
        else:
            out.append(text)
    return out


def main():
    with open(sys.argv[1]) as f:
        body = convert(f.read().splitlines())
    with open(sys.argv[2], "w") as f:
        f.write(HEAD + "# DESCRIPTION\n\n" + "\n".join(body) + "\n" + TAIL)


if __name__ == "__main__":
    main()
