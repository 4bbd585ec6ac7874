#!/usr/bin/env python3
"""Exec benchmark (issue 14): an exec-heavy workload with Elastic's whole
Linux rule pack loaded, against audit off and against Debian's auditd.

    sudo bench/exec.py [PACK ...] [--execs N] [--jobs J] [--runs R] [--no-auditd] [--keep]

PACK: rule files or directories for rule_paths (default
/work/shared/elastic-rules). The workload is bench/execloop.c: J workers
(default 2, one per core here) fork and exec /bin/true, N execs per run
(default 20000), R runs per phase (default 3). The phases:

  audit off   no rules, enabled 0 (run first and again last: the machine
              is shared, and the baseline is the median of both);
  audetect    `audetect run` with the pack, its default kernel settings;
  auditd      Debian's auditd (auditd -n with a scratch config writing its
              log as RAW records; not -f, under which it writes no log)
              with the audit rules `audetect rules -c CONFIG` prints, and
              the enabled, backlog_limit and backlog_wait_time audetect ran
              with.

Prints for each phase the achieved exec rate, the median wall time and the
workload's CPU time (its user+system time, the kernel's audit work in its
system calls included: other load disturbs it less than the wall time),
and their ratios to audit off; the growth of the kernel's lost counter and
of backlog_wait_time_actual (how long audited processes were held back);
for audetect its counters from `audetect status`, for auditd the records it
wrote; the daemon's CPU (utime+stime) per 1k records and per 1k events, and
its peak RSS (VmHWM). Counters cover all runs of a phase and the drain after
them. Other processes' execs on the machine are audited too: records per
workload exec shows how much that adds.

Holds the kernel test lock. Refuses to start when an audit daemon is
registered, audit is locked or audetect's rules are loaded. At the end, and
on error or Ctrl-C: stops what it started, removes the rules keyed audetect*
(only its own), puts enabled, backlog_limit and backlog_wait_time back as
found, checks auditd is no longer the registered audit daemon, and says
whether the audit state is as found (exit 1 if not)."""
import argparse, atexit, json, os, re, shutil, signal, statistics, subprocess, sys, time, traceback

from benchlib import BIN, kernel_lock, setup, ts

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("pack", nargs="*", default=["/work/shared/elastic-rules"])
ap.add_argument("--execs", type=int, default=20000, help="execs per run")
ap.add_argument("--jobs", type=int, default=2, help="workers exec'ing in parallel")
ap.add_argument("--runs", type=int, default=3, help="runs per phase")
ap.add_argument("--no-auditd", action="store_true", help="skip the auditd phase")
ap.add_argument("--keep", action="store_true", help="keep the scratch directory (config, logs)")
args = ap.parse_args()
# Phases take minutes: show each line as it comes, also through a pipe.
sys.stdout.reconfigure(line_buffering=True)
if os.geteuid() != 0:
    sys.exit("exec.py: must run as root (it changes the kernel's audit state)")
for p in args.pack:
    if not os.path.exists(p):
        sys.exit("exec.py: %s does not exist" % p)
if args.execs < 1 or args.runs < 1 or not 1 <= args.jobs <= args.execs:
    sys.exit("exec.py: --execs and --runs must be at least 1, --jobs from 1 to --execs")
# Resolved here: setup() changes to the repository's directory.
args.pack = [os.path.abspath(p) for p in args.pack]


class Interrupted(Exception):
    pass


def on_signal(sig, _frame):
    raise Interrupted(signal.Signals(sig).name)


# Children get their own sessions, so a Ctrl-C reaches only this script,
# which then stops them in order before putting the audit state back.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
for s in STOP_SIGNALS:
    signal.signal(s, on_signal)

hz = os.sysconf("SC_CLK_TCK")
AUDETECT_KEY = re.compile(r"(?:-k |key=)(audetect\S*)")


def auditctl(*a, check=True):
    return subprocess.run(["auditctl", *a], capture_output=True, text=True, check=check).stdout


