//! What the daemon runs with: the config in force, the outputs it decides
//! on, the detection rules, the audit rules they need, and the pipeline
//! assembled from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, SyslogTarget};
use crate::fields;
use crate::kernel::{self, AuditRule, EventKind, Wanted};
use crate::needs::{self, Needs};
use crate::normalize::Host;
use crate::output::{OutputError, Outputs};
use crate::pipeline::Pipeline;
use crate::process::live::LiveProc;
use crate::process::ProcSource;
use crate::rulefile::{self, Rule};
use crate::snapshot::{self, LiveSnapshotter, NotTaken, OnWorker, SnapshotSettings, Snapshotter};

use super::DaemonError;

/// The config in force, and whether it came from a file.
pub fn load_config(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), DaemonError> {
    let path = match path {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(config::DEFAULT_PATH)).filter(|p| p.exists()),
    };
    match path {
        Some(p) => Ok((config::load(&p)?, Some(p))),
        None => Ok((Config::default(), None)),
    }
}

/// Decides the outputs: with no config file and no syslog socket (a
/// container, a fresh VM), alerts go to stdout so a person sees them.
pub fn effective_outputs(config: &mut Config, from_file: bool) {
    if from_file || !config.syslog.enabled {
        return;
    }
    if let SyslogTarget::Unix(path) = &config.syslog.target {
        if !path.exists() {
            eprintln!(
                "audetect: no config file and no syslog socket at {}: printing alerts as JSON lines on stdout instead",
                path.display()
            );
            config.syslog.enabled = false;
            config.jsonl.enabled = true;
            config.jsonl.path = None;
        }
    }
}

pub fn check_outputs(config: &Config) -> Result<(), DaemonError> {
    if config.syslog_output().is_none() && config.jsonl_output().is_none() {
        return Err(DaemonError::NoOutput);
    }
    Ok(())
}

/// The detection rules in force; any error in any rule refuses them all.
/// Skipped rules are logged: one line with the count and the top reasons,
/// and each at debug level.
pub fn load_rules(config: &Config) -> Result<Vec<Rule>, DaemonError> {
    let set = load_rule_set(config)?;
    for (path, sha) in &set.files {
        log::debug!("rule file {} sha256 {sha}", path.display());
    }
    if !set.files.is_empty() {
        log::info!(
            "rule files: {} read, sha256 of the set {} (each at debug level)",
            set.files.len(),
            rulefile::digest(&set)
        );
    }
    if !set.skipped.is_empty() {
        for s in &set.skipped {
            log::debug!("rule {:?} ({}) skipped: {}", s.name, s.origin, s.reason);
        }
        let top: Vec<String> = set
            .top_reasons(3)
            .into_iter()
            .map(|(n, r)| format!("{n}× {r}"))
            .collect();
        log::info!(
            "{}; audetect cannot run the skipped ones (`audetect check-config --verbose` lists each and why); most often: {}",
            set.summary(),
            top.join("; ")
        );
    }
    Ok(set.rules)
}

