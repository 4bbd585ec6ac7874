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
import fcntl, json, os, signal, socket, statistics, subprocess, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
extra = sys.argv[2].replace("\\n", "\n") if len(sys.argv) > 2 else ""
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
open(cfg, "w").write('[detection]\nrule_paths = ["%s"]\n[output.syslog]\nenabled = false\n'
                     '[output.jsonl]\nenabled = true\npath = "%s"\n[snapshot]\n%s\n' % (rules, alerts, extra))

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

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

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
