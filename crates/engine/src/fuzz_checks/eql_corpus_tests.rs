//! The `eql_compile` fuzz target's corpus (fuzz/corpus/eql_compile, see
//! fuzz/README.md) replayed with the target's own checks.

use crate::eql::Query;
use crate::fuzz_checks::{corpus, eql_input};
use crate::testkit::scenario_ecs;

#[test]
fn eql_compile_corpus_replays() {
    let events = scenario_ecs();
    assert!(events.len() > 2);
    let mut compiled = 0;
    for (name, data) in corpus("eql_compile") {
        let outcome = std::panic::catch_unwind(|| eql_input(&data));
        assert!(outcome.is_ok(), "corpus file {name} fails: {data:?}");
        if let Ok(text) = std::str::from_utf8(&data) {
            compiled += usize::from(Query::compile(text, &crate::fields::schema()).is_ok());
        }
    }
    assert!(compiled > 0, "no corpus query compiles");
}
