//! Which kinds of event a filter can match when only the fields naming the
//! kind are known: what the rule loader and the audit-rule planner rely on.

use super::{compile, compile_err, list, s};
use crate::Value;

/// What the kind table knows of an event of `category` and `action`, of
/// type start: those fields, nothing else.
fn kind(category: &'static str, action: &'static str) -> impl Fn(&str) -> Option<Value<'static>> {
    move |name| match name {
        "event.category" => Some(list(&[category])),
        "event.type" => Some(list(&["start"])),
        "event.action" => Some(s(action)),
        _ => None,
    }
}

fn exec(name: &str) -> Option<Value<'static>> {
    kind("process", "exec")(name)
}

fn fork(name: &str) -> Option<Value<'static>> {
    kind("process", "fork")(name)
}

fn connect(name: &str) -> Option<Value<'static>> {
    kind("network", "connection_attempted")(name)
}

#[test]
fn action_lists_with_other_vendors_spellings_match_the_produced_action() {
    let q = compile(
        r#"process where event.type == "start" and event.action in ("exec", "exec_event", "executed") and process.name == "nc""#,
    );
    assert_eq!(q.required_filters(), vec![0]);
    assert!(q.filter_may_match(0, &exec));
    assert!(!q.filter_may_match(0, &fork));
    assert!(!q.filter_may_match(0, &connect));
}

#[test]
fn a_category_alone_admits_every_action_of_it() {
    let q = compile(r#"process where process.name : "nc*""#);
    assert!(q.filter_may_match(0, &exec));
    assert!(q.filter_may_match(0, &fork));
    assert!(!q.filter_may_match(0, &connect));
}

#[test]
fn unknown_fields_never_rule_a_kind_out() {
    // Whether the process is nc is unknown: it may be.
    let q = compile(r#"any where not process.name == "nc" and event.action != "fork""#);
    assert!(q.filter_may_match(0, &exec));
    assert!(!q.filter_may_match(0, &fork));
    assert!(q.filter_may_match(0, &connect));
}

#[test]
fn an_or_of_actions_needs_one_branch() {
    let q = compile(
        r#"any where (event.action == "already_running" and process.name == "x") or (event.type == "start" and process.pid == 1)"#,
    );
    assert!(q.filter_may_match(0, &exec));
    let q = compile(r#"process where event.action == "already_running" or event.action == "end""#);
    assert!(!q.filter_may_match(0, &exec));
}

#[test]
fn sequences_list_each_stage_once_and_until_apart() {
    let q = compile(
        r#"sequence by process.entity_id
           [process where event.action == "exec"] with runs=3
           [network where event.action == "connection_attempted"]
           until [process where event.action == "end"]"#,
    );
    assert_eq!(q.required_filters(), vec![0, 1]);
    assert_eq!(q.until_filter(), Some(2));
    assert!(q.filter_may_match(0, &exec));
    assert!(!q.filter_may_match(1, &exec));
    assert!(q.filter_may_match(1, &connect));
    assert!(!q.filter_may_match(2, &exec));
    assert!(!q.filter_may_match(7, &exec));
}

#[test]
fn functions_of_known_fields_are_evaluated() {
    let q = compile(r#"any where startsWith(event.action, "conn") and user.id == "0""#);
    assert!(q.filter_may_match(0, &connect));
    assert!(!q.filter_may_match(0, &exec));
}

#[test]
fn constructs_audetect_refuses_are_marked_unsupported_and_syntax_errors_are_not() {
    for q in [
        r#"process where true | head 5"#,
        r#"join [process where true] [network where true]"#,
        r#"process where process.name != process.parent.name"#,
        r#"process where unknown.field == "x""#,
        r#"registry where true"#,
        r#"process where substring(process.name, 1) == "x""#,
        r#"process where process.args[0] == "x""#,
        r#"process where descendant of [process where true]"#,
    ] {
        assert!(compile_err(q).unsupported, "{q}");
    }
    for q in [
        r#"process where (process.name == "x""#,
        r#"process where process.name == "#,
        r#"sequence [process where true]"#,
        r#"process where = "x""#,
    ] {
        assert!(!compile_err(q).unsupported, "{q}");
    }
}
