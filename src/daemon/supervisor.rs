//! The daemon's periodic duties beside the pipeline: keep the kernel state
//! audetect needs (repairing tampering), follow the receive thread's
//! hand-overs, watch for loss, write the stats file.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::alert;
use crate::config::Config;
use crate::kernel::Session;
use crate::output::Outputs;
use crate::pipeline::Pipeline;
use crate::process::ProcSource;
use crate::receive::{ReceiveCommand, ReceiveEvent, Receiver, Source};
use crate::status;
use crate::timefmt;

/// How long after handing the socket over audetect waits for another audit
/// daemon to take it before registering again.
const RECLAIM_GRACE: Duration = Duration::from_secs(60);

use super::log_suppressed;

/// The daemon's periodic duties beside the pipeline: keep the kernel state
/// audetect needs (repairing tampering), watch for loss, write the stats file.
pub struct Supervisor {
    watch_interval: Duration,
    last_watch: Instant,
    last_log: Instant,
    last_stats: Instant,
    host: String,
    stats: status::Stats,
    stats_path: PathBuf,
    kernel_lost_at_start: u32,
    kernel_lost: u32,
    logged: status::Stats,
    /// audetect handed the socket to another audit daemon: once none is
    /// registered any more, it registers again.
    handed_over: bool,
    /// When it handed over, and whether another daemon has registered
    /// since: the refused daemon itself exits, and its operator needs time
    /// to start it again before audetect takes the socket back.
    handed_over_at: Instant,
    daemon_seen: bool,
}

impl Supervisor {
    pub fn new(
        config: &Config,
        host: &str,
        source: Source,
        initial_lost: u32,
        audit_rules: usize,
        detection_rules: usize,
    ) -> Self {
        let now = Instant::now();
        let (sec, micros) = timefmt::split(SystemTime::now());
        Supervisor {
            watch_interval: config.kernel.watch_interval,
            last_watch: now,
            last_log: now,
            // The first stats file is written at the first tick.
            last_stats: now.checked_sub(Duration::from_secs(60)).unwrap_or(now),
            host: host.to_owned(),
            stats: status::Stats {
                pid: std::process::id(),
                started: timefmt::rfc3339_micros(sec, micros),
                source: match source {
                    Source::Unicast => "unicast".into(),
                    Source::Multicast => "multicast".into(),
                },
                audit_rules,
                detection_rules,
                ..Default::default()
            },
            stats_path: PathBuf::from(status::DEFAULT_STATS_FILE),
            kernel_lost_at_start: initial_lost,
            kernel_lost: initial_lost,
            logged: status::Stats::default(),
            handed_over: false,
            handed_over_at: Instant::now(),
            daemon_seen: false,
        }
    }

