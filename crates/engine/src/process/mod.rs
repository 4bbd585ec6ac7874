//! Processes: the entity id that names one process for its whole life, the
//! tracker that ties a record's pid to it, the table of what each process
//! runs, and the seam to live processes (`ProcSource`).
//!
//! All of it is pure; the one reader of the host's /proc behind the seam is
//! the daemon's `process::live` (the root package).

mod entity;
pub mod proc_text;
mod source;
mod table;
mod tracker;

pub use entity::{EntityId, EntityIdError, Start};
pub use source::{NoProc, ProcError, ProcInfo, ProcSource, Transport};
pub use table::{
    base_name, Creds, Entry, Image, ProcessTable, TableStats, DEFAULT_MAX_ENTRIES, EXITED_TTL_MS,
    MAX_ARGS, MAX_ARGS_BYTES, MAX_BYTES,
};
pub use tracker::{EntitySource, Tracker, TrackerStats, MAX_KNOWN, MAX_PINNED, PIN_SWEEP_MS};
