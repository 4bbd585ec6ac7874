//! `audetect selftest`: proves on this host that the kernel-to-alert path
//! works, through the running daemon or through the daemon's own bring-up
//! and shutdown, started here for the test.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::caps::{self, CapsError};
use crate::config::Config;
use crate::fields;
use crate::kernel::{self, AuditSocket, KernelError};
use crate::receive::Source;
use crate::rulefile::{self, RuleError};
use crate::status;

use super::{
    host_name, live_pipeline, shut_down, AuditPlan, DaemonError, OpenKernel, Signals, Sink,
};

#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("opening a loopback listener")]
    Listen(#[source] std::io::Error),
    #[error("listener address")]
    ListenerAddress(#[source] std::io::Error),
    #[error("opening the audit socket")]
    AuditSocket(#[source] KernelError),
    #[error("reading the audit status")]
    AuditStatus(#[source] KernelError),
    #[error("listing audit rules")]
    ListRules(#[source] KernelError),
    #[error("locating the audetect binary")]
    LocateBinary(#[source] std::io::Error),
    #[error("starting the selftest child")]
    StartChild(#[source] std::io::Error),
    #[error("waiting for the selftest child")]
    WaitChild(#[source] std::io::Error),
    #[error("the selftest child failed ({0})")]
    ChildFailed(std::process::ExitStatus),
    #[error("connecting to the selftest listener")]
    Connect(#[source] std::io::Error),
    #[error("setsid: {0}")]
    Setsid(std::io::Error),
    #[error("no alert for child {pid} within 10 s")]
    NoAlert { pid: u32 },
    #[error("the running audetect did not count a match within 12 s (see its log: journalctl -u audetect)")]
    NoMatchCounted,
    #[error("the audit state was not restored (enabled {enabled_before} -> {enabled_after}, rules {rules_before} -> {rules_after})")]
    NotRestored {
        enabled_before: u32,
        enabled_after: u32,
        rules_before: usize,
        rules_after: usize,
    },
}

/// The test's steps; what proved it, or why it failed.
pub fn selftest_steps() -> Result<String, SelftestError> {
    caps::require(&[caps::AUDIT_CONTROL])?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(SelftestError::Listen)?;
    let port = listener
        .local_addr()
        .map_err(SelftestError::ListenerAddress)?
        .port();
    println!("listening on 127.0.0.1:{port}");
    if let Ok(stats) = status::read(Path::new(status::DEFAULT_STATS_FILE)) {
        let alive = kernel::process_is_audetect(stats.pid);
        if alive {
            return selftest_through_daemon(port, stats);
        }
    }
    selftest_own_pipeline(port)
}

/// The reverse-shell shape: connect out, then leave the session. Run as a
/// child so that it is not a process group leader (setsid would fail).
pub fn selftest_actor(port: u16) -> Result<(), SelftestError> {
    let stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(SelftestError::Connect)?;
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } < 0 {
        return Err(SelftestError::Setsid(std::io::Error::last_os_error()));
    }
    drop(stream);
    Ok(())
}

fn spawn_selftest_actor(port: u16) -> Result<u32, SelftestError> {
    let exe = std::env::current_exe().map_err(SelftestError::LocateBinary)?;
    let mut child = std::process::Command::new(exe)
        .args(["selftest-actor", &port.to_string()])
        .spawn()
        .map_err(SelftestError::StartChild)?;
    let pid = child.id();
    let status = child.wait().map_err(SelftestError::WaitChild)?;
    if !status.success() {
        return Err(SelftestError::ChildFailed(status));
    }
    Ok(pid)
}

/// With the service running: its counters must show the match.
fn selftest_through_daemon(port: u16, before: status::Stats) -> Result<String, SelftestError> {
    println!(
        "using the running audetect (pid {}, {})",
        before.pid, before.source
    );
    let pid = spawn_selftest_actor(port)?;
    println!("child {pid} connected and called setsid()");
    // The service rewrites its counters every 5 seconds.
    let deadline = Instant::now() + Duration::from_secs(12);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(now) = status::read(Path::new(status::DEFAULT_STATS_FILE)) {
            if now.pid == before.pid && now.detection.matches > before.detection.matches {
                return Ok(format!(
                    "the running audetect matched it (matches {} -> {})",
                    before.detection.matches, now.detection.matches
                ));
            }
        }
    }
    Err(SelftestError::NoMatchCounted)
}

/// Without a service: the daemon's bring-up and shutdown, with the
/// built-in defaults and no state file, run here.
pub fn selftest_own_pipeline(port: u16) -> Result<String, SelftestError> {
    println!("no audetect running: starting a pipeline of its own");
    let mut ctl = AuditSocket::open().map_err(SelftestError::AuditSocket)?;
    let before = ctl.status().map_err(SelftestError::AuditStatus)?;
    let rules_before = ctl.list_rules().map_err(SelftestError::ListRules)?.len();
    let config = Config::default();
    let rules = rulefile::load(true, &[], &fields::schema())?.rules;
    let audit_rules = AuditPlan::for_rules(&rules).rules;
    let kernel = OpenKernel::open(&config, &before, None, audit_rules)?.start()?;
    let unicast = kernel.receiver.source == Source::Unicast;
    println!(
        "{} audit rules in, receiving as {}",
        kernel.session.installed().len(),
        if unicast {
            "the audit daemon"
        } else {
            "a multicast listener"
        }
    );
    let mut pipeline = live_pipeline(&config, rules, host_name());
    // Interrupted, it still puts the audit state back before exiting.
    let outcome = Signals::install()
        .map_err(SelftestError::from)
        .and_then(|signals| {
            let pid = spawn_selftest_actor(port)?;
            println!("child {pid} connected and called setsid()");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut found = None;
            while found.is_none() && Instant::now() < deadline && !signals.stop_asked() {
                kernel.feed(Duration::from_millis(100), &mut pipeline, &mut |a| {
                    let doc: serde_json::Value = serde_json::from_str(&a.json).unwrap_or_default();
                    if doc["process"]["pid"] == pid {
                        found = Some(doc["rule"]["name"].as_str().unwrap_or("?").to_owned());
                    }
                });
            }
            found.ok_or(SelftestError::NoAlert { pid })
        });
    let stopped = shut_down(Some(kernel), &mut pipeline, Sink::Emit(&mut |_| {}));
    stopped.restored?;
    let after = ctl.status().map_err(SelftestError::AuditStatus)?;
    let rules_after = ctl.list_rules().map_err(SelftestError::ListRules)?.len();
    if (
        after.enabled,
        after.backlog_limit,
        after.backlog_wait_time,
        rules_after,
    ) != (
        before.enabled,
        before.backlog_limit,
        before.backlog_wait_time,
        rules_before,
    ) {
        return Err(SelftestError::NotRestored {
            enabled_before: before.enabled,
            enabled_after: after.enabled,
            rules_before,
            rules_after,
        });
    }
    println!(
        "audit state restored (enabled {}, {} rules)",
        after.enabled, rules_after
    );
    let rule = outcome?;
    Ok(format!("alert {rule:?} raised"))
}
