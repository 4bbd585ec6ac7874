//! Detection rules as content: Elastic detection-rules TOML files (and the
//! built-in rule, embedded) loaded, checked and compiled once at start.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::eql::{EqlError, Query, Schema};

/// The built-in rules: Elastic's "Suspicious Network Connection Attempt by
/// Root", as Elastic publishes it, and audetect's two companions for root
/// that lowered its effective uid for one step (disjoint from it).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "suspicious_network_connection_attempt_by_root.toml",
        include_str!("../../../rules/suspicious_network_connection_attempt_by_root.toml"),
    ),
    (
        "root_connection_with_a_lowered_effective_uid.toml",
        include_str!("../../../rules/root_connection_with_a_lowered_effective_uid.toml"),
    ),
    (
        "root_session_with_a_lowered_effective_uid.toml",
        include_str!("../../../rules/root_session_with_a_lowered_effective_uid.toml"),
    ),
];

/// Elastic's "maximum alerts per execution" when a rule does not say.
pub const DEFAULT_MAX_SIGNALS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A rule file or directory someone other than root could change.
    #[error("refusing rules: {0}")]
    Untrusted(String),
    #[error("{origin}: {message}")]
    Format { origin: String, message: String },
    #[error("{origin}: rule {name:?}: {message}")]
    Invalid {
        origin: String,
        name: String,
        message: String,
    },
    #[error("{origin}: rule {name:?}: query, {error}")]
    Query {
        origin: String,
        name: String,
        error: EqlError,
    },
    /// A well-formed rule audetect cannot run: skipped by [`compile`].
    /// `reason` is short, to group by; `detail` adds where and what is supplied.
    #[error("{origin}: rule {name:?}: skipped: {detail}")]
    Unsupported {
        origin: String,
        name: String,
        reason: String,
        detail: String,
    },
    #[error("{origin}: rule {name:?} has the rule_id {id} of another rule in {other}")]
    Duplicate {
        origin: String,
        name: String,
        id: String,
        other: String,
    },
}

#[derive(Debug, Deserialize)]
struct RawFile {
    rule: RawRule,
    /// `[metadata]` and anything else: accepted and kept.
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Deserialize)]
struct RawRule {
    rule_id: String,
    name: String,
    description: String,
    #[serde(rename = "type")]
    rule_type: String,
    #[serde(default)]
    language: Option<String>,
    query: toml::Spanned<String>,
    severity: String,
    risk_score: u32,
    #[serde(default = "default_version")]
    version: u32,
    #[serde(default)]
    max_signals: Option<u32>,
    #[serde(default)]
    threat: Vec<toml::Value>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    author: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    /// `from`, `index`, `note`, `false_positives`, ...: Kibana's business.
    #[serde(flatten)]
    other: toml::Table,
}

fn default_version() -> u32 {
    1
}

/// A rule's metadata, as alerts carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMeta {
    pub id: String,
    pub name: String,
    pub description: String,
    pub severity: String,
    pub risk_score: u32,
    pub version: u32,
    pub max_signals: u32,
    /// In Kibana's `threat` shape (framework, tactic, technique, subtechnique).
    pub threat: serde_json::Value,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub author: Vec<String>,
    pub license: Option<String>,
    /// Where it came from: a path, or "built-in NAME".
    pub origin: String,
    /// The file's other tables (`[metadata]`, ...) and the `[rule]` keys
    /// audetect does not use (`from`, `index`, `note`, ...), as written.
    pub other: serde_json::Value,
}

/// A loaded rule: its metadata and its compiled query.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: Arc<RuleMeta>,
    pub query: Arc<Query>,
    /// The query as written, so a reload can tell an unchanged rule.
    pub query_text: Arc<str>,
}

