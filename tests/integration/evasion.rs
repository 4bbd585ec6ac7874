//! A root attacker against the running daemon (issue 18): an fd swapped
//! after connect(), a file whose server never answers, audit rules and
//! status that blind it without touching its rules, and the ways it falls
//! silent, each of which must reach the alert outputs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{actor, ports, run_actor, Daemon};
use audetect::kernel::AuditSocket;

use crate::util::{kernel_test, skip, wait_for, TempDir};

/// The configuration alerts with `action` so far.
fn configuration_alerts(d: &Daemon, action: &str) -> Vec<Value> {
    d.alerts()
        .into_iter()
        .filter(|a| a["event"]["kind"] == "alert" && a["event"]["action"] == action)
        .collect()
}

/// Waits up to 10 s for a configuration alert with `action` that `pick`
/// accepts.
fn wait_configuration_alert(d: &Daemon, action: &str, pick: impl Fn(&Value) -> bool) -> Value {
    wait_for(Duration::from_secs(10), || {
        configuration_alerts(d, action).into_iter().find(&pick)
    })
    .unwrap_or_else(|| {
        panic!(
            "no {action} alert within 10 s; alerts: {:#?}\nlog:\n{}",
            d.alerts(),
            d.log()
        )
    })
}

#[test]
fn kernel_a_connect_whose_fd_is_swapped_for_dev_null_still_alerts() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    // connect(), dup2(open("/dev/null"), sock) before audetect looks, setsid:
    // the fd says "not a socket", which is not the UDP socket that alone
    // would make the connect no attempt. The actor stays alive meanwhile
    // (a process gone when audetect looks is an attempt anyway).
    let (run, alert) = d.expect_alert(
        actor(),
        &[
            "open:/dev/null",
            &format!("tcp4:{}", p.open),
            "swapfd",
            "sleep:300",
            "setsid",
        ],
    );
    assert!(run.stdout.contains("now the file"), "{}", run.stdout);
    assert_eq!(
        alert["rule"]["id"], "eb6a3790-d52d-11ec-8ce9-f661ea17fbce",
        "{alert:#}"
    );
    // And a real UDP connect still is no attempt.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let quiet = run_actor(actor(), &[&format!("udp4:{port}"), "sleep:300", "setsid"]);
    d.expect_no_alert("udp", p.open, &[quiet.pid]);
    d.stop();
}

/// An alert about `pid` within 10 s while `fuse` leaves the daemon's
/// requests unanswered: the stall held nothing up.
fn expect_alert_beside(d: &Daemon, pid: u32, fuse: &StallingFuse, what: &str) {
    let alerted = wait_for(Duration::from_secs(10), || {
        d.alerts()
            .iter()
            .any(|a| a["process"]["pid"] == pid)
            .then_some(())
    });
    assert!(
        alerted.is_some(),
        "no alert for {what} within 10 s (requests of the daemon left unanswered: {:?}):\n{}",
        fuse.stalled(),
        d.log()
    );
}

/// A FUSE file system of one file, `f`, served by a thread of this test
/// straight over /dev/fuse (no libfuse). Requests from the process `stall`
/// are never answered, as an attacker's server would do; everyone else's
/// are. Dropping it aborts the connection (every stalled call returns) and
/// detaches the mount.
struct StallingFuse {
    dir: TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The opcodes left unanswered, in order.
    stalled: Arc<Mutex<Vec<u32>>>,
}

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_STATFS: u32 = 17;
const FUSE_RELEASE: u32 = 18;
const FUSE_GETXATTR: u32 = 22;
const FUSE_LISTXATTR: u32 = 23;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;

