#!/usr/bin/env python3
"""Alert latency and daemon footprint of `audetect run`, measured on the real
kernel: N reverse-shell shapes (connect to loopback, then setsid) spaced
apart, each alert's creation time against the setsid's time.

    sudo bench/latency.py [N]      (default 200; builds release first)

Two figures per alert: from the setsid record's own time (millisecond
precision, as audit stamps it) and from the wall-clock instant the actor
read right after setsid() returned (microseconds). Holds the kernel test
lock, restores audit state by way of the daemon's own clean stop."""
import json, signal, socket, subprocess, sys, time

from benchlib import kernel_lock, pct, setup, start_audetect, ts, write_config

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
tmp, actor = setup()
cfg, alerts = write_config(tmp)
lock = kernel_lock()
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
    deadline = time.time() + 10
    while time.time() < deadline and sum(1 for _ in open(alerts)) < N:
        time.sleep(0.05)
    status = open("/proc/%d/status" % d.pid).read()
    rss = {k: v.strip() for k, v in (x.split(":", 1) for x in status.splitlines()) if k in ("VmRSS", "VmHWM")}
finally:
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=15)

from_record, from_actor = [], []
for line in open(alerts):
    a = json.loads(line)
    made = ts(a["@timestamp"])
    from_record.append((made - ts(a["events"][1]["@timestamp"])) * 1000)
    from_actor.append((made - setsid_at[a["process"]["pid"]]) * 1000)

print("alerts: %d of %d scenarios" % (len(from_record), N))
for name, xs in (("from setsid record time (ms stamp)", from_record), ("from setsid() return (actor clock)", from_actor)):
    print("latency %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (name, pct(xs, 50), pct(xs, 99), max(xs)))
print("daemon RSS: %s now, %s peak" % (rss.get("VmRSS"), rss.get("VmHWM")))
for line in open(err).read().strip().splitlines():
    if "warning" in line or line.startswith("audetect: info: stopped"):
        print(line)
