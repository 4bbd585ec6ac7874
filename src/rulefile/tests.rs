//! Rule files: the built-in one, overrides from rule_paths, and the errors
//! that name the file, the rule, the line and what is wrong.

use super::*;
use crate::fields::schema;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("audetect-rulefile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SEED: &str = BUILTIN[0].1;

fn single(name: &str, id: &str, query: &str) -> String {
    format!(
        "[metadata]\nmaturity = \"production\"\n\n[rule]\nauthor = [\"test\"]\ndescription = \"d\"\nname = \"{name}\"\nrisk_score = 21\nrule_id = \"{id}\"\nseverity = \"low\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
    )
}

#[test]
fn builtin_loads_and_a_file_with_its_id_replaces_it() {
    let rules = load(true, &[], &schema()).unwrap().rules;
    let origins: Vec<&str> = rules.iter().map(|r| r.meta.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "built-in suspicious_network_connection_attempt_by_root.toml",
            "built-in root_connection_with_a_lowered_effective_uid.toml",
            "built-in root_session_with_a_lowered_effective_uid.toml",
        ]
    );

    let dir = Dir::new("override");
    let tuned = SEED.replace(
        "\"/usr/sbin/sshd\")]",
        "\"/usr/sbin/sshd\", \"/opt/rterm/bin/rtermd\")]",
    );
    assert_ne!(tuned, SEED);
    std::fs::write(dir.0.join("seed.toml"), &tuned).unwrap();
    std::fs::write(
        dir.0.join("other.toml"),
        single("Mine", "my-1", "process where process.name == \"x\""),
    )
    .unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not a rule").unwrap();
    let rules = load(true, std::slice::from_ref(&dir.0), &schema())
        .unwrap()
        .rules;
    let names: Vec<&str> = rules.iter().map(|r| r.meta.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Suspicious Network Connection Attempt by Root",
            "Suspicious Network Connection Attempt by Root with a Lowered Effective UID",
            "Suspicious Session Start by Root with a Lowered Effective UID",
            "Mine"
        ]
    );
    assert!(
        rules[0].meta.origin.ends_with("seed.toml"),
        "{}",
        rules[0].meta.origin
    );

    let only_files = load(false, std::slice::from_ref(&dir.0), &schema())
        .unwrap()
        .rules;
    assert_eq!(only_files.len(), 2);
}

#[test]
fn missing_paths() {
    let default = PathBuf::from(super::DEFAULT_RULE_DIR);
    if default.exists() {
        crate::test_skip::skip(
            "missing_paths (the default directory missing is fine)",
            format_args!("{} exists on this host", default.display()),
        );
    } else {
        assert_eq!(
            load(true, &[default], &schema()).unwrap().rules.len(),
            BUILTIN.len()
        );
    }
    let missing = PathBuf::from("/nonexistent/audetect-rules");
    let e = load(true, &[missing], &schema()).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/audetect-rules"), "{e}");
}

#[test]
fn two_files_with_one_id_is_an_error() {
    let dir = Dir::new("dup");
    let rule = single("A", "same-id", "any where true");
    std::fs::write(dir.0.join("a.toml"), &rule).unwrap();
    std::fs::write(dir.0.join("b.toml"), rule.replace("\"A\"", "\"B\"")).unwrap();
    let e = load(false, std::slice::from_ref(&dir.0), &schema())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("b.toml") && e.contains("same-id") && e.contains("a.toml"),
        "{e}"
    );
}

