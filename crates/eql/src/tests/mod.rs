//! Tests of the EQL module: parsing and errors, evaluation, sequence and
//! sample semantics, and real Elastic rule queries.

mod eval_tests;
mod index_tests;
mod literal_tests;
mod parse_tests;
mod reach_tests;
mod rules_tests;
mod sequence_tests;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use super::{Event, Query, Schema, Value};

/// The system allocator, counting allocations per thread so a test can
/// check that a hot path allocates nothing (tests run on their own threads).
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed straight to `System`; the count is a
// destructor-free thread-local, safe to touch from inside the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to uphold.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made so far by this thread.
pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A test event: a map of field to value, plus its ordinal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ev {
    pub fields: HashMap<String, Value<'static>>,
    pub ord: (u64, u64),
}

impl Event for Ev {
    fn field(&self, name: &str) -> Value<'_> {
        self.fields.get(name).cloned().unwrap_or(Value::Null)
    }
    fn ordinal(&self) -> (u64, u64) {
        self.ord
    }
}

pub(crate) fn s(v: &str) -> Value<'static> {
    Value::Str(v.to_string().into())
}

pub(crate) fn list(items: &[&str]) -> Value<'static> {
    Value::List(items.iter().map(|i| s(i)).collect())
}

/// An event at `ms` (tiebreaker = ms) with the given fields.
pub(crate) fn ev(ms: u64, fields: &[(&str, Value<'static>)]) -> Ev {
    Ev {
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ord: (ms, ms),
    }
}

pub(crate) fn schema(fields: &[&str], categories: &[&str]) -> Schema {
    Schema {
        fields: fields.iter().map(|f| f.to_string()).collect(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        kinds: Vec::new(),
    }
}

/// A schema with the usual test fields.
pub(crate) fn test_schema() -> Schema {
    schema(
        &[
            "event.category",
            "event.type",
            "event.action",
            "user.id",
            "user.name",
            "process.name",
            "process.executable",
            "process.args",
            "process.pid",
            "process.entity_id",
            "process.parent.name",
            "process.interactive",
            "destination.ip",
            "destination.port",
            "host.id",
            "file.path",
            "k",
            "k2",
            "x",
        ],
        &["process", "network", "file", "authentication"],
    )
}

pub(crate) fn compile(q: &str) -> Query {
    match Query::compile(q, &test_schema()) {
        Ok(q) => q,
        Err(e) => panic!("{q}\n  failed: {e}"),
    }
}

pub(crate) fn compile_err(q: &str) -> super::EqlError {
    match Query::compile(q, &test_schema()) {
        Ok(_) => panic!("{q}\n  compiled but should not"),
        Err(e) => e,
    }
}
