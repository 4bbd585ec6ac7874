//! The daemon's periodic duties beside the pipeline: keep the kernel state
//! audetect needs (repairing tampering, reporting what blinds it), follow
//! the receive thread's hand-overs, report loss, write the stats file.

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

/// Loss of each kind is reported on the alert outputs at once, then at most
/// once per this interval, with what it added up to meanwhile: a flood of
/// loss is one alert a minute, not one per record.
const LOSS_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// After a CONFIG_CHANGE record the kernel is checked once no other has
/// come for SETTLE (one `auditctl` run, or a script of them, is one check
/// and one report), and at the latest SETTLE_MAX after the first.
const SETTLE: Duration = Duration::from_millis(250);
const SETTLE_MAX: Duration = Duration::from_secs(1);

/// The kinds of silence reported, by event.action.
const LOST_RECORDS: &str = "audit_records_lost";
const EVICTED: &str = "detection_sequences_evicted";
const HELD_BACK: &str = "detection_alerts_held_back";
const ALERTS_DROPPED: &str = "alerts_dropped";

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
    /// The receive thread's CONFIG_CHANGE count as last seen: when it
    /// moves, the rules or status changed, and the check runs soon.
    config_changes_seen: u64,
    /// When it first and last moved since the last check.
    config_changed: Option<(Instant, Instant)>,
    /// Per kind of loss (by action): the totals last reported and when.
    reported: Vec<LossReport>,
    /// Matches held back by max_signals since the last report, per rule.
    held_back: std::collections::BTreeMap<String, u64>,
    /// When they were last taken from the pipeline (and logged).
    held_back_taken: Option<Instant>,
}

