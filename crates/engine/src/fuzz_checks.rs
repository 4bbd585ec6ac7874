//! The checks the fuzz targets (fuzz/fuzz_targets) and the tests replaying their
//! corpus share: each takes one input and panics on a broken invariant, by design.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use crate::detect::Match;
use crate::eql::{Matcher, Query};
use crate::normalize::Normalizer;
use crate::parse::{decode_hex, decode_sockaddr, parse_log_line, parse_netlink, types, Record};
use crate::process::NoProc;
use crate::reassemble::Reassembler;
use crate::rulefile::{self, RuleMeta};
use crate::testkit;

/// The built-in rule, for the alerts `record_input` builds.
fn rule() -> Arc<RuleMeta> {
    static RULE: OnceLock<Arc<RuleMeta>> = OnceLock::new();
    RULE.get_or_init(|| {
        let rules = rulefile::compile(true, [], &crate::fields::schema())
            .expect("built-in rule")
            .rules;
        Arc::clone(&rules[0].meta)
    })
    .clone()
}

/// Every accessor on every field of a parsed record.
fn exercise(r: &Record) {
    let _ = r.type_name();
    let _ = format!("{r:?}");
    for (key, v) in r.fields() {
        assert!(!key.is_empty(), "empty key in {r:?}");
        assert!(!key.contains(&b'='), "key with '=' in {r:?}");
        let _ = (v.untrusted(), v.decimal(), v.signed(), v.hex());
        if let Some(bytes) = decode_hex(v.raw) {
            assert_eq!(bytes.len() * 2, v.raw.len());
            let _ = decode_sockaddr(&bytes);
        }
        let _ = decode_sockaddr(v.raw);
        if let Ok(key) = std::str::from_utf8(key) {
            assert!(r.get(key).is_some(), "{key} not found in {r:?}");
        }
    }
}

/// The `parse_record` checks: `data` as a netlink record body (the first two
/// bytes pick the record type) and as auditd log lines, then through
/// reassembly, normalization and alert building. A netlink body must parse
/// exactly as the same body in a log line, and every JSON document made from
/// what was parsed must be one line that reads back equal.
pub fn record_input(data: &[u8]) {
    if let [a, b, body @ ..] = data {
        let rtype = u16::from_le_bytes([*a, *b]);
        if let Ok(r) = parse_netlink(rtype, body) {
            assert_eq!(r.rtype, rtype);
            exercise(&r);
        }
        // The same body after an auditd log prefix parses to the same record.
        let mut line = b"type=SYSCALL msg=".to_vec();
        line.extend_from_slice(body);
        assert_eq!(
            parse_netlink(types::SYSCALL, body),
            parse_log_line(&line),
            "netlink and log forms differ"
        );
    }
    if let Ok(r) = parse_log_line(data) {
        exercise(&r);
    }

    // As a log: records into events, events into ECS documents and an alert.
    let records = data
        .split(|&b| b == b'\n')
        .filter_map(|line| parse_log_line(line).ok());
    let events = testkit::reassemble(Reassembler::new(2_000, 64), records);
    let ecs = testkit::normalize_all(&mut Normalizer::new(NoProc), &events);
    for e in &ecs {
        let json = serde_json::to_string(e).expect("an ECS event serializes");
        assert!(!json.contains('\n'), "raw newline in {json}");
        let back: serde_json::Value = serde_json::from_str(&json).expect("reads back");
        assert_eq!(
            back["process"]["executable"].as_str(),
            e.process.executable()
        );
    }
    if !ecs.is_empty() {
        let m = Match {
            rule: rule(),
            events: ecs,
        };
        let alert = crate::alert::build(&m, "fuzz-host", UNIX_EPOCH + Duration::from_secs(1));
        assert!(!alert.json.contains('\n'), "raw newline in {}", alert.json);
        let doc: serde_json::Value = serde_json::from_str(&alert.json).expect("alert is JSON");
        assert_eq!(
            doc["events"][0]["process"]["executable"].as_str(),
            m.events[0].process.executable()
        );
    }
}

/// The `eql_compile` checks: `data`, if UTF-8, compiled against audetect's
/// schema. An error must point inside the query; a query that compiles is run
/// over the events of tests/fixtures/scenarios.log (`testkit::scenario_ecs`).
pub fn eql_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Query::compile(text, &crate::fields::schema()) {
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
            let events = testkit::scenario_ecs();
            for e in events {
                let _ = m.on_event(e);
            }
            if let Some(last) = events.last() {
                m.expire(last.time.as_millis() + 3_600_000);
            }
        }
    }
}

/// Every file of a fuzz corpus (fuzz/corpus/`target`), by name, read at test time.
#[cfg(test)]
pub(crate) fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read a corpus file"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    files
}

#[cfg(test)]
mod eql_corpus_tests;
#[cfg(test)]
mod parse_corpus_tests;
