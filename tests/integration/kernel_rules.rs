//! Kernel tests of `audetect::kernel`: our rule encoding against auditctl's,
//! the session lifecycle, records arriving on unicast and multicast, and
//! the audit rules following the detection rules the daemon loads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use audetect::kernel::rules::{
    AUDIT_ALWAYS, AUDIT_ARCH, AUDIT_ARCH_X86_64, AUDIT_BIT_MASK, AUDIT_EQUAL, AUDIT_EUID,
    AUDIT_FILTERKEY, AUDIT_FILTER_EXIT, AUDIT_SADDR_FAM,
};
use audetect::kernel::{
    add_clock_rules, audetect_rules, is_audetect_rule, is_uring_rule, rules_for, without_saddr_fam,
    AuditRule, AuditSocket, AuditStatus, EventKind, RecvOutcome, Session, SessionSettings,
    StatusChange, Wanted, RECV_BUFFER_SIZE,
};

use crate::util;

/// Puts the kernel back as the test found it, even when the test panics:
/// removes every audetect-keyed rule, unregisters us if we are the audit
/// daemon, and restores enabled / backlog_limit / backlog_wait_time.
struct Restore {
    status: AuditStatus,
}

impl Restore {
    fn new() -> Self {
        let status = socket().status().expect("read audit status");
        Restore { status }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let Ok(mut s) = AuditSocket::open() else {
            eprintln!("Restore: cannot open an audit socket; kernel state NOT restored");
            return;
        };
        match s.list_rules() {
            Ok(rules) => {
                for r in rules.iter().filter(|r| is_audetect_rule(r)) {
                    if let Err(e) = s.delete_rule(r) {
                        eprintln!("Restore: deleting {r}: {e}");
                    }
                }
            }
            Err(e) => eprintln!("Restore: listing rules: {e}"),
        }
        let Ok(now) = s.status() else {
            eprintln!("Restore: cannot read status; not restored");
            return;
        };
        if now.pid == std::process::id() {
            if let Err(e) = s.unregister_daemon() {
                eprintln!("Restore: unregistering: {e}");
            }
        }
        let was = self.status;
        let differs = |a: u32, b: u32| (a != b).then_some(b);
        let change = StatusChange {
            enabled: differs(now.enabled, was.enabled).filter(|&v| v < 2 && now.enabled < 2),
            backlog_limit: differs(now.backlog_limit, was.backlog_limit),
            backlog_wait_time: differs(now.backlog_wait_time, was.backlog_wait_time),
            ..Default::default()
        };
        if let Err(e) = s.set_status(&change) {
            eprintln!("Restore: restoring {change:?}: {e}");
        }
    }
}

fn socket() -> AuditSocket {
    AuditSocket::open().expect("open a NETLINK_AUDIT socket")
}

fn audetect_rules_in_kernel(s: &mut AuditSocket) -> Vec<AuditRule> {
    let rules = s.list_rules().expect("list rules");
    rules.into_iter().filter(is_audetect_rule).collect()
}

