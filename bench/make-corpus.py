#!/usr/bin/env python3
"""Builds a large auditd-format log from records captured on a real kernel
(tests/fixtures/scenarios.log), for the replay benchmark.

    bench/make-corpus.py RECORDS OUT.log

Each copy of the captured scenarios gets its own serials, a later record
time (10 ms per copy) and its own pids, so reassembly, entity tracking and
detection work as they would on a long real log."""
import re, sys

n, out = int(sys.argv[1]), sys.argv[2]
src = open(sys.argv[3] if len(sys.argv) > 3 else "tests/fixtures/scenarios.log", encoding="latin-1").read().splitlines()
hdr = re.compile(r"msg=audit\((\d+)\.(\d{3}):(\d+)\)")
pidre = re.compile(r"\b(pid|ppid)=(\d+)")
base = None
recs = []
for line in src:
    m = hdr.search(line)
    t = int(m.group(1)) * 1000 + int(m.group(2))
    base = t if base is None else base
    recs.append((line, t - base, int(m.group(3))))
max_serial = max(r[2] for r in recs) + 1
written = 0
copy = 0
with open(out, "w", encoding="latin-1") as f:
    while written < n:
        for line, dt, serial in recs:
            t = base + copy * 10 + dt
            s = serial + copy * max_serial
            l = hdr.sub("msg=audit(%d.%03d:%d)" % (t // 1000, t % 1000, s), line, count=1)
            l = pidre.sub(lambda m: "%s=%d" % (m.group(1), 1000 + (int(m.group(2)) + copy * 7) % 4000000), l)
            f.write(l + "\n")
            written += 1
            if written >= n:
                break
        copy += 1
print("wrote %d records (%d copies of %d captured records) to %s" % (written, copy, len(recs), out))
