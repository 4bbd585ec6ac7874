//! The audit lifecycle of one audetect run: install the rules and status it
//! needs, and put back exactly what it changed when it stops (or is dropped),
//! also after a run that was killed, through a state file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::netlink::AuditSocket;
use super::rules::AuditRule;
use super::ruleset::{audetect_rules, is_audetect_rule, is_uring_rule, without_saddr_fam};
use super::session_blinding::{blinding, Blinding};
use super::status::{AuditStatus, StatusChange, AUDIT_LOCKED};
use super::KernelError;

/// Where `audetect run` records what it changed (systemd's RuntimeDirectory).
pub const DEFAULT_STATE_FILE: &str = "/run/audetect/state.json";

/// What `Session::start` sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Turn auditing on (enabled=1) if it is off: rules fire only then.
    pub enable: bool,
    /// Raise backlog_limit to at least this; a larger one is left alone.
    /// None: leave it (beside another audit daemon, whose setting it is).
    pub backlog_limit: Option<u32>,
    /// How long an audited task may wait for backlog room; 0 = never wait.
    /// None: leave it.
    pub backlog_wait_time: Option<u32>,
    /// Records the changes so that a start after a crash can undo them.
    pub state_file: Option<PathBuf>,
}

impl Default for SessionSettings {
    /// audetect's defaults: a large backlog, and the kernel's own wait time
    /// (callers wait for a slow reader rather than lose records).
    fn default() -> Self {
        SessionSettings {
            enable: true,
            backlog_limit: Some(8192),
            backlog_wait_time: None,
            state_file: None,
        }
    }
}

/// One status field audetect changed: what to put back, and what we set
/// (restored only if it still holds that, so a change made by someone else
/// while audetect ran is left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Changed {
    was: u32,
    set: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Changes {
    enabled: Option<Changed>,
    backlog_limit: Option<Changed>,
    backlog_wait_time: Option<Changed>,
}

impl Changes {
    fn field_mut(&mut self, field: &str) -> &mut Option<Changed> {
        match field {
            "enabled" => &mut self.enabled,
            "backlog_limit" => &mut self.backlog_limit,
            _ => &mut self.backlog_wait_time,
        }
    }
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedState {
    pid: u32,
    changes: Changes,
    /// The installed rules, in auditctl syntax.
    rules: Vec<String>,
    /// The audetect-keyed rules that are someone else's (loaded before the
    /// run began, or adopted since), in auditctl syntax. A run killed
    /// between adding a rule and saving this file leaks that rule; with this
    /// list the next start removes every audetect-keyed rule but these.
    /// Absent in files of older versions: then only `rules` are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    others: Option<Vec<String>>,
}

/// The kernel audit state audetect installed, put back by `stop` or on drop.
///
/// Registering as the audit daemon is not part of it (the receive socket does
/// that). `audetect run` calls `stop` while still registered and unregisters
/// right after: unregistering first would leave our rules firing with no
/// daemon, so the kernel would print their records to its log. The few
/// CONFIG_CHANGE records `stop` causes meanwhile land in the event socket's
/// large buffer, which stays open until then.
#[derive(Debug)]
pub struct Session {
    socket: AuditSocket,
    initial: AuditStatus,
    changes: Changes,
    /// The rules asked for: what a new rule set is compared with. Each is
    /// in `installed` or `adopted`, or stands for its fallback in `installed`.
    wanted: Vec<AuditRule>,
    installed: Vec<AuditRule>,
    /// Rules someone else had loaded that audetect relies on.
    adopted: Vec<AuditRule>,
    /// Every audetect-keyed rule that is not this run's (auditctl syntax):
    /// saved, so that recovery after a kill removes all the others.
    others: Vec<String>,
    fallbacks: Vec<String>,
    /// What this kernel lets a process do unseen by any audit rule
    /// audetect can install (x32 syscalls, io_uring without its filter).
    blind_spots: Vec<String>,
    state_file: Option<PathBuf>,
    /// Whether the lock (enabled=2) was already reported.
    lock_reported: bool,
    /// Keep audit enabled while running (the `enable` setting).
    keep_enabled: bool,
    /// The backlog settings in force once started, when they are
    /// audetect's to keep (as the registered daemon): lowered behind its
    /// back, they are put back.
    kept_backlog_limit: Option<u32>,
    kept_backlog_wait_time: Option<u32>,
    /// What suppresses audetect's records and was reported (by cause),
    /// while it lasts: each is reported once, and again if it comes back.
    blinding_reported: Vec<String>,
    stopped: bool,
}

/// What `replace_rules` did to the kernel's rules, in auditctl syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesChanged {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// What `check_and_repair` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    /// Rules that had disappeared and were put back (auditctl syntax).
    pub rules_restored: Vec<String>,
    /// Audit had been disabled and was enabled again.
    pub reenabled: bool,
    /// Someone locked audit (enabled=2) since the last check: reported once.
    pub locked: bool,
    /// The kernel's count of lost records, as of this check.
    pub lost: u32,
    /// The registered audit daemon's pid, as of this check (0: none).
    pub daemon_pid: u32,
    /// Backlog settings audetect keeps that were lowered and put back, as
    /// `field: was -> restored`.
    pub status_restored: Vec<String>,
    /// What newly suppresses the records audetect's rules need (rules
    /// and a rate limit that are not audetect's to remove): reported once.
    pub blinding: Vec<Blinding>,
    /// Causes reported before that are gone now.
    pub blinding_cleared: Vec<String>,
}