/// auditctl, or None after saying why the test is skipped (panics in CI).
fn auditctl(test: &str) -> Option<PathBuf> {
    let candidates = ["/usr/sbin/auditctl", "/sbin/auditctl"].map(PathBuf::from);
    let in_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("auditctl"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(found) = candidates.into_iter().chain(in_path).find(|p| p.is_file()) {
        return Some(found);
    }
    util::skip(
        test,
        "auditctl is not installed (apt-get install auditd / dnf install audit)",
    );
    None
}

fn run(auditctl: &Path, args: &[&str]) -> String {
    let out = Command::new(auditctl)
        .args(args)
        .output()
        .expect("run auditctl");
    assert!(
        out.status.success(),
        "auditctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rules_file() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("audit-rules/audetect.rules");
    std::fs::read_to_string(&path).expect("read audit-rules/audetect.rules")
}

fn rules_file_lines() -> Vec<String> {
    rules_file()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// A root-owned private copy of the rules file: auditctl -R refuses files
/// that are not owned by root or are world-writable, as a checkout may be.
struct TempRules(PathBuf);

impl TempRules {
    fn new() -> Self {
        TempRules::with(&rules_file())
    }

    fn with(text: &str) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join(format!("audetect-test-{}.rules", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create temporary rules file");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write rules");
        TempRules(path)
    }
}

impl Drop for TempRules {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// auditctl's own encoding of audetect.rules decodes to exactly our rules.
#[test]
fn auditctl_encoding_decodes_to_our_rules() {
    let (_lock, test) = util::kernel_test!();
    let Some(auditctl) = auditctl(test) else {
        return;
    };
    let _restore = Restore::new();
    let mut s = socket();
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![], "leftover rules");

    let file = TempRules::new();
    run(
        &auditctl,
        &["-R", file.0.to_str().expect("utf-8 temp path")],
    );
    // The io_uring rule is commented out in the file (auditctl 3.0 cannot
    // write it): everything else.
    let expected: Vec<AuditRule> = audetect_rules()
        .into_iter()
        .filter(|r| !is_uring_rule(r))
        .collect();
    assert_eq!(audetect_rules_in_kernel(&mut s), expected);

    run(&auditctl, &["-D", "-k", "audetect-connect"]);
    run(&auditctl, &["-D", "-k", "audetect-setsid"]);
    run(&auditctl, &["-D", "-k", "audetect-clock"]);
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![]);
}

/// Every kind's rules, for root and for all users.
fn every_kind() -> Vec<AuditRule> {
    let all = |root_only| -> Vec<Wanted> {
        EventKind::ALL
            .into_iter()
            .map(|kind| Wanted {
                kind,
                root_only,
                real_root: false,
            })
            .collect()
    };
    let mut rules = rules_for(&all(false));
    // The never rules are the same either way: once is what the kernel takes.
    rules.extend(
        rules_for(&all(true))
            .into_iter()
            .filter(|r| r.action == audetect::kernel::rules::AUDIT_ALWAYS),
    );
    rules
}

/// auditctl's encoding of every kind's rules, as we print them, decodes to
/// exactly our rules, and `auditctl -l` prints them as we do.
#[test]
fn auditctl_agrees_on_every_kind_s_rules() {
    let (_lock, test) = util::kernel_test!();
    let Some(auditctl) = auditctl(test) else {
        return;
    };
    let _restore = Restore::new();
    let mut s = socket();
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![], "leftover rules");
    // auditctl 3.0 knows no io_uring filter; its rule is checked by
    // session_installs_the_rules_file_and_restores through our own listing.
    let ours: Vec<AuditRule> = every_kind()
        .into_iter()
        .filter(|r| !is_uring_rule(r))
        .collect();
    let text: String = ours
        .iter()
        .map(|r| format!("{}\n", r.to_auditctl()))
        .collect();
    let file = TempRules::with(&text);
    run(
        &auditctl,
        &["-R", file.0.to_str().expect("utf-8 temp path")],
    );
    assert_eq!(audetect_rules_in_kernel(&mut s), ours);
    let listed: Vec<String> = run(&auditctl, &["-l"])
        .lines()
        .filter(|l| l.contains("key=audetect"))
        .map(String::from)
        .collect();
    let rendered: Vec<String> = ours.iter().map(AuditRule::to_auditctl).collect();
    assert_eq!(listed, rendered);
    for rule in &ours {
        s.delete_rule(rule).expect("delete");
    }
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![]);
}

