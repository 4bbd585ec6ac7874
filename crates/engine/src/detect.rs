//! Detection: each loaded rule's EQL matcher fed every event in record
//! order, with each rule's max_signals applied per 5-minute window of record time.

use std::sync::Arc;

use crate::eql::Matcher;
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
}

struct Running {
    rule: Rule,
    /// Per kind of event (`fields::KINDS`' order), whether any filter of
    /// the rule may pass it: the rest of the rules never see that event,
    /// which changes nothing (a filter that cannot match leaves a matcher
    /// as it was, and expiry is by the time of the events it does see).
    kinds: Vec<bool>,
    matcher: Matcher<EcsEvent>,
    window: u64,
    in_window: u32,
    suppressed_unreported: u64,
}

pub struct Detector {
    running: Vec<Running>,
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
            schema: crate::fields::schema(),
            max_pending_events,
            stats: DetectStats::default(),
        };
        d.replace_rules(rules);
        d
    }

    fn start(&self, rule: Rule) -> Running {
        Running {
            kinds: crate::needs::kinds_of(&rule, &self.schema),
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
                    r.kinds = crate::needs::kinds_of(&rule, &self.schema);
                    r.rule = rule;
                    r
                }
                None => self.start(rule),
            };
            self.running.push(running);
        }
        kept
    }

    pub fn rules(&self) -> impl Iterator<Item = &Arc<RuleMeta>> {
        self.running.iter().map(|r| &r.rule.meta)
    }

    pub fn stats(&self) -> DetectStats {
        let (mut dropped, mut held) = (0, 0);
        for r in &self.running {
            let m = r.matcher.stats();
            dropped += m.dropped;
            held += m.held as u64;
        }
        DetectStats {
            dropped_pending: dropped,
            held_events: held,
            ..self.stats
        }
    }

    /// Feeds one event to every rule; matches within their rule's
    /// max_signals are appended to `out`.
    pub fn on_event(&mut self, event: &EcsEvent, out: &mut Vec<Match>) {
        let kind = crate::fields::KINDS
            .iter()
            .position(|(action, _, _)| *action == event.event.action);
        for r in &mut self.running {
            if kind.is_some_and(|k| !r.kinds.get(k).copied().unwrap_or(true)) {
                continue;
            }
            for events in r.matcher.on_event(event) {
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
