//! `audetect selftest` and its child process `selftest-actor`.

use anyhow::Result;

use audetect::daemon::{selftest_actor, selftest_steps};

/// Prints what it did, then PASS or FAIL with the reason.
pub fn run() -> Result<()> {
    println!("audetect selftest: a root child process connects to 127.0.0.1 and calls setsid(); the built-in rule must alert");
    let result = selftest_steps().map_err(anyhow::Error::from);
    match &result {
        Ok(how) => println!("PASS: {how}"),
        Err(e) => println!("FAIL: {e:#}"),
    }
    result.map(|_| ())
}

pub fn actor(port: u16) -> Result<()> {
    Ok(selftest_actor(port)?)
}
