//! Detection: each loaded rule's EQL matcher fed, in record order, the events
//! its filters may pass (an index by kind of event and process.name picks
//! them), with each rule's max_signals applied per 5-minute window of record time.

use std::collections::HashMap;
use std::sync::Arc;

use crate::eql::{Filters, Matcher, Required, StrHash, Value};
use crate::normalize::EcsEvent;
use crate::rulefile::{Rule, RuleMeta};

/// Elastic runs a rule every 5 minutes and keeps at most max_signals alerts
/// a run; audetect counts alerts per rule in 5-minute windows of record time.
pub const WINDOW_MS: u64 = 5 * 60 * 1000;

/// A rule's query matched: the events, in stage order.
#[derive(Debug, Clone)]
pub struct Match {
    pub rule: Arc<RuleMeta>,
    pub events: Vec<EcsEvent>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectStats {
    pub matches: u64,
    /// Partial sequences dropped to stay within max_pending_events.
    pub dropped_pending: u64,
    /// Events held in partial sequences, all rules together.
    pub held_events: u64,
    /// Matches over a rule's max_signals in a window: counted, not alerted.
    pub suppressed: u64,
    /// Matches whose earlier stage's event arrived after the last stage's.
    pub late_matches: u64,
    /// Last-stage events kept for such late pairing and forgotten at the
    /// bound (eql's MAX_ORPHANS per rule).
    pub late_forgotten: u64,
}

/// Besides their kind, the fields events are indexed by: a rule is filed
/// under the values of these its filters require (most of Elastic's
/// process rules name the programs they are about). Only fields whose
/// values are always strings (or lists of them), as the index compares
/// strings.
pub(crate) const INDEX_FIELDS: &[&str] = &[
    "process.name",
    "process.parent.name",
    "process.executable",
    "file.name",
    "file.extension",
    "file.path",
    "process.parent.executable",
    "process.args",
];

/// How many events a pin is likely to let through, roughly, to choose
/// between the parts of an `and`: a program's name is rarer than an
/// argument such as `-c`, a short prefix lets much through.
fn pin_weight(field: usize, value: &Required) -> u64 {
    let by_field = match INDEX_FIELDS.get(field) {
        Some(&"process.name") => 1,
        Some(&"process.args") => 4,
        _ => 2,
    };
    let by_value = match value {
        Required::Exact(_) | Required::Folded(_) => 1,
        Required::Prefix(p)
        | Required::FoldedPrefix(p)
        | Required::Suffix(p)
        | Required::FoldedSuffix(p)
            if p.len() < 3 =>
        {
            8
        }
        _ => 2,
    };
    by_field * by_value
}

struct Running {
    rule: Rule,
    matcher: Matcher<EcsEvent>,
    window: u64,
    in_window: u32,
    suppressed_unreported: u64,
}

/// Rules (their slots) filed under what one field's value must be, start or end with.
#[derive(Default)]
struct Keys {
    exact: HashMap<Box<str>, Vec<usize>, StrHash>,
    folded: HashMap<Box<str>, Vec<usize>, StrHash>,
    /// By `Affix`: prefixes, folded prefixes, suffixes, folded suffixes.
    affixes: [Affixes; 4],
}

/// Rules filed under a prefix or suffix, with the distinct byte lengths
/// of the keys: a value is looked up once per length.
#[derive(Default)]
struct Affixes {
    rules: HashMap<Box<str>, Vec<usize>, StrHash>,
    lens: Vec<usize>,
}

const PREFIX: usize = 0;
const FOLDED_PREFIX: usize = 1;
const SUFFIX: usize = 2;
const FOLDED_SUFFIX: usize = 3;

impl Affixes {
    fn lookup(&self, v: &str, suffix: bool, out: &mut Vec<usize>) {
        for &n in &self.lens {
            let part = if suffix {
                v.len().checked_sub(n).and_then(|at| v.get(at..))
            } else {
                v.get(..n)
            };
            if let Some(rules) = part.and_then(|p| self.rules.get(p)) {
                out.extend_from_slice(rules);
            }
        }
    }
}

impl Keys {
    fn file(&mut self, value: Required, rule: usize) {
        let (map, key) = match value {
            Required::Exact(s) => (&mut self.exact, s),
            Required::Folded(s) => (&mut self.folded, s),
            Required::Prefix(s) => (&mut self.affixes[PREFIX].rules, s),
            Required::FoldedPrefix(s) => (&mut self.affixes[FOLDED_PREFIX].rules, s),
            Required::Suffix(s) => (&mut self.affixes[SUFFIX].rules, s),
            Required::FoldedSuffix(s) => (&mut self.affixes[FOLDED_SUFFIX].rules, s),
        };
        let rules = map.entry(key.into_boxed_str()).or_default();
        if rules.last() != Some(&rule) {
            rules.push(rule);
        }
    }