impl Session {
    /// Installs audetect's rules ([`audetect_rules`]) and status. On error,
    /// whatever was already done is undone before returning.
    pub fn start(settings: &SessionSettings) -> Result<Session, KernelError> {
        Session::start_with_rules(settings, audetect_rules())
    }

    /// `start` with another rule set: the rules the loaded detection rules
    /// need ([`rules_for`](super::rules_for)), or a test's.
    pub fn start_with_rules(
        settings: &SessionSettings,
        rules: Vec<AuditRule>,
    ) -> Result<Session, KernelError> {
        let mut socket = AuditSocket::open()?;
        let mut initial = socket.status()?;
        let mut session = Session {
            socket,
            initial,
            changes: Changes::default(),
            wanted: rules.clone(),
            installed: Vec::new(),
            adopted: Vec::new(),
            others: Vec::new(),
            fallbacks: Vec::new(),
            blind_spots: Vec::new(),
            state_file: settings.state_file.clone(),
            lock_reported: initial.enabled == AUDIT_LOCKED,
            keep_enabled: settings.enable,
            kept_backlog_limit: None,
            kept_backlog_wait_time: None,
            blinding_reported: Vec::new(),
            stopped: false,
        };
        match x32_syscalls() {
            X32::Off => {}
            X32::On => session.note_blind_spot(
                "this kernel runs x32 system calls, which no audit rule can match (their \
                 numbers carry bit 30, past the rule's syscall mask): a root process can \
                 connect() and setsid() through them unseen; boot with syscall.x32=n, or a \
                 kernel without CONFIG_X86_X32_ABI"
                    .into(),
            ),
            X32::Unknown => session.note_blind_spot(
                "x32 system calls may run on this kernel, and no audit rule can match them \
                 (their numbers carry bit 30, past the rule's syscall mask): a syscall filter \
                 on audetect (SystemCallArchitectures=native) kept it from probing, and no \
                 /boot/config-RELEASE says; boot with syscall.x32=n to be sure"
                    .into(),
            ),
        }
        let result = (|| {
            if let Some(path) = &settings.state_file {
                if let Some(saved) = read_state(path)? {
                    session.recover(path, saved)?;
                    // The status as the killed run found it is what to restore.
                    initial = session.socket.status()?;
                    session.initial = apply_was(initial, &session.changes);
                }
                session.others = session
                    .socket
                    .list_rules()?
                    .iter()
                    .filter(|r| is_audetect_rule(r))
                    .map(AuditRule::to_auditctl)
                    .collect();
                session.save()?;
            }
            if initial.enabled == AUDIT_LOCKED {
                session.start_locked(rules)
            } else {
                session.start_unlocked(settings, rules)
            }?;
            session.save()
        })();
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

    /// A state file was left by a run that did not stop cleanly: remove the
    /// rules it installed and adopt its record of what the status was.
    fn recover(&mut self, path: &Path, saved: SavedState) -> Result<(), KernelError> {
        if saved.pid != std::process::id() && process_is_audetect(saved.pid) {
            return Err(KernelError::Protocol {
                op: "start",
                detail: format!(
                    "another audetect (pid {}) is running: {} is its state file",
                    saved.pid,
                    path.display()
                ),
            });
        }
        log::warn!(
            "an earlier audetect run (pid {}) did not stop cleanly; undoing what it left (from {})",
            saved.pid,
            path.display()
        );
        for rule in self.socket.list_rules()? {
            let text = rule.to_auditctl();
            let left = match &saved.others {
                Some(others) => is_audetect_rule(&rule) && !others.contains(&text),
                None => saved.rules.contains(&text),
            };
            if left {
                log::warn!("removing a rule left by that run: {rule}");
                match self.socket.delete_rule(&rule) {
                    Err(e) if e.errno() != Some(libc::ENOENT) => {
                        return Err(KernelError::context(
                            format!("removing stale rule {rule}"),
                            e,
                        ))
                    }
                    _ => {}
                }
            }
        }
        self.changes = saved.changes;
        Ok(())
    }

    fn save(&self) -> Result<(), KernelError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let state = SavedState {
            pid: std::process::id(),
            changes: self.changes.clone(),
            rules: self.installed.iter().map(AuditRule::to_auditctl).collect(),
            others: Some(self.others.clone()),
        };
        let io = |error| KernelError::Io {
            op: "writing the state file",
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&state).unwrap_or_default();
        write_private(&tmp, text.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
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
                self.adopted.push(rule);
                continue;
            }
            if is_uring_rule(&rule) {
                self.note_blind_spot(format!(
                    "audit is locked and the io_uring rule was not loaded before the lock: \
                     connects submitted through io_uring are not seen ({rule})"
                ));
                continue;
            }
            // The kernel refuses (EPERM); trying keeps its answer authoritative.
            self.socket.add_rule(&rule).map_err(|e| {
                KernelError::context(
                    format!(
                        "audit is locked (enabled=2) and this rule is not loaded: {rule} \
                         (load the rules `audetect rules -c CONFIG` prints before the lock, or reboot)"
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
        // One field per request, so that a refusal leaves an exact record of
        // what did change. `base` is what stop puts back: the status as this
        // run (or a killed run before it) found it.
        let current = self.socket.status()?;
        let base = self.initial;
        let enabled = if settings.enable && current.enabled == 0 {
            1
        } else {
            current.enabled
        };
        self.changes.enabled = self.adjust("enabled", current.enabled, enabled, base.enabled)?;
        let limit = settings
            .backlog_limit
            .map_or(current.backlog_limit, |want| {
                want.max(current.backlog_limit)
            });
        self.changes.backlog_limit = self.adjust(
            "backlog_limit",
            current.backlog_limit,
            limit,
            base.backlog_limit,
        )?;
        self.kept_backlog_limit = settings.backlog_limit.map(|_| limit);
        if current.has_backlog_wait_time() {
            let wait = settings
                .backlog_wait_time
                .unwrap_or(current.backlog_wait_time);
            self.changes.backlog_wait_time = self.adjust(
                "backlog_wait_time",
                current.backlog_wait_time,
                wait,
                base.backlog_wait_time,
            )?;
            // Kept only when audetect sizes the backlog (as the registered
            // daemon): beside another daemon it is that one's.
            self.kept_backlog_wait_time = settings.backlog_limit.map(|_| wait);
        } else {
            self.fallbacks
                .push("this kernel has no backlog_wait_time; left unset".into());
        }

        for rule in rules {
            self.add(rule)?;
        }
        Ok(())
    }

    /// Adds one rule, or its fallback without saddr_fam on a kernel that
    /// refuses the field; a rule someone else loaded is adopted.
    fn add(&mut self, rule: AuditRule) -> Result<(), KernelError> {
        // Saved after each rule, not before: a rule that turns out to
        // be someone else's (EEXIST) must never be in the record.
        match self.socket.add_rule(&rule) {
            Ok(()) => {
                self.installed.push(rule);
                self.save()
            }
            Err(e) if e.errno() == Some(libc::EINVAL) && is_uring_rule(&rule) => {
                // Not fatal: the syscall rules still see every connect(2).
                log::warn!(
                    "the kernel has no io_uring audit filter (EINVAL, kernel older than 5.16?): \
                     connects submitted through io_uring are not seen ({rule})"
                );
                self.note_blind_spot(format!(
                    "this kernel has no io_uring audit filter (before 5.16): connects submitted \
                     through io_uring are not seen ({rule}); set kernel.io_uring_disabled=2 where \
                     the kernel has it, or run a newer kernel"
                ));
                Ok(())
            }
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                let Some(fallback) = without_saddr_fam(&rule) else {
                    return Err(KernelError::context(format!("adding rule {rule}"), e));
                };
                if self.installed.contains(&fallback) {
                    self.fallbacks.push(format!(
                        "kernel refused saddr_fam in {rule}; its fallback is already installed"
                    ));
                    return Ok(());
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
                self.save()
            }
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                // Loaded by someone else (augenrules): used, watched,
                // and not ours to remove later.
                log::info!("rule already present, used and left to its owner: {rule}");
                self.fallbacks
                    .push(format!("already present, not installed by us: {rule}"));
                let text = rule.to_auditctl();
                self.adopted.push(rule);
                if !self.others.contains(&text) {
                    self.others.push(text);
                    return self.save();
                }
                Ok(())
            }
            Err(e) => Err(KernelError::context(format!("adding rule {rule}"), e)),
        }
    }

    /// Follows a new rule set (a reload whose detection rules need other
    /// events): first adds what the running set lacks, then removes what
    /// only it had, so an event both need is never unaudited meanwhile.
    /// New rules go to the end of the kernel's list; that keeps fork's
    /// `never` rule before its `always` rule, as both come and go together.
    /// A rule someone else loaded is no longer watched, and left in place.
    /// With audit locked (enabled=2) nothing can change: an error, and the
    /// running rules stay.
    pub fn replace_rules(&mut self, rules: Vec<AuditRule>) -> Result<RulesChanged, KernelError> {
        if self.socket.status()?.enabled == AUDIT_LOCKED {
            return Err(KernelError::Protocol {
                op: "replacing the audit rules",
                detail: "audit is locked (enabled=2): its rules cannot change until reboot".into(),
            });
        }
        let mut changed = RulesChanged::default();
        let old = std::mem::take(&mut self.wanted);
        let mut done = Vec::new();
        for rule in rules.iter().filter(|r| !old.contains(r)) {
            let had = self.installed.len();
            if let Err(e) = self.add(rule.clone()) {
                // The running set stays, with what was added so far: the
                // next reload, and stop, account for it.
                self.wanted = old;
                self.wanted.extend(done);
                return Err(e);
            }
            changed
                .added
                .extend(self.installed[had..].iter().map(AuditRule::to_auditctl));
            done.push(rule.clone());
        }
        let mut first: Option<KernelError> = None;
        for rule in old.iter().filter(|r| !rules.contains(r)) {
            if self.adopted.contains(rule) {
                log::info!("no longer needed, left to its owner: {rule}");
                self.adopted.retain(|r| r != rule);
            }
            let fallback = without_saddr_fam(rule).filter(|fb| {
                !rules
                    .iter()
                    .any(|r| r == fb || without_saddr_fam(r).as_ref() == Some(fb))
            });
            let Some(ours) = self
                .installed
                .iter()
                .position(|r| r == rule || Some(r) == fallback.as_ref())
            else {
                continue;
            };
            let target = self.installed[ours].clone();
            match self.socket.delete_rule(&target) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    log::warn!("rule already removed by someone else: {target}")
                }
                Err(e) => {
                    first.get_or_insert(KernelError::context(format!("removing rule {target}"), e));
                    continue;
                }
            }
            self.installed.remove(ours);
            changed.removed.push(target.to_auditctl());
        }
        self.wanted = rules;
        self.save()?;
        match first {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    /// Removes the rules this session added and restores the status fields
    /// it changed. Returns the first error, after trying everything.
    pub fn stop(mut self) -> Result<(), KernelError> {
        self.stop_inner()
    }

    /// Puts back what someone else undid while audetect runs: rules that
    /// were deleted (`auditctl -D`, `augenrules --load`), with `enable`
    /// audit turned off, and the backlog settings it keeps lowered (a
    /// backlog of 1 and no wait loses nearly every record). A lock
    /// (enabled=2) is reported, never fought. What else suppresses the
    /// records its rules need (others' rules, a rate limit) is not its to
    /// undo: it is found and reported, once while it lasts.
    pub fn check_and_repair(&mut self) -> Result<Repair, KernelError> {
        let mut repair = Repair::default();
        let status = self.socket.status()?;
        repair.lost = status.lost;
        repair.daemon_pid = status.pid;
        if status.enabled == AUDIT_LOCKED {
            if !self.lock_reported {
                self.lock_reported = true;
                repair.locked = true;
            }
            return Ok(repair);
        }
        if status.enabled == 0 && self.keep_enabled {
            self.socket.set_status(&status_change("enabled", 1))?;
            let was = self.initial.enabled;
            self.changes.enabled = (was != 1).then_some(Changed { was, set: 1 });
            self.save()?;
            repair.reenabled = true;
        }
        // Only while audetect is the registered daemon: after a hand-over
        // the backlog is the other daemon's to size.
        if status.pid == std::process::id() {
            self.restore_backlog(&status, &mut repair)?;
        }
        let mut present = self.socket.list_rules()?;
        let missing: Vec<AuditRule> = self
            .installed
            .iter()
            .chain(&self.adopted)
            .filter(|r| !present.contains(r))
            .cloned()
            .collect();
        for rule in missing {
            match self.socket.add_rule(&rule) {
                // EEXIST: someone put it back between our list and our add.
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::EEXIST) => {}
                Err(e) => return Err(KernelError::context(format!("restoring rule {rule}"), e)),
            }
            // Put back by us, so ours to remove at stop.
            self.adopted.retain(|r| r != &rule);
            if !self.installed.contains(&rule) {
                self.installed.push(rule.clone());
            }
            repair.rules_restored.push(rule.to_auditctl());
        }
        if repair.reenabled || !repair.rules_restored.is_empty() {
            self.save()?;
        }
        if !repair.rules_restored.is_empty() {
            // Put back at the end of the list, maybe behind a rule that
            // now decides first.
            present = self.socket.list_rules()?;
        }
        let ours: Vec<AuditRule> = self
            .installed
            .iter()
            .chain(&self.adopted)
            .cloned()
            .collect();
        let found = blinding(&present, &ours, &status);
        let causes: Vec<String> = found.iter().map(|b| b.cause.clone()).collect();
        repair.blinding_cleared = self
            .blinding_reported
            .iter()
            .filter(|c| !causes.contains(c))
            .cloned()
            .collect();
        repair.blinding = found
            .into_iter()
            .filter(|b| !self.blinding_reported.contains(&b.cause))
            .collect();
        self.blinding_reported = causes;
        Ok(repair)
    }

    /// Puts back `backlog_limit` and `backlog_wait_time` where someone
    /// lowered them below what audetect keeps.
    fn restore_backlog(
        &mut self,
        status: &AuditStatus,
        repair: &mut Repair,
    ) -> Result<(), KernelError> {
        let fields = [
            (
                "backlog_limit",
                self.kept_backlog_limit,
                status.backlog_limit,
            ),
            (
                "backlog_wait_time",
                self.kept_backlog_wait_time,
                status.backlog_wait_time,
            ),
        ];
        for (field, kept, now) in fields {
            let Some(kept) = kept.filter(|&k| now < k) else {
                continue;
            };
            self.socket.set_status(&status_change(field, kept))?;
            repair
                .status_restored
                .push(format!("{field}: {now} -> {kept}"));
        }
        Ok(())
    }

    /// Sets one status field to `want` if it is not already, and returns
    /// the change to undo at stop (None when `want` is what we found).
    fn adjust(
        &mut self,
        field: &'static str,
        current: u32,
        want: u32,
        base: u32,
    ) -> Result<Option<Changed>, KernelError> {
        let changed = (base != want).then_some(Changed {
            was: base,
            set: want,
        });
        if current != want {
            // Written down before the kernel changes: a run killed right
            // after still leaves the record a later start restores from
            // (putting back a change that did not happen is harmless).
            *self.changes.field_mut(field) = changed;
            self.save()?;
            self.socket.set_status(&status_change(field, want))?;
            log::info!("audit {field}: {current} -> {want} while audetect runs");
        }
        Ok(changed)
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
        let installed = std::mem::take(&mut self.installed);
        let mut removed = 0;
        for rule in installed.iter().rev() {
            match self.socket.delete_rule(rule) {
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    log::warn!("rule already removed by someone else: {rule}")
                }
                Err(e) => note(KernelError::context(format!("removing rule {rule}"), e)),
                Ok(()) => removed += 1,
            }
        }
        if !installed.is_empty() {
            log::info!(
                "audit rules: removed {removed} of the {} audetect installed",
                installed.len()
            );
        }
        let changes = std::mem::take(&mut self.changes);
        // Disable first: that stops new records before the limits change.
        let steps = [
            ("enabled", changes.enabled),
            ("backlog_wait_time", changes.backlog_wait_time),
            ("backlog_limit", changes.backlog_limit),
        ];
        let current = self.socket.status();
        // Another audit daemon registered while audetect ran (auditd, after
        // audetect gave way to it): the audit status is now its to keep.
        let initial_pid = self.initial.pid;
        let other_daemon = match &current {
            Ok(st) => st.pid != 0 && st.pid != std::process::id() && st.pid != initial_pid,
            Err(_) => false,
        };
        if other_daemon {
            if let Ok(st) = &current {
                log::info!(
                    "audit daemon pid {} is registered now: leaving the audit status to it",
                    st.pid
                );
            }
        }
        for (field, change) in steps.into_iter().filter(|_| !other_daemon) {
            let Some(Changed { was, set }) = change else {
                continue;
            };
            let now = match &current {
                Ok(status) => field_value(status, field),
                Err(_) => set,
            };
            if now != set {
                log::warn!(
                    "audit {field} was changed to {now} by someone else while audetect ran; \
                     leaving it (audetect had set {set}, found {was})"
                );
                continue;
            }
            match self.socket.set_status(&status_change(field, was)) {
                Ok(()) => log::info!("audit {field}: restored to {was}"),
                Err(e) => note(KernelError::context(
                    format!("restoring {field} to {was}"),
                    e,
                )),
            }
        }
        match first {
            Some(e) => Err(e),
            None => {
                if let Some(path) = &self.state_file {
                    if let Err(e) = std::fs::remove_file(path) {
                        log::warn!("cannot remove {}: {e}", path.display());
                    }
                }
                Ok(())
            }
        }
    }

    /// The rules asked for (by start or the last `replace_rules`), before
    /// any fallback.
    pub fn wanted(&self) -> &[AuditRule] {
        &self.wanted
    }

    /// What suppresses audetect's records now, by cause (a rule in auditctl
    /// syntax, or `rate_limit=N`), as the last check found it.
    pub fn blinding_in_force(&self) -> &[String] {
        &self.blinding_reported
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

    /// What a process can do unseen on this kernel whatever rules audetect
    /// installs, one sentence each; reported at start.
    pub fn blind_spots(&self) -> &[String] {
        &self.blind_spots
    }

    fn note_blind_spot(&mut self, what: String) {
        if !self.blind_spots.contains(&what) {
            log::warn!("blind spot: {what}");
            self.blind_spots.push(what);
        }
    }

    /// The kernel's status before this session changed anything.
    pub fn initial_status(&self) -> &AuditStatus {
        &self.initial
    }
}

fn status_change(field: &str, value: u32) -> StatusChange {
    let mut change = StatusChange::default();
    match field {
        "enabled" => change.enabled = Some(value),
        "backlog_limit" => change.backlog_limit = Some(value),
        _ => change.backlog_wait_time = Some(value),
    }
    change
}

fn field_value(status: &AuditStatus, field: &str) -> u32 {
    match field {
        "enabled" => status.enabled,
        "backlog_limit" => status.backlog_limit,
        _ => status.backlog_wait_time,
    }
}

/// The status as it was before the changes were made.
fn apply_was(mut status: AuditStatus, changes: &Changes) -> AuditStatus {
    if let Some(c) = changes.enabled {
        status.enabled = c.was;
    }
    if let Some(c) = changes.backlog_limit {
        status.backlog_limit = c.was;
    }
    if let Some(c) = changes.backlog_wait_time {
        status.backlog_wait_time = c.was;
    }
    status
}

/// Writes a file only root can read (0600 from its creation, whatever a
/// stale one left): the state says which rules a killed run leaves behind.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)
}

fn read_state(path: &Path) -> Result<Option<SavedState>, KernelError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(state) => Ok(Some(state)),
            Err(e) => {
                log::warn!("ignoring unreadable state file {}: {e}", path.display());
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(KernelError::Io {
            op: "reading the state file",
            error,
        }),
    }
}

