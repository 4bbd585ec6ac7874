//! Tampering on the real kernel: rules deleted and audit disabled behind
//! the daemon's back are put back within the watch interval and reported;
//! `audetect status` shows the running daemon's counters.

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::time::Duration;

use audetect::kernel::AuditSocket;
use serde_json::Value;

use crate::daemon::{actor, alerts_for, audit_state, ports, run_actor, Daemon};
use crate::util::{kernel_test, wait_for};

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

fn configuration_alerts(d: &Daemon, action: &str) -> Vec<Value> {
    d.alerts()
        .into_iter()
        .filter(|a| a["event"]["kind"] == "alert" && a["event"]["action"] == action)
        .collect()
}

#[test]
fn kernel_rules_removed_and_audit_disabled_are_put_back_and_reported() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "[kernel]\nwatch_interval = \"200ms\"\n");
    let running = audit_state();
    assert_eq!(running.enabled, 1);
    assert!(!running.rules.is_empty());

    // What `auditctl -D` does to audetect's rules, without touching any
    // other rule on this shared machine.
    auditctl(&["-D", "-k", "audetect-connect"]);
    auditctl(&["-D", "-k", "audetect-setsid"]);
    auditctl(&["-D", "-k", "audetect-clock"]);
    // As a set: auditctl 3.0 cannot delete the io_uring rules (it cannot
    // read their list), so the restored ones come back after them.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let back = wait_for(Duration::from_secs(5), || {
        (sorted(audit_state().rules) == sorted(running.rules.clone())).then_some(())
    });
    assert!(
        back.is_some(),
        "rules not restored within 5 s:\n{}",
        d.log()
    );
    // One report, or two if a check fell between the two deletions: between
    // them they name every rule put back.
    let restored = |a: &[Value]| -> usize {
        a.iter()
            .filter_map(|r| r["audetect"]["rules_restored"].as_array())
            .map(Vec::len)
            .sum()
    };
    let reported = wait_for(Duration::from_secs(5), || {
        let a = configuration_alerts(&d, "audit_rules_removed");
        (restored(&a) >= running.rules.len()).then_some(a)
    })
    .unwrap_or_else(|| panic!("no audit_rules_removed report for every rule:\n{}", d.log()));
    assert_eq!(reported[0]["event"]["category"][0], "configuration");
    assert_eq!(restored(&reported), running.rules.len());

    auditctl(&["-e", "0"]);
    let enabled = wait_for(Duration::from_secs(5), || {
        (audit_state().enabled == 1).then_some(())
    });
    assert!(
        enabled.is_some(),
        "audit not enabled again within 5 s:\n{}",
        d.log()
    );
    let reported = wait_for(Duration::from_secs(5), || {
        let a = configuration_alerts(&d, "audit_disabled");
        (!a.is_empty()).then_some(a)
    });
    assert!(reported.is_some(), "no audit_disabled report:\n{}", d.log());

    // And it still detects.
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    d.stop();
}

