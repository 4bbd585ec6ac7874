#!/usr/bin/env python3
"""Live flood benchmark: a root connect() loop at full speed with `audetect run`,
against the same loop with audit off, under both backlog_wait_time settings.

    sudo bench/flood.py [--seconds S] [--attacks N] [--auditd] [--set KEY=VALUE ...]

The baseline runs with audit turned off (`auditctl -e 0`; put back after).
Then, for backlog_wait_time 0 (records dropped when the backlog is full) and
60000 (the kernel's default: callers wait), one phase each: the loop's
calls/s (root, and non-root which the rules do not match), the kernel's lost
counter and backlog_wait_time_actual before and after, the daemon's CPU and
RSS, what audetect received (from stats.json as rewritten after the phase),
and the delivered latency of N reverse-shell shapes (connect, then setsid)
run idle and during the flood: stamped when the JSON-lines file's tail and a
UDP syslog receiver have each alert. --set adds [kernel] settings; a
backlog_wait_time given there replaces the two. --auditd also runs the loop
under Debian's auditd with audetect's rules and backlog_limit 8192, under the
same backlog_wait_time settings. Holds the kernel test lock; audetect
restores the audit state at its stop, and the auditd phases remove their
rules and restore the status."""
import argparse, json, os, re, signal, socket, subprocess, threading, time

from benchlib import Delivered, fresh_stats, kernel_lock, pct, setup, start_audetect, write_config

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--seconds", type=float, default=5)
ap.add_argument("--attacks", type=int, default=20)
ap.add_argument("--auditd", action="store_true")
ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
args = ap.parse_args()

tmp, actor = setup()
flood = os.path.join(tmp, "flood")
subprocess.run(["cc", "-O2", "-o", flood, "bench/flood.c"], check=True)
hz = os.sysconf("SC_CLK_TCK")


def status():
    """The kernel's audit status, as auditctl -s prints it."""
    out = subprocess.run(["auditctl", "-s"], capture_output=True, text=True, check=True).stdout
    return {k: v for k, v in (l.split(" ", 1) for l in out.splitlines() if " " in l)}


def closed_port():
    """A loopback port nothing listens on: every connect is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_flood(seconds, drop_root=False):
    cmd = [flood, str(closed_port()), str(seconds)] + (["drop-root"] if drop_root else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def rate(p):
    out = p.communicate()[0]
    return float(re.search(r": (\d+) calls/s", out).group(1))


def cpu_ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def rss(pid):
    st = dict(l.split(":", 1) for l in open("/proc/%d/status" % pid).read().splitlines())
    return st["VmRSS"].strip(), st["VmHWM"].strip()


class Listener:
    """The attacker's end of the reverse shells, on loopback."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            self.sock.accept()[0].close()


def attacks(listener, n, spacing):
    """Runs n reverse-shell shapes; returns {pid: wall time setsid() returned}."""
    at = {}
    for _ in range(n):
        out = subprocess.run([actor, "tcp4:%d" % listener.port, "setsid"], capture_output=True, text=True).stdout
        at[int(out.split()[1])] = float(out.rsplit(" at ", 1)[1])
        time.sleep(spacing)
    return at


def show_latency(name, n, readers, setsid_at):
    for reader in ("file", "syslog"):
        rec, act = readers.latencies(reader, setsid_at)
        if not rec:
            print("  %s, %s: NO ALERTS of %d attacks" % (name, reader, n))
            continue
        print("  %s, delivered to the %s reader: %d alerts of %d attacks; from record time p50 %.2f ms "
              "p99 %.2f ms max %.2f ms; from setsid() return p50 %.2f ms p99 %.2f ms" %
              (name, reader, len(rec), n, pct(rec, 50), pct(rec, 99), max(rec), pct(act, 50), pct(act, 99)))


def delta(before, after, key):
    return int(after.get(key, "0").split()[0]) - int(before.get(key, "0").split()[0])


