//! The ECS fields audetect supplies to rules: one table (documented in
//! audetect(8) and the README, checked by tests) and how each is read from an event.
//! Rules see only the events the installed audit rules produce: connect()
//! and successful setsid() by root.

use std::borrow::Cow;

use crate::eql::{Event, Schema, Value};
use crate::normalize::EcsEvent;

/// Every field a rule may use without `?`, and where it comes from.
pub const FIELDS: &[(&str, &str)] = &[
    (
        "@timestamp",
        "the audit record's time (audit(SECONDS.MILLIS:SERIAL))",
    ),
    ("event.kind", "always \"event\""),
    (
        "event.category",
        "[\"network\"] for connect, [\"process\"] for setsid",
    ),
    (
        "event.type",
        "[\"start\"] for connect, [\"change\"] for setsid",
    ),
    (
        "event.action",
        "\"connection_attempted\" or \"session_id_change\"",
    ),
    (
        "event.outcome",
        "\"success\" (connect returned 0, setsid), else \"unknown\"",
    ),
    ("host.os.type", "always \"linux\""),
    ("process.pid", "SYSCALL pid= (the thread-group id)"),
    (
        "process.entity_id",
        "boot id, pid and start time (/proc/PID/stat field 22)",
    ),
    (
        "process.executable",
        "SYSCALL exe=, hex-decoded when audit encoded it",
    ),
    (
        "process.name",
        "the executable's file name (not the 15-byte comm)",
    ),
    ("process.parent.pid", "SYSCALL ppid="),
    ("user.id", "SYSCALL euid=, as a string"),
    ("destination.ip", "SOCKADDR saddr= (connect)"),
    ("destination.port", "SOCKADDR saddr= (connect)"),
    (
        "network.transport",
        "\"tcp\" (connect; the socket's protocol from /proc/PID/fd)",
    ),
    ("network.type", "\"ipv4\" or \"ipv6\" (connect)"),
    ("network.direction", "\"egress\" (connect)"),
    (
        "audetect.audit.syscall",
        "\"connect\", \"socketcall\" or \"setsid\"",
    ),
    (
        "audetect.audit.exit",
        "SYSCALL exit= (connect: 0 or the errno, negated)",
    ),
];

/// Event categories audetect produces.
pub const CATEGORIES: &[&str] = &["network", "process"];

/// The kinds of event audetect produces, as Elastic Defend names them:
/// event.action, event.category, event.type. A rule whose every event
/// needs some other kind (an action such as "already_running") is skipped.
pub const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("connection_attempted", &["network"], &["start"]),
    ("session_id_change", &["process"], &["change"]),
];

pub fn schema() -> Schema {
    let owned = |items: &[&str]| {
        Value::List(
            items
                .iter()
                .map(|i| Value::Str(Cow::Owned((*i).to_owned())))
                .collect(),
        )
    };
    Schema {
        fields: FIELDS.iter().map(|(name, _)| (*name).to_owned()).collect(),
        categories: CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
        kinds: KINDS
            .iter()
            .map(|(action, category, kind)| {
                vec![
                    (
                        "event.action".to_owned(),
                        Value::Str(Cow::Owned((*action).to_owned())),
                    ),
                    ("event.category".to_owned(), owned(category)),
                    ("event.type".to_owned(), owned(kind)),
                    ("event.kind".to_owned(), Value::Str(Cow::Borrowed("event"))),
                    (
                        "host.os.type".to_owned(),
                        Value::Str(Cow::Borrowed("linux")),
                    ),
                ]
            })
            .collect(),
    }
}

fn text(s: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(s))
}

/// An ECS array. One value is returned as a plain string: the same to any
/// comparison (any element matches), and no allocation per event.
fn list<'a>(items: &[&'a str]) -> Value<'a> {
    match items {
        [one] => text(one),
        _ => Value::List(items.iter().map(|s| text(s)).collect()),
    }
}

fn opt_text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, text)
}

impl Event for EcsEvent {
    fn field(&self, name: &str) -> Value<'_> {
        match name {
            "@timestamp" => text(&self.timestamp),
            "event.kind" => text(self.event.kind),
            "event.category" => list(&self.event.category),
            "event.type" => list(&self.event.kind_of_change),
            "event.action" => text(self.event.action),
            "event.outcome" => text(self.event.outcome),
            "host.os.type" => text("linux"),
            "process.pid" => Value::Int(i64::from(self.process.pid)),
            "process.entity_id" => text(&self.process.entity_id),
            "process.executable" => opt_text(self.process.executable.as_deref()),
            "process.name" => opt_text(self.process.name.as_deref()),
            "process.parent.pid" => Value::Int(i64::from(self.process.parent.pid)),
            "user.id" => text(&self.user.id),
            "destination.ip" => opt_text(self.destination.as_ref().map(|d| d.ip.as_str())),
            "destination.port" => self
                .destination
                .as_ref()
                .map_or(Value::Null, |d| Value::Int(i64::from(d.port))),
            "network.transport" => opt_text(self.network.as_ref().map(|n| n.transport)),
            "network.type" => opt_text(self.network.as_ref().map(|n| n.ip_version)),
            "network.direction" => opt_text(self.network.as_ref().map(|n| n.direction)),
            "audetect.audit.syscall" => text(self.audetect.audit.syscall),
            "audetect.audit.exit" => Value::Int(self.audetect.audit.exit),
            "audetect.audit.serial" => {
                i64::try_from(self.audetect.audit.serial).map_or(Value::Null, Value::Int)
            }
            "audetect.audit.entity_source" => text(self.audetect.audit.entity_source),
            _ => Value::Null,
        }
    }

    fn ordinal(&self) -> (u64, u64) {
        (self.time.as_millis(), self.audetect.audit.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_is_supplied_by_some_event() {
        let ecs = crate::testkit::scenario_ecs();
        assert!(ecs.len() > 2);
        for (name, _) in FIELDS {
            assert!(
                ecs.iter().any(|e| e.field(name) != Value::Null),
                "{name} is listed but no event supplies it"
            );
        }
        assert_eq!(ecs[0].field("process.command_line"), Value::Null);
        let json = serde_json::to_value(&ecs[0]).unwrap();
        assert_eq!(
            ecs[0].field("process.executable"),
            Value::Str(json["process"]["executable"].as_str().unwrap().into())
        );
    }
}
