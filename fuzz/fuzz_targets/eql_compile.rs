//! EQL target: arbitrary text compiled against audetect's schema. Nothing may
//! panic; an error must point inside the query; a query that compiles is run
//! over the events of tests/fixtures/scenarios.log.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| audetect::fuzz_checks::eql_input(data));
