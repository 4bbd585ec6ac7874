//! Kernel end to end: real rules, real processes that connect and call
//! setsid(), the real daemon; the verdicts issue 2 lists. Needs root.

use std::process::Command;

use serde_json::Value;

use crate::daemon::{actor, alerts_for, ports, run_actor, run_command, Daemon};
use crate::util::{kernel_test, skip, test_name, TempDir};

/// Runs the actor with `steps` as the test `name` and returns its one alert,
/// or Null when the test is skipped.
fn expect_alert(name: &str, steps: &[String]) -> Value {
    let lock = kernel_test!(name, else Value::Null);
    let d = Daemon::start(lock, "");
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let (_, alert) = d.expect_alert(actor(), &steps);
    d.stop();
    alert
}

/// Runs `scenario` and expects no alert for the pid it returns.
fn expect_no_alert(name: &str, extra_config: &str, scenario: impl FnOnce(u16, u16) -> u32) {
    let lock = kernel_test!(name);
    let d = Daemon::start(lock, extra_config);
    let p = ports();
    let pid = scenario(p.open, p.closed);
    d.expect_no_alert(name, p.open, &[pid]);
    d.stop();
}

fn check_alert_document(alert: &Value, port: u16) {
    assert_eq!(alert["rule"]["id"], "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    assert_eq!(
        alert["rule"]["name"],
        "Suspicious Network Connection Attempt by Root"
    );
    assert_eq!(alert["event"]["kind"], "signal");
    let k = &alert["kibana"]["alert"];
    assert_eq!(k["rule"]["rule_id"], "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    assert_eq!(k["rule"]["severity"], "medium");
    assert_eq!(k["rule"]["risk_score"], 47);
    assert_eq!(k["rule"]["version"], 100);
    assert_eq!(k["rule"]["type"], "eql");
    assert_eq!(k["rule"]["threat"][0]["tactic"]["id"], "TA0011");
    assert_eq!(
        k["rule"]["threat"][1]["technique"][0]["subtechnique"][0]["id"],
        "T1548.003"
    );
    assert_eq!(k["severity"], "medium");
    assert_eq!(k["risk_score"], 47);
    assert!(k["reason"]
        .as_str()
        .unwrap()
        .contains("Suspicious Network Connection Attempt by Root"));
    assert_eq!(alert["user"]["id"], "0");
    assert_eq!(alert["destination"]["port"], port);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(alert["host"]["name"], host.trim());
    let ts = alert["@timestamp"].as_str().unwrap();
    assert!(is_rfc3339_utc_with_fraction(ts), "{ts}");
    for e in alert["events"].as_array().unwrap() {
        let ts = e["@timestamp"].as_str().unwrap();
        assert!(is_rfc3339_utc_with_fraction(ts), "{ts}");
    }
    let events = alert["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["category"][0], "network");
    assert_eq!(events[0]["event"]["type"][0], "start");
    assert_eq!(events[0]["event"]["action"], "connection_attempted");
    assert_eq!(events[0]["network"]["transport"], "tcp");
    assert_eq!(events[1]["event"]["category"][0], "process");
    assert_eq!(events[1]["event"]["type"][0], "change");
    assert_eq!(events[1]["event"]["action"], "session_id_change");
    assert_eq!(
        events[0]["process"]["entity_id"],
        alert["process"]["entity_id"]
    );
    assert_eq!(
        events[1]["process"]["entity_id"],
        alert["process"]["entity_id"]
    );
    assert!(events[0]["@timestamp"].as_str().unwrap() <= events[1]["@timestamp"].as_str().unwrap());
}

/// `YYYY-MM-DDTHH:MM:SS.fffZ`, with at least milliseconds.
fn is_rfc3339_utc_with_fraction(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..b.len() - 1)
        && b[b.len() - 1] == b'Z'
}

#[test]
fn kernel_root_tcp4_connect_then_setsid_alerts_in_rsyslog() {
    let (lock, name) = kernel_test!();
    let Some(rsyslog) = crate::rsyslog::Rsyslog::start_or_skip(name) else {
        return;
    };
    let extra = format!(
        "[output.syslog]\nenabled = true\ntarget = \"unix:{}\"\n",
        rsyslog.stock_unix_socket().display()
    );
    let d = Daemon::start(lock, &extra);
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let alerts = d.wait_alert_for(run.pid);
    check_alert_document(&alerts[0], p.open);
    assert_eq!(alerts[0]["destination"]["ip"], "127.0.0.1");
    assert_eq!(
        alerts[0]["process"]["executable"],
        actor().display().to_string()
    );
    assert_eq!(alerts[0]["process"]["name"], "actor");

    let lines = rsyslog.wait_for_lines(1, std::time::Duration::from_secs(10));
    let line = &lines[0];
    // The default format on a local socket, read by rsyslog's stock parser.
    assert_eq!(line["programname"], "audetect", "{line}");
    assert_eq!(line["syslogfacility-text"], "auth", "{line}");
    assert_eq!(line["syslogseverity-text"], "warning", "{line}");
    let msg: Value = serde_json::from_str(line["msg"].as_str().unwrap().trim()).unwrap();
    assert_eq!(msg["process"]["pid"], run.pid);
    check_alert_document(&msg, p.open);
    d.stop();
}

#[test]
fn kernel_tcp6_connect_then_setsid_alerts() {
    let p = ports();
    let l6 = std::net::TcpListener::bind("[::1]:0");
    let Ok(l6) = l6 else {
        skip(test_name!(), "no ::1 on this host");
        return;
    };
    let port = l6.local_addr().unwrap().port();
    let a = expect_alert(test_name!(), &[format!("tcp6:{port}"), "setsid".into()]);
    if a.is_null() {
        return;
    }
    check_alert_document(&a, port);
    assert_eq!(a["destination"]["ip"], "::1");
    assert_eq!(a["events"][0]["network"]["type"], "ipv6");
    drop(p);
}

#[test]
fn kernel_refused_connect_then_setsid_alerts() {
    let p = ports();
    let a = expect_alert(
        test_name!(),
        &[format!("tcp4:{}", p.closed), "setsid".into()],
    );
    if !a.is_null() {
        assert_eq!(a["events"][0]["audetect"]["audit"]["exit"], -111);
    }
}

#[test]
fn kernel_nonblocking_connect_then_setsid_alerts() {
    let p = ports();
    let a = expect_alert(
        test_name!(),
        &[format!("tcp4nb:{}", p.open), "setsid".into()],
    );
    if !a.is_null() {
        let exit = a["events"][0]["audetect"]["audit"]["exit"]
            .as_i64()
            .unwrap();
        assert!(exit == -115 || exit == 0, "{exit}");
    }
}

#[test]
fn kernel_setsid_from_another_thread_alerts() {
    let p = ports();
    expect_alert(
        test_name!(),
        &[format!("tcp4:{}", p.open), "thread-setsid".into()],
    );
}

#[test]
fn kernel_connect_then_execve_of_a_program_that_calls_setsid_alerts() {
    let p = ports();
    let dir = TempDir::new("exec");
    let other = dir.path().join("second-program");
    std::fs::copy(actor(), &other).unwrap();
    let a = expect_alert(
        test_name!(),
        &[
            format!("tcp4:{}", p.open),
            format!("exec:{}", other.display()),
            "setsid".into(),
        ],
    );
    if !a.is_null() {
        assert_eq!(
            a["events"][0]["process"]["executable"],
            actor().display().to_string()
        );
        assert_eq!(
            a["events"][1]["process"]["executable"],
            other.display().to_string()
        );
    }
}

#[test]
fn kernel_setsid_then_immediate_exit_alerts() {
    let p = ports();
    expect_alert(
        test_name!(),
        &[format!("tcp4:{}", p.open), "setsid".into(), "exit".into()],
    );
}

#[test]
fn kernel_two_connects_then_one_setsid_is_one_alert() {
    let p = ports();
    let a = expect_alert(
        test_name!(),
        &[
            format!("tcp4:{}", p.closed),
            format!("tcp4:{}", p.open),
            "setsid".into(),
        ],
    );
    if !a.is_null() {
        // The newer connect replaced the older one.
        assert_eq!(a["events"][0]["destination"]["port"], p.open);
    }
}

#[test]
fn kernel_non_root_process_does_not_alert() {
    expect_no_alert(test_name!(), "", |open, _| {
        run_actor(actor(), &["drop-root", &format!("tcp4:{open}"), "setsid"]).pid
    });
}

#[test]
fn kernel_setsid_before_connect_does_not_alert() {
    expect_no_alert(test_name!(), "", |open, _| {
        run_actor(actor(), &["setsid", &format!("tcp4:{open}")]).pid
    });
}

#[test]
fn kernel_connect_then_child_setsid_does_not_alert() {
    expect_no_alert(test_name!(), "", |open, _| {
        run_actor(actor(), &[&format!("tcp4:{open}"), "child-setsid"]).pid
    });
}

#[test]
fn kernel_unix_connect_does_not_alert() {
    expect_no_alert(test_name!(), "", |_, _| {
        let dir = TempDir::new("unix");
        let path = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        run_actor(actor(), &[&format!("unix:{}", path.display()), "setsid"]).pid
    });
}

#[test]
fn kernel_udp_connect_does_not_alert() {
    expect_no_alert(test_name!(), "", |open, _| {
        // The daemon tells UDP from TCP by looking at the live socket: a
        // process that is gone by then counts as an attempt (documented).
        run_actor(actor(), &[&format!("udp4:{open}"), "setsid", "sleep:1000"]).pid
    });
}

#[test]
fn kernel_connect_without_setsid_does_not_alert() {
    expect_no_alert(test_name!(), "", |open, _| {
        run_actor(actor(), &[&format!("tcp4:{open}")]).pid
    });
}

#[test]
fn kernel_excluded_executable_does_not_alert() {
    // sshd is excluded by path: stage a binary at /usr/sbin/sshd in a private
    // mount namespace, on a tmpfs, so the host's /usr/sbin is untouched.
    expect_no_alert(test_name!(), "", |open, _| {
        let script = format!(
            "mount -t tmpfs tmpfs /usr/sbin && cp {} /usr/sbin/sshd && exec /usr/sbin/sshd tcp4:{open} setsid",
            actor().display()
        );
        run_command(Command::new("unshare").args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]))
        .pid
    });
}