/// The rules loaded and those skipped; an error when none can run.
pub fn load_rule_set(config: &Config) -> Result<rulefile::RuleSet, DaemonError> {
    let d = &config.detection;
    let set = rulefile::load(d.builtin_rules, &d.rule_paths, &fields::schema())?;
    if set.rules.is_empty() && set.skipped.is_empty() {
        return Err(DaemonError::NoRules {
            paths: d
                .rule_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if set.rules.is_empty() {
        return Err(DaemonError::NoRunnableRules {
            skipped: set.skipped.len(),
        });
    }
    Ok(set)
}

/// The audit rules the loaded detection rules need, and why each kind of
/// event is audited.
#[derive(Debug, Clone)]
pub struct AuditPlan {
    pub needs: Needs,
    /// In the order they are installed.
    pub rules: Vec<AuditRule>,
}

impl AuditPlan {
    pub fn for_rules(rules: &[Rule]) -> AuditPlan {
        let needs = needs::needs(rules, &fields::schema());
        let wanted: Vec<Wanted> = needs
            .kinds
            .iter()
            .filter_map(|k| {
                Some(Wanted {
                    kind: EventKind::from_action(&k.action)?,
                    root_only: k.root_only,
                    real_root: k.real_root,
                })
            })
            .collect();
        let mut audit_rules = kernel::rules_for(&wanted);
        // A maxspan is measured in record time: the clock's steps must be
        // seen to take them out (see Reassembler's clock shift).
        if rules.iter().any(|r| r.query.maxspan_ms().is_some()) {
            kernel::add_clock_rules(&mut audit_rules);
        }
        AuditPlan {
            rules: audit_rules,
            needs,
        }
    }

    /// One line per kind audited, in rule order: its action, its rules'
    /// key, whose events, and which detection rules need it.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for kind in EventKind::ALL {
            if let Some(need) = self.needs.get(kind.action()) {
                lines.push(format!(
                    "{} (key {}), {}",
                    kind.action(),
                    String::from_utf8_lossy(kind.key()),
                    need.describe()
                ));
            }
        }
        if self
            .rules
            .iter()
            .any(|r| r.key() == Some(kernel::KEY_CLOCK))
        {
            lines.push(
                "clock steps (key audetect-clock), every caller: rules with a maxspan \
                 measure it across date -s"
                    .into(),
            );
        }
        for need in &self.needs.kinds {
            if EventKind::from_action(&need.action).is_none() {
                lines.push(format!(
                    "{}: no audit rule produces it, {}",
                    need.action,
                    need.describe()
                ));
            }
        }
        lines
    }

    /// The kinds audited, at info level, so the log says what costs what.
    pub fn log(&self) {
        for line in self.describe() {
            log::info!("audit events: {line}");
        }
    }
}

/// The alert that says the sensor stops, and why: sent before the outputs
/// close, since a sensor that stops sees nothing and the stop may be an
/// attacker's.
pub fn stopping_alert(why: &str, host: &str) -> crate::output::Alert {
    crate::alert::configuration_alert(
        "sensor_stopping",
        &format!("audetect is stopping ({why}): no detections on this host until it runs again"),
        serde_json::json!({"reason": why, "pid": std::process::id()}),
        host,
        std::time::SystemTime::now(),
    )
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The host as events name it: host.id is the machine id, as Elastic
/// Defend's (systemd's /etc/machine-id, or D-Bus's copy).
pub fn host(name: String) -> Host {
    let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| {
            let id = std::fs::read_to_string(p).ok()?;
            let id = id.trim();
            (!id.is_empty()).then(|| id.to_owned())
        });
    let id = id.unwrap_or_else(|| {
        log::warn!("no /etc/machine-id: host.id is the host name");
        name.clone()
    });
    Host::new(id, name)
}

/// The outputs the config enables, on a thread of their own.
pub fn start_outputs(config: &Config, host: &str) -> Result<Outputs, OutputError> {
    Outputs::start(config.syslog_output(), config.jsonl_output(), host)
}

/// The pipeline of `run`, `plugin` and `selftest`: live processes, with
/// snapshots.
pub fn live_pipeline(config: &Config, rules: Vec<Rule>, host: String) -> Pipeline<LiveProc> {
    let mut pipeline = Pipeline::new(
        LiveProc::new(),
        rules,
        config.detection.max_pending_events,
        self::host(host),
    );
    pipeline.set_max_processes(config.detection.max_processes);
    let seeded = pipeline.seed_processes();
    log::debug!("process table seeded with {seeded} running processes");
    let untracked = pipeline.stats().normalize.table.not_seeded;
    if untracked > 0 {
        log::warn!(
            "process table full at start: {untracked} running process(es) not tracked (the \
             oldest; read from /proc when they next act): raise [detection] max_processes above {}",
            config.detection.max_processes
        );
    }
    pipeline.set_snapshots(
        snapshotter(&config.snapshot),
        config.snapshot.max_alert_bytes,
    );
    pipeline
}

/// What takes each alert's triage snapshot: /proc of this host, or, with
/// `[snapshot] enabled = false`, nothing (the alert says so).
pub fn snapshotter(settings: &SnapshotSettings) -> Box<dyn Snapshotter> {
    if settings.enabled {
        // The wait covers the budget, which the snapshot keeps to between
        // reads, and some slack; a read blocked past it is given up on.
        Box::new(OnWorker::new(
            Box::new(LiveSnapshotter::new(
                snapshot::Paths::host(),
                settings.clone(),
            )),
            settings.time_budget * 2 + Duration::from_millis(20),
        ))
    } else {
        Box::new(NotTaken("disabled ([snapshot] enabled = false)"))
    }
}

/// Logs, per rule, the matches held back by max_signals since the last
/// call, and returns them (rule name, count) for the supervisor's report.
pub fn log_suppressed(pipeline: &mut Pipeline<impl ProcSource>) -> Vec<(String, u64)> {
    let mut held = Vec::new();
    for (rule, n) in pipeline.take_suppressed() {
        log::warn!(
            "rule {:?}: {n} more match(es) not alerted: over its max_signals ({}) in a 5-minute window",
            rule.name,
            rule.max_signals
        );
        held.push((rule.name.clone(), n));
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind a rule can ask for has audit rules.
    #[test]
    fn every_kind_of_event_has_audit_rules() {
        for (action, _, _) in fields::KINDS {
            assert!(EventKind::from_action(action).is_some(), "{action}");
        }
    }

    #[test]
    fn the_builtin_rules_plan_the_builtin_audit_rules() {
        let rules = rulefile::load(true, &[], &fields::schema()).unwrap().rules;
        let plan = AuditPlan::for_rules(&rules);
        assert_eq!(plan.rules, kernel::audetect_rules());
        let why = "root only (euid 0, or uid 0): 3 rules (\"Suspicious Network Connection Attempt by Root\", \
                   \"Suspicious Network Connection Attempt by Root with a Lowered Effective UID\", \
                   \"Suspicious Session Start by Root with a Lowered Effective UID\")";
        assert_eq!(
            plan.describe(),
            [
                format!("connection_attempted (key audetect-connect), {why}"),
                format!("session_id_change (key audetect-setsid), {why}"),
                "clock steps (key audetect-clock), every caller: rules with a maxspan \
                 measure it across date -s"
                    .to_string(),
            ]
        );
    }
}
