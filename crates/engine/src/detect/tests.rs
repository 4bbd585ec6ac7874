//! The built-in rule, loaded from its TOML, on hand-made events: the
//! verdicts issue 2 lists, and max_signals per window.

use super::*;
use std::sync::Arc;

use crate::normalize::{
    AuditFields, AuditSource, EventFields, GroupFields, Host, ParentFields, ProcessFields,
    UserFields,
};
use crate::parse::Timestamp;
use crate::process::Image;
use crate::rulefile::{parse_rule, BUILTIN};

fn seed() -> Rule {
    parse_rule(BUILTIN[0].1, "built-in", &crate::fields::schema()).unwrap()
}

fn event(action: &'static str, entity: &str, ms: u64, serial: u64) -> EcsEvent {
    let (category, kind) = if action == "connection_attempted" {
        ("network", "start")
    } else {
        ("process", "change")
    };
    EcsEvent {
        timestamp: String::new(),
        event: EventFields {
            kind: "event",
            category: vec![category],
            kind_of_change: vec![kind],
            action,
            outcome: "success",
        },
        host: Arc::new(Host::new("i", "h")),
        process: ProcessFields {
            pid: 1,
            entity_id: entity.into(),
            entity: crate::process::EntityId::fallback("b", 1, entity),
            image: image("/tmp/actor"),
            entry_leader: None,
            working_directory: None,
            interactive: false,
            exit_code: None,
            parent: ParentFields::pid_only(0),
        },
        user: UserFields::new(0, 0),
        group: GroupFields::new(0, 0),
        file: None,
        source: None,
        destination: None,
        network: None,
        audetect: AuditFields {
            audit: AuditSource {
                serial,
                syscall: "connect",
                exit: 0,
                entity_source: "procfs",
                args_truncated: false,
            },
        },
        time: Timestamp {
            sec: ms / 1000,
            msec: (ms % 1000) as u16,
        },
        wall_sec: ms / 1000,
    }
}

fn image(exe: &str) -> Arc<Image> {
    Arc::new(Image::new(Some(exe.into()), None, None, false, None))
}

fn connect(entity: &str, ms: u64, serial: u64) -> EcsEvent {
    event("connection_attempted", entity, ms, serial)
}

fn setsid(entity: &str, ms: u64, serial: u64) -> EcsEvent {
    event("session_id_change", entity, ms, serial)
}

fn run(d: &mut Detector, evs: Vec<EcsEvent>) -> Vec<Match> {
    let mut out = Vec::new();
    for e in evs {
        d.on_event(&e, &mut out);
    }
    out
}

fn seed_detector() -> Detector {
    Detector::new(vec![seed()], 10_000)
}

#[test]
fn seed_rule_metadata_comes_from_its_file() {
    let rule = seed();
    assert_eq!(rule.meta.id, "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    assert_eq!(
        rule.meta.name,
        "Suspicious Network Connection Attempt by Root"
    );
    assert_eq!(rule.meta.severity, "medium");
    assert_eq!(rule.meta.risk_score, 47);
    assert_eq!(rule.meta.version, 100);
    assert_eq!(rule.meta.max_signals, 100);
    assert_eq!(rule.meta.threat[0]["tactic"]["id"], "TA0011");
    assert_eq!(rule.meta.threat[0]["technique"][0]["id"], "T1095");
    assert_eq!(rule.meta.threat[1]["tactic"]["id"], "TA0004");
    assert_eq!(
        rule.meta.threat[1]["technique"][0]["subtechnique"][0]["id"],
        "T1548.003"
    );
    assert!(rule.query.is_sequence());
}

#[test]
fn connect_then_setsid_matches_once() {
    let mut d = seed_detector();
    let m = run(
        &mut d,
        vec![
            connect("a", 1_000, 1),
            setsid("a", 1_010, 2),
            setsid("a", 1_020, 3),
        ],
    );
    assert_eq!(m.len(), 1, "one first stage completes at most one sequence");
    assert_eq!(m[0].rule.id, "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    let serials: Vec<u64> = m[0]
        .events
        .iter()
        .map(|e| e.audetect.audit.serial)
        .collect();
    assert_eq!(serials, [1, 2]);
}

#[test]
fn newer_first_stage_replaces_the_older() {
    let mut d = seed_detector();
    let m = run(
        &mut d,
        vec![
            connect("a", 1_000, 1),
            connect("a", 2_000, 2),
            setsid("a", 3_000, 3),
        ],
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].events[0].audetect.audit.serial, 2);
}

