//! Which kinds of event the loaded detection rules need from the kernel, and
//! for each whether only root's events (effective uid 0) can matter: what the
//! audit rules are derived from.

use std::borrow::Cow;

use crate::eql::{Query, Schema, Value};
use crate::rulefile::Rule;

/// The kinds whose events keep the process table (by event.action): exec
/// gives a process its image, fork adds one, end removes it. A rule that
/// reads a parent's fields needs them for every process, whoever runs it.
pub const PROCESS_TABLE_KINDS: [&str; 3] = ["exec", "fork", "end"];

/// The fields holding the effective uid, the one an `euid=0` audit filter
/// tests.
const EFFECTIVE_UID_FIELDS: [&str; 2] = ["user.id", "process.user.id"];
/// The fields holding the real uid, the one a `uid=0` audit filter tests: a
/// rule may ask root of them while the effective uid is not (a root process
/// that lowered only its effective uid).
const REAL_UID_FIELDS: [&str; 2] = ["process.real_user.id", "user.Ext.real.id"];

/// Non-root uids every filter is tried with, besides those it names itself:
/// a first user, a daemon's low uid, nobody.
const NON_ROOT_UIDS: [&str; 3] = ["1000", "1", "65534"];

/// One kind of event the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindNeed {
    /// Its event.action.
    pub action: String,
    /// No rule can use this kind's events unless the effective uid is 0, so
    /// the kernel may drop the others (`euid=0`).
    pub root_only: bool,
    /// With `root_only`: some rule also uses the events of a process whose
    /// real uid is 0 while its effective uid is not, so the kernel keeps
    /// `uid=0` as well as `euid=0`.
    pub real_root: bool,
    /// The rules with a filter this kind's events may pass, by name, in
    /// load order.
    pub rules: Vec<String>,
    /// The rules that read parent fields: the process table needs this
    /// kind (for every user) on their behalf.
    pub process_table: Vec<String>,
}

/// Most rule names [`KindNeed::describe`] writes out; the rest are counted.
const NAMES_SHOWN: usize = 3;

impl KindNeed {
    /// Who it is for and why, in one line: `all users: 2 rules ("A",
    /// "B"); the process table (parent fields read by "C")`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.rules.is_empty() {
            parts.push(count_names("rule", &self.rules));
        }
        if !self.process_table.is_empty() {
            parts.push(format!(
                "the process table (parent fields read by {})",
                names(&self.process_table)
            ));
        }
        let who = match (self.root_only, self.real_root) {
            (true, false) => "root only (euid 0)",
            (true, true) => "root only (euid 0, or uid 0)",
            (false, _) => "all users",
        };
        format!("{who}: {}", parts.join("; "))
    }
}

fn count_names(what: &str, items: &[String]) -> String {
    let s = if items.len() == 1 { "" } else { "s" };
    format!("{} {what}{s} ({})", items.len(), names(items))
}

fn names(items: &[String]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| format!("{n:?}"))
        .collect();
    match items.len().saturating_sub(NAMES_SHOWN) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}

/// What the rules need, kind by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// In the schema's order of kinds, then the process table's kinds the
    /// schema does not list; only kinds something needs.
    pub kinds: Vec<KindNeed>,
}

impl Needs {
    pub fn get(&self, action: &str) -> Option<&KindNeed> {
        self.kinds.iter().find(|k| k.action == action)
    }
}

/// For each of `schema.kinds`, in its order, whether some filter of `rule`
/// may pass an event of that kind: the detector feeds a rule only the
/// events it may use.
pub fn kinds_of(rule: &Rule, schema: &Schema) -> Vec<bool> {
    schema
        .kinds
        .iter()
        .map(|kind| {
            let known = |name: &str| kind_value(kind, name);
            filters(&rule.query)
                .into_iter()
                .any(|f| rule.query.filter_may_match(f, &known))
        })
        .collect()
}

