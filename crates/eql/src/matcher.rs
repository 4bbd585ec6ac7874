//! Running state of one query over an ordered event stream: single-event
//! filters, sequences with Elasticsearch's SequenceMatcher semantics, samples.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::compile::{Filters, KeyField, Kind, Query, Src, Stage};
use super::eval::matches;
use super::{Event, Value};

/// Most partial sequences (or incomplete samples) one matcher keeps; past
/// it the oldest are dropped and counted in [`MatcherStats::dropped`].
/// Without `maxspan` nothing else bounds a sequence's memory.
pub const MAX_PENDING: usize = 100_000;

/// Most events one matcher holds across its partial sequences (or
/// incomplete samples); past it the oldest partials are dropped and counted
/// in [`MatcherStats::dropped`]. Each partial keeps its own copies of the
/// events it matched, so with long `runs` the events held per key grow with
/// the square of the stage count and [`MAX_PENDING`] alone does not bound memory.
pub const MAX_HELD_EVENTS: usize = 100_000;

/// Most last-stage events one matcher keeps while no partial sequence was
/// waiting for them ("orphans"), for an earlier stage's event that arrives
/// after them; past it the oldest are forgotten, counted in
/// [`MatcherStats::late_forgotten`]. Each is a copy of its event and every
/// sequence rule of a pack has its own: 1024 bounds a 290-rule pack to a
/// few hundred MB in the worst case, and out-of-order arrival needs a few.
pub const MAX_ORPHANS: usize = 1024;

/// Record time after which an incomplete sample is dropped, and for which a
/// key that produced a sample then ignores further events. Elasticsearch
/// samples a fixed search window; live, we need a horizon, and five minutes
/// matches the interval at which Elastic runs its rules.
pub const SAMPLE_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Counters for one matcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatcherStats {
    /// Partial sequences or incomplete samples held now.
    pub pending: usize,
    /// Events held now across them (bounded by [`MAX_HELD_EVENTS`]).
    pub held: usize,
    /// Dropped because maxspan (or the sample window) ran out before they could complete.
    pub expired: u64,
    /// Stage events that found a partial sequence but lay beyond its maxspan.
    pub rejected_maxspan: u64,
    /// Partial sequences dropped by an `until` event.
    pub rejected_until: u64,
    /// Dropped, oldest first, to stay within [`MAX_PENDING`] or [`MAX_HELD_EVENTS`].
    pub dropped: u64,
    /// Partial sequences replaced by a newer one for the same key and stage.
    pub replaced: u64,
    /// Completed matches returned.
    pub matches: u64,
    /// Of them, completed by an earlier stage's event that arrived after the
    /// last stage's (a blocking connect written after another thread's setsid).
    pub late_matches: u64,
    /// Last-stage events kept for late pairing and forgotten past
    /// [`MAX_ORPHANS`] (not in `dropped`: a busy host's common last stages
    /// reach the bound with no sequence lost that arrived in order).
    pub late_forgotten: u64,
}

/// One join key value. Floats are kept by bit pattern so keys can hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Box<str>),
    List(Vec<KeyPart>),
}

/// Shared, so the aging queue, the state map and the per-event cache each
/// hold the key without copying its strings.
type Key = Arc<[KeyPart]>;

fn key_part(v: &Value) -> KeyPart {
    match v {
        Value::Null => KeyPart::Null,
        Value::Bool(b) => KeyPart::Bool(*b),
        Value::Int(i) => KeyPart::Int(*i),
        // Integral floats join with equal integers, as numbers compare.
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => KeyPart::Int(*f as i64),
        Value::Float(f) => KeyPart::Float(f.to_bits()),
        Value::Str(s) => KeyPart::Str(s.as_ref().into()),
        Value::List(l) if l.is_empty() => KeyPart::Null,
        Value::List(l) => KeyPart::List(l.iter().map(key_part).collect()),
    }
}

