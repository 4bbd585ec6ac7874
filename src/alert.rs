//! Matches → alert documents: the ECS and kibana.alert.* fields Elastic's
//! detection engine would write for the built-in rule, with the matched events.

use serde::Serialize;
use serde_json::json;

use crate::detect::Match;
use crate::normalize::{Destination, EcsEvent};
use crate::output::{Alert, Severity};
use crate::timefmt;

pub const RULE_ID: &str = "eb6a3790-d52d-11ec-8ce9-f661ea17fbce";
pub const RULE_NAME: &str = "Suspicious Network Connection Attempt by Root";
pub const RULE_VERSION: u32 = 100;
pub const RULE_SEVERITY: &str = "medium";
pub const RULE_RISK_SCORE: u32 = 47;

#[derive(Serialize)]
struct AlertDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: EventKind,
    rule: RuleRef,
    kibana: Kibana,
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
struct RuleRef {
    id: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
struct Kibana {
    alert: KibanaAlert,
}

#[derive(Serialize)]
struct KibanaAlert {
    rule: KibanaRule,
    reason: String,
    severity: &'static str,
    risk_score: u32,
    original_time: String,
}

#[derive(Serialize)]
struct KibanaRule {
    rule_id: &'static str,
    name: &'static str,
    severity: &'static str,
    risk_score: u32,
    threat: serde_json::Value,
    version: u32,
    #[serde(rename = "type")]
    rule_type: &'static str,
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

/// The rule's MITRE ATT&CK mapping, in Kibana's `threat` shape.
fn threat() -> serde_json::Value {
    json!([
        {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": "TA0011", "name": "Command and Control",
                       "reference": "https://attack.mitre.org/tactics/TA0011/"},
            "technique": [{"id": "T1095", "name": "Non-Application Layer Protocol",
                           "reference": "https://attack.mitre.org/techniques/T1095/"}]
        },
        {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": "TA0004", "name": "Privilege Escalation",
                       "reference": "https://attack.mitre.org/tactics/TA0004/"},
            "technique": [{"id": "T1548", "name": "Abuse Elevation Control Mechanism",
                           "reference": "https://attack.mitre.org/techniques/T1548/",
                           "subtechnique": [{"id": "T1548.003", "name": "Sudo and Sudo Caching",
                                             "reference": "https://attack.mitre.org/techniques/T1548/003/"}]}]
        }
    ])
}

/// Builds the alert for a match. `now` is when the alert is made: the one
/// wall-clock value in the pipeline, handed in by the caller.
pub fn build(m: &Match, host_name: &str, now: std::time::SystemTime) -> Alert {
    // The join key's process is the same in every event; the last event's
    // view of it (its executable after any execve) is the freshest.
    let last = m
        .events
        .last()
        .unwrap_or_else(|| unreachable!("a match has events"));
    let first = &m.events[0];
    let destination = m.events.iter().find_map(|e| e.destination.as_ref());
    let (sec, micros) = timefmt::split(now);
    let categories: Vec<&str> = m
        .events
        .iter()
        .flat_map(|e| e.event.category.iter().copied())
        .collect();
    let process_name = last.process.name.as_deref().unwrap_or("?");
    let reason = format!(
        "{} event with process {}, by user {} on {} created {} alert {}.",
        categories.join(", "),
        process_name,
        last.user.id,
        host_name,
        RULE_SEVERITY,
        RULE_NAME
    );
    let doc = AlertDoc {
        timestamp: timefmt::rfc3339_micros(sec, micros),
        event: EventKind { kind: "signal" },
        rule: RuleRef {
            id: RULE_ID,
            name: RULE_NAME,
        },
        kibana: Kibana {
            alert: KibanaAlert {
                rule: KibanaRule {
                    rule_id: RULE_ID,
                    name: RULE_NAME,
                    severity: RULE_SEVERITY,
                    risk_score: RULE_RISK_SCORE,
                    threat: threat(),
                    version: RULE_VERSION,
                    rule_type: "eql",
                },
                reason,
                severity: RULE_SEVERITY,
                risk_score: RULE_RISK_SCORE,
                original_time: first.timestamp.clone(),
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
        severity: Severity::from_rule_severity(RULE_SEVERITY),
        time: now,
    }
}
