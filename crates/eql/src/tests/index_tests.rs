//! What the detector's index relies on: the values a filter requires of a
//! field (never one that would have let a matching event through), filters
//! specialized to a kind of event (the same verdict on every event of it),
//! and wildcard patterns matched on folded text.

use std::sync::Arc;

use super::{compile, ev, list, s, Ev};
use crate::pattern::{fold_str, Wildcard};
use crate::{fold_case, Matcher, Required, Value};

const FIELDS: &[&str] = &["process.name", "process.parent.name", "process.args"];

fn flat(_: usize, _: &Required) -> u64 {
    1
}

fn pins(q: &str) -> Option<Vec<(usize, Required)>> {
    compile(q).required_values(0, FIELDS, &flat)
}

fn exact(field: usize, v: &str) -> (usize, Required) {
    (field, Required::Exact(v.into()))
}

fn folded(field: usize, v: &str) -> (usize, Required) {
    (field, Required::Folded(v.into()))
}

#[test]
fn equality_in_and_patterns_without_a_leading_and_trailing_wildcard_pin_a_field() {
    assert_eq!(
        pins(r#"process where process.name == "nc""#),
        Some(vec![exact(0, "nc")])
    );
    assert_eq!(
        pins(r#"process where process.name in~ ("NC", "ncat")"#),
        Some(vec![folded(0, "nc"), folded(0, "ncat")])
    );
    assert_eq!(
        pins(r#"process where process.name : ("Bash", "python*", "*.SH") "#),
        Some(vec![
            folded(0, "bash"),
            (0, Required::FoldedPrefix("python".into())),
            (0, Required::FoldedSuffix(".sh".into())),
        ])
    );
    assert_eq!(
        pins(r#"process where process.name like ("ab?d", "x*y")"#),
        Some(vec![
            (0, Required::Prefix("ab".into())),
            (0, Required::Prefix("x".into())),
        ])
    );
    // A string field equals a number literal in its text form.
    assert_eq!(
        pins(r#"process where process.name == 7"#),
        Some(vec![exact(0, "7")])
    );
}

#[test]
fn what_does_not_pin_a_field() {
    for q in [
        r#"process where process.name : ("bash", "*sh*")"#,
        r#"process where process.name : "*""#,
        r#"process where process.name != "nc""#,
        r#"process where not process.name in ("nc", "ncat")"#,
        r#"process where process.name == null"#,
        r#"process where process.name regex "nc""#,
        r#"process where startsWith(process.name, "nc")"#,
        r#"process where process.name == "nc" or user.id == "0""#,
        r#"process where process.executable == "/bin/nc""#,
    ] {
        assert_eq!(pins(q), None, "{q}");
    }
}

#[test]
fn an_or_pins_the_union_of_its_branches_and_an_and_its_lightest_part() {
    assert_eq!(
        pins(
            r#"process where process.name == "nc" or (process.parent.name == "sshd" and user.id == "0")"#
        ),
        Some(vec![exact(0, "nc"), exact(1, "sshd")])
    );
    let q = compile(
        r#"process where process.name in ("a", "b", "c") and process.args == "-e" and process.parent.name : "x*""#,
    );
    assert_eq!(
        q.required_values(0, FIELDS, &flat),
        Some(vec![exact(2, "-e")]),
        "the fewest pins"
    );
    let names_first = |field: usize, _: &Required| if field == 0 { 1 } else { 10 };
    assert_eq!(
        q.required_values(0, FIELDS, &names_first).map(|p| p.len()),
        Some(3)
    );
}

#[test]
fn a_filter_that_cannot_match_pins_nothing_through() {
    // `?field` the schema lacks is null: the filter is constant false.
    assert_eq!(
        pins(r#"process where ?process.nothing == "x""#),
        Some(vec![])
    );
}

/// Whether the event's value of `fields[field]` satisfies `r`, as the
/// detector's index checks it.
fn satisfies(e: &Ev, field: usize, r: &Required) -> bool {
    let values: Vec<String> = match e.fields.get(FIELDS[field]) {
        Some(Value::Str(v)) => vec![v.to_string()],
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::Str(v) => Some(v.to_string()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    values.iter().any(|v| {
        let mut f = String::new();
        fold_case(v, &mut f);
        match r {
            Required::Exact(x) => v == x,
            Required::Folded(x) => &f == x,
            Required::Prefix(x) => v.starts_with(x.as_str()),
            Required::FoldedPrefix(x) => f.starts_with(x.as_str()),
            Required::Suffix(x) => v.ends_with(x.as_str()),
            Required::FoldedSuffix(x) => f.ends_with(x.as_str()),
        }
    })
}

const NAMES: &[&str] = &[
    "nc",
    "NC",
    "Nc",
    "ncat",
    "python3",
    "PYTHON",
    "py",
    "run.sh",
    "RUN.SH",
    "sh",
    "x",
    "",
    "K\u{212A}",
    "kk",
    "straße",
    "STRASSE",
    "İx",
    "i\u{307}x",
];

fn events() -> Vec<Ev> {
    let mut out = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let parent = NAMES[(i * 7 + 3) % NAMES.len()];
        let args = list(&[name, "-e", NAMES[(i * 5 + 1) % NAMES.len()]]);
        out.push(ev(
            i as u64,
            &[
                ("event.category", list(&["process"])),
                ("process.name", s(name)),
                ("process.parent.name", s(parent)),
                ("process.args", args),
                ("user.id", s(if i % 2 == 0 { "0" } else { "1000" })),
            ],
        ));
    }
    out
}

#[test]
fn no_event_a_filter_matches_misses_its_pins() {
    let queries = [
        r#"process where process.name == "nc""#,
        r#"process where process.name in~ ("NC", "python3")"#,
        r#"process where process.name : ("nc", "PY*", "*.sh", "k*")"#,
        r#"process where process.name like~ ("k\u{212A}", "STRASSE", "i*")"#,
        r#"process where process.name like ("N?", "*.SH")"#,
        r#"process where process.args : ("-E", "nc*") and user.id == "0""#,
        r#"process where (process.name == "x" or process.parent.name : "n*") and not process.args == "y""#,
        r#"process where process.parent.name in~ ("straße", "İX") or process.name == "sh""#,
    ];
    let evs = events();
    for q in queries {
        let query = Arc::new(compile(q));
        let pins = query
            .required_values(0, FIELDS, &flat)
            .unwrap_or_else(|| panic!("{q} pins nothing"));
        let mut seen = 0;
        for e in &evs {
            let matched = !Matcher::new(Arc::clone(&query)).on_event(e).is_empty();
            if matched {
                seen += 1;
                assert!(
                    pins.iter().any(|(f, r)| satisfies(e, *f, r)),
                    "{q} matches {:?} but no pin lets it through: {pins:?}",
                    e.fields
                );
            }
        }
        assert!(seen > 0, "{q} matches none of the events: a weak test");
    }
}

#[test]
fn a_filter_specialized_to_a_kind_decides_every_event_of_it_alike() {
    let queries = [
        r#"process where event.type == "start" and event.action in ("exec", "x") and process.name == "nc""#,
        r#"process where not (event.action == "exec" and process.name : "n*")"#,
        r#"any where event.action != "exec" or user.id == "0""#,
        r#"any where (event.category == "network" or process.name == "sh") and not user.id == "1000""#,
        // Script semantics: `not` of a null function result stays null.
        r#"process where not length(process.parent.name) > 2 and event.action == "exec""#,
        r#"process where not (event.action == "fork" or length(process.parent.name) > 2)"#,
        r#"sequence [process where event.action == "exec" and process.name == "nc"] [process where event.action == "fork"]"#,
    ];
    let kinds: [&[(&str, Value<'static>)]; 2] = [
        &[
            ("event.type", list(&["start"])),
            ("event.action", s("exec")),
        ],
        &[
            ("event.type", list(&["start"])),
            ("event.action", s("fork")),
        ],
    ];
    for q in queries {
        let query = Arc::new(compile(q));
        for kind in kinds {
            let known = |name: &str| {
                kind.iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, v)| v.clone())
            };
            let filters = query.specialize(&known);
            for mut e in events() {
                for (f, v) in kind {
                    e.fields.insert(f.to_string(), v.clone());
                }
                // Some events lack the parent, for the null cases.
                if e.ord.0 % 3 == 0 {
                    e.fields.remove("process.parent.name");
                }
                let mut plain = Matcher::new(Arc::clone(&query));
                let mut special = Matcher::new(Arc::clone(&query));
                // Twice: a sequence's second stage sees the first's event.
                for _ in 0..2 {
                    let a = plain.on_event(&e).len();
                    let b = special.on_event_with(&e, &filters).len();
                    assert_eq!(a, b, "{q} on {:?}", e.fields);
                    e.ord.0 += 1;
                    e.ord.1 += 1;
                }
            }
        }
    }
}

/// Glob matching the slow way, `*` and `?` over characters, for reference.
fn glob(p: &[char], s: &[char]) -> bool {
    match (p.first(), s.first()) {
        (None, _) => s.is_empty(),
        (Some('*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some('?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(c), Some(d)) if c == d => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[test]
fn wildcards_match_as_globs_folded_or_not() {
    let patterns = [
        "a*b*c",
        "*a*b*",
        "a**",
        "**",
        "*",
        "",
        "ab",
        "a*",
        "*b",
        "*ab*",
        "a*b*c*d",
        "?b*",
        "a?*c",
        "*.sh*x",
        "/home/*/.ssh/*",
        "*K*",
        "ß*ss",
    ];
    let texts = [
        "",
        "a",
        "ab",
        "abc",
        "aXbYc",
        "abcabc",
        "acb",
        "abbc",
        "aabbcc",
        "run.shx",
        "x.sh",
        "/home/u/.ssh/id",
        "/home/.ssh/",
        "K",
        "\u{212A}",
        "ßxss",
        "SS",
        "cab",
    ];
    for p in patterns {
        for insensitive in [false, true] {
            let w = Wildcard::new(p, insensitive);
            for t in texts {
                let (pp, tt) = if insensitive {
                    (fold_str(p), fold_str(t))
                } else {
                    (p.to_string(), t.to_string())
                };
                let pc: Vec<char> = pp.chars().collect();
                let tc: Vec<char> = tt.chars().collect();
                let want = glob(&pc, &tc);
                assert_eq!(w.matches(t), want, "{p:?} ~{insensitive} on {t:?}");
                assert_eq!(w.matches_folded(&tt), want, "{p:?} folded on {t:?}");
            }
        }
    }
}

#[test]
fn long_lists_looked_up_in_sets_match_as_each_item_alone() {
    let lists = [
        (
            r#"process.name in ("nc", "sh", "x", "py", "K\u{212A}")"#,
            "==",
        ),
        (
            r#"process.name in~ ("NC", "SH", "x", "strasse", "İx")"#,
            "in~",
        ),
        (
            r#"process.name : ("NC", "py*", "*.sh", "x", "kk", "STRASSE")"#,
            ":",
        ),
        (
            r#"process.name like ("nc", "N?", "sh", "x", "*.SH")"#,
            "like",
        ),
        (
            r#"process.name like~ ("nc", "N?", "sh", "x", "*.SH")"#,
            "like~",
        ),
        (r#"process.args : ("-E", "nc*", "sh", "x", "-e")"#, ":"),
    ];
    for (test, op) in lists {
        let (field, items) = test.split_once(' ').unwrap();
        let items = items.split_once(' ').unwrap().1;
        let items = items.trim_matches(|c| c == '(' || c == ')');
        let one_by_one: Vec<String> = items
            .split(", ")
            .map(|i| {
                if op == "==" {
                    format!("{field} == {i}")
                } else if op == "in~" {
                    format!("{field} in~ ({i})")
                } else {
                    format!("{field} {op} {i}")
                }
            })
            .collect();
        let whole = Arc::new(compile(&format!("process where {test}")));
        let each = Arc::new(compile(&format!(
            "process where {}",
            one_by_one.join(" or ")
        )));
        for e in events() {
            assert_eq!(
                Matcher::new(Arc::clone(&whole)).on_event(&e).len(),
                Matcher::new(Arc::clone(&each)).on_event(&e).len(),
                "{test} on {:?}",
                e.fields
            );
        }
    }
}
