//! A round-trip property of EQL string literals, on inputs from a seeded
//! generator. The `eql_compile` corpus itself is replayed beside the fuzz
//! checks (crates/engine/src/fuzz_checks), against audetect's schema.

use std::sync::Arc;

use super::{ev, list, s, Ev};
use crate::{Matcher, Query};

/// xorshift64*: the same cases on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `s` as an EQL string literal: escapes where EQL has them, `\u{..}` for
/// every other character outside printable ASCII.
fn literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

#[test]
fn string_literals_round_trip() {
    const NASTY: &[char] = &[
        '\n', '\r', '\t', '\0', '\u{1d}', '\u{7f}', '"', '\'', '\\', ']', '[', '*', '?', ' ', 'é',
        '\u{2028}', '\u{feff}', '\u{fffd}', '😀',
    ];
    let mut state = 0x5eed_0004u64;
    for _ in 0..1_000 {
        let len = (next(&mut state) % 40) as usize;
        let text: String = (0..len)
            .map(|_| match next(&mut state) % 3 {
                0 => NASTY[(next(&mut state) % NASTY.len() as u64) as usize],
                1 => char::from(b'a' + (next(&mut state) % 26) as u8),
                _ => char::from_u32((next(&mut state) % 0x11_0000) as u32).unwrap_or('x'),
            })
            .collect();
        let q = format!("process where process.executable == {}", literal(&text));
        let query = Query::compile(&q, &super::test_schema())
            .unwrap_or_else(|e| panic!("{q:?} does not compile: {e}"));
        let mut m = Matcher::new(Arc::new(query));
        let event = |exe: &str| -> Ev {
            ev(
                1,
                &[
                    ("event.category", list(&["process"])),
                    ("process.executable", s(exe)),
                ],
            )
        };
        assert_eq!(m.on_event(&event(&text)).len(), 1, "{q:?}");
        let other = format!("{text}x");
        assert!(m.on_event(&event(&other)).is_empty(), "{q:?}");
        let other = ev(1, &[("event.category", list(&["process"]))]);
        assert!(m.on_event(&other).is_empty(), "{q:?}");
    }
}
