//! Sequence and sample semantics, one case per property of Elasticsearch's
//! SequenceMatcher that DESIGN.md lists, plus the seed rule's verdicts.

use std::sync::Arc;

use super::{compile, list, s, test_schema, Ev};
use crate::{Matcher, Query, Value};

/// An event with an explicit (ms, tiebreaker) ordinal.
fn at(ms: u64, tie: u64, fields: &[(&str, Value<'static>)]) -> Ev {
    Ev {
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ord: (ms, tie),
    }
}

/// Stage `a` or `b` (or whatever `x` says) for key `k` at `ms`.
fn e(x: &str, k: &str, ms: u64) -> Ev {
    at(ms, ms, &[("x", s(x)), ("k", s(k))])
}

fn matcher(q: &str) -> Matcher<Ev> {
    Matcher::new(Arc::new(compile(q)))
}

/// Feeds the events; returns each match as the list of its events' `x`@ms.
fn run(m: &mut Matcher<Ev>, evs: &[Ev]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for ev in evs {
        for found in m.on_event(ev) {
            out.push(
                found
                    .iter()
                    .map(|e| {
                        let x = match e.fields.get("x") {
                            Some(Value::Str(x)) => x.to_string(),
                            _ => "?".into(),
                        };
                        format!("{x}@{}", e.ord.0)
                    })
                    .collect(),
            );
        }
    }
    out
}

fn m(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| i.to_string()).collect()
}

const AB: &str = r#"sequence by k [any where x == "a"] [any where x == "b"]"#;
const AB_1S: &str = r#"sequence by k with maxspan=1s [any where x == "a"] [any where x == "b"]"#;

#[test]
fn newer_first_stage_replaces_older() {
    let mut mt = matcher(AB);
    let got = run(
        &mut mt,
        &[
            e("a", "1", 0),
            e("a", "1", 10),
            e("b", "1", 20),
            e("b", "1", 30),
        ],
    );
    assert_eq!(got, vec![m(&["a@10", "b@20"])]);
    assert_eq!(mt.stats().replaced, 1);
    assert_eq!(mt.stats().matches, 1);
}

#[test]
fn one_first_stage_completes_one_sequence() {
    let mut mt = matcher(AB);
    let got = run(&mut mt, &[e("a", "1", 0), e("b", "1", 1), e("b", "1", 2)]);
    assert_eq!(got, vec![m(&["a@0", "b@1"])]);
    assert_eq!(mt.stats().pending, 0);
}

#[test]
fn later_stage_before_first_does_not_match() {
    let mut mt = matcher(AB);
    assert!(run(&mut mt, &[e("b", "1", 0), e("a", "1", 1)]).is_empty());
    assert_eq!(mt.stats().pending, 1);
}

#[test]
fn stage_must_be_strictly_after() {
    let mut mt = matcher(AB);
    let a = at(1000, 5, &[("x", s("a")), ("k", s("1"))]);
    let b_same = at(1000, 5, &[("x", s("b")), ("k", s("1"))]);
    let b_next = at(1000, 6, &[("x", s("b")), ("k", s("1"))]);
    assert!(mt.on_event(&a).is_empty());
    assert!(mt.on_event(&b_same).is_empty(), "same ordinal is not after");
    assert_eq!(
        mt.on_event(&b_next).len(),
        1,
        "the tiebreaker orders one millisecond"
    );
}

#[test]
fn maxspan_is_inclusive_from_the_first_event() {
    let mut mt = matcher(AB_1S);
    assert_eq!(run(&mut mt, &[e("a", "1", 0), e("b", "1", 1000)]).len(), 1);
    let mut mt = matcher(AB_1S);
    assert!(run(&mut mt, &[e("a", "1", 0), e("b", "1", 1001)]).is_empty());
    assert_eq!(mt.stats().expired, 1);
    // Measured from the FIRST event, not the previous one.
    let q = r#"sequence by k with maxspan=1s [any where x == "a"] [any where x == "b"] [any where x == "c"]"#;
    let mut mt = matcher(q);
    assert!(run(
        &mut mt,
        &[e("a", "1", 0), e("b", "1", 900), e("c", "1", 1100)]
    )
    .is_empty());
    let mut mt = matcher(q);
    assert_eq!(
        run(
            &mut mt,
            &[e("a", "1", 0), e("b", "1", 900), e("c", "1", 1000)]
        )
        .len(),
        1
    );
}

#[test]
fn late_stage_event_is_refused_whether_expired_or_rejected() {
    // Expiry runs before matching on every event, so an over-span partial
    // is normally counted as expired; the move-time check is the backstop.
    let mut mt = matcher(AB_1S);
    assert!(run(&mut mt, &[e("a", "1", 0), e("b", "1", 1500)]).is_empty());
    let st = mt.stats();
    assert_eq!(st.expired + st.rejected_maxspan, 1);
    assert_eq!(st.pending, 0);
}

#[test]
fn until_drops_pending_sequences_of_its_key() {
    let q = r#"sequence by k [any where x == "a"] [any where x == "b"] until [any where x == "u"]"#;
    let mut mt = matcher(q);
    assert!(run(&mut mt, &[e("a", "1", 0), e("u", "1", 1), e("b", "1", 2)]).is_empty());
    assert_eq!(mt.stats().rejected_until, 1);
    let mut mt = matcher(q);
    assert_eq!(
        run(&mut mt, &[e("a", "1", 0), e("b", "1", 1), e("u", "1", 2)]).len(),
        1
    );
    let mut mt = matcher(q);
    assert_eq!(
        run(&mut mt, &[e("u", "1", 0), e("a", "1", 1), e("b", "1", 2)]).len(),
        1
    );
    // Another key's until changes nothing.
    let mut mt = matcher(q);
    assert_eq!(
        run(&mut mt, &[e("a", "1", 0), e("u", "2", 1), e("b", "1", 2)]).len(),
        1
    );
}

#[test]
fn until_event_that_is_also_a_stage() {
    // An event that both ends and starts: it completes the earlier sequence
    // (Elasticsearch only counts an until strictly before the completing
    // event) but the sequence it starts is rejected at once, as
    // `Ordinal.between` is inclusive: the until is at its last event.
    let q = r#"sequence by k [any where x : ("a", "ab")] [any where x : ("b", "ab")] until [any where x == "ab"]"#;
    let mut mt = matcher(q);
    let got = run(&mut mt, &[e("a", "1", 0), e("ab", "1", 1), e("b", "1", 2)]);
    assert_eq!(got, vec![m(&["a@0", "ab@1"])]);
    assert_eq!(mt.stats().rejected_until, 1);
    assert_eq!((mt.stats().pending, mt.stats().held), (0, 0));
}

#[test]
fn until_event_that_moves_a_sequence_rejects_it() {
    let q = r#"sequence by k [any where x == "a"] [any where x : ("b", "bu")] [any where x == "c"]
        until [any where x : ("u", "bu")]"#;
    let mut mt = matcher(q);
    assert!(run(&mut mt, &[e("a", "1", 0), e("bu", "1", 1), e("c", "1", 2)]).is_empty());
    assert_eq!(mt.stats().rejected_until, 1);
    // Without the until it would have matched.
    let mut mt = matcher(q);
    assert_eq!(
        run(&mut mt, &[e("a", "1", 0), e("b", "1", 1), e("c", "1", 2)]).len(),
        1
    );
    // The until event that starts a sequence for another key leaves this one.
    let q = r#"sequence [any where x == "a"] by k [any where x == "b"] by k2
        until [any where x == "a"] by k2"#;
    let mut mt = matcher(q);
    let a = at(0, 0, &[("x", s("a")), ("k", s("1")), ("k2", s("2"))]);
    let b = at(1, 1, &[("x", s("b")), ("k2", s("1"))]);
    assert!(mt.on_event(&a).is_empty());
    assert_eq!(mt.on_event(&b).len(), 1);
}

#[test]
fn multi_key_by() {
    let q = r#"sequence by k, k2 [any where x == "a"] [any where x == "b"]"#;
    let ab = |x: &str, k2: &str, ms| at(ms, ms, &[("x", s(x)), ("k", s("1")), ("k2", s(k2))]);
    let mut mt = matcher(q);
    assert!(run(&mut mt, &[ab("a", "p", 0), ab("b", "q", 1)]).is_empty());
    assert_eq!(run(&mut mt, &[ab("b", "p", 2)]).len(), 1);
}

#[test]
fn per_stage_by_joins_different_fields() {
    let q = r#"sequence by k [any where x == "a"] by user.id [any where x == "b"] by process.pid"#;
    let mut mt = matcher(q);
    let a = at(0, 0, &[("x", s("a")), ("k", s("1")), ("user.id", s("7"))]);
    let b_other = at(
        1,
        1,
        &[("x", s("b")), ("k", s("1")), ("process.pid", s("8"))],
    );
    let b = at(
        2,
        2,
        &[("x", s("b")), ("k", s("1")), ("process.pid", s("7"))],
    );
    let b_int = at(
        3,
        3,
        &[("x", s("b")), ("k", s("1")), ("process.pid", Value::Int(7))],
    );
    assert!(mt.on_event(&a).is_empty());
    assert!(mt.on_event(&b_other).is_empty());
    assert_eq!(mt.on_event(&b).len(), 1);
    // A string "7" and a number 7 are different key values.
    mt.on_event(&a);
    assert!(mt.on_event(&b_int).is_empty());
}

#[test]
fn null_join_key_never_joins() {
    let mut mt = matcher(AB);
    let a_nokey = at(0, 0, &[("x", s("a"))]);
    let b_nokey = at(1, 1, &[("x", s("b"))]);
    assert!(mt.on_event(&a_nokey).is_empty());
    assert_eq!(mt.stats().pending, 0, "no key, no sequence");
    assert!(mt.on_event(&b_nokey).is_empty());
    mt.on_event(&e("a", "1", 2));
    assert!(mt.on_event(&at(3, 3, &[("x", s("b"))])).is_empty());
    let empty_list = at(4, 4, &[("x", s("a")), ("k", Value::List(vec![]))]);
    mt.on_event(&empty_list);
    assert_eq!(mt.stats().pending, 1);
}

#[test]
fn optional_join_key_may_be_null() {
    // Elasticsearch: `?field` in `by` makes null a valid key value.
    let q = r#"sequence by ?k [any where x == "a"] [any where x == "b"]"#;
    let mut mt = matcher(q);
    let got = run(
        &mut mt,
        &[at(0, 0, &[("x", s("a"))]), at(1, 1, &[("x", s("b"))])],
    );
    assert_eq!(got.len(), 1);
    let q = r#"sequence by ?no.such.field [any where x == "a"] [any where x == "b"]"#;
    let mut mt = matcher(q);
    assert_eq!(run(&mut mt, &[e("a", "1", 0), e("b", "2", 1)]).len(), 1);
}

#[test]
fn runs_repeat_a_stage() {
    let q = r#"sequence by k [any where x == "a"] with runs=3 [any where x == "b"]"#;
    let mut mt = matcher(q);
    assert!(run(&mut mt, &[e("a", "1", 0), e("a", "1", 1), e("b", "1", 2)]).is_empty());
    let mut mt = matcher(q);
    let got = run(
        &mut mt,
        &[
            e("a", "1", 0),
            e("a", "1", 1),
            e("a", "1", 2),
            e("b", "1", 3),
        ],
    );
    assert_eq!(got, vec![m(&["a@0", "a@1", "a@2", "b@3"])]);
    // A single repeated stage is a sequence on its own.
    let q = r#"sequence by k with maxspan=1m [any where x == "a"] with runs=3"#;
    let mut mt = matcher(q);
    let evs: Vec<Ev> = (0..7).map(|i| e("a", "1", i)).collect();
    let got = run(&mut mt, &evs);
    // Every event starts a sequence and moves the others along, so from the
    // third on each one completes the sequence begun two events earlier.
    assert_eq!(
        got,
        vec![
            m(&["a@0", "a@1", "a@2"]),
            m(&["a@1", "a@2", "a@3"]),
            m(&["a@2", "a@3", "a@4"]),
            m(&["a@3", "a@4", "a@5"]),
            m(&["a@4", "a@5", "a@6"]),
        ]
    );
}

#[test]
fn event_matching_both_stages() {
    let q = r#"sequence by k [any where x == "a"] [any where x == "a"]"#;
    let mut mt = matcher(q);
    assert!(
        run(&mut mt, &[e("a", "1", 0)]).is_empty(),
        "one event never starts and ends a sequence"
    );
    let got = run(&mut mt, &[e("a", "1", 1), e("a", "1", 2)]);
    assert_eq!(got, vec![m(&["a@0", "a@1"]), m(&["a@1", "a@2"])]);
}

#[test]
fn replacement_at_a_middle_stage() {
    let q = r#"sequence by k [any where x == "a"] [any where x == "b"] [any where x == "c"]"#;
    let mut mt = matcher(q);
    let got = run(
        &mut mt,
        &[
            e("a", "1", 0),
            e("b", "1", 1),
            e("a", "1", 2),
            e("b", "1", 3),
            e("c", "1", 4),
            e("c", "1", 5),
        ],
    );
    // [a@2, b@3] replaced [a@0, b@1] at the middle stage.
    assert_eq!(got, vec![m(&["a@2", "b@3", "c@4"])]);
}

#[test]
fn pending_cap_drops_the_oldest() {
    let mut mt = Matcher::with_cap(Arc::new(compile(AB)), 2);
    run(&mut mt, &[e("a", "1", 0), e("a", "2", 1), e("a", "3", 2)]);
    let st = mt.stats();
    assert_eq!((st.pending, st.dropped), (2, 1));
    assert!(
        run(&mut mt, &[e("b", "1", 3)]).is_empty(),
        "key 1 was dropped"
    );
    assert_eq!(run(&mut mt, &[e("b", "3", 4)]).len(), 1);
}

#[test]
fn churn_keeps_memory_bounded() {
    let mut mt = Matcher::with_cap(Arc::new(compile(AB)), 100);
    for i in 0..20_000u64 {
        mt.on_event(&e("a", &(i % 500).to_string(), i));
        assert!(mt.stats().pending <= 100);
        assert!(mt.aging_len() <= 2 * 100 + 1024 + 1);
    }
    for i in 0..20_000u64 {
        mt.on_event(&e("a", "same", 20_000 + i));
    }
    assert!(mt.aging_len() <= 2 * 100 + 1024 + 1);
}

#[test]
fn expire_drops_what_cannot_complete() {
    let q = r#"sequence by k with maxspan=1m [any where x == "a"] [any where x == "b"]"#;
    let mut mt = matcher(q);
    for i in 0..1000 {
        mt.on_event(&e("a", &format!("p{i}"), i));
    }
    assert_eq!(mt.stats().pending, 1000);
    mt.expire(60_000);
    assert_eq!(
        mt.stats().pending,
        1000,
        "a gap equal to maxspan can still complete"
    );
    mt.expire(60_001);
    assert_eq!(mt.stats().pending, 999);
    mt.expire(200_000);
    assert_eq!(mt.stats().pending, 0);
    assert_eq!(mt.stats().expired, 1000);
    // Without maxspan nothing expires by time.
    let mut mt = matcher(AB);
    mt.on_event(&e("a", "1", 0));
    mt.expire(u64::MAX);
    assert_eq!(mt.stats().pending, 1);
}

#[test]
fn automatic_expiry_on_later_events() {
    let q = r#"sequence by k with maxspan=1m [any where x == "a"] [any where x == "b"]"#;
    let mut mt = matcher(q);
    for i in 0..1000 {
        mt.on_event(&e("a", &format!("p{i}"), i));
    }
    mt.on_event(&e("zzz", "none", 200_000));
    assert_eq!(mt.stats().pending, 0);
    assert_eq!(mt.stats().expired, 1000);
}

#[test]
fn single_event_query_returns_each_hit() {
    let mut mt = matcher(r#"any where x == "a""#);
    let got = run(&mut mt, &[e("a", "1", 0), e("b", "1", 1), e("a", "1", 2)]);
    assert_eq!(got, vec![m(&["a@0"]), m(&["a@2"])]);
    assert_eq!(mt.stats().matches, 2);
}

#[test]
fn held_events_are_capped() {
    // Each partial holds its own copy of every event so far: with runs the
    // events held grow with the square of the stages, whatever the count of
    // partials. A cap on events drops the oldest partials.
    let q = r#"sequence by k [any where x == "a"] with runs=6 [any where x == "b"]"#;
    let feed = |mt: &mut Matcher<Ev>, cap: usize| {
        for (i, k) in ["1", "1", "1", "1", "1", "1", "2", "2", "2", "2", "2", "2"]
            .iter()
            .enumerate()
        {
            mt.on_event(&e("a", k, i as u64));
            assert!(mt.stats().held <= cap, "{:?}", mt.stats());
        }
    };
    let mut mt = Matcher::with_limits(Arc::new(compile(q)), 1000, 30);
    feed(&mut mt, 30);
    // Key 2 holds 1 + 2 + ... + 6 events; key 1 lost its oldest partials.
    assert!(mt.stats().held > 21, "{:?}", mt.stats());
    assert!(mt.stats().dropped > 0);
    assert_eq!(mt.on_event(&e("b", "2", 100)).len(), 1);
    assert!(mt.on_event(&e("b", "1", 101)).is_empty());
    // Unlimited, both keys complete from 2 × 21 events held.
    let mut mt = matcher(q);
    feed(&mut mt, 2 * 21);
    assert_eq!((mt.stats().held, mt.stats().pending), (2 * 21, 12));
    assert_eq!(mt.on_event(&e("b", "2", 100)).len(), 1);
    assert_eq!(mt.on_event(&e("b", "1", 101)).len(), 1);
    assert_eq!(mt.stats().dropped, 0);
}

#[test]
fn held_events_are_counted_back_down() {
    let q = r#"sequence by k with maxspan=1s [any where x == "a"] with runs=2 [any where x == "b"]
        until [any where x == "u"]"#;
    let mut mt = matcher(q);
    let mut evs = Vec::new();
    for i in 0..300u64 {
        let x = ["a", "a", "b", "u", "a", "b"][(i % 6) as usize];
        evs.push(e(x, &(i % 7).to_string(), i * 37));
    }
    run(&mut mt, &evs);
    assert!(mt.stats().matches > 0 && mt.stats().rejected_until > 0);
    mt.expire(1_000_000);
    assert_eq!((mt.stats().pending, mt.stats().held), (0, 0));
}

// ---- samples ----

const SAMPLE: &str =
    r#"sample by k [any where x == "a"] [any where x == "b"] [any where x : ("c", "bc")]"#;

#[test]
fn sample_collects_in_any_order_and_emits_in_filter_order() {
    let mut mt = matcher(SAMPLE);
    let got = run(
        &mut mt,
        &[
            e("c", "1", 0),
            e("b", "2", 1),
            e("b", "1", 2),
            e("a", "1", 3),
        ],
    );
    assert_eq!(got, vec![m(&["a@3", "b@2", "c@0"])]);
    assert_eq!(mt.stats().pending, 1, "key 2 still waits");
    // The key is cleared after a match.
    assert!(run(&mut mt, &[e("a", "1", 4), e("b", "1", 5)]).is_empty());
}

#[test]
fn sample_event_fills_at_most_one_filter() {
    let q = r#"sample by k [any where x : ("b", "bc")] [any where x : ("c", "bc")]"#;
    let mut mt = matcher(q);
    assert!(run(&mut mt, &[e("bc", "1", 0)]).is_empty());
    let got = run(&mut mt, &[e("bc", "1", 1)]);
    assert_eq!(got, vec![m(&["bc@0", "bc@1"])]);
    // A filled filter keeps its first event.
    let mut mt = matcher(q);
    let got = run(&mut mt, &[e("b", "1", 0), e("b", "1", 1), e("c", "1", 2)]);
    assert_eq!(got, vec![m(&["b@0", "c@2"])]);
}

#[test]
fn sample_expires_after_its_window() {
    let mut mt = matcher(SAMPLE);
    run(&mut mt, &[e("a", "1", 0), e("b", "1", 1)]);
    assert!(run(&mut mt, &[e("c", "1", 300_001)]).is_empty());
    assert_eq!(mt.stats().expired, 1);
    let mut mt = matcher(SAMPLE);
    run(&mut mt, &[e("a", "1", 0), e("b", "1", 1)]);
    assert_eq!(run(&mut mt, &[e("c", "1", 300_000)]).len(), 1);
    let mut mt = matcher(SAMPLE);
    run(&mut mt, &[e("a", "1", 0)]);
    mt.expire(400_000);
    assert_eq!(mt.stats().pending, 0);
}

#[test]
fn sample_one_per_key_per_window() {
    // Elasticsearch's max_samples_per_key defaults to 1: once a key has its
    // sample it ignores events until the window from the sample's first
    // event has passed.
    let mut mt = matcher(SAMPLE);
    let got = run(
        &mut mt,
        &[
            e("a", "1", 1_000),
            e("b", "1", 2_000),
            e("c", "1", 3_000),
            e("a", "1", 4_000),
            e("b", "1", 5_000),
            e("c", "1", 6_000),
        ],
    );
    assert_eq!(got, vec![m(&["a@1000", "b@2000", "c@3000"])]);
    assert_eq!((mt.stats().pending, mt.stats().held), (0, 0));
    // Another key is not held back.
    let got = run(
        &mut mt,
        &[e("a", "2", 7_000), e("b", "2", 8_000), e("c", "2", 9_000)],
    );
    assert_eq!(got.len(), 1);
    // Still inside the window (inclusive, as for an incomplete sample).
    assert!(run(&mut mt, &[e("a", "1", 301_000)]).is_empty());
    // Past the window the key samples again, from new events only.
    let got = run(
        &mut mt,
        &[
            e("a", "1", 301_001),
            e("b", "1", 301_002),
            e("c", "1", 301_003),
        ],
    );
    assert_eq!(got, vec![m(&["a@301001", "b@301002", "c@301003"])]);
    assert_eq!(
        mt.stats().expired,
        0,
        "a finished key's window is not an expiry"
    );
}

#[test]
fn sample_finished_keys_are_bounded() {
    let q = r#"sample by k [any where x == "a"] [any where x == "b"]"#;
    let mut mt = Matcher::with_cap(Arc::new(compile(q)), 10);
    for i in 0..1000u64 {
        let k = i.to_string();
        assert_eq!(
            run(&mut mt, &[e("a", &k, 2 * i), e("b", &k, 2 * i + 1)]).len(),
            1
        );
        assert!(mt.aging_len() <= 2 * 10 + 1024 + 1);
    }
    assert_eq!(mt.stats().matches, 1000);
}

#[test]
fn sample_null_key_never_joins() {
    let mut mt = matcher(SAMPLE);
    assert!(run(&mut mt, &[at(0, 0, &[("x", s("a"))])]).is_empty());
    assert_eq!(mt.stats().pending, 0);
}

// ---- the seed rule ----

const SEED: &str = r#"sequence by process.entity_id with maxspan=1m
  [network where event.type == "start" and event.action == "connection_attempted" and
   user.id == "0" and not process.executable : ("/bin/ssh", "/sbin/ssh",
   "/usr/lib/systemd/systemd", "/usr/sbin/sshd")]
  [process where event.action == "session_id_change" and user.id == "0" and
   not process.executable : ("/bin/ssh", "/sbin/ssh", "/usr/lib/systemd/systemd", "/usr/sbin/sshd")]
"#;

fn seed_query() -> Query {
    let schema = super::schema(
        &[
            "event.category",
            "event.type",
            "event.action",
            "user.id",
            "process.executable",
            "process.entity_id",
        ],
        &["network", "process"],
    );
    match Query::compile(SEED, &schema) {
        Ok(q) => q,
        Err(e) => panic!("seed rule: {e}"),
    }
}

fn seed_ev(action: &str, entity: &str, ms: u64, serial: u64, uid: &str, exe: Option<&str>) -> Ev {
    let (cat, kind) = if action == "connection_attempted" {
        ("network", "start")
    } else {
        ("process", "change")
    };
    let mut fields = vec![
        ("event.category", list(&[cat])),
        ("event.type", list(&[kind])),
        ("event.action", s(action)),
        ("user.id", s(uid)),
        ("process.entity_id", s(entity)),
    ];
    if let Some(exe) = exe {
        fields.push(("process.executable", s(exe)));
    }
    let mut e = at(ms, serial, &fields);
    e.fields.insert("x".into(), s(action));
    e
}

fn connect(entity: &str, ms: u64, serial: u64) -> Ev {
    seed_ev(
        "connection_attempted",
        entity,
        ms,
        serial,
        "0",
        Some("/tmp/actor"),
    )
}

fn setsid(entity: &str, ms: u64, serial: u64) -> Ev {
    seed_ev(
        "session_id_change",
        entity,
        ms,
        serial,
        "0",
        Some("/tmp/actor"),
    )
}

fn seed() -> Matcher<Ev> {
    Matcher::new(Arc::new(seed_query()))
}

#[test]
fn seed_rule_compiles_and_reads_its_fields() {
    let q = seed_query();
    assert!(q.is_sequence());
    assert_eq!(q.stage_count(), 2);
    assert_eq!(q.maxspan_ms(), Some(60_000));
    assert_eq!(q.join_fields(), vec!["process.entity_id"]);
    assert_eq!(
        q.fields(),
        vec![
            "event.action",
            "event.category",
            "event.type",
            "process.entity_id",
            "process.executable",
            "user.id"
        ]
    );
    // Against the permissive test schema too.
    assert!(Query::compile(SEED, &test_schema()).is_ok());
}

#[test]
fn seed_connect_then_setsid_matches_once() {
    let mut mt = seed();
    let got = run(
        &mut mt,
        &[
            connect("a", 1_000, 1),
            setsid("a", 1_010, 2),
            setsid("a", 1_020, 3),
        ],
    );
    assert_eq!(
        got.len(),
        1,
        "one first stage completes at most one sequence"
    );
    let mut mt = seed();
    let found = mt.on_event(&connect("a", 1_000, 1));
    assert!(found.is_empty());
    let found = mt.on_event(&setsid("a", 1_010, 2));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0][0].ord, (1_000, 1));
    assert_eq!(found[0][1].ord, (1_010, 2));
}