/// The seed rule as a user would tune it: a copy in a rules directory with
/// the same rule_id replaces the built-in one (here with maxspan 1s).
fn seed_rule_with(dir: &std::path::Path, from: &str, to: &str) -> String {
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rules/suspicious_network_connection_attempt_by_root.toml"
    ))
    .unwrap();
    let tuned = seed.replace(from, to);
    assert_ne!(tuned, seed, "{from:?} is in the seed rule");
    std::fs::write(dir.join("seed.toml"), tuned).unwrap();
    format!(
        "[detection]\nrule_paths = [{:?}]\n",
        dir.display().to_string()
    )
}

#[test]
fn kernel_connect_and_setsid_further_apart_than_maxspan_do_not_alert() {
    let dir = TempDir::new("rules");
    let config = seed_rule_with(dir.path(), "maxspan=1m", "maxspan=1s");
    expect_no_alert(test_name!(), &config, |open, _| {
        run_actor(actor(), &[&format!("tcp4:{open}"), "sleep:1600", "setsid"]).pid
    });
}

#[test]
fn kernel_exclusion_added_to_the_seed_rule_is_honoured() {
    // The README's tuning example: another remote-terminal service excluded.
    let dir = TempDir::new("rules");
    let service = dir.path().join("rtermd");
    std::fs::copy(actor(), &service).unwrap();
    let excluded = format!("\"/usr/sbin/sshd\", \"{}\")]", service.display());
    let config = seed_rule_with(dir.path(), "\"/usr/sbin/sshd\")]", &excluded);
    expect_no_alert(test_name!(), &config, |open, _| {
        run_actor(&service, &[&format!("tcp4:{open}"), "setsid"]).pid
    });
}