def status():
    """The kernel's audit status, as auditctl -s prints it."""
    return {k: v.split()[0] for k, v in (l.split(" ", 1) for l in auditctl("-s").splitlines() if " " in l)}


def rules():
    out = auditctl("-l").strip()
    return [] if out == "No rules" else out.splitlines()


def delta(before, after, key):
    return int(after.get(key, "0")) - int(before.get(key, "0"))


def proc_stat(pid):
    """(CPU ticks, utime+stime of all threads; VmHWM, VmRSS in KiB)."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    st = dict(l.split(":", 1) for l in open("/proc/%d/status" % pid).read().splitlines())
    return int(f[11]) + int(f[12]), int(st["VmHWM"].split()[0]), int(st["VmRSS"].split()[0])


def drain(pid, limit=60):
    """Waits until the kernel's backlog is empty and the daemon's CPU time
    has stopped growing: what the workload made has been read."""
    deadline, last, steady = time.time() + limit, None, 0
    while time.time() < deadline:
        ticks = proc_stat(pid)[0]
        steady = steady + 1 if ticks == last and status()["backlog"] == "0" else 0
        if steady >= 2:
            return
        last = ticks
        time.sleep(0.3)
    print("  note: not drained after %d s" % limit)


class Children:
    """What this script started, stopped in reverse order at the end."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, wait=30):
        """SIGTERM to its process group (execloop's workers too), then SIGKILL."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                print("  note: pid %d did not stop in %d s: killed" % (p.pid, wait))
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


def workload(children, runs):
    """R runs of execloop; returns (wall time, execs/s, CPU time) of each."""
    out = []
    for _ in range(runs):
        p = children.start([execloop, str(args.execs), str(args.jobs), "/bin/true"], stdout=subprocess.PIPE, text=True)
        text = p.communicate()[0]
        children.procs.remove(p)
        m = re.search(r"in ([\d.]+) s: (\d+) execs/s, CPU ([\d.]+) s", text)
        if p.returncode != 0 or not m:
            raise RuntimeError("execloop failed (exit %d): %s" % (p.returncode, text))
        out.append(tuple(float(g) for g in m.groups()))
    return out


def med(runs, i):
    return statistics.median(r[i] for r in runs)


def ratios(runs, base):
    return "wall %.2f x, CPU %.2f x" % (med(runs, 0) / med(base, 0), med(runs, 2) / med(base, 2))


def show_runs(runs, base=None):
    """Medians of the runs, each run's wall time, and against audit off."""
    print("  workload: %d x %d execs (%d jobs): %.0f execs/s, wall %.2f s, CPU %.2f s (medians; wall times %s; "
          "load %s)%s" %
          (len(runs), args.execs, args.jobs, med(runs, 1), med(runs, 0), med(runs, 2),
           ", ".join("%.2f" % r[0] for r in runs), open("/proc/loadavg").read().split()[0],
           "; against audit off: " + ratios(runs, base) if base else ""))


def kernel_figures(s1, s2):
    print("  kernel: lost +%d, backlog_wait_time_actual +%d jiffies, backlog_limit %s, backlog_wait_time %s" %
          (delta(s1, s2, "lost"), delta(s1, s2, "backlog_wait_time_actual"), s2["backlog_limit"],
           s2["backlog_wait_time"]))


def daemon_figures(name, ticks, records, events, hwm):
    ms = ticks * 1000.0 / hz
    per = lambda n: "%.1f ms" % (ms * 1000 / n) if n else "-"
    print("  %s: CPU %.0f ms: %s per 1k records, %s per 1k events; peak RSS %.1f MiB" %
          (name, ms, per(records), per(events), hwm / 1024))


def audetect_status(pid, after=0.0, limit=15):
    """`audetect status` of this daemon, written after `after` (wall clock;
    the daemon rewrites its stats file every 5 s)."""
    deadline = time.time() + limit
    while True:
        r = subprocess.run([BIN, "status"], capture_output=True, text=True)
        if r.returncode == 0:
            st = json.loads(r.stdout)
            if st["pid"] == pid and ts(st["updated"]) > after:
                return st
        if time.time() > deadline:
            raise RuntimeError("no fresh `audetect status` from pid %d: %s" % (pid, r.stderr.strip()))
        time.sleep(0.2)