#[test]
fn seed_newer_connect_replaces_older() {
    let mut mt = seed();
    for ev in [connect("a", 1_000, 1), connect("a", 2_000, 2)] {
        assert!(mt.on_event(&ev).is_empty());
    }
    let found = mt.on_event(&setsid("a", 3_000, 3));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0][0].ord, (2_000, 2));
}

#[test]
fn seed_join_order_and_strictness() {
    let mut mt = seed();
    assert!(run(&mut mt, &[connect("a", 1_000, 1), setsid("b", 1_010, 2)]).is_empty());
    let mut mt = seed();
    assert!(run(&mut mt, &[setsid("a", 1_000, 1), connect("a", 1_010, 2)]).is_empty());
    let mut mt = seed();
    assert!(run(&mut mt, &[connect("a", 1_000, 5), setsid("a", 1_000, 4)]).is_empty());
    assert_eq!(run(&mut mt, &[setsid("a", 1_000, 6)]).len(), 1);
}

#[test]
fn seed_maxspan_inclusive() {
    let mut mt = seed();
    assert_eq!(
        run(&mut mt, &[connect("a", 0, 1), setsid("a", 60_000, 2)]).len(),
        1
    );
    let mut mt = seed();
    assert!(run(&mut mt, &[connect("a", 0, 1), setsid("a", 60_001, 2)]).is_empty());
}