/// Session installs what the rules file says, as auditctl prints it, and
/// stop() leaves status and rules as they were.
#[test]
fn session_installs_the_rules_file_and_restores() {
    let (_lock, test) = util::kernel_test!();
    let Some(auditctl) = auditctl(test) else {
        return;
    };
    let _restore = Restore::new();
    let mut s = socket();
    let before = s.status().expect("status");
    let rules_before = s.list_rules().expect("list");
    assert!(!rules_before.iter().any(is_audetect_rule), "leftover rules");
    assert_ne!(before.enabled, 2, "audit is locked on this machine");

    let settings = SessionSettings {
        enable: true,
        backlog_limit: Some(before.backlog_limit + 1000),
        backlog_wait_time: Some(if before.backlog_wait_time == 0 {
            1000
        } else {
            0
        }),
        state_file: None,
    };
    let session = Session::start(&settings).expect("start session");
    assert_eq!(session.fallbacks(), &[] as &[String]);
    assert_eq!(session.initial_status().backlog_limit, before.backlog_limit);

    let during = s.status().expect("status");
    assert_eq!(during.enabled, 1);
    assert_eq!(Some(during.backlog_limit), settings.backlog_limit);
    assert_eq!(Some(during.backlog_wait_time), settings.backlog_wait_time);

    let listed: Vec<String> = run(&auditctl, &["-l"])
        .lines()
        .filter(|l| l.contains("key=audetect"))
        .map(String::from)
        .collect();
    // auditctl 3.0 lists the io_uring rule as "-a always,(null) -S ioctl":
    // the exit-list rules are compared with it, the io_uring one with the
    // kernel's own listing.
    let listed: Vec<String> = listed
        .into_iter()
        .filter(|l| !l.contains("(null)"))
        .collect();
    assert_eq!(listed, rules_file_lines());
    let (uring, exit): (Vec<&AuditRule>, Vec<&AuditRule>) =
        session.installed().iter().partition(|r| is_uring_rule(r));
    let rendered: Vec<String> = exit.iter().map(|r| r.to_auditctl()).collect();
    assert_eq!(listed, rendered);
    assert_eq!(uring.len(), 2, "{:?}", session.installed());
    let in_kernel = s.list_rules().expect("list");
    assert!(uring.iter().all(|r| in_kernel.contains(r)), "{in_kernel:?}");

    session.stop().expect("stop session");
    let after = s.status().expect("status");
    assert_eq!(
        (after.enabled, after.backlog_limit, after.backlog_wait_time),
        (
            before.enabled,
            before.backlog_limit,
            before.backlog_wait_time
        )
    );
    assert_eq!(s.list_rules().expect("list"), rules_before);
}

/// A rule that was there before (augenrules loaded audetect.rules) is used
/// but not taken over: stop leaves it in place.
#[test]
fn session_leaves_rules_it_did_not_add() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let before = s.status().expect("status");
    let preloaded = audetect_rules()[1].clone();
    s.add_rule(&preloaded).expect("add the preloaded rule");
    let dup = s.add_rule(&preloaded).expect_err("duplicate add must fail");
    assert_eq!(dup.errno(), Some(libc::EEXIST), "{dup}");

    let settings = SessionSettings {
        enable: false,
        backlog_limit: None,
        backlog_wait_time: None,
        state_file: None,
    };
    let session = Session::start(&settings).expect("start session");
    let texts = |rules: Vec<AuditRule>| {
        let mut t: Vec<String> = rules.iter().map(AuditRule::to_auditctl).collect();
        t.sort();
        t
    };
    assert_eq!(
        texts(audetect_rules_in_kernel(&mut s)),
        texts(audetect_rules()),
        "each rule once, the preloaded one included"
    );
    assert!(
        !session.installed().contains(&preloaded),
        "not ours to remove"
    );
    assert_eq!(session.installed().len(), audetect_rules().len() - 1);
    session.stop().expect("stop session");

    assert_eq!(audetect_rules_in_kernel(&mut s), vec![preloaded.clone()]);
    s.delete_rule(&preloaded)
        .expect("delete the preloaded rule");
    let missing = s
        .delete_rule(&preloaded)
        .expect_err("deleting a missing rule must fail");
    assert_eq!(missing.errno(), Some(libc::ENOENT), "{missing}");
    let after = s.status().expect("status");
    assert_eq!(after.backlog_limit, before.backlog_limit);
}

