//! `audetect status`: the running daemon's counters, from its stats file.

use std::path::Path;

use anyhow::{bail, Context, Result};

use audetect::{kernel, status};

/// The exit status of a daemon that runs but is blinded: a monitoring
/// check must not take it for a healthy one.
const BLINDED: i32 = 3;

pub fn run() -> Result<()> {
    let path = Path::new(status::DEFAULT_STATS_FILE);
    let stats = match status::read(path) {
        Ok(s) => s,
        Err(status::StatsError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            bail!(
                "audetect is not running ({} does not exist)",
                path.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let alive = kernel::process_is_audetect(stats.pid);
    println!(
        "{}",
        serde_json::to_string_pretty(&stats).context("formatting the stats")?
    );
    if !alive {
        bail!(
            "audetect (pid {}) is not running: {} is left from a run that did not stop cleanly",
            stats.pid,
            path.display()
        );
    }
    if !stats.tampering.blinding.is_empty() {
        eprintln!(
            "audetect runs, but its records are suppressed by: {}",
            stats.tampering.blinding.join("; ")
        );
        std::process::exit(BLINDED);
    }
    Ok(())
}
