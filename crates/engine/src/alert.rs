//! Matches → alert documents: the ECS and kibana.alert.* fields Elastic's
//! detection engine would write for the matching rule, with the matched events.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::detect::Match;
use crate::normalize::EcsEvent;
use crate::rulefile::RuleMeta;
use crate::snapshot::{self, Snapshot};
use crate::timefmt;

/// One alert, ready to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// A JSON document on one line (no raw newline: it is framed as a line
    /// in JSON lines and, on stream unix sockets, in syslog).
    pub json: String,
    pub severity: Severity,
    /// The syslog TIMESTAMP: when the alert was made.
    pub time: SystemTime,
}

/// Syslog severities; the discriminant is the RFC 5424 number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Severity {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
    Debug = 7,
}

impl Severity {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Maps a detection rule's severity (Elastic's low, medium, high,
    /// critical) so that SIEM-side filters on syslog severity order alerts
    /// the same way; unknown names are Warning, never dropped to Debug.
    pub fn from_rule_severity(name: &str) -> Severity {
        match name.to_ascii_lowercase().as_str() {
            "low" => Severity::Notice,
            "high" => Severity::Error,
            "critical" => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

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
/// execve; its parent when all events name the same one), the user when all
/// share it, the destination when every event that has one has the same.
/// The events with every command line (the process's and its parent's)
/// cut to `budget` bytes.
fn trim_args(events: &[EcsEvent], budget: usize) -> Vec<EcsEvent> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(i) = e.process.image.within(budget) {
                e.process.image = std::sync::Arc::new(i);
                e.audetect.audit.args_truncated = true;
            }
            let parent = e
                .process
                .parent
                .image
                .as_ref()
                .and_then(|i| i.within(budget));
            if let Some(i) = parent {
                e.process.parent.image = Some(std::sync::Arc::new(i));
            }
            e
        })
        .collect()
}

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
            if !events
                .iter()
                .all(|e| e.process.parent == first.process.parent)
            {
                p.remove("parent");
            }
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
    timestamp: &'a str,
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
    reason: &'a str,
    severity: &'a str,
    risk_score: u32,
    original_time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_event: Option<&'a Value>,
}

#[derive(Serialize)]
struct Host<'a> {
    name: &'a str,
    /// host.id and host.os.type, as the events have them.
    id: &'a str,
    os: &'a crate::normalize::HostOs,
}

/// Builds the alert for a match. `now` is when the alert is made: the one
/// wall-clock value in the pipeline, handed in by the caller.
pub fn build(m: &Match, host_name: &str, now: SystemTime) -> Alert {
    build_with_snapshot(m, host_name, now, None, usize::MAX)
}

/// Builds the alert for a match with the snapshot taken for it, shrinking
/// the snapshot (never the audit events) until the document is at most
/// `max_bytes` long; what was dropped is listed in the alert.
pub fn build_with_snapshot(
    m: &Match,
    host_name: &str,
    now: SystemTime,
    mut snapshot: Option<Snapshot>,
    max_bytes: usize,
) -> Alert {
    let rule = &*m.rule;
    let Some(first) = m.events.first() else {
        unreachable!("a match has events")
    };
    let last = m.events.last().unwrap_or(first);
    // A multi-host log's node, else this host.
    let host_name = if first.host.from_log {
        first.host.name.as_str()
    } else {
        host_name
    };
    let mut categories: Vec<&str> = Vec::new();
    for c in m.events.iter().flat_map(|e| e.event.category.iter()) {
        if !categories.contains(c) {
            categories.push(c);
        }
    }
    let reason = format!(
        "{} event with process {}, by user {} on {} created {} alert {}.",
        categories.join(", "),
        last.process.name().unwrap_or("?"),
        last.user.id,
        host_name,
        rule.severity,
        rule.name
    );
    let (sec, micros) = timefmt::split(now);
    // The alert's own fields win over an event's of the same name; the
    // event's own `event` goes into kibana.alert.original_event.
    let base_of = |events: &[EcsEvent]| {
        let mut top = top_fields(events);
        let original = top.remove("event");
        for own in ["@timestamp", "rule", "kibana", "host", "events"] {
            top.remove(own);
        }
        (top, original)
    };
    let (mut base, original_event) = base_of(&m.events);
    let timestamp = timefmt::rfc3339_micros(sec, micros);
    let serialize = |top: Map<String, Value>, events: &[EcsEvent]| {
        let doc = AlertDoc {
            timestamp: &timestamp,
            event: json!({"kind": "signal"}),
            rule: RuleRef {
                id: &rule.id,
                name: &rule.name,
            },
            kibana: Kibana {
                alert: KibanaAlert {
                    rule: KibanaRule::of(rule),
                    reason: &reason,
                    severity: &rule.severity,
                    risk_score: rule.risk_score,
                    original_time: &first.timestamp,
                    original_event: original_event.as_ref(),
                },
            },
            host: Host {
                // A multi-host log's node, else this host.
                name: host_name,
                id: &first.host.id,
                os: &first.host.os,
            },
            events,
            top,
        };
        serde_json::to_string(&doc).unwrap_or_else(|e| unreachable!("alert serializes: {e}"))
    };
    // Command lines the events carry (each up to the process table's bound)
    // are cut, shorter and shorter, each event marked args_truncated: first
    // until the audit part takes at most half the cap (the snapshot's most
    // telling parts need the rest), then, if the snapshot is bare, until the
    // whole fits.
    let mut events = std::borrow::Cow::Borrowed(&m.events[..]);
    let mut budget = crate::process::MAX_ARGS_BYTES / 4;
    while budget >= 16 && serialize(base.clone(), &events).len() > max_bytes / 2 {
        events = std::borrow::Cow::Owned(trim_args(&m.events, budget));
        base = base_of(&events).0;
        budget /= 4;
    }
    let mut json = loop {
        let Some(snap) = &mut snapshot else {
            break serialize(base.clone(), &events);
        };
        let mut top = base.clone();
        add_snapshot(&mut top, snapshot::render(snap));
        let json = serialize(top, &events);
        if json.len() <= max_bytes || snap.not_taken.is_some() {
            break json;
        }
        if !snapshot::shrink(snap, json.len() - max_bytes) {
            // What is left over the cap is the audit part itself.
            break json;
        }
    };
    while json.len() > max_bytes && budget >= 16 {
        let events = trim_args(&m.events, budget);
        let mut top = base_of(&events).0;
        if let Some(snap) = &snapshot {
            add_snapshot(&mut top, snapshot::render(snap));
        }
        json = serialize(top, &events);
        budget /= 4;
    }
    Alert {
        json,
        severity: Severity::from_rule_severity(&rule.severity),
        time: now,
    }
}

