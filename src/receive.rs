//! The receive edge: a thread that only drains the netlink audit socket into
//! a channel, as the registered audit daemon or as a multicast listener.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::kernel::{AuditSocket, KernelError, RecvOutcome};

/// Netlink and audit control messages (acks, AUDIT_GET replies) are below
/// this type; audit records start here (AUDIT_FIRST_USER_MSG).
const FIRST_RECORD_TYPE: u16 = 1100;
/// The kernel's "are you alive?" probe to the registered daemon, sent when
/// anyone asks to register or unregister: a binary pid, not a record.
const AUDIT_REPLACE: u16 = 1329;
const CONFIG_CHANGE: u16 = 1305;

/// Whether a CONFIG_CHANGE record says an audit daemon registered:
/// `op=set audit_pid=N old=M ... res=1` with N not 0.
fn sets_a_daemon(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let field = |k: &str| {
        text.split_ascii_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .map(str::to_owned)
    };
    field("audit_pid=").is_some_and(|p| p != "0") && field("res=").as_deref() == Some("1")
}

/// Records as the kernel sent them, many to a channel message: the receive
/// thread reads each datagram straight into `data`, so a record is copied
/// once on its way to the pipeline, and the channel is crossed once per batch.
pub struct Batch {
    data: Vec<u8>,
    used: usize,
    /// Each record's type and where its text lies in `data`.
    records: Vec<(u16, u32, u32)>,
}

/// Room for one datagram: audit records are at most 8970 bytes
/// (MAX_AUDIT_MESSAGE_LENGTH) plus the netlink header.
const DATAGRAM_ROOM: usize = 16 * 1024;
const BATCH_BYTES: usize = 128 * 1024;
/// A batch is passed on at this many records even if it has room: the
/// pipeline starts on them sooner under a flood.
const BATCH_RECORDS: usize = 256;

impl Batch {
    pub fn new() -> Self {
        Batch {
            data: vec![0; BATCH_BYTES],
            used: 0,
            records: Vec::with_capacity(BATCH_RECORDS),
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records: type and text.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> {
        self.records
            .iter()
            .map(|&(t, a, b)| (t, &self.data[a as usize..b as usize]))
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.used = 0;
        self.records.clear();
    }

    fn full(&self) -> bool {
        self.records.len() >= BATCH_RECORDS || self.data.len() - self.used < DATAGRAM_ROOM
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

/// A batch this full when the socket ran empty means a dense stream...
const HEAVY_BATCH: usize = 32;
/// ...and the receive thread then pauses this long before reading on. It
/// adds at most this to an alert's delay, and only under such a stream.
const GATHER: Duration = Duration::from_micros(500);

/// Batches that may wait between the receive thread and the pipeline: the
/// queue is kept short so that it adds little delay, and bounded so that a
/// stalled pipeline pushes back into the socket and the kernel's backlog.
pub const QUEUED_BATCHES: usize = 16;

/// How this process receives records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Registered as the audit daemon: the kernel sends records to us alone.
    Unicast,
    /// On the AUDIT_NLGRP_READLOG group beside another audit daemon.
    Multicast,
}

/// `[kernel]` mode: how records reach us, as the registered audit daemon or
/// as a multicast listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveMode {
    /// Register as the audit daemon when none is, else listen on multicast.
    Auto,
    Unicast,
    Multicast,
}

/// What the receive edge needs from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveSettings {
    pub mode: ReceiveMode,
    /// Asked for the socket's receive buffer, in bytes.
    pub receive_buffer: usize,
}

/// What the receive thread tells the daemon about the socket it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveEvent {
    /// A process asked to become the audit daemon while we were: the
    /// socket was handed over (unregistered, now on multicast) to let it in
    /// next time.
    HandedOver { pid: u32 },
    /// Registered as the audit daemon again after a hand-over.
    Reclaimed,
    /// After a hand-over, the kernel said another daemon registered
    /// (CONFIG_CHANGE `op=set audit_pid=N`, N not 0): once none is
    /// registered again, that one has stopped.
    OtherDaemonRegistered,
}

/// What the daemon asks of the receive thread, which owns the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveCommand {
    /// The daemon we handed over to is gone: register again.
    Reclaim,
}

