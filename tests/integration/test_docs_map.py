# SPDX-License-Identifier: Apache-2.0
"""docs/development.md's source map stays true: every file under src/ and include/ has its
line, and every line names a file that exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def mapped():
    text = (REPO / "docs" / "development.md").read_text()
    section = text.split("## Source map", 1)[1].split("\n## ", 1)[0]
    out, cur = set(), None
    for line in section.splitlines():
        m = re.match(r"^`([\w/]+)/`$", line.strip())
        if m:
            cur = m.group(1)
            continue
        m = re.match(r"^- `([\w.]+)`: \S", line)
        if m:
            assert cur is not None, "a file line before any directory: %r" % line
            out.add("%s/%s" % (cur, m.group(1)))
    return out


def test_every_source_file_is_on_the_map_and_nothing_else():
    files = {str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*")
             if p.suffix in (".c", ".h", ".map")}
    files |= {str(p.relative_to(REPO)) for p in (REPO / "include").glob("*.h")}
    m = mapped()
    assert files - m == set(), "files missing from docs/development.md's source map"
    assert m - files == set(), "the source map names files that do not exist"
