//! Control of the kernel audit subsystem over netlink: status, rules, and the
//! lifecycle that puts back what audetect changed.

mod netlink;
pub mod rules;
mod ruleset;
mod session;
mod session_blinding;
mod status;
/// How a unit test says it cannot run here (the workspace's
/// tests/support/skip.rs, shared with the other crates' tests).
#[cfg(test)]
#[path = "../../../tests/support/skip.rs"]
#[allow(dead_code, unused_imports)]
mod test_skip;

use std::time::Duration;

// The per-arch syscall table the rule encoder reads (the audit model).
use audetect_audit::syscalls;

/// The framing seams of the fuzz targets (fuzz/), with the `fuzzing` feature only.
#[cfg(feature = "fuzzing")]
pub use netlink::fuzzing;
pub use netlink::{
    AuditSocket, RecvOutcome, AUDIT_ADD_RULE, AUDIT_DEL_RULE, AUDIT_FIRST_RECORD, AUDIT_GET,
    AUDIT_LIST_RULES, AUDIT_NLGRP_READLOG, AUDIT_SET, RECV_BUFFER_SIZE,
};
pub use rules::{AuditRule, FieldValue, RuleError, RuleField};
pub use ruleset::{
    add_clock_rules, audetect_rules, clock_rules, is_audetect_rule, is_uring_rule, rules_for,
    unknown_syscalls, uring_rules, without_saddr_fam, EventKind, Wanted, KEY_CLOCK, KEY_CONNECT,
    KEY_PREFIX, KEY_SETSID,
};
pub use session::{
    process_is_audetect, write_private, Repair, RulesChanged, Session, SessionSettings,
    DEFAULT_STATE_FILE,
};
pub use session_blinding::{
    needed_types, Blinding, ACTION_EXCLUDED, ACTION_RATE_LIMIT, ACTION_SYSCALLS,
};
pub use status::{AuditStatus, StatusChange, AUDIT_LOCKED};

/// Why a kernel audit operation failed. Messages carry their whole cause
/// (there is no `source()` chain to walk).
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A socket call failed (socket, bind, send, recv, setsockopt).
    #[error("{op}: {error}")]
    Io {
        op: &'static str,
        error: std::io::Error,
    },
    /// The kernel answered with an error (NLMSG_ERROR with a negative errno).
    #[error("{op}: the kernel refused: {}", errno_text(*errno))]
    Refused { op: &'static str, errno: i32 },
    #[error("{op}: no reply from the kernel within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    /// The kernel's reply did not have the expected shape.
    #[error("{op}: unexpected reply: {detail}")]
    Protocol { op: &'static str, detail: String },
    /// A request audetect never sends (enabled=2, failure=2).
    #[error("refusing to set {0}")]
    Forbidden(String),
    #[error("rule {rule}: {error}")]
    Rule { rule: String, error: RuleError },
    /// An error with what audetect was doing when it happened.
    #[error("{context}: {error}")]
    Context {
        context: String,
        error: Box<KernelError>,
    },
}

impl KernelError {
    /// The errno behind the error, if there is one (kernel refusal or socket
    /// error): EEXIST, ENOENT, EINVAL, EPERM...
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Refused { errno, .. } => Some(*errno),
            KernelError::Io { error, .. } => error.raw_os_error(),
            KernelError::Context { error, .. } => error.errno(),
            _ => None,
        }
    }

    fn io(op: &'static str, error: std::io::Error) -> Self {
        KernelError::Io { op, error }
    }

    fn protocol(op: &'static str, detail: impl Into<String>) -> Self {
        KernelError::Protocol {
            op,
            detail: detail.into(),
        }
    }

    fn rule(rule: &AuditRule, error: RuleError) -> Self {
        KernelError::Rule {
            rule: rule.to_auditctl(),
            error,
        }
    }

    fn context(context: String, error: KernelError) -> Self {
        KernelError::Context {
            context,
            error: Box::new(error),
        }
    }
}

/// "EEXIST (File exists)": the symbolic name users find in docs, and the text.
fn errno_text(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOMEM => "ENOMEM",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("errno {errno} ({})", strerror(errno)),
    };
    format!("{name} ({})", strerror(errno))
}

fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // Drop std's " (os error N)" suffix; the name is already there.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_errors_keep_their_errno() {
        let e = KernelError::Refused {
            op: "AUDIT_ADD_RULE",
            errno: libc::EEXIST,
        };
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(
            e.to_string(),
            "AUDIT_ADD_RULE: the kernel refused: EEXIST (File exists)"
        );
        let wrapped = KernelError::context("adding rule x".into(), e);
        assert_eq!(wrapped.errno(), Some(libc::EEXIST));
        assert!(wrapped
            .to_string()
            .starts_with("adding rule x: AUDIT_ADD_RULE"));
    }

    /// Refused before sending: a socket is opened (harmless without
    /// privileges) but the request never reaches the kernel.
    #[test]
    fn forbidden_status_changes_are_never_sent() {
        let mut socket = match AuditSocket::open() {
            Ok(socket) => socket,
            Err(e) => {
                let test = crate::test_skip::test_name!();
                return crate::test_skip::skip(
                    test,
                    format_args!("no NETLINK_AUDIT socket here: {e}"),
                );
            }
        };
        for change in [
            StatusChange {
                enabled: Some(2),
                ..Default::default()
            },
            StatusChange {
                failure: Some(2),
                ..Default::default()
            },
        ] {
            let err = socket.set_status(&change).unwrap_err();
            assert!(matches!(err, KernelError::Forbidden(_)), "{err}");
            assert_eq!(err.errno(), None);
        }
    }
}