    fn finish(&mut self) {
        for a in &mut self.affixes {
            a.lens = a.rules.keys().map(|k| k.len()).collect();
            a.lens.sort_unstable();
            a.lens.dedup();
        }
    }

    fn folds(&self) -> bool {
        !self.folded.is_empty()
            || !self.affixes[FOLDED_PREFIX].rules.is_empty()
            || !self.affixes[FOLDED_SUFFIX].rules.is_empty()
    }

    /// The rules filed under what a value `v` is, starts or ends with, into `out`.
    fn lookup(&self, v: &str, fold: &mut String, out: &mut Vec<usize>) {
        if let Some(rules) = self.exact.get(v) {
            out.extend_from_slice(rules);
        }
        self.affixes[PREFIX].lookup(v, false, out);
        self.affixes[SUFFIX].lookup(v, true, out);
        if !self.folds() {
            return;
        }
        crate::eql::fold_case(v, fold);
        if let Some(rules) = self.folded.get(fold.as_str()) {
            out.extend_from_slice(rules);
        }
        self.affixes[FOLDED_PREFIX].lookup(fold, false, out);
        self.affixes[FOLDED_SUFFIX].lookup(fold, true, out);
    }
}

/// The rules that may see an event of one kind.
#[derive(Default)]
struct Bucket {
    /// Whatever its fields hold.
    any: Vec<usize>,
    /// Only if the field holds one of the values: by `INDEX_FIELDS`' index.
    fields: Vec<(usize, Keys)>,
}

impl Bucket {
    /// Files `slot` under the values `filters` of `q` require, or under
    /// every event of the kind when they do not all pin an indexed field.
    fn file(&mut self, q: &crate::eql::Query, filters: &[usize], slot: usize) {
        let mut pins = Some(Vec::new());
        for &f in filters {
            match (&mut pins, q.required_values(f, INDEX_FIELDS, &pin_weight)) {
                (Some(all), Some(p)) => all.extend(p),
                _ => pins = None,
            }
        }
        let Some(pins) = pins else {
            self.any.push(slot);
            return;
        };
        for (at, value) in pins {
            let keys = match self.fields.iter().position(|(f, _)| *f == at) {
                Some(p) => &mut self.fields[p].1,
                None => {
                    self.fields.push((at, Keys::default()));
                    &mut self.fields.last_mut().expect("just pushed").1
                }
            };
            keys.file(value, slot);
        }
    }
}

/// Which rules an event is offered to, by its kind and the values of
/// `INDEX_FIELDS`. Skipping the others changes nothing: a filter that
/// cannot match leaves a matcher as it was, and expiry is by the time of the
/// events it does see.
struct Index {
    /// Per kind of event, in `fields::KINDS`' order, then one for an event
    /// of no known kind.
    kinds: Vec<Bucket>,
    /// Per kind of event, then per rule, its filters specialized to that
    /// kind (what the kind fixes folded in); none for a rule that never
    /// sees it, nor for the unknown kind.
    filters: Vec<Vec<Option<Filters>>>,
    /// Each of `INDEX_FIELDS`' place in the schema's fields, to read it by.
    places: Vec<usize>,
}

impl Index {
    fn build(running: &[Running], schema: &crate::eql::Schema) -> Index {
        let mut kinds: Vec<Bucket> = (0..=schema.kinds.len())
            .map(|_| Bucket::default())
            .collect();
        let mut filters: Vec<Vec<Option<Filters>>> = schema
            .kinds
            .iter()
            .map(|_| running.iter().map(|_| None).collect())
            .collect();
        for (i, r) in running.iter().enumerate() {
            let q = &r.rule.query;
            let own = crate::needs::filters(q);
            for (k, bucket) in kinds.iter_mut().enumerate() {
                // The filters that may pass this kind; all for an unknown kind.
                let passing: Vec<usize> = own
                    .iter()
                    .copied()
                    .filter(|&f| {
                        schema.kinds.get(k).is_none_or(|kind| {
                            q.filter_may_match(f, &|name: &str| {
                                crate::needs::kind_value(kind, name)
                            })
                        })
                    })
                    .collect();
                if passing.is_empty() {
                    continue;
                }
                if let Some(kind) = schema.kinds.get(k) {
                    filters[k][i] =
                        Some(q.specialize(&|name: &str| crate::needs::kind_value(kind, name)));
                }
                // A sequence's later stages and `until` matter only while it
                // holds partial sequences: they are filed apart, as the odd slot.
                let first = q.first_stage_filter();
                let (always, waiting): (Vec<usize>, Vec<usize>) = passing
                    .iter()
                    .partition(|&&f| first.is_none_or(|first| first == f));
                for (slot, group) in [(2 * i, always), (2 * i + 1, waiting)] {
                    if !group.is_empty() {
                        bucket.file(q, &group, slot);
                    }
                }
            }
        }
        for b in &mut kinds {
            b.fields.sort_by_key(|(at, _)| *at);
            b.fields.iter_mut().for_each(|(_, k)| k.finish());
        }
        let places = INDEX_FIELDS
            .iter()
            .map(|f| {
                schema
                    .fields
                    .iter()
                    .position(|s| s == f)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        Index {
            kinds,
            filters,
            places,
        }
    }

    /// The slots of the rules to offer `event` to, in load order, into
    /// `out` (rule `i`'s are `2i`, and `2i + 1` for what matters only while
    /// it holds partial sequences); its kind.
    fn candidates(&self, event: &EcsEvent, fold: &mut String, out: &mut Vec<usize>) -> usize {
        out.clear();
        let k = crate::fields::KINDS
            .iter()
            .position(|(action, _, _)| *action == event.event.action)
            .unwrap_or(crate::fields::KINDS.len());
        let Some(bucket) = self.kinds.get(k) else {
            return k;
        };
        out.extend_from_slice(&bucket.any);
        for (at, keys) in &bucket.fields {
            let Some(field) = INDEX_FIELDS.get(*at) else {
                continue;
            };
            let place = self.places.get(*at).copied().unwrap_or(usize::MAX);
            match crate::eql::Event::field_at(event, place, field) {
                Value::Str(v) => keys.lookup(&v, fold, out),
                Value::List(items) => {
                    for item in &items {
                        if let Value::Str(v) = item {
                            keys.lookup(v, fold, out);
                        }
                    }
                }
                _ => {}
            }
        }
        if out.len() > bucket.any.len() {
            out.sort_unstable();
            out.dedup();
        }
        k
    }

    /// Rule `rule`'s filters specialized to kind `kind`, if it has them.
    fn filters(&self, kind: usize, rule: usize) -> Option<&Filters> {
        self.filters.get(kind)?.get(rule)?.as_ref()
    }
}

pub struct Detector {
    running: Vec<Running>,
    index: Index,
    /// Scratch for each event: its candidate rules, its folded process.name.
    candidates: Vec<usize>,
    folded: String,
    schema: crate::eql::Schema,
    max_pending_events: usize,
    stats: DetectStats,
}

impl Detector {
    /// `max_pending_events` bounds each rule's unfinished sequences, so
    /// memory stays bounded however many processes churn.
    pub fn new(rules: Vec<Rule>, max_pending_events: usize) -> Self {
        let mut d = Detector {
            running: Vec::new(),
            index: Index {
                kinds: Vec::new(),
                filters: Vec::new(),
                places: Vec::new(),
            },
            candidates: Vec::new(),
            folded: String::new(),
            schema: crate::fields::schema(),
            max_pending_events,
            stats: DetectStats::default(),
        };
        d.replace_rules(rules);
        d
    }

    fn start(&self, rule: Rule) -> Running {
        Running {
            matcher: Matcher::with_limits(
                Arc::clone(&rule.query),
                self.max_pending_events,
                self.max_pending_events,
            ),
            rule,
            window: 0,
            in_window: 0,
            suppressed_unreported: 0,
        }
    }

    /// Swaps in a new rule set (SIGHUP). A rule with the same id and the
    /// same query keeps its matcher, so its pending sequences survive;
    /// its metadata (severity, max_signals, ...) is the new one.
    pub fn replace_rules(&mut self, rules: Vec<Rule>) -> usize {
        let mut old = std::mem::take(&mut self.running);
        let mut kept = 0;
        for rule in rules {
            let same = old.iter().position(|r| {
                r.rule.meta.id == rule.meta.id && r.rule.query_text == rule.query_text
            });
            let running = match same {
                Some(i) => {
                    kept += 1;
                    let mut r = old.swap_remove(i);
                    r.rule = rule;
                    r
                }
                None => self.start(rule),
            };
            self.running.push(running);
        }
        self.index = Index::build(&self.running, &self.schema);
        kept
    }

    pub fn rules(&self) -> impl Iterator<Item = &Arc<RuleMeta>> {
        self.running.iter().map(|r| &r.rule.meta)
    }

    pub fn stats(&self) -> DetectStats {
        let (mut dropped, mut held, mut late, mut forgotten) = (0, 0, 0, 0);
        for r in &self.running {
            let m = r.matcher.stats();
            dropped += m.dropped;
            held += m.held as u64;
            late += m.late_matches;
            forgotten += m.late_forgotten;
        }
        DetectStats {
            dropped_pending: dropped,
            held_events: held,
            late_matches: late,
            late_forgotten: forgotten,
            ..self.stats
        }
    }

    /// Feeds one event to every rule that may use it; matches within their
    /// rule's max_signals are appended to `out`, in the rules' load order.
    pub fn on_event(&mut self, event: &EcsEvent, out: &mut Vec<Match>) {
        let mut candidates = std::mem::take(&mut self.candidates);
        let kind = self
            .index
            .candidates(event, &mut self.folded, &mut candidates);
        let mut last = None;
        for &slot in &candidates {
            let i = slot / 2;
            if last == Some(i) {
                continue;
            }
            let Some(r) = self.running.get_mut(i) else {
                continue;
            };
            if slot % 2 == 1 && !r.matcher.holds_partials() && !r.matcher.keeps_late() {
                continue;
            }
            last = Some(i);
            let matched = match self.index.filters(kind, i) {
                Some(filters) => r.matcher.on_event_with(event, filters),
                None => r.matcher.on_event(event),
            };
            for events in matched {
                self.stats.matches += 1;
                let window = events.last().map_or(0, |e| e.time.as_millis() / WINDOW_MS);
                if window != r.window {
                    r.window = window;
                    r.in_window = 0;
                }
                if r.in_window >= r.rule.meta.max_signals {
                    r.suppressed_unreported += 1;
                    self.stats.suppressed += 1;
                    continue;
                }
                r.in_window += 1;
                out.push(Match {
                    rule: Arc::clone(&r.rule.meta),
                    events,
                });
            }
        }
        self.candidates = candidates;
    }

    /// Rules that suppressed matches since the last call, and how many, so
    /// the daemon can say so in its log.
    pub fn take_suppressed(&mut self) -> Vec<(Arc<RuleMeta>, u64)> {
        self.running
            .iter_mut()
            .filter(|r| r.suppressed_unreported > 0)
            .map(|r| {
                (
                    Arc::clone(&r.rule.meta),
                    std::mem::take(&mut r.suppressed_unreported),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
