//! What the audit rules follow: the kinds a rule set needs, root-only or for
//! every user, with the process table's own needs.

use std::borrow::Cow;

use super::*;
use crate::rulefile::{parse_rule, BUILTIN};

/// The kinds of event model.md plans (event.action, category, type).
const PLANNED_KINDS: &[(&str, &str, &str)] = &[
    ("exec", "process", "start"),
    ("fork", "process", "start"),
    ("end", "process", "end"),
    ("uid_change", "process", "change"),
    ("gid_change", "process", "change"),
    ("session_id_change", "process", "change"),
    ("load_module", "process", "start"),
    ("connection_attempted", "network", "start"),
    ("connection_accepted", "network", "start"),
    ("creation", "file", "creation"),
    ("deletion", "file", "deletion"),
    ("rename", "file", "change"),
];

/// A schema with the planned kinds and fields, so these tests do not wait
/// for them in `fields`.
fn planned_schema() -> Schema {
    let text = |s: &str| Value::Str(Cow::Owned(s.to_owned()));
    let fields = [
        "event.category",
        "event.type",
        "event.action",
        "user.id",
        "process.user.id",
        "process.real_user.id",
        "process.name",
        "process.executable",
        "process.args",
        "process.entity_id",
        "process.parent.pid",
        "process.parent.name",
        "process.parent.executable",
        "file.path",
        "destination.ip",
    ];
    Schema {
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        categories: ["process", "network", "file"].map(String::from).to_vec(),
        kinds: PLANNED_KINDS
            .iter()
            .map(|(action, category, kind)| {
                vec![
                    ("event.action".to_owned(), text(action)),
                    (
                        "event.category".to_owned(),
                        Value::List(vec![text(category)]),
                    ),
                    ("event.type".to_owned(), Value::List(vec![text(kind)])),
                ]
            })
            .collect(),
    }
}

fn rule(name: &str, query: &str) -> Rule {
    let text = format!(
        "[rule]\nauthor = [\"test\"]\ndescription = \"d\"\nname = \"{name}\"\nrisk_score = 21\n\
         rule_id = \"{name}\"\nseverity = \"low\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
    );
    parse_rule(&text, name, &planned_schema()).unwrap_or_else(|e| panic!("{e}"))
}

fn builtin(schema: &Schema) -> Rule {
    parse_rule(BUILTIN[0].1, "built-in", schema).unwrap()
}

/// (action, root_only) of each kind needed, in order.
fn summary(needs: &Needs) -> Vec<(&str, bool)> {
    needs
        .kinds
        .iter()
        .map(|k| (k.action.as_str(), k.root_only))
        .collect()
}

#[test]
fn the_builtin_rule_needs_root_connects_and_setsids() {
    for schema in [crate::fields::schema(), planned_schema()] {
        let needs = needs(&[builtin(&schema)], &schema);
        let mut got = summary(&needs);
        got.sort_unstable();
        assert_eq!(
            got,
            [("connection_attempted", true), ("session_id_change", true)]
        );
        let connect = needs.get("connection_attempted").unwrap();
        assert_eq!(
            connect.rules,
            ["Suspicious Network Connection Attempt by Root"]
        );
        assert!(connect.process_table.is_empty());
    }
}

#[test]
fn an_exec_rule_for_root_needs_root_execs_only() {
    let r = rule(
        "root exec",
        r#"process where event.action == "exec" and user.id == "0""#,
    );
    let needs = needs(&[r], &planned_schema());
    assert_eq!(summary(&needs), [("exec", true)]);
    assert_eq!(
        needs.kinds[0].describe(),
        r#"root only (euid 0): 1 rule ("root exec")"#
    );
}

#[test]
fn a_rule_for_everyone_needs_every_user() {
    let r = rule(
        "nc",
        r#"process where event.type == "start" and process.name == "nc""#,
    );
    let needs = needs(&[r], &planned_schema());
    assert_eq!(
        summary(&needs),
        [("exec", false), ("fork", false), ("load_module", false)]
    );
}