    pub fn tick(
        &mut self,
        session: &mut Session,
        receiver: &Receiver,
        outputs: &Outputs,
        pipeline: &mut Pipeline<impl ProcSource>,
    ) {
        if self.last_watch.elapsed() >= self.watch_interval {
            self.last_watch = Instant::now();
            self.watch_receiver(receiver);
            let daemon_pid = self.watch_kernel(session, outputs);
            self.watch_reclaim(receiver, daemon_pid);
        }
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            self.last_log = Instant::now();
            log_suppressed(pipeline);
            self.collect(receiver, outputs, pipeline);
            self.log_losses();
        }
        if self.last_stats.elapsed() >= Duration::from_secs(5) {
            self.last_stats = Instant::now();
            self.collect(receiver, outputs, pipeline);
            self.write_stats();
        }
    }

    /// What the receive thread did with the socket since the last look.
    fn watch_receiver(&mut self, receiver: &Receiver) {
        while let Some(event) = receiver.next_event() {
            match event {
                ReceiveEvent::HandedOver { pid } => {
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .map(|c| c.trim().to_owned())
                        .unwrap_or_else(|_| "?".into());
                    log::warn!(
                        "process {pid} ({comm}) asked to become the audit daemon and was refused by the kernel while audetect held the audit socket; \
                         audetect handed the socket over and now listens on the multicast group: start that daemon again (within {} s, or audetect takes the socket back) and both will run",
                        RECLAIM_GRACE.as_secs()
                    );
                    self.stats.source = "multicast".into();
                    self.handed_over = true;
                    self.handed_over_at = Instant::now();
                    self.daemon_seen = false;
                }
                ReceiveEvent::OtherDaemonRegistered => self.daemon_seen = true,
                ReceiveEvent::Reclaimed => {
                    log::info!(
                        "the audit daemon audetect had handed the socket to is gone: registered as the audit daemon again"
                    );
                    self.stats.source = "unicast".into();
                    self.handed_over = false;
                }
            }
        }
    }

    /// After a hand-over: when the kernel shows no audit daemon any more
    /// (the one that took the socket stopped, or none came within
    /// RECLAIM_GRACE), ask the receive thread to register again; it reports
    /// back once it has.
    fn watch_reclaim(&mut self, receiver: &Receiver, daemon_pid: Option<u32>) {
        if !self.handed_over {
            return;
        }
        match daemon_pid {
            Some(0) if self.daemon_seen || self.handed_over_at.elapsed() >= RECLAIM_GRACE => {
                receiver.send(ReceiveCommand::Reclaim);
            }
            Some(pid) if pid != 0 => self.daemon_seen = true,
            _ => {}
        }
    }

    /// Returns the registered audit daemon's pid, when the check could read it.
    fn watch_kernel(&mut self, session: &mut Session, outputs: &Outputs) -> Option<u32> {
        let repair = match session.check_and_repair() {
            Ok(r) => r,
            Err(e) => {
                log::error!("checking the audit rules and status: {e}");
                return None;
            }
        };
        let daemon_pid = repair.daemon_pid;
        self.kernel_lost = repair.lost;
        let mut reports = Vec::new();
        if repair.reenabled {
            self.stats.tampering.audit_reenabled += 1;
            reports.push((
                "audit_disabled",
                "kernel audit was disabled while audetect ran; enabled it again".to_owned(),
                json!({"repaired": true}),
            ));
        }
        if !repair.rules_restored.is_empty() {
            self.stats.tampering.rules_restored += repair.rules_restored.len() as u64;
            reports.push((
                "audit_rules_removed",
                format!(
                    "{} audit rule(s) audetect needs were removed while it ran; put them back: {}",
                    repair.rules_restored.len(),
                    repair.rules_restored.join("; ")
                ),
                json!({"rules_restored": repair.rules_restored}),
            ));
        }
        if repair.locked {
            reports.push((
                "audit_locked",
                "kernel audit was locked (enabled=2) while audetect ran: its configuration can no longer change until reboot; audetect carries on with what is loaded".to_owned(),
                json!({"repaired": false}),
            ));
        }
        let now = SystemTime::now();
        for (action, message, details) in reports {
            log::warn!("{message}");
            outputs.send(alert::configuration_alert(
                action, &message, details, &self.host, now,
            ));
        }
        Some(daemon_pid)
    }

    fn collect(
        &mut self,
        receiver: &Receiver,
        outputs: &Outputs,
        pipeline: &Pipeline<impl ProcSource>,
    ) {
        let p = pipeline.stats();
        let o = outputs.stats();
        let c = &receiver.counters;
        let s = &mut self.stats;
        s.received = status::Received {
            datagrams: c.datagrams.load(Ordering::Relaxed),
            records: p.records,
            malformed_records: p.malformed_records,
            events: p.reassembly.events,
            incomplete_events: p.reassembly.incomplete,
            ignored_events: p.reassembly.ignored,
        };
        s.lost = status::Lost {
            kernel: u64::from(self.kernel_lost.wrapping_sub(self.kernel_lost_at_start)),
            socket_overflows: c.overruns.load(Ordering::Relaxed),
            missing_serials: p.reassembly.missing_serials,
        };
        s.detection = status::Detection {
            events: p.normalize.events(),
            matches: p.detect.matches,
            alerts: p.alerts,
            suppressed: p.detect.suppressed,
            dropped_pending: p.detect.dropped_pending,
        };
        let t = &p.normalize.table;
        s.processes = status::Processes {
            tracked: t.entries,
            exited: t.exited,
            seeded: t.seeded,
            expired: t.expired,
            evicted: t.evicted,
            gone_before_read: p.normalize.process_gone,
            entity_fallbacks: p.normalize.entity_fallbacks,
        };
        s.outputs = status::Outputs {
            sent_syslog: o.sent_syslog,
            sent_jsonl: o.sent_jsonl,
            dropped: o.dropped_queue_full,
            syslog_errors: o.syslog_errors,
        };
    }

    /// One line per kind of loss that grew since the last one.
    fn log_losses(&mut self) {
        let (now, was) = (&self.stats, &self.logged);
        let grew = |name: &str, n: u64, before: u64| {
            if n > before {
                log::warn!("{name}: {} more, {n} since start", n - before);
            }
        };
        grew(
            "records lost by the kernel (its lost counter)",
            now.lost.kernel,
            was.lost.kernel,
        );
        grew(
            "audit socket overflows (ENOBUFS), records lost",
            now.lost.socket_overflows,
            was.lost.socket_overflows,
        );
        grew(
            "audit event serials never received",
            now.lost.missing_serials,
            was.lost.missing_serials,
        );
        grew(
            "alerts dropped because the output queue was full",
            now.outputs.dropped,
            was.outputs.dropped,
        );
        grew(
            "partial sequences dropped at detection.max_pending_events",
            now.detection.dropped_pending,
            was.detection.dropped_pending,
        );
        self.logged = self.stats.clone();
    }

    fn write_stats(&mut self) {
        let (sec, micros) = timefmt::split(SystemTime::now());
        self.stats.updated = timefmt::rfc3339_micros(sec, micros);
        if let Err(e) = status::write(&self.stats_path, &self.stats) {
            log::warn!("{e}");
        }
    }

    pub fn remove_stats(&self) {
        let _ = std::fs::remove_file(&self.stats_path);
    }
}