def audit_rules_for(cfg):
    """What `audetect rules -c CONFIG` prints, in a file for auditctl -R.
    Before the event model `audetect rules` takes no config: its fixed rules."""
    r = subprocess.run([BIN, "rules", "-c", cfg], capture_output=True, text=True)
    if r.returncode == 2 and "unexpected argument" in r.stderr:
        print("note: `audetect rules` takes no -c yet: its fixed rules (pre-model)")
        r = subprocess.run([BIN, "rules"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("audetect rules: " + r.stderr.strip())
    lines = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    bad = [l for l in lines if not AUDETECT_KEY.search(l)]
    if bad:
        # The clean-up removes rules by key: one without an audetect key would stay.
        raise RuntimeError("rules without an audetect key: %s" % bad)
    path = os.path.join(tmp, "audetect.rules")
    open(path, "w").write("\n".join(lines) + "\n")
    return path, lines


def remove_own_rules():
    for key in sorted({m.group(1) for l in rules() for m in [AUDETECT_KEY.search(l)] if m}):
        auditctl("-D", "-k", key, check=False)


def set_status(s):
    """enabled, backlog_limit, backlog_wait_time as in s (never enabled 2)."""
    assert s["enabled"] in ("0", "1")
    auditctl("-b", s["backlog_limit"], "--backlog_wait_time", s["backlog_wait_time"], "-e", s["enabled"])


def restore(found):
    """Best effort, step by step: one failing step must not skip the others."""
    for step in (remove_own_rules, lambda: set_status(found)):
        try:
            step()
        except (OSError, subprocess.CalledProcessError) as e:
            print("restoring the audit state: %s" % e, file=sys.stderr)
    # A daemon that died unregistered is forgotten when the kernel next
    # fails to send it a record; set_status's changes log some.
    deadline = time.time() + 5
    while status()["pid"] != found["pid"] and time.time() < deadline:
        time.sleep(0.1)


def auditd_registered_until(pid, limit=5):
    """Waits for the kernel to forget auditd as its audit daemon. The kernel
    notices a dead daemon when it next fails to send it a record, so a user
    message is logged to make it try. Returns whether it is still registered."""
    deadline = time.time() + limit
    poked = False
    while status()["pid"] == str(pid):
        if time.time() > deadline:
            return True
        if not poked and status()["enabled"] == "1":
            auditctl("-m", "audetect bench: auditd stopped", check=False)
            poked = True
        time.sleep(0.1)
    return False


def phase_off(children, again=False):
    print("\n== audit off (no rules, enabled 0)%s" % (", again: how much the machine drifted" if again else ""))
    auditctl("-e", "0")
    runs = workload(children, args.runs)
    show_runs(runs)
    set_status(found)
    return runs


def phase_audetect(children, base):
    print("\n== audetect run, the pack, default kernel settings")
    alerts = os.path.join(tmp, "alerts.jsonl")
    err = os.path.join(tmp, "audetect.stderr")
    d = children.start([BIN, "run", "--config", cfg], stderr=open(err, "w"), close_fds=True)
    while "ready:" not in open(err).read():
        time.sleep(0.05)
        if d.poll() is not None:
            raise RuntimeError("audetect run stopped: " + open(err).read())
    _, _, rss_ready = proc_stat(d.pid)
    st1 = audetect_status(d.pid, after=time.time())
    s1, (c1, _, _) = status(), proc_stat(d.pid)
    during = {k: s1[k] for k in ("enabled", "backlog_limit", "backlog_wait_time")}
    print("  audetect: %d audit rules, %d detection rules loaded, source %s; RSS %.1f MiB when ready" %
          (st1["audit_rules"], st1["detection_rules"], st1["source"], rss_ready / 1024))
    runs = workload(children, args.runs)
    drain(d.pid)
    s2, (c2, hwm, _) = status(), proc_stat(d.pid)
    st2 = audetect_status(d.pid, after=time.time())
    show_runs(runs, base)
    kernel_figures(s1, s2)
    g = lambda sec, key: st2[sec][key] - st1[sec][key]
    records, events = g("received", "records"), g("received", "events")
    print("  audetect status: records +%d, events +%d (incomplete +%d, ignored +%d), malformed +%d; "
          "lost: kernel +%d, socket overflows +%d, missing serials +%d; detection events +%d, matches +%d, "
          "alerts +%d (suppressed +%d)" %
          (records, events, g("received", "incomplete_events"), g("received", "ignored_events"),
           g("received", "malformed_records"), g("lost", "kernel"), g("lost", "socket_overflows"),
           g("lost", "missing_serials"), g("detection", "events"), g("detection", "matches"),
           g("detection", "alerts"), g("detection", "suppressed")))
    print("  records per workload exec: %.2f; events per workload exec: %.2f" %
          (records / (args.runs * args.execs), events / (args.runs * args.execs)))
    daemon_figures("audetect", c2 - c1, records, events, hwm)
    children.stop(d)
    for line in open(err).read().strip().splitlines():
        if "warn" in line or "error" in line or "stopped" in line:
            print("  " + line)
    if os.path.exists(alerts):
        print("  alerts written: %d" % sum(1 for _ in open(alerts)))
    return runs, during


def phase_auditd(children, base, during, rules_file, n_rules):
    print("\n== Debian's auditd, the same %d audit rules, enabled %s, backlog_limit %s, backlog_wait_time %s" %
          (n_rules, during["enabled"], during["backlog_limit"], during["backlog_wait_time"]))
    conf_dir = os.path.join(tmp, "auditd")
    os.makedirs(os.path.join(conf_dir, "plugins"))
    log = os.path.join(conf_dir, "audit.log")
    open(os.path.join(conf_dir, "auditd.conf"), "w").write(
        "local_events = yes\nwrite_logs = yes\nlog_file = %s\nlog_group = root\nlog_format = RAW\n"
        "flush = NONE\nfreq = 0\nmax_log_file = 100000\nnum_logs = 1\nmax_log_file_action = IGNORE\n"
        "space_left = 2\nspace_left_action = IGNORE\nadmin_space_left = 1\nadmin_space_left_action = IGNORE\n"
        "disk_full_action = IGNORE\ndisk_error_action = IGNORE\nplugin_dir = %s/plugins\nq_depth = 2000\n"
        "name_format = NONE\n" % (log, conf_dir))
    a = children.start(["/usr/sbin/auditd", "-n", "-s", "nochange", "-c", conf_dir],
                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(conf_dir, "stderr"), "w"))
    deadline = time.time() + 10
    while status()["pid"] != str(a.pid):
        if a.poll() is not None or time.time() > deadline:
            raise RuntimeError("auditd did not register: " + open(os.path.join(conf_dir, "stderr")).read())
        time.sleep(0.1)
    try:
        auditctl("-R", rules_file)
        set_status(during)
        time.sleep(0.5)
        s1, (c1, _, _), t0 = status(), proc_stat(a.pid), time.time()
        runs = workload(children, args.runs)
        drain(a.pid)
        s2, (c2, hwm, _) = status(), proc_stat(a.pid)
    finally:
        remove_own_rules()
        children.stop(a)
        still = auditd_registered_until(a.pid)
        set_status(found)
    if still:
        raise RuntimeError("auditd (pid %d) is still the registered audit daemon after it stopped" % a.pid)
    show_runs(runs, base)
    kernel_figures(s1, s2)
    # The records of the runs by their own time (RAW: one record a line), read
    # once auditd has stopped and flushed its log.
    serial = re.compile(r"msg=audit\((\d+\.\d+):(\d+)\)")
    records, serials = 0, set()
    for line in open(log, errors="replace") if os.path.exists(log) else []:
        m = serial.search(line)
        if m and float(m.group(1)) >= t0 - 0.05:
            records += 1
            serials.add(m.group(2))
    print("  auditd wrote: %d records, %d events; records per workload exec: %.2f" %
          (records, len(serials), records / (args.runs * args.execs)))
    daemon_figures("auditd", c2 - c1, records, len(serials), hwm)
    return runs


tmp, _ = setup()
if args.keep:
    atexit.register(print, "scratch directory kept: " + tmp)
else:
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
execloop = os.path.join(tmp, "execloop")
subprocess.run(["cc", "-O2", "-o", execloop, "bench/execloop.c"], check=True)
cfg = os.path.join(tmp, "audetect.toml")
open(cfg, "w").write("[detection]\nrule_paths = [%s]\n[output.syslog]\nenabled = false\n"
                     "[output.jsonl]\nenabled = true\npath = \"%s\"\n" %
                     (", ".join(json.dumps(os.path.abspath(p)) for p in args.pack), os.path.join(tmp, "alerts.jsonl")))
check = subprocess.run([BIN, "check-config", "-c", cfg], capture_output=True, text=True)
if check.returncode != 0:
    sys.exit("exec.py: check-config: " + check.stdout + check.stderr)
print("pack %s: %s" % (" ".join(args.pack), check.stdout.strip().splitlines()[-1]))
rules_file, rule_lines = audit_rules_for(cfg)
print("audit rules (%d, from `audetect rules`): keys %s" %
      (len(rule_lines), ", ".join(sorted({AUDETECT_KEY.search(l).group(1) for l in rule_lines}))))

print("taking the kernel test lock (waits while kernel tests run)", flush=True)
lock = kernel_lock()
found, rules_found = status(), rules()
print("audit as found: enabled %s, backlog_limit %s, backlog_wait_time %s, pid %s, %d rules; "
      "%d CPUs, load %s" % (found["enabled"], found["backlog_limit"], found["backlog_wait_time"], found["pid"],
                            len(rules_found), os.cpu_count(), open("/proc/loadavg").read().split()[0]))
if found["enabled"] not in ("0", "1"):
    sys.exit("exec.py: audit is locked (enabled %s): nothing can be changed" % found["enabled"])
if found["pid"] != "0":
    sys.exit("exec.py: an audit daemon (pid %s) is registered: stop it first" % found["pid"])
if any(AUDETECT_KEY.search(l) for l in rules_found):
    sys.exit("exec.py: audetect's rules are loaded (is audetect running?):\n" + "\n".join(rules_found))

children = Children()
failed = None
try:
    off = phase_off(children)
    audetect_runs, during = phase_audetect(children, off)
    auditd_runs = None if args.no_auditd else phase_auditd(children, off, during, rules_file, len(rule_lines))
    # The baseline is audit off's runs before and after: the machine is shared.
    off += phase_off(children, again=True)
    print("\n== cost to the workload, medians against audit off's (wall %.2f s, CPU %.2f s, before and after)" %
          (med(off, 0), med(off, 2)))
    print("  audetect: " + ratios(audetect_runs, off))
    if auditd_runs:
        print("  auditd:   " + ratios(auditd_runs, off))
except (Exception, Interrupted) as e:
    failed = e
finally:
    # Nothing may interrupt putting the audit state back.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    children.stop_all()
    restore(found)
    after, left = status(), rules()
    changed = ["%s %s -> %s" % (k, found[k], after[k]) for k in ("enabled", "backlog_limit", "backlog_wait_time", "pid")
               if after[k] != found[k]]
    ok = not changed and left == rules_found
    print("\naudit state afterwards: %s; rules: %s" %
          ("as found" if not changed else "CHANGED " + ", ".join(changed),
           "as found" if left == rules_found else "CHANGED: " + "; ".join(left)))
if failed is not None:
    print("exec.py: %s: %s" % ("interrupted" if isinstance(failed, Interrupted) else "failed", failed), file=sys.stderr)
    if not isinstance(failed, Interrupted):
        traceback.print_exception(failed)
    sys.exit(130 if isinstance(failed, Interrupted) else 1)
sys.exit(0 if ok else 1)