lock = kernel_lock()
found = status()
if found.get("pid", "0") != "0":
    print("note: an audit daemon (pid %s) is registered: audetect will listen on multicast beside it" % found["pid"])
print("audit as found: enabled %s, backlog_limit %s, backlog_wait_time %s, pid %s" %
      (found["enabled"], found["backlog_limit"], found["backlog_wait_time"], found["pid"]))
rules_out = subprocess.run(["auditctl", "-l"], capture_output=True, text=True).stdout.strip()
if rules_out != "No rules":
    print("note: audit rules already loaded:\n" + rules_out)

S = args.seconds
settings = dict(kv.split("=", 1) for kv in args.set)
waits = [settings.pop("backlog_wait_time")] if "backlog_wait_time" in settings else ["0", "60000"]

if found["enabled"] == "2":
    print("\n== audit is locked (enabled 2): the baseline is audit as found, not off (%.0f s each)" % S)
else:
    print("\n== audit off (auditctl -e 0), no audetect (%.0f s each)" % S)
    subprocess.run(["auditctl", "-e", "0"], check=True, capture_output=True)
try:
    base_root = rate(run_flood(S))
    base_user = rate(run_flood(S, drop_root=True))
finally:
    if found["enabled"] != "2":
        subprocess.run(["auditctl", "-e", found["enabled"]], check=True, capture_output=True)
print("  root loop: %.0f calls/s; non-root loop: %.0f calls/s" % (base_root, base_user))


def audetect_phase(wait):
    """audetect with its built-in defaults for everything that touches the
    kernel but backlog_wait_time (and --set); alerts to a JSON-lines file and
    a UDP syslog receiver, and the seed rule's max_signals raised so every
    attack alerts."""
    phase = os.path.join(tmp, "bwt-" + wait)
    os.makedirs(phase)
    kernel = "".join("%s = %s\n" % kv for kv in dict(settings, backlog_wait_time=wait).items())
    readers = Delivered(os.path.join(phase, "alerts.jsonl"))
    cfg, alerts = write_config(phase, before="[kernel]\n" + kernel, syslog_port=readers.port)
    assert alerts == readers.path
    print("\n== audetect run, backlog_wait_time %s%s" % (wait, (", " + ", ".join(args.set)) if args.set else ""))
    d, err = start_audetect(cfg, phase)
    try:
        listener = Listener()
        s0 = status()
        print("  kernel while audetect runs: backlog_limit %s, backlog_wait_time %s, pid %s" %
              (s0["backlog_limit"], s0["backlog_wait_time"], s0["pid"]))
        idle = attacks(listener, args.attacks, 0.02)
        readers.wait(idle)
        show_latency("idle", args.attacks, readers, idle)

        stats1 = fresh_stats(time.time())
        s1, c1, t1 = status(), cpu_ticks(d.pid), time.time()
        p = run_flood(S)
        time.sleep(min(1.0, S / 4))
        during = attacks(listener, args.attacks, max(0.0, (S * 0.6) / args.attacks))
        flood_rate = rate(p)
        # Let the daemon drain what the kernel still holds, then read its figures.
        time.sleep(2.5)
        s2, c2, t2 = status(), cpu_ticks(d.pid), time.time()
        stats2 = fresh_stats(t2)
        r_now, r_peak = rss(d.pid)
        print("  root loop: %.0f calls/s (%.1f%% of audit off)" % (flood_rate, 100 * flood_rate / base_root))
        print("  kernel lost: +%d; backlog_wait_time_actual: +%d jiffies (time the loop was held back)" %
              (delta(s1, s2, "lost"), delta(s1, s2, "backlog_wait_time_actual")))
        recv = stats2["received"]["records"] - stats1["received"]["records"]
        print("  audetect: %d records received (%.0f/s over the loop), socket overflows +%d, missing serials +%d, "
              "CPU %.0f%% of one core, RSS %s (peak %s)" %
              (recv, recv / S, stats2["lost"]["socket_overflows"] - stats1["lost"]["socket_overflows"],
               stats2["lost"]["missing_serials"] - stats1["lost"]["missing_serials"],
               100.0 * (c2 - c1) / hz / (t2 - t1), r_now, r_peak))
        readers.wait(during)
        show_latency("during the flood", args.attacks, readers, during)
        user_rate = rate(run_flood(S, drop_root=True))
        print("  non-root loop: %.0f calls/s (%.1f%% of audit off)" % (user_rate, 100 * user_rate / base_user))
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
        readers.stop = True
    for line in open(err).read().strip().splitlines():
        if "warning" in line or "error" in line or "stopped" in line:
            print("  " + line)


