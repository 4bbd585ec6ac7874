//! The NETLINK_AUDIT socket: request/reply exchanges with the kernel (status,
//! rules, daemon registration) and raw datagram reception for the event path.

use std::collections::VecDeque;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_AUDIT, Socket, SocketAddr};

use super::rules::AuditRule;
use super::status::{AuditStatus, StatusChange, AUDIT_STATUS_PID};
use super::KernelError;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_DUMP: u16 = 0x300;

pub const AUDIT_GET: u16 = 1000;
pub const AUDIT_SET: u16 = 1001;
pub const AUDIT_ADD_RULE: u16 = 1011;
pub const AUDIT_DEL_RULE: u16 = 1012;
pub const AUDIT_LIST_RULES: u16 = 1013;
/// Message types from here on are audit records, not control replies.
pub const AUDIT_FIRST_RECORD: u16 = 1100;
/// The multicast group of read-only audit listeners (kernel 3.16+).
pub const AUDIT_NLGRP_READLOG: u32 = 1;

/// A receive buffer size that never truncates a record: the kernel's
/// MAX_AUDIT_MESSAGE_LENGTH is 8970, and a netlink datagram cannot exceed 64 KiB
/// plus header by much; the margin is cheap.
pub const RECV_BUFFER_SIZE: usize = 128 * 1024;

/// How long a control request waits for the kernel's answer by default.
const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Records that arrive while a control request waits for its reply are kept
/// for `recv_raw`, up to this many; beyond it they count as an overrun.
const STASH_LIMIT: usize = 4096;

/// One `recv_raw` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvOutcome {
    /// A datagram from the kernel: its `nlmsg_type` and where its body lies in
    /// the caller's buffer (after the 16-byte header, up to the datagram size,
    /// trailing NULs trimmed). `truncated` if the buffer was too small.
    Record {
        msg_type: u16,
        body: Range<usize>,
        truncated: bool,
    },
    /// A datagram from the kernel too short to hold a netlink header.
    Malformed { len: usize },
    /// A datagram from a user-space sender (not the kernel): never act on it.
    Foreign { port_id: u32 },
    /// The read timeout expired with nothing to read.
    Timeout,
    /// The socket's receive buffer overflowed: records were lost.
    Overrun,
    /// A signal interrupted the wait.
    Interrupted,
}

/// A NETLINK_AUDIT socket bound to a kernel-assigned port id.
pub struct AuditSocket {
    socket: Socket,
    port_id: u32,
    seq: u32,
    reply_timeout: Duration,
    /// Kernel records received while waiting for a control reply.
    stash: VecDeque<Vec<u8>>,
    /// Overruns seen (or records dropped) while waiting for a control reply,
    /// not yet reported by `recv_raw`.
    pending_overruns: u64,
}

/// One control message from the kernel, for the reply handlers.
enum Reply<'a> {
    Ack,
    Done,
    Msg { msg_type: u16, payload: &'a [u8] },
}

/// What a reply handler wants next.
enum Step<T> {
    More,
    Finish(T),
}

impl AuditSocket {
    /// Opens and binds a NETLINK_AUDIT socket.
    pub fn open() -> Result<Self, KernelError> {
        let mut socket = Socket::new(NETLINK_AUDIT).map_err(|e| KernelError::io("socket", e))?;
        let addr = socket.bind_auto().map_err(|e| KernelError::io("bind", e))?;
        Ok(AuditSocket {
            socket,
            port_id: addr.port_number(),
            seq: 0,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            stash: VecDeque::new(),
            pending_overruns: 0,
        })
    }

    /// The port id the kernel assigned to this socket.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// How long control requests wait for the kernel's reply (default 5 s).
    pub fn set_reply_timeout(&mut self, d: Duration) {
        self.reply_timeout = d;
    }