#[test]
fn join_key_order_and_maxspan() {
    let mut d = seed_detector();
    assert!(run(&mut d, vec![connect("a", 1_000, 1), setsid("b", 1_010, 2)]).is_empty());
    assert!(run(&mut d, vec![setsid("c", 1_000, 3), connect("c", 1_010, 4)]).is_empty());
    let mut d = seed_detector();
    assert_eq!(
        run(&mut d, vec![connect("e", 0, 1), setsid("e", 60_000, 2)]).len(),
        1,
        "inclusive"
    );
    let mut d = seed_detector();
    assert!(run(&mut d, vec![connect("f", 0, 1), setsid("f", 60_001, 2)]).is_empty());
}

#[test]
fn root_only_and_excluded_executables() {
    let mut d = seed_detector();
    let mut c = connect("a", 0, 1);
    c.user.id = "1000".into();
    assert!(run(&mut d, vec![c, setsid("a", 10, 2)]).is_empty());
    for exe in [
        "/usr/sbin/sshd",
        "/USR/SBIN/SSHD",
        "/usr/lib/systemd/systemd",
    ] {
        let mut c = connect("x", 0, 1);
        c.process.image = image(exe);
        let mut d = seed_detector();
        assert!(run(&mut d, vec![c, setsid("x", 10, 2)]).is_empty(), "{exe}");
    }
    let mut s = setsid("y", 10, 2);
    s.process.image = image("/usr/sbin/sshd");
    let mut d = seed_detector();
    assert!(run(&mut d, vec![connect("y", 0, 1), s]).is_empty());
}

#[test]
fn max_signals_caps_alerts_per_window_and_counts_the_rest() {
    let text = BUILTIN[0].1.replace("max_signals = 100", "max_signals = 2");
    let rule = parse_rule(&text, "t", &crate::fields::schema()).unwrap();
    let mut d = Detector::new(vec![rule], 10_000);
    let mut evs = Vec::new();
    for i in 0..5u64 {
        let id = format!("p{i}");
        evs.push(connect(&id, 1_000 + i * 10, 2 * i));
        evs.push(setsid(&id, 1_001 + i * 10, 2 * i + 1));
    }
    assert_eq!(run(&mut d, evs).len(), 2);
    assert_eq!(d.stats().matches, 5);
    assert_eq!(d.stats().suppressed, 3);
    let suppressed = d.take_suppressed();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].1, 3);
    assert!(d.take_suppressed().is_empty(), "reported once");
    // The next 5-minute window starts afresh.
    let later = WINDOW_MS * 2;
    let m = run(
        &mut d,
        vec![connect("q", later, 100), setsid("q", later + 1, 101)],
    );
    assert_eq!(m.len(), 1);
}

/// A rule of `query` whose every match is an alert.
fn query_rule(name: &str, query: &str) -> Rule {
    let text = format!(
        "[rule]\nauthor = [\"test\"]\ndescription = \"d\"\nname = \"{name}\"\nrisk_score = 21\n\
         rule_id = \"{name}\"\nseverity = \"low\"\ntype = \"eql\"\nmax_signals = 100000000\n\
         query = '''\n{query}\n'''\n"
    );
    parse_rule(&text, name, &crate::fields::schema()).unwrap_or_else(|e| panic!("{e}"))
}

