#!/usr/bin/env python3
"""Whether two runs of `audetect replay` (JSON lines) made the same alerts,
in the same order, ignoring the alert's own @timestamp (the wall clock at
which it was made): how a change to detection is checked against the build
before it.

    bench/same-alerts.py A.json B.json"""
import json, sys

def load(path):
    out = []
    for line in open(path, encoding="utf-8"):
        doc = json.loads(line)
        doc.pop("@timestamp", None)
        out.append(json.dumps(doc, sort_keys=True))
    return out

a, b = load(sys.argv[1]), load(sys.argv[2])
first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
if first is None and len(a) == len(b):
    print("same %d alerts" % len(a))
    sys.exit(0)
print("differ: %d and %d alerts, first difference at alert %s" % (len(a), len(b), first if first is not None else min(len(a), len(b))))
sys.exit(1)
