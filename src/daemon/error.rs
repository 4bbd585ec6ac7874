//! Why the daemon could not start or stop cleanly; each message is the one
//! the command line prints, followed by its cause.

use std::path::PathBuf;

use crate::caps::CapsError;
use crate::config::ConfigError;
use crate::kernel::KernelError;
use crate::output::OutputError;
use crate::receive::ReceiveError;
use crate::rulefile::RuleError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "no output is enabled: enable [output.syslog] or [output.jsonl], or alerts go nowhere"
    )]
    NoOutput,
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("no detection rules: builtin_rules is false and no rule file was found in {paths}")]
    NoRules { paths: String },
    #[error("no detection rule audetect can run: {skipped} skipped (`audetect check-config --verbose` says why)")]
    NoRunnableRules { skipped: usize },
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("reading the kernel audit status (audetect needs root: CAP_AUDIT_CONTROL)")]
    AuditStatus(#[source] KernelError),
    #[error("starting to receive audit records")]
    Receive(#[source] ReceiveError),
    #[error("setting up kernel audit")]
    Session(#[source] KernelError),
    #[error("starting outputs")]
    Outputs(#[source] OutputError),
    #[error("starting the receive thread")]
    ReceiveThread(#[source] ReceiveError),
    #[error("restoring kernel audit state")]
    Restore(#[source] KernelError),
    #[error("reading the input")]
    Input(#[source] std::io::Error),
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing alerts to stdout")]
    WriteAlerts(#[source] std::io::Error),
}

/// An error and its causes on one line, "error: cause: cause", as the
/// command line prints them.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