#[test]
fn kernel_a_rule_written_for_the_test_runs_live() {
    let (lock, _) = kernel_test!();
    let dir = TempDir::new("rules");
    let probe = dir.path().join("audetect-probe");
    std::fs::copy(actor(), &probe).unwrap();
    std::fs::write(
        dir.path().join("probe.toml"),
        r#"[rule]
author = ["audetect tests"]
description = "A root process named audetect-probe starts a new session."
name = "Probe Session"
risk_score = 73
rule_id = "audetect-test-probe-session"
severity = "high"
type = "eql"
version = 3
query = """
process where event.action == "session_id_change" and process.name : "AUDETECT-PROBE" and
  user.id == "0"
"""
"#,
    )
    .unwrap();
    let config = format!(
        "[detection]\nbuiltin_rules = false\nrule_paths = [{:?}]\n",
        dir.path().display().to_string()
    );
    let d = Daemon::start(lock, &config);
    let run = run_actor(&probe, &["setsid"]);
    let alerts = d.wait_alert_for(run.pid);
    let a = &alerts[0];
    assert_eq!(a["rule"]["id"], "audetect-test-probe-session");
    assert_eq!(a["rule"]["name"], "Probe Session");
    let k = &a["kibana"]["alert"];
    assert_eq!(k["rule"]["severity"], "high");
    assert_eq!(k["rule"]["risk_score"], 73);
    assert_eq!(k["rule"]["version"], 3);
    assert_eq!(k["severity"], "high");
    assert_eq!(a["process"]["name"], "audetect-probe");
    assert_eq!(a["events"].as_array().unwrap().len(), 1);
    assert_eq!(a["events"][0]["event"]["action"], "session_id_change");
    // A single-event alert carries that event's own fields at the top.
    assert_eq!(a["event"]["kind"], "signal");
    assert_eq!(k["original_event"]["action"], "session_id_change");
    assert_eq!(a["audetect"]["audit"]["syscall"], "setsid");
    assert_eq!(
        a["process"]["parent"]["pid"],
        a["events"][0]["process"]["parent"]["pid"]
    );
    assert_eq!(a["user"]["id"], "0");
    // The built-in rule is off: a reverse-shell shape raises nothing.
    let p = ports();
    let other = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let again = run_actor(&probe, &["setsid"]);
    let all = d.wait_alert_for(again.pid);
    assert!(alerts_for(&all, other.pid).is_empty(), "{all:#?}");
    d.stop();
}

