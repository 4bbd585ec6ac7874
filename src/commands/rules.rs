//! `audetect rules`: the audit rules audetect installs for the detection
//! rules a config loads, in auditctl syntax, with why each kind is audited.

use std::path::Path;

use anyhow::Result;

use audetect::daemon::{load_config, load_rule_set, AuditPlan};

pub fn run(path: Option<&Path>) -> Result<()> {
    let (config, _) = load_config(path)?;
    let set = load_rule_set(&config)?;
    let plan = AuditPlan::for_rules(&set.rules);
    println!(
        "# The audit rules audetect installs (auditctl syntax); keys start with \"audetect\"."
    );
    for line in plan.describe() {
        println!("# {line}");
    }
    for rule in &plan.rules {
        println!("{}", rule.to_auditctl());
    }
    Ok(())
}
