#!/usr/bin/env python3
"""Run a gfn-bench command and check its stdout is exactly one JSON object
in the shape every scenario promises. Usage: check_bench_json.py CMD ARGS..."""
import json
import os
import numbers
import subprocess
import sys


def fail(msg):
    print("check_bench_json: " + msg, file=sys.stderr)
    sys.exit(1)


def check_result(i, r):
    for key in ("case", "metric", "unit"):
        if not isinstance(r.get(key), str) or not r[key]:
            fail("results[%d]: missing or empty string %r" % (i, key))
    for key in ("value", "p50", "p99", "ratio"):
        if key in r and not isinstance(r[key], numbers.Real):
            fail("results[%d]: %r is not a number" % (i, key))
    if "value" not in r:
        fail("results[%d]: no value" % i)
    if "baseline" in r:
        b = r["baseline"]
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) \
                or not isinstance(b.get("value"), numbers.Real):
            fail("results[%d]: baseline needs name and value" % i)


def main():
    if len(sys.argv) < 3:
        fail("usage: check_bench_json.py GFN_BENCH SCENARIO [OPTIONS]")
    proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    if proc.returncode == 77:
        # The scenario's hardware is absent: pass the skip on to ctest.
        print("check_bench_json: skipped (exit 77)")
        sys.exit(77)
    if proc.returncode != 0:
        fail("%s exited %d" % (" ".join(sys.argv[1:]), proc.returncode))
    try:
        doc = json.loads(proc.stdout)
    except ValueError as err:
        fail("stdout is not one JSON object: %s\n%s" % (err, proc.stdout))
    # gfn-bench SCENARIO: the scenario's name; a standalone tool (gfn-sim):
    # its program name.
    want = os.path.basename(sys.argv[1])
    if want == "gfn-bench":
        want = sys.argv[2]
    if not isinstance(doc, dict) or doc.get("bench") != want:
        fail("'bench' is %r, not %r" % (doc.get("bench"), want))
    results = doc.get("results")
    if not isinstance(results, list) or not results:
        fail("'results' is missing or empty")
    for i, r in enumerate(results):
        check_result(i, r)
    if "meta" in doc and not isinstance(doc["meta"], dict):
        fail("'meta' is not an object")
    print("check_bench_json: %d results OK" % len(results))


main()
