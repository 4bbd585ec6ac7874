//! EQL, the Event Query Language of Elastic's detection rules: parse and check
//! a query against what the event source supplies, then match it live.
//!
//! # Supported
//! - `CATEGORY where COND`, `"quoted-category" where COND`, `any where COND`.
//! - `sequence [by f, ...] [with maxspan=N(ms|s|m|h|d)]` with stages
//!   `[CATEGORY where COND] [by g, ...] [with runs=N]` (1 ≤ N ≤ 100; 2 to 128
//!   stages once runs are expanded) and an optional `until [...] [by ...]`.
//! - `sample by f, ... [filter] [by g, ...] [filter] ...` (2 to 128 filters).
//! - `and`, `or`, `not`, parentheses; `==`, `!=`, `<`, `<=`, `>`, `>=`; `:`;
//!   `in`, `in~`, `not in`, `not in~`; `like`, `like~`, `regex`, `regex~`
//!   each with one literal or a parenthesised list; `== null`, `!= null`, `: null`.
//! - Fields: dotted names, `` `backquoted` `` segments, optional `?field`.
//! - Literals: `"strings"` with `\n \r \t \b \f \" \' \\ \u{XXXX}` escapes,
//!   `"""raw strings"""`, integers, floats, negative numbers, `true`, `false`, `null`.
//! - Functions (names case-insensitive, `~` for the case-insensitive form):
//!   `startsWith`, `endsWith`, `stringContains`, `length`, `cidrMatch`,
//!   `number` (Elasticsearch's EQL has no `wildcard` function; use `:` or `like`).
//! - `//` and `/* */` comments, line breaks anywhere between tokens.
//!
//! # Refused at compile time, with position
//! `join`, pipes (`| head` ...), missing-event stages `![...]`, lineage
//! (`descendant of`), arithmetic, array indexing `f[0]`, field-to-field
//! comparisons, single-quoted and `?"..."` strings, `=` and `!:`, other functions,
//! sequences of more than 128 stages once runs are expanded.
//!
//! # Semantics (Elasticsearch's, as its query translation gives them)
//! - A list-valued field (`event.category`, `process.args`) matches a
//!   comparison when ANY element does.
//! - A comparison on a missing (null) field is false; `not` and `!=` are the
//!   complement of the positive test, so `f != "x"`, `not f : "x"` and
//!   `f not in (...)` are TRUE when f is missing, and `f != "x"` on a list is
//!   true when no element equals "x" (Elasticsearch's `must_not` of a term
//!   query). `startsWith`, `endsWith`, `stringContains` (with or without `~`)
//!   and `cidrMatch` applied directly to a field are such queries too (prefix,
//!   wildcard, terms), so their `not` is also true on a missing field. The
//!   exception copies Elasticsearch's script queries: a comparison on
//!   `length` or `number` (or any function of a function) of a missing field
//!   is null, and `not` of null stays false.
//! - An optional `?field` the schema never supplies is null in every event.
//!   Elasticsearch replaces it in a filter with a null literal and folds, and
//!   so does the compiler: a test on it is null (`?f == null` and `?f : null`
//!   are true, `?f != null` false), `not` of null is null, `and`/`or` follow
//!   SQL's three-valued logic, and a filter that ends up null matches
//!   nothing. So `not ?f : "x"` never matches and `?f : "x" or c` is `c`.
//! - `==` and `!=` are case-sensitive and exact; numbers compare as numbers
//!   (a string field against a number literal is parsed as a number for `<`
//!   and friends, and compared in its literal text form for `==`).
//! - `regex` uses Lucene's dialect, translated: see `pattern::lucene_to_rust` (Lucene-only operators `@ & ~ # <>` are refused).
//! - Sequences follow Elasticsearch's SequenceMatcher: see [`Matcher`]. An
//!   `until` event rejects every partial sequence of its key whose last event
//!   is at or before it, including one that very event started or moved
//!   (`Ordinal.between` is inclusive); what it completes still matches.
//! - Join keys: a null non-optional `by` field means the event joins nothing;
//!   a null `?optional` `by` field is a valid (null) key value, as in Elasticsearch.
//! - Samples: incomplete samples expire after [`SAMPLE_WINDOW_MS`] of record
//!   time, and, as Elasticsearch's default `max_samples_per_key` is 1, a key
//!   that produced a sample ignores events until [`SAMPLE_WINDOW_MS`] of
//!   record time past the sample's first event, then may sample again.
//! - Memory: at most [`MAX_PENDING`] partial sequences (or samples) and
//!   [`MAX_HELD_EVENTS`] events held in them per matcher, oldest dropped first.

mod ast;
mod compile;
mod eval;
mod lexer;
mod matcher;
mod parser;
mod pattern;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use compile::{fold_case, Filters, Query, Required};
pub use matcher::{Matcher, MatcherStats, MAX_HELD_EVENTS, MAX_PENDING, SAMPLE_WINDOW_MS};
pub use pattern::{StrHash, StrHasher};

/// A field value as an event supplies it. Lists are ECS arrays (event.category, process.args).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Value<'a>>),
}

/// What the engine needs from an event.
pub trait Event: Clone {
    /// The value of a field by its dotted ECS name ("process.executable").
    /// Only called with names the Schema lists, plus `event.category` for
    /// queries that name a category; Value::Null when this event lacks it.
    fn field(&self, name: &str) -> Value<'_>;
    /// The value of field `name`, which is `Schema::fields[index]` of the
    /// schema the query was compiled against (`usize::MAX` when it lists
    /// no such field): a source can answer by position. By name unless
    /// overridden; an override must give what `field(name)` gives.
    fn field_at(&self, index: usize, name: &str) -> Value<'_> {
        let _ = index;
        self.field(name)
    }
    /// Order and time: (record time in milliseconds since the epoch,
    /// tiebreaker such as the audit serial). Events arrive in this order.
    fn ordinal(&self) -> (u64, u64);
}

/// What fields and categories the event source supplies, for load-time checks.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub fields: Vec<String>,
    pub categories: Vec<String>,
    /// The kinds of event it produces, each as the values of the fields
    /// that name the kind (event.category, event.type, event.action, ...):
    /// a filter that no kind can pass matches nothing the source sends.
    /// Empty: not known, every filter may match.
    pub kinds: Vec<Vec<(String, Value<'static>)>>,
}

/// A query that does not parse, uses something outside the supported subset,
/// or names a field or category the event source never supplies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct EqlError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset into the query text.
    pub offset: usize,
    pub message: String,
    /// Valid EQL that audetect cannot run (a field, category or function it
    /// does not supply, a construct it refuses), as opposed to text that is
    /// not EQL at all: a rule pack's loader skips the first kind and fails
    /// on the second.
    pub unsupported: bool,
}
