#!/usr/bin/env python3
"""Delivered alert latency and daemon footprint of `audetect run`, measured
on the real kernel: N reverse-shell shapes (connect to loopback, then
setsid) spaced apart, each alert stamped when its reader has it (the
JSON-lines file tailed, and a UDP syslog receiver on loopback), against the
setsid's time.

    sudo bench/latency.py [N]      (default 200; builds release first)

Two figures per reader: from the setsid record's own time (millisecond
precision, as audit stamps it) and from the wall-clock instant the actor
read right after setsid() returned (microseconds). Holds the kernel test
lock, restores audit state by way of the daemon's own clean stop."""
import os, signal, socket, subprocess, sys, time

from benchlib import Delivered, kernel_lock, pct, setup, start_audetect, write_config

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
tmp, actor = setup()
lock = kernel_lock()
# The readers first: the syslog receiver's port goes in the config.
readers = Delivered(os.path.join(tmp, "alerts.jsonl"))
cfg, alerts = write_config(tmp, syslog_port=readers.port)
assert alerts == readers.path
d, err = start_audetect(cfg, tmp)
try:
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1024)
    port = l.getsockname()[1]
    setsid_at = {}
    for i in range(N):
        out = subprocess.run([actor, "tcp4:%d" % port, "setsid"], capture_output=True, text=True).stdout
        pid = int(out.split()[1])
        setsid_at[pid] = float(out.rsplit(" at ", 1)[1])
        l.accept()[0].close()
        time.sleep(0.01)
    readers.wait(setsid_at)
    status = open("/proc/%d/status" % d.pid).read()
    rss = {k: v.strip() for k, v in (x.split(":", 1) for x in status.splitlines()) if k in ("VmRSS", "VmHWM")}
finally:
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=15)

for reader in ("file", "syslog"):
    rec, act = readers.latencies(reader, setsid_at)
    print("%s: %d alerts of %d scenarios" % (reader, len(rec), N))
    if not rec:
        continue
    for name, xs in (("from setsid record time (ms stamp)", rec), ("from setsid() return (actor clock)", act)):
        print("  delivered %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (name, pct(xs, 50), pct(xs, 99), max(xs)))
print("daemon RSS: %s now, %s peak" % (rss.get("VmRSS"), rss.get("VmHWM")))
for line in open(err).read().strip().splitlines():
    if "warning" in line or line.startswith("audetect: info: stopped"):
        print(line)