/// Rules for each way the index files a rule: by an exact, folded, prefix
/// or suffix value of each indexed field, under `or` and `and`, sequences
/// whose stages are of other kinds, and rules it cannot file.
fn indexed_rules() -> Vec<Rule> {
    [
        r#"process where event.type == "start" and process.name == "touch""#,
        r#"process where process.name : ("BASH", "py*", "*.sh") and event.action == "exec""#,
        r#"process where process.name in~ ("TRUE", "SH") or process.parent.name == "bash""#,
        r#"process where process.args : ("-c", "exit*") and not process.name == "sh""#,
        r#"process where process.executable like~ "/usr/*" and process.parent.name like "*sh""#,
        r#"process where not process.name == "touch""#,
        r#"process where process.name regex "t.*""#,
        r#"any where event.action == "exec" or file.extension : "SH""#,
        r#"file where file.name : ("created.*", "*.sh") or file.path like "/tmp/*""#,
        r#"file where event.action == "rename" and process.name != "mv""#,
        r#"network where process.name : "python*" and destination.port > 0"#,
        r#"sequence by process.entity_id with maxspan=1m
             [process where event.action == "exec" and process.name : "python*"]
             [network where event.action in ("connection_attempted", "connection_accepted")]"#,
        r#"sequence by host.id with maxspan=5m
             [process where process.name == "touch"]
             [file where file.name == "created.sh"]
           until [process where process.name == "rmdir"]"#,
        r#"sample by host.id
             [process where process.name == "mv"]
             [file where event.action == "deletion"]"#,
    ]
    .iter()
    .enumerate()
    .map(|(i, q)| query_rule(&format!("indexed {i}"), q))
    .collect()
}

/// Sets an indexed field of an event, so events can carry each value the
/// rules name.
fn set_field(e: &mut EcsEvent, field: &str, value: &str) {
    let mut image = (*e.process.image).clone();
    let mut parent = e
        .process
        .parent
        .image
        .as_deref()
        .cloned()
        .unwrap_or_default();
    let file = e.file.get_or_insert_with(|| crate::normalize::FileFields {
        name: crate::normalize::FileName::new("/x".into()),
        ext: None,
    });
    match field {
        "process.name" => image.name = Some(value.into()),
        "process.executable" => image.executable = Some(value.into()),
        "process.args" => image.args = Some(vec![value.into(), "-x".into()]),
        "process.parent.name" => parent.name = Some(value.into()),
        "process.parent.executable" => parent.executable = Some(value.into()),
        "file.name" => file.name.name = value.into(),
        "file.extension" => file.name.extension = Some(value.into()),
        "file.path" => file.name.path = value.into(),
        other => panic!("set_field does not know the indexed field {other}"),
    }
    e.process.image = Arc::new(image);
    e.process.parent.image = Some(Arc::new(parent));
}

/// The fixtures' events, then one event per value the index files a rule
/// under, of a kind the value is filed for, with that value (a folded key
/// in upper case, a prefix and a suffix with more around them): once 10 ms
/// apart, so that sequences join them, then once at 10-minute steps.
fn varied_events(d: &Detector) -> Vec<EcsEvent> {
    let base: Vec<EcsEvent> = crate::testkit::scenario_ecs()
        .iter()
        .chain(crate::testkit::kinds_ecs())
        .cloned()
        .collect();
    // Per kind, then taken in turns, so that events of different kinds follow each other.
    let mut per_kind: Vec<Vec<EcsEvent>> = Vec::new();
    for (k, bucket) in d.index.kinds.iter().enumerate() {
        let mut variants = Vec::new();
        let Some((action, _, _)) = crate::fields::KINDS.get(k) else {
            continue;
        };
        let Some(model) = base.iter().find(|e| e.event.action == *action) else {
            continue;
        };
        for (at, keys) in &bucket.fields {
            let mut values: Vec<String> = keys.exact.keys().map(|v| v.to_string()).collect();
            values.extend(keys.folded.keys().map(|v| v.to_uppercase()));
            for (i, a) in keys.affixes.iter().enumerate() {
                values.extend(a.rules.keys().map(|v| match i {
                    PREFIX => format!("{v}zz"),
                    FOLDED_PREFIX => format!("{}zz", v.to_uppercase()),
                    SUFFIX => format!("zz{v}"),
                    _ => format!("zz{}", v.to_uppercase()),
                }));
            }
            for v in values {
                let mut e = model.clone();
                set_field(&mut e, INDEX_FIELDS[*at], &v);
                variants.push(e);
            }
        }
        per_kind.push(variants);
    }
    let most = per_kind.iter().map(Vec::len).max().unwrap_or(0);
    let variants: Vec<EcsEvent> = (0..most)
        .flat_map(|i| per_kind.iter().filter_map(move |v| v.get(i)))
        .cloned()
        .collect();
    let mut out = base;
    let mut t = out.iter().map(|e| e.time.as_millis()).max().unwrap_or(0);
    let mut serial = out
        .iter()
        .map(|e| e.audetect.audit.serial)
        .max()
        .unwrap_or(0);
    for step in [10, WINDOW_MS * 2] {
        for e in &variants {
            let mut e = e.clone();
            t += step;
            serial += 1;
            e.time = Timestamp {
                sec: t / 1000,
                msec: (t % 1000) as u16,
            };
            e.audetect.audit.serial = serial;
            out.push(e);
        }
    }
    out
}

