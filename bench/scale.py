#!/usr/bin/env python3
"""What audetect's memory grows with, measured on the real kernel: its RSS
with N live processes in the process table (seeded from /proc at start)
against none, at a bound above N and at the default bound; then with M
pending sequences (M root processes that connect over TCP and never call
setsid) against M that call setsid only (as many records and process
entries, no sequence).

    sudo bench/scale.py [N] [M]   (default 100000 10000; builds release first)

Raises /proc/sys/kernel/pid_max for the sleepers while it runs and puts it
back. Holds the kernel test lock; the daemon's own clean stop restores the
audit state."""
import os, signal, socket, subprocess, sys, threading, time

from benchlib import fresh_stats, kernel_lock, setup, start_audetect, write_config

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
M = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
tmp, _ = setup()
scale = os.path.join(tmp, "scale")
subprocess.run(["cc", "-O", "-o", scale, "bench/scale.c"], check=True)


def rss_kib(pid):
    f = dict(l.split(":", 1) for l in open("/proc/%d/status" % pid))
    return int(f["VmRSS"].split()[0]), int(f["VmHWM"].split()[0])


def measure(detection, during=None):
    """Starts audetect with these [detection] lines, runs `during` (if any),
    and returns (seconds to ready, stats after, VmRSS KiB, VmHWM KiB)."""
    cfg, _ = write_config(tmp, detection=detection)
    t0 = time.time()
    d, err = start_audetect(cfg, tmp)
    ready = time.time() - t0
    try:
        if during:
            during()
        stats = fresh_stats(time.time())
        rss, hwm = rss_kib(d.pid)
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait()
    return ready, stats, rss, hwm


lock = kernel_lock()
bound = 1 << (N + 20_000).bit_length()
wide = "max_processes = %d\nmax_pending_events = %d\n" % (bound, 2 * M)

print("process table: %d live processes, [detection] max_processes = %d" % (N, bound))
_, s0, rss0, _ = measure(wide)
pid_max = open("/proc/sys/kernel/pid_max").read().strip()
sleepers = None
try:
    if int(pid_max) < N + 40_000:
        open("/proc/sys/kernel/pid_max", "w").write(str(N + 40_000))
    sleepers = subprocess.Popen([scale, "sleepers", str(N)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert sleepers.stdout.readline().strip() == "ready", "sleepers did not start"
    ready1, s1, rss1, hwm1 = measure(wide)
    ready2, s2, rss2, hwm2 = measure("")
finally:
    if sleepers:
        sleepers.stdin.close()
        sleepers.wait()
    open("/proc/sys/kernel/pid_max", "w").write(pid_max)
p0, p1, p2 = s0["processes"], s1["processes"], s2["processes"]
per = (rss1 - rss0) * 1024 / max(1, p1["tracked"] - p0["tracked"])
print("  none:    tracked %6d  VmRSS %7.1f MiB" % (p0["tracked"], rss0 / 1024))
print("  wide:    tracked %6d  VmRSS %7.1f MiB (peak %.1f)  ready in %.1f s  evicted %d"
      % (p1["tracked"], rss1 / 1024, hwm1 / 1024, ready1, p1["evicted"]))
print("  default: tracked %6d  VmRSS %7.1f MiB (peak %.1f)  ready in %.1f s  evicted %d (not tracked at start)"
      % (p2["tracked"], rss2 / 1024, hwm2 / 1024, ready2, p2["not_seeded"]))
print("  per process entry: %.0f bytes" % per)


def children(what):
    """`scale connect M PORT` to a listener that accepts, or `scale setsid M`."""
    def run():
        args = [scale, "setsid", str(M)]
        if what == "connect":
            l = socket.socket()
            l.bind(("127.0.0.1", 0))
            l.listen(4096)
            threading.Thread(target=lambda: [l.accept()[0].close() for _ in range(M)],
                             daemon=True).start()
            args = [scale, "connect", str(M), str(l.getsockname()[1])]
        out = subprocess.run(args, capture_output=True, text=True)
        assert out.stdout.strip() == "done", out.stderr
    return run


print("pending sequences: %d root processes connect to 127.0.0.1 and never call setsid,"
      " against %d that call setsid only" % (M, M))
_, ss, rsss, _ = measure(wide, children("setsid"))
_, sc, rssc, _ = measure(wide, children("connect"))
for name, s, rss in (("setsid only", ss, rsss), ("connect only", sc, rssc)):
    d = s["detection"]
    print("  %-12s events %6d  pending events %6d  VmRSS %6.1f MiB  dropped %d"
          % (name, d["events"], d["pending_events"], rss / 1024, d["dropped_pending"]))
pending = sc["detection"]["pending_events"] - ss["detection"]["pending_events"]
print("  per pending event: %.0f bytes" % ((rssc - rsss) * 1024 / max(1, pending)))
