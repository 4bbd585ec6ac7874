//! `audetect rules`: the audit rules audetect installs, in auditctl syntax.

use audetect::kernel;

pub fn run() {
    println!(
        "# The audit rules audetect installs (auditctl syntax); keys start with \"audetect\"."
    );
    for rule in kernel::audetect_rules() {
        println!("{}", rule.to_auditctl());
    }
}
