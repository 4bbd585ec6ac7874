//! The static pipeline from one parsed record to alerts: reassemble →
//! normalize → detect → alert. The same object serves `run` and `replay`.

use std::time::SystemTime;

use crate::alert;
use crate::detect::{DetectStats, Detector, SEED_MAXSPAN};
use crate::normalize::{NormalizeStats, Normalizer};
use crate::output::Alert;
use crate::parse::{ParseError, Record};
use crate::proc::ProcSource;
use crate::reassemble::{Event, Reassembler, ReassemblyStats};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub records: u64,
    pub malformed_records: u64,
    pub alerts: u64,
    pub reassembly: ReassemblyStats,
    pub normalize: NormalizeStats,
    pub detect: DetectStats,
}

pub struct Pipeline<P: ProcSource> {
    reassembler: Reassembler,
    normalizer: Normalizer<P>,
    detector: Detector,
    host_name: String,
    events: Vec<Event>,
    records: u64,
    malformed: u64,
    alerts: u64,
}

impl<P: ProcSource> Pipeline<P> {
    pub fn new(proc: P, maxspan: Option<std::time::Duration>, host_name: String) -> Self {
        Pipeline {
            reassembler: Reassembler::default(),
            normalizer: Normalizer::new(proc),
            detector: Detector::new(maxspan.unwrap_or(SEED_MAXSPAN)),
            host_name,
            events: Vec::new(),
            records: 0,
            malformed: 0,
            alerts: 0,
        }
    }

    /// Feeds one parse result; a malformed record is counted and skipped.
    /// `now` gives the wall-clock time an alert is made at.
    pub fn push(
        &mut self,
        parsed: Result<Record, ParseError>,
        now: &dyn Fn() -> SystemTime,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.records += 1;
        match parsed {
            Ok(record) => {
                self.reassembler.push(record, &mut self.events);
                self.drain(now, emit);
            }
            Err(_) => self.malformed += 1,
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
            if let Some(m) = self.detector.on_event(ecs) {
                self.alerts += 1;
                emit(alert::build(&m, &self.host_name, now()));
            }
        }
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
