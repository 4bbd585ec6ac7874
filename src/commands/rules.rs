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
        if audetect::kernel::is_uring_rule(rule) {
            // auditctl before 3.1 stops at a line it cannot read, and
            // Debian 12 ships 3.0.9: the rule is there to uncomment.
            println!(
                "# io_uring connects (Linux 5.16 or later, auditctl 3.1 or later; audetect run installs it itself):"
            );
            println!("#{}", rule.to_auditctl());
        } else {
            println!("{}", rule.to_auditctl());
        }
    }
    Ok(())
}
