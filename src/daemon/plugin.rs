//! `audetect plugin`: auditd's plugin. Records arrive on stdin in auditd's
//! string format, from an auditd that owns the audit socket and loads the
//! rules (augenrules).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::caps;
use crate::output::Alert;

use super::bringup::drop_capabilities;
use super::{
    check_outputs, effective_outputs, feed_lines, host_name, live_pipeline, load_config,
    load_rules, shut_down, start_outputs, stopping_alert, AuditPlan, DaemonError, Sink,
};

/// Set by SIGTERM or SIGINT (auditd sends SIGTERM to its plugins as it stops).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGTERM and SIGINT without SA_RESTART: the blocked read of stdin returns
/// EINTR, so the plugin can say it stops before it does. (signal-hook
/// registers with SA_RESTART, which would leave the read blocked.)
fn catch_stop_signals() -> Result<(), DaemonError> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with an empty mask and a handler that
        // only stores to an atomic, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(DaemonError::Signals(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Standard input that ends (reads as end of stream) once a stop signal
/// came. A signal landing between the check and the read leaves the read
/// blocked until auditd's next line, or until it closes the stream, which
/// it does as it sends the signal.
struct UntilStopped<R>(R);

impl<R: Read> Read for UntilStopped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if STOP.load(Ordering::Relaxed) {
                return Ok(0);
            }
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

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
    let mut pipeline = live_pipeline(&config, rules, host.clone());
    catch_stop_signals()?;
    log::info!(
        "plugin mode: reading auditd's event stream on stdin, {} detection rule(s); the audit rules are auditd's to load (see audetect rules)",
        pipeline.rules().count()
    );
    let stdin = std::io::stdin();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, UntilStopped(stdin.lock()));
    let mut line = Vec::with_capacity(1024);
    let fed = feed_lines(
        &mut reader,
        &mut line,
        &mut pipeline,
        &mut |alert: Alert| outputs.send(alert),
    );
    let why = match (&fed, STOP.load(Ordering::Relaxed)) {
        (_, true) => "asked to stop (SIGTERM or SIGINT)",
        (Ok(()), false) => "auditd closed its event stream",
        (Err(_), false) => "its event stream could not be read",
    };
    log::info!("stopping: {why}");
    outputs.send(stopping_alert(why, &host));
    let stopped = shut_down(None, &mut pipeline, Sink::Outputs(outputs));
    let o = stopped.outputs.unwrap_or_default();
    let s = pipeline.stats();
    log::info!("stopped: {}", super::counts(&s, &o));
    fed
}
