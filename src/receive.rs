//! The receive edge: a thread that only drains the netlink audit socket into
//! a channel, as the registered audit daemon or as a multicast listener.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{KernelConfig, ReceiveMode};
use crate::kernel::{AuditSocket, KernelError, RecvOutcome, RECV_BUFFER_SIZE};

/// Netlink and audit control messages (acks, AUDIT_GET replies) are below
/// this type; audit records start here (AUDIT_FIRST_USER_MSG).
const FIRST_RECORD_TYPE: u16 = 1100;
/// The kernel's "are you alive?" probe to the registered daemon, sent when
/// anyone asks to register or unregister: a binary pid, not a record.
const AUDIT_REPLACE: u16 = 1329;

/// One record as the kernel sent it: its type and its text.
pub struct Datagram {
    pub rtype: u16,
    pub body: Vec<u8>,
}

/// How this process receives records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Registered as the audit daemon: the kernel sends records to us alone.
    Unicast,
    /// On the AUDIT_NLGRP_READLOG group beside another audit daemon.
    Multicast,
}

#[derive(Debug, Default)]
pub struct ReceiveCounters {
    pub datagrams: AtomicU64,
    /// The socket overflowed (ENOBUFS): records were lost in between.
    pub overruns: AtomicU64,
    /// Messages whose sender was not the kernel, or too short to be one, dropped.
    pub foreign: AtomicU64,
    /// Records longer than the receive buffer, cut short.
    pub truncated: AtomicU64,
    /// Still the registered audit daemon (false once handed over).
    pub unicast: AtomicBool,
    /// The last process that asked to become the audit daemon while we
    /// were (0: none); the socket was handed over to let it in next time.
    pub handed_over_to: std::sync::atomic::AtomicU32,
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
    pub source: Source,
    pub counters: Arc<ReceiveCounters>,
    pub buffer_bytes: usize,
    handle: JoinHandle<AuditSocket>,
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

    /// Starts the thread that drains the socket into `tx`.
    pub fn spawn(
        self,
        tx: SyncSender<Datagram>,
        stop: Arc<AtomicBool>,
    ) -> Result<Receiver, ReceiveError> {
        let OpenSocket {
            sock,
            source,
            buffer_bytes,
        } = self;
        let counters = Arc::new(ReceiveCounters::default());
        counters
            .unicast
            .store(source == Source::Unicast, Ordering::Relaxed);
        let thread_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("receive".into())
            .spawn(move || drain(sock, tx, stop, thread_counters))
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
            handle,
        })
    }
}

impl Receiver {
    /// Opens the event socket and starts its thread at once.
    pub fn start(
        cfg: &KernelConfig,
        daemon_pid: u32,
        tx: SyncSender<Datagram>,
        stop: Arc<AtomicBool>,
    ) -> Result<Receiver, ReceiveError> {
        Receiver::open(cfg, daemon_pid)?.spawn(tx, stop)
    }

    /// Opens the event socket and takes the unicast or multicast path.
    /// `daemon_pid` is the registered audit daemon's pid as the kernel
    /// reported it (0: none).
    pub fn open(cfg: &KernelConfig, daemon_pid: u32) -> Result<OpenSocket, ReceiveError> {
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

    /// Waits for the thread to see the stop flag; returns the socket so the
    /// caller decides when to unregister (after the rules are gone).
    pub fn join(self) -> Option<AuditSocket> {
        self.handle.join().ok()
    }
}

/// The kernel probes the registered daemon with AUDIT_REPLACE whenever a
/// process asks to register (it is then refused with EEXIST while we
/// answer). auditd starting is the usual asker: give way, so that its next
/// start succeeds, and keep every record by listening on multicast.
fn hand_over(sock: &mut AuditSocket, body: &[u8], counters: &ReceiveCounters) {
    // The body is the asker's pid as a native u32, whose trailing zero
    // bytes the receive path trimmed like a record's NUL padding.
    if body.is_empty() || body.len() > 4 {
        return;
    }
    let mut raw = [0u8; 4];
    raw[..body.len()].copy_from_slice(body);
    let pid = u32::from_ne_bytes(raw);
    // Our own unregistration at stop probes us too.
    if pid == std::process::id() || !counters.unicast.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = sock.join_multicast() {
        log::error!(
            "process {pid} asked to become the audit daemon; audetect stays registered because it cannot listen on multicast: {e}"
        );
        return;
    }
    if let Err(e) = sock.unregister_daemon() {
        log::error!("process {pid} asked to become the audit daemon; cannot hand over: {e}");
        return;
    }
    counters.unicast.store(false, Ordering::Relaxed);
    counters.handed_over_to.store(pid, Ordering::Relaxed);
}

fn drain(
    mut sock: AuditSocket,
    tx: SyncSender<Datagram>,
    stop: Arc<AtomicBool>,
    counters: Arc<ReceiveCounters>,
) -> AuditSocket {
    let mut buf = vec![0u8; RECV_BUFFER_SIZE];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_raw(&mut buf) {
            Ok(RecvOutcome::Record {
                msg_type,
                body,
                truncated,
            }) => {
                if msg_type == AUDIT_REPLACE {
                    hand_over(&mut sock, &buf[body], &counters);
                    continue;
                }
                if msg_type < FIRST_RECORD_TYPE {
                    continue;
                }
                if truncated {
                    counters.truncated.fetch_add(1, Ordering::Relaxed);
                }
                counters.datagrams.fetch_add(1, Ordering::Relaxed);
                let datagram = Datagram {
                    rtype: msg_type,
                    body: buf[body].to_vec(),
                };
                // Waiting here pushes back into the socket buffer; the
                // pipeline behind it never waits on outputs. The wait
                // ends at stop, so a full queue cannot hang the shutdown.
                let mut pending = datagram;
                loop {
                    match tx.try_send(pending) {
                        Ok(()) => break,
                        Err(std::sync::mpsc::TrySendError::Full(d)) => {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            pending = d;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return sock,
                    }
                }
            }
            Ok(RecvOutcome::Foreign { .. } | RecvOutcome::Malformed { .. }) => {
                counters.foreign.fetch_add(1, Ordering::Relaxed);
            }
            Ok(RecvOutcome::Overrun) => {
                counters.overruns.fetch_add(1, Ordering::Relaxed);
            }
            Ok(RecvOutcome::Timeout | RecvOutcome::Interrupted) => {}
            Err(e) => {
                log::error!("reading the audit socket failed: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    sock
}
