#!/usr/bin/env python3
"""Fetches a Prometheus text exposition (format 0.0.4) and prints it as one JSON object.

Usage: python3 prom_parse.py URL [--timeout SECS]

Prints {"families": {NAME: {"type": T, "help": H, "samples": [{"name": N, "labels": {..},
"value": V}, ...]}}} on stdout and exits 0. On an HTTP error, a wrong Content-Type (it must start
with text/plain and contain version=0.0.4), a parse error, a metric family that appears twice, or a
sample (name + labels) that appears twice: a message on stderr, exit 1.

Notes: the family name is prometheus_client's, which drops a counter's `_total` suffix (family
`x` for a counter whose samples are `x_total`); sample names are as exposed. Values are JSON
numbers, except NaN, +Inf and -Inf, which are given as the strings "NaN", "+Inf" and "-Inf".
A sample's "timestamp" (seconds, float) is included only when the exposition had one.
"""

import argparse
import json
import math
import sys
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    sys.stderr.write(f"prom_parse: {msg}\n")
    sys.exit(1)


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as resp:
            status = resp.status
            ctype = resp.headers.get("Content-Type", "")
            raw = resp.read()
    except urllib.error.HTTPError as e:
        fail(f"GET {args.url}: HTTP {e.code}: {e.read()[:500].decode('utf-8', 'replace')}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"GET {args.url}: {e}")
    if status != 200:
        fail(f"GET {args.url}: HTTP {status}")
    openmetrics = ctype.lower().startswith("application/openmetrics-text")
    if openmetrics:
        if "version=1.0.0" not in ctype.replace(" ", ""):
            fail(f"Content-Type {ctype!r}: OpenMetrics without version=1.0.0")
    elif not ctype.lower().startswith("text/plain") or "version=0.0.4" not in ctype.replace(" ", ""):
        fail(f"Content-Type {ctype!r} is neither the text format (text/plain; version=0.0.4) nor OpenMetrics")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"body is not UTF-8: {e}")

    families = {}
    try:
        # OpenMetrics is parsed with the stricter OpenMetrics parser (it also requires "# EOF").
        parse = openmetrics_families if openmetrics else text_string_to_metric_families
        for fam in parse(text):
            if fam.name in families:
                fail(f"metric family {fam.name!r} appears more than once (not grouped, or TYPE repeated)")
            seen = set()
            samples = []
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    fail(f"duplicate sample {s.name}{dict(s.labels)}")
                seen.add(key)
                out = {"name": s.name, "labels": dict(s.labels), "value": value(float(s.value))}
                if s.timestamp is not None:
                    out["timestamp"] = float(s.timestamp)
                samples.append(out)
            families[fam.name] = {"type": fam.type, "help": fam.documentation, "samples": samples}
    except SystemExit:
        raise
    except Exception as e:  # the parser raises ValueError, but also IndexError/KeyError on junk
        fail(f"parse error: {type(e).__name__}: {e}")

    json.dump({"families": families}, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