def auditd_phase(wait):
    print("\n== Debian's auditd, audetect's rules, backlog_limit 8192, backlog_wait_time %s" % wait)
    conf_dir = os.path.join(tmp, "auditd-" + wait)
    os.makedirs(os.path.join(conf_dir, "plugins"))
    open(os.path.join(conf_dir, "auditd.conf"), "w").write(
        "local_events = yes\nwrite_logs = yes\nlog_file = %s/audit.log\nlog_group = root\nlog_format = RAW\n"
        "flush = NONE\nfreq = 0\nmax_log_file = 1000\nnum_logs = 1\nmax_log_file_action = ROTATE\n"
        "space_left = 2\nspace_left_action = IGNORE\nadmin_space_left = 1\nadmin_space_left_action = IGNORE\n"
        "disk_full_action = IGNORE\ndisk_error_action = IGNORE\nplugin_dir = %s/plugins\nq_depth = 2000\n"
        "name_format = NONE\n" % (conf_dir, conf_dir))
    before = status()
    a = subprocess.Popen(["/usr/sbin/auditd", "-f", "-n", "-s", "nochange", "-c", conf_dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while status()["pid"] != str(a.pid):
            assert time.time() < deadline, "auditd did not register"
            time.sleep(0.1)
        subprocess.run(["auditctl", "-R", "audit-rules/audetect.rules"], check=True, capture_output=True)
        subprocess.run(["auditctl", "-e", "1", "-b", "8192", "--backlog_wait_time", wait], check=True,
                       capture_output=True)
        s1, c1, t1 = status(), cpu_ticks(a.pid), time.time()
        r = rate(run_flood(S))
        time.sleep(2.5)
        s2, c2, t2 = status(), cpu_ticks(a.pid), time.time()
        print("  root loop: %.0f calls/s (%.1f%% of audit off); kernel lost +%d; backlog_wait_time_actual +%d "
              "jiffies; auditd CPU %.0f%% of one core" %
              (r, 100 * r / base_root, delta(s1, s2, "lost"), delta(s1, s2, "backlog_wait_time_actual"),
               100.0 * (c2 - c1) / hz / (t2 - t1)))
    finally:
        for key in ("audetect-connect", "audetect-setsid", "audetect-clock"):
            subprocess.run(["auditctl", "-D", "-k", key], capture_output=True)
        a.send_signal(signal.SIGTERM)
        a.wait(timeout=15)
        subprocess.run(["auditctl", "-e", before["enabled"], "-b", before["backlog_limit"],
                        "--backlog_wait_time", before["backlog_wait_time"]], check=True, capture_output=True)


for wait in waits:
    audetect_phase(wait)
if args.auditd:
    for wait in waits:
        auditd_phase(wait)

after = status()
changed = [k for k in ("enabled", "backlog_limit", "backlog_wait_time", "pid") if after[k] != found[k]]
left = subprocess.run(["auditctl", "-l"], capture_output=True, text=True).stdout.strip()
print("\naudit state afterwards: %s; rules: %s" %
      ("as found" if not changed else "CHANGED " + ", ".join("%s %s -> %s" % (k, found[k], after[k]) for k in changed),
       "as found" if left == rules_out else left))
