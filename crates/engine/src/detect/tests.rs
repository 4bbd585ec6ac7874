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
