//! Harness for kernel tests: the real `audetect run` as a child process, the
//! test actor program, and the audit state checked to be restored after each run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use audetect::kernel::AuditSocket;

use crate::util::{wait_for, KernelLock, TempDir};

/// The kernel's audit state that a run must leave as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditState {
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub backlog_limit: u32,
    pub backlog_wait_time: u32,
    pub rules: Vec<String>,
}

pub fn audit_state() -> AuditState {
    let mut s = AuditSocket::open().expect("open audit socket");
    let st = s.status().expect("AUDIT_GET");
    let rules = s
        .list_rules()
        .expect("AUDIT_LIST_RULES")
        .iter()
        .map(|r| r.to_auditctl())
        .collect();
    AuditState {
        enabled: st.enabled,
        failure: st.failure,
        pid: st.pid,
        backlog_limit: st.backlog_limit,
        backlog_wait_time: st.backlog_wait_time,
        rules,
    }
}

/// Puts back what a failed run may have left: audetect rules, a dead daemon
/// registration, and the status fields audetect changes.
pub fn restore(before: &AuditState) {
    let Ok(mut s) = AuditSocket::open() else {
        return;
    };
    if let Ok(rules) = s.list_rules() {
        for r in rules
            .iter()
            .filter(|r| r.key().is_some_and(|k| k.starts_with(b"audetect")))
        {
            let _ = s.delete_rule(r);
        }
    }
    // Asking to unregister makes the kernel probe the registered daemon
    // and drop it if its socket is gone.
    let _ = s.unregister_daemon();
    let _ = s.set_status(&audetect::kernel::StatusChange {
        enabled: Some(before.enabled),
        backlog_limit: Some(before.backlog_limit),
        backlog_wait_time: Some(before.backlog_wait_time),
        ..Default::default()
    });
    // The state is put back by hand: a state file left by a killed daemon
    // would make the next one "restore" a generation that no longer applies.
    let _ = std::fs::remove_file(audetect::kernel::DEFAULT_STATE_FILE);
}

/// tests/actor/actor.c, built once per test run.
pub fn actor() -> &'static Path {
    static ACTOR: OnceLock<PathBuf> = OnceLock::new();
    ACTOR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("actor");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actor/actor.c");
        let status = Command::new("cc")
            .args(["-O", "-Wall", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run cc (the kernel tests need a C compiler: apt-get install gcc)");
        assert!(status.success(), "building {}", src.display());
        out
    })
}

/// tests/actor/actor.c built with `cc -m32` (an i386 program on x86_64),
/// once per test run; Err says why it cannot be built here (no multilib
/// libc: apt-get install gcc-multilib).
pub fn actor32() -> Result<&'static Path, String> {
    static ACTOR32: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ACTOR32
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("actor32");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actor/actor.c");
            let built = Command::new("cc")
                .args(["-m32", "-O", "-Wall", "-pthread", "-o"])
                .arg(&out)
                .arg(&src)
                .output()
                .map_err(|e| format!("cannot run cc: {e}"))?;
            if !built.status.success() {
                return Err(format!(
                    "cc -m32 failed (apt-get install gcc-multilib): {}",
                    String::from_utf8_lossy(&built.stderr).trim()
                ));
            }
            // A kernel without IA32 emulation builds it but cannot run it.
            match Command::new(&out).output() {
                Ok(o) if o.status.success() => Ok(out),
                Ok(o) => Err(format!("the -m32 actor does not run here: {}", o.status)),
                Err(e) => Err(format!("the -m32 actor does not run here: {e}")),
            }
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// What one run of the actor printed, and its pid.
pub struct ActorRun {
    pub pid: u32,
    pub stdout: String,
}

pub fn run_actor(program: &Path, steps: &[&str]) -> ActorRun {
    run_command(Command::new(program).args(steps))
}

pub fn run_command(cmd: &mut Command) -> ActorRun {
    let out = cmd.output().expect("run actor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "actor failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("actor printed no pid: {stdout}"));
    ActorRun { pid, stdout }
}

/// `audetect run` with a config of the test's, alerts as JSON lines in a file.
pub struct Daemon {
    child: Option<Child>,
    pub dir: TempDir,
    pub before: AuditState,
    lock: Option<KernelLock>,
}

impl Daemon {
    /// Starts the daemon and waits until it says it is ready. `extra` is
    /// appended to a config that writes alerts to a file and disables syslog
    /// (a test that wants syslog sets `[output.syslog]` itself).
    pub fn start(lock: KernelLock, extra: &str) -> Daemon {
        let dir = TempDir::new("daemon");
        let alerts = dir.path().join("alerts.jsonl");
        let mut config = format!(
            "[output.jsonl]\nenabled = true\npath = {:?}\n{extra}\n",
            alerts.display().to_string()
        );
        if !extra.contains("[output.syslog]") {
            config.push_str("[output.syslog]\nenabled = false\n");
        }
        let config_path = dir.path().join("audetect.toml");
        std::fs::write(&config_path, config).expect("write config");
        let args = [
            "run".into(),
            "--config".into(),
            config_path.into_os_string(),
        ];
        Daemon::spawn(lock, dir, &args)
    }

