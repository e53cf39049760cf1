#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""md2man.py VERSION PAGE.md OUT.1: a docs/cli page as a man page (duet-<command>(1)).

Handles what docs/cli uses: headings, paragraphs, fenced code blocks, bullet lists, tables
(each row becomes a tagged paragraph: first cell as the tag) and inline `code`, **bold**,
[links](target). Everything is escaped for roff: backslashes, leading dots and quotes,
hyphens in options. Run by meson at build time; Python 3 standard library only."""

import re
import sys


def esc(text):
    """Plain text for roff: backslash, then a line start that roff would read as a request."""
    return text.replace("\\", "\\e")


def inline(text):
    """Markdown inline markup to roff fonts; the result is one roff text line."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\([^)]*\)", text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)).replace("-", "\\-") + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        else:
            out.append(inline(m.group(3)))
        pos = m.end()
    out.append(esc(text[pos:]))
    line = "".join(out).replace("\\|", "|")
    return "\\&" + line if line[:1] in (".", "'") else line


def cells(row):
    """The cells of a markdown table row; `\\|` inside a cell is a literal bar."""
    row = row.strip().strip("|")
    return [c.strip().replace("\0", "\\|") for c in row.replace("\\|", "\0").split("|")]


def convert(md, version):
    lines = md.splitlines()
    title = lines[0].lstrip("# ").strip()          # "duet cert issue"
    name = title.replace(" ", "-")                   # "duet-cert-issue"
    body, i, summary = [], 1, None
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            if not body:
                body.append(".SH SYNOPSIS")
            body += [".PP", ".nf", ".RS 4"]
            body += ["\\&" + esc(b).replace("-", "\\-") for b in block]
            body += [".RE", ".fi"]
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            text = line.lstrip("#").strip()
            body.append((".SH " if level <= 2 else ".SS ") + inline(text.upper() if level <= 2
                                                                    else text))
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            i -= 1
            head, data = rows[0], [r for r in rows[2:]]
            for r in data:
                body += [".TP", inline(r[0])]
                rest = ["%s: %s" % (h, c) if len(r) > 2 else c for h, c in zip(head[1:], r[1:])]
                body.append(inline("; ".join(rest)))
        elif line.startswith("- "):
            body += [".IP \\(bu 2", inline(line[2:].strip())]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                body.append(inline(lines[i].strip()))
        elif line.strip():
            para = [line.strip()]
            while (i + 1 < len(lines) and lines[i + 1].strip() and
                   not re.match(r"(#|```|\||- )", lines[i + 1])):
                i += 1
                para.append(lines[i].strip())
            text = " ".join(para)
            if summary is None:
                summary = re.split(r"(?<=[.:])\s", text, 1)[0].rstrip(".:")
                body.append(".SH DESCRIPTION")
            body += [".PP", inline(text)]
        i += 1
    summary = re.sub(r"[`*]|\[([^\]]+)\]\([^)]*\)", r"\1", summary or title)
    head = ['.\\" Generated from docs/cli/%s.md by scripts/md2man.py; edit that page.' % name[5:],
            '.TH %s 1 "" "duet %s" "duet manual"' % (name.upper(), version),
            ".ad l",
            ".SH NAME",
            "%s \\- %s" % (name.replace("-", "\\-"), esc(summary))]
    tail = [".SH SEE ALSO", "\\fBduet\\fR(1); \\fB%s \\-\\-help\\fR" % title.replace("-", "\\-")]
    return "\n".join(head + body + tail) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: md2man.py VERSION PAGE.md OUT.1\n")
        return 2
    with open(sys.argv[2], encoding="utf-8") as f:
        text = convert(f.read(), sys.argv[1])
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
