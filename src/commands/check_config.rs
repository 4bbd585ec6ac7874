//! `audetect check-config`: a config file and the rules it names, checked.

use std::path::Path;

use anyhow::Result;

use audetect::daemon::{check_outputs, load_config, load_rule_set};

/// Ends with `rules: N loaded, M skipped`; `verbose` lists each skip and why.
pub fn run(path: Option<&Path>, verbose: bool) -> Result<()> {
    let (config, origin) = load_config(path)?;
    check_outputs(&config)?;
    let set = load_rule_set(&config)?;
    for rule in &set.rules {
        println!("rule {:?} ({}): OK", rule.meta.name, rule.meta.origin);
    }
    if verbose {
        for s in &set.skipped {
            println!("rule {:?} ({}): skipped: {}", s.name, s.origin, s.reason);
        }
    }
    match origin {
        Some(p) => println!("{}: OK", p.display()),
        None => println!("no config file; built-in defaults: OK"),
    }
    println!("{}", set.summary());
    Ok(())
}
