//! What the unit tests and the fuzz checks share: audit records through
//! reassembly and normalization, and the captured scenarios made into events.

use std::sync::OnceLock;

use crate::normalize::{EcsEvent, Normalizer};
use crate::parse::{parse_log_line, Record};
use crate::process::{NoProc, ProcSource};
use crate::reassemble::{Event, Reassembler};

/// tests/fixtures/scenarios.log: three runs of the test actor, as auditd logged them.
pub const SCENARIOS: &str = include_str!("../../../tests/fixtures/scenarios.log");
/// Connects with no connect(): fast open and io_uring (capture.py unseen).
pub const UNSEEN: &str = include_str!("../../../tests/fixtures/unseen.log");
/// One real process tree doing every kind of event (see capture.py).
pub const KINDS: &str = include_str!("../../../tests/fixtures/kinds.log");

/// `records` through `reassembler`, flushed at the end: every event they make.
pub fn reassemble(
    mut reassembler: Reassembler,
    records: impl IntoIterator<Item = Record>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for record in records {
        reassembler.push(record, &mut events);
    }
    reassembler.flush(&mut events);
    events
}

/// Auditd log text, every line of which must parse, as reassembled events.
pub fn reassemble_log(text: &str) -> Vec<Event> {
    let records = text
        .lines()
        .map(|line| parse_log_line(line.as_bytes()).expect("fixture parses"));
    reassemble(Reassembler::default(), records)
}

/// The ECS events `normalizer` makes of `events`.
pub fn normalize_all<P: ProcSource>(
    normalizer: &mut Normalizer<P>,
    events: &[Event],
) -> Vec<EcsEvent> {
    events
        .iter()
        .filter_map(|e| normalizer.normalize(e))
        .collect()
}

/// The events of tests/fixtures/scenarios.log, normalized without /proc.
pub fn scenario_ecs() -> &'static [EcsEvent] {
    static EVENTS: OnceLock<Vec<EcsEvent>> = OnceLock::new();
    EVENTS.get_or_init(|| normalize_all(&mut Normalizer::new(NoProc), &reassemble_log(SCENARIOS)))
}

/// The events of tests/fixtures/kinds.log (every kind of event), normalized
/// without /proc.
pub fn kinds_ecs() -> &'static [EcsEvent] {
    static EVENTS: OnceLock<Vec<EcsEvent>> = OnceLock::new();
    EVENTS.get_or_init(|| normalize_all(&mut Normalizer::new(NoProc), &reassemble_log(KINDS)))
}