/// Plain counters, read by the daemon for its stats.
#[derive(Debug, Default)]
pub struct ReceiveCounters {
    pub datagrams: AtomicU64,
    /// The socket overflowed (ENOBUFS): records were lost in between.
    pub overruns: AtomicU64,
    /// Messages whose sender was not the kernel, or too short to be one, dropped.
    pub foreign: AtomicU64,
    /// Records longer than the receive buffer, cut short.
    pub truncated: AtomicU64,
    /// CONFIG_CHANGE records: audit rules or status changed (by audetect
    /// too). The daemon checks the kernel state at once when this grows.
    pub config_changes: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("cannot open the audit socket: {0}")]
    Open(KernelError),
    #[error("another audit daemon (pid {pid}) is registered and mode is \"unicast\"")]
    DaemonPresent { pid: u32 },
    #[error("cannot register as the audit daemon: {0}")]
    Register(KernelError),
    #[error("cannot join the audit multicast group (needs CAP_AUDIT_READ, kernel 3.16+): {0}")]
    Multicast(KernelError),
}

pub struct Receiver {
    /// How records arrived when the thread started; hand-overs are told
    /// through [`Receiver::next_event`].
    pub source: Source,
    pub counters: Arc<ReceiveCounters>,
    pub buffer_bytes: usize,
    events: mpsc::Receiver<ReceiveEvent>,
    commands: mpsc::Sender<ReceiveCommand>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(AuditSocket, Source)>,
}

/// The event socket, opened and registered (or on multicast), before its
/// thread starts: the daemon drops capabilities in between, since they are
/// per thread and a thread started earlier would keep them all.
pub struct OpenSocket {
    sock: AuditSocket,
    pub source: Source,
    pub buffer_bytes: usize,
}

impl OpenSocket {
    /// Gives up the registration of a socket whose thread never started.
    pub fn abandon(mut self) {
        if self.source == Source::Unicast {
            if let Err(e) = self.sock.unregister_daemon() {
                log::warn!("cannot unregister as the audit daemon: {e}");
            }
        }
    }

    /// Starts the thread that drains the socket into `tx`. Batches the
    /// pipeline is done with come back on `recycle`, so that a steady stream
    /// allocates nothing.
    pub fn spawn(
        self,
        tx: SyncSender<Batch>,
        recycle: mpsc::Receiver<Batch>,
    ) -> Result<Receiver, ReceiveError> {
        let OpenSocket {
            sock,
            source,
            buffer_bytes,
        } = self;
        let counters = Arc::new(ReceiveCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (event_tx, events) = mpsc::channel();
        let (commands, command_rx) = mpsc::channel();
        let thread = Drain {
            sock,
            unicast: source == Source::Unicast,
            tx,
            recycle,
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            events: event_tx,
            commands: command_rx,
        };
        let handle = std::thread::Builder::new()
            .name("receive".into())
            .spawn(move || thread.run())
            .map_err(|error| {
                ReceiveError::Open(KernelError::Io {
                    op: "spawn the receive thread",
                    error,
                })
            })?;
        Ok(Receiver {
            source,
            counters,
            buffer_bytes,
            events,
            commands,
            stop,
            handle,
        })
    }
}

impl Receiver {
    /// Opens the event socket and takes the unicast or multicast path.
    /// `daemon_pid` is the registered audit daemon's pid as the kernel
    /// reported it (0: none).
    pub fn open(cfg: &ReceiveSettings, daemon_pid: u32) -> Result<OpenSocket, ReceiveError> {
        // A registered daemon that died is still the kernel's until the
        // kernel next fails to reach it; registering probes and replaces it.
        let daemon_pid = if daemon_pid != 0
            && !std::path::Path::new(&format!("/proc/{daemon_pid}")).exists()
        {
            log::info!("the registered audit daemon (pid {daemon_pid}) is gone: taking its place");
            0
        } else {
            daemon_pid
        };
        let mut sock = AuditSocket::open().map_err(ReceiveError::Open)?;
        let buffer_bytes = match sock.set_receive_buffer(cfg.receive_buffer) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("cannot size the audit socket's receive buffer: {e}");
                0
            }
        };
        if let Err(e) = sock.set_read_timeout(Duration::from_millis(200)) {
            log::warn!("cannot set a read timeout on the audit socket: {e}");
        }
        let source = match (cfg.mode, daemon_pid) {
            (ReceiveMode::Unicast, pid) if pid != 0 => {
                return Err(ReceiveError::DaemonPresent { pid })
            }
            (ReceiveMode::Multicast, _) | (ReceiveMode::Auto, 1..) => {
                sock.join_multicast().map_err(ReceiveError::Multicast)?;
                Source::Multicast
            }
            _ => match sock.register_daemon() {
                Ok(()) => Source::Unicast,
                Err(e) if e.errno() == Some(libc::EEXIST) && cfg.mode == ReceiveMode::Auto => {
                    // Someone registered between our status read and now.
                    sock.join_multicast().map_err(ReceiveError::Multicast)?;
                    Source::Multicast
                }
                Err(e) => return Err(ReceiveError::Register(e)),
            },
        };
        Ok(OpenSocket {
            sock,
            source,
            buffer_bytes,
        })
    }

    /// The next thing the receive thread reported, if any.
    pub fn next_event(&self) -> Option<ReceiveEvent> {
        self.events.try_recv().ok()
    }

    /// Asks the receive thread, which owns the socket, to act on it.
    pub fn send(&self, command: ReceiveCommand) {
        // Gone only if the thread has ended, and then there is nothing to do.
        let _ = self.commands.send(command);
    }

    /// Ends the receive thread, then unregisters when it was the audit
    /// daemon at the end (after a hand-over it may not be).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok((mut sock, Source::Unicast)) => {
                if let Err(e) = sock.unregister_daemon() {
                    log::warn!("cannot unregister as the audit daemon: {e}");
                }
            }
            Ok((_, Source::Multicast)) => {}
            Err(_) => log::warn!("the receive thread panicked"),
        }
    }
}

