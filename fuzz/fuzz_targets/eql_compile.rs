//! EQL target: arbitrary text compiled against audetect's schema. Nothing may
//! panic; an error must point inside the query; a query that compiles is run
//! over the events of tests/fixtures/scenarios.log.
#![no_main]

use std::sync::{Arc, OnceLock};

use audetect::eql::{Matcher, Query};
use audetect::normalize::{EcsEvent, Normalizer};
use audetect::parse::parse_log_line;
use audetect::proc::NoProc;
use audetect::reassemble::Reassembler;
use libfuzzer_sys::fuzz_target;

const SCENARIOS: &str = include_str!("../../tests/fixtures/scenarios.log");

fn events() -> &'static [EcsEvent] {
    static EVENTS: OnceLock<Vec<EcsEvent>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut r = Reassembler::default();
        let mut events = Vec::new();
        for line in SCENARIOS.lines() {
            r.push(
                parse_log_line(line.as_bytes()).expect("fixture parses"),
                &mut events,
            );
        }
        r.flush(&mut events);
        let mut n = Normalizer::new(NoProc);
        events.iter().filter_map(|e| n.normalize(e)).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Query::compile(text, &audetect::fields::schema()) {
        Err(e) => {
            assert!(e.offset <= text.len(), "{e} beyond {} bytes", text.len());
            assert!(e.line >= 1 && e.column >= 1, "{e}");
        }
        Ok(q) => {
            let _ = (
                q.is_sequence(),
                q.stage_count(),
                q.fields(),
                q.join_fields(),
            );
            let mut m = Matcher::new(Arc::new(q));
            for e in events() {
                let _ = m.on_event(e);
            }
            if let Some(last) = events().last() {
                m.expire(last.time.as_millis() + 3_600_000);
            }
        }
    }
});