/// A run that was killed leaves its state file: the next start removes that
/// run's rules (no duplicates), and its stop restores the status from before
/// the killed run, not the one the killed run left.
#[test]
fn session_recovers_from_a_killed_run() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let before = s.status().expect("status");
    let dir = crate::util::TempDir::new("state");
    let settings = SessionSettings {
        enable: true,
        backlog_limit: Some(before.backlog_limit + 512),
        backlog_wait_time: Some(0),
        state_file: Some(dir.path().join("state.json")),
    };
    let killed = Session::start(&settings).expect("first run");
    // As SIGKILL would: nothing of stop() runs.
    std::mem::forget(killed);
    assert!(dir.path().join("state.json").exists());
    assert_eq!(
        s.status().expect("status").backlog_limit,
        before.backlog_limit + 512
    );

    let session = Session::start(&settings).expect("second run");
    assert_eq!(
        audetect_rules_in_kernel(&mut s),
        audetect_rules(),
        "no duplicate"
    );
    assert_eq!(
        session.installed(),
        audetect_rules().as_slice(),
        "all ours again"
    );
    assert_eq!(session.initial_status().backlog_limit, before.backlog_limit);
    assert_eq!(session.initial_status().enabled, before.enabled);
    session.stop().expect("stop");

    let after = s.status().expect("status");
    assert_eq!(
        (after.enabled, after.backlog_limit, after.backlog_wait_time),
        (
            before.enabled,
            before.backlog_limit,
            before.backlog_wait_time
        )
    );
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![]);
    assert!(
        !dir.path().join("state.json").exists(),
        "a clean stop removes it"
    );
}

/// A run killed between adding a rule and saving its state file leaks that
/// rule: the next start removes every audetect-keyed rule but those that
/// were someone else's before (here one loaded as augenrules would). The
/// state file is root's alone.
#[test]
fn session_recovery_removes_a_rule_the_state_missed() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let builtin = audetect_rules();
    let preloaded = builtin[1].clone();
    s.add_rule(&preloaded).expect("add the preloaded rule");
    let dir = crate::util::TempDir::new("state");
    let state = dir.path().join("state.json");
    let settings = SessionSettings {
        enable: false,
        backlog_limit: None,
        backlog_wait_time: None,
        state_file: Some(state.clone()),
    };
    let killed = Session::start(&settings).expect("first run");
    std::mem::forget(killed);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state)
        .expect("state file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    // What the killed run added after its last save.
    let leaked = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
        .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
        .with_syscall(42)
        .with_num(AUDIT_EUID, AUDIT_EQUAL, 0)
        .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"audetect-leaked-test");
    s.add_rule(&leaked).expect("add the leaked rule");

    let session = Session::start(&settings).expect("second run");
    let left = audetect_rules_in_kernel(&mut s);
    assert!(
        !left.contains(&leaked),
        "the leaked rule is removed: {left:?}"
    );
    assert!(
        left.contains(&preloaded),
        "someone else's rule stays: {left:?}"
    );
    let mut texts: Vec<String> = left.iter().map(AuditRule::to_auditctl).collect();
    let mut want: Vec<String> = builtin.iter().map(AuditRule::to_auditctl).collect();
    texts.sort();
    want.sort();
    assert_eq!(texts, want, "the built-in set once, nothing else");
    session.stop().expect("stop");
    assert_eq!(
        audetect_rules_in_kernel(&mut s),
        vec![preloaded.clone()],
        "stop leaves only someone else's rule"
    );
    s.delete_rule(&preloaded)
        .expect("remove the preloaded rule");
}