/// Parses and compiles one rule file's text. `origin` names it in errors.
pub fn parse_rule(text: &str, origin: &str, schema: &Schema) -> Result<Rule, RuleError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| RuleError::Format {
        origin: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let r = raw.rule;
    let invalid = |message: String| RuleError::Invalid {
        origin: origin.to_owned(),
        name: r.name.clone(),
        message,
    };
    let unsupported = |reason: String| RuleError::Unsupported {
        origin: origin.to_owned(),
        name: r.name.clone(),
        detail: reason.clone(),
        reason,
    };
    if r.rule_type != "eql" || r.language.as_deref().is_some_and(|l| l != "eql") {
        return Err(unsupported(format!(
            "type {:?} is not supported: audetect runs EQL rules (type = \"eql\")",
            r.rule_type
        )));
    }
    let systems: Vec<&str> = r
        .tags
        .iter()
        .filter_map(|t| t.strip_prefix("OS: "))
        .collect();
    if !systems.is_empty() && !systems.iter().any(|s| s.eq_ignore_ascii_case("linux")) {
        return Err(unsupported(format!(
            "not a Linux rule (OS: {})",
            systems.join(", ")
        )));
    }
    if !["low", "medium", "high", "critical"].contains(&r.severity.as_str()) {
        return Err(invalid(format!(
            "severity {:?} is not one of low, medium, high, critical",
            r.severity
        )));
    }
    if r.risk_score > 100 {
        return Err(invalid(format!("risk_score {} is over 100", r.risk_score)));
    }
    if r.max_signals == Some(0) {
        return Err(invalid("max_signals must be at least 1".into()));
    }
    let threat = serde_json::to_value(&r.threat)
        .map_err(|e| invalid(format!("threat cannot be represented: {e}")))?;
    // Trailing blank lines would put "end of query" errors past the query.
    let query_text = r.query.get_ref().trim_end();
    let query = match Query::compile(query_text, schema) {
        Ok(q) => q,
        Err(e) if e.unsupported => {
            let e = query_position(text, r.query.span(), query_text, e);
            // The list of supplied fields is for the detail, not the reason.
            let reason = e
                .message
                .split("; audetect supplies")
                .next()
                .unwrap_or_default();
            return Err(RuleError::Unsupported {
                origin: origin.to_owned(),
                name: r.name.clone(),
                reason: reason.to_owned(),
                detail: format!("query, {e}"),
            });
        }
        Err(error) => {
            return Err(RuleError::Query {
                origin: origin.to_owned(),
                name: r.name.clone(),
                error: query_position(text, r.query.span(), query_text, error),
            })
        }
    };
    if let Some(reason) = unreachable_filter(&query, schema) {
        return Err(unsupported(reason));
    }
    let query_text: Arc<str> = Arc::from(query_text);
    let mut other = raw.other;
    other.insert("rule".into(), toml::Value::Table(r.other));
    Ok(Rule {
        meta: Arc::new(RuleMeta {
            id: r.rule_id,
            name: r.name,
            description: r.description,
            severity: r.severity,
            risk_score: r.risk_score,
            version: r.version,
            max_signals: r.max_signals.unwrap_or(DEFAULT_MAX_SIGNALS),
            threat,
            tags: r.tags,
            references: r.references,
            author: r.author,
            license: r.license,
            origin: origin.to_owned(),
            other: serde_json::to_value(&other).unwrap_or_default(),
        }),
        query: Arc::new(query),
        query_text,
    })
}

/// Why no event the source produces can complete `query`, if none can: the
/// first filter that no kind in the schema passes.
fn unreachable_filter(query: &Query, schema: &Schema) -> Option<String> {
    if schema.kinds.is_empty() {
        return None;
    }
    let required = query.required_filters();
    let stages = required.len();
    for (n, &filter) in required.iter().enumerate() {
        let passes = schema.kinds.iter().any(|kind| {
            query.filter_may_match(filter, &|name| {
                kind.iter().find(|(f, _)| f == name).map(|(_, v)| v.clone())
            })
        });
        if passes {
            continue;
        }
        let which = if stages == 1 {
            "its filter".to_owned()
        } else {
            format!("stage {} of {stages}", n + 1)
        };
        let actions = query.literals(filter, "event.action");
        return Some(if actions.is_empty() {
            format!("{which} matches no kind of event audetect produces")
        } else {
            format!(
                "{which} needs event.action {}, which audetect does not produce",
                actions
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        });
    }
    None
}

/// Turns a position inside the query into one inside the file. The query's
/// string starts at `span` in the file; when its text stands there as
/// written (literal `'''` strings, or basic strings without escapes),
/// line and column point into the file. Otherwise (escapes shift columns)
/// the line is still the file's and the message says where the query starts.
fn query_position(
    file: &str,
    span: std::ops::Range<usize>,
    query: &str,
    mut e: EqlError,
) -> EqlError {
    let Some(raw) = file.get(span.clone()) else {
        return e;
    };
    let span_line = file[..span.start].matches('\n').count();
    match raw.find(query) {
        Some(at) => {
            let start = span.start + at;
            let before = &file[..start];
            if e.line == 1 {
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                e.column += before[line_start..].chars().count();
            }
            e.line += before.matches('\n').count();
            e.offset += start;
        }
        None => {
            e.message = format!(
                "{} (position within the query, which starts on line {} of the file)",
                e.message,
                span_line + 1
            );
        }
    }
    e
}

/// A rule file audetect read but will not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub origin: String,
    /// The rule's name, or the file's when it holds no rule.
    pub name: String,
    pub reason: String,
}

/// The rules in force, and those set aside.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub skipped: Vec<Skipped>,
    /// Each rule file read, with the SHA-256 of its text (hex), in the
    /// order read: what the daemon logs, so that a changed rule shows.
    pub files: Vec<(PathBuf, String)>,
}

impl RuleSet {
    /// `rules: N loaded, M skipped`, as check-config ends.
    pub fn summary(&self) -> String {
        format!(
            "rules: {} loaded, {} skipped",
            self.rules.len(),
            self.skipped.len()
        )
    }

