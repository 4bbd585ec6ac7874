//! `audetect plugin`: auditd's plugin. Records arrive on stdin in auditd's
//! string format, from an auditd that owns the audit socket and loads the
//! rules (augenrules).

use std::path::Path;

use crate::caps;
use crate::output::Alert;

use super::bringup::drop_capabilities;
use super::{
    check_outputs, effective_outputs, feed_lines, host_name, live_pipeline, load_config,
    load_rules, shut_down, start_outputs, AuditPlan, DaemonError, Sink,
};

/// Processes are live, so procfs is used as in `run`; alerts go to the
/// configured outputs. Ends when auditd closes the stream.
pub fn plugin(path: Option<&Path>) -> Result<(), DaemonError> {
    let (mut config, origin) = load_config(path)?;
    effective_outputs(&mut config, origin.is_some());
    check_outputs(&config)?;
    let rules = load_rules(&config)?;
    // auditd loads the audit rules here; the log says which they must cover.
    AuditPlan::for_rules(&rules).log();
    let host = host_name();
    // auditd owns audit here: keep only what procfs lookups need, in every
    // thread (none has started yet).
    drop_capabilities(&caps::KEEP_PLUGIN);
    let outputs = start_outputs(&config, &host).map_err(DaemonError::Outputs)?;
    let mut pipeline = live_pipeline(&config, rules, host);
    log::info!(
        "plugin mode: reading auditd's event stream on stdin, {} detection rule(s); the audit rules are auditd's to load (see audetect rules)",
        pipeline.rules().count()
    );
    let stdin = std::io::stdin();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let mut line = Vec::with_capacity(1024);
    let fed = feed_lines(
        &mut reader,
        &mut line,
        &mut pipeline,
        &mut |alert: Alert| outputs.send(alert),
    );
    let stopped = shut_down(None, &mut pipeline, Sink::Outputs(outputs));
    let o = stopped.outputs.unwrap_or_default();
    let s = pipeline.stats();
    log::info!("end of auditd's stream: {}", super::counts(&s, &o));
    fed
}
