//! `audetect check-config`: a config file and the rules it names, checked.

use std::path::Path;

use anyhow::Result;

use audetect::daemon::{check_outputs, load_config, load_rules};

pub fn run(path: Option<&Path>) -> Result<()> {
    let (config, origin) = load_config(path)?;
    check_outputs(&config)?;
    let rules = load_rules(&config)?;
    for rule in &rules {
        println!("rule {:?} ({}): OK", rule.meta.name, rule.meta.origin);
    }
    match origin {
        Some(p) => println!("{}: OK", p.display()),
        None => println!("no config file; built-in defaults: OK"),
    }
    Ok(())
}