/// The event's join key, or None when a non-optional key field is null:
/// such an event joins nothing.
fn key_of<E: Event>(spec: &[KeyField], ev: &E) -> Option<Key> {
    let mut key = Vec::with_capacity(spec.len());
    for k in spec {
        let part = match &k.src {
            Src::Field(f) => key_part(&ev.field_at(f.at, &f.name)),
            _ => KeyPart::Null,
        };
        if part == KeyPart::Null && !k.optional {
            return None;
        }
        key.push(part);
    }
    Some(key.into())
}

type Ordinal = (u64, u64);

struct Partial<E> {
    id: u64,
    start: Ordinal,
    last: Ordinal,
    events: Vec<E>,
}

/// Order of creation, for expiry and the cap. Entries whose partial is gone
/// are skipped when met and compacted away when they pile up.
struct Aging {
    queue: VecDeque<(u64, Key, u64)>,
    next_id: u64,
}

impl Aging {
    fn new() -> Aging {
        Aging {
            queue: VecDeque::new(),
            next_id: 0,
        }
    }

    fn push(&mut self, start_ms: u64, key: Key) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back((start_ms, key, id));
        id
    }
}

struct SeqState<E> {
    /// Per join key, the partial sequence waiting at each stage but the last.
    keys: HashMap<Key, Vec<Option<Partial<E>>>>,
    aging: Aging,
    live: usize,
    /// Events held by the partials in `keys`.
    held: usize,
    /// Per join key, last-stage events no partial was waiting for, kept for
    /// one maxspan of record time: the order of arrival is the order in which
    /// calls ended, and a call that blocked (connect) ends after a later one
    /// of another thread (setsid) that it precedes in record time.
    orphans: HashMap<Key, VecDeque<(Ordinal, E)>>,
    /// Orphans in arrival order, for expiry and the cap.
    orphan_aging: VecDeque<(u64, Key)>,
    orphan_count: usize,
}

impl<E: Clone> SeqState<E> {
    /// Keeps `ev` as an orphan; returns how many old ones the bound pushed out.
    fn keep_orphan(&mut self, key: Key, at: Ordinal, ev: &E) -> u64 {
        self.orphans
            .entry(Arc::clone(&key))
            .or_default()
            .push_back((at, ev.clone()));
        self.orphan_aging.push_back((at.0, key));
        self.orphan_count += 1;
        let mut forgotten = 0;
        while self.orphan_count > MAX_ORPHANS {
            let Some((ms, key)) = self.orphan_aging.pop_front() else {
                break;
            };
            // An entry whose orphan was paired since is stale: skipped.
            let before = self.orphan_count;
            self.forget_orphans(&key, |o| o.0 == ms, true);
            forgotten += (before - self.orphan_count) as u64;
        }
        forgotten
    }

    /// Removes the key's orphans that `gone` picks (only the first such,
    /// with `first`).
    fn forget_orphans(&mut self, key: &Key, gone: impl Fn(&Ordinal) -> bool, first: bool) {
        let Some(list) = self.orphans.get_mut(key) else {
            return;
        };
        let before = list.len();
        if first {
            if let Some(i) = list.iter().position(|(o, _)| gone(o)) {
                list.remove(i);
            }
        } else {
            list.retain(|(o, _)| !gone(o));
        }
        self.orphan_count -= before - list.len();
        if list.is_empty() {
            self.orphans.remove(key);
        }
    }

    /// Forgets orphans with a record time before `cutoff_ms`.
    fn expire_orphans(&mut self, cutoff_ms: u64) {
        while self
            .orphan_aging
            .front()
            .is_some_and(|(ms, _)| *ms < cutoff_ms)
        {
            if let Some((_, key)) = self.orphan_aging.pop_front() {
                self.forget_orphans(&key, |o| o.0 < cutoff_ms, false);
            }
        }
    }

