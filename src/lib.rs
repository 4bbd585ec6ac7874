//! audetect: Linux kernel audit records in, detections out. The modules follow
//! the pipeline: kernel → receive → parse → reassemble → normalize → detect → alert → output.

pub mod alert;
pub mod caps;
pub mod config;
pub mod detect;
pub mod eql;
pub mod fields;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod kernel;
pub mod logging;
pub mod normalize;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod proc;
pub mod reassemble;
pub mod receive;
pub mod rulefile;
pub mod snapshot;
pub mod status;
pub mod syscalls;
pub mod timefmt;