/// The kinds of event that `rules` need, each kind being the field values
/// `schema.kinds` fixes for it (event.action among them). A kind is needed
/// by a rule when one of its filters that an event must pass (each stage,
/// and a sequence's `until`) may match it, knowing only those values. It
/// is root-only when no such filter of any rule may still match once the
/// effective uid is known to be something other than 0.
pub fn needs(rules: &[Rule], schema: &Schema) -> Needs {
    let mut out = Needs::default();
    for kind in &schema.kinds {
        let Some(action) = action_of(kind) else {
            continue;
        };
        let known = |name: &str| {
            kind.iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| value.clone())
        };
        let mut need = KindNeed {
            action,
            root_only: true,
            real_root: false,
            rules: Vec::new(),
            process_table: Vec::new(),
        };
        for rule in rules {
            let q = &rule.query;
            let mut uses = false;
            for filter in filters(q) {
                if !q.filter_may_match(filter, &known) {
                    continue;
                }
                uses = true;
                if need.root_only && non_root_may_match(q, filter, &known, false) {
                    if non_root_may_match(q, filter, &known, true) {
                        need.root_only = false;
                    } else {
                        need.real_root = true;
                    }
                }
            }
            if uses {
                need.rules.push(rule.meta.name.clone());
            }
        }
        if !need.rules.is_empty() {
            out.kinds.push(need);
        }
    }
    let readers: Vec<String> = rules
        .iter()
        .filter(|r| reads_parent(&r.query))
        .map(|r| r.meta.name.clone())
        .collect();
    if !readers.is_empty() {
        for action in PROCESS_TABLE_KINDS {
            let at = match out.kinds.iter().position(|k| k.action == action) {
                Some(at) => at,
                None => {
                    out.kinds.push(KindNeed {
                        action: action.to_owned(),
                        root_only: false,
                        real_root: false,
                        rules: Vec::new(),
                        process_table: Vec::new(),
                    });
                    out.kinds.len() - 1
                }
            };
            let need = &mut out.kinds[at];
            need.root_only = false;
            need.process_table = readers.clone();
        }
    }
    out
}

fn action_of(kind: &[(String, Value<'static>)]) -> Option<String> {
    kind.iter().find_map(|(field, value)| match value {
        Value::Str(s) if field == "event.action" => Some(s.to_string()),
        _ => None,
    })
}

/// The value a kind of event (one of `Schema::kinds`) fixes for a field.
pub(crate) fn kind_value(kind: &[(String, Value<'static>)], name: &str) -> Option<Value<'static>> {
    kind.iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
}

/// Every filter whose events must be seen: the stages, and `until`.
pub(crate) fn filters(q: &Query) -> Vec<usize> {
    let mut all = q.required_filters();
    all.extend(q.until_filter());
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether `filter` may match with the effective uid not 0 (and, with
/// `real_too`, the real uid not 0 either): tried with a few usual uids and
/// with every uid the filter itself compares to, the same in both.
fn non_root_may_match(
    q: &Query,
    filter: usize,
    known: &dyn Fn(&str) -> Option<Value<'static>>,
    real_too: bool,
) -> bool {
    let fields: Vec<&str> = if real_too {
        EFFECTIVE_UID_FIELDS
            .iter()
            .chain(REAL_UID_FIELDS.iter())
            .copied()
            .collect()
    } else {
        EFFECTIVE_UID_FIELDS.to_vec()
    };
    let mut uids: Vec<String> = NON_ROOT_UIDS.iter().map(|u| (*u).to_owned()).collect();
    for field in &fields {
        uids.extend(q.literals(filter, field));
    }
    uids.retain(|u| u.trim() != "0");
    uids.iter().any(|uid| {
        q.filter_may_match(filter, &|name: &str| {
            if fields.contains(&name) {
                Some(Value::Str(Cow::Owned(uid.clone())))
            } else {
                known(name)
            }
        })
    })
}

/// Whether the query reads a parent field that only the process table
/// supplies (process.parent.pid is the event's own ppid=).
fn reads_parent(q: &Query) -> bool {
    q.fields()
        .iter()
        .any(|f| f.starts_with("process.parent.") && f != "process.parent.pid")
}

#[cfg(test)]
mod tests;