impl StallingFuse {
    /// Mounts it, or None after saying why this machine cannot.
    fn mount(test: &str, stall: u32) -> Option<StallingFuse> {
        if !Path::new("/dev/fuse").exists() {
            skip(test, "no /dev/fuse (modprobe fuse)");
            return None;
        }
        let dir = TempDir::new("fuse");
        // SAFETY: open with a NUL-terminated path.
        let raw = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(
            raw >= 0,
            "open /dev/fuse: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new fd, ours alone.
        let dev = unsafe { OwnedFd::from_raw_fd(raw) };
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let opts = std::ffi::CString::new(format!(
            "fd={raw},rootmode=40000,user_id=0,group_id=0,allow_other"
        ))
        .unwrap();
        // SAFETY: NUL-terminated strings for source, target, type and data.
        let rc = unsafe {
            libc::mount(
                c"audetect-test".as_ptr(),
                target.as_ptr(),
                c"fuse.audetect-test".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount fuse: {}", std::io::Error::last_os_error());
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, stalled) = (Arc::clone(&stop), Arc::clone(&stalled));
            std::thread::spawn(move || serve(dev, stall, &stop, &stalled))
        };
        Some(StallingFuse {
            dir,
            stop,
            thread: Some(thread),
            stalled,
        })
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("f")
    }

    fn stalled(&self) -> Vec<u32> {
        self.stalled.lock().unwrap().clone()
    }
}

impl Drop for StallingFuse {
    fn drop(&mut self) {
        // The server closes /dev/fuse, which aborts the connection.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let target = std::ffi::CString::new(self.dir.path().as_os_str().as_encoded_bytes());
        if let Ok(target) = target {
            // SAFETY: a NUL-terminated path.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The thread group of task `tid` (FUSE names the calling thread).
fn tgid_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn serve(dev: OwnedFd, stall: u32, stop: &AtomicBool, stalled: &Mutex<Vec<u32>>) {
    let mut buf = vec![0u8; 1 << 20];
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
    let u64_at = |b: &[u8], i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: dev.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: a valid fd and a buffer of the length given.
        let n = unsafe { libc::read(dev.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 40 {
            continue;
        }
        let req = &buf[..n as usize];
        let (opcode, unique, nodeid, pid) = (
            u32_at(req, 4),
            u64_at(req, 8),
            u64_at(req, 16),
            u32_at(req, 32),
        );
        if matches!(opcode, FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT) {
            continue; // no reply expected
        }
        if opcode != FUSE_INIT && tgid_of(pid) == Some(stall) {
            stalled.lock().unwrap().push(opcode);
            continue;
        }
        let attr = |ino: u64| {
            // struct fuse_attr: ino, size, blocks, atime, mtime, ctime,
            // three nsec, mode, nlink, uid, gid, rdev, blksize, flags.
            let mut a = Vec::with_capacity(88);
            a.extend_from_slice(&ino.to_ne_bytes());
            a.extend_from_slice(&[0; 40]);
            a.extend_from_slice(&[0; 12]);
            let mode: u32 = if ino == 1 { 0o040755 } else { 0o100644 };
            // One page: what a mapping of it reads.
            if ino != 1 {
                a[8..16].copy_from_slice(&4096u64.to_ne_bytes());
            }
            a.extend_from_slice(&mode.to_ne_bytes());
            a.extend_from_slice(&1u32.to_ne_bytes());
            a.extend_from_slice(&[0; 20]);
            a
        };
        let (error, body): (i32, Vec<u8>) = match opcode {
            FUSE_INIT => {
                // struct fuse_init_out: 7.31, no flags, max_write 4096.
                let mut o = Vec::new();
                o.extend_from_slice(&7u32.to_ne_bytes());
                o.extend_from_slice(&31u32.to_ne_bytes());
                o.extend_from_slice(&[0; 8]);
                o.extend_from_slice(&[0; 4]);
                o.extend_from_slice(&4096u32.to_ne_bytes());
                o.extend_from_slice(&1u32.to_ne_bytes());
                o.resize(64, 0);
                (0, o)
            }
            FUSE_LOOKUP if &req[40..] == b"f\0" => {
                // struct fuse_entry_out: nodeid, generation, entry and
                // attr validity (long: no more lookups), their nsec, attr.
                let mut o = Vec::new();
                o.extend_from_slice(&2u64.to_ne_bytes());
                o.extend_from_slice(&0u64.to_ne_bytes());
                o.extend_from_slice(&3600u64.to_ne_bytes());
                o.extend_from_slice(&3600u64.to_ne_bytes());
                o.extend_from_slice(&[0; 8]);
                o.extend(attr(2));
                (0, o)
            }
            FUSE_LOOKUP => (-libc::ENOENT, Vec::new()),
            FUSE_GETATTR => {
                let mut o = Vec::new();
                o.extend_from_slice(&3600u64.to_ne_bytes());
                o.extend_from_slice(&[0; 8]);
                o.extend(attr(nodeid));
                (0, o)
            }
            FUSE_OPEN => (0, vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            FUSE_STATFS => (0, vec![0; 80]),
            // Nothing cached: every read of the page comes here (the
            // kernel's own PROCTITLE of the actor's syscalls among them).
            FUSE_READ => (-libc::EIO, Vec::new()),
            FUSE_RELEASE | FUSE_FLUSH => (0, Vec::new()),
            // Not ENOSYS: that would make the kernel stop asking anyone.
            FUSE_GETXATTR | FUSE_LISTXATTR => (-libc::ENODATA, Vec::new()),
            _ => (-libc::ENOSYS, Vec::new()),
        };
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&error.to_ne_bytes());
        out.extend_from_slice(&unique.to_ne_bytes());
        out.extend(body);
        // SAFETY: a valid fd and a buffer of the length given.
        unsafe { libc::write(dev.as_raw_fd(), out.as_ptr().cast(), out.len()) };
    }
}

/// The fd swapped for a file on a FUSE mount whose server never answers
/// audetect: a stat or xattr read of it would hold the pipeline thread
/// (and with it detection and tamper repair) for as long as the attacker
/// likes. The connect still counts, its alert arrives, and a later one too.
#[test]
fn kernel_a_connect_fd_swapped_for_a_stalling_fuse_file_neither_stalls_nor_hides_it() {
    let (lock, name) = kernel_test!();
    let d = Daemon::start(lock, "");
    let Some(fuse) = StallingFuse::mount(name, d.pid()) else {
        return;
    };
    let p = ports();
    let open = format!("open:{}", fuse.file().display());
    // Whether audetect looks at the fd before or after the swap is a race
    // (the swap is one dup2 right after connect() returns, and usually
    // wins): runs are repeated until audetect has reached the file, which
    // the server sees.
    let mut reached = false;
    for _ in 0..5 {
        let run = run_actor(
            actor(),
            // Alive when audetect looks: a process gone by then is an
            // attempt anyway.
            &[
                &open,
                &format!("tcp4:{}", p.open),
                "swapfd",
                "sleep:300",
                "setsid",
            ],
        );
        assert!(run.stdout.contains("now the file"), "{}", run.stdout);
        expect_alert_beside(&d, run.pid, &fuse, "the swapped connect");
        // Detection goes on.
        d.canary(p.open);
        if wait_for(Duration::from_secs(1), || {
            (!fuse.stalled().is_empty()).then_some(())
        })
        .is_some()
        {
            reached = true;
            break;
        }
    }
    assert!(
        reached,
        "audetect never looked at the fd after the swap in 5 runs"
    );
    // It reached the file only through its closer thread's flush, never
    // with a stat or an xattr read.
    let stalled = fuse.stalled();
    assert!(
        stalled.iter().all(|&op| op == FUSE_FLUSH),
        "audetect asked the file system more than a flush (opcodes {stalled:?})"
    );
    drop(fuse);
    d.stop();
}

/// Runs auditctl; panics with its stderr when it fails.
fn auditctl(args: &[&str]) {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .expect("auditctl (apt-get install auditd; tests/run does)");
    assert!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// auditctl commands run when the test ends, failed or not: each undoes a
/// change the test made to the shared kernel (exclude rules take no key,
/// and a rate limit is no rule, so `restore` cannot find them).
struct Undo(Vec<Vec<String>>);

impl Undo {
    fn new() -> Undo {
        Undo(Vec::new())
    }

    /// Runs `auditctl do_args` now, and `auditctl undo_args` at the end.
    fn change(&mut self, do_args: &[&str], undo_args: &[&str]) {
        self.0
            .push(undo_args.iter().map(|a| a.to_string()).collect());
        auditctl(do_args);
    }

    /// Undoes everything now (before the daemon's stop compares the state).
    fn now(&mut self) {
        for args in std::mem::take(&mut self.0).iter().rev() {
            // Not auditctl(): a panic while unwinding would abort the tests.
            let ok = Command::new("auditctl")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                eprintln!("could not undo: auditctl {args:?}");
            }
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        self.now();
    }
}

/// audetect's own rules all stay in; each of these silences it anyway,
/// and each is reported at once from the CONFIG_CHANGE record it makes:
/// the periodic check is a minute away, the wait for each alert 10 s.
#[test]
fn kernel_rules_and_a_rate_limit_that_blind_audetect_are_reported_at_once() {
    let (lock, _) = kernel_test!();
    let rate_limit = AuditSocket::open().unwrap().status().unwrap().rate_limit;
    let d = Daemon::start(lock, "[kernel]\nwatch_interval = \"60s\"\n");
    let mut undo = Undo::new();

    // A never rule ahead of audetect's connect rule.
    let never = [
        "exit,never",
        "-F",
        "arch=b64",
        "-S",
        "connect",
        "-k",
        "audetect-test-never",
    ];
    undo.change(
        &[&["-A"], &never[..]].concat(),
        &[&["-d"], &never[..]].concat(),
    );
    let a = wait_configuration_alert(&d, "audit_syscalls_suppressed", |_| true);
    assert_eq!(a["event"]["category"][0], "configuration");
    assert_eq!(
        a["audetect"]["hides"],
        serde_json::json!(["b64/connect"]),
        "{a:#}"
    );
    let cause = a["audetect"]["cause"].as_str().unwrap();
    assert!(
        cause.starts_with("-a never,exit") && cause.contains("connect"),
        "{cause}"
    );
    // Reported once while it lasts.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        configuration_alerts(&d, "audit_syscalls_suppressed").len(),
        1
    );

    // An exclude rule dropping SYSCALL records.
    let exclude = ["exclude,always", "-F", "msgtype=SYSCALL"];
    undo.change(
        &[&["-a"], &exclude[..]].concat(),
        &[&["-d"], &exclude[..]].concat(),
    );
    let a = wait_configuration_alert(&d, "audit_records_excluded", |_| true);
    assert_eq!(
        a["audetect"]["hides"],
        serde_json::json!(["SYSCALL"]),
        "{a:#}"
    );

    // A rate limit.
    undo.change(&["-r", "1"], &["-r", &rate_limit.to_string()]);
    let a = wait_configuration_alert(&d, "audit_rate_limited", |_| true);
    assert_eq!(a["audetect"]["cause"], "rate_limit=1", "{a:#}");

    // None of them is audetect's to remove: all are still there.
    let rules = crate::daemon::audit_state().rules;
    assert!(
        rules.iter().any(|r| r.starts_with("-a never,exit")),
        "{rules:?}"
    );
    undo.now();
    // Gone again, detection is back.
    d.canary(ports().open);
    d.stop();
}

/// What hides the records of its own change (an exclude rule on
/// CONFIG_CHANGE) is found by the periodic check; a backlog lowered to one
/// record with no wait, which loses nearly every record, is put back.
#[test]
fn kernel_an_exclude_of_config_change_is_found_by_the_periodic_check_and_a_lowered_backlog_put_back(
) {
    let (lock, _) = kernel_test!();
    let found = AuditSocket::open().unwrap().status().unwrap();
    let d = Daemon::start(lock, "[kernel]\nwatch_interval = \"300ms\"\n");
    let running = AuditSocket::open().unwrap().status().unwrap();
    let mut undo = Undo::new();
    let exclude = ["exclude,always", "-F", "msgtype=CONFIG_CHANGE"];
    undo.change(
        &[&["-a"], &exclude[..]].concat(),
        &[&["-d"], &exclude[..]].concat(),
    );
    let a = wait_configuration_alert(&d, "audit_records_excluded", |_| true);
    assert_eq!(
        a["audetect"]["hides"],
        serde_json::json!(["CONFIG_CHANGE"]),
        "{a:#}"
    );
    undo.now();

    // Undone by the daemon's stop, or by this guard if the test fails first.
    undo.0
        .push(vec!["-b".into(), found.backlog_limit.to_string()]);
    auditctl(&["-b", "1"]);
    let a = wait_configuration_alert(&d, "audit_backlog_lowered", |_| true);
    assert_eq!(a["audetect"]["repaired"], true, "{a:#}");
    let now = AuditSocket::open().unwrap().status().unwrap();
    assert_eq!(now.backlog_limit, running.backlog_limit, "{a:#}");
    undo.0.clear();
    d.stop();
}

/// SIGTERM: before its outputs close, the daemon says it stops.
#[test]
fn kernel_a_stop_is_reported_on_the_outputs() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    // SAFETY: kill on a child pid we own.
    unsafe { libc::kill(d.pid() as i32, libc::SIGTERM) };
    let stopped = wait_for(Duration::from_secs(10), || {
        d.log().contains("stopped:").then_some(())
    });
    assert!(stopped.is_some(), "no stop within 10 s:\n{}", d.log());
    let a = configuration_alerts(&d, "sensor_stopping");
    assert_eq!(a.len(), 1, "{:#?}\n{}", d.alerts(), d.log());
    assert_eq!(a[0]["event"]["kind"], "alert");
    assert!(
        a[0]["message"].as_str().unwrap().contains("SIGTERM"),
        "{:#}",
        a[0]
    );
    // Reaps it and checks the kernel state it left.
    d.stop();
}

/// Records the kernel really loses (a backlog of one record and no wait,
/// a burst of audited events) become one alert with the count, not just a
/// line on stderr.
#[test]
fn kernel_records_lost_by_the_kernel_are_an_alert() {
    let (lock, _) = kernel_test!();
    let found = AuditSocket::open().unwrap().status().unwrap();
    let mut undo = Undo::new();
    undo.change(&["-b", "1"], &["-b", &found.backlog_limit.to_string()]);
    let d = Daemon::start(lock, "[kernel]\nbacklog_limit = 1\nbacklog_wait_time = 0\n");
    let p = ports();
    for _ in 0..20 {
        run_actor(
            actor(),
            &[&format!("tcp4:{}", p.closed), "tcp4:1", "tcp4:2", "setsid"],
        );
    }
    let lost = wait_for(Duration::from_secs(15), || {
        configuration_alerts(&d, "audit_records_lost")
            .into_iter()
            .next()
    });
    let (log, lock) = d.stop_keeping_lock();
    // Restored while the lock is held, so the next kernel test starts from
    // the original limit.
    undo.now();
    drop(lock);
    let a = lost.unwrap_or_else(|| panic!("no audit_records_lost alert within 15 s:\n{log}"));
    assert!(a["audetect"]["kernel_lost"].as_u64() > Some(0), "{a:#}");
    assert!(
        a["message"].as_str().unwrap().contains("by the kernel"),
        "{a:#}"
    );
}

/// A rule's max_signals holds back its matches past the limit in a
/// 5-minute window: that is an alert too, naming the rule and the count.
#[test]
fn kernel_matches_held_back_by_max_signals_are_an_alert() {
    let (lock, _) = kernel_test!();
    let rules = TempDir::new("rules");
    std::fs::write(
        rules.path().join("setsid.toml"),
        "[rule]\nauthor = [\"t\"]\ndescription = \"d\"\nname = \"Any Setsid\"\nrisk_score = 1\n\
         rule_id = \"audetect-test-max-signals\"\nseverity = \"low\"\ntype = \"eql\"\nmax_signals = 1\n\
         query = \"process where event.action == \\\"session_id_change\\\"\"\n",
    )
    .unwrap();
    let d = Daemon::start(
        lock,
        &format!(
            "[detection]\nrule_paths = [{:?}]\n",
            rules.path().display().to_string()
        ),
    );
    // Two matches: one alert, one held back (a third could fall after the
    // first report, and wait for the next a minute later).
    for _ in 0..2 {
        run_actor(actor(), &["setsid"]);
    }
    let a = wait_configuration_alert(&d, "detection_alerts_held_back", |_| true);
    assert_eq!(a["audetect"]["held_back"], 1, "{a:#}");
    assert_eq!(a["audetect"]["rules"]["Any Setsid"], 1, "{a:#}");
    let alerted = d
        .alerts()
        .into_iter()
        .filter(|a| a["rule"]["id"] == "audetect-test-max-signals")
        .count();
    assert_eq!(alerted, 1, "max_signals = 1");
    d.stop();
}

/// Under systemd (Type=notify, WatchdogSec=): READY=1 once up, then
/// WATCHDOG=1 from the pipeline thread's loop while nothing happens, so
/// that only a pipeline that stopped turning misses its pings.
#[test]
fn kernel_an_idle_daemon_pings_the_systemd_watchdog() {
    let (_lock, _) = kernel_test!();
    let before = crate::daemon::audit_state();
    let dir = TempDir::new("watchdog");
    let socket_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.path().join("audetect.toml");
    std::fs::write(
        &config,
        format!(
            "[output.jsonl]\nenabled = true\npath = {:?}\n[output.syslog]\nenabled = false\n",
            dir.path().join("alerts.jsonl").display().to_string()
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        // 1 s: a ping every half second.
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 256];
    let start = std::time::Instant::now();
    // Up for at most 10 s, then idle for 3 s.
    let mut ready_at = None;
    while start.elapsed() < Duration::from_secs(13) {
        if let Ok(n) = notify.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m == "READY=1" {
                ready_at.get_or_insert_with(std::time::Instant::now);
            }
            messages.push((ready_at.map(|t| t.elapsed()), m));
        }
        if ready_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(3)) {
            break;
        }
    }
    // SAFETY: kill on a child pid we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten());
    let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let after = crate::daemon::audit_state();
    if after != before {
        crate::daemon::restore(&before);
    }
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert_eq!(after, before, "{log}");
    assert!(ready_at.is_some(), "no READY=1: {messages:?}\n{log}");
    let pings_idle = messages
        .iter()
        .filter(|(since_ready, m)| m == "WATCHDOG=1" && since_ready.is_some())
        .count();
    // Asked for every 500 ms; how many land in 3 s is the scheduler's
    // business, that they keep coming is the daemon's.
    assert!(
        pings_idle >= 2,
        "{pings_idle} watchdog pings in 3 s idle: {messages:?}\n{log}"
    );
}

/// The command line pointed into a page of a FUSE file whose server never
/// answers audetect (PR_SET_MM_MAP, no privilege needed): audetect reads
/// /proc/PID/cmdline of a process it first meets, on the pipeline thread,
/// which must not wait on that server.
#[test]
fn kernel_a_command_line_in_a_stalling_fuse_file_does_not_stall_detection() {
    let (lock, name) = kernel_test!();
    let d = Daemon::start(lock, "");
    let Some(fuse) = StallingFuse::mount(name, d.pid()) else {
        return;
    };
    let p = ports();
    let argv = format!("argv-in:{}", fuse.file().display());
    let run = run_actor(
        actor(),
        &[&argv, &format!("tcp4:{}", p.open), "sleep:300", "setsid"],
    );
    assert!(run.stdout.contains("argv now in"), "{}", run.stdout);
    expect_alert_beside(&d, run.pid, &fuse, "argv in the stalled file");
    // The kernel reads a command line from anonymous memory only: it never
    // asked the server on audetect's behalf.
    assert_eq!(fuse.stalled(), Vec::<u32>::new());
    // Detection goes on, also for processes it meets later.
    d.canary(p.open);
    drop(fuse);
    d.stop();
}