#[test]
fn seed_root_only_and_exclusions() {
    let mut mt = seed();
    let c = seed_ev(
        "connection_attempted",
        "a",
        0,
        1,
        "1000",
        Some("/tmp/actor"),
    );
    assert!(run(&mut mt, &[c, setsid("a", 10, 2)]).is_empty());
    for exe in [
        "/usr/sbin/sshd",
        "/USR/SBIN/SSHD",
        "/usr/lib/systemd/systemd",
        "/bin/ssh",
        "/sbin/ssh",
    ] {
        let mut mt = seed();
        let c = seed_ev("connection_attempted", "x", 0, 1, "0", Some(exe));
        assert!(run(&mut mt, &[c, setsid("x", 10, 2)]).is_empty(), "{exe}");
    }
    // The exclusion is checked per event: an excluded setsid spoils it too.
    let mut mt = seed();
    let s2 = seed_ev("session_id_change", "y", 10, 2, "0", Some("/usr/sbin/sshd"));
    assert!(run(&mut mt, &[connect("y", 0, 1), s2]).is_empty());
    // A missing executable is not excluded (`not :` on null is true).
    let mut mt = seed();
    let c = seed_ev("connection_attempted", "z", 0, 1, "0", None);
    assert_eq!(run(&mut mt, &[c, setsid("z", 10, 2)]).len(), 1);
    // Not an ssh binary by prefix: /usr/sbin/sshd-helper is not excluded.
    let mut mt = seed();
    let c = seed_ev(
        "connection_attempted",
        "w",
        0,
        1,
        "0",
        Some("/usr/sbin/sshd-helper"),
    );
    assert_eq!(run(&mut mt, &[c, setsid("w", 10, 2)]).len(), 1);
}