#[test]
fn kernel_run_with_no_config_and_no_syslog_prints_alerts_on_stdout() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start_on_a_bare_host(lock);
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    let alerts = d.wait_alert_for(run.pid);
    check_alert_document(&alerts[0], p.open);
    let log = d.stop();
    assert_eq!(
        log.matches("no syslog socket").count(),
        1,
        "says once why syslog is not used:\n{log}"
    );
}

#[test]
fn kernel_rules_loaded_by_augenrules_still_alert_and_stay() {
    let (lock, name) = kernel_test!();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/audit-rules/audetect.rules");
    let load = Command::new("auditctl").args(["-R", rules]).output();
    match load {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("auditctl -R: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            skip(name, format_args!("auditctl not available ({e})"));
            return;
        }
    }
    // Removed even when an assertion fails: a test leaves no rule behind.
    struct Unload;
    impl Drop for Unload {
        fn drop(&mut self) {
            for key in ["audetect-connect", "audetect-setsid", "audetect-clock"] {
                let _ = Command::new("auditctl").args(["-D", "-k", key]).output();
            }
        }
    }
    let unload = Unload;
    // Harness state "before" includes the preloaded rules: stop must keep them.
    let state = crate::daemon::audit_state();
    let d = Daemon::start(lock, "");
    let p = ports();
    let run = run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    d.wait_alert_for(run.pid);
    let (log, _lock) = d.stop_keeping_lock();
    // The file's io_uring rules are commented out (auditctl 3.0 cannot read
    // them): audetect installs those itself, and removes only them.
    assert!(log.contains("ready: 2 audit rules installed"), "{log}");
    assert!(
        log.contains("rule already present, used and left to its owner"),
        "{log}"
    );
    let after = crate::daemon::audit_state();
    assert_eq!(
        after.rules, state.rules,
        "the preloaded rules are still there, and only they"
    );
    // Before the kernel lock goes, with `_lock`.
    drop(unload);
}

/// The README's quick start, as written: its one-liner (run as root, so
/// without `sudo`) raises the built-in rule about the child it forks, and
/// Ctrl-C (SIGINT) stops the daemon with its rules removed and the audit
/// status as it found it (`stop_by` checks both, and exit 0).
#[test]
fn kernel_readme_one_liner_alerts_and_ctrl_c_restores_the_audit_state() {
    let (lock, _) = kernel_test!();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("sudo python3 -c ") && l.contains("setsid"))
        .expect("the quick start's one-liner in README.md");
    let command = line.strip_prefix("sudo ").unwrap_or(line);
    let d = Daemon::start(lock, "");
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {command}")])
        .spawn()
        .expect("run the one-liner");
    let parent = child.id();
    assert!(child.wait().expect("the one-liner ends").success());
    // The alert is about the child it forked: the one whose parent it is.
    let alert = crate::util::wait_for(std::time::Duration::from_secs(10), || {
        d.alerts()
            .into_iter()
            .find(|a| a["process"]["parent"]["pid"] == parent)
    })
    .unwrap_or_else(|| {
        panic!(
            "no alert for the one-liner: {:#?}; log:\n{}",
            d.alerts(),
            d.log()
        )
    });
    assert_eq!(alert["destination"]["port"], 9, "{alert}");
    let (log, _lock) = d.stop_by(libc::SIGINT);
    assert!(
        log.contains("audit rules: removed 22 of the 22 audetect installed"),
        "the log says what it undid:\n{log}"
    );
}
