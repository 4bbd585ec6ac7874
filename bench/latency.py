#!/usr/bin/env python3
"""Alert latency and daemon footprint of `audetect run`, measured on the real
kernel: N reverse-shell shapes (connect to loopback, then setsid) spaced
apart, each alert's creation time against the setsid's time.

    sudo bench/latency.py [N]      (default 200; builds release first)

Two figures per alert: from the setsid record's own time (millisecond
precision, as audit stamps it) and from the wall-clock instant the actor
read right after setsid() returned (microseconds). Holds the kernel test
lock, restores audit state by way of the daemon's own clean stop."""
import fcntl, json, os, signal, socket, statistics, subprocess, sys, tempfile, time
from datetime import datetime

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
subprocess.run(["cargo", "build", "--release", "--locked", "-q"], check=True)
tmp = tempfile.mkdtemp(prefix="audetect-bench-")
actor = os.path.join(tmp, "actor")
subprocess.run(["cc", "-O", "-pthread", "-o", actor, "tests/actor/actor.c"], check=True)
alerts = os.path.join(tmp, "alerts.jsonl")
cfg = os.path.join(tmp, "audetect.toml")
# The built-in rule with max_signals raised, so every scenario alerts.
rules = os.path.join(tmp, "rules")
os.mkdir(rules)
seed = open("rules/suspicious_network_connection_attempt_by_root.toml").read()
open(os.path.join(rules, "seed.toml"), "w").write(seed.replace("max_signals = 100", "max_signals = 100000"))
open(cfg, "w").write('[detection]\nrule_paths = ["%s"]\n[output.syslog]\nenabled = false\n[output.jsonl]\nenabled = true\npath = "%s"\n' % (rules, alerts))

lock = open("/run/lock/audetect-tests.lock", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
err = open(os.path.join(tmp, "stderr"), "w+")
d = subprocess.Popen(["target/release/audetect", "run", "--config", cfg], stderr=err)
try:
    while "ready:" not in open(err.name).read():
        time.sleep(0.05)
        assert d.poll() is None, open(err.name).read()
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

def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

from_record, from_actor = [], []
for line in open(alerts):
    a = json.loads(line)
    made = ts(a["@timestamp"])
    from_record.append((made - ts(a["events"][1]["@timestamp"])) * 1000)
    from_actor.append((made - setsid_at[a["process"]["pid"]]) * 1000)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

print("alerts: %d of %d scenarios" % (len(from_record), N))
for name, xs in (("from setsid record time (ms stamp)", from_record), ("from setsid() return (actor clock)", from_actor)):
    print("latency %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (name, pct(xs, 50), pct(xs, 99), max(xs)))
print("daemon RSS: %s now, %s peak" % (rss.get("VmRSS"), rss.get("VmHWM")))
for line in open(err.name).read().strip().splitlines():
    if "warning" in line or line.startswith("audetect: info: stopped"):
        print(line)