#[test]
fn seed_event_type_is_any_element_of_a_list() {
    let mut mt = seed();
    let mut c = connect("a", 0, 1);
    c.fields
        .insert("event.type".into(), list(&["connection", "start"]));
    assert_eq!(run(&mut mt, &[c, setsid("a", 10, 2)]).len(), 1);
    let mut mt = seed();
    let mut c = connect("a", 0, 1);
    c.fields.insert("event.type".into(), list(&["connection"]));
    assert!(run(&mut mt, &[c, setsid("a", 10, 2)]).is_empty());
    // Categories decide the stage: a connect is not a process event.
    let mut mt = seed();
    let mut c = connect("a", 0, 1);
    c.fields.insert("event.category".into(), list(&["process"]));
    assert!(run(&mut mt, &[c, setsid("a", 10, 2)]).is_empty());
}

#[test]
fn seed_pending_sequences_expire() {
    let mut mt = seed();
    for i in 0..1000 {
        mt.on_event(&connect(&format!("p{i}"), i, i));
    }
    assert_eq!(mt.stats().pending, 1000);
    mt.on_event(&setsid("nobody", 200_000, 5000));
    assert_eq!(mt.stats().pending, 0);
    assert_eq!(mt.stats().expired, 1000);
}

#[test]
fn query_and_matcher_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Query>();
    send_sync::<Arc<Query>>();
    send::<Matcher<Ev>>();
    let q = compile(
        r#"sequence by k [any where x == "a"] by user.id [any where x == "b"] by process.pid"#,
    );
    assert_eq!(q.fields(), vec!["k", "process.pid", "user.id", "x"]);
}

