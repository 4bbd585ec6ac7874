//! audetect: Linux kernel audit records in, detections out. The modules follow
//! the pipeline: kernel → receive → parse → reassemble → normalize → detect → alert → output.

pub mod alert;
pub mod caps;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod eql;
pub mod fields;
/// The checks of the fuzz targets (fuzz/): built for them and for the unit tests only.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_checks;
pub mod kernel;
pub mod logging;
pub mod needs;
pub mod normalize;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod process;
pub mod reassemble;
pub mod receive;
pub mod rulefile;
pub mod snapshot;
pub mod status;
pub mod syscalls;
/// Test support the unit tests and the fuzz checks share.
#[cfg(any(test, feature = "fuzzing"))]
pub mod testkit;
pub mod timefmt;