/// replace_rules adds what the new set has, removes what only the old one
/// had, keeps what both have, and leaves a rule someone else loaded in place.
#[test]
fn session_replaces_its_rules() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let builtin = audetect_rules();
    let preloaded = builtin[1].clone();
    s.add_rule(&preloaded).expect("add the preloaded rule");
    let settings = SessionSettings {
        enable: false,
        backlog_limit: None,
        backlog_wait_time: None,
        state_file: None,
    };
    let mut session = Session::start_with_rules(&settings, builtin.clone()).expect("start");
    let exec = rules_for(&[Wanted {
        kind: EventKind::Exec,
        root_only: true,
        real_root: false,
    }]);
    let mut both = builtin.clone();
    both.extend(exec.iter().cloned());
    let texts = |rules: &[AuditRule]| -> Vec<String> {
        let mut t: Vec<String> = rules.iter().map(AuditRule::to_auditctl).collect();
        t.sort();
        t
    };

    let changed = session.replace_rules(both.clone()).expect("add exec");
    let in_order: Vec<String> = exec.iter().map(AuditRule::to_auditctl).collect();
    assert_eq!(changed.added, in_order, "added in the set's order");
    assert!(changed.removed.is_empty());
    assert_eq!(texts(&audetect_rules_in_kernel(&mut s)), texts(&both));

    let changed = session.replace_rules(exec.clone()).expect("exec alone");
    let gone: Vec<AuditRule> = builtin
        .iter()
        .filter(|r| *r != &preloaded)
        .cloned()
        .collect();
    let mut removed = changed.removed.clone();
    removed.sort();
    assert_eq!(removed, texts(&gone), "the preloaded rule is not ours");
    let mut left = exec.clone();
    left.push(preloaded.clone());
    assert_eq!(texts(&audetect_rules_in_kernel(&mut s)), texts(&left));
    assert_eq!(session.wanted(), exec.as_slice());

    let changed = session.replace_rules(exec.clone()).expect("the same again");
    assert_eq!(changed, Default::default());
    session.stop().expect("stop");
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![preloaded.clone()]);
    s.delete_rule(&preloaded)
        .expect("delete the preloaded rule");
}

/// A status field someone else changed while audetect ran is theirs: stop
/// does not overwrite it.
#[test]
fn session_does_not_undo_changes_made_by_others() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let before = s.status().expect("status");
    let settings = SessionSettings {
        enable: true,
        backlog_limit: Some(before.backlog_limit + 512),
        backlog_wait_time: None,
        state_file: None,
    };
    let session = Session::start_with_rules(&settings, vec![]).expect("start");
    let theirs = before.backlog_limit + 1024;
    s.set_status(&StatusChange {
        backlog_limit: Some(theirs),
        ..Default::default()
    })
    .expect("an administrator's change");
    session.stop().expect("stop");
    let after = s.status().expect("status");
    assert_eq!(after.backlog_limit, theirs);
    assert_eq!(
        after.enabled, before.enabled,
        "enabled was still ours: restored"
    );
}

/// A rule the kernel refuses for its saddr_fam condition is installed
/// without it; a second one reducing to the same rule is not retried.
#[test]
fn session_falls_back_without_saddr_fam() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    // Bit operators on saddr_fam are EINVAL in every kernel that has the
    // field: a stand-in for an older kernel that lacks saddr_fam.
    let refused = |fam| {
        AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
            .with_syscall(42)
            .with_num(AUDIT_EUID, AUDIT_EQUAL, 0)
            .with_num(AUDIT_SADDR_FAM, AUDIT_BIT_MASK, fam)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"audetect-fallback-test")
    };
    let settings = SessionSettings {
        enable: false,
        backlog_limit: None,
        backlog_wait_time: None,
        state_file: None,
    };
    let session =
        Session::start_with_rules(&settings, vec![refused(2), refused(10)]).expect("start session");
    let stripped = without_saddr_fam(&refused(2)).expect("has saddr_fam");
    assert_eq!(session.installed(), std::slice::from_ref(&stripped));
    assert_eq!(session.fallbacks().len(), 2, "{:?}", session.fallbacks());
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![stripped]);
    session.stop().expect("stop session");
    assert_eq!(audetect_rules_in_kernel(&mut s), vec![]);
}

#[test]
fn backlog_limit_set_and_restore() {
    let (_lock, _) = util::kernel_test!();
    let _restore = Restore::new();
    let mut s = socket();
    let before = s.status().expect("status");
    let change = |v| StatusChange {
        backlog_limit: Some(v),
        ..Default::default()
    };
    s.set_status(&change(before.backlog_limit + 123))
        .expect("set");
    assert_eq!(
        s.status().expect("status").backlog_limit,
        before.backlog_limit + 123
    );
    s.set_status(&change(before.backlog_limit))
        .expect("restore");
    let after = s.status().expect("status");
    assert_eq!(after.backlog_limit, before.backlog_limit);
    assert_eq!(after.enabled, before.enabled);
}

