//! Condition evaluation: operators, list and null semantics, functions and
//! the pattern dialects, against a small map-based test event.

use std::sync::Arc;

use super::{compile, ev, list, s, Ev};
use crate::pattern::{lucene_to_rust, Cidr, Wildcard};
use crate::{Matcher, Value};

fn proc_ev(fields: &[(&str, Value<'static>)]) -> Ev {
    let mut all = vec![("event.category", list(&["process"]))];
    all.extend(fields.iter().cloned());
    ev(1, &all)
}

/// Whether `process where COND` matches the event.
fn t(cond: &str, e: &Ev) -> bool {
    let q = compile(&format!("process where {cond}"));
    !Matcher::new(Arc::new(q)).on_event(e).is_empty()
}

fn check(e: &Ev, table: &[(&str, bool)]) {
    for (cond, want) in table {
        assert_eq!(t(cond, e), *want, "{cond}");
    }
}

#[test]
fn category_is_case_sensitive_membership() {
    let e = ev(1, &[("event.category", list(&["network", "process"]))]);
    assert!(t("true", &e));
    let q = compile("network where true");
    assert_eq!(Matcher::new(Arc::new(q)).on_event(&e).len(), 1);
    let q = compile("file where true");
    assert!(Matcher::new(Arc::new(q)).on_event(&e).is_empty());
    let q = compile("any where true");
    assert_eq!(Matcher::new(Arc::new(q)).on_event(&ev(1, &[])).len(), 1);
    let e = ev(1, &[("event.category", s("Process"))]);
    assert!(!t("true", &e));
}

#[test]
fn equality_and_case() {
    let e = proc_ev(&[("process.name", s("Bash"))]);
    check(
        &e,
        &[
            (r#"process.name == "Bash""#, true),
            (r#"process.name == "bash""#, false),
            (r#"process.name == "B*""#, false),
            (r#"process.name != "bash""#, true),
            (r#"process.name : "bash""#, true),
            (r#"process.name : "BA*""#, true),
            (r#"process.name : "b?sh""#, true),
            (r#"process.name : "b?""#, false),
            (r#"process.name : ("zsh", "*AS*")"#, true),
            (r#"process.name like "B*""#, true),
            (r#"process.name like "b*""#, false),
            (r#"process.name like~ "b*""#, true),
            (r#"process.name like ("x", "?ash")"#, true),
            (r#"process.name in ("bash", "Bash")"#, true),
            (r#"process.name in ("bash", "sh")"#, false),
            (r#"process.name in~ ("BASH", "sh")"#, true),
            (r#"process.name in~ ("B*")"#, false),
            (r#"process.name not in ("bash", "sh")"#, true),
            (r#"process.name not in~ ("BASH")"#, false),
            (r#""Bash" == process.name"#, true),
        ],
    );
}

#[test]
fn regex_is_anchored_and_lucene_flavoured() {
    let e = proc_ev(&[
        ("process.name", s("abc.123_x")),
        ("file.path", s("line1\nline2")),
    ]);
    check(
        &e,
        &[
            (r#"process.name regex "abc""#, false),
            (r#"process.name regex "abc.*""#, true),
            (r#"process.name regex "ABC.*""#, false),
            (r#"process.name regex~ "ABC.*""#, true),
            (r#"process.name regex """[a-z]+\.\d+\_x""""#, true),
            (r#"process.name regex """[a-z0-9_\-\.]{9}""""#, true),
            (r#"process.name regex """"abc."[0-9]+_x""""#, true),
            (r#"process.name regex ("nope", "a.*")"#, true),
            (r#"file.path regex "line1.line2""#, true),
            (r#"process.name regex "^abc.*""#, false),
        ],
    );
    let e = proc_ev(&[("process.name", s("^a$"))]);
    assert!(t(r#"process.name regex "^a$""#, &e));
}

#[test]
fn lists_match_if_any_element_does() {
    let e = proc_ev(&[
        ("event.type", list(&["start", "connection"])),
        ("process.args", list(&["/bin/sh", "-c", "id"])),
    ]);
    check(
        &e,
        &[
            (r#"event.type == "start""#, true),
            (r#"event.type == "end""#, false),
            // `!=` is `not ==`: true only when no element equals.
            (r#"event.type != "start""#, false),
            (r#"event.type != "end""#, true),
            (r#"process.args : "-C""#, true),
            (r#"process.args like "/bin/*""#, true),
            (r#"process.args in ("id")"#, true),
            (r#"not process.args in ("id")"#, false),
            (r#"startsWith(process.args, "-")"#, true),
            (r#"length(process.args) == 7"#, true),
            (r#"process.args != null"#, true),
        ],
    );
    let empty = proc_ev(&[("process.args", Value::List(vec![]))]);
    assert!(t("process.args == null", &empty));
    assert!(t(r#"process.args != "x""#, &empty));
}

#[test]
fn missing_fields() {
    let e = proc_ev(&[]);
    check(
        &e,
        &[
            (r#"process.name == "x""#, false),
            (r#"process.name != "x""#, true),
            (r#"process.name : "x""#, false),
            (r#"not process.name : "x""#, true),
            (r#"process.name in ("x")"#, false),
            (r#"process.name not in ("x")"#, true),
            (r#"process.name like "*""#, false),
            (r#"not process.name like "*""#, true),
            (r#"process.name regex ".*""#, false),
            (r#"process.pid < 1"#, false),
            (r#"not process.pid < 1"#, true),
            (r#"process.pid >= 1"#, false),
            (r#"process.name == null"#, true),
            (r#"process.name != null"#, false),
            (r#"process.name : null"#, true),
            (r#"?no.such.field == null"#, true),
            (r#"?no.such.field != null"#, false),
            // Unlike a supplied field: Elasticsearch folds it to null.
            (r#"not ?no.such.field : "x""#, false),
            (r#"process.name < null"#, false),
            // Queries Elasticsearch turns into index queries: not = complement.
            (r#"not startsWith(process.name, "x")"#, true),
            (r#"not startsWith~(process.name, "x")"#, true),
            (r#"not stringContains(process.name, "x")"#, true),
            (r#"not stringContains~(process.name, "x")"#, true),
            (r#"not endsWith(process.name, "x")"#, true),
            (r#"not endsWith~(process.name, "x")"#, true),
            (r#"not not endsWith(process.name, "x")"#, false),
            (r#"not cidrMatch(destination.ip, "10.0.0.0/8")"#, true),
            // Scripts: null stays null under not.
            (r#"length(process.name) != 3"#, false),
            (r#"not length(process.name) == 3"#, false),
            (r#"not not (length(process.name) == 3)"#, false),
            (r#"not (length(process.name) == 3 and true)"#, true),
            (r#"length(process.name) == null"#, true),
            (r#"process.interactive"#, false),
            (r#"not process.interactive"#, true),
        ],
    );
}

#[test]
fn numbers_and_types() {
    let e = proc_ev(&[
        ("process.pid", Value::Int(42)),
        ("destination.port", Value::Float(8.5)),
        ("user.id", s("0")),
        ("process.interactive", Value::Bool(true)),
        ("x", s("10")),
    ]);
    check(
        &e,
        &[
            ("process.pid == 42", true),
            ("process.pid == 42.0", true),
            (r#"process.pid == "42""#, true),
            ("process.pid in (1, 42)", true),
            ("process.pid > 41 and process.pid < 43", true),
            ("process.pid >= 42 and process.pid <= 42", true),
            ("process.pid > 42", false),
            ("destination.port > 8", true),
            ("destination.port < 8.6", true),
            (r#"user.id == "0""#, true),
            ("user.id == 0", true),
            (r#"user.id == "00""#, false),
            ("x > 9", true),
            (r#"x > "9""#, false),
            ("process.interactive", true),
            ("process.interactive == true", true),
            ("process.interactive != false", true),
            ("process.interactive == false", false),
            (r#"process.pid : "4*""#, true),
            ("false or process.pid == 42", true),
            ("1 == 1", true),
            (r#""a" == "b""#, false),
        ],
    );
}

#[test]
fn string_functions() {
    let e = proc_ev(&[("process.name", s("RegSvr32.EXE")), ("file.path", s(""))]);
    check(
        &e,
        &[
            (r#"startsWith(process.name, "RegSvr")"#, true),
            (r#"startsWith(process.name, "regsvr")"#, false),
            (r#"startsWith~(process.name, "REGSVR")"#, true),
            (r#"endsWith(process.name, ".EXE")"#, true),
            (r#"endsWith(process.name, ".exe")"#, false),
            (r#"EndsWith~(process.name, ".exe")"#, true),
            (r#"stringContains(process.name, "Svr3")"#, true),
            (r#"stringContains(process.name, "svr3")"#, false),
            (r#"stringContains~(process.name, "SVR3")"#, true),
            (r#"stringContains(process.name, "")"#, false),
            (r#"startsWith(file.path, "")"#, true),
            (r#"endsWith(file.path, "")"#, true),
            (r#"length(process.name) == 12"#, true),
            (r#"length(file.path) == 0"#, true),
            (r#"length("héllo") == 5"#, true),
            (r#"startsWith("abc", "a")"#, true),
        ],
    );
}

#[test]
fn number_function() {
    let e = proc_ev(&[
        ("x", s(" 0x1F ")),
        ("user.id", s("-17")),
        ("user.name", s("ff")),
        ("process.name", s("4.5")),
        ("file.path", s("nope")),
    ]);
    check(
        &e,
        &[
            ("number(x) == 31", true),
            ("number(x, 16) == 31", true),
            ("number(user.id) == -17", true),
            ("number(user.id) < 0", true),
            ("number(user.name, 16) == 255", true),
            ("number(process.name) == 4.5", true),
            ("number(file.path) == 0", false),
            ("number(file.path) == null", true),
            (r#"number("+12") == 12"#, true),
        ],
    );
}

#[test]
fn cidr_match() {
    for (ip, want) in [
        ("10.1.2.3", true),
        ("192.168.3.4", true),
        ("172.32.0.1", false),
        ("::1", true),
        ("fe80::1234", true),
        ("FE80::1", true),
        ("2001:db8::1", false),
        ("::ffff:10.0.0.1", true),
        ("not an ip", false),
    ] {
        let e = proc_ev(&[("destination.ip", s(ip))]);
        let c = r#"cidrMatch(destination.ip, "10.0.0.0/8", "192.168.0.0/16", "::1", "FE80::/10")"#;
        assert_eq!(t(c, &e), want, "{ip}");
    }
    let c = Cidr::parse("0.0.0.0/0").unwrap_or(Cidr::V4(1, 1));
    assert!(c.contains(
        "1.2.3.4"
            .parse()
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
    ));
    assert!(Cidr::parse("1.2.3.4/33").is_err());
    assert!(Cidr::parse("::/129").is_err());
}

#[test]
fn wildcard_matcher() {
    let cases: &[(&str, &str, bool, bool)] = &[
        ("abc", "abc", false, true),
        ("abc", "ABC", false, false),
        ("abc", "ABC", true, true),
        ("a*", "a", false, true),
        ("*c", "abc", false, true),
        ("*b*", "abc", false, true),
        ("*B*", "abc", true, true),
        ("a*c*e", "abxcyycze", false, true),
        ("a*c*e", "abxcyyczf", false, false),
        ("a?c", "abc", false, true),
        ("a?c", "ac", false, false),
        ("a?c", "aéc", false, true),
        ("*?", "", false, false),
        ("*", "", false, true),
        ("**a**", "xxa", false, true),
        (r"C:\*", r"C:\x", false, true),
        (r"c:\windows\*", r"C:\Windows\System32", true, true),
        ("ÉCOLE*", "école-x", true, true),
        ("*.sh", "x.sh.bak", false, false),
        ("/bin/*sh", "/bin/bash", false, true),
        ("?*?", "ab", false, true),
        ("?*?", "a", false, false),
    ];
    for (pat, input, ci, want) in cases {
        assert_eq!(
            Wildcard::new(pat, *ci).matches(input),
            *want,
            "{pat} ~ {input} ci={ci}"
        );
    }
}

#[test]
fn lucene_translation() {
    let ok: &[(&str, &str)] = &[
        ("abc", "^(?:abc)$"),
        (r"a\.b", r"^(?:a\.b)$"),
        (r"\_x", "^(?:_x)$"),
        (r"\d+", "^(?:[0-9]+)$"),
        ("\"a.b\"c", r"^(?:a\.bc)$"),
        ("^a$", r"^(?:\^a\$)$"),
        (r"[a-z_\-\.]", r"^(?:[a-z\_\-\.])$"),
        ("[^&&]", r"^(?:[^\&\&])$"),
        (r"\@", "^(?:@)$"),
    ];
    for (lucene, rust) in ok {
        assert_eq!(lucene_to_rust(lucene).as_deref(), Ok(*rust), "{lucene}");
    }
    for bad in [
        "a@", "a&b", "~a", "a#", "<1-5>", "(?i)a", "a)", "[ab", "a\\",
    ] {
        assert!(lucene_to_rust(bad).is_err(), "{bad}");
    }
}

#[test]
fn unicode_case_folding() {
    let e = proc_ev(&[("process.name", s("ÄRGER.Sh"))]);
    check(
        &e,
        &[
            (r#"process.name : "ärger.sh""#, true),
            (r#"process.name in~ ("ärger.SH")"#, true),
            (r#"endsWith~(process.name, "R.SH")"#, true),
            (r#"process.name like~ "ä*""#, true),
        ],
    );
}

#[test]
fn missing_optional_fields_fold_to_null() {
    // `?no.such.field` is not in the schema: Elasticsearch replaces it with
    // a null literal and folds, three-valued, before running anything.
    let x1 = proc_ev(&[("x", s("1"))]);
    let x2 = proc_ev(&[("x", s("2"))]);
    for e in [&x1, &x2] {
        check(
            e,
            &[
                (r#"?no.such.field : "x""#, false),
                (r#"not ?no.such.field : "x""#, false),
                (r#"?no.such.field != "x""#, false),
                (r#"?no.such.field not in ("x")"#, false),
                (r#"not ?no.such.field like "*""#, false),
                (r#"not ?no.such.field < 3"#, false),
                (r#"not startsWith(?no.such.field, "x")"#, false),
                (r#"not length(?no.such.field) == 3"#, false),
                ("?no.such.field", false),
                ("not ?no.such.field", false),
                ("?no.such.field == null", true),
                ("?no.such.field : null", true),
                ("?no.such.field != null", false),
                ("not ?no.such.field == null", false),
                ("length(?no.such.field) == null", true),
                ("not null", false),
                // null or FALSE is null; null and FALSE is false.
                (r#"not (?no.such.field : "x" or x == "3")"#, false),
                (r#"?no.such.field == null and x : ("1", "2")"#, true),
            ],
        );
    }
    // null or x: true exactly where x is.
    let q = r#"?no.such.field : "x" or x == "1""#;
    assert!(t(q, &x1));
    assert!(!t(q, &x2));
    // not (null and x): true where x is false, null (no match) where true.
    let q = r#"not (?no.such.field : "x" and x == "1")"#;
    assert!(!t(q, &x1));
    assert!(t(q, &x2));
    // not (null or x) is never true; not (null and x) = not x.
    let q = r#"not (not ?no.such.field : "x" or x == "1")"#;
    assert!(!t(q, &x1));
    assert!(!t(q, &x2));
}

#[test]
fn patterns_on_numbers_use_their_text() {
    let e = proc_ev(&[
        ("process.pid", Value::Int(-4217)),
        ("destination.port", Value::Float(8.5)),
        ("x", Value::Float(1e300)),
        ("k", Value::Int(i64::MIN)),
    ]);
    check(
        &e,
        &[
            (r#"process.pid : "-42*""#, true),
            (r#"process.pid like "-4?17""#, true),
            (r#"process.pid regex "-[0-9]+""#, true),
            (r#"process.pid regex "[0-9]+""#, false),
            (r#"destination.port : "8.5""#, true),
            (r#"destination.port regex "8\\.[0-9]""#, true),
            // Longer than the stack buffer: every digit of 1e300.
            (r#"x regex "10{300}""#, true),
            (r#"x : "1*0""#, true),
            (r#"k : "-9223372036854775808""#, true),
        ],
    );
}

#[test]
fn patterns_on_numbers_do_not_allocate() {
    let q = compile(r#"any where process.pid : ("4*", "x") and process.pid regex "4[0-9]+""#);
    let e = ev(1, &[("process.pid", Value::Int(4217))]);
    let cond = &q.conds[0];
    assert!(crate::eval::matches(cond, &e));
    let before = super::allocations();
    for _ in 0..100 {
        assert!(crate::eval::matches(cond, &e));
    }
    assert_eq!(super::allocations() - before, 0);
}

#[test]
fn ends_with_and_contains_on_a_field_are_queries() {
    // Elasticsearch's EQL QueryTranslator turns endsWith and stringContains
    // on a field into wildcard queries, `~` or not, so `not` of them on a
    // missing field is the complement, true, as for startsWith.
    let e = proc_ev(&[]);
    check(
        &e,
        &[
            (r#"not endsWith(process.name, "x")"#, true),
            (r#"not endsWith~(process.name, "x")"#, true),
            (r#"not stringContains(process.name, "x")"#, true),
            (r#"not stringContains~(process.name, "x")"#, true),
            (r#"endsWith~(process.name, "x")"#, false),
            (r#"stringContains~(process.name, "x")"#, false),
        ],
    );
    let e = proc_ev(&[("process.name", s("Bash"))]);
    check(
        &e,
        &[
            (r#"not endsWith~(process.name, "SH")"#, false),
            (r#"not stringContains~(process.name, "AS")"#, false),
            (r#"not endsWith(process.name, "SH")"#, true),
        ],
    );
}
