//! The syslog sender: owns the socket to the target, reconnects with backoff
//! and keeps alerts in a bounded queue while the target is away.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::frame;
use super::Counters;
use crate::alert::Alert;

/// `[output.syslog]`: where and how alerts go to syslog.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogSettings {
    pub enabled: bool,
    pub target: SyslogTarget,
    pub format: SyslogFormat,
    pub facility: u8,
    pub queue_size: usize,
    /// The queue's bound in bytes of formatted messages, beside its count.
    pub queue_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Unix(PathBuf),
    Udp(String),
    Tcp(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    Rfc5424,
    Rfc3164,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bounds how long a black-holed TCP target can hold up the output thread
/// (and so how stale the jsonl output can get) per attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A receiver that stops reading must not wedge the thread forever; after
/// this the connection is treated as lost and rebuilt.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// UDP refusals (ICMP port unreachable) cannot tell us when the target is
/// back, so instead of down/up lines they get at most one warning per period.
const UDP_REFUSED_LOG_PERIOD: Duration = Duration::from_secs(60);

enum Conn {
    UnixDgram(UnixDatagram),
    /// A unix socket that turned out to be SOCK_STREAM (e.g. syslog-ng's
    /// `unix-stream()`): newline-terminated messages, as such readers expect.
    UnixStream(UnixStream),
    Udp(UdpSocket),
    /// RFC 6587 octet counting.
    Tcp(TcpStream),
}

/// Why a send failed, as far as what to do next is concerned.
enum SendError {
    /// The message can never be sent (EMSGSIZE): drop it, keep the connection.
    TooLarge(io::Error),
    /// UDP reported an earlier datagram as refused; this one was not sent.
    Refused(io::Error),
    /// The connection is gone: rebuild it and send this message again.
    Lost(io::Error),
}

pub(super) struct SyslogSender {
    target: SyslogTarget,
    format: SyslogFormat,
    facility: u8,
    hostname: String,
    pid: u32,
    capacity: usize,
    capacity_bytes: usize,
    /// Formatted messages, without transport framing, oldest first.
    queue: VecDeque<Vec<u8>>,
    /// Their bytes in all.
    queued_bytes: usize,
    conn: Option<Conn>,
    next_attempt: Instant,
    backoff: Duration,
    /// Set once "down" has been logged, so that retries stay quiet.
    down_logged: bool,
    ever_connected: bool,
    udp_refused_logged: Option<Instant>,
}

impl SyslogSender {
    pub(super) fn new(config: &SyslogSettings, hostname: &str) -> SyslogSender {
        SyslogSender {
            target: config.target.clone(),
            format: config.format,
            facility: config.facility,
            hostname: hostname.to_owned(),
            pid: std::process::id(),
            capacity: config.queue_size.max(1),
            capacity_bytes: config.queue_bytes.max(1),
            queue: VecDeque::new(),
            queued_bytes: 0,
            conn: None,
            next_attempt: Instant::now(),
            backoff: BACKOFF_FIRST,
            down_logged: false,
            ever_connected: false,
            udp_refused_logged: None,
        }
    }

    /// The message for an alert, exactly as it goes on the wire before any
    /// transport framing.
    pub(super) fn format(&self, alert: &Alert) -> Vec<u8> {
        let pri = frame::pri(self.facility, alert.severity);
        match self.format {
            SyslogFormat::Rfc5424 => {
                frame::rfc5424(pri, alert.time, &self.hostname, self.pid, &alert.json)
            }
            SyslogFormat::Rfc3164 => {
                let host = match self.target {
                    SyslogTarget::Unix(_) => None,
                    _ => Some(self.hostname.as_str()),
                };
                let stamp = frame::rfc3164_stamp(alert.time);
                frame::rfc3164(pri, &stamp, host, self.pid, &alert.json)
            }
        }
        .into_bytes()
    }

    /// Queues an alert. When the queue is full the NEW alert is dropped: the
    /// first alerts of an incident are kept, and delivery stays in order
    /// with no hole in the middle of what was kept.
    /// The bound in bytes holds too: 10,000 alerts of 64 KiB would be
    /// 640 MiB of a root daemon's memory while a TCP target is away.
    pub(super) fn enqueue(&mut self, alert: &Alert, counters: &Counters) {
        if self.queue.len() >= self.capacity {
            counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let msg = self.format(alert);
        if self.queued_bytes + msg.len() > self.capacity_bytes && !self.queue.is_empty() {
            counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queued_bytes += msg.len();
        self.queue.push_back(msg);
    }

    fn pop_sent(&mut self) {
        if let Some(m) = self.queue.pop_front() {
            self.queued_bytes -= m.len();
        }
    }

    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// When the thread must wake up to retry, if anything is waiting.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        (self.conn.is_none() && !self.queue.is_empty()).then_some(self.next_attempt)
    }

    /// Connects if due, then sends what is queued until done or the
    /// connection fails. At most one connection attempt per call.
    pub(super) fn pump(&mut self, counters: &Counters) {
        if self.conn.is_none() {
            if Instant::now() < self.next_attempt {
                return;
            }
            match connect(&self.target) {
                Ok(conn) => {
                    if self.down_logged {
                        log::info!(
                            "syslog target {} is reachable again; delivering {} queued alert(s)",
                            self.describe(),
                            self.queue.len()
                        );
                        self.down_logged = false;
                    }
                    if self.ever_connected {
                        counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    self.ever_connected = true;
                    self.conn = Some(conn);
                }
                Err(e) => {
                    counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
                    self.went_down(&e);
                    return;
                }
            }
        }
        // Taken out while sending so that logging may borrow self; put back
        // only while it works.
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.queue.is_empty() {
            if let Err(e) = check_alive(&conn) {
                counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
                self.went_down(&e);
                return;
            }
        }
        let mut refused_retry = false;
        while let Some(msg) = self.queue.front() {
            match send(&mut conn, msg) {
                Ok(()) => {
                    self.pop_sent();
                    counters.sent_syslog.fetch_add(1, Ordering::Relaxed);
                    self.backoff = BACKOFF_FIRST;
                    refused_retry = false;
                }
                Err(SendError::TooLarge(e)) => {
                    let len = msg.len();
                    self.pop_sent();
                    counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "syslog: dropped an alert of {len} bytes that {} cannot take: {e}",
                        self.describe()
                    );
                }
                // The refusal was about an earlier datagram and is consumed by
                // being reported, so this one is retried once on the spot.
                Err(SendError::Refused(e)) if !refused_retry => {
                    refused_retry = true;
                    counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    if self
                        .udp_refused_logged
                        .is_none_or(|t| now.duration_since(t) >= UDP_REFUSED_LOG_PERIOD)
                    {
                        log::warn!(
                            "syslog target {} refuses datagrams ({e}); alerts sent over UDP are being lost",
                            self.describe()
                        );
                        self.udp_refused_logged = Some(now);
                    }
                }
                Err(SendError::Refused(e) | SendError::Lost(e)) => {
                    counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
                    self.went_down(&e);
                    return;
                }
            }
        }
        self.conn = Some(conn);
    }

    /// Keeps trying to deliver the queue until it is empty or the deadline
    /// passes; returns how many alerts were left undelivered.
    pub(super) fn drain_until(&mut self, deadline: Instant, counters: &Counters) -> usize {
        loop {
            self.pump(counters);
            let now = Instant::now();
            if self.queue.is_empty() || now >= deadline {
                break;
            }
            let wake = self.next_wakeup().unwrap_or(now).min(deadline);
            std::thread::sleep(wake.saturating_duration_since(now));
        }
        if !self.queue.is_empty() {
            log::warn!(
                "syslog: {} alert(s) not delivered to {} at shutdown",
                self.queue.len(),
                self.describe()
            );
        }
        self.queue.len()
    }

    fn went_down(&mut self, e: &io::Error) {
        if !self.down_logged {
            let what = if self.ever_connected {
                "lost"
            } else {
                "unreachable"
            };
            log::warn!(
                "syslog target {} {what}: {e}; queueing alerts (at most {}) and retrying",
                self.describe(),
                self.capacity
            );
            self.down_logged = true;
        }
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn describe(&self) -> String {
        match &self.target {
            SyslogTarget::Unix(p) => format!("unix:{}", p.display()),
            SyslogTarget::Udp(a) => format!("udp:{a}"),
            SyslogTarget::Tcp(a) => format!("tcp:{a}"),
        }
    }
}

fn connect(target: &SyslogTarget) -> io::Result<Conn> {
    match target {
        SyslogTarget::Unix(path) => {
            let sock = UnixDatagram::unbound()?;
            match sock.connect(path) {
                Ok(()) => {
                    sock.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    Ok(Conn::UnixDgram(sock))
                }
                Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                    let stream = UnixStream::connect(path)?;
                    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    Ok(Conn::UnixStream(stream))
                }
                Err(e) => Err(e),
            }
        }
        SyslogTarget::Udp(addr) => {
            let mut last = None;
            for a in resolve(addr)? {
                let local: SocketAddr = if a.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                match UdpSocket::bind(local).and_then(|s| s.connect(a).map(|()| s)) {
                    Ok(s) => return Ok(Conn::Udp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| no_address(addr)))
        }
        SyslogTarget::Tcp(addr) => {
            let mut last = None;
            for a in resolve(addr)? {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(s) => {
                        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                        return Ok(Conn::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| no_address(addr)))
        }
    }
}

/// Resolved at every attempt, so that a name whose address changed (or
/// that did not resolve at boot) is picked up on reconnect.
fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(addr.to_socket_addrs()?.collect())
}

fn no_address(addr: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{addr} resolves to no address"),
    )
}

/// A stream whose peer has closed still accepts one write into the void
/// before reporting EPIPE; syslog receivers never send us anything, so a
/// readable socket means EOF or a reset, and we reconnect before losing an
/// alert to it.
fn check_alive(conn: &Conn) -> io::Result<()> {
    let fd = match conn {
        Conn::Tcp(s) => s.as_raw_fd(),
        Conn::UnixStream(s) => s.as_raw_fd(),
        Conn::UnixDgram(_) | Conn::Udp(_) => return Ok(()),
    };
    let mut byte = 0u8;
    // SAFETY: fd is a connected socket we own for the duration of the call;
    // the buffer is one valid byte.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection closed by the receiver",
        )),
        n if n > 0 => Ok(()),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

fn send(conn: &mut Conn, msg: &[u8]) -> Result<(), SendError> {
    let datagram = |r: io::Result<usize>| match r {
        Ok(n) if n == msg.len() => Ok(()),
        Ok(n) => Err(SendError::Lost(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("datagram truncated to {n} of {} bytes", msg.len()),
        ))),
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(SendError::TooLarge(e)),
        Err(e) => Err(SendError::Lost(e)),
    };
    match conn {
        Conn::UnixDgram(s) => datagram(s.send(msg)),
        Conn::Udp(s) => match datagram(s.send(msg)) {
            Err(SendError::Lost(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                Err(SendError::Refused(e))
            }
            other => other,
        },
        Conn::UnixStream(s) => {
            let mut framed = Vec::with_capacity(msg.len() + 1);
            framed.extend_from_slice(msg);
            framed.push(b'\n');
            s.write_all(&framed).map_err(SendError::Lost)
        }
        Conn::Tcp(s) => s
            .write_all(&frame::octet_counted(msg))
            .map_err(SendError::Lost),
    }
}
