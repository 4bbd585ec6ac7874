//! The audit lifecycle of one audetect run: install the rules and status it
//! needs, and put back exactly what it changed when it stops (or is dropped).

use super::netlink::AuditSocket;
use super::rules::AuditRule;
use super::ruleset::{audetect_rules, is_audetect_rule, without_saddr_fam};
use super::status::{AuditStatus, StatusChange, AUDIT_LOCKED};
use super::KernelError;

/// What `Session::start` sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// Turn auditing on (enabled=1) if it is off: rules fire only then.
    pub enable: bool,
    pub backlog_limit: u32,
    /// How long an audited task may wait for backlog room; 0 = never wait.
    pub backlog_wait_time: u32,
}

impl Default for SessionSettings {
    /// The values auditbeat uses: a large backlog, and no waiting, so a slow
    /// reader loses records rather than slowing down the machine.
    fn default() -> Self {
        SessionSettings {
            enable: true,
            backlog_limit: 8192,
            backlog_wait_time: 0,
        }
    }
}

/// The kernel audit state audetect installed, put back by `stop` or on drop.
///
/// Registering as the audit daemon is not part of it (the receive socket does
/// that). Unregister (pid 0) *before* `stop`: `stop` restores `enabled` and
/// `backlog_wait_time`, and with a registered daemon that no longer reads,
/// the kernel queues every record (including the CONFIG_CHANGE records `stop`
/// itself causes) for it until the backlog fills, after which audited tasks
/// wait up to the restored backlog_wait_time each.
#[derive(Debug)]
pub struct Session {
    socket: AuditSocket,
    initial: AuditStatus,
    /// The old values of the status fields this session changed.
    restore: StatusChange,
    installed: Vec<AuditRule>,
    fallbacks: Vec<String>,
    stopped: bool,
}

impl Session {
    /// Installs audetect's rules ([`audetect_rules`]) and status. On error,
    /// whatever was already done is undone before returning.
    pub fn start(settings: &SessionSettings) -> Result<Session, KernelError> {
        Session::start_with_rules(settings, audetect_rules())
    }

    /// `start` with another rule set (tests; future rule sets). Stale rules
    /// are still recognized by their audetect key.
    pub fn start_with_rules(
        settings: &SessionSettings,
        rules: Vec<AuditRule>,
    ) -> Result<Session, KernelError> {
        let mut socket = AuditSocket::open()?;
        let initial = socket.status()?;
        let mut session = Session {
            socket,
            initial,
            restore: StatusChange::default(),
            installed: Vec::new(),
            fallbacks: Vec::new(),
            stopped: false,
        };
        let result = if initial.enabled == AUDIT_LOCKED {
            session.start_locked(rules)
        } else {
            session.start_unlocked(settings, rules)
        };
        match result {
            Ok(()) => Ok(session),
            Err(e) => {
                if let Err(undo) = session.stop_inner() {
                    log::error!("undoing a failed audit setup: {undo}");
                }
                Err(e)
            }
        }
    }

    /// With audit locked (enabled=2) nothing can change until reboot: the
    /// status stays as it is, and rules can only be used if they were loaded
    /// before the lock (e.g. audetect.rules through augenrules).
    fn start_locked(&mut self, rules: Vec<AuditRule>) -> Result<(), KernelError> {
        log::warn!(
            "kernel audit is locked (enabled=2): audetect leaves the audit status as it is \
             and can only use rules loaded before the lock"
        );
        let present = self.socket.list_rules()?;
        for rule in rules {
            let loaded = present.contains(&rule)
                || without_saddr_fam(&rule).is_some_and(|fb| present.contains(&fb));
            if loaded {
                self.fallbacks.push(format!(
                    "audit is locked; using the rule loaded before the lock: {rule}"
                ));
                continue;
            }
            // The kernel refuses (EPERM); trying keeps its answer authoritative.
            self.socket.add_rule(&rule).map_err(|e| {
                KernelError::context(
                    format!(
                        "audit is locked (enabled=2) and this rule is not loaded: {rule} \
                         (load audit-rules/audetect.rules before the lock, or reboot)"
                    ),
                    e,
                )
            })?;
            self.installed.push(rule);
        }
        Ok(())
    }

