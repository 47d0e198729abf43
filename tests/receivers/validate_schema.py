#!/usr/bin/env python3
"""Validates every line of NDJSON files against a JSON Schema (draft 2020-12).

Usage: python3 validate_schema.py SCHEMA.json FILE [FILE...] [--allow-empty]

Checks the schema itself first (exit 1 if it is not a valid 2020-12 schema). Then every line of
every FILE must be one JSON document that validates, with formats asserted. On success prints
`ok N documents` (N over all files) on stdout, exit 0. On failure prints `FILE:LINE: MESSAGE at
JSONPATH` for the first 20 failing lines (one per line: the best-matching error), then a summary, on
stderr, exit 1. Empty lines, invalid JSON (including NaN/Infinity and duplicate keys) and, unless
--allow-empty, files with no documents at all are failures too. A final trailing newline is fine.
"""

import argparse
import json
import re
import sys
from datetime import datetime

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

MAX_REPORTED = 20


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


def _pairs_no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)


def _is_rfc3339(s):
    if not isinstance(s, str):
        return True
    m = _RFC3339.match(s)
    if not m:
        return False
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    try:
        datetime(y, mo, d, h, mi, min(sec, 59))  # leap second 60 allowed by RFC 3339
    except ValueError:
        return False
    if sec > 60:
        return False
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    return True


def format_checker():
    checker = Draft202012Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:
        # jsonschema only checks date-time with rfc3339-validator installed; without it the
        # format would silently pass anything. Fall back to a stdlib RFC 3339 check.
        checker.checks("date-time")(_is_rfc3339)
    return checker


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("schema")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--allow-empty", action="store_true", help="a file with no lines is not a failure")
    args = ap.parse_args()

    try:
        with open(args.schema, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"{args.schema}: cannot load schema: {e}\n")
        return 1
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        sys.stderr.write(f"{args.schema}: not a valid draft 2020-12 schema: {e.message} at {e.json_path}\n")
        return 1
    validator = Draft202012Validator(schema, format_checker=format_checker())

    documents = 0
    failures = 0

    def report(msg):
        nonlocal failures
        failures += 1
        if failures <= MAX_REPORTED:
            sys.stderr.write(msg + "\n")

    for path in args.files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            report(f"{path}:0: cannot read: {e}")
            continue
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        if not lines and not args.allow_empty:
            report(f"{path}:0: no documents (empty file)")
        for n, raw in enumerate(lines, start=1):
            documents += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                report(f"{path}:{n}: not UTF-8: {e} at $")
                continue
            if not text.strip():
                report(f"{path}:{n}: empty line at $")
                continue
            try:
                doc = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_pairs_no_duplicates)
            except ValueError as e:
                report(f"{path}:{n}: invalid JSON: {e} at $")
                continue
            err = best_match(validator.iter_errors(doc))
            if err is not None:
                report(f"{path}:{n}: {err.message} at {err.json_path}")

    if failures:
        if failures > MAX_REPORTED:
            sys.stderr.write(f"... {failures - MAX_REPORTED} more failures not shown\n")
        sys.stderr.write(f"FAILED: {failures} failures in {documents} documents\n")
        return 1
    print(f"ok {documents} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