/// Whether `pid` is a live audetect (a reused pid is some other program).
/// Whether `pid` runs the same program as this process. Its executable,
/// not its name: any user can name a process "audetect", and one sitting
/// on a crashed run's pid must not keep the daemon from starting.
pub fn process_is_audetect(pid: u32) -> bool {
    let exe = |p: String| std::fs::read_link(p).ok();
    match (
        exe(format!("/proc/{pid}/exe")),
        exe("/proc/self/exe".into()),
    ) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
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

/// What the start learned of x32 system calls on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X32 {
    /// The kernel refuses them (ENOSYS), or this is not x86_64.
    Off,
    /// The kernel runs them.
    On,
    /// A seccomp filter on audetect itself kills them (the packaged unit's
    /// SystemCallArchitectures=native), so the probe cannot tell; the
    /// kernel's config said neither way.
    Unknown,
}

/// Whether this kernel runs x32 system calls: getpid by its x32 number
/// (bit 30 set) answers instead of failing with ENOSYS. The call is made in
/// a forked child: under a syscall filter that does not allow the x32 ABI
/// the kernel kills the caller with SIGSYS, and that must not be audetect.
/// A child killed so leaves the answer to the kernel's config.
pub fn x32_syscalls() -> X32 {
    #[cfg(target_arch = "x86_64")]
    {
        match x32_probe_in_child() {
            Some(true) => X32::On,
            Some(false) => X32::Off,
            None => x32_from_kernel_config(
                kernel_config().as_deref(),
                &std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            ),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        X32::Off
    }
}

/// Some(answer) from a child that made the x32 call, None when it was killed
/// (or could not be forked).
#[cfg(target_arch = "x86_64")]
fn x32_probe_in_child() -> Option<bool> {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: the child makes two raw system calls and exits; it touches no
    // lock or allocator another thread may have held at the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: getpid takes no argument and changes nothing.
        let pid = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
        // SAFETY: _exit ends the child without running the parent's atexit.
        unsafe { libc::_exit(if pid > 0 { 0 } else { 1 }) };
    }
    if child < 0 {
        return None;
    }
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer; child is our own child.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status) == 0)
    } else {
        None
    }
}

