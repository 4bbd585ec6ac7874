//! Config target: arbitrary text as audetect.toml. Nothing may panic; the
//! text is accepted, or refused with an error that names a line of it, and
//! a comment line put before it changes nothing but that line number.
#![no_main]

use audetect::config::{parse_str, Config, ConfigError};
use libfuzzer_sys::fuzz_target;

/// The line an error names, if it names one.
fn line_of(e: &ConfigError) -> Option<usize> {
    match e {
        ConfigError::Invalid { line, .. } => Some(*line),
        ConfigError::Syntax { message, .. } => {
            // toml's "TOML parse error at line N, column M".
            let rest = &message[message.find(" line ")? + 6..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }
        // Reading the file (load), never parsing text.
        ConfigError::Read { .. } | ConfigError::Untrusted(_) => None,
    }
}

fn check(text: &str) -> Result<Config, (usize, String)> {
    let lines = text.matches('\n').count() + 1;
    parse_str(text, "fuzz.toml").map_err(|e| {
        let Some(line) = line_of(&e) else {
            panic!("an error naming no line: {e}")
        };
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
        (line, e.to_string())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = check(text);
    if let Ok(config) = &first {
        let _ = (
            config.receive_settings(),
            config.syslog_output(),
            config.jsonl_output(),
            format!("{config:?}"),
        );
    }
    // A leading byte-order mark is only allowed first.
    if text.starts_with('\u{feff}') {
        return;
    }
    let shifted = check(&format!("# a comment\n{text}"));
    match (first, shifted) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "a comment changed the config"),
        (Err((a, _)), Err((b, e))) => assert_eq!(a + 1, b, "a comment moved the error: {e}"),
        (a, b) => panic!("a comment changed the outcome: {a:?} then {b:?}"),
    }
});
