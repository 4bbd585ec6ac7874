//! The audit record model: bytes of one record parsed into a `Record`,
//! records reassembled into events by serial, the per-arch syscall table and
//! audit's time format. Pure, and it imports nothing of audetect.

pub mod parse;
pub mod reassemble;
pub mod syscalls;
pub mod timefmt;
