//! One bring-up of the kernel edge (the event socket, then the audit
//! session, then the receive thread) and one ordered shutdown, for `run`,
//! `plugin` and `selftest`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::caps;
use crate::config::{Config, ReceiveMode};
use crate::kernel::{AuditRule, AuditStatus, Session, SessionSettings};
use crate::output::{Alert, OutputStats, Outputs};
use crate::pipeline::Pipeline;
use crate::process::ProcSource;
use crate::receive::{self, Batch, OpenSocket, ReceiveCounters, Receiver, Source};

use super::{feed_batch, log_suppressed, DaemonError};

/// SIGTERM and SIGINT ask to stop; SIGHUP to reload.
pub struct Signals {
    stop: Arc<AtomicBool>,
    hangup: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> Result<Signals, DaemonError> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
        }
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
            .map_err(DaemonError::Signals)?;
        Ok(Signals { stop, hangup })
    }

    pub fn stop_asked(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// True once per SIGHUP (or run of them).
    pub fn take_hangup(&self) -> bool {
        self.hangup.swap(false, Ordering::Relaxed)
    }
}

/// The event socket and the audit session, set up, with no thread started
/// yet: capabilities are per thread, so the caller drops them in between.
pub struct OpenKernel {
    socket: OpenSocket,
    session: Session,
}

impl OpenKernel {
    /// The event socket comes first: once our rules are in, every record
    /// has a reader, and none is left for the kernel to print to its log.
    /// `before` is the audit status read beforehand (`daemon_pid` among it);
    /// `state_file` records what is changed so that a crash can be undone;
    /// `rules` are the audit rules to install (`AuditPlan::for_rules`).
    pub fn open(
        config: &Config,
        before: &AuditStatus,
        state_file: Option<PathBuf>,
        rules: Vec<AuditRule>,
    ) -> Result<OpenKernel, DaemonError> {
        if before.pid != 0 || config.kernel.mode == ReceiveMode::Multicast {
            caps::require(&[caps::AUDIT_READ])?;
        }
        let socket =
            Receiver::open(&config.receive_settings(), before.pid).map_err(DaemonError::Receive)?;
        let unicast = socket.source == Source::Unicast;
        if socket.buffer_bytes < config.kernel.receive_buffer {
            log::warn!(
                "audit socket receive buffer is {} bytes, less than the {} configured (SO_RCVBUFFORCE needs CAP_NET_ADMIN)",
                socket.buffer_bytes,
                config.kernel.receive_buffer
            );
        }
        let settings = SessionSettings {
            enable: config.kernel.enable,
            // Beside another audit daemon the backlog is its to size: records
            // reach a multicast listener however the backlog is set.
            backlog_limit: unicast.then_some(config.kernel.backlog_limit),
            backlog_wait_time: config.kernel.backlog_wait_time.filter(|_| unicast),
            state_file,
        };
        let session = match Session::start_with_rules(&settings, rules) {
            Ok(s) => s,
            Err(e) => {
                socket.abandon();
                return Err(DaemonError::Session(e));
            }
        };
        match socket.source {
            Source::Unicast => log::info!(
                "registered as the audit daemon; receive buffer {} bytes",
                socket.buffer_bytes
            ),
            Source::Multicast if before.pid == 0 => log::warn!(
                "listening on the audit multicast group with no audit daemon registered: \
                 the kernel also prints every record to its log"
            ),
            Source::Multicast => log::info!(
                "audit daemon pid {} is registered: listening on the multicast group beside it",
                before.pid
            ),
        }
        if session.initial_status().enabled == 0 && !config.kernel.enable {
            log::warn!("audit is disabled and [kernel] enable = false: no records will arrive until something enables it");
        }
        Ok(OpenKernel { socket, session })
    }

    /// Starts the receive thread.
    pub fn start(self) -> Result<Kernel, DaemonError> {
        let (tx, batches) = mpsc::sync_channel(receive::QUEUED_BATCHES);
        let (recycle, recycle_rx) = mpsc::sync_channel(receive::QUEUED_BATCHES);
        let OpenKernel { socket, session } = self;
        match socket.spawn(tx, recycle_rx) {
            Ok(receiver) => Ok(Kernel {
                session,
                receiver,
                batches,
                recycle,
            }),
            Err(e) => {
                drop(session);
                Err(DaemonError::ReceiveThread(e))
            }
        }
    }

    /// Undoes the bring-up when something after it failed.
    pub fn abandon(self) {
        drop(self.session);
        self.socket.abandon();
    }
}

/// The kernel edge, running: the audit session and the receive thread.
pub struct Kernel {
    pub session: Session,
    pub receiver: Receiver,
    batches: mpsc::Receiver<Batch>,
    recycle: mpsc::SyncSender<Batch>,
}