/// One kind of loss: its counters as of the last alert, and when that was.
#[derive(Debug, Clone)]
struct LossReport {
    action: &'static str,
    totals: Vec<u64>,
    at: Option<Instant>,
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
            config_changes_seen: 0,
            config_changed: None,
            reported: [LOST_RECORDS, EVICTED, HELD_BACK, ALERTS_DROPPED]
                .into_iter()
                .map(|action| LossReport {
                    action,
                    totals: Vec::new(),
                    at: None,
                })
                .collect(),
            held_back: Default::default(),
            held_back_taken: None,
        }
    }

    pub fn tick(
        &mut self,
        session: &mut Session,
        receiver: &Receiver,
        outputs: &Outputs,
        pipeline: &mut Pipeline<impl ProcSource>,
    ) {
        // A CONFIG_CHANGE record is the kernel saying its rules or status
        // changed: checked once they settle, not at the next interval. The
        // records a change may itself suppress (an exclude rule on
        // CONFIG_CHANGE) are why the interval stays.
        let changes = receiver.counters.config_changes.load(Ordering::Relaxed);
        if changes != self.config_changes_seen {
            self.config_changes_seen = changes;
            let now = Instant::now();
            let first = self.config_changed.map_or(now, |(first, _)| first);
            self.config_changed = Some((first, now));
        }
        let settled = self
            .config_changed
            .is_some_and(|(first, last)| last.elapsed() >= SETTLE || first.elapsed() >= SETTLE_MAX);
        if settled || self.last_watch.elapsed() >= self.watch_interval {
            self.config_changed = None;
            self.last_watch = Instant::now();
            self.watch_receiver(receiver);
            let daemon_pid = self.watch_kernel(session, outputs);
            self.watch_reclaim(receiver, daemon_pid);
            self.take_held_back(pipeline);
            self.collect(receiver, outputs, pipeline);
            self.report_losses(outputs);
        }
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            self.last_log = Instant::now();
            self.take_held_back(pipeline);
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
        if !repair.status_restored.is_empty() {
            reports.push((
                "audit_backlog_lowered",
                format!(
                    "the audit backlog settings audetect keeps were lowered while it ran (records would be lost); put them back: {}",
                    repair.status_restored.join("; ")
                ),
                json!({"repaired": true, "status_restored": repair.status_restored}),
            ));
        }
        for b in &repair.blinding {
            reports.push((
                b.action,
                b.message(),
                json!({"repaired": false, "cause": b.cause, "hides": b.hides}),
            ));
        }
        self.stats.tampering.blinding_reported += repair.blinding.len() as u64;
        self.stats.tampering.blinding = session.blinding_in_force().to_vec();
        for cause in &repair.blinding_cleared {
            log::info!("no longer in force, audetect's records flow again: {cause}");
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
            late_matches: p.detect.late_matches,
            late_forgotten: p.detect.late_forgotten,
            pending_events: p.detect.held_events,
        };
        let t = &p.normalize.table;
        s.processes = status::Processes {
            tracked: t.entries,
            exited: t.exited,
            seeded: t.seeded,
            expired: t.expired,
            evicted: t.evicted,
            not_seeded: t.not_seeded,
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

    /// The per-rule matches held back since last time, logged, at most
    /// every 10 s (a flood of them is one log line per rule per 10 s).
    fn take_held_back(&mut self, pipeline: &mut Pipeline<impl ProcSource>) {
        if self
            .held_back_taken
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        let held = log_suppressed(pipeline);
        if !held.is_empty() {
            self.held_back_taken = Some(Instant::now());
        }
        for (rule, n) in held {
            *self.held_back.entry(rule).or_default() += n;
        }
    }

    /// Each kind of loss that grew since its last report, on the alert
    /// outputs: at once the first time, then at most once per
    /// LOSS_REPORT_INTERVAL with what it added up to. Alerts dropped at
    /// a full output queue are reported through that same queue, which
    /// may be full again: the count is carried until one gets through.
    fn report_losses(&mut self, outputs: &Outputs) {
        let s = &self.stats;
        let now = [
            (
                LOST_RECORDS,
                vec![
                    s.lost.kernel,
                    s.lost.socket_overflows,
                    s.lost.missing_serials,
                ],
            ),
            (EVICTED, vec![s.detection.dropped_pending]),
            (HELD_BACK, vec![s.detection.suppressed]),
            (ALERTS_DROPPED, vec![s.outputs.dropped]),
        ];
        let wall = SystemTime::now();
        for (action, totals) in now {
            let Some(r) = self.reported.iter_mut().find(|r| r.action == action) else {
                continue;
            };
            let before = |i: usize| r.totals.get(i).copied().unwrap_or(0);
            let grew: Vec<u64> = totals
                .iter()
                .enumerate()
                .map(|(i, &n)| n.saturating_sub(before(i)))
                .collect();
            if grew.iter().all(|&n| n == 0) {
                continue;
            }
            if r.at.is_some_and(|at| at.elapsed() < LOSS_REPORT_INTERVAL) {
                continue;
            }
            let (message, details) = match action {
                LOST_RECORDS => (
                    format!(
                        "audit records were lost, detections may be missing: {} by the kernel (its lost counter), {} in audit socket overflows (ENOBUFS), {} event serials never received",
                        grew[0], grew[1], grew[2]
                    ),
                    json!({
                        "kernel_lost": grew[0], "socket_overflows": grew[1], "missing_serials": grew[2],
                        "since_start": {"kernel_lost": totals[0], "socket_overflows": totals[1], "missing_serials": totals[2]},
                    }),
                ),
                EVICTED => (
                    format!(
                        "{} partial sequence(s) dropped at detection.max_pending_events: their later stages can no longer alert",
                        grew[0]
                    ),
                    json!({"evicted": grew[0], "since_start": totals[0]}),
                ),
                HELD_BACK => {
                    let rules: serde_json::Map<String, serde_json::Value> =
                        std::mem::take(&mut self.held_back)
                            .into_iter()
                            .map(|(rule, n)| (rule, json!(n)))
                            .collect();
                    (
                        format!(
                            "{} match(es) not alerted: over their rule's max_signals in a 5-minute window",
                            grew[0]
                        ),
                        json!({"held_back": grew[0], "since_start": totals[0], "rules": rules}),
                    )
                }
                _ => (
                    format!(
                        "{} alert(s) dropped because the output queue was full",
                        grew[0]
                    ),
                    json!({"dropped": grew[0], "since_start": totals[0]}),
                ),
            };
            r.totals = totals;
            r.at = Some(Instant::now());
            outputs.send(alert::configuration_alert(
                action, &message, details, &self.host, wall,
            ));
        }
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
        // Not lost outright (a live process is read from /proc at its next
        // event), but what /proc no longer shows of it, its parent's command
        // line among it, is: the operator sizes the table.
        grew(
            "live processes forgotten at detection.max_processes",
            now.processes.evicted,
            was.processes.evicted,
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