    /// Reads the kernel's audit status (AUDIT_GET).
    pub fn status(&mut self) -> Result<AuditStatus, KernelError> {
        const OP: &str = "AUDIT_GET";
        // The kernel ACKs first and sends the status from a worker thread.
        self.exchange(OP, AUDIT_GET, NLM_F_ACK, &[], |reply| match reply {
            Reply::Msg {
                msg_type: AUDIT_GET,
                payload,
            } => AuditStatus::parse(payload)
                .map(Step::Finish)
                .ok_or_else(|| KernelError::protocol(OP, "status reply too short")),
            _ => Ok(Step::More),
        })
    }

    /// Changes the status fields that are `Some` (AUDIT_SET) and waits for the
    /// kernel's ACK. enabled=2 and failure=2 are refused without sending.
    pub fn set_status(&mut self, change: &StatusChange) -> Result<(), KernelError> {
        let request = change.to_request().map_err(KernelError::Forbidden)?;
        if request.mask == 0 {
            return Ok(());
        }
        self.set_raw("AUDIT_SET", request)
    }

    /// Makes this socket the audit daemon's: the kernel then unicasts every
    /// record to it. Fails with EEXIST while another daemon is registered.
    pub fn register_daemon(&mut self) -> Result<(), KernelError> {
        let request = AuditStatus {
            mask: AUDIT_STATUS_PID,
            pid: std::process::id(),
            ..Default::default()
        };
        self.set_raw("AUDIT_SET pid (register daemon)", request)
    }

    /// Unregisters the audit daemon. The kernel accepts this only from the
    /// registered daemon's process (any socket of it).
    pub fn unregister_daemon(&mut self) -> Result<(), KernelError> {
        let request = AuditStatus {
            mask: AUDIT_STATUS_PID,
            pid: 0,
            ..Default::default()
        };
        self.set_raw("AUDIT_SET pid=0 (unregister daemon)", request)
    }

    fn set_raw(&mut self, op: &'static str, request: AuditStatus) -> Result<(), KernelError> {
        self.exchange(op, AUDIT_SET, NLM_F_ACK, &request.to_bytes(), ack_only)
    }

    /// Lists every rule in the kernel, on all filter lists.
    pub fn list_rules(&mut self) -> Result<Vec<AuditRule>, KernelError> {
        const OP: &str = "AUDIT_LIST_RULES";
        let mut rules = Vec::new();
        self.exchange(OP, AUDIT_LIST_RULES, NLM_F_DUMP, &[], |reply| match reply {
            Reply::Msg {
                msg_type: AUDIT_LIST_RULES,
                payload,
            } => {
                let rule = AuditRule::from_bytes(payload)
                    .map_err(|e| KernelError::protocol(OP, format!("listed rule: {e}")))?;
                rules.push(rule);
                Ok(Step::More)
            }
            Reply::Done => Ok(Step::Finish(())),
            _ => Ok(Step::More),
        })?;
        Ok(rules)
    }

    /// Adds a rule. EEXIST if an identical rule exists, EINVAL for a field or
    /// operator this kernel does not accept, EPERM if audit is locked.
    pub fn add_rule(&mut self, rule: &AuditRule) -> Result<(), KernelError> {
        let data = rule.to_bytes().map_err(|e| KernelError::rule(rule, e))?;
        self.exchange("AUDIT_ADD_RULE", AUDIT_ADD_RULE, NLM_F_ACK, &data, ack_only)
    }

    /// Deletes the rule identical to `rule`; ENOENT if there is none.
    pub fn delete_rule(&mut self, rule: &AuditRule) -> Result<(), KernelError> {
        let data = rule.to_bytes().map_err(|e| KernelError::rule(rule, e))?;
        self.exchange("AUDIT_DEL_RULE", AUDIT_DEL_RULE, NLM_F_ACK, &data, ack_only)
    }

    /// Joins the read-only multicast group (needs CAP_AUDIT_READ).
    pub fn join_multicast(&mut self) -> Result<(), KernelError> {
        self.socket
            .add_membership(AUDIT_NLGRP_READLOG)
            .map_err(|e| KernelError::io("join AUDIT_NLGRP_READLOG", e))
    }

