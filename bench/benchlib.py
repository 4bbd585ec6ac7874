"""What the live benchmarks (latency.py, flood.py, snapshot.py) share: the
release build and the actor, a config with the seed rule's max_signals
raised and alerts as JSON lines, the kernel test lock, `audetect run` started
and waited for, and percentiles."""
import fcntl, os, subprocess, tempfile, time
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


def write_config(tmp, before="", after=""):
    """A config whose only rule is the built-in one with max_signals raised
    (so every scenario alerts), alerts to JSON lines and not to syslog;
    `before` and `after` add sections. Returns (config path, alerts path)."""
    rules = os.path.join(tmp, "rules")
    os.makedirs(rules, exist_ok=True)
    seed = open("rules/suspicious_network_connection_attempt_by_root.toml").read()
    open(os.path.join(rules, "seed.toml"), "w").write(seed.replace("max_signals = 100", "max_signals = 100000"))
    alerts = os.path.join(tmp, "alerts.jsonl")
    cfg = os.path.join(tmp, "audetect.toml")
    open(cfg, "w").write('%s[detection]\nrule_paths = ["%s"]\n[output.syslog]\nenabled = false\n'
                         '[output.jsonl]\nenabled = true\npath = "%s"\n%s' % (before, rules, alerts, after))
    return cfg, alerts


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