/// The receive thread's state: it alone owns the socket.
struct Drain {
    sock: AuditSocket,
    /// Still the registered audit daemon (false once handed over).
    unicast: bool,
    tx: SyncSender<Batch>,
    recycle: mpsc::Receiver<Batch>,
    stop: Arc<AtomicBool>,
    counters: Arc<ReceiveCounters>,
    events: mpsc::Sender<ReceiveEvent>,
    commands: mpsc::Receiver<ReceiveCommand>,
}

impl Drain {
    /// The kernel probes the registered daemon with AUDIT_REPLACE whenever a
    /// process asks to register (it is then refused with EEXIST while we
    /// answer). auditd starting is the usual asker: give way, so that its next
    /// start succeeds, and keep every record by listening on multicast.
    fn hand_over(&mut self, body: &[u8]) {
        // The body is the asker's pid as a native u32, whose trailing zero
        // bytes the receive path trimmed like a record's NUL padding.
        if body.is_empty() || body.len() > 4 {
            return;
        }
        let mut raw = [0u8; 4];
        raw[..body.len()].copy_from_slice(body);
        let pid = u32::from_ne_bytes(raw);
        // Our own unregistration at stop probes us too.
        if pid == std::process::id() || !self.unicast {
            return;
        }
        if let Err(e) = self.sock.join_multicast() {
            log::error!(
                "process {pid} asked to become the audit daemon; audetect stays registered because it cannot listen on multicast: {e}"
            );
            return;
        }
        if let Err(e) = self.sock.unregister_daemon() {
            log::error!("process {pid} asked to become the audit daemon; cannot hand over: {e}");
            return;
        }
        self.unicast = false;
        let _ = self.events.send(ReceiveEvent::HandedOver { pid });
    }