    fn start_unlocked(
        &mut self,
        settings: &SessionSettings,
        rules: Vec<AuditRule>,
    ) -> Result<(), KernelError> {
        for stale in self
            .socket
            .list_rules()?
            .into_iter()
            .filter(is_audetect_rule)
        {
            log::warn!("removing a rule left by an earlier audetect run: {stale}");
            match self.socket.delete_rule(&stale) {
                Err(e) if e.errno() != Some(libc::ENOENT) => {
                    return Err(KernelError::context(
                        format!("removing stale rule {stale}"),
                        e,
                    ))
                }
                _ => {}
            }
        }

        // One field per request, so that a refusal leaves an exact record of
        // what did change.
        let initial = self.initial;
        if initial.backlog_limit != settings.backlog_limit {
            self.socket.set_status(&StatusChange {
                backlog_limit: Some(settings.backlog_limit),
                ..Default::default()
            })?;
            self.restore.backlog_limit = Some(initial.backlog_limit);
        }
        if !initial.has_backlog_wait_time() {
            self.fallbacks
                .push("this kernel has no backlog_wait_time; left unset".into());
        } else if initial.backlog_wait_time != settings.backlog_wait_time {
            self.socket.set_status(&StatusChange {
                backlog_wait_time: Some(settings.backlog_wait_time),
                ..Default::default()
            })?;
            self.restore.backlog_wait_time = Some(initial.backlog_wait_time);
        }
        if settings.enable && initial.enabled == 0 {
            self.socket.set_status(&StatusChange {
                enabled: Some(1),
                ..Default::default()
            })?;
            self.restore.enabled = Some(0);
        }

        for rule in rules {
            match self.socket.add_rule(&rule) {
                Ok(()) => self.installed.push(rule),
                Err(e) if e.errno() == Some(libc::EINVAL) => {
                    let Some(fallback) = without_saddr_fam(&rule) else {
                        return Err(KernelError::context(format!("adding rule {rule}"), e));
                    };
                    if self.installed.contains(&fallback) {
                        self.fallbacks.push(format!(
                            "kernel refused saddr_fam in {rule}; its fallback is already installed"
                        ));
                        continue;
                    }
                    log::warn!(
                        "the kernel refused saddr_fam (EINVAL, kernel older than 5.3?); \
                         installing {fallback} instead: non-IP connects will reach audetect \
                         and be dropped there"
                    );
                    self.socket.add_rule(&fallback).map_err(|e| {
                        KernelError::context(format!("adding fallback rule {fallback}"), e)
                    })?;
                    self.fallbacks.push(format!(
                        "kernel refused saddr_fam; installed {fallback} instead of {rule}"
                    ));
                    self.installed.push(fallback);
                }
                Err(e) if e.errno() == Some(libc::EEXIST) => {
                    // Someone added it after the stale sweep (another
                    // audetect?): it is not ours to remove later.
                    log::warn!("rule already present, left to its owner: {rule}");
                    self.fallbacks
                        .push(format!("already present, not installed by us: {rule}"));
                }
                Err(e) => return Err(KernelError::context(format!("adding rule {rule}"), e)),
            }
        }
        Ok(())
    }

    /// Removes the rules this session added and restores the status fields
    /// it changed. Returns the first error, after trying everything.
    pub fn stop(mut self) -> Result<(), KernelError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), KernelError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut first: Option<KernelError> = None;
        let mut note = |e: KernelError| {
            log::error!("{e}");
            first.get_or_insert(e);
        };
        for rule in std::mem::take(&mut self.installed).iter().rev() {
            match self.socket.delete_rule(rule) {
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    log::warn!("rule already removed by someone else: {rule}")
                }
                Err(e) => note(KernelError::context(format!("removing rule {rule}"), e)),
                Ok(()) => {}
            }
        }
        let restore = std::mem::take(&mut self.restore);
        // Disable first: that stops new records before the limits change.
        let steps = [
            StatusChange {
                enabled: restore.enabled,
                ..Default::default()
            },
            StatusChange {
                backlog_wait_time: restore.backlog_wait_time,
                ..Default::default()
            },
            StatusChange {
                backlog_limit: restore.backlog_limit,
                ..Default::default()
            },
        ];
        for step in steps.iter().filter(|s| !s.is_empty()) {
            if let Err(e) = self.socket.set_status(step) {
                note(KernelError::context(format!("restoring {step:?}"), e));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The rules this session added (and will remove).
    pub fn installed(&self) -> &[AuditRule] {
        &self.installed
    }

    /// Human-readable notes about deviations from the plan (fallback rules,
    /// locked audit, rules already present).
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// The kernel's status before this session changed anything.
    pub fn initial_status(&self) -> &AuditStatus {
        &self.initial
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.stopped {
            log::warn!("audit session dropped without stop(): restoring the kernel audit state");
            if let Err(e) = self.stop_inner() {
                log::error!("restoring the kernel audit state: {e}");
            }
        }
    }
}