/// The running kernel's build config, where the distribution leaves it
/// (Debian and Ubuntu: /boot/config-RELEASE; /proc/config.gz is gzip and
/// needs a decompressor audetect does not carry).
#[cfg(target_arch = "x86_64")]
fn kernel_config() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

/// x32 by the kernel's config and command line: not built in is Off; built
/// in, it runs unless disabled at boot, where Debian's
/// CONFIG_X86_X32_DISABLED turns the default to off (syscall.x32=y enables).
pub fn x32_from_kernel_config(config: Option<&str>, cmdline: &str) -> X32 {
    let Some(config) = config else {
        return X32::Unknown;
    };
    let set = |option: &str| config.lines().any(|l| l.trim() == format!("{option}=y"));
    if !set("CONFIG_X86_X32_ABI") && !set("CONFIG_X86_X32") {
        return X32::Off;
    }
    let param = cmdline
        .split_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("syscall.x32="));
    let on = match param {
        Some(v) => matches!(v, "y" | "Y" | "1" | "yes" | "on"),
        None => !set("CONFIG_X86_X32_DISABLED"),
    };
    if on {
        X32::On
    } else {
        X32::Off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe says what the running kernel's own config says of x32
    /// (the kernel audetect's tests run on has no CONFIG_X86_X32_ABI; a
    /// kernel with it and syscall.x32=n answers ENOSYS as well, so only
    /// "not set" is a definite no).
    #[test]
    fn x32_probe_agrees_with_the_kernel_config() {
        let config = std::process::Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let Some(config) = config else {
            let test = crate::test_skip::test_name!();
            return crate::test_skip::skip(test, "no /proc/config.gz to check the probe against");
        };
        if config.contains("# CONFIG_X86_X32_ABI is not set") || !cfg!(target_arch = "x86_64") {
            assert_eq!(x32_syscalls(), X32::Off);
        } else if config.contains("CONFIG_X86_X32_ABI=y") {
            // Enabled at build time: the probe and the boot parameter agree.
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            if !cmdline.contains("syscall.x32=n") {
                assert_eq!(
                    x32_syscalls(),
                    X32::On,
                    "x32 built in, not disabled at boot"
                );
            }
        }
    }

    /// Under a seccomp filter that kills x32 calls (what the packaged
    /// unit's SystemCallArchitectures=native installs) the probe must not
    /// take audetect with it: a real filter, installed in a child process
    /// (this test binary run again), which then probes and reports.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x32_probe_survives_a_filter_that_kills_x32_calls() {
        const CHILD: &str = "AUDETECT_TEST_X32_UNDER_SECCOMP";
        if std::env::var_os(CHILD).is_some() {
            install_filter_killing_x32();
            println!("x32 probe answered {:?}", x32_syscalls());
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "session::tests::x32_probe_survives_a_filter_that_kills_x32_calls",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("run the test binary again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the probe under the filter: {:?}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // This kernel has no x32: the child's call is killed, so the answer
        // comes from the config, which says Off, or is missing (Unknown).
        assert!(
            stdout.contains("x32 probe answered Off")
                || stdout.contains("x32 probe answered Unknown"),
            "{stdout}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    fn install_filter_killing_x32() {
        const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
        let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let (ld, jeq, jset, ret) = (
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            libc::BPF_RET | libc::BPF_K,
        );
        let mut program = [
            op(ld, 0, 0, 4),                  // seccomp_data.arch
            op(jeq, 0, 3, AUDIT_ARCH_X86_64), // another arch: allow
            op(ld, 0, 0, 0),                  // seccomp_data.nr
            op(jset, 0, 1, 0x4000_0000),      // x32: kill
            op(ret, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
            op(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
        ];
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: fprog points at a live, well-formed program.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog
                ),
                0,
                "install the filter: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    #[test]
    fn x32_by_kernel_config() {
        let debian = "CONFIG_X86_X32_ABI=y\nCONFIG_X86_X32_DISABLED=y\n";
        assert_eq!(x32_from_kernel_config(Some(debian), "ro quiet"), X32::Off);
        assert_eq!(
            x32_from_kernel_config(Some(debian), "ro syscall.x32=y"),
            X32::On
        );
        let upstream = "CONFIG_X86_X32_ABI=y\n";
        assert_eq!(x32_from_kernel_config(Some(upstream), "ro"), X32::On);
        assert_eq!(
            x32_from_kernel_config(Some(upstream), "syscall.x32=n"),
            X32::Off
        );
        let none = "# CONFIG_X86_X32_ABI is not set\n";
        assert_eq!(
            x32_from_kernel_config(Some(none), "syscall.x32=y"),
            X32::Off
        );
        assert_eq!(x32_from_kernel_config(None, ""), X32::Unknown);
    }
}
