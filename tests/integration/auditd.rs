//! Beside a real auditd (Debian's, started by the test with its own config
//! in a temporary directory): audetect listens on the multicast group and
//! leaves auditd registered; as auditd's plugin it reads the event stream.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{actor, alerts_for, audit_state, ports, run_actor, Daemon};
use crate::util::{kernel_test, skip, wait_for, TempDir};

/// Whether Debian's auditd is here; outside CI a test without it skips and
/// says why, in CI it fails.
fn auditd_installed(test: &str) -> bool {
    if Path::new("/usr/sbin/auditd").exists() {
        return true;
    }
    skip(
        test,
        "/usr/sbin/auditd is not installed (tests/run installs it)",
    );
    false
}

/// A foreground auditd registered as the audit daemon, stopped on drop.
struct Auditd {
    child: Child,
    dir: TempDir,
}

impl Auditd {
    /// None (after printing why) when auditd is not installed outside CI.
    fn start(test: &str, plugin: Option<&str>) -> Option<Auditd> {
        Auditd::launch(test, plugin, false)
    }

    /// Starts auditd and returns None if it exits without registering
    /// (another daemon held the audit socket).
    fn launch(test: &str, plugin: Option<&str>, allow_refusal: bool) -> Option<Auditd> {
        if !auditd_installed(test) {
            return None;
        }
        let dir = TempDir::new("auditd");
        let plugins = dir.path().join("plugins.d");
        std::fs::create_dir_all(&plugins).unwrap();
        if let Some(conf) = plugin {
            std::fs::write(plugins.join("audetect.conf"), conf).unwrap();
        }
        // Logs stay in the temporary directory; nothing about disk space
        // may stop it.
        let conf = format!(
            "local_events = yes\nwrite_logs = yes\nlog_file = {dir}/audit.log\nlog_group = root\n\
             log_format = RAW\nflush = NONE\nfreq = 0\nmax_log_file = 8\nnum_logs = 1\n\
             max_log_file_action = ROTATE\nspace_left = 2\nspace_left_action = IGNORE\n\
             admin_space_left = 1\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
             disk_error_action = IGNORE\nplugin_dir = {plugins}\nq_depth = 2000\nname_format = NONE\n",
            dir = dir.path().display(),
            plugins = plugins.display()
        );
        std::fs::write(dir.path().join("auditd.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("auditd.out")).unwrap();
        let child = Command::new("/usr/sbin/auditd")
            .args(["-f", "-n", "-s", "nochange", "-c"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn auditd");
        let mut auditd = Auditd { child, dir };
        let pid = auditd.child.id();
        // Registered is not ready. libaudit's audit_set_pid waits up to
        // 100 ms after registering for a reply and discards whatever message
        // comes first, and auditd has more start-up to do before it reads
        // events: records sent meanwhile (the test's first event's, once in
        // a few runs) never reach its log or its plugins. It says when it
        // reads events.
        let up = wait_for(Duration::from_secs(10), || {
            if audit_state().pid == pid && auditd.output().contains("listening for events") {
                return Some(true);
            }
            auditd.child.try_wait().ok().flatten().map(|_| false)
        });
        match up {
            Some(true) => Some(auditd),
            Some(false) if allow_refusal => None,
            _ => panic!("auditd did not register:\n{}", auditd.output()),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("auditd.out")).unwrap_or_default()
    }

    fn stop(mut self) {
        // SAFETY: kill on a child pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let gone = wait_for(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        });
        assert!(gone.is_some(), "auditd did not stop:\n{}", self.output());
        assert_eq!(audit_state().pid, 0, "auditd unregistered");
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            // The kernel keeps a killed daemon registered until it probes
            // it; asking to unregister makes it probe and let go.
            if let Ok(mut s) = audetect::kernel::AuditSocket::open() {
                let _ = s.unregister_daemon();
            }
        }
    }
}

#[test]
fn kernel_beside_auditd_audetect_listens_on_multicast_and_leaves_auditd_registered() {
    let (lock, name) = kernel_test!();
    let Some(auditd) = Auditd::start(name, None) else {
        return;
    };
    let d = Daemon::start(lock, "");
    assert!(
        d.log()
            .contains("listening on the multicast group beside it"),
        "{}",
        d.log()
    );
    assert_eq!(
        audit_state().pid,
        auditd.child.id(),
        "auditd keeps the socket"
    );
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    // stop() also checks that auditd is still the registered daemon.
    let (log, _lock) = d.stop_keeping_lock();
    assert!(
        !log.contains("backlog_limit:"),
        "auditd's backlog settings are its own:\n{log}"
    );
    auditd.stop();
}

#[test]
fn kernel_plugin_mode_reads_auditds_stream_and_alerts() {
    let (lock, name) = kernel_test!();
    let work = TempDir::new("plugin");
    let alerts = work.path().join("alerts.jsonl");
    let config = work.path().join("audetect.toml");
    std::fs::write(
        &config,
        format!(
            "[output.syslog]\nenabled = false\n[output.jsonl]\nenabled = true\npath = {:?}\n",
            alerts.display().to_string()
        ),
    )
    .unwrap();
    let plugin = format!(
        "active = yes\ndirection = out\npath = {}\ntype = always\nargs = plugin --config={}\nformat = string\n",
        env!("CARGO_BIN_EXE_audetect"),
        config.display()
    );
    let before = audit_state();
    let Some(auditd) = Auditd::start(name, Some(&plugin)) else {
        return;
    };
    // In plugin mode the rules are auditd's to load, as augenrules would.
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/audit-rules/audetect.rules");
    let loaded = Command::new("auditctl")
        .args(["-R", rules])
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let enabled = Command::new("auditctl").args(["-e", "1"]).output().unwrap();
    assert!(enabled.status.success());

    // One reverse shell, then a second as the canary: once the canary's
    // alert is in, auditd has handed the plugin everything before it, so the
    // first's alerts are all there, once each (or missing, and the test
    // shows the records auditd got).
    let p = ports();
    let read_alerts = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&alerts)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("alert is not JSON ({e}): {l}"))
            })
            .collect()
    };
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let canary = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let all = wait_for(Duration::from_secs(10), || {
        let all = read_alerts();
        (!alerts_for(&all, canary.pid).is_empty()).then_some(all)
    });
    for key in ["audetect-connect", "audetect-setsid", "audetect-clock"] {
        let _ = Command::new("auditctl").args(["-D", "-k", key]).output();
    }
    let _ = Command::new("auditctl")
        .args(["-e", &before.enabled.to_string()])
        .output();
    // auditd in the foreground prints every record it gets.
    let out = format!(
        "{}\nkernel (lost, backlog_limit) now: {:?}",
        auditd.output(),
        audit_state_lost()
    );
    auditd.stop();
    drop(lock);
    let all = all.unwrap_or_else(|| {
        panic!(
            "no alert from the plugin for the canary (pid {}); auditd said:\n{out}",
            canary.pid
        )
    });
    let mine = alerts_for(&all, run.pid);
    assert_eq!(
        mine.len(),
        1,
        "one alert for pid {} (the canary's is in): {all:#?}\n{out}",
        run.pid
    );
    let alert = mine[0];
    assert_eq!(alert["rule"]["id"], "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    // Through auditd the records come later, often after the process has
    // exited: the entity id may be the fallback form, but it is one id.
    assert_eq!(
        alert["events"][0]["process"]["entity_id"],
        alert["events"][1]["process"]["entity_id"]
    );
    let after = audit_state();
    assert_eq!(
        (after.enabled, after.pid, after.rules.len()),
        (before.enabled, 0, before.rules.len())
    );
}

