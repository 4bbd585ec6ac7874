//! Detection rule target: arbitrary text as one rule file, found in a rule
//! directory or named itself (the first byte picks). Nothing may panic; a
//! query error points inside the file, where the query's own error points;
//! a rule that loads recompiles from its stored query and makes an alert
//! that is one line of JSON naming the rule.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use audetect::detect::Match;
use audetect::eql::{EqlError, Query};
use audetect::rulefile::{compile, RuleError, RuleText};
use audetect::{alert, fields, testkit};
use libfuzzer_sys::fuzz_target;

/// Line and column (1-based, in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Whether an error's line and column are those of its offset in `text`.
fn consistent(text: &str, e: &EqlError) -> bool {
    text.is_char_boundary(e.offset.min(text.len()))
        && e.offset <= text.len()
        && position(text, e.offset) == (e.line, e.column)
}

fn check_query_error(text: &str, e: &EqlError) {
    if e.message.contains("position within the query") {
        // Escapes in the TOML string: the position is the query's own.
        return;
    }
    assert!(e.offset <= text.len(), "{e} beyond {} bytes", text.len());
    let lines = text.matches('\n').count() + 1;
    assert!((1..=lines).contains(&e.line), "{e}: line of {lines}");
    // Where the query says, the file says too.
    let query = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| Some(t.get("rule")?.get("query")?.as_str()?.trim_end().to_owned()));
    if let Some(query) = query {
        if let Err(own) = Query::compile(&query, &fields::schema()) {
            if consistent(&query, &own) {
                assert!(consistent(text, e), "{e} is not at its offset in the file");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [first, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let file = RuleText {
        path: PathBuf::from("/rules/fuzz.toml"),
        text: text.to_owned(),
        found_in_dir: first & 1 == 1,
    };
    let schema = fields::schema();
    let set = match compile(false, [Ok(file)], &schema) {
        Ok(set) => set,
        Err(RuleError::Query { error, .. }) => return check_query_error(text, &error),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(
        set.rules.len() + set.skipped.len() == 1,
        "one file, one outcome"
    );
    for s in &set.skipped {
        assert!(!s.reason.is_empty(), "a skip without a reason");
    }
    let Some(event) = testkit::scenario_ecs().first() else {
        panic!("no scenario events");
    };
    for rule in &set.rules {
        assert!(
            Query::compile(&rule.query_text, &schema).is_ok(),
            "the stored query does not compile again"
        );
        assert!(rule.meta.risk_score <= 100 && rule.meta.max_signals >= 1);
        let m = Match {
            rule: Arc::clone(&rule.meta),
            events: vec![event.clone()],
        };
        let a = alert::build(&m, "fuzz-host", UNIX_EPOCH + Duration::from_secs(1));
        assert!(!a.json.contains('\n'), "raw newline in {}", a.json);
        let doc: serde_json::Value = serde_json::from_str(&a.json).expect("alert is JSON");
        assert_eq!(doc["rule"]["name"].as_str(), Some(rule.meta.name.as_str()));
        assert_eq!(doc["rule"]["id"].as_str(), Some(rule.meta.id.as_str()));
    }
});