#[test]
fn kernel_status_shows_the_running_daemons_counters() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    // The stats file is rewritten every 5 seconds.
    let stats = wait_for(Duration::from_secs(12), || {
        let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
            .arg("status")
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && v["detection"]["alerts"].as_u64() >= Some(1)).then_some(v)
    })
    .unwrap_or_else(|| panic!("audetect status never showed the alert:\n{}", d.log()));
    assert_eq!(stats["source"], "unicast");
    assert!(stats["received"]["records"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["lost"]["socket_overflows"], 0, "{stats}");
    assert_eq!(
        stats["audit_rules"],
        audetect::kernel::audetect_rules().len(),
        "{stats}"
    );
    d.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "not running after stop");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn kernel_sighup_reloads_rules_and_keeps_pending_sequences() {
    let (lock, _) = kernel_test!();
    let rules = crate::util::TempDir::new("rules");
    let d = Daemon::start(
        lock,
        &format!(
            "[detection]\nrule_paths = [{:?}]\n",
            rules.path().display().to_string()
        ),
    );
    let p = ports();
    // Connect now, setsid after the reload: the built-in rule's pending
    // sequence must survive it. A root bash connects, says so, and waits
    // for a line on stdin before `exec setsid` (setsid(1) calls setsid() in
    // that same process).
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/{}; echo connected; read -r _; exec setsid true",
                p.open
            ),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said, "connected\n");
    // The canary's alert shows the connect has been through detection (the
    // daemon handles records in order), and no alert for the shell yet: its
    // sequence is pending.
    let before = d.canary(p.open);
    assert!(
        alerts_for(&before, pid).is_empty(),
        "the shell alerted before its setsid: {before:#?}"
    );
    std::fs::write(
        rules.path().join("new.toml"),
        "[rule]\nauthor = [\"t\"]\ndescription = \"d\"\nname = \"Added By Reload\"\nrisk_score = 1\n\
         rule_id = \"audetect-test-reload\"\nseverity = \"low\"\ntype = \"eql\"\n\
         query = \"process where event.action == \\\"session_id_change\\\"\"\n",
    )
    .unwrap();
    // SAFETY: kill on a child pid we own.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    let reloaded = wait_for(Duration::from_secs(5), || {
        d.log().contains("reloaded:").then_some(())
    });
    assert!(reloaded.is_some(), "no reload:\n{}", d.log());
    assert!(
        d.log().contains("3 unchanged kept their pending sequences"),
        "{}",
        d.log()
    );
    // Now the setsid.
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let both = wait_for(Duration::from_secs(10), || {
        let mine: Vec<Value> = d
            .alerts()
            .into_iter()
            .filter(|a| a["process"]["pid"] == pid)
            .collect();
        (mine.len() == 2).then_some(mine)
    })
    .unwrap_or_else(|| {
        panic!(
            "expected the seed alert and the new rule's:\n{:#?}\n{}",
            d.alerts(),
            d.log()
        )
    });
    let mut ids: Vec<&str> = both
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "audetect-test-reload",
            "eb6a3790-d52d-11ec-8ce9-f661ea17fbce"
        ]
    );

    // A broken rule is refused and the running ones stay.
    std::fs::write(rules.path().join("bad.toml"), "[rule]\nname = \"x\"\n").unwrap();
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    let refused = wait_for(Duration::from_secs(5), || {
        d.log().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", d.log());
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let all = d.wait_alert_for(run.pid);
    // Behind this run's alert: still the shell's two, none twice.
    assert_eq!(alerts_for(&all, pid).len(), 2, "{all:#?}");
    d.stop();
}

#[test]
fn kernel_keeps_only_the_capabilities_it_needs() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let keep: u64 = audetect::caps::KEEP.iter().fold(0, |m, c| m | 1 << c.bit);
    // Capabilities are per thread: every thread of the daemon is checked.
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", d.pid()))
        .unwrap()
        .map(|t| t.unwrap().path())
        .collect();
    assert!(
        tasks.len() >= 3,
        "main, receive and output threads: {tasks:?}"
    );
    for task in tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let mask = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("CapEff:"), keep, "{}: {status}", task.display());
        assert_eq!(mask("CapPrm:"), keep, "{}: {status}", task.display());
        assert_eq!(mask("CapBnd:"), keep, "{}: {status}", task.display());
    }
    // It still detects and still restores the kernel state on stop.
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    d.stop();
}

#[test]
fn kernel_refuses_to_start_without_audit_control_and_names_it() {
    let (_lock, _) = kernel_test!();
    let before = audit_state();
    let out = Command::new("setpriv")
        .args(["--bounding-set=-audit_control", "--"])
        .arg(env!("CARGO_BIN_EXE_audetect"))
        .args(["run", "--config", "/dev/null"])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CAP_AUDIT_CONTROL"), "{err}");
    assert!(!err.contains("ready"), "{err}");
    assert_eq!(audit_state(), before, "nothing was touched");
}

#[test]
fn kernel_a_start_after_sigkill_cleans_up_and_restores_the_first_state() {
    let (lock, _) = kernel_test!();
    let first = Daemon::start(lock, "");
    let (original, lock) = first.kill_hard();
    let left = audit_state();
    assert_eq!(left.enabled, 1, "the killed run left audit enabled");
    assert!(!left.rules.is_empty(), "and its rules in");

    let mut second = Daemon::start(lock, "");
    let log = second.log();
    assert!(log.contains("did not stop cleanly"), "{log}");
    // Whether the kernel already dropped the dead daemon (it does when a
    // send to it fails) or audetect replaces it, audetect is the daemon now.
    assert!(log.contains("registered as the audit daemon"), "{log}");
    let running = audit_state();
    assert_eq!(running.rules.len(), left.rules.len(), "no duplicate rules");
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    second.wait_alert_for(run.pid);
    // Its clean stop puts back the state from before the first start.
    second.before = original;
    second.stop();
}

/// Puts the backlog limit a test lowered back when the test ends, failed or
/// not (the daemon's own stop restores only what the daemon changed).
struct BacklogRestored(u32);