fn audit_state_lost() -> (u32, u32) {
    let mut s = audetect::kernel::AuditSocket::open().unwrap();
    let st = s.status().unwrap();
    (st.lost, st.backlog_limit)
}

#[test]
fn kernel_auditd_starting_after_audetect_gets_the_socket_on_its_next_start() {
    let (lock, name) = kernel_test!();
    if !auditd_installed(name) {
        return;
    }
    let mut d = Daemon::start(lock, "");
    assert!(
        d.log().contains("registered as the audit daemon"),
        "{}",
        d.log()
    );
    // The kernel refuses auditd while audetect answers its probe.
    let first = Auditd::launch(name, None, true);
    assert!(first.is_none(), "auditd registered beside a live audetect");
    let handed = wait_for(Duration::from_secs(5), || {
        d.log().contains("handed the socket over").then_some(())
    });
    assert!(handed.is_some(), "audetect did not say why:\n{}", d.log());
    let auditd = Auditd::start(name, None).expect("auditd registers on its next start");
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    // audetect removes its rules but leaves the status to auditd, which
    // now owns audit; the test puts it back itself afterwards.
    let during = audit_state();
    let original = d.before.clone();
    d.before.pid = auditd.child.id();
    d.before.enabled = during.enabled;
    d.before.backlog_limit = during.backlog_limit;
    d.before.backlog_wait_time = during.backlog_wait_time;
    let (log, _lock) = d.stop_keeping_lock();
    auditd.stop();
    crate::daemon::restore(&original);
    assert!(log.contains("leaving the audit status to it"), "{log}");
    let after = audit_state();
    assert_eq!(
        (after.enabled, after.backlog_limit, after.backlog_wait_time),
        (
            original.enabled,
            original.backlog_limit,
            original.backlog_wait_time
        )
    );
}

/// After handing the socket to auditd, audetect registers again once auditd
/// stops: otherwise no daemon would be registered and the kernel would print
/// every record to its log, while audetect still read them on multicast.
#[test]
fn kernel_audetect_registers_again_when_the_daemon_it_gave_way_to_stops() {
    let (lock, name) = kernel_test!();
    if !auditd_installed(name) {
        return;
    }
    let d = Daemon::start(lock, "[kernel]\nwatch_interval = \"200ms\"\n");
    let first = Auditd::launch(name, None, true);
    assert!(first.is_none(), "auditd registered beside a live audetect");
    let auditd = Auditd::start(name, None).expect("auditd registers on its next start");
    assert_eq!(audit_state().pid, auditd.child.id());
    auditd.stop();
    let again = wait_for(Duration::from_secs(5), || {
        (audit_state().pid == d.pid()).then_some(())
    });
    assert!(
        again.is_some(),
        "audetect did not register again:\n{}",
        d.log()
    );
    let said = wait_for(Duration::from_secs(5), || {
        d.log()
            .contains("registered as the audit daemon again")
            .then_some(())
    });
    assert!(said.is_some(), "{}", d.log());
    // Records still arrive, once each: one alert (counted once a canary
    // behind it has alerted, so a late duplicate would be seen), and no
    // record seen twice.
    let p = ports();
    d.expect_alert(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.stop();
}