/// Waits for a SYSCALL record containing all `needles`; returns its body.
fn await_record(sock: &mut AuditSocket, needles: &[&str]) -> String {
    let mut buf = vec![0u8; RECV_BUFFER_SIZE];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match sock.recv_raw(&mut buf).expect("recv") {
            RecvOutcome::Record {
                msg_type: 1300,
                body,
                truncated,
            } => {
                assert!(!truncated);
                let body = &buf[body];
                let text = String::from_utf8_lossy(body);
                if needles.iter().all(|n| text.contains(n)) {
                    assert!(text.starts_with("audit("), "{text}");
                    assert_ne!(body.last(), Some(&0));
                    return text.into_owned();
                }
            }
            RecvOutcome::Foreign { port_id } => panic!("message from port {port_id}"),
            _ => {}
        }
    }
    panic!("no record with {needles:?} within 5 s");
}

/// In a child process (the kernel never audits the registered daemon's own
/// process): connect to `port` on 127.0.0.1, then setsid. Returns its pid.
fn connect_then_setsid_in_child(port: u16) -> libc::pid_t {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the child calls only async-signal-safe functions (socket,
    // connect, setsid, _exit) on data prepared before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            libc::connect(
                fd,
                &addr as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            libc::setsid();
            libc::_exit(0);
        }
    }
    assert!(child > 0, "fork failed");
    let mut wstatus = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut wstatus, 0) };
    child
}

/// Root connect and setsid produce keyed records, received whole both as the
/// registered daemon (unicast, whose nlmsg_len leaves out the header) and on
/// the multicast group.
#[test]
fn records_arrive_on_unicast_and_multicast() {
    let (_lock, test) = util::kernel_test!();
    let _restore = Restore::new();
    let mut control = socket();
    let before = control.status().expect("status");
    if before.pid != 0 {
        // Unicast is the registered daemon's: this test cannot take it.
        return util::skip(
            test,
            format_args!(
                "an audit daemon (pid {}) is registered; stop it (auditd must not run here)",
                before.pid
            ),
        );
    }
    let mut unicast = socket();
    unicast
        .set_read_timeout(Duration::from_millis(200))
        .expect("timeout");
    assert!(unicast.set_receive_buffer(1 << 20).expect("rcvbuf") >= 1 << 20);
    let mut multicast = socket();
    multicast
        .set_read_timeout(Duration::from_millis(200))
        .expect("timeout");
    multicast.join_multicast().expect("join multicast");
    unicast.register_daemon().expect("register");
    assert_eq!(control.status().expect("status").pid, std::process::id());
    let again = socket()
        .register_daemon()
        .expect_err("a second daemon must be refused");
    assert_eq!(again.errno(), Some(libc::EEXIST), "{again}");

    let session = Session::start(&SessionSettings {
        enable: true,
        backlog_limit: None,
        backlog_wait_time: None,
        state_file: None,
    })
    .expect("start session");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let child = connect_then_setsid_in_child(port);

    let pid = format!(" pid={child} ");
    for sock in [&mut unicast, &mut multicast] {
        await_record(sock, &["syscall=42 ", &pid, "key=\"audetect-connect\""]);
        await_record(sock, &["syscall=112 ", &pid, "key=\"audetect-setsid\""]);
    }

    unicast.unregister_daemon().expect("unregister");
    session.stop().expect("stop session");
    let after = control.status().expect("status");
    assert_eq!((after.pid, after.enabled), (0, before.enabled));
}

/// Makes a thread with clone(CLONE_THREAD), then forks a child; prints its
/// pid, the thread's id and the child's.
const CLONE_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int started;
static char stack[1 << 16];

static int thread_main(void *arg) {
    (void)arg;
    started = 1;
    syscall(SYS_exit, 0);
    return 0;
}

int main(void) {
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    pid_t tid = clone(thread_main, stack + sizeof stack, flags, NULL);
    if (tid < 0) return 1;
    while (!started) sched_yield();
    pid_t child = fork();
    if (child == 0) _exit(0);
    if (child < 0 || waitpid(child, NULL, 0) != child) return 2;
    printf("pid %d\nthread %d\nchild %d\n", getpid(), tid, child);
    return 0;
}
"#;

