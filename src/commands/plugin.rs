//! `audetect plugin`: auditd's plugin, records on stdin.

use std::path::Path;

use anyhow::Result;

pub fn run(config: Option<&Path>) -> Result<()> {
    Ok(audetect::daemon::plugin(config)?)
}
