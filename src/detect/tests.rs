//! Sequence semantics of the built-in rule, one case per property of
//! Elasticsearch's SequenceMatcher that DESIGN.md lists.

use std::time::Duration;

use super::*;
use crate::normalize::{
    AuditFields, AuditSource, EventFields, ParentFields, ProcessFields, UserFields,
};
use crate::parse::Timestamp;

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
        process: ProcessFields {
            pid: 1,
            entity_id: entity.into(),
            executable: Some("/tmp/actor".into()),
            name: Some("actor".into()),
            parent: ParentFields { pid: 0 },
        },
        user: UserFields { id: "0".into() },
        destination: None,
        network: None,
        audetect: AuditFields {
            audit: AuditSource {
                serial,
                syscall: "connect",
                exit: 0,
                entity_source: "procfs",
            },
        },
        time: Timestamp {
            sec: ms / 1000,
            msec: (ms % 1000) as u16,
        },
    }
}

fn connect(entity: &str, ms: u64, serial: u64) -> EcsEvent {
    event("connection_attempted", entity, ms, serial)
}

fn setsid(entity: &str, ms: u64, serial: u64) -> EcsEvent {
    event("session_id_change", entity, ms, serial)
}

fn run(d: &mut Detector, evs: Vec<EcsEvent>) -> Vec<Match> {
    evs.into_iter().filter_map(|e| d.on_event(e)).collect()
}

#[test]
fn connect_then_setsid_matches_once() {
    let mut d = Detector::new(SEED_MAXSPAN);
    let m = run(
        &mut d,
        vec![
            connect("a", 1_000, 1),
            setsid("a", 1_010, 2),
            setsid("a", 1_020, 3),
        ],
    );
    assert_eq!(m.len(), 1, "one first stage completes at most one sequence");
    assert_eq!(m[0].events[0].audetect.audit.serial, 1);
    assert_eq!(m[0].events[1].audetect.audit.serial, 2);
}

#[test]
fn newer_first_stage_replaces_the_older() {
    let mut d = Detector::new(SEED_MAXSPAN);
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
    assert_eq!(d.stats().sequences_replaced, 1);
}

#[test]
fn join_key_must_match() {
    let mut d = Detector::new(SEED_MAXSPAN);
    assert!(run(&mut d, vec![connect("a", 1_000, 1), setsid("b", 1_010, 2)]).is_empty());
}

#[test]
fn setsid_before_connect_does_not_match() {
    let mut d = Detector::new(SEED_MAXSPAN);
    assert!(run(&mut d, vec![setsid("a", 1_000, 1), connect("a", 1_010, 2)]).is_empty());
}

#[test]
fn stage_two_must_come_strictly_after() {
    let mut d = Detector::new(SEED_MAXSPAN);
    // Same millisecond: the serial orders them.
    assert!(run(&mut d, vec![connect("a", 1_000, 5), setsid("a", 1_000, 4)]).is_empty());
    assert_eq!(run(&mut d, vec![setsid("a", 1_000, 6)]).len(), 1);
}

#[test]
fn maxspan_is_inclusive() {
    let mut d = Detector::new(Duration::from_secs(60));
    assert_eq!(
        run(&mut d, vec![connect("a", 0, 1), setsid("a", 60_000, 2)]).len(),
        1
    );
    let mut d = Detector::new(Duration::from_secs(60));
    assert!(run(&mut d, vec![connect("a", 0, 1), setsid("a", 60_001, 2)]).is_empty());
}

#[test]
fn root_only_and_excluded_executables() {
    let mut d = Detector::new(SEED_MAXSPAN);
    let mut c = connect("a", 0, 1);
    c.user.id = "1000".into();
    assert!(run(&mut d, vec![c, setsid("a", 10, 2)]).is_empty());
    for exe in [
        "/usr/sbin/sshd",
        "/USR/SBIN/SSHD",
        "/usr/lib/systemd/systemd",
    ] {
        let mut c = connect("x", 0, 1);
        c.process.executable = Some(exe.into());
        let mut d = Detector::new(SEED_MAXSPAN);
        assert!(run(&mut d, vec![c, setsid("x", 10, 2)]).is_empty(), "{exe}");
    }
    // The exclusion is evaluated per event: an excluded setsid spoils it too.
    let mut s = setsid("y", 10, 2);
    s.process.executable = Some("/usr/sbin/sshd".into());
    let mut d = Detector::new(SEED_MAXSPAN);
    assert!(run(&mut d, vec![connect("y", 0, 1), s]).is_empty());
}

#[test]
fn pending_sequences_expire_so_memory_is_bounded() {
    let mut d = Detector::new(Duration::from_secs(60));
    for i in 0..1000 {
        d.on_event(connect(&format!("p{i}"), i, i));
    }
    assert_eq!(d.stats().pending, 1000);
    d.on_event(setsid("nobody", 200_000, 5000));
    assert_eq!(d.stats().pending, 0);
    assert_eq!(d.stats().sequences_expired, 1000);
}

#[test]
fn wildcards_are_case_insensitive() {
    assert!(wildcard_match_ci("/usr/*/ss?d", "/USR/sbin/sshd"));
    assert!(wildcard_match_ci("*", ""));
    assert!(!wildcard_match_ci("/bin/ssh", "/bin/sshd"));
    assert!(wildcard_match_ci("*ssh*", "/opt/ssh/x"));
    assert!(!wildcard_match_ci("a?", "a"));
}