    pub fn leave_multicast(&mut self) -> Result<(), KernelError> {
        self.socket
            .drop_membership(AUDIT_NLGRP_READLOG)
            .map_err(|e| KernelError::io("leave AUDIT_NLGRP_READLOG", e))
    }

    /// Asks for a receive buffer of `bytes` and returns the size obtained (as
    /// getsockopt reports it, which Linux doubles for bookkeeping).
    /// SO_RCVBUFFORCE (root, CAP_NET_ADMIN) may exceed net.core.rmem_max;
    /// without the privilege SO_RCVBUF is capped by it.
    pub fn set_receive_buffer(&mut self, bytes: usize) -> Result<usize, KernelError> {
        let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        if setsockopt_int(self.as_raw_fd(), libc::SO_RCVBUFFORCE, size).is_err() {
            setsockopt_int(self.as_raw_fd(), libc::SO_RCVBUF, size)
                .map_err(|e| KernelError::io("SO_RCVBUF", e))?;
        }
        self.socket
            .get_rx_buf_sz()
            .map_err(|e| KernelError::io("getsockopt SO_RCVBUF", e))
    }

    /// Makes `recv_raw` return `Timeout` after `d` without data, so that a
    /// receive thread can check a stop flag. A zero duration blocks forever.
    pub fn set_read_timeout(&mut self, d: Duration) -> Result<(), KernelError> {
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: tv is a valid timeval that outlives the call; the length matches.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(KernelError::io(
                "SO_RCVTIMEO",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Receives one datagram into `buf` (use [`RECV_BUFFER_SIZE`] bytes).
    /// The body range comes from the datagram size, not `nlmsg_len`: records
    /// unicast to the registered daemon carry an `nlmsg_len` that leaves out
    /// the header. Records stashed by an earlier control request come first.
    pub fn recv_raw(&mut self, buf: &mut [u8]) -> Result<RecvOutcome, KernelError> {
        self.recv_raw_waiting(buf, true)
    }

    /// As [`Self::recv_raw`], but `Timeout` at once when nothing is queued
    /// (for a reader that gathers what is ready before passing it on).
    pub fn recv_raw_now(&mut self, buf: &mut [u8]) -> Result<RecvOutcome, KernelError> {
        self.recv_raw_waiting(buf, false)
    }

    fn recv_raw_waiting(&mut self, buf: &mut [u8], wait: bool) -> Result<RecvOutcome, KernelError> {
        if self.pending_overruns > 0 {
            self.pending_overruns -= 1;
            return Ok(RecvOutcome::Overrun);
        }
        if let Some(datagram) = self.stash.pop_front() {
            let n = datagram.len().min(buf.len());
            buf[..n].copy_from_slice(&datagram[..n]);
            return Ok(record_outcome(buf, datagram.len()));
        }
        match self.recv_datagram(buf, if wait { 0 } else { libc::MSG_DONTWAIT }) {
            Ok((n, 0)) => Ok(record_outcome(buf, n)),
            Ok((_, port_id)) => Ok(RecvOutcome::Foreign { port_id }),
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => Ok(RecvOutcome::Timeout),
                Some(libc::ENOBUFS) => Ok(RecvOutcome::Overrun),
                Some(libc::EINTR) => Ok(RecvOutcome::Interrupted),
                _ => Err(KernelError::io("recvfrom", e)),
            },
        }
    }

    /// One recvfrom: the datagram's full size (MSG_TRUNC reports it even when
    /// `buf` is smaller) and the sender's port id.
    fn recv_datagram(&mut self, buf: &mut [u8], flags: i32) -> std::io::Result<(usize, u32)> {
        let mut window: &mut [u8] = buf;
        let (n, addr) = self
            .socket
            .recv_from(&mut window, libc::MSG_TRUNC | flags)?;
        Ok((n, addr.port_number()))
    }

    fn next_seq(&mut self) -> u32 {
        // Records carry seq 0, so a reply can never be mistaken for one of them.
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(
        &mut self,
        op: &'static str,
        msg_type: u16,
        flags: u16,
        payload: &[u8],
    ) -> Result<u32, KernelError> {
        let seq = self.next_seq();
        let len = u32::try_from(NLMSG_HDRLEN + payload.len())
            .map_err(|_| KernelError::protocol(op, "request too large"))?;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + payload.len());
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&msg_type.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.socket.send_to(&msg, &kernel, 0) {
                Ok(_) => return Ok(seq),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(KernelError::io(op, e)),
            }
        }
    }

    /// Sends a request and feeds the kernel's messages for it to `handle`
    /// until it finishes. Messages for other sequence numbers are skipped,
    /// records are stashed for `recv_raw`, anything not from the kernel is
    /// ignored, and an NLMSG_ERROR with a negative errno ends the exchange.
    fn exchange<T>(
        &mut self,
        op: &'static str,
        msg_type: u16,
        flags: u16,
        payload: &[u8],
        mut handle: impl FnMut(Reply<'_>) -> Result<Step<T>, KernelError>,
    ) -> Result<T, KernelError> {
        let seq = self.send(op, msg_type, flags, payload)?;
        let deadline = Instant::now() + self.reply_timeout;
        let mut buf = vec![0u8; RECV_BUFFER_SIZE];
        loop {
            if !self.wait_readable(op, deadline)? {
                return Err(KernelError::Timeout {
                    op,
                    timeout: self.reply_timeout,
                });
            }
            let (n, port_id) = match self.recv_datagram(&mut buf, 0) {
                Ok(r) => r,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        // Records were lost (this socket also receives them);
                        // our reply may still come.
                        self.pending_overruns += 1;
                        continue;
                    }
                    _ => return Err(KernelError::io(op, e)),
                },
            };
            if port_id != 0 {
                log::debug!("{op}: ignoring a netlink message from port {port_id}");
                continue;
            }
            if n > buf.len() {
                return Err(KernelError::protocol(
                    op,
                    format!("{n}-byte reply truncated"),
                ));
            }
            for msg in Messages::new(&buf[..n]) {
                if msg.msg_type >= AUDIT_FIRST_RECORD {
                    self.stash_record(&buf[..n]);
                    break;
                }
                if msg.seq != seq {
                    continue;
                }
                let reply = match msg.msg_type {
                    NLMSG_ERROR => {
                        let code = msg
                            .payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .ok_or_else(|| KernelError::protocol(op, "short NLMSG_ERROR"))?;
                        if code < 0 {
                            return Err(KernelError::Refused { op, errno: -code });
                        }
                        Reply::Ack
                    }
                    NLMSG_DONE => Reply::Done,
                    msg_type => Reply::Msg {
                        msg_type,
                        payload: msg.payload,
                    },
                };
                if let Step::Finish(t) = handle(reply)? {
                    return Ok(t);
                }
            }
        }
    }

