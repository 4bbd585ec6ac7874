//! Record parser target: arbitrary bytes as a netlink record body (the first
//! two bytes pick the record type) and as auditd log lines, then through
//! reassembly, normalization and alert building. Nothing may panic, a netlink
//! body must parse exactly as the same body in a log line, and every JSON
//! document made from what was parsed must be one line that reads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| audetect::fuzz_checks::record_input(data));