/// Arrival is the order in which calls end; record time is the order in
/// which they began (issue 18 item 6). A blocking connect in one thread
/// ends, and is written, after a setsid another thread called while it
/// waited: the earlier stage arrives second. In record-time order, as
/// Elasticsearch sorts events before matching, the sequence is complete.
#[test]
fn an_earlier_stage_that_arrives_late_completes_the_sequence() {
    // b written first (serial 5), a began 100 ms before it (serial 6).
    let mut mt = matcher(AB_1S);
    let found = run(
        &mut mt,
        &[
            at(200, 5, &[("x", s("b")), ("k", s("1"))]),
            at(100, 6, &[("x", s("a")), ("k", s("1"))]),
        ],
    );
    assert_eq!(found, [m(&["a@100", "b@200"])]);
    assert_eq!(mt.stats().late_matches, 1);
    assert_eq!(mt.stats().matches, 1);

    // The same millisecond (the kernel's clock ticks in jiffies): arrival
    // breaks the tie, and the b came first, so no match; a setsid then a
    // connect in one jiffy is not the reverse-shell shape.
    let mut mt = matcher(AB_1S);
    let found = run(
        &mut mt,
        &[
            at(100, 5, &[("x", s("b")), ("k", s("1"))]),
            at(100, 6, &[("x", s("a")), ("k", s("1"))]),
        ],
    );
    assert!(found.is_empty(), "{found:?}");

    // Beyond maxspan, another key, or an `a` that began after the `b`: none.
    let mut mt = matcher(AB_1S);
    assert!(run(&mut mt, &[e("b", "1", 2200), e("a", "1", 1000)]).is_empty());
    assert!(run(&mut mt, &[e("b", "1", 3000), e("a", "2", 2900)]).is_empty());
    assert!(run(&mut mt, &[e("b", "3", 4000), e("a", "3", 4100)]).is_empty());
    // A `b` is used once.
    let mut mt = matcher(AB_1S);
    let found = run(
        &mut mt,
        &[e("b", "1", 200), e("a", "1", 100), e("a", "1", 150)],
    );
    assert_eq!(found, [m(&["a@100", "b@200"])]);

    // Without maxspan nothing bounds what would be kept: arrival order.
    let mut mt = matcher(AB);
    assert!(run(&mut mt, &[e("b", "1", 200), e("a", "1", 100)]).is_empty());
}