    fn stash_record(&mut self, datagram: &[u8]) {
        if self.stash.len() < STASH_LIMIT {
            self.stash.push_back(datagram.to_vec());
        } else {
            self.pending_overruns += 1;
        }
    }

    /// Waits until the socket is readable or `deadline` passes (false).
    fn wait_readable(&self, op: &'static str, deadline: Instant) -> Result<bool, KernelError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd: self.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd, count 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(KernelError::io(op, e));
            }
            if rc > 0 {
                return Ok(true);
            }
        }
    }
}

impl AsRawFd for AuditSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl std::fmt::Debug for AuditSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSocket")
            .field("fd", &self.as_raw_fd())
            .field("port_id", &self.port_id)
            .finish()
    }
}

fn ack_only(reply: Reply<'_>) -> Result<Step<()>, KernelError> {
    Ok(match reply {
        Reply::Ack => Step::Finish(()),
        _ => Step::More,
    })
}

fn setsockopt_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: value is a valid c_int that outlives the call; the length matches.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Classifies a kernel datagram of `size` bytes whose first bytes are in `buf`.
fn record_outcome(buf: &[u8], size: usize) -> RecvOutcome {
    let end = size.min(buf.len());
    if end < NLMSG_HDRLEN {
        return RecvOutcome::Malformed { len: size };
    }
    let msg_type = u16::from_ne_bytes([buf[4], buf[5]]);
    let body_end = buf[NLMSG_HDRLEN..end]
        .iter()
        .rposition(|&b| b != 0)
        .map_or(NLMSG_HDRLEN, |i| NLMSG_HDRLEN + i + 1);
    RecvOutcome::Record {
        msg_type,
        body: NLMSG_HDRLEN..body_end,
        truncated: size > buf.len(),
    }
}