#[test]
fn errors_name_file_rule_line_and_problem() {
    let e = parse_rule("[rule\nname = 1", "x.toml", &schema())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.toml: ") && e.contains("line 1"), "{e}");

    let text = single("Wrong", "w", "process where process.env_vars : \"*sh*\"");
    let e = parse_rule(&text, "w.toml", &schema()).unwrap_err();
    assert!(
        matches!(e, RuleError::Unsupported { .. }),
        "a skip, not a failure: {e}"
    );
    let e = e.to_string();
    assert!(
        e.starts_with("w.toml: rule \"Wrong\": skipped: query, line 13"),
        "{e}"
    );
    assert!(e.contains("process.env_vars"), "{e}");
    assert!(
        e.contains("process.executable"),
        "lists the fields audetect supplies: {e}"
    );

    let text = single("Bad", "b", "process where (");
    let e = parse_rule(&text, "b.toml", &schema())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("b.toml: rule \"Bad\": query, line 13"), "{e}");

    let e = parse_rule(
        &single("T", "t", "any where true").replace("type = \"eql\"", "type = \"query\""),
        "t.toml",
        &schema(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("type \"query\" is not supported"), "{e}");

    let e = parse_rule(
        &single("S", "s", "any where true").replace("\"low\"", "\"urgent\""),
        "s.toml",
        &schema(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("severity \"urgent\""), "{e}");
}

/// The alerts each rule (by id) raises over tests/fixtures/scenarios.log.
fn alerts_over_scenarios(rules: Vec<Rule>) -> std::collections::BTreeMap<String, usize> {
    use crate::normalize::Host;
    use crate::pipeline::Pipeline;
    use crate::process::NoProc;
    const SCENARIOS: &str = include_str!("../../tests/fixtures/scenarios.log");
    let mut counts: std::collections::BTreeMap<String, usize> =
        rules.iter().map(|r| (r.meta.id.clone(), 0)).collect();
    let mut pipeline = Pipeline::new(NoProc, rules, 100, Host::new("i", "h"));
    let now = std::time::SystemTime::now;
    let mut emit = |a: crate::alert::Alert| {
        let doc: serde_json::Value = serde_json::from_str(&a.json).unwrap();
        *counts
            .entry(doc["rule"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    };
    for line in SCENARIOS.lines() {
        pipeline.push_log_line(line.as_bytes(), &now, &mut emit);
    }
    pipeline.flush(&now, &mut emit);
    counts
}

#[test]
fn optional_fields_audetect_lacks_are_null_not_errors() {
    for lacked in ["container.id", "process.env_vars"] {
        assert!(
            !schema().fields.iter().any(|f| f == lacked),
            "audetect now supplies {lacked}: pick a field it lacks"
        );
        // Without the ?, the field is an error that names it.
        let e = parse_rule(
            &single("Bare", "bare", &format!("process where {lacked} == \"x\"")),
            "b.toml",
            &schema(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&format!("unknown field {lacked}")), "{e}");
    }
    // With it, the field reads as null in every event: a test that null
    // passes keeps the rule's alerts, one it fails leaves none.
    let cases = [
        ("base", "process where process.name == \"actor\""),
        (
            "is-null",
            "process where ?container.id == null and process.name == \"actor\"",
        ),
        (
            "or",
            "process where ?container.id == \"c1\" or process.name == \"actor\"",
        ),
    ];
    let rules = cases
        .iter()
        .map(|(id, query)| parse_rule(&single(id, id, query), id, &schema()).unwrap())
        .collect();
    let counts = alerts_over_scenarios(rules);
    let base = counts["base"];
    assert!(base > 0, "the actor's process events alert: {counts:?}");
    assert_eq!(
        (counts["is-null"], counts["or"]),
        (base, base),
        "{counts:?}"
    );
    // A rule that needs the field to have a value can match nothing: it is
    // set aside as one audetect cannot run (load skips it), not an error.
    for query in [
        "process where ?process.env_vars != null and process.name == \"actor\"",
        "process where ?container.id == \"c1\"",
    ] {
        match parse_rule(&single("Never", "never", query), "n.toml", &schema()) {
            Err(RuleError::Unsupported { reason, .. }) => {
                assert!(reason.contains("matches no kind of event"), "{reason}")
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[test]
fn a_second_file_replacing_the_builtin_rule_is_an_error() {
    let dir = Dir::new("dup-builtin");
    std::fs::write(dir.0.join("a.toml"), SEED).unwrap();
    std::fs::write(dir.0.join("b.toml"), SEED).unwrap();
    let e = load(true, std::slice::from_ref(&dir.0), &schema())
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.toml") && e.contains("a.toml"), "{e}");
}

#[test]
fn error_columns_point_into_the_file() {
    // The query is line 13 of the file; the unknown field is its 15th character.
    let text = single("Col", "c", "process where nope == 1");
    let e = parse_rule(&text, "c.toml", &schema())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 13, column 15"), "{e}");

    // A basic string with escapes cannot be mapped column for column: the
    // message says where the query starts instead.
    let text = "[rule]\nauthor = [\"t\"]\ndescription = \"d\"\nname = \"Esc\"\nrisk_score = 1\nrule_id = \"e\"\nseverity = \"low\"\ntype = \"eql\"\nquery = \"process where process.name == \\\"a\\\" and nope == 1\"\n";
    let e = parse_rule(text, "e.toml", &schema())
        .unwrap_err()
        .to_string();
    assert!(e.contains("starts on line 9"), "{e}");
}

#[test]
fn metadata_and_other_keys_are_kept() {
    let rule = parse_rule(SEED, "seed", &schema()).unwrap();
    assert_eq!(rule.meta.other["metadata"]["maturity"], "production");
    assert_eq!(rule.meta.other["rule"]["from"], "now-9m");
    assert_eq!(
        rule.meta.other["rule"]["language"],
        serde_json::Value::Null,
        "keys audetect uses are not repeated"
    );
}

#[test]
fn a_rule_pack_tree_loads_what_audetect_can_run_and_says_why_it_skips_the_rest() {
    let dir = Dir::new("pack");
    let linux = dir.0.join("rules/linux");
    let cross = dir.0.join("rules/cross-platform");
    std::fs::create_dir_all(&linux).unwrap();
    std::fs::create_dir_all(&cross).unwrap();
    std::fs::create_dir_all(dir.0.join(".git")).unwrap();
    let runs = r#"network where event.action == "connection_attempted" and user.id == "0""#;
    std::fs::write(linux.join("a_runs.toml"), single("Runs", "r1", runs)).unwrap();
    let needs_field = r#"process where event.type == "start" and process.nonesuch : "x""#;
    std::fs::write(
        linux.join("b_field.toml"),
        single("Field", "r2", needs_field),
    )
    .unwrap();
    let needs_action = r#"process where event.action == "already_running""#;
    std::fs::write(
        linux.join("c_action.toml"),
        single("Action", "r3", needs_action),
    )
    .unwrap();
    let windows = single("Win", "r4", "any where true")
        .replace("[rule]\n", "[rule]\ntags = [\"OS: Windows\"]\n");
    std::fs::write(cross.join("d_windows.toml"), windows).unwrap();
    let query_type =
        single("KQL", "r5", "any where true").replace("type = \"eql\"", "type = \"query\"");
    std::fs::write(cross.join("e_kql.toml"), query_type).unwrap();
    let old = single("Old", "r6", runs).replace("\"production\"", "\"deprecated\"");
    std::fs::write(cross.join("f_old.toml"), old).unwrap();
    std::fs::write(dir.0.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
    std::fs::write(dir.0.join(".git/config.toml"), "not even toml [").unwrap();
    std::fs::write(dir.0.join("README.md"), "not a rule").unwrap();

    let set = load(false, std::slice::from_ref(&dir.0), &schema()).unwrap();
    let loaded: Vec<&str> = set.rules.iter().map(|r| r.meta.name.as_str()).collect();
    assert_eq!(loaded, ["Runs"]);
    let skipped: Vec<(&str, &str)> = set
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            // In path order: pyproject.toml, rules/cross-platform, rules/linux.
            ("pyproject.toml", "not a detection rule (no [rule] table)"),
            ("Win", "not a Linux rule (OS: Windows)"),
            (
                "KQL",
                "type \"query\" is not supported: audetect runs EQL rules (type = \"eql\")"
            ),
            ("Old", "maturity \"deprecated\""),
            ("Field", "unknown field process.nonesuch"),
            (
                "Action",
                "its filter needs event.action \"already_running\", which audetect does not produce"
            ),
        ]
    );
    assert_eq!(set.summary(), "rules: 1 loaded, 6 skipped");
}

#[test]
fn a_syntax_error_in_a_pack_still_refuses_the_whole_load() {
    let dir = Dir::new("pack-syntax");
    let sub = dir.0.join("linux");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("ok.toml"), single("Ok", "o1", "any where true")).unwrap();
    std::fs::write(sub.join("bad.toml"), single("Bad", "b1", "process where (")).unwrap();
    let e = load(false, std::slice::from_ref(&dir.0), &schema())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.toml") && e.contains("rule \"Bad\": query, line 13"),
        "{e}"
    );
}

#[test]
fn a_sequence_skip_names_the_stage_no_event_can_pass() {
    let q = r#"sequence by process.entity_id
  [network where event.action == "connection_attempted"]
  [process where event.action == "already_running"]"#;
    let e = parse_rule(&single("Seq", "s1", q), "s.toml", &schema()).unwrap_err();
    match e {
        RuleError::Unsupported { reason, .. } => assert_eq!(
            reason,
            "stage 2 of 2 needs event.action \"already_running\", which audetect does not produce"
        ),
        other => panic!("{other}"),
    }
}
