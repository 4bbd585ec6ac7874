//! The built-in rule as a sequence state machine with Elasticsearch's
//! semantics: per join key, a newer first stage replaces an older one, one
//! first stage completes at most one sequence, maxspan is inclusive.

use std::collections::HashMap;
use std::time::Duration;

use crate::normalize::EcsEvent;

/// Executables the rule excludes, matched with EQL's `:` (case-insensitive, wildcards).
pub const EXCLUDED_EXECUTABLES: [&str; 4] = [
    "/bin/ssh",
    "/sbin/ssh",
    "/usr/lib/systemd/systemd",
    "/usr/sbin/sshd",
];

pub const SEED_MAXSPAN: Duration = Duration::from_secs(60);

/// A completed sequence: the events of each stage, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub events: Vec<EcsEvent>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectStats {
    pub sequences_started: u64,
    pub sequences_replaced: u64,
    pub sequences_expired: u64,
    pub matches: u64,
    pub pending: u64,
}

pub struct Detector {
    maxspan_ms: u64,
    /// Stage-1 events waiting for their stage 2, by process.entity_id.
    pending: HashMap<String, EcsEvent>,
    newest_ms: u64,
    last_sweep_ms: u64,
    stats: DetectStats,
}

impl Detector {
    pub fn new(maxspan: Duration) -> Self {
        Detector {
            maxspan_ms: maxspan.as_millis() as u64,
            pending: HashMap::new(),
            newest_ms: 0,
            last_sweep_ms: 0,
            stats: DetectStats::default(),
        }
    }

    pub fn stats(&self) -> DetectStats {
        DetectStats {
            pending: self.pending.len() as u64,
            ..self.stats
        }
    }

    /// Feeds one event in record order; returns a match when it completes one.
    pub fn on_event(&mut self, ev: EcsEvent) -> Option<Match> {
        let now = ev.time.as_millis();
        self.newest_ms = self.newest_ms.max(now);
        self.sweep();
        if is_stage1(&ev) {
            self.stats.sequences_started += 1;
            if self
                .pending
                .insert(ev.process.entity_id.clone(), ev)
                .is_some()
            {
                self.stats.sequences_replaced += 1;
            }
            return None;
        }
        if !is_stage2(&ev) {
            return None;
        }
        let first = self.pending.remove(&ev.process.entity_id)?;
        let (t1, t2) = (first.time.as_millis(), ev.time.as_millis());
        let strictly_after =
            (first.time, first.audetect.audit.serial) < (ev.time, ev.audetect.audit.serial);
        if !strictly_after {
            // Out of order: keep waiting for a stage 2 that comes after it.
            self.pending.insert(first.process.entity_id.clone(), first);
            return None;
        }
        if t2 - t1 > self.maxspan_ms {
            self.stats.sequences_expired += 1;
            return None;
        }
        self.stats.matches += 1;
        Some(Match {
            events: vec![first, ev],
        })
    }

    /// Drops first stages that can no longer complete, measured in record
    /// time, so memory is bounded by what a maxspan of traffic can start.
    fn sweep(&mut self) {
        if self.newest_ms < self.last_sweep_ms + 1_000 {
            return;
        }
        self.last_sweep_ms = self.newest_ms;
        let horizon = self.newest_ms.saturating_sub(self.maxspan_ms);
        let before = self.pending.len();
        self.pending.retain(|_, ev| ev.time.as_millis() >= horizon);
        self.stats.sequences_expired += (before - self.pending.len()) as u64;
    }
}

fn common_conditions(ev: &EcsEvent) -> bool {
    ev.user.id == "0"
        && !ev.process.executable.as_deref().is_some_and(|exe| {
            EXCLUDED_EXECUTABLES
                .iter()
                .any(|p| wildcard_match_ci(p, exe))
        })
}

fn is_stage1(ev: &EcsEvent) -> bool {
    ev.event.category.contains(&"network")
        && ev.event.kind_of_change.contains(&"start")
        && ev.event.action == "connection_attempted"
        && common_conditions(ev)
}

fn is_stage2(ev: &EcsEvent) -> bool {
    ev.event.category.contains(&"process")
        && ev.event.action == "session_id_change"
        && common_conditions(ev)
}

/// EQL's `:` on strings: case-insensitive, `*` any run, `?` one character.
pub fn wildcard_match_ci(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
