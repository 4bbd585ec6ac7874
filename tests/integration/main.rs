//! The integration test binary: kernel, syslog and CLI tests share one harness.

mod cli;
mod daemon;
mod e2e;
mod kernel_rules;
mod rsyslog;
mod syslog;
mod util;
