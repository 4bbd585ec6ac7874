//! The integration test binary: kernel, syslog and CLI tests share one harness.

mod auditd;
mod bad_input;
mod cli;
mod corpus;
mod daemon;
mod e2e;
mod e2e32;
mod evasion;
mod forwarding;
mod hardening;
mod hostile;
mod kernel_rules;
mod pack;
mod rsyslog;
mod snapshot;
mod syslog;
mod tamper;
mod unseen;
mod util;
