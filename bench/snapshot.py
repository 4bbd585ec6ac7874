#!/usr/bin/env python3
"""The triage snapshot's cost per alert, measured on the real kernel: N
reverse shells (connect to loopback, dup the socket onto stdin/stdout/stderr,
setsid, stay alive a moment), each started through two shells, and the
`audetect.snapshot.duration_us` of each alert.

    sudo bench/snapshot.py [N] [CONFIG-LINES]   (default 100; builds release first)

CONFIG-LINES are appended to the [snapshot] section, e.g. 'hash = false'.
With FRESH_EXE=BYTES in the environment, every shell runs its own copy of
the actor padded to BYTES, so that each alert hashes an executable it has
not seen (the hash cache otherwise makes repeats free).
Holds the kernel test lock; the daemon's own clean stop restores audit state."""
import json, os, signal, socket, statistics, subprocess, sys, time

from benchlib import kernel_lock, pct, setup, start_audetect, write_config

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
extra = sys.argv[2].replace("\\n", "\n") if len(sys.argv) > 2 else ""
tmp, actor = setup()
cfg, alerts = write_config(tmp, after="[snapshot]\n%s\n" % extra)
lock = kernel_lock()
d, err = start_audetect(cfg, tmp)
try:
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1024)
    port = l.getsockname()[1]
    fresh = int(os.environ.get("FRESH_EXE", "0"))
    for i in range(N):
        exe = actor
        if fresh:
            exe = os.path.join(tmp, "actor-%d" % i)
            data = open(actor, "rb").read()
            open(exe, "wb").write(data + b"\0" * max(0, fresh - len(data)))
            os.chmod(exe, 0o755)
        inner = "%s tcp4:%d dup-stdio setsid sleep:100; true" % (exe, port)
        sh = subprocess.Popen(["sh", "-c", 'sh -c "%s"; true' % inner], stdout=subprocess.PIPE)
        sh.stdout.readline()
        conn = l.accept()[0]
        sh.wait()
        conn.close()
        sh.stdout.close()
    deadline = time.time() + 10
    while time.time() < deadline and sum(1 for _ in open(alerts)) < N:
        time.sleep(0.05)
finally:
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=15)

durations, sizes, statuses = [], [], {}
for line in open(alerts):
    a = json.loads(line)
    s = a["audetect"]["snapshot"]
    durations.append(s["duration_us"])
    sizes.append(len(line.rstrip("\n")))
    for piece, st in s["status"].items():
        statuses.setdefault(piece, {}).setdefault(st, 0)
        statuses[piece][st] += 1
print("alerts: %d of %d reverse shells" % (len(durations), N))
print("snapshot duration: p50 %d us, p99 %d us, max %d us, mean %.0f us" % (
    pct(durations, 50), pct(durations, 99), max(durations), statistics.mean(durations)))
print("alert size: p50 %d bytes, max %d bytes" % (pct(sizes, 50), max(sizes)))
print("piece statuses: %s" % json.dumps(statuses, sort_keys=True))
