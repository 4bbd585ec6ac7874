//! `audetect run`: the daemon in the foreground.

use std::path::Path;

use anyhow::Result;

pub fn run(config: Option<&Path>) -> Result<()> {
    Ok(audetect::daemon::run(config)?)
}
