//! Matches → alert documents: the ECS and kibana.alert.* fields Elastic's
//! detection engine would write for the matching rule, with the matched events.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::detect::Match;
use crate::normalize::EcsEvent;
use crate::output::{Alert, Severity};
use crate::rulefile::RuleMeta;
use crate::timefmt;

#[derive(Serialize)]
struct KibanaRule<'a> {
    rule_id: &'a str,
    name: &'a str,
    description: &'a str,
    severity: &'a str,
    risk_score: u32,
    threat: &'a Value,
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

impl<'a> KibanaRule<'a> {
    fn of(rule: &'a RuleMeta) -> Self {
        KibanaRule {
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
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| unreachable!("event fields serialize: {e}"))
}

/// The top of the alert. For one event, that event's own fields, as
/// Kibana copies a single-event rule's source document. For a sequence, the
/// fields every event shares (Kibana's "shell" alert): the process when all
/// events are one process entity (described as of the last event, after any
/// execve), the user when all share it, the destination when every event
/// that has one has the same.
fn top_fields(events: &[EcsEvent]) -> Map<String, Value> {
    let [first, .., last] = events else {
        return match events.first().map(to_value) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
    };
    let mut top = Map::new();
    if events
        .iter()
        .all(|e| e.process.entity_id == first.process.entity_id)
    {
        let mut process = to_value(&last.process);
        if let Value::Object(p) = &mut process {
            p.remove("parent");
        }
        top.insert("process".into(), process);
    }
    if events.iter().all(|e| e.user == first.user) {
        top.insert("user".into(), to_value(&first.user));
    }
    let mut destinations = events.iter().filter_map(|e| e.destination.as_ref());
    if let Some(d) = destinations.next() {
        if destinations.all(|other| other == d) {
            top.insert("destination".into(), to_value(d));
        }
    }
    top
}

#[derive(Serialize)]
struct AlertDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: Value,
    rule: RuleRef<'a>,
    kibana: Kibana<'a>,
    host: Host<'a>,
    /// Serialized straight from the events: alerts can be many in replay.
    events: &'a [EcsEvent],
    #[serde(flatten)]
    top: Map<String, Value>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    original_event: Option<Value>,
}

#[derive(Serialize)]
struct Host<'a> {
    name: &'a str,
}

/// Builds the alert for a match. `now` is when the alert is made: the one
/// wall-clock value in the pipeline, handed in by the caller.
pub fn build(m: &Match, host_name: &str, now: std::time::SystemTime) -> Alert {
    let rule = &*m.rule;
    let Some(first) = m.events.first() else {
        unreachable!("a match has events")
    };
    let last = m.events.last().unwrap_or(first);
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
    let (sec, micros) = timefmt::split(now);
    let mut top = top_fields(&m.events);
    // The alert's own fields win over an event's of the same name.
    let original_event = top.remove("event");
    for own in ["@timestamp", "rule", "kibana", "host", "events"] {
        top.remove(own);
    }
    let doc = AlertDoc {
        timestamp: timefmt::rfc3339_micros(sec, micros),
        event: json!({"kind": "signal"}),
        rule: RuleRef {
            id: &rule.id,
            name: &rule.name,
        },
        kibana: Kibana {
            alert: KibanaAlert {
                rule: KibanaRule::of(rule),
                reason,
                severity: &rule.severity,
                risk_score: rule.risk_score,
                original_time: &first.timestamp,
                original_event,
            },
        },
        host: Host { name: host_name },
        events: &m.events,
        top,
    };
    Alert {
        json: serde_json::to_string(&doc).unwrap_or_else(|e| unreachable!("alert serializes: {e}")),
        severity: Severity::from_rule_severity(&rule.severity),
        time: now,
    }
}

/// A report about audetect's own footing (rules removed, audit disabled or
/// locked): an ECS document with event.kind "alert" and category
/// "configuration", sent on the same outputs as detections.
pub fn configuration_alert(
    action: &str,
    message: &str,
    details: Value,
    host_name: &str,
    now: std::time::SystemTime,
) -> Alert {
    let (sec, micros) = timefmt::split(now);
    let doc = json!({
        "@timestamp": timefmt::rfc3339_micros(sec, micros),
        "event": {
            "kind": "alert",
            "category": ["configuration"],
            "type": ["change"],
            "action": action,
            "module": "audetect",
        },
        "message": message,
        "host": {"name": host_name},
        "audetect": details,
    });
    Alert {
        json: doc.to_string(),
        severity: Severity::Error,
        time: now,
    }
}
