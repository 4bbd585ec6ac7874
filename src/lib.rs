//! audetect: Linux kernel audit records in, detections out. The modules follow
//! the pipeline: kernel → receive → parse → reassemble → normalize → detect → alert → output.
//!
//! This package is the daemon: every room that does I/O. The pure rooms are
//! crates of their own (crates/eql, crates/audit, crates/engine) and the
//! netlink edge is crates/kernel; they are re-exported here under the paths
//! the daemon, the integration tests and the fuzz targets use.

pub use audetect_audit::{parse, reassemble, syscalls, timefmt};
pub use audetect_engine::{alert, detect, fields, needs, normalize, pipeline};
pub use audetect_eql as eql;
pub use audetect_kernel as kernel;

/// The checks of the fuzz targets (fuzz/), with the `fuzzing` feature only.
#[cfg(feature = "fuzzing")]
pub use audetect_engine::{fuzz_checks, testkit};

/// How a unit test says it cannot run here (tests/support/skip.rs, shared
/// with the integration tests and the other crates' tests).
#[cfg(test)]
#[path = "../tests/support/skip.rs"]
#[allow(dead_code, unused_imports)]
mod test_skip;

pub mod caps;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod output;
pub mod process;
pub mod receive;
pub mod rulefile;
pub mod snapshot;
pub mod status;
pub mod trust;
