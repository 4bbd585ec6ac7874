//! Matches → alert documents: the ECS and kibana.alert.* fields Elastic's
//! detection engine would write for the matching rule, with the matched events.

use serde::Serialize;

use crate::detect::Match;
use crate::normalize::{Destination, EcsEvent};
use crate::output::{Alert, Severity};
use crate::timefmt;

#[derive(Serialize)]
struct AlertDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: EventKind,
    rule: RuleRef<'a>,
    kibana: Kibana<'a>,
    process: ProcessRef<'a>,
    user: &'a crate::normalize::UserFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a Destination>,
    host: Host<'a>,
    events: &'a [EcsEvent],
}

#[derive(Serialize)]
struct EventKind {
    kind: &'static str,
}

#[derive(Serialize)]
struct RuleRef<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Kibana<'a> {
    alert: KibanaAlert<'a>,
}

#[derive(Serialize)]
struct KibanaAlert<'a> {
    rule: KibanaRule<'a>,
    reason: String,
    severity: &'a str,
    risk_score: u32,
    original_time: &'a str,
}

#[derive(Serialize)]
struct KibanaRule<'a> {
    rule_id: &'a str,
    name: &'a str,
    description: &'a str,
    severity: &'a str,
    risk_score: u32,
    threat: &'a serde_json::Value,
    version: u32,
    #[serde(rename = "type")]
    rule_type: &'static str,
    max_signals: u32,
    tags: &'a [String],
    references: &'a [String],
    author: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<&'a str>,
}

#[derive(Serialize)]
struct ProcessRef<'a> {
    pid: u32,
    entity_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    executable: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Host<'a> {
    name: &'a str,
}

/// Builds the alert for a match. `now` is when the alert is made: the one
/// wall-clock value in the pipeline, handed in by the caller.
pub fn build(m: &Match, host_name: &str, now: std::time::SystemTime) -> Alert {
    let rule = &*m.rule;
    // The join key's process is the same in every event; the last event's
    // view of it (its executable after any execve) is the freshest. For a
    // single-event rule, the one event's fields are the alert's.
    let Some(last) = m.events.last() else {
        unreachable!("a match has events")
    };
    let first = &m.events[0];
    let destination = m.events.iter().find_map(|e| e.destination.as_ref());
    let (sec, micros) = timefmt::split(now);
    let mut categories: Vec<&str> = Vec::new();
    for c in m.events.iter().flat_map(|e| e.event.category.iter()) {
        if !categories.contains(c) {
            categories.push(c);
        }
    }
    let reason = format!(
        "{} event with process {}, by user {} on {} created {} alert {}.",
        categories.join(", "),
        last.process.name.as_deref().unwrap_or("?"),
        last.user.id,
        host_name,
        rule.severity,
        rule.name
    );
    let doc = AlertDoc {
        timestamp: timefmt::rfc3339_micros(sec, micros),
        event: EventKind { kind: "signal" },
        rule: RuleRef {
            id: &rule.id,
            name: &rule.name,
        },
        kibana: Kibana {
            alert: KibanaAlert {
                rule: KibanaRule {
                    rule_id: &rule.id,
                    name: &rule.name,
                    description: &rule.description,
                    severity: &rule.severity,
                    risk_score: rule.risk_score,
                    threat: &rule.threat,
                    version: rule.version,
                    rule_type: "eql",
                    max_signals: rule.max_signals,
                    tags: &rule.tags,
                    references: &rule.references,
                    author: &rule.author,
                    license: rule.license.as_deref(),
                },
                reason,
                severity: &rule.severity,
                risk_score: rule.risk_score,
                original_time: &first.timestamp,
            },
        },
        process: ProcessRef {
            pid: last.process.pid,
            entity_id: &last.process.entity_id,
            executable: last.process.executable.as_deref(),
            name: last.process.name.as_deref(),
        },
        user: &last.user,
        destination,
        host: Host { name: host_name },
        events: &m.events,
    };
    Alert {
        json: serde_json::to_string(&doc).unwrap_or_else(|e| unreachable!("alert serializes: {e}")),
        severity: Severity::from_rule_severity(&rule.severity),
        time: now,
    }
}
