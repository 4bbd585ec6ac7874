//! `audetect run`: the daemon in the foreground, from bring-up to the
//! ordered shutdown at SIGTERM or SIGINT, reloading at SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::caps;
use crate::config::{self, Config};
use crate::kernel::{self, AuditSocket, Session};
use crate::output::Outputs;
use crate::pipeline::Pipeline;
use crate::process::live::LiveProc;

use super::bringup::{drop_capabilities, notify_ready, raise_priority, Watchdog};
use super::error::Chain;
use super::{
    check_outputs, effective_outputs, host_name, live_pipeline, load_config, load_rules, shut_down,
    snapshotter, start_outputs, AuditPlan, DaemonError, OpenKernel, Signals, Sink, Supervisor,
};

/// Runs until SIGTERM or SIGINT; `path` is the config file given, if any.
pub fn run(path: Option<&Path>) -> Result<(), DaemonError> {
    let (mut config, origin) = load_config(path)?;
    effective_outputs(&mut config, origin.is_some());
    check_outputs(&config)?;
    match &origin {
        Some(p) => log::info!("config {}", p.display()),
        None => log::info!(
            "no config file at {}; using built-in defaults",
            config::DEFAULT_PATH
        ),
    }
    let signals = Signals::install()?;
    let rules = load_rules(&config)?;
    let plan = AuditPlan::for_rules(&rules);
    plan.log();
    let host = host_name();

    caps::require(&[caps::AUDIT_CONTROL])?;
    let before = AuditSocket::open()
        .and_then(|mut s| s.status())
        .map_err(DaemonError::AuditStatus)?;
    let opened = OpenKernel::open(
        &config,
        &before,
        Some(PathBuf::from(kernel::DEFAULT_STATE_FILE)),
        plan.rules,
    )?;
    // Set up: from here on only what the daemon keeps using, in every thread
    // (none has been started yet, so each inherits the priority too).
    raise_priority(config.kernel.priority_boost);
    drop_capabilities(&caps::KEEP);
    let mut outputs = match start_outputs(&config, &host) {
        Ok(outputs) => outputs,
        Err(e) => {
            opened.abandon();
            return Err(DaemonError::Outputs(e));
        }
    };
    let mut kernel = opened.start()?;
    let mut pipeline = live_pipeline(&config, rules, host.clone());
    for rule in pipeline.rules() {
        log::info!("detection rule {:?} ({})", rule.name, rule.origin);
    }
    log::info!(
        "ready: {} audit rules installed, {} detection rule(s)",
        kernel.session.installed().len(),
        pipeline.rules().count()
    );
    notify_ready();
    // What no rule can show on this kernel goes to the SIEM once per start,
    // so that nobody reads the silence as "nothing happened".
    for what in kernel.session.blind_spots() {
        outputs.send(crate::alert::configuration_alert(
            "sensor_blind_spot",
            &format!("audetect cannot see everything on this host: {what}"),
            serde_json::json!({"blind_spot": what}),
            &host,
            std::time::SystemTime::now(),
        ));
    }

    let mut supervisor = Supervisor::new(
        &config,
        &host,
        kernel.receiver.source,
        before.lost,
        kernel.session.installed().len(),
        pipeline.rules().count(),
    );
    let mut watchdog = Watchdog::from_env();
    let mut why = "asked to stop (SIGTERM or SIGINT)";
    while !signals.stop_asked() {
        watchdog.tick();
        if !kernel.feed(Duration::from_millis(250), &mut pipeline, &mut |a| {
            outputs.send(a)
        }) {
            why = "its receive thread ended";
            break;
        }
        if signals.take_hangup() {
            if let Some(reloaded) = reload(
                path,
                &config,
                &mut pipeline,
                &mut kernel.session,
                &mut outputs,
                &host,
            ) {
                config = reloaded;
            }
        }
        supervisor.tick(
            &mut kernel.session,
            &kernel.receiver,
            &outputs,
            &mut pipeline,
        );
    }

    log::info!("stopping: {why}");
    // Before the outputs close: a sensor that stops is a sensor that sees
    // nothing, and the stop may be an attacker's.
    outputs.send(super::stopping_alert(why, &host));
    let stopped = shut_down(Some(kernel), &mut pipeline, Sink::Outputs(outputs));
    supervisor.remove_stats();
    let s = pipeline.stats();
    let o = stopped.outputs.unwrap_or_default();
    let c = stopped.received.unwrap_or_default();
    log::info!(
        "stopped: {} datagrams ({} socket overflows, {} not from the kernel), {}",
        c.datagrams.load(Ordering::Relaxed),
        c.overruns.load(Ordering::Relaxed),
        c.foreign.load(Ordering::Relaxed),
        super::counts(&s, &o)
    );
    stopped.restored
}

/// SIGHUP: reads the config and the rules again. Rules whose query did not
/// change keep their pending sequences; new outputs replace the old ones
/// once the old have sent what they hold. A bad config or rule is refused
/// and the running one kept. The audit rules follow the new rules; other
/// kernel settings take effect at restart.
fn reload(
    path: Option<&Path>,
    running: &Config,
    pipeline: &mut Pipeline<LiveProc>,
    session: &mut Session,
    outputs: &mut Outputs,
    host: &str,
) -> Option<Config> {
    let loaded = load_config(path).and_then(|(mut config, origin)| {
        effective_outputs(&mut config, origin.is_some());
        check_outputs(&config)?;
        let rules = load_rules(&config)?;
        Ok((config, rules))
    });
    let (config, rules) = match loaded {
        Ok(c) => c,
        Err(e) => {
            log::error!(
                "reload refused, keeping the running configuration: {}",
                Chain(&e)
            );
            return None;
        }
    };
    if config.kernel != running.kernel {
        log::warn!("[kernel] settings changed: they take effect when audetect restarts");
    }
    if config.syslog != running.syslog || config.jsonl != running.jsonl {
        match start_outputs(&config, host) {
            Ok(new) => {
                let old = std::mem::replace(outputs, new);
                // The old outputs finish on their own, off the receive path.
                std::thread::spawn(move || old.shutdown(Duration::from_secs(5)));
            }
            Err(e) => log::error!("reload: keeping the running outputs: {e}"),
        }
    }
    if config.snapshot != running.snapshot {
        pipeline.set_snapshots(
            snapshotter(&config.snapshot),
            config.snapshot.max_alert_bytes,
        );
    }
    let plan = AuditPlan::for_rules(&rules);
    if plan.rules.as_slice() != session.wanted() {
        plan.log();
        match session.replace_rules(plan.rules) {
            Ok(changed) => log::info!(
                "reload: {} audit rule(s) added, {} removed",
                changed.added.len(),
                changed.removed.len()
            ),
            Err(e) => log::error!("reload: the audit rules did not all follow the new rules: {e}"),
        }
    }
    let total = rules.len();
    let kept = pipeline.replace_rules(rules);
    log::info!(
        "reloaded: {total} detection rule(s), {kept} unchanged kept their pending sequences"
    );
    Some(config)
}