/// One netlink message of a control reply.
struct Message<'a> {
    msg_type: u16,
    seq: u32,
    payload: &'a [u8],
}

/// The netlink messages packed in one datagram. A length that does not fit
/// is clamped to the datagram, so a malformed header ends the walk instead of
/// reading past it.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Self {
        Messages { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        if self.rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let h = self.rest;
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let msg_type = u16::from_ne_bytes([h[4], h[5]]);
        let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        let len = if (NLMSG_HDRLEN..=h.len()).contains(&len) {
            len
        } else {
            h.len()
        };
        let payload = &h[NLMSG_HDRLEN..len];
        let advance = ((len + 3) & !3).min(h.len());
        self.rest = &h[advance..];
        Some(Message {
            msg_type,
            seq,
            payload,
        })
    }
}

/// The receive path's framing, for the fuzz targets (fuzz/) only: they
/// cannot reach the private walker through a socket.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::{Messages, RecvOutcome};

    /// Each netlink message of a datagram as (nlmsg_type, nlmsg_seq, payload).
    pub fn messages(datagram: &[u8]) -> Vec<(u16, u32, &[u8])> {
        Messages::new(datagram)
            .map(|m| (m.msg_type, m.seq, m.payload))
            .collect()
    }

    /// What `recv_raw` makes of a `size`-byte datagram whose first bytes are `buf`.
    pub fn record_outcome(buf: &[u8], size: usize) -> RecvOutcome {
        super::record_outcome(buf, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, seq: u32) -> Vec<u8> {
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    /// A unicast record whose nlmsg_len leaves out the header: the body still
    /// runs to the end of the datagram, minus the trailing NUL.
    #[test]
    fn record_body_comes_from_datagram_size() {
        let text = b"audit(1.000:1): arch=c000003e syscall=42\0";
        let mut d = header(text.len() as u32 - 16, 1300, 0);
        d.extend_from_slice(text);
        match record_outcome(&d, d.len()) {
            RecvOutcome::Record {
                msg_type: 1300,
                body,
                truncated: false,
            } => assert_eq!(&d[body], &text[..text.len() - 1]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            record_outcome(&d[..10], 10),
            RecvOutcome::Malformed { len: 10 }
        );
        match record_outcome(&d[..20], d.len()) {
            RecvOutcome::Record {
                body, truncated, ..
            } => assert_eq!((body, truncated), (16..20, true)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn walks_packed_messages_and_clamps_bad_lengths() {
        let mut d = header(20, NLMSG_ERROR, 7);
        d.extend_from_slice(&0i32.to_ne_bytes());
        d.extend(header(16, NLMSG_DONE, 7));
        d.extend(header(999, AUDIT_GET, 8));
        d.extend_from_slice(&[1, 2]);
        let msgs: Vec<_> = Messages::new(&d).collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            (msgs[0].msg_type, msgs[0].seq, msgs[0].payload.len()),
            (2, 7, 4)
        );
        assert_eq!(msgs[1].msg_type, NLMSG_DONE);
        assert_eq!(msgs[2].payload, &[1, 2]);
    }
}
