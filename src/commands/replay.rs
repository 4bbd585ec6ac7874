//! `audetect replay`: auditd logs through the detection, alerts (and with
//! --events every normalized event) on stdout.

use std::path::{Path, PathBuf};

use anyhow::Result;

pub fn run(config: Option<&Path>, files: &[PathBuf], events: bool) -> Result<()> {
    Ok(audetect::daemon::replay(config, files, events)?)
}