/// CLONE_PROGRAM built with `cc` and `extra` flags, or why not.
fn clone_program(extra: &[&str], name: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("clone_thread.c");
    std::fs::write(&src, CLONE_PROGRAM).map_err(|e| format!("writing {src:?}: {e}"))?;
    let out = dir.join(name);
    let built = Command::new("cc")
        .args(extra)
        .args(["-O", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "cc {extra:?} failed: {}",
            String::from_utf8_lossy(&built.stderr).trim()
        ));
    }
    Ok(out)
}

/// The fork rules audit a fork and not a thread made with clone(), for
/// x86_64 and (when `cc -m32` works here) i386 processes: the `never` rule
/// reads clone's flags from a0 on both.
#[test]
fn fork_rules_audit_processes_not_threads() {
    let (_lock, test) = util::kernel_test!();
    let _restore = Restore::new();
    let mut control = socket();
    let before = control.status().expect("status");
    let mut records = socket();
    records
        .set_read_timeout(Duration::from_millis(200))
        .expect("timeout");
    records.set_receive_buffer(1 << 22).expect("rcvbuf");
    if before.pid == 0 {
        records.register_daemon().expect("register");
    } else {
        records.join_multicast().expect("join multicast");
    }
    let fork = rules_for(&[Wanted {
        kind: EventKind::Fork,
        root_only: false,
        real_root: false,
    }]);
    let session = Session::start_with_rules(
        &SessionSettings {
            enable: true,
            backlog_limit: None,
            backlog_wait_time: None,
            state_file: None,
        },
        fork.clone(),
    )
    .expect("start session");
    assert_eq!(session.installed(), fork.as_slice());

    let mut programs = vec![("x86_64", "syscall=56 ", clone_program(&[], "clone64"))];
    programs.push(("i386", "syscall=120 ", clone_program(&["-m32"], "clone32")));
    for (arch, clone_call, program) in programs {
        let program = match program {
            Ok(p) => p,
            Err(why) => {
                util::skip(&format!("{test} ({arch})"), why);
                continue;
            }
        };
        let out = Command::new(&program)
            .output()
            .expect("run the clone program");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{arch}: {:?} {stdout}", out.status);
        let id = |what: &str| -> String {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(what))
                .unwrap_or_else(|| panic!("{arch}: no {what}in {stdout}"))
                .trim()
                .to_owned()
        };
        let (pid, thread, child) = (id("pid "), id("thread "), id("child "));
        let mine = format!(" pid={pid} ");
        let seen = records_until(
            &mut records,
            &[
                clone_call,
                &mine,
                &format!(" exit={child} "),
                "key=\"audetect-fork\"",
            ],
        );
        let thread_exit = format!(" exit={thread} ");
        assert!(
            !seen
                .iter()
                .any(|r| r.contains(&mine) && r.contains(&thread_exit)),
            "{arch}: the thread's clone was audited: {seen:#?}"
        );
    }

    if before.pid == 0 {
        records.unregister_daemon().expect("unregister");
    }
    session.stop().expect("stop session");
    assert_eq!(audetect_rules_in_kernel(&mut control), vec![]);
}

/// Every SYSCALL record up to and including the first one containing all
/// `needles`, waiting up to 5 s for it.
fn records_until(sock: &mut AuditSocket, needles: &[&str]) -> Vec<String> {
    let mut buf = vec![0u8; RECV_BUFFER_SIZE];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let RecvOutcome::Record {
            msg_type: 1300,
            body,
            ..
        } = sock.recv_raw(&mut buf).expect("recv")
        {
            let text = String::from_utf8_lossy(&buf[body]).into_owned();
            let done = needles.iter().all(|n| text.contains(n));
            seen.push(text);
            if done {
                return seen;
            }
        }
    }
    panic!("no record with {needles:?} within 5 s");
}

/// A detection-rules file with one rule.
fn rule_file(name: &str, query: &str) -> String {
    format!(
        "[rule]\nauthor = [\"test\"]\ndescription = \"d\"\nname = \"{name}\"\nrisk_score = 21\n\
         rule_id = \"{name}\"\nseverity = \"low\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
    )
}

