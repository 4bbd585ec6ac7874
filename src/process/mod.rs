//! Processes: the entity id that names one process for its whole life, the
//! tracker that ties a record's pid to it, and the seam to live processes.
//!
//! `entity`, `proc_text`, `source` and `tracker` are pure (no I/O, no imports
//! of `live`); `live` is the one reader of the host's /proc behind the seam.

mod entity;
pub mod live;
pub mod proc_text;
mod source;
mod tracker;

pub use entity::{EntityId, EntityIdError, Start};
pub use source::{NoProc, ProcError, ProcSource, Transport};
pub use tracker::{EntitySource, Tracker, TrackerStats, MAX_KNOWN, MAX_PINNED, PIN_SWEEP_MS};