    /// The earliest orphan of `key` that `p` (now waiting at the stage before
    /// the last) would have met first had events come in record-time order:
    /// strictly after its last event, within maxspan of its start, and
    /// before `newer`, the start of a partial that in time order would have
    /// replaced it. The same millisecond does not count: the kernel's clock
    /// ticks in jiffies, so calls a few ms apart share a stamp, and arrival
    /// is then the tiebreaker (a setsid, then a connect in its jiffy, is not
    /// the sequence).
    fn take_orphan(
        &mut self,
        key: &Key,
        p: &Partial<E>,
        maxspan: u64,
        newer: Option<Ordinal>,
    ) -> Option<E> {
        let list = self.orphans.get_mut(key)?;
        let at = list.iter().enumerate().filter(|(_, (o, _))| {
            o.0 > p.last.0
                && o.0.saturating_sub(p.start.0) <= maxspan
                && newer.is_none_or(|n| *o < n)
        });
        let (i, _) = at.min_by_key(|(_, (o, _))| *o)?;
        let (_, ev) = list.remove(i)?;
        self.orphan_count -= 1;
        if list.is_empty() {
            self.orphans.remove(key);
        }
        // Its aging entry is left behind, and skipped when met.
        Some(ev)
    }
}

struct SampleSlots<E> {
    id: u64,
    events: Vec<Option<E>>,
    filled: usize,
    /// The key produced its sample: it ignores events until its window,
    /// timed from the sample's first event, runs out (Elasticsearch's
    /// default `max_samples_per_key` is 1).
    done: bool,
}

struct SampleState<E> {
    /// Incomplete samples and keys waiting out their window after a sample.
    keys: HashMap<Key, SampleSlots<E>>,
    aging: Aging,
    /// Incomplete samples in `keys`.
    live: usize,
    /// Events held by them.
    held: usize,
}

enum State<E> {
    Single,
    Sequence(SeqState<E>),
    Sample(SampleState<E>),
}

/// Running state of one query over a stream of events.
///
/// Sequences follow Elasticsearch's SequenceMatcher: per join key and stage
/// one partial sequence; a newer first-stage event replaces an older pending
/// one; an event matching stage k takes the partial waiting at stage k-1 for
/// its key if that one's last event is strictly earlier, checks maxspan from
/// the sequence's first event (a gap equal to maxspan still matches) and
/// moves it to stage k, replacing what waited there. An event is tried
/// against the later stages first and the first stage last, so it never
/// both starts and continues one sequence. An `until` event is applied after
/// the event's own stages: it drops every partial sequence of its key whose
/// last event is at or before it, including one the same event just started
/// or moved (Elasticsearch's `Ordinal.between` is inclusive at both ends);
/// a sequence the event completes is already returned.
///
/// Samples: each key produces at most one sample per [`SAMPLE_WINDOW_MS`]
/// of record time, timed from the sample's first event.
pub struct Matcher<E: Event> {
    query: Arc<Query>,
    state: State<E>,
    stats: MatcherStats,
    /// Per distinct filter, whether the current event matched it.
    hits: Vec<bool>,
    /// Per key spec, the current event's key (computed at most once).
    key_cache: Vec<Option<Option<Key>>>,
    cap: usize,
    held_cap: usize,
}

impl<E: Event> Matcher<E> {
    pub fn new(query: Arc<Query>) -> Self {
        Self::with_cap(query, MAX_PENDING)
    }

    /// As `new`, with another bound on pending state (tests use small ones).
    pub fn with_cap(query: Arc<Query>, cap: usize) -> Self {
        Self::with_limits(query, cap, MAX_HELD_EVENTS)
    }

