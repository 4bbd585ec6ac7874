//! The static pipeline from one parsed record to alerts: reassemble →
//! normalize → detect → alert. The same object serves `run` and `replay`.

use std::time::SystemTime;

use crate::alert::{self, Alert};
use crate::detect::{DetectStats, Detector, Match};
use crate::normalize::{self, Host, NormalizeStats, Normalizer};
use crate::parse::{self, Head, ParseError};
use crate::process::ProcSource;
use crate::reassemble::{Event, Reassembler, ReassemblyStats};
use crate::rulefile::{Rule, RuleMeta};
use crate::snapshot::{Snapshotter, Target};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub records: u64,
    pub malformed_records: u64,
    pub alerts: u64,
    pub reassembly: ReassemblyStats,
    pub normalize: NormalizeStats,
    pub detect: DetectStats,
}

/// What `Pipeline::set_event_tap` takes.
pub type EventTap = Box<dyn FnMut(&normalize::EcsEvent)>;

pub struct Pipeline<P: ProcSource> {
    reassembler: Reassembler,
    normalizer: Normalizer<P>,
    detector: Detector,
    host_name: String,
    events: Vec<Event>,
    matches: Vec<Match>,
    records: u64,
    malformed: u64,
    alerts: u64,
    /// Takes the triage snapshot of each match; none without it.
    snapshots: Option<Box<dyn Snapshotter>>,
    /// Sees every normalized event before detection (`replay --events`).
    event_tap: Option<EventTap>,
    max_alert_bytes: usize,
}

impl<P: ProcSource> Pipeline<P> {
    pub fn new(proc: P, rules: Vec<Rule>, max_pending_events: usize, host: Host) -> Self {
        Pipeline {
            // Events normalize would drop are dropped unparsed.
            reassembler: Reassembler::default().only_syscalls(normalize::wanted_syscalls()),
            host_name: host.name.clone(),
            normalizer: Normalizer::with_host(proc, host),
            detector: Detector::new(rules, max_pending_events),
            events: Vec::new(),
            matches: Vec::new(),
            records: 0,
            malformed: 0,
            alerts: 0,
            snapshots: None,
            event_tap: None,
            max_alert_bytes: usize::MAX,
        }
    }

    /// Every alert from now on carries a snapshot from `snapshots`, and the
    /// snapshot is shrunk until the alert is at most `max_alert_bytes`.
    pub fn set_snapshots(&mut self, snapshots: Box<dyn Snapshotter>, max_alert_bytes: usize) {
        self.snapshots = Some(snapshots);
        self.max_alert_bytes = max_alert_bytes;
    }

    /// Every normalized event is shown to `tap` before detection sees it.
    pub fn set_event_tap(&mut self, tap: EventTap) {
        self.event_tap = Some(tap);
    }

    /// Bounds the process table to `max` entries; what goes past it is
    /// counted as evicted.
    pub fn set_max_processes(&mut self, max: usize) {
        self.normalizer.set_max_processes(max);
    }

    /// Learns the processes running now (live only), so that later events'
    /// parents are known; returns how many.
    pub fn seed_processes(&mut self) -> usize {
        self.normalizer.seed()
    }

    /// Feeds one record as the kernel sent it over netlink.
    /// `now` gives the wall-clock time an alert is made at.
    pub fn push_netlink(
        &mut self,
        rtype: u16,
        body: &[u8],
        now: &dyn Fn() -> SystemTime,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.push(parse::netlink_head(rtype, body), body, now, emit);
    }

    /// Feeds one line of an auditd log.
    pub fn push_log_line(
        &mut self,
        line: &[u8],
        now: &dyn Fn() -> SystemTime,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.push(parse::log_line_head(line), line, now, emit);
    }

    /// A malformed record is counted and skipped; the first few are logged
    /// so an operator can see what they were.
    fn push(
        &mut self,
        parsed: Result<Head<'_>, ParseError>,
        raw: &[u8],
        now: &dyn Fn() -> SystemTime,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.records += 1;
        match parsed {
            Ok(head) => {
                self.reassembler.push_head(head, &mut self.events);
                self.drain(now, emit);
            }
            Err(e) => {
                self.malformed += 1;
                if self.malformed <= 10 {
                    let shown = &raw[..raw.len().min(200)];
                    log::warn!(
                        "skipping a malformed audit record ({e}): {:?}{}",
                        String::from_utf8_lossy(shown),
                        if self.malformed == 10 {
                            " (further ones are only counted)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    }

    /// End of input: completes what is still open.
    pub fn flush(&mut self, now: &dyn Fn() -> SystemTime, emit: &mut dyn FnMut(Alert)) {
        self.reassembler.flush(&mut self.events);
        self.drain(now, emit);
    }

    fn drain(&mut self, now: &dyn Fn() -> SystemTime, emit: &mut dyn FnMut(Alert)) {
        for event in self.events.drain(..) {
            let Some(ecs) = self.normalizer.normalize(&event) else {
                continue;
            };
            if let Some(tap) = &mut self.event_tap {
                tap(&ecs);
            }
            self.detector.on_event(&ecs, &mut self.matches);
            for m in self.matches.drain(..) {
                self.alerts += 1;
                // Taken before anything else: the process may exit any moment.
                let snapshot = match (&mut self.snapshots, Target::of(&m)) {
                    (Some(s), Some(target)) => Some(s.take(&target)),
                    _ => None,
                };
                if let Some(s) = &snapshot {
                    log::debug!(
                        "snapshot of process {} for {:?}: {} us",
                        s.process.pid,
                        m.rule.name,
                        s.duration_us
                    );
                }
                emit(alert::build_with_snapshot(
                    &m,
                    &self.host_name,
                    now(),
                    snapshot,
                    self.max_alert_bytes,
                ));
            }
        }
    }

    /// Swaps in a new rule set; returns how many rules kept their state.
    pub fn replace_rules(&mut self, rules: Vec<Rule>) -> usize {
        self.detector.replace_rules(rules)
    }

    /// Rules that held back alerts over their max_signals since the last call.
    pub fn take_suppressed(&mut self) -> Vec<(Arc<RuleMeta>, u64)> {
        self.detector.take_suppressed()
    }

    pub fn rules(&self) -> impl Iterator<Item = &Arc<RuleMeta>> {
        self.detector.rules()
    }

    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            records: self.records,
            malformed_records: self.malformed,
            alerts: self.alerts,
            reassembly: self.reassembler.stats(),
            normalize: self.normalizer.stats(),
            detect: self.detector.stats(),
        }
    }
}