    /// The most frequent skip reasons, with counts, most frequent first.
    /// Reasons that name a field or action are grouped by it.
    pub fn top_reasons(&self, n: usize) -> Vec<(usize, String)> {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &self.skipped {
            *counts.entry(s.reason.as_str()).or_default() += 1;
        }
        let mut v: Vec<(usize, String)> =
            counts.into_iter().map(|(r, c)| (c, r.to_owned())).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        v.truncate(n);
        v
    }
}

/// One rule file's text as the daemon read it (`audetect::rulefile::load`),
/// and whether it was found by reading a directory rather than named itself.
#[derive(Debug, Clone)]
pub struct RuleText {
    pub path: PathBuf,
    pub text: String,
    pub found_in_dir: bool,
}

/// Compiles the rules in force: the built-in ones (if enabled), then every
/// rule file of `files`, in order; a file rule with a built-in rule's id
/// replaces it. Two files with one id is an error, and so is a file that is
/// not TOML, a rule that lacks a required key or whose query does not parse.
/// A well-formed rule audetect cannot run (another rule type or OS, a
/// field, category, function or event kind it does not supply, maturity
/// "deprecated") is set aside in [`RuleSet::skipped`] with the reason, and
/// so is a TOML file found in a directory that holds no `[rule]`
/// (detection-rules' tree has such files). An `Err` item of `files` (a file
/// the caller could not read) stops the compile there with that error.
pub fn compile(
    builtin: bool,
    files: impl IntoIterator<Item = Result<RuleText, RuleError>>,
    schema: &Schema,
) -> Result<RuleSet, RuleError> {
    let mut set = RuleSet::default();
    let rules = &mut set.rules;
    if builtin {
        for (name, text) in BUILTIN {
            rules.push(parse_rule(text, &format!("built-in {name}"), schema)?);
        }
    }
    let builtin_count = rules.len();
    // The file that replaced each built-in rule, so a second one is an error.
    let mut replaced_by: Vec<Option<String>> = vec![None; builtin_count];
    for file in files {
        let RuleText {
            path: file,
            text,
            found_in_dir,
        } = file?;
        let origin = file.display().to_string();
        if found_in_dir && !has_rule_table(&text) {
            set.skipped.push(Skipped {
                name: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                origin,
                reason: "not a detection rule (no [rule] table)".into(),
            });
            continue;
        }
        if let Some(maturity) = deprecated(&text) {
            set.skipped.push(Skipped {
                name: rule_name(&text).unwrap_or_default(),
                origin,
                reason: format!("maturity {maturity:?}"),
            });
            continue;
        }
        let rule = match parse_rule(&text, &origin, schema) {
            Ok(rule) => rule,
            Err(RuleError::Unsupported {
                origin,
                name,
                reason,
                ..
            }) => {
                set.skipped.push(Skipped {
                    origin,
                    name,
                    reason,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        match rules.iter().position(|r| r.meta.id == rule.meta.id) {
            Some(i) if i < builtin_count && replaced_by[i].is_some() => {
                return Err(RuleError::Duplicate {
                    origin: rule.meta.origin.clone(),
                    name: rule.meta.name.clone(),
                    id: rule.meta.id.clone(),
                    other: replaced_by[i].clone().unwrap_or_default(),
                })
            }
            Some(i) if i < builtin_count => {
                replaced_by[i] = Some(rule.meta.origin.clone());
                // A warning: a file that takes the built-in rule's place
                // changes what audetect detects by default.
                log::warn!(
                    "{} replaces the built-in rule {:?}",
                    rule.meta.origin,
                    rules[i].meta.name
                );
                rules[i] = rule;
            }
            Some(i) => {
                return Err(RuleError::Duplicate {
                    origin: rule.meta.origin.clone(),
                    name: rule.meta.name.clone(),
                    id: rule.meta.id.clone(),
                    other: rules[i].meta.origin.clone(),
                })
            }
            None => rules.push(rule),
        }
    }
    Ok(set)
}

/// Whether a TOML text has a `[rule]` table; false for text that is not
/// TOML, which [`parse_rule`] then reports.
fn has_rule_table(text: &str) -> bool {
    match toml::from_str::<toml::Table>(text) {
        Ok(t) => t.get("rule").is_some_and(toml::Value::is_table),
        Err(_) => true,
    }
}

/// `[metadata] maturity = "deprecated"` (detection-rules' retired rules).
fn deprecated(text: &str) -> Option<String> {
    let t: toml::Table = toml::from_str(text).ok()?;
    let m = t.get("metadata")?.get("maturity")?.as_str()?;
    (m == "deprecated").then(|| m.to_owned())
}

fn rule_name(text: &str) -> Option<String> {
    let t: toml::Table = toml::from_str(text).ok()?;
    Some(t.get("rule")?.get("name")?.as_str()?.to_owned())
}
