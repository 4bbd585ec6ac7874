//! Record parser target: arbitrary bytes as a netlink record body (the first
//! two bytes pick the record type) and as auditd log lines, then through
//! reassembly, normalization and alert building. Nothing may panic, a netlink
//! body must parse exactly as the same body in a log line, and every JSON
//! document made from what was parsed must be one line that reads back equal.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use audetect::detect::Match;
use audetect::normalize::Normalizer;
use audetect::parse::{decode_hex, decode_sockaddr, parse_log_line, parse_netlink, types, Record};
use audetect::proc::NoProc;
use audetect::reassemble::Reassembler;
use audetect::rulefile::{self, RuleMeta};
use libfuzzer_sys::fuzz_target;

fn rule() -> Arc<RuleMeta> {
    static RULE: OnceLock<Arc<RuleMeta>> = OnceLock::new();
    RULE.get_or_init(|| {
        let rules = rulefile::load(true, &[], &audetect::fields::schema()).expect("built-in rule");
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

fuzz_target!(|data: &[u8]| {
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
    let mut reassembler = Reassembler::new(2_000, 64);
    let mut events = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(r) = parse_log_line(line) {
            reassembler.push(r, &mut events);
        }
    }
    reassembler.flush(&mut events);
    let mut normalizer = Normalizer::new(NoProc);
    let ecs: Vec<_> = events
        .iter()
        .filter_map(|e| normalizer.normalize(e))
        .collect();
    for e in &ecs {
        let json = serde_json::to_string(e).expect("an ECS event serializes");
        assert!(!json.contains('\n'), "raw newline in {json}");
        let back: serde_json::Value = serde_json::from_str(&json).expect("reads back");
        assert_eq!(
            back["process"]["executable"].as_str(),
            e.process.executable.as_deref()
        );
    }
    if !ecs.is_empty() {
        let m = Match {
            rule: rule(),
            events: ecs,
        };
        let alert = audetect::alert::build(&m, "fuzz-host", UNIX_EPOCH + Duration::from_secs(1));
        assert!(!alert.json.contains('\n'), "raw newline in {}", alert.json);
        let doc: serde_json::Value = serde_json::from_str(&alert.json).expect("alert is JSON");
        assert_eq!(
            doc["events"][0]["process"]["executable"].as_str(),
            m.events[0].process.executable.as_deref()
        );
    }
});