    /// As `new`, with other bounds on pending state and on events held.
    pub fn with_limits(query: Arc<Query>, cap: usize, held_cap: usize) -> Self {
        let state = match &query.kind {
            Kind::Single => State::Single,
            Kind::Sequence { .. } => State::Sequence(SeqState {
                keys: HashMap::new(),
                aging: Aging::new(),
                live: 0,
                held: 0,
                orphans: HashMap::new(),
                orphan_aging: VecDeque::new(),
                orphan_count: 0,
            }),
            Kind::Sample { .. } => State::Sample(SampleState {
                keys: HashMap::new(),
                aging: Aging::new(),
                live: 0,
                held: 0,
            }),
        };
        let hits = vec![false; query.conds.len()];
        let key_cache = vec![None; query.key_specs.len()];
        Matcher {
            query,
            state,
            stats: MatcherStats::default(),
            hits,
            key_cache,
            cap: cap.max(1),
            held_cap: held_cap.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn aging_len(&self) -> usize {
        match &self.state {
            State::Sequence(st) => st.aging.queue.len(),
            State::Sample(st) => st.aging.queue.len(),
            State::Single => 0,
        }
    }

    pub fn query(&self) -> &Arc<Query> {
        &self.query
    }

    /// Whether it holds partial sequences (or incomplete samples): while a
    /// sequence holds none, an event that cannot pass its first stage
    /// changes nothing.
    pub fn holds_partials(&self) -> bool {
        match &self.state {
            State::Single => false,
            State::Sequence(st) => st.live > 0,
            State::Sample(st) => st.live > 0,
        }
    }

    /// Whether it keeps last-stage events that completed nothing, for an
    /// earlier stage that arrives after them (sequences with maxspan and no
    /// until): those must be offered every event of their last stage, not
    /// only while partial sequences wait.
    pub fn keeps_late(&self) -> bool {
        matches!(
            &self.query.kind,
            Kind::Sequence {
                maxspan_ms: Some(_),
                until: None,
                ..
            }
        )
    }

    pub fn stats(&self) -> MatcherStats {
        let mut s = self.stats;
        (s.pending, s.held) = match &self.state {
            State::Single => (0, 0),
            State::Sequence(st) => (st.live, st.held),
            State::Sample(st) => (st.live, st.held),
        };
        s
    }

    /// Feeds one event (in ordinal order); returns every match it completes,
    /// each the matched events in stage order (one event for a single-event query).
    pub fn on_event(&mut self, event: &E) -> Vec<Vec<E>> {
        self.step(event, None)
    }

    /// As [`on_event`](Self::on_event), testing the event against `filters`,
    /// this matcher's query specialized ([`Query::specialize`]) to what the
    /// event is known to be. Filters of another query are ignored: the
    /// event is tested against the query's own.
    pub fn on_event_with(&mut self, event: &E, filters: &Filters) -> Vec<Vec<E>> {
        self.step(event, Some(filters))
    }

    fn step(&mut self, event: &E, filters: Option<&Filters>) -> Vec<Vec<E>> {
        let own = &self.query.conds;
        let conds = match filters {
            Some(f) if f.conds.len() == own.len() => &f.conds,
            _ => own,
        };
        let mut any = false;
        for (hit, cond) in self.hits.iter_mut().zip(conds) {
            *hit = matches(cond, event);
            any |= *hit;
        }
        if matches!(self.query.kind, Kind::Single) {
            // Most rules: no state, and no need to hold the query.
            if !any {
                return Vec::new();
            }
            self.stats.matches += 1;
            return vec![vec![event.clone()]];
        }
        let query = Arc::clone(&self.query);
        let now = event.ordinal();
        let out = match &query.kind {
            // Answered above.
            Kind::Single => Vec::new(),
            Kind::Sequence {
                stages,
                until,
                maxspan_ms,
            } => {
                if let Some(span) = maxspan_ms {
                    self.expire_before(now.0.saturating_sub(*span));
                }
                if !any {
                    return Vec::new();
                }
                for k in self.key_cache.iter_mut() {
                    *k = None;
                }
                self.sequence_event(&query, stages, until.as_ref(), *maxspan_ms, event, now)
            }
            Kind::Sample { stages } => {
                self.expire_before(now.0.saturating_sub(SAMPLE_WINDOW_MS));
                if !any {
                    return Vec::new();
                }
                for k in self.key_cache.iter_mut() {
                    *k = None;
                }
                self.sample_event(&query, stages, event, now)
            }
        };
        self.stats.matches += out.len() as u64;
        out
    }

    fn key(&mut self, query: &Query, spec: usize, ev: &E) -> Option<Key> {
        if self.key_cache[spec].is_none() {
            self.key_cache[spec] = Some(key_of(&query.key_specs[spec], ev));
        }
        self.key_cache[spec].clone().flatten()
    }

    fn sequence_event(
        &mut self,
        query: &Query,
        stages: &[Stage],
        until: Option<&Stage>,
        maxspan: Option<u64>,
        ev: &E,
        now: Ordinal,
    ) -> Vec<Vec<E>> {
        let mut out = Vec::new();
        let last_stage = stages.len() - 1;
        // Late pairing needs a horizon (maxspan), and `until` would need its
        // own events kept as well: only sequences with maxspan and no until.
        let late_span = maxspan.filter(|_| until.is_none());
        // The key of a last-stage event that completed nothing: an orphan.
        let mut orphan: Option<Key> = None;
        for k in (1..stages.len()).rev() {
            if !self.hits[stages[k].filter] {
                continue;
            }
            let Some(key) = self.key(query, stages[k].keys, ev) else {
                continue;
            };
            if k == last_stage && late_span.is_some() {
                orphan = Some(Arc::clone(&key));
            }
            let State::Sequence(st) = &mut self.state else {
                return out;
            };
            let Some(slots) = st.keys.get_mut(&key) else {
                continue;
            };
            let Some(mut p) = slots[k - 1].take() else {
                continue;
            };
            if p.last >= now {
                // Not strictly after the previous stage: it stays waiting.
                slots[k - 1] = Some(p);
                continue;
            }
            if maxspan.is_some_and(|span| now.0.saturating_sub(p.start.0) > span) {
                st.live -= 1;
                st.held -= p.events.len();
                self.stats.rejected_maxspan += 1;
                if slots.iter().all(Option::is_none) {
                    st.keys.remove(&key);
                }
                continue;
            }
            p.events.push(ev.clone());
            st.held += 1;
            p.last = now;
            if k == last_stage {
                orphan = None;
                st.live -= 1;
                st.held -= p.events.len();
                out.push(p.events);
            } else {
                let newer = slots[k].as_ref().map(|o| o.last).filter(|l| *l > now);
                let paired = match late_span {
                    Some(span) if k == last_stage - 1 => st.take_orphan(&key, &p, span, newer),
                    _ => None,
                };
                let Some(slots) = st.keys.get_mut(&key) else {
                    continue;
                };
                if let Some(last) = paired {
                    st.live -= 1;
                    st.held -= p.events.len();
                    p.events.push(last);
                    self.stats.late_matches += 1;
                    out.push(p.events);
                } else if newer.is_some() {
                    // In record-time order the one waiting came after this
                    // one and replaced it.
                    st.live -= 1;
                    st.held -= p.events.len();
                    self.stats.replaced += 1;
                } else if let Some(old) = slots[k].replace(p) {
                    st.live -= 1;
                    st.held -= old.events.len();
                    self.stats.replaced += 1;
                }
            }
            if st
                .keys
                .get(&key)
                .is_some_and(|slots| slots.iter().all(Option::is_none))
            {
                st.keys.remove(&key);
            }
        }
        if self.hits[stages[0].filter] {
            if let Some(key) = self.key(query, stages[0].keys, ev) {
                if let State::Sequence(st) = &mut self.state {
                    let id = st.aging.push(now.0, Arc::clone(&key));
                    let mut fresh = Partial {
                        id,
                        start: now,
                        last: now,
                        events: vec![ev.clone()],
                    };
                    let newer = st
                        .keys
                        .get(&key)
                        .and_then(|slots| slots[0].as_ref())
                        .map(|o| o.last)
                        .filter(|l| *l > now);
                    let paired = match late_span {
                        Some(span) if last_stage == 1 => st.take_orphan(&key, &fresh, span, newer),
                        _ => None,
                    };
                    if let Some(last) = paired {
                        fresh.events.push(last);
                        self.stats.late_matches += 1;
                        out.push(fresh.events);
                    } else if newer.is_some() {
                        // Record-time order: the one waiting replaced this one.
                        self.stats.replaced += 1;
                    } else {
                        let slots = st
                            .keys
                            .entry(Arc::clone(&key))
                            .or_insert_with(|| (0..last_stage).map(|_| None).collect());
                        st.held += 1;
                        match slots[0].replace(fresh) {
                            None => st.live += 1,
                            Some(old) => {
                                st.held -= old.events.len();
                                self.stats.replaced += 1;
                            }
                        }
                    }
                    if st
                        .keys
                        .get(&key)
                        .is_some_and(|slots| slots.iter().all(Option::is_none))
                    {
                        st.keys.remove(&key);
                    }
                }
            }
        }
        if let (Some(key), State::Sequence(st)) = (orphan, &mut self.state) {
            self.stats.late_forgotten += st.keep_orphan(key, now, ev);
        }
        // After the stages, so that `until` also rejects what this very
        // event started or moved: Elasticsearch rejects a sequence whose last
        // event is at or before the until event (`Ordinal.between` is
        // inclusive), and only an until strictly before the completing event
        // counts, so what this event completed above stands.
        if let Some(u) = until {
            if self.hits[u.filter] {
                if let Some(key) = self.key(query, u.keys, ev) {
                    if let State::Sequence(st) = &mut self.state {
                        if let Some(slots) = st.keys.get_mut(&key) {
                            for slot in slots.iter_mut() {
                                if slot.as_ref().is_some_and(|p| p.last <= now) {
                                    if let Some(p) = slot.take() {
                                        st.live -= 1;
                                        st.held -= p.events.len();
                                        self.stats.rejected_until += 1;
                                    }
                                }
                            }
                            if slots.iter().all(Option::is_none) {
                                st.keys.remove(&key);
                            }
                        }
                    }
                }
            }
        }
        self.enforce_cap();
        out
    }

    fn sample_event(
        &mut self,
        query: &Query,
        stages: &[Stage],
        ev: &E,
        now: Ordinal,
    ) -> Vec<Vec<E>> {
        let mut out = Vec::new();
        for (i, stage) in stages.iter().enumerate() {
            if !self.hits[stage.filter] {
                continue;
            }
            let Some(key) = self.key(query, stage.keys, ev) else {
                continue;
            };
            let State::Sample(st) = &mut self.state else {
                return out;
            };
            if let Some(slots) = st.keys.get_mut(&key) {
                if slots.done || slots.events[i].is_some() {
                    // Sampled already this window, or this filter is filled;
                    // the event may still serve another filter's key.
                    continue;
                }
                slots.events[i] = Some(ev.clone());
                slots.filled += 1;
                st.held += 1;
                if slots.filled == stages.len() {
                    let events: Vec<E> = slots.events.iter_mut().filter_map(Option::take).collect();
                    // The entry stays, emptied, until its window runs out
                    // (its aging entry still carries the first event's time).
                    slots.done = true;
                    slots.filled = 0;
                    st.live -= 1;
                    st.held -= events.len();
                    out.push(events);
                }
                break;
            }
            let id = st.aging.push(now.0, Arc::clone(&key));
            let mut events: Vec<Option<E>> = (0..stages.len()).map(|_| None).collect();
            events[i] = Some(ev.clone());
            st.keys.insert(
                key,
                SampleSlots {
                    id,
                    events,
                    filled: 1,
                    done: false,
                },
            );
            st.live += 1;
            st.held += 1;
            break;
        }
        self.enforce_cap();
        out
    }

    /// Drops state that can no longer complete as of this record time (ms);
    /// the matcher also does this itself on every event, so memory stays
    /// bounded by what one maxspan of traffic can start.
    pub fn expire(&mut self, now_ms: u64) {
        match &self.query.kind {
            Kind::Sequence {
                maxspan_ms: Some(span),
                ..
            } => {
                let span = *span;
                self.expire_before(now_ms.saturating_sub(span));
            }
            Kind::Sample { .. } => self.expire_before(now_ms.saturating_sub(SAMPLE_WINDOW_MS)),
            _ => {}
        }
    }

    /// Drops pending state that started strictly before `cutoff_ms`, and
    /// orphans older than it.
    fn expire_before(&mut self, cutoff_ms: u64) {
        if let State::Sequence(st) = &mut self.state {
            st.expire_orphans(cutoff_ms);
        }
        loop {
            let front = match &self.state {
                State::Sequence(st) => st.aging.queue.front().map(|e| e.0),
                State::Sample(st) => st.aging.queue.front().map(|e| e.0),
                State::Single => None,
            };
            match front {
                Some(start) if start < cutoff_ms => {
                    if self.drop_front() {
                        self.stats.expired += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn enforce_cap(&mut self) {
        loop {
            // Samples count the keys waiting out their window too: each
            // holds a map entry, if no events.
            let (entries, held, queued) = match &self.state {
                State::Sequence(st) => (st.live, st.held, st.aging.queue.len()),
                State::Sample(st) => (st.keys.len(), st.held, st.aging.queue.len()),
                State::Single => (0, 0, 0),
            };
            if (entries <= self.cap && held <= self.held_cap) || queued == 0 {
                break;
            }
            if self.drop_front() {
                self.stats.dropped += 1;
            }
        }
        self.compact();
    }

    /// Pops the oldest aging entry, dropping its state if still there;
    /// returns whether that was a pending partial sequence or sample.
    fn drop_front(&mut self) -> bool {
        match &mut self.state {
            State::Sequence(st) => {
                let Some((_, key, id)) = st.aging.queue.pop_front() else {
                    return false;
                };
                let Some(slots) = st.keys.get_mut(&key) else {
                    return false;
                };
                let mut found = false;
                for slot in slots.iter_mut() {
                    if slot.as_ref().is_some_and(|p| p.id == id) {
                        if let Some(p) = slot.take() {
                            st.held -= p.events.len();
                            found = true;
                        }
                    }
                }
                if found {
                    st.live -= 1;
                }
                if slots.iter().all(Option::is_none) {
                    st.keys.remove(&key);
                }
                found
            }
            State::Sample(st) => {
                let Some((_, key, id)) = st.aging.queue.pop_front() else {
                    return false;
                };
                if st.keys.get(&key).is_none_or(|s| s.id != id) {
                    return false;
                }
                match st.keys.remove(&key) {
                    // A key whose window ran out: it may sample again.
                    Some(s) if s.done => false,
                    Some(s) => {
                        st.live -= 1;
                        st.held -= s.filled;
                        true
                    }
                    None => false,
                }
            }
            State::Single => false,
        }
    }

    /// Keeps the aging queue within a constant factor of the live state:
    /// replaced and completed partials leave stale entries behind.
    fn compact(&mut self) {
        match &mut self.state {
            State::Sequence(st) => {
                if st.aging.queue.len() > 2 * st.live + 1024 {
                    let keys = &st.keys;
                    st.aging.queue.retain(|(_, key, id)| {
                        keys.get(key)
                            .is_some_and(|slots| slots.iter().flatten().any(|p| p.id == *id))
                    });
                }
            }
            State::Sample(st) => {
                // Against every entry, not just `live`: finished keys keep
                // their aging entry until their window runs out.
                if st.aging.queue.len() > 2 * st.keys.len() + 1024 {
                    let keys = &st.keys;
                    st.aging
                        .queue
                        .retain(|(_, key, id)| keys.get(key).is_some_and(|s| s.id == *id));
                }
            }
            State::Single => {}
        }
    }
}