    /// `audetect run` exactly as a user first types it, on a host with no
    /// config file and no syslog socket: in a private mount namespace where
    /// tmpfs hides /dev (and /etc/audetect, if this host has one). What it
    /// prints on stdout lands in alerts.jsonl.
    pub fn start_on_a_bare_host(lock: KernelLock) -> Daemon {
        let script = format!(
            "mount -t tmpfs tmpfs /dev && \
             {{ [ ! -d /etc/audetect ] || mount -t tmpfs tmpfs /etc/audetect; }} && \
             exec {} run",
            env!("CARGO_BIN_EXE_audetect")
        );
        let args: Vec<std::ffi::OsString> = ["-m", "--propagation", "private", "sh", "-c", &script]
            .iter()
            .map(Into::into)
            .collect();
        Daemon::spawn_program(lock, TempDir::new("daemon"), "unshare".as_ref(), &args)
    }

    fn spawn(lock: KernelLock, dir: TempDir, args: &[std::ffi::OsString]) -> Daemon {
        Daemon::spawn_program(lock, dir, env!("CARGO_BIN_EXE_audetect").as_ref(), args)
    }

    fn spawn_program(
        lock: KernelLock,
        dir: TempDir,
        program: &Path,
        args: &[std::ffi::OsString],
    ) -> Daemon {
        let before = audit_state();
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let stdout = std::fs::File::create(dir.path().join("alerts.jsonl")).expect("stdout file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn audetect");
        let mut d = Daemon {
            child: Some(child),
            dir,
            before,
            lock: Some(lock),
        };
        let ready = wait_for(Duration::from_secs(10), || {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("audetect exited at start ({status}):\n{}", d.log());
            }
            d.log().contains("ready:").then_some(())
        });
        assert!(ready.is_some(), "audetect never said ready:\n{}", d.log());
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("stderr")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("alert is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Waits for an alert about `pid` and returns every alert so far.
    pub fn wait_alert_for(&self, pid: u32) -> Vec<Value> {
        wait_for(Duration::from_secs(10), || {
            let all = self.alerts();
            all.iter()
                .any(|a| a["process"]["pid"] == pid)
                .then_some(all)
        })
        .unwrap_or_else(|| {
            panic!(
                "no alert for pid {pid} within 10 s; daemon log:\n{}",
                self.log()
            )
        })
    }

    /// Runs a positive scenario after a negative one: its alert proves the
    /// daemon was processing, and everything before it has been processed.
    pub fn canary(&self, port: u16) -> Vec<Value> {
        let run = run_actor(actor(), &[&format!("tcp4:{port}"), "setsid"]);
        self.wait_alert_for(run.pid)
    }

    /// Runs `program` with `steps` and returns the run and the one alert
    /// about its process; the canary run after it lets anything else in
    /// flight for that process arrive first.
    pub fn expect_alert(&self, program: &Path, steps: &[&str]) -> (ActorRun, Value) {
        let run = run_actor(program, steps);
        let first = self.wait_alert_for(run.pid);
        let p = ports();
        let all = self.canary(p.open);
        let mine = alerts_for(&all, run.pid);
        assert_eq!(
            mine.len(),
            1,
            "expected exactly one alert for {steps:?} (actor said: {}): {first:#?}\nall: {all:#?}",
            run.stdout
        );
        let alert = mine[0].clone();
        (run, alert)
    }

    /// After the processes `pids` of `test` ran: a canary on `open_port`
    /// shows the daemon has processed them, and there is no alert for any.
    pub fn expect_no_alert(&self, test: &str, open_port: u16, pids: &[u32]) {
        let all = self.canary(open_port);
        for &pid in pids {
            assert!(
                alerts_for(&all, pid).is_empty(),
                "{test}: unexpected alert for pid {pid}: {all:#?}"
            );
        }
    }

    /// SIGTERM, a clean exit, and the audit state as it was before.
    pub fn stop(self) -> String {
        self.stop_keeping_lock().0
    }

    /// SIGKILL, as a crash would: nothing is restored. Returns the state
    /// from before this daemon started, and the lock.
    pub fn kill_hard(mut self) -> (AuditState, KernelLock) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        (
            self.before.clone(),
            self.lock.take().expect("held until stop"),
        )
    }

    /// `stop`, handing back the kernel lock for cleanup the test still owes.
    pub fn stop_keeping_lock(self) -> (String, KernelLock) {
        self.stop_by(libc::SIGTERM)
    }

    /// Stops it with `signal` (SIGTERM as systemd does, SIGINT as Ctrl-C
    /// does): it must exit 0 and leave the audit state as it found it.
    pub fn stop_by(mut self, signal: i32) -> (String, KernelLock) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill on a child pid we own.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten());
        let log = self.log();
        let status = status.unwrap_or_else(|| {
            let _ = child.kill();
            panic!("audetect did not stop within 10 s of signal {signal}:\n{log}")
        });
        assert!(status.success(), "audetect exited with {status}:\n{log}");
        // Regression: the kernel's AUDIT_REPLACE probe was once parsed as a record.
        assert!(
            log.contains(" records (0 malformed)"),
            "the kernel sent nothing malformed:\n{log}"
        );
        let after = audit_state();
        assert_eq!(
            after, self.before,
            "audit state after stop differs from before start; log:\n{log}"
        );
        (log, self.lock.take().expect("held until stop"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            restore(&self.before);
        }
    }
}

/// The alerts in `all` about process `pid`.
pub fn alerts_for(all: &[Value], pid: u32) -> Vec<&Value> {
    all.iter().filter(|a| a["process"]["pid"] == pid).collect()
}

/// A TCP listener on loopback for connects that succeed, and a port with no
/// listener for connects that are refused.
pub struct Ports {
    /// Held so the port stays open for the test's duration.
    pub _listener: std::net::TcpListener,
    pub open: u16,
    pub closed: u16,
}

pub fn ports() -> Ports {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind listener");
    let open = listener.local_addr().expect("addr").port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    Ports {
        _listener: listener,
        open,
        closed,
    }
}