impl Drop for BacklogRestored {
    fn drop(&mut self) {
        // Not auditctl(): a panic while unwinding would abort the tests.
        let ok = Command::new("auditctl")
            .args(["-b", &self.0.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not restore backlog_limit {}", self.0);
        }
    }
}

/// Loss accounting with a loss the kernel really makes: a backlog limit of
/// one record, no waiting (backlog_wait_time = 0, which audetect sets only
/// when told to), and a burst of audited events.
#[test]
fn kernel_records_lost_by_the_kernel_are_counted_and_logged() {
    let (lock, _) = kernel_test!();
    let backlog = BacklogRestored(audit_state().backlog_limit);
    auditctl(&["-b", "1"]);
    let d = Daemon::start(lock, "[kernel]\nbacklog_limit = 1\nbacklog_wait_time = 0\n");
    let p = ports();
    for _ in 0..20 {
        run_actor(
            actor(),
            &[&format!("tcp4:{}", p.closed), "tcp4:1", "tcp4:2", "setsid"],
        );
    }
    let stats = wait_for(Duration::from_secs(15), || {
        let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
            .arg("status")
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["lost"]["kernel"].as_u64() > Some(0)).then_some(v)
    });
    let logged = wait_for(Duration::from_secs(15), || {
        d.log().contains("records lost by the kernel").then_some(())
    });
    let (log, lock) = d.stop_keeping_lock();
    // Restored while the lock is held, so the next kernel test starts from
    // the original limit.
    drop(backlog);
    drop(lock);
    let stats = stats.unwrap_or_else(|| panic!("no kernel loss counted:\n{log}"));
    assert!(logged.is_some(), "no loss logged:\n{log}");
    // With a backlog of one, each event's first record gets through and
    // the rest are lost: no serial goes missing, only the counter tells.
    assert!(stats["lost"]["kernel"].as_u64() > Some(0), "{stats}");
}

/// The same burst through the same one-record backlog, with the kernel's own
/// backlog_wait_time left as audetect's default leaves it: the audited
/// processes wait for audetect to read instead, and nothing is lost.
#[test]
fn kernel_with_the_default_wait_a_burst_through_a_tiny_backlog_loses_nothing() {
    let (lock, _) = kernel_test!();
    let found = audit_state();
    assert!(
        found.backlog_wait_time > 0,
        "this test needs the kernel's boot backlog_wait_time (60 s), found 0"
    );
    let backlog = BacklogRestored(found.backlog_limit);
    auditctl(&["-b", "1"]);
    let d = Daemon::start(lock, "[kernel]\nbacklog_limit = 1\n");
    let lost = || AuditSocket::open().unwrap().status().unwrap().lost;
    let lost_before = lost();
    let p = ports();
    let mut pids = Vec::new();
    for _ in 0..20 {
        let run = run_actor(
            actor(),
            &[&format!("tcp4:{}", p.open), "tcp4:1", "tcp4:2", "setsid"],
        );
        pids.push(run.pid);
    }
    for pid in &pids {
        d.wait_alert_for(*pid);
    }
    let lost_after = lost();
    let (log, lock) = d.stop_keeping_lock();
    // Restored while the lock is held, so the next kernel test starts from
    // the original limit.
    drop(backlog);
    drop(lock);
    assert_eq!(lost_after, lost_before, "records lost:\n{log}");
    assert!(!log.contains("records lost by the kernel"), "{log}");
}

/// The audit netlink ports of a process, from /proc/net/netlink.
fn audit_ports_of(pid: u32) -> Vec<u32> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    std::fs::read_to_string("/proc/net/netlink")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(1) == Some(&"9")
                && cols.get(9).is_some_and(|i| inodes.iter().any(|n| n == i)))
            .then(|| cols[2].parse().ok())
            .flatten()
        })
        .collect()
}

/// Sends one audit record to a netlink port from this (user-space) process.
fn send_forged(port: u32, rtype: u16, body: &str) {
    // SAFETY: plain socket calls on a descriptor we own and close.
    unsafe {
        let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 9);
        assert!(fd >= 0);
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&rtype.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body.as_bytes());
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_pid = port;
        let rc = libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        assert_eq!(
            rc,
            msg.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
        libc::close(fd);
    }
}

#[test]
fn kernel_forged_records_from_user_space_are_ignored() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let ports_of_daemon = audit_ports_of(d.pid());
    assert!(
        !ports_of_daemon.is_empty(),
        "no audit socket found for the daemon"
    );
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fake_pid = 3_999_999;
    let common = format!(
        "items=0 ppid=1 pid={fake_pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm=\"forged\" exe=\"/tmp/forged\""
    );
    for port in &ports_of_daemon {
        let a = format!("audit({secs}.001:900000001): ");
        let b = format!("audit({secs}.002:900000002): ");
        send_forged(*port, 1300, &format!("{a}arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=0 a2=10 a3=0 {common} key=\"audetect-connect\""));
        send_forged(
            *port,
            1306,
            &format!("{a}saddr=0200BCAD7F0000010000000000000000"),
        );
        send_forged(*port, 1327, &format!("{a}proctitle=66"));
        send_forged(*port, 1300, &format!("{b}arch=c000003e syscall=112 success=yes exit=5 a0=0 a1=0 a2=0 a3=0 {common} key=\"audetect-setsid\""));
        send_forged(*port, 1327, &format!("{b}proctitle=66"));
    }
    let all = d.canary(ports().open);
    assert!(
        all.iter().all(|a| a["process"]["pid"] != fake_pid),
        "a forged record made an alert: {all:#?}"
    );
    let log = d.stop();
    let foreign: u64 = log
        .split(" not from the kernel")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        foreign >= 5,
        "forged messages counted as not from the kernel: {log}"
    );
}

