//! The pure pipeline: an event to an ECS event (normalize, with the process
//! model), detection, alerts, the fields audetect supplies, rule parsing and
//! the snapshot's model. No file, socket, /proc or clock here: the daemon
//! (the root package) supplies them through `ProcSource` and `Snapshotter`.

pub mod alert;
pub mod detect;
pub mod fields;
/// The checks of the fuzz targets (fuzz/): built for them and for the unit tests only.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_checks;
pub mod needs;
pub mod normalize;
pub mod pipeline;
pub mod process;
pub mod rulefile;
pub mod snapshot;
/// Test support the unit tests and the fuzz checks share.
#[cfg(any(test, feature = "fuzzing"))]
pub mod testkit;

// The crates below the engine, under the names the stages use.
use audetect_audit::{parse, reassemble, syscalls, timefmt};
use audetect_eql as eql;
