#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Sum JUnit XML reports into one line: "N passed, N failed".

Each <testcase> counts once: failed when it holds <failure> or <error>,
skipped when it holds <skipped>, passed otherwise.  Per-report lines come
first, listing the failed cases; the total is the last line, and the exit
status is 1 when anything failed.
"""
import argparse
import sys
import xml.etree.ElementTree as ET


def count(path):
    passed, failed, skipped, names = 0, 0, 0, []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"{path}: unreadable report: {e}")
        return 0, 1, 0, [path]
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            names.append(f"{case.get('classname', '')}::{case.get('name', '')}")
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra-failures", type=int, default=0)
    ap.add_argument("reports", nargs="*")
    args = ap.parse_args()
    total_p, total_f = 0, args.extra_failures
    for r in args.reports:
        p, f, s, names = count(r)
        total_p += p
        total_f += f
        print(f"{r}: {p} passed, {f} failed, {s} skipped")
        for n in names:
            print(f"  FAILED {n}")
    if args.extra_failures:
        print(f"stages that could not run: {args.extra_failures}")
    print(f"{total_p} passed, {total_f} failed")
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main())