#[test]
fn kernel_selftest_passes_alone_and_through_a_running_daemon() {
    let (lock, _) = kernel_test!();
    let before = audit_state();
    let selftest = || {
        let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
            .arg("selftest")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = selftest();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("pipeline of its own") && text.contains("PASS"),
        "{text}"
    );
    assert_eq!(
        audit_state(),
        before,
        "selftest leaves the audit state as it found it"
    );

    let d = Daemon::start(lock, "");
    let (code, text) = selftest();
    assert_eq!(code, Some(0), "{text}\n{}", d.log());
    assert!(
        text.contains("using the running audetect") && text.contains("PASS"),
        "{text}"
    );
    d.stop();
}

/// `systemctl reload` (SIGHUP) with a config that has a mistake keeps the
/// running one, says which line is wrong, and goes on detecting; a fixed
/// config then reloads.
#[test]
fn kernel_sighup_with_a_broken_config_keeps_the_running_one() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let config = d.dir.path().join("audetect.toml");
    let good = std::fs::read_to_string(&config).expect("the daemon's config");
    std::fs::write(
        &config,
        format!("{good}\n[detection]\nmax_pending_events = 0\n"),
    )
    .expect("break the config");
    // SAFETY: kill on a child pid we own.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    let refused = wait_for(Duration::from_secs(5), || {
        let log = d.log();
        log.lines()
            .find(|l| l.contains("reload refused, keeping the running configuration"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no refusal:\n{}", d.log()));
    assert!(
        refused.contains("line"),
        "the wrong line is named: {refused}"
    );
    // Still detecting with the running configuration.
    d.canary(ports().open);
    std::fs::write(&config, &good).expect("fix the config");
    // SAFETY: as above.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    let reloaded = wait_for(Duration::from_secs(5), || {
        d.log().contains("reloaded:").then_some(())
    });
    assert!(
        reloaded.is_some(),
        "the fixed config did not reload:\n{}",
        d.log()
    );
    d.stop();
}

/// `audetect status` of a blinded sensor: exit 3, with what blinds it under
/// `tampering.blinding`, and back to 0 once it is gone, so that a
/// monitoring check tells a blind sensor from a healthy one.
#[test]
fn kernel_status_of_a_blinded_daemon_names_the_cause() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let never = [
        "exit,never",
        "-F",
        "arch=b64",
        "-S",
        "connect",
        "-k",
        "audetect-test-never",
    ];
    /// Removes the never rule even when the test fails.
    struct Remove<'a>(&'a [&'a str]);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = Command::new("auditctl").arg("-d").args(self.0).output();
        }
    }
    auditctl(&[&["-A"], &never[..]].concat());
    let remove = Remove(&never);
    let status = || {
        let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
            .arg("status")
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some((
            out.status.code(),
            v,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    // The stats file is rewritten every 5 seconds.
    let (code, v, stderr) = wait_for(Duration::from_secs(12), || {
        status().filter(|(code, _, _)| *code == Some(3))
    })
    .unwrap_or_else(|| panic!("audetect status never said it is blinded:\n{}", d.log()));
    let causes = v["tampering"]["blinding"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes.len() == 1
            && causes[0]
                .as_str()
                .is_some_and(|c| c.starts_with("-a never,exit")),
        "{code:?} {v:#}"
    );
    assert!(
        v["tampering"]["blinding_reported"].as_u64() >= Some(1),
        "{v:#}"
    );
    assert!(stderr.contains("suppressed by: -a never,exit"), "{stderr}");
    drop(remove);
    let (_, v, _) = wait_for(Duration::from_secs(12), || {
        status().filter(|(code, _, _)| *code == Some(0))
    })
    .unwrap_or_else(|| {
        panic!(
            "audetect status stayed blinded after the rule went:\n{}",
            d.log()
        )
    });
    assert_eq!(v["tampering"]["blinding"], serde_json::json!([]), "{v:#}");
    d.stop();
}
