//! The triage snapshot: at the moment a rule matches, a bounded look at the
//! process (command line, ancestry, sockets, stdio) and the host's logins.
//!
//! The look itself is I/O at the edge (`live.rs`, a procfs root that tests
//! fake, on a worker thread); what it found is plain data, the model of
//! audetect-engine (`Snapshot`, `Target`, `render`, `shrink`), re-exported here.

mod fddup;
mod live;
#[cfg(not(feature = "fuzzing"))]
mod utmp;
/// Public for the fuzz targets (fuzz/) only.
#[cfg(feature = "fuzzing")]
pub mod utmp;
mod worker;

#[cfg(test)]
mod tests;

pub use audetect_engine::snapshot::*;
pub use live::{LiveSnapshotter, Paths};
pub use worker::OnWorker;

use std::time::Duration;

/// `[snapshot]`: whether a snapshot is taken when a rule matches, what it
/// reads and its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSettings {
    pub enabled: bool,
    /// The time one snapshot may take; pieces not done by then are marked.
    pub time_budget: Duration,
    /// The largest alert document, in bytes, that the snapshot may grow an
    /// alert to; past it, its lowest-priority parts are dropped and marked.
    pub max_alert_bytes: usize,
    pub process: bool,
    pub hash: bool,
    pub hash_max_bytes: u64,
    pub ancestry: bool,
    pub max_ancestors: usize,
    pub sockets: bool,
    pub max_sockets: usize,
    pub stdio: bool,
    pub sessions: bool,
    pub max_sessions: usize,
}