#[test]
fn root_in_one_rule_and_anyone_in_another_is_everyone() {
    let root = rule(
        "root",
        r#"process where event.action == "exec" and user.id == "0""#,
    );
    let anyone = rule(
        "anyone",
        r#"process where event.action == "exec" and user.id != "0""#,
    );
    let needs = needs(&[root, anyone], &planned_schema());
    assert_eq!(summary(&needs), [("exec", false)]);
    assert_eq!(needs.kinds[0].rules, ["root", "anyone"]);
}

/// A rule for one unusual uid is not root's: the uid it names is tried too.
#[test]
fn a_rule_for_another_uid_is_not_root_only() {
    let r = rule(
        "uid 4242",
        r#"process where event.action == "exec" and process.user.id in ("0", "4242")"#,
    );
    assert_eq!(summary(&needs(&[r], &planned_schema())), [("exec", false)]);
}

/// Root by real uid is not root by effective uid: euid=0 alone would drop a
/// process that lowered only its effective uid, which the rule still wants,
/// so the kernel keeps uid=0 too. A rule about non-root real uids needs
/// every user.
#[test]
fn a_real_uid_of_root_is_not_an_effective_one() {
    let r = rule(
        "real root",
        r#"process where event.action == "exec" and process.real_user.id == "0""#,
    );
    let n = needs(&[r], &planned_schema());
    assert_eq!(summary(&n), [("exec", true)]);
    assert!(n.kinds[0].real_root);
    assert!(
        n.kinds[0]
            .describe()
            .starts_with("root only (euid 0, or uid 0)"),
        "{}",
        n.kinds[0].describe()
    );
    let effective = rule(
        "effective root",
        r#"process where event.action == "exec" and user.id == "0""#,
    );
    let n = needs(&[effective], &planned_schema());
    assert_eq!(summary(&n), [("exec", true)]);
    assert!(!n.kinds[0].real_root);
    let not_root = rule(
        "dropped",
        r#"process where event.action == "exec" and process.real_user.id != "0""#,
    );
    assert_eq!(
        summary(&needs(&[not_root], &planned_schema())),
        [("exec", false)]
    );
}

#[test]
fn parent_fields_need_the_process_table_for_every_user() {
    let r = rule(
        "parent",
        r#"process where event.action == "exec" and user.id == "0" and process.parent.name == "sshd""#,
    );
    let needs = needs(&[r], &planned_schema());
    assert_eq!(
        summary(&needs),
        [("exec", false), ("fork", false), ("end", false)]
    );
    assert_eq!(needs.kinds[0].rules, ["parent"]);
    assert_eq!(needs.kinds[1].rules, Vec::<String>::new());
    assert_eq!(needs.kinds[2].process_table, ["parent"]);
    assert_eq!(
        needs.kinds[1].describe(),
        r#"all users: the process table (parent fields read by "parent")"#
    );
}

#[test]
fn the_parent_pid_is_the_event_s_own() {
    let r = rule(
        "ppid",
        r#"process where event.action == "exec" and user.id == "0" and process.parent.pid == 1"#,
    );
    assert_eq!(summary(&needs(&[r], &planned_schema())), [("exec", true)]);
}

#[test]
fn until_events_are_needed_too() {
    let r = rule(
        "until",
        r#"sequence by process.entity_id
             [process where event.action == "exec" and user.id == "0"]
             [network where event.action == "connection_attempted" and user.id == "0"]
           until [process where event.action == "end"]"#,
    );
    let needs = needs(&[r], &planned_schema());
    assert_eq!(
        summary(&needs),
        [
            ("exec", true),
            ("end", false),
            ("connection_attempted", true)
        ]
    );
}

#[test]
fn long_lists_of_rules_are_counted() {
    let rules: Vec<Rule> = (1..=5)
        .map(|i| rule(&format!("r{i}"), r#"file where event.action == "creation""#))
        .collect();
    let needs = needs(&rules, &planned_schema());
    assert_eq!(
        needs.kinds[0].describe(),
        r#"all users: 5 rules ("r1", "r2", "r3", and 2 more)"#
    );
}