/// What each rule's own matcher makes of every event, in the detector's
/// order: per event, the rules in load order; each match as (rule, serials).
fn unindexed(rules: &[Rule], events: &[EcsEvent]) -> Vec<(String, Vec<u64>)> {
    let mut matchers: Vec<Matcher<EcsEvent>> = rules
        .iter()
        .map(|r| Matcher::with_limits(Arc::clone(&r.query), 10_000, 10_000))
        .collect();
    let mut out = Vec::new();
    for e in events {
        for (r, m) in rules.iter().zip(&mut matchers) {
            for events in m.on_event(e) {
                out.push((r.meta.id.clone(), serials(&events)));
            }
        }
    }
    out
}

fn serials(events: &[EcsEvent]) -> Vec<u64> {
    events.iter().map(|e| e.audetect.audit.serial).collect()
}

/// The detector's matches against every rule's own matcher fed every
/// event: the index and the filters specialized to each kind change which
/// rules see an event, never what matches.
fn check_index_changes_no_match(rules: Vec<Rule>) -> usize {
    let mut d = Detector::new(rules.clone(), 10_000);
    let events = varied_events(&d);
    let want = unindexed(&rules, &events);
    let got: Vec<(String, Vec<u64>)> = run(&mut d, events)
        .iter()
        .map(|m| (m.rule.id.clone(), serials(&m.events)))
        .collect();
    assert_eq!(got.len(), want.len(), "as many matches");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    want.len()
}

#[test]
fn the_index_changes_no_match() {
    let matches = check_index_changes_no_match(indexed_rules());
    assert!(matches > 20, "the events match the rules: {matches}");
}

#[test]
fn the_index_files_most_rules_under_a_value() {
    let d = Detector::new(indexed_rules(), 10_000);
    let exec = &d.index.kinds[0];
    // `not process.name == "touch"`, the regex and the two rules that pass
    // every exec (`event.action == "exec" or ...`, the sequence's first
    // stage is filed under python*) see every exec.
    let names = |slots: &[usize]| -> Vec<String> {
        slots
            .iter()
            .map(|&s| {
                let name = &d.running[s / 2].rule.meta.name;
                if s % 2 == 1 {
                    format!("{name} (while it holds partials)")
                } else {
                    name.clone()
                }
            })
            .collect()
    };
    assert_eq!(
        names(&exec.any),
        ["indexed 5", "indexed 6", "indexed 7"],
        "the rules filed under no value"
    );
    // The sequence's later stages are connects: an exec is for its first
    // stage alone, filed under python*; its until and second stage are
    // filed apart.
    let connect = &d.index.kinds[7];
    assert_eq!(crate::fields::KINDS[7].0, "connection_attempted");
    assert!(names(&connect.any).contains(&"indexed 11 (while it holds partials)".to_string()));
    assert!(!names(&connect.any).contains(&"indexed 11".to_string()));
}

/// Elastic's Linux rules, when the pack is here ($AUDETECT_PACK, else
/// /work/shared/elastic-rules), against the fixtures and an event for
/// each value they are filed under.
#[test]
fn the_index_changes_no_match_of_elastics_rules() {
    let dir = std::env::var_os("AUDETECT_PACK")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/work/shared/elastic-rules".into());
    let mut texts = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                texts.push(path);
            }
        }
    }
    if texts.is_empty() {
        eprintln!(
            "skipped: Elastic's rule pack is not at {} (set AUDETECT_PACK to a directory of its rules)",
            dir.display()
        );
        return;
    }
    texts.sort();
    let files = texts.into_iter().map(|path| {
        // Every match an alert, to compare them all.
        let text: String = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("max_signals ="))
            .map(|l| match l {
                "[rule]" => "[rule]\nmax_signals = 100000000\n".to_string(),
                other => format!("{other}\n"),
            })
            .collect();
        Ok(crate::rulefile::RuleText {
            path,
            text,
            found_in_dir: true,
        })
    });
    let set = crate::rulefile::compile(false, files, &crate::fields::schema()).unwrap();
    assert!(set.rules.len() > 200, "{} rules", set.rules.len());
    let matches = check_index_changes_no_match(set.rules);
    assert!(matches > 50, "the events match the rules: {matches}");
}

