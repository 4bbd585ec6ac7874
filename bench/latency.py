#!/usr/bin/env python3
"""Delivered alert latency and daemon footprint of `audetect run`, measured
on the real kernel: N reverse-shell shapes (connect to loopback, then
setsid) spaced apart, each alert stamped when its reader has it (the
JSON-lines file tailed, and a UDP syslog receiver on loopback), against the
setsid's time.

    sudo bench/latency.py [N] [--storm [PACK ...]]   (default 200; builds release first)

With --storm, the shells run during an exec storm: bench/execloop.c's two
workers fork and exec /bin/true at full speed while Elastic's Linux rule
pack (PACK, default /work/shared/elastic-rules) is loaded beside the
built-in rule, so that every fork, exec and exit is audited and offered to
the pack's rules.

Two figures per reader: from the setsid record's own time (millisecond
precision, as audit stamps it) and from the wall-clock instant the actor
read right after setsid() returned (microseconds). Holds the kernel test
lock, restores audit state by way of the daemon's own clean stop."""
import argparse, os, signal, socket, subprocess, sys, time

from benchlib import Delivered, fresh_stats, kernel_lock, pct, setup, start_audetect, ts, write_config

ap = argparse.ArgumentParser()
ap.add_argument("n", nargs="?", type=int, default=200)
ap.add_argument("--storm", nargs="*", metavar="PACK")
args = ap.parse_args()
N = args.n
pack = (args.storm or ["/work/shared/elastic-rules"]) if args.storm is not None else []
tmp, actor = setup()
lock = kernel_lock()
# The readers first: the syslog receiver's port goes in the config.
readers = Delivered(os.path.join(tmp, "alerts.jsonl"))
cfg, alerts = write_config(tmp, syslog_port=readers.port, rule_paths=pack)
assert alerts == readers.path
d, err = start_audetect(cfg, tmp)
storm = None
try:
    if pack:
        execloop = os.path.join(tmp, "execloop")
        subprocess.run(["cc", "-O2", "-o", execloop, "bench/execloop.c"], check=True)
        storm = subprocess.Popen([execloop, "1000000000", "2"], stdout=subprocess.DEVNULL,
                                 start_new_session=True)
        time.sleep(2)  # at full rate before the first shell
        storm_from = fresh_stats(time.time())
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
    if storm:
        storm_to = fresh_stats(time.time())
        os.killpg(storm.pid, signal.SIGKILL)
        storm.wait()
        storm = None
    status = open("/proc/%d/status" % d.pid).read()
    rss = {k: v.strip() for k, v in (x.split(":", 1) for x in status.splitlines()) if k in ("VmRSS", "VmHWM")}
finally:
    if storm:
        os.killpg(storm.pid, signal.SIGKILL)
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
if pack:
    t = ts(storm_to["updated"]) - ts(storm_from["updated"])
    ev = storm_to["received"]["events"] - storm_from["received"]["events"]
    lost = storm_to["lost"]["kernel"] - storm_from["lost"]["kernel"]
    print("during the storm: %d audit events in %.1f s (%.0f/s), %d records lost by the kernel, %d detection rules"
          % (ev, t, ev / max(t, 1e-3), lost, storm_to["detection_rules"]))
for line in open(err).read().strip().splitlines():
    if "warning" in line or line.startswith("audetect: info: stopped"):
        print(line)
