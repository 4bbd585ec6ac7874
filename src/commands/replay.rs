//! `audetect replay`: auditd logs through the detection, alerts on stdout.

use std::path::{Path, PathBuf};

use anyhow::Result;

pub fn run(config: Option<&Path>, files: &[PathBuf]) -> Result<()> {
    Ok(audetect::daemon::replay(config, files)?)
}
