//! Tampering on the real kernel: rules deleted and audit disabled behind
//! the daemon's back are put back within the watch interval and reported;
//! `audetect status` shows the running daemon's counters.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{actor, audit_state, ports, run_actor, Daemon};
use crate::util::{kernel_lock, wait_for};

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
    let Some(lock) =
        kernel_lock("kernel_rules_removed_and_audit_disabled_are_put_back_and_reported")
    else {
        return;
    };
    let d = Daemon::start(lock, "[kernel]\nwatch_interval = \"200ms\"\n");
    let running = audit_state();
    assert_eq!(running.enabled, 1);
    assert!(!running.rules.is_empty());

    auditctl(&["-D"]);
    let back = wait_for(Duration::from_secs(5), || {
        (audit_state().rules == running.rules).then_some(())
    });
    assert!(
        back.is_some(),
        "rules not restored within 5 s:\n{}",
        d.log()
    );
    let reported = wait_for(Duration::from_secs(5), || {
        let a = configuration_alerts(&d, "audit_rules_removed");
        (!a.is_empty()).then_some(a)
    })
    .unwrap_or_else(|| panic!("no audit_rules_removed report:\n{}", d.log()));
    assert_eq!(reported[0]["event"]["category"][0], "configuration");
    assert_eq!(
        reported[0]["audetect"]["rules_restored"]
            .as_array()
            .map(Vec::len),
        Some(running.rules.len())
    );

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
    let Some(lock) = kernel_lock("kernel_status_shows_the_running_daemons_counters") else {
        return;
    };
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
    assert_eq!(stats["audit_rules"], 5, "{stats}");
    d.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "not running after stop");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}
