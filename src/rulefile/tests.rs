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
    let rules = load(true, &[], &schema()).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].meta.origin,
        "built-in suspicious_network_connection_attempt_by_root.toml"
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
    let rules = load(true, std::slice::from_ref(&dir.0), &schema()).unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.meta.name.as_str()).collect();
    assert_eq!(
        names,
        ["Suspicious Network Connection Attempt by Root", "Mine"]
    );
    assert!(
        rules[0].meta.origin.ends_with("seed.toml"),
        "{}",
        rules[0].meta.origin
    );

    let only_files = load(false, std::slice::from_ref(&dir.0), &schema()).unwrap();
    assert_eq!(only_files.len(), 2);
}

#[test]
fn missing_paths() {
    let default = PathBuf::from(super::DEFAULT_RULE_DIR);
    if !default.exists() {
        assert_eq!(load(true, &[default], &schema()).unwrap().len(), 1);
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

    let text = single(
        "Wrong",
        "w",
        "process where process.command_line : \"*sh*\"",
    );
    let e = parse_rule(&text, "w.toml", &schema())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("w.toml: rule \"Wrong\": query, line 13"),
        "{e}"
    );
    assert!(e.contains("process.command_line"), "{e}");
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

#[test]
fn optional_fields_audetect_lacks_are_null_not_errors() {
    let text = single(
        "Opt",
        "o",
        "process where ?process.parent.name == \"bash\" or process.name == \"x\"",
    );
    parse_rule(&text, "o.toml", &schema()).unwrap();
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