/// In record-time order a newer first stage replaces an older one, whatever
/// the order they arrive in: an `a` arriving after a newer `a` does not
/// take its place, but still completes with a `b` between the two.
#[test]
fn late_events_follow_record_time_order() {
    // a@300 waits; b@200 comes (older than the waiting a: kept aside);
    // a@100 arrives last: in time order a@100, b@200 match, a@300 waits.
    let mut mt = matcher(AB_1S);
    let found = run(
        &mut mt,
        &[
            e("a", "1", 300),
            e("b", "1", 200),
            e("a", "1", 100),
            e("b", "1", 400),
        ],
    );
    assert_eq!(found, [m(&["a@100", "b@200"]), m(&["a@300", "b@400"])]);

    // a@150 then b@200 match in order; a@100 arriving later was, in time
    // order, replaced by a@150 before b@200 came: nothing more.
    let mut mt = matcher(AB_1S);
    let found = run(
        &mut mt,
        &[e("a", "1", 150), e("b", "1", 200), e("a", "1", 100)],
    );
    assert_eq!(found, [m(&["a@150", "b@200"])]);
    assert_eq!(
        mt.stats().pending,
        1,
        "a@100 waits: a later b may still come"
    );

    // A late a that a waiting newer a would have replaced is dropped.
    let mut mt = matcher(AB_1S);
    assert!(run(&mut mt, &[e("a", "1", 300), e("a", "1", 100)]).is_empty());
    let found = run(&mut mt, &[e("b", "1", 400)]);
    assert_eq!(found, [m(&["a@300", "b@400"])]);
}

/// Kept-aside last stages are bounded: by maxspan of record time, and by
/// a count.
#[test]
fn orphans_expire_and_are_capped() {
    let mut mt = matcher(AB_1S);
    assert!(run(&mut mt, &[e("b", "1", 100)]).is_empty());
    // Record time moves on past maxspan: the b is forgotten.
    mt.expire(2000);
    assert!(run(&mut mt, &[e("a", "1", 90)]).is_empty());
    let mut mt = matcher(AB_1S);
    let many: Vec<Ev> = (0..crate::matcher::MAX_ORPHANS as u64 + 10)
        .map(|i| at(500, i, &[("x", s("b")), ("k", s(&i.to_string()))]))
        .collect();
    assert!(run(&mut mt, &many).is_empty());
    // The oldest ten were forgotten; the newest is still there.
    assert!(run(&mut mt, &[at(400, 0, &[("x", s("a")), ("k", s("0"))])]).is_empty());
    let last = (crate::matcher::MAX_ORPHANS + 9).to_string();
    let found = run(&mut mt, &[at(400, 1, &[("x", s("a")), ("k", s(&last))])]);
    assert_eq!(found.len(), 1);
    assert_eq!(mt.stats().late_forgotten, 10, "the forgotten are counted");
}
