//! Parser and compiler tests: every supported construct compiles, every
//! refused one fails with its message at the exact line and column.

use super::{compile, compile_err, ev, list, s, schema, test_schema};
use crate::{Matcher, Query, Value};
use std::sync::Arc;

/// Compiles, then says whether the query matches this one event.
fn hits(q: &str, e: &super::Ev) -> bool {
    let mut m = Matcher::new(Arc::new(compile(q)));
    !m.on_event(e).is_empty()
}

fn err_at(q: &str, line: usize, column: usize, needle: &str) {
    let e = compile_err(q);
    assert!(
        e.message.contains(needle),
        "{q}\n  message {:?} lacks {needle:?}",
        e.message
    );
    assert_eq!(
        (e.line, e.column),
        (line, column),
        "{q}\n  wrong position for {:?}",
        e.message
    );
}

#[test]
fn single_event_queries() {
    let q = compile(r#"process where process.name == "bash""#);
    assert!(!q.is_sequence());
    assert!(!q.is_sample());
    assert_eq!(q.stage_count(), 1);
    assert_eq!(q.fields(), vec!["event.category", "process.name"]);
    let q = compile("any where true");
    assert!(q.fields().is_empty());
    compile(r#""process" where true"#);
    compile(r#""""network""" where true"#);
}

#[test]
fn sequence_forms() {
    let q = compile(
        r#"sequence by host.id, user.id with maxspan=30s
             [process where true] by process.pid
             [network where true] by process.pid with runs=3
           until [process where event.action == "end"] by process.pid"#,
    );
    assert!(q.is_sequence());
    assert_eq!(q.stage_count(), 4);
    assert_eq!(q.maxspan_ms(), Some(30_000));
    assert_eq!(q.join_fields(), vec!["host.id", "user.id"]);
    for (span, ms) in [
        ("250ms", 250),
        ("2s", 2_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
    ] {
        let q = compile(&format!(
            "sequence with maxspan={span} [process where true] [file where true]"
        ));
        assert_eq!(q.maxspan_ms(), Some(ms), "{span}");
    }
    let q = compile("sequence with maxspan = 5m [process where true] with runs = 60");
    assert_eq!(q.stage_count(), 60);
    let q = compile("sequence [process where true] [file where true]");
    assert_eq!(q.maxspan_ms(), None);
}

#[test]
fn sample_form() {
    let q = compile("sample by host.id, user.id [process where true] by process.pid [network where true] by process.pid [file where true] by process.pid");
    assert!(q.is_sample());
    assert_eq!(q.stage_count(), 3);
}

#[test]
fn operators_compile() {
    for cond in [
        r#"process.name == "a""#,
        r#"process.name != "a""#,
        r#"process.pid < 5 and process.pid <= 5 and process.pid > 1 and process.pid >= 1"#,
        r#"5 > process.pid"#,
        r#"process.name : "a*""#,
        r#"process.name : ("a*", "b?c", 1)"#,
        r#"process.name in ("a", "b")"#,
        r#"process.name in~ ("a", "b")"#,
        r#"process.name not in ("a", "b")"#,
        r#"process.name not in~ ("a", "b")"#,
        r#"process.name like "a*""#,
        r#"process.name like~ ("a*", "B*")"#,
        r#"process.name regex "a.*""#,
        r#"process.name regex~ ("a.*", """b\d+""")"#,
        r#"process.name == null or process.name != null or process.name : null"#,
        r#"not (process.name == "a" or not process.pid == 1) and true"#,
        r#"process.interactive"#,
        r#"process.interactive == true and process.pid != -1 and process.pid > 1.5e0"#,
    ] {
        compile(&format!("process where {cond}"));
    }
}

#[test]
fn functions_compile_case_insensitively() {
    for cond in [
        r#"startsWith(process.name, "a")"#,
        r#"STARTSWITH(process.name, "a")"#,
        r#"startswith~(process.name, "A")"#,
        r#"endsWith~(process.name, ".SH")"#,
        r#"stringContains(process.name, "x")"#,
        r#"stringcontains~(process.name, "X")"#,
        r#"length(process.name) > 3"#,
        r#"cidrMatch(destination.ip, "10.0.0.0/8", "::1", "FE80::/10")"#,
        r#"cidrmatch(destination.ip, "192.168.0.0/16")"#,
        r#"number(process.name) == 1 and number(process.name, 16) == 2 and number("0x10") == 16"#,
        r#"length(process.name) == 3 and startsWith (process.name, "a")"#,
    ] {
        compile(&format!("process where {cond}"));
    }
}

#[test]
fn fields_optional_and_backquoted() {
    let q = compile("process where ?process.no.such.field == null and `process`.`name` == \"a\"");
    assert_eq!(q.fields(), vec!["event.category", "process.name"]);
    // An optional field the schema does supply is read as usual.
    let q = compile("process where ?process.name == \"a\"");
    assert_eq!(q.fields(), vec!["event.category", "process.name"]);
    // Keywords may be later segments of a name.
    let sch = schema(&["event.sequence", "a.by.in"], &["process"]);
    assert!(Query::compile("process where event.sequence > 1 and a.by.in == 1", &sch).is_ok());
    let sch = schema(&["my field"], &["process"]);
    assert!(Query::compile("process where `my field` == 1", &sch).is_ok());
}

#[test]
fn comments_and_newlines() {
    let q = r#"// leading comment
process where /* inline /* nested */ comment */
    process.name ==
    "a" // trailing
    and
    process.pid == 1"#;
    let e = ev(
        1,
        &[
            ("event.category", list(&["process"])),
            ("process.name", s("a")),
            ("process.pid", Value::Int(1)),
        ],
    );
    assert!(hits(q, &e));
}

#[test]
fn string_literals() {
    let cat = ("event.category", list(&["process"]));
    let e = ev(1, &[cat.clone(), ("process.name", s("a\"b\\c\nd\te\rf"))]);
    assert!(hits(
        r#"process where process.name == "a\"b\\c\nd\te\rf""#,
        &e
    ));
    let e = ev(1, &[cat.clone(), ("process.name", s("\u{200f}x\u{e9}"))]);
    assert!(hits(
        r#"process where process.name == "\u{200F}x\u{0000e9}""#,
        &e
    ));
    // Raw strings keep backslashes; up to two quotes may end them.
    let e = ev(1, &[cat.clone(), ("process.name", s(r#"C:\a\"b"#))]);
    assert!(hits(r#"process where process.name == """C:\a\"b""""#, &e));
    let e = ev(1, &[cat.clone(), ("process.name", s("a\""))]);
    assert!(hits("process where process.name == \"\"\"a\"\"\"\"", &e));
    let e = ev(1, &[cat, ("process.name", s(r"C:\Windows\x"))]);
    assert!(hits(
        r#"process where process.name : """c:\windows\*""""#,
        &e
    ));
}

#[test]
fn numbers() {
    let cat = ("event.category", list(&["process"]));
    let e = ev(1, &[cat.clone(), ("process.pid", Value::Int(-3))]);
    assert!(hits("process where process.pid == -3", &e));
    assert!(hits("process where process.pid < -2.5", &e));
    assert!(hits("process where process.pid > -3.5e0", &e));
    let e = ev(1, &[cat, ("process.pid", Value::Float(12.5))]);
    assert!(hits("process where process.pid == 1.25e1", &e));
}

// ---- errors, each at its exact position ----

#[test]
fn error_unknown_field_lists_schema() {
    let e = compile_err("process where foo.bar == 1");
    assert_eq!((e.line, e.column, e.offset), (1, 15, 14));
    assert!(e.message.starts_with(
        "unknown field foo.bar; audetect supplies: destination.ip, destination.port, event.action"
    ));
    assert_eq!(e.to_string(), format!("line 1, column 15: {}", e.message));
    err_at(
        "sequence by nope [process where true] [process where true]",
        1,
        13,
        "unknown field nope",
    );
}

#[test]
fn error_unknown_category() {
    err_at("registry where true", 1, 1, "unknown event category \"registry\"; audetect supplies: authentication, file, network, process");
    err_at(
        "sequence [process where true]\n  [dns where true]",
        2,
        4,
        "unknown event category \"dns\"",
    );
}

#[test]
fn error_lexical() {
    err_at(
        "process where process.name == 'x'",
        1,
        31,
        "single-quoted strings are not supported",
    );
    err_at(
        "process where process.name == ?\"x\"",
        1,
        31,
        "raw strings are not supported",
    );
    err_at(
        "process where process.name == \"abc",
        1,
        31,
        "unterminated string",
    );
    err_at(
        "process where process.name == \"a\\qb\"",
        1,
        33,
        "unknown escape `\\q`",
    );
    err_at(
        "process where process.name == \"\\u{1}\"",
        1,
        32,
        "bad unicode escape",
    );
    err_at("process where /* open", 1, 15, "unterminated comment");
    err_at(
        "process where process.name == \"a\nb\"",
        1,
        33,
        "line break inside a string",
    );
    err_at(
        "process where process.name # 1",
        1,
        28,
        "unexpected character `#`",
    );
}

#[test]
fn error_refused_constructs() {
    err_at(
        "join by x [process where true] [file where true]",
        1,
        1,
        "`join` is not supported",
    );
    err_at("process where true | head 5", 1, 20, "pipes");
    err_at(
        "sequence [process where true] ![file where true]",
        1,
        31,
        "missing-event stages",
    );
    err_at(
        "process where process.pid + 1 == 2",
        1,
        27,
        "arithmetic (`+`) is not supported",
    );
    err_at(
        "process where process.pid * 2 == 2",
        1,
        27,
        "arithmetic (`*`) is not supported",
    );
    err_at(
        "process where process.args[0] == \"x\"",
        1,
        27,
        "array indexing",
    );
    err_at(
        "process where process.name == process.executable",
        1,
        31,
        "comparing a field or function to another field",
    );
    err_at(
        "process where process.name = \"x\"",
        1,
        28,
        "`=` is not an EQL operator",
    );
    err_at(
        "process where process.name !: \"x\"",
        1,
        28,
        "`!:` is not supported",
    );
    err_at(
        "process where descendant of [process where true]",
        1,
        15,
        "lineage",
    );
    err_at(
        "process where process.name not like \"a\"",
        1,
        28,
        "write `not field like ...`",
    );
    err_at(
        "process where 1 < process.pid < 3",
        1,
        31,
        "cannot be chained",
    );
    err_at(
        "process where process.name : process.executable",
        1,
        30,
        "comparing two fields is not supported",
    );
}

#[test]
fn error_functions() {
    err_at(
        "process where foo(process.name)",
        1,
        15,
        "unknown function foo; supported: cidrMatch, endsWith, length, number, startsWith, stringContains",
    );
    // Not an Elasticsearch EQL function (its registry has no `wildcard`).
    err_at(
        r#"process where wildcard(process.name, "a*")"#,
        1,
        15,
        "unknown function wildcard; supported: cidrMatch,",
    );
    err_at(
        "process where concat(process.name, \"a\") == \"b\"",
        1,
        15,
        "function concat is not supported",
    );
    err_at(
        "process where length~(process.name) > 1",
        1,
        15,
        "length has no case-insensitive `~` form",
    );
    err_at(
        "process where startsWith(process.name)",
        1,
        15,
        "startsWith takes 2 arguments, found 1",
    );
    err_at(
        "process where startsWith(process.name, process.executable)",
        1,
        40,
        "must be a literal string",
    );
    err_at(
        "process where cidrMatch(destination.ip, \"10.0.0.0/33\")",
        1,
        41,
        "prefix length over 32",
    );
    err_at(
        "process where cidrMatch(destination.ip, \"nope\")",
        1,
        41,
        "not an IP address",
    );
    err_at(
        "process where number(process.name, 40) == 1",
        1,
        36,
        "between 2 and 36",
    );
}

#[test]
fn error_patterns() {
    err_at(
        "process where process.name regex \"a@b\"",
        1,
        34,
        "Lucene regex operator `@`",
    );
    err_at(
        "process where process.name regex \"(?i)a\"",
        1,
        34,
        "`(?` groups",
    );
    err_at(
        "process where process.name regex \"a[b\"",
        1,
        34,
        "unterminated `[`",
    );
    err_at(
        "process where process.name like 1",
        1,
        33,
        "must be strings",
    );
    err_at(
        "process where process.name in \"a\"",
        1,
        31,
        "expected `(` starting the `in` list",
    );
}

#[test]
fn error_sequence_shape() {
    err_at("sequence [process where true]", 1, 1, "at least two stages");
    err_at(
        "sequence with maxspan=1m by host.id [process where true] [file where true]",
        1,
        26,
        "`by` must come before `with maxspan`",
    );
    err_at(
        "sequence with maxspan=1 [process where true] [file where true]",
        1,
        23,
        "maxspan needs a time unit",
    );
    err_at(
        "sequence with maxspan=1y [process where true] [file where true]",
        1,
        24,
        "unknown time unit `y`",
    );
    err_at(
        "sequence with maxspan=0s [process where true] [file where true]",
        1,
        23,
        "greater than zero",
    );
    err_at(
        "sequence [process where true] with runs=101 [file where true]",
        1,
        41,
        "runs must be between 1 and 100, found 101",
    );
    err_at(
        "sequence [process where true] with runs=0 [file where true]",
        1,
        41,
        "runs must be between 1 and 100, found 0",
    );
    err_at(
        "sequence [process where true] by host.id\n [file where true] by host.id, user.id",
        2,
        2,
        "same number of `by` fields: the first has 1, number 2 has 2",
    );
    err_at(
        "sequence [process where true] [file where true] until [file where true] with runs=2",
        1,
        73,
        "only allowed on sequence stages",
    );
    err_at(
        "sequence [process where true] by process.name() [file where true]",
        1,
        34,
        "join keys must be fields",
    );
    err_at(
        "sequence [process where true] [file where true] with maxspan=1m",
        1,
        54,
        "belongs right after `sequence",
    );
    err_at(
        "sample by host.id [process where true]",
        1,
        1,
        "at least two filters",
    );
    err_at(
        "sample [process where true] [file where true]",
        1,
        1,
        "needs join keys",
    );
    err_at(
        "sample by host.id [process where true] [file where true] until [file where true]",
        1,
        58,
        "`until` is not allowed in a sample",
    );
}

#[test]
fn error_expected_tokens() {
    err_at(
        "process process.name == \"x\"",
        1,
        9,
        "expected `where` after the event category, found `process`",
    );
    err_at(
        "process where",
        1,
        14,
        "expected a field, value or function, found end of query",
    );
    err_at(
        "process where (process.name == \"a\"",
        1,
        35,
        "expected `)`",
    );
    err_at(
        "sequence [process where true [file where true]",
        1,
        30,
        "expected `]` closing the stage",
    );
    err_at(
        "process where process.name == \"a\" process",
        1,
        35,
        "expected end of query, found `process`",
    );
    err_at("where x", 1, 1, "expected an event category");
    err_at("process where and", 1, 15, "found keyword `and`");
    err_at(
        "process where \"abc\"",
        1,
        15,
        "a string or number alone is not a condition",
    );
}

#[test]
fn error_multiline_position() {
    let q = "sequence by host.id with maxspan=1m\n  [process where process.name == \"a\"]\n  [network where nope.field == 1]";
    let e = compile_err(q);
    assert_eq!((e.line, e.column), (3, 18));
    assert_eq!(&q[e.offset..e.offset + 10], "nope.field");
}

#[test]
fn error_nesting_is_bounded() {
    let deep = format!("process where {}true{}", "(".repeat(500), ")".repeat(500));
    let e = compile_err(&deep);
    assert!(e.message.contains("nests too deeply"), "{}", e.message);
    let nots = format!("process where {}true", "not ".repeat(500));
    assert!(compile_err(&nots).message.contains("nests too deeply"));
}

#[test]
fn schema_is_what_checks_categories() {
    let sch = test_schema();
    assert!(Query::compile("process where true", &sch).is_ok());
    assert!(Query::compile("Process where true", &sch).is_err());
}

#[test]
fn nesting_within_limit_compiles() {
    let q = format!("process where {}true{}", "(".repeat(60), ")".repeat(60));
    compile(&q);
    let q = format!("process where {}true", "not ".repeat(60));
    compile(&q);
}

#[test]
fn stage_count_is_capped() {
    // 128 stages once runs are expanded compile; one more does not, and the
    // error points at the stage that goes over.
    compile("sequence [process where true] with runs=100 [file where true] with runs=28");
    err_at(
        "sequence [process where true] with runs=100\n  [file where true] with runs=29",
        2,
        3,
        "at most 128 stages once runs are expanded; this stage brings it to 129",
    );
    // The review's 647 MB query: 201 stages.
    let e = compile_err(
        r#"sequence by k [any where x == "a"] with runs=100 [any where x == "b"] with runs=100 [any where x == "never"]"#,
    );
    assert!(e.message.contains("at most 128 stages"), "{}", e.message);
    let filters = |n: usize| {
        let mut q = String::from("sample by k");
        for _ in 0..n {
            q.push_str(" [process where true]");
        }
        q
    };
    compile(&filters(128));
    let e = compile_err(&filters(129));
    assert!(e.message.contains("at most 128 filters"), "{}", e.message);
    assert_eq!((e.line, e.column), (1, 12 + 128 * 21 + 1));
}
