//! One module per command of the command line; each turns the daemon's
//! errors into anyhow ones for `main` to print.

pub mod check_config;
pub mod plugin;
pub mod replay;
pub mod rules;
pub mod run;
pub mod selftest;
pub mod status;

/// What `audetect --help` says audetect is.
pub const ABOUT: &str = "Real-time detections from the Linux kernel audit stream.

audetect reads the records the kernel's audit emits and runs detection rules
on them as they arrive: Elastic detection-rules TOML files with EQL queries
(from /etc/audetect/rules.d, or Elastic's own rule tree), and the built-in
rule, Elastic's \"Suspicious Network Connection Attempt by Root\" (a root
process that attempts an outbound TCP connection and then calls setsid()
within a minute). It installs only the audit rules the loaded rules need
(`audetect rules` prints them): with the built-in rule alone, connect and
setsid by root. Alerts are JSON documents sent to syslog (default /dev/log)
or written as JSON lines.

It must run as root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ). On stop (SIGTERM,
SIGINT) it removes the rules it added and restores the audit status it changed.";