/// An exec rule that never fires on this host.
const EXEC_RULE: &str = r#"process where event.type == "start" and event.action == "exec" and process.name == "audetect-no-such-program""#;

/// The built-in set (root connects and setsids, by effective and by real
/// uid) plus exec for every user.
fn builtin_and_exec() -> Vec<String> {
    let root = |kind| Wanted {
        kind,
        root_only: true,
        real_root: true,
    };
    let mut rules = rules_for(&[
        root(EventKind::ConnectionAttempted),
        root(EventKind::SessionIdChange),
        Wanted {
            kind: EventKind::Exec,
            root_only: false,
            real_root: false,
        },
    ]);
    // The built-in rule has a maxspan: the clock calls are audited too.
    add_clock_rules(&mut rules);
    rules.iter().map(AuditRule::to_auditctl).collect()
}

fn audetect_rules_listed() -> Vec<String> {
    let mut s = socket();
    audetect_rules_in_kernel(&mut s)
        .iter()
        .map(AuditRule::to_auditctl)
        .collect()
}

/// With an exec rule among rule_paths, `audetect run` installs the exec
/// rules beside the built-in ones, and removes them all on stop.
#[test]
fn the_daemon_installs_the_rules_its_detection_rules_need() {
    let (lock, _) = util::kernel_test!();
    let rules = util::TempDir::new("exec-rules");
    std::fs::write(
        rules.path().join("exec.toml"),
        rule_file("exec probe", EXEC_RULE),
    )
    .expect("write rule");
    assert_eq!(
        audetect_rules_listed(),
        Vec::<String>::new(),
        "leftover rules"
    );
    let daemon = crate::daemon::Daemon::start(
        lock,
        &format!(
            "[detection]\nrule_paths = [{:?}]\n",
            rules.path().display().to_string()
        ),
    );
    assert_eq!(
        audetect_rules_listed(),
        builtin_and_exec(),
        "{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("audit events: exec (key audetect-exec), all users: 1 rule (\"exec probe\")"),
        "{}",
        daemon.log()
    );
    // stop() checks that the audit state is what it was before the start.
    daemon.stop();
    assert_eq!(audetect_rules_listed(), Vec::<String>::new());
}

/// SIGHUP with an exec rule added installs the exec rules; with it removed
/// again, removes them; the built-in rules stay throughout.
#[test]
fn a_reload_changes_the_audit_rules() {
    let (lock, _) = util::kernel_test!();
    let rules = util::TempDir::new("reload-rules");
    let daemon = crate::daemon::Daemon::start(
        lock,
        &format!(
            "[detection]\nrule_paths = [{:?}]\n",
            rules.path().display().to_string()
        ),
    );
    let builtin: Vec<String> = audetect_rules()
        .iter()
        .map(AuditRule::to_auditctl)
        .collect();
    assert_eq!(audetect_rules_listed(), builtin);
    let hangup = |reloads: usize| {
        // SAFETY: kill on the daemon's pid, a child of this test.
        unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
        let done = util::wait_for(Duration::from_secs(10), || {
            (daemon.log().matches("reloaded:").count() >= reloads).then_some(())
        });
        assert!(done.is_some(), "no reload:\n{}", daemon.log());
    };
    let exec = rules.path().join("exec.toml");
    std::fs::write(&exec, rule_file("exec probe", EXEC_RULE)).expect("write rule");
    hangup(1);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // Added rules go to the end of the kernel's list.
    assert_eq!(
        sorted(audetect_rules_listed()),
        sorted(builtin_and_exec()),
        "{}",
        daemon.log()
    );
    std::fs::remove_file(&exec).expect("remove rule");
    hangup(2);
    assert_eq!(audetect_rules_listed(), builtin, "{}", daemon.log());
    assert!(
        daemon
            .log()
            .contains("reload: 2 audit rule(s) added, 0 removed")
            && daemon
                .log()
                .contains("reload: 0 audit rule(s) added, 2 removed"),
        "{}",
        daemon.log()
    );
    daemon.stop();
}