    /// Registers again as the audit daemon after the one we handed over to went
    /// away, and leaves the multicast group, so that records neither go to the
    /// kernel log nor arrive twice.
    fn reclaim(&mut self) {
        if self.unicast {
            return;
        }
        match self.sock.register_daemon() {
            Ok(()) => {}
            // Another daemon got there first: stay beside it.
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                log::info!(
                    "another audit daemon registered first: audetect stays on the multicast group"
                );
                return;
            }
            Err(e) => {
                log::warn!("cannot register again as the audit daemon: {e}");
                return;
            }
        }
        if let Err(e) = self.sock.leave_multicast() {
            // Registered and on the group, every record would come twice.
            log::warn!("cannot leave the multicast group ({e}); staying a multicast listener");
            if let Err(e) = self.sock.unregister_daemon() {
                log::warn!("cannot unregister as the audit daemon: {e}");
            }
            return;
        }
        self.unicast = true;
        let _ = self.events.send(ReceiveEvent::Reclaimed);
    }

    /// Drains the socket until stopped; returns it, and how it was
    /// receiving at the end.
    fn run(mut self) -> (AuditSocket, Source) {
        self.drain();
        let source = if self.unicast {
            Source::Unicast
        } else {
            Source::Multicast
        };
        (self.sock, source)
    }

    fn drain(&mut self) {
        let mut batch = Batch::new();
        while !self.stop.load(Ordering::Relaxed) {
            while let Ok(command) = self.commands.try_recv() {
                match command {
                    ReceiveCommand::Reclaim => self.reclaim(),
                }
            }
            // Wait for the first record of a batch; then take what else is ready
            // without waiting, and pass the batch on when the socket is empty.
            let first = batch.is_empty();
            let window = &mut batch.data[batch.used..];
            let got = if first {
                self.sock.recv_raw(window)
            } else {
                self.sock.recv_raw_now(window)
            };
            let counters = &self.counters;
            match got {
                Ok(RecvOutcome::Record {
                    msg_type,
                    body,
                    truncated,
                }) => {
                    if msg_type == AUDIT_REPLACE {
                        self.hand_over(&window[body]);
                        continue;
                    }
                    if msg_type < FIRST_RECORD_TYPE {
                        continue;
                    }
                    if msg_type == CONFIG_CHANGE {
                        counters.config_changes.fetch_add(1, Ordering::Relaxed);
                        if !self.unicast && sets_a_daemon(&window[body.clone()]) {
                            let _ = self.events.send(ReceiveEvent::OtherDaemonRegistered);
                        }
                    }
                    if truncated {
                        counters.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    counters.datagrams.fetch_add(1, Ordering::Relaxed);
                    let (start, end) = (batch.used + body.start, batch.used + body.end);
                    batch.records.push((msg_type, start as u32, end as u32));
                    batch.used = end;
                    if batch.full() && !pass_on(&mut batch, &self.tx, &self.recycle, &self.stop) {
                        return;
                    }
                }
                Ok(RecvOutcome::Foreign { .. } | RecvOutcome::Malformed { .. }) => {
                    counters.foreign.fetch_add(1, Ordering::Relaxed);
                }
                Ok(RecvOutcome::Overrun) => {
                    counters.overruns.fetch_add(1, Ordering::Relaxed);
                }
                Ok(RecvOutcome::Timeout | RecvOutcome::Interrupted) => {
                    let heavy = batch.len() >= HEAVY_BATCH;
                    if !batch.is_empty()
                        && !pass_on(&mut batch, &self.tx, &self.recycle, &self.stop)
                    {
                        return;
                    }
                    if heavy {
                        // A stream this dense would wake us for each record
                        // and take the CPU from kauditd, which feeds us: let
                        // records gather a moment and read them in one go.
                        std::thread::sleep(GATHER);
                    }
                }
                Err(e) => {
                    log::error!("reading the audit socket failed: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if !batch.is_empty() {
            let _ = self.tx.try_send(batch);
        }
    }
}

/// Sends the batch to the pipeline and starts a fresh one in its place.
/// Waiting here pushes back into the socket buffer; the pipeline behind it
/// never waits on outputs. The wait ends at stop, so a full queue cannot
/// hang the shutdown. False when the pipeline is gone.
fn pass_on(
    batch: &mut Batch,
    tx: &SyncSender<Batch>,
    recycle: &mpsc::Receiver<Batch>,
    stop: &AtomicBool,
) -> bool {
    let mut fresh = recycle.try_recv().unwrap_or_default();
    fresh.clear();
    let mut pending = std::mem::replace(batch, fresh);
    loop {
        match tx.try_send(pending) {
            Ok(()) => return true,
            Err(TrySendError::Full(b)) => {
                if stop.load(Ordering::Relaxed) {
                    return true;
                }
                pending = b;
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sets_a_daemon;

    #[test]
    fn a_daemon_registering_is_told_from_one_leaving_and_from_a_refusal() {
        // As the kernel writes them (audit_log_config_change).
        assert!(sets_a_daemon(
            b"op=set audit_pid=11607 old=0 auid=4294967295 ses=4294967295 res=1"
        ));
        assert!(!sets_a_daemon(
            b"op=set audit_pid=0 old=11607 auid=4294967295 ses=4294967295 res=1"
        ));
        assert!(!sets_a_daemon(
            b"op=set audit_pid=11607 old=42 auid=4294967295 ses=4294967295 res=0"
        ));
        assert!(!sets_a_daemon(
            b"auid=0 ses=1 op=add_rule key=\"audetect-exec\" list=4 res=1"
        ));
    }
}