impl Kernel {
    /// Feeds the next batch, waiting up to `wait` for it. False once the
    /// receive thread has gone.
    pub fn feed(
        &self,
        wait: Duration,
        pipeline: &mut Pipeline<impl ProcSource>,
        emit: &mut dyn FnMut(Alert),
    ) -> bool {
        match self.batches.recv_timeout(wait) {
            Ok(batch) => {
                feed_batch(pipeline, batch, &self.recycle, emit);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Rules go first, then the status, while we are still the registered
    /// daemon and still reading, so no record goes to the kernel log; then
    /// the receive thread ends and what it had passed on is fed.
    fn stop(
        self,
        pipeline: &mut Pipeline<impl ProcSource>,
        emit: &mut dyn FnMut(Alert),
    ) -> (Result<(), DaemonError>, Arc<ReceiveCounters>) {
        let restored = self.session.stop().map_err(DaemonError::Restore);
        let counters = Arc::clone(&self.receiver.counters);
        self.receiver.stop();
        while let Ok(batch) = self.batches.try_recv() {
            feed_batch(pipeline, batch, &self.recycle, emit);
        }
        (restored, counters)
    }
}

/// Where the alerts of the shutdown go.
pub enum Sink<'a> {
    Outputs(Outputs),
    Emit(&'a mut dyn FnMut(Alert)),
}

/// What the shutdown did.
pub struct Stopped {
    /// Whether the kernel audit state was put back (no kernel: Ok).
    pub restored: Result<(), DaemonError>,
    pub received: Option<Arc<ReceiveCounters>>,
    pub outputs: Option<OutputStats>,
}

/// The one ordered shutdown: the kernel edge (rules, status, receive
/// thread), then what the pipeline still holds, then the outputs, which
/// get 2 s to send what they have.
pub fn shut_down(
    kernel: Option<Kernel>,
    pipeline: &mut Pipeline<impl ProcSource>,
    sink: Sink,
) -> Stopped {
    let (outputs, mut other) = match sink {
        Sink::Outputs(o) => (Some(o), None),
        Sink::Emit(e) => (None, Some(e)),
    };
    let mut emit = |alert: Alert| match (&outputs, &mut other) {
        (Some(o), _) => o.send(alert),
        (None, Some(e)) => e(alert),
        (None, None) => {}
    };
    let (restored, received) = match kernel {
        Some(k) => {
            let (restored, counters) = k.stop(pipeline, &mut emit);
            (restored, Some(counters))
        }
        None => (Ok(()), None),
    };
    pipeline.flush(&SystemTime::now, &mut emit);
    log_suppressed(pipeline);
    let outputs = outputs.map(|o| o.shutdown(Duration::from_secs(2)));
    Stopped {
        restored,
        received,
        outputs,
    }
}

/// Runs at nice -boost, as auditd's priority_boost does: under a load that
/// competes for the CPU, the reader keeps pace with what the kernel queues
/// instead of letting records wait (or be dropped) behind it. Under the
/// packaged unit, systemd has done it (Nice=) and the seccomp filter would
/// refuse setpriority.
pub fn raise_priority(boost: u32) {
    let target = -i64::from(boost);
    let now = procfs::process::Process::myself()
        .and_then(|p| p.stat())
        .map(|s| s.nice);
    match now {
        Ok(nice) if nice <= target => {}
        _ => {
            // SAFETY: sets this thread's nice value; the threads started
            // later inherit it.
            let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target as i32) };
            if rc == 0 {
                log::info!("running at nice {target} ([kernel] priority_boost = {boost})");
            } else {
                log::warn!(
                    "cannot raise the priority to nice {target} ({}); under load, records may wait longer",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// Keeps only `keep`, in every thread: call before starting any thread.
pub fn drop_capabilities(keep: &[caps::Cap]) {
    match caps::drop_all_but(keep) {
        Ok(mask) => log::info!("capabilities now {}", caps::names(mask)),
        Err(e) => log::warn!("cannot drop capabilities: {e}"),
    }
}

/// Tells systemd (Type=notify) that the daemon is up.
pub fn notify_ready() {
    if let Err(e) = sd_notify(b"READY=1") {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// Sends one sd_notify(3) message to $NOTIFY_SOCKET (a unix datagram
/// socket, `@` for the abstract namespace); nothing without it.
fn sd_notify(message: &[u8]) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
        sock.send_to_addr(message, &addr)?;
    } else {
        sock.send_to(message, &path)?;
    }
    Ok(())
}

/// systemd's watchdog (WatchdogSec=): WATCHDOG=1 from the pipeline
/// thread's own loop, which comes round at least every 250 ms when idle,
/// so that a pipeline stuck on anything (a lookup that never returns, a
/// loop) stops the pings and systemd restarts the daemon.
pub struct Watchdog {
    /// Half the watchdog timeout, as sd_watchdog_enabled(3) advises.
    every: Option<Duration>,
    last: Option<std::time::Instant>,
}

impl Watchdog {
    /// From $WATCHDOG_USEC (and $WATCHDOG_PID, when set, naming this
    /// process); off without them.
    pub fn from_env() -> Watchdog {
        let ours = std::env::var("WATCHDOG_PID")
            .map_or(true, |p| p.trim().parse() == Ok(std::process::id()));
        let every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && ours)
            .map(|us| Duration::from_micros(us / 2));
        if let Some(every) = every {
            log::info!("systemd watchdog: notifying every {every:?} from the pipeline thread");
        }
        Watchdog { every, last: None }
    }

    /// Called on every turn of the pipeline loop; pings when due.
    pub fn tick(&mut self) {
        let Some(every) = self.every else {
            return;
        };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        if let Err(e) = sd_notify(b"WATCHDOG=1") {
            log::warn!("cannot notify the systemd watchdog: {e}");
        }
    }
}

/// What a run did, for its last log line: records, events and alerts, and
/// where the alerts went.
pub fn counts(s: &crate::pipeline::PipelineStats, o: &OutputStats) -> String {
    format!(
        "{} records ({} malformed), {} events, {} alerts ({} to syslog, {} as JSON lines, {} dropped)",
        s.records,
        s.malformed_records,
        s.reassembly.events,
        s.alerts,
        o.sent_syslog,
        o.sent_jsonl,
        o.dropped_queue_full
    )
}