#[test]
fn every_event_is_of_its_kind_as_the_schema_says() {
    // Filters are specialized to what the kind fixes (category, type, ...):
    // the normalizer must make events so.
    let schema = crate::fields::schema();
    for e in crate::testkit::scenario_ecs()
        .iter()
        .chain(crate::testkit::kinds_ecs())
    {
        let k = crate::fields::KINDS
            .iter()
            .position(|(a, _, _)| *a == e.event.action)
            .unwrap_or_else(|| panic!("{} is no kind", e.event.action));
        for (field, value) in &schema.kinds[k] {
            let have = crate::eql::Event::field(e, field);
            let same = match (&have, value) {
                (crate::eql::Value::Str(a), crate::eql::Value::List(b)) => {
                    b.len() == 1 && b[0] == crate::eql::Value::Str(a.clone())
                }
                (a, b) => a == b,
            };
            assert!(
                same,
                "{}: {field} is {have:?}, its kind says {value:?}",
                e.event.action
            );
        }
    }
}

/// An event of kind `action` (from a fixture event of that kind, so its
/// category and type are the kind's) by process `entity` named `name`.
fn like(action: &str, entity: &str, name: &str, ms: u64, serial: u64) -> EcsEvent {
    let model = crate::testkit::kinds_ecs()
        .iter()
        .find(|e| e.event.action == action)
        .unwrap_or_else(|| panic!("no {action} in the fixture"));
    let mut e = model.clone();
    e.process.entity_id = entity.into();
    set_field(&mut e, "process.name", name);
    e.time = Timestamp {
        sec: ms / 1000,
        msec: (ms % 1000) as u16,
    };
    e.audetect.audit.serial = serial;
    e
}

#[test]
fn sequences_skipped_while_they_hold_nothing_match_as_if_fed_everything() {
    let rules: Vec<Rule> = [
        // Later stages that any exec passes: offered while a curl waits.
        r#"sequence by process.entity_id with maxspan=30s
             [process where event.action == "exec" and process.name == "curl"]
             [process where event.action == "exec"]
           until [process where event.action == "end"]"#,
        r#"sequence by process.entity_id with maxspan=1m
             [process where event.action == "exec" and process.name : "BASH"] with runs=2
             [network where event.action == "connection_attempted"]"#,
        r#"sequence with maxspan=20s
             [process where event.action == "fork" and process.name like~ "py*"]
             [process where event.action == "end" and process.name == "ls"]
             [any where true]"#,
        r#"sequence by process.entity_id
             [process where process.name == "ls"]
             [process where process.name == "curl"]
           until [network where true]"#,
        r#"sample by process.entity_id
             [process where process.name == "curl"]
             [network where true]"#,
    ]
    .iter()
    .enumerate()
    .map(|(i, q)| query_rule(&format!("sequence {i}"), q))
    .collect();
    let actions = ["exec", "fork", "end", "connection_attempted"];
    let names = ["curl", "ls", "bash", "python3", "BASH"];
    let entities = ["a", "b", "c"];
    // A fixed pseudo-random stream: the same every run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut t = 1_000_000;
    let events: Vec<EcsEvent> = (0..3000)
        .map(|i| {
            t += [0, 1, 100, 4_000, 25_000][next(5)];
            like(
                actions[next(4)],
                entities[next(3)],
                names[next(5)],
                t,
                i + 1,
            )
        })
        .collect();
    let want = unindexed(&rules, &events);
    let mut d = Detector::new(rules, 10_000);
    let got: Vec<(String, Vec<u64>)> = run(&mut d, events)
        .iter()
        .map(|m| (m.rule.id.clone(), serials(&m.events)))
        .collect();
    for i in 0..5 {
        let id = format!("sequence {i}");
        assert!(
            want.iter().filter(|w| w.0 == id).count() > 3,
            "{id} matches a few times"
        );
    }
    assert_eq!(got, want);
}
