"""What the live benchmarks (latency.py, flood.py, snapshot.py) share: the
release build and the actor, a config with the seed rule's max_signals
raised and alerts as JSON lines (and to a loopback syslog receiver), the
readers that stamp each alert when it is delivered, the kernel test lock,
`audetect run` started and waited for, and percentiles."""
import fcntl, json, os, socket, subprocess, tempfile, threading, time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where `cargo build --release` puts the binary: CARGO_TARGET_DIR when set.
BIN = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release", "audetect")


def setup():
    """Builds release and the actor; returns a scratch directory and the actor."""
    os.chdir(ROOT)
    subprocess.run(["cargo", "build", "--release", "--locked", "-q"], check=True)
    tmp = tempfile.mkdtemp(prefix="audetect-bench-")
    actor = os.path.join(tmp, "actor")
    subprocess.run(["cc", "-O", "-pthread", "-o", actor, "tests/actor/actor.c"], check=True)
    return tmp, actor


# The built-in rule's id: the readers keep its alerts only (with a rule pack
# loaded, other rules may alert on the same process).
SEED_ID = "eb6a3790-d52d-11ec-8ce9-f661ea17fbce"


def write_config(tmp, before="", after="", syslog_port=None, detection="", rule_paths=()):
    """A config whose only rule is the built-in one with max_signals raised
    (so every scenario alerts), alerts to JSON lines and, with
    `syslog_port`, to a UDP syslog receiver on loopback (else not to
    syslog); `before` and `after` add sections, `detection` lines to the
    [detection] section, `rule_paths` more rules (a pack without the
    built-in rule). Returns (config path, alerts path)."""
    rules = os.path.join(tmp, "rules")
    os.makedirs(rules, exist_ok=True)
    seed = open("rules/suspicious_network_connection_attempt_by_root.toml").read()
    open(os.path.join(rules, "seed.toml"), "w").write(seed.replace("max_signals = 100", "max_signals = 100000"))
    alerts = os.path.join(tmp, "alerts.jsonl")
    cfg = os.path.join(tmp, "audetect.toml")
    syslog = ('target = "udp:127.0.0.1:%d"\n' % syslog_port) if syslog_port else "enabled = false\n"
    paths = ", ".join(json.dumps(os.path.abspath(p)) for p in [rules, *rule_paths])
    open(cfg, "w").write('%s[detection]\nrule_paths = [%s]\n%s[output.syslog]\n%s'
                         '[output.jsonl]\nenabled = true\npath = "%s"\n%s'
                         % (before, paths, detection, syslog, alerts, after))
    return cfg, alerts


class Delivered:
    """Alerts as their readers get them: the JSON-lines file tailed and a
    UDP syslog receiver on loopback, each alert stamped (wall clock) when
    its reader has it, not by the alert's own @timestamp, which is taken
    before serialization, queueing and the write. The file is polled every
    0.2 ms, so its stamps are late by up to that."""

    def __init__(self, alerts_path):
        self.path = alerts_path
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.port = self.udp.getsockname()[1]
        # pid of the alert -> (stamp, alert); the first alert of each pid.
        self.file, self.syslog = {}, {}
        self.stop = False
        threading.Thread(target=self.tail, daemon=True).start()
        threading.Thread(target=self.receive, daemon=True).start()

    def tail(self):
        while not os.path.exists(self.path) and not self.stop:
            time.sleep(0.001)
        with open(self.path, "rb") as f:
            partial = b""
            while not self.stop:
                chunk = f.read()
                if not chunk:
                    time.sleep(0.0002)
                    continue
                now = time.time()
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    a = json.loads(line)
                    # Sensor alerts (start, stop, blind spots) name no
                    # process; a pack's other rules may name the same one.
                    if "process" in a and a.get("rule", {}).get("id") == SEED_ID:
                        self.file.setdefault(a["process"]["pid"], (now, a))

    def receive(self):
        while True:
            data = self.udp.recv(1 << 17)
            now = time.time()
            start = data.find(b"{")
            try:
                a = json.loads(data[start:])
            except ValueError:
                continue  # cut at max_alert_bytes: not an alert we can read
            if "process" in a and a.get("rule", {}).get("id") == SEED_ID:
                self.syslog.setdefault(a["process"]["pid"], (now, a))

    def wait(self, pids, timeout=10):
        """Until every pid has its alert from both readers, or timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(p in self.file and p in self.syslog for p in pids):
                return
            time.sleep(0.01)

    def latencies(self, reader, setsid_at):
        """For `reader` ("file" or "syslog"): ms from the setsid record's
        time, and from setsid()'s return, to delivery; and how many alerts."""
        got = getattr(self, reader)
        rec, act = [], []
        for pid, t in setsid_at.items():
            if pid in got:
                stamp, a = got[pid]
                rec.append((stamp - ts(a["events"][1]["@timestamp"])) * 1000)
                act.append((stamp - t) * 1000)
        return rec, act


def fresh_stats(after, path="/run/audetect/stats.json", timeout=8):
    """audetect's stats.json as first written after wall time `after` (the
    daemon rewrites it every 5 s): the counters as of a moment after the
    phase, not from a write before it ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if os.stat(path).st_mtime > after:
                return json.load(open(path))
        except (OSError, ValueError):
            pass  # mid-rewrite
        time.sleep(0.05)
    raise RuntimeError("%s not rewritten within %d s" % (path, timeout))


def kernel_lock():
    """The lock the kernel tests hold: audit state is global. Keep the result."""
    lock = open("/run/lock/audetect-tests.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def start_audetect(cfg, tmp):
    """`audetect run` with this config, once it says ready; returns the
    process and the path of its stderr."""
    err = os.path.join(tmp, "stderr")
    # The lock's fd is not passed on: a daemon left behind would hold it.
    d = subprocess.Popen([BIN, "run", "--config", cfg], stderr=open(err, "w"),
                         close_fds=True)
    while "ready:" not in open(err).read():
        time.sleep(0.05)
        assert d.poll() is None, open(err).read()
    return d, err


def ts(s):
    """An alert's RFC 3339 time as seconds since the epoch."""
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