/// The ECS process fields that describe the program a process runs.
const PROGRAM_FIELDS: [&str; 6] = [
    "executable",
    "name",
    "args",
    "args_count",
    "command_line",
    "hash",
];

/// Puts a snapshot's fields in the alert. ECS fields of the process go in
/// the top-level `process` where the audit events left them absent; a value
/// /proc gives that differs from the audit record's (a parent that exited)
/// stays the record's, and the /proc one goes under
/// `audetect.snapshot.process` by the same name. A process that runs another
/// executable than the record's (an execve since) has everything about its
/// program (executable, name, args, command_line, hash) go there. When the
/// top has no process (its events are of several), all of them go there.
fn add_snapshot(top: &mut Map<String, Value>, r: snapshot::Rendered) {
    let mut snap = r.snapshot;
    let effective_user = r.process.get("user").cloned();
    let mut spill = Map::new();
    if !r.process.is_empty() {
        let same = |p: &Map<String, Value>| {
            p.get("entity_id") == r.process.get("entity_id") && p.get("pid") == r.process.get("pid")
        };
        match top.get_mut("process") {
            Some(Value::Object(p)) if same(p) => {
                let mut from_proc = r.process;
                // Another program than the record's runs now (an execve
                // since): what describes the program is that one's, not the
                // record's, and stays apart as a whole.
                // A binary deleted after it started (a common attacker
                // habit) reads "PATH (deleted)" in /proc: the same program.
                let program = |v: Option<&Value>| {
                    v.and_then(Value::as_str)
                        .map(|e| e.strip_suffix(" (deleted)").unwrap_or(e).to_owned())
                };
                let exe = program(from_proc.get("executable"));
                if exe.is_some() && program(p.get("executable")).is_some_and(|e| Some(e) != exe) {
                    for key in PROGRAM_FIELDS {
                        if let Some(v) = from_proc.remove(key) {
                            spill.insert(key.into(), v);
                        }
                    }
                }
                merge_absent(p, from_proc, &mut spill);
            }
            _ => spill = r.process,
        }
    }
    if !spill.is_empty() {
        match snap.get_mut("process") {
            Some(Value::Object(extras)) => extras.extend(spill),
            _ => {
                snap.insert("process".into(), Value::Object(spill));
            }
        }
    }
    // user.id is the effective uid: when /proc shows the same one, its name.
    if let (Some(Value::Object(user)), Some(Value::Object(euid))) =
        (top.get_mut("user"), &effective_user)
    {
        if let (true, Some(name)) = (user.get("id") == euid.get("id"), euid.get("name")) {
            user.entry("name").or_insert_with(|| name.clone());
        }
    }
    if let Some(id) = r.container_id {
        if let Value::Object(c) = top.entry("container").or_insert_with(|| json!({})) {
            c.entry("id").or_insert(Value::String(id));
        }
    }
    match top.get_mut("audetect") {
        Some(Value::Object(a)) => {
            a.insert("snapshot".into(), Value::Object(snap));
        }
        _ => {
            top.insert("audetect".into(), json!({ "snapshot": snap }));
        }
    }
}

/// Adds what `into` lacks from `from`. An object for the same process (no
/// differing pid or entity_id) is merged key by key; anything that differs
/// goes to `spill` under its own name.
fn merge_absent(
    into: &mut Map<String, Value>,
    from: Map<String, Value>,
    spill: &mut Map<String, Value>,
) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (None, value) => {
                into.insert(key, value);
            }
            (Some(Value::Object(a)), Value::Object(b)) => {
                let clash = ["pid", "entity_id"]
                    .iter()
                    .any(|k| matches!((a.get(*k), b.get(*k)), (Some(x), Some(y)) if x != y));
                if clash {
                    spill.insert(key, Value::Object(b));
                } else {
                    let mut sub = Map::new();
                    merge_absent(a, b, &mut sub);
                    if !sub.is_empty() {
                        spill.insert(key, Value::Object(sub));
                    }
                }
            }
            (Some(a), value) if *a == value => {}
            (Some(_), value) => {
                spill.insert(key, value);
            }
        }
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
    now: SystemTime,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_severity_mapping() {
        assert_eq!(Severity::from_rule_severity("medium"), Severity::Warning);
        assert_eq!(Severity::from_rule_severity("High"), Severity::Error);
        assert_eq!(Severity::from_rule_severity("critical").code(), 2);
        assert_eq!(Severity::from_rule_severity("low").code(), 5);
    }
}
