//! Processes: the pure model of audetect-engine (`process::*`: the entity
//! id, the tracker, the table, the `ProcSource` seam), and `live`, the one
//! reader of the host's /proc behind that seam.

pub use audetect_engine::process::*;

pub mod live;
