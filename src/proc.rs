//! The procfs seam: what normalization asks of live processes (start time,
//! the protocol behind a socket fd), with a live implementation and one for replay.

use procfs::process::Process;
use procfs::ProcError as RawError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcError {
    #[error("process {0} is gone")]
    Gone(u32),
    #[error("permission denied reading /proc/{0}")]
    Denied(u32),
    #[error("not available: {0}")]
    Unavailable(String),
}

/// What the socket behind a connect()'s fd turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TCP or MPTCP (over IPv4 or IPv6): connect() sends a SYN.
    Tcp,
    /// Anything else (UDP, ping, raw, SCTP...), by the kernel's protocol name.
    Other(String),
}

/// Facts about live processes. Tests fake it to model pid reuse and
/// processes that vanish; replay has no live processes at all.
pub trait ProcSource {
    /// Process start time, in clock ticks since boot (field 22 of /proc/PID/stat).
    fn start_time(&self, pid: u32) -> Result<u64, ProcError>;
    /// The protocol of the socket at `fd` of `pid`.
    fn socket_transport(&self, pid: u32, fd: u32) -> Result<Transport, ProcError>;
    /// The boot id, so entity ids are unique across reboots.
    fn boot_id(&self) -> String;
    /// Boot time (seconds since the epoch) and clock ticks per second, to tell
    /// whether a process started after a record was written (a reused pid).
    fn clock(&self) -> Option<(u64, u64)>;
    /// A hold on this very process (not on whatever later reuses its pid),
    /// to learn cheaply whether it still lives; None where not supported.
    fn pin(&self, _pid: u32) -> Option<Pin> {
        None
    }
    /// Whether the pinned process has not exited yet.
    fn is_alive(&self, _pin: &Pin) -> bool {
        false
    }
}

/// A pidfd (Linux 5.3+): it refers to one process for its whole life, and
/// polls readable once that process has exited.
#[derive(Debug)]
pub struct Pin {
    fd: std::os::fd::OwnedFd,
    pid: u32,
}

impl Pin {
    /// The pid the process had when it was pinned.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A pin on no process, for fakes of `ProcSource` that decide liveness
    /// themselves (by `pid`).
    pub fn fake(pid: u32) -> std::io::Result<Pin> {
        Ok(Pin {
            fd: std::fs::File::open("/dev/null")?.into(),
            pid,
        })
    }
}

/// Reads /proc of the host.
pub struct LiveProc {
    boot_id: String,
    clock: Option<(u64, u64)>,
}

impl LiveProc {
    pub fn new() -> Self {
        let boot_id = match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
            Ok(id) => id.trim().to_owned(),
            Err(e) => {
                // Entity ids then repeat across reboots; say so once.
                log::warn!(
                    "cannot read the boot id ({e}): process.entity_id will use \"unknown-boot\""
                );
                "unknown-boot".into()
            }
        };
        let btime = procfs::boot_time_secs().ok();
        let ticks = procfs::ticks_per_second();
        LiveProc {
            boot_id,
            clock: btime.map(|b| (b, ticks)),
        }
    }
}

impl Default for LiveProc {
    fn default() -> Self {
        Self::new()
    }
}

fn map_err(pid: u32, e: RawError) -> ProcError {
    match e {
        RawError::NotFound(_) => ProcError::Gone(pid),
        RawError::PermissionDenied(_) => ProcError::Denied(pid),
        RawError::Io(e, _) if e.raw_os_error() == Some(libc::ESRCH) => ProcError::Gone(pid),
        other => ProcError::Unavailable(other.to_string()),
    }
}

fn process(pid: u32) -> Result<Process, ProcError> {
    let id = i32::try_from(pid).map_err(|_| ProcError::Gone(pid))?;
    Process::new(id).map_err(|e| map_err(pid, e))
}

impl ProcSource for LiveProc {
    fn start_time(&self, pid: u32) -> Result<u64, ProcError> {
        process(pid)?
            .stat()
            .map(|s| s.starttime)
            .map_err(|e| map_err(pid, e))
    }

    fn socket_transport(&self, pid: u32, fd: u32) -> Result<Transport, ProcError> {
        // sockfs names the protocol of any socket inode in this attribute:
        // one syscall, exact, where scanning /proc/PID/net tables would read
        // every socket of the namespace.
        let path = std::ffi::CString::new(format!("/proc/{pid}/fd/{fd}"))
            .map_err(|_| ProcError::Unavailable("bad path".into()))?;
        let name = match socket_protocol(&path) {
            Ok(name) => name,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::ENOENT | libc::ESRCH) => Err(ProcError::Gone(pid)),
                    Some(libc::EACCES | libc::EPERM) => Err(ProcError::Denied(pid)),
                    Some(libc::ENODATA | libc::EOPNOTSUPP) => {
                        Ok(Transport::Other("not a socket".into()))
                    }
                    _ => Err(ProcError::Unavailable(e.to_string())),
                }
            }
        };
        Ok(if name.starts_with("TCP") || name.starts_with("MPTCP") {
            Transport::Tcp
        } else {
            Transport::Other(name)
        })
    }

    fn boot_id(&self) -> String {
        self.boot_id.clone()
    }

    fn clock(&self) -> Option<(u64, u64)> {
        self.clock
    }

    fn pin(&self, pid: u32) -> Option<Pin> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let raw_pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: the kernel just gave us this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Pin { fd, pid })
    }

    fn is_alive(&self, pin: &Pin) -> bool {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: pin.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 0
    }
}

/// The protocol name sockfs gives the socket at `path` (a /proc fd link):
/// "TCP", "UDPv6", ... ENODATA or EOPNOTSUPP when it is not a socket.
pub fn socket_protocol(path: &std::ffi::CStr) -> std::io::Result<String> {
    let mut buf = [0u8; 64];
    // SAFETY: both pointers are valid for the lengths given.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
    let name = buf.get(..n).unwrap_or(&buf);
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// For replay: the processes behind the records are not ours to look at.
pub struct NoProc;

impl ProcSource for NoProc {
    fn start_time(&self, _pid: u32) -> Result<u64, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn socket_transport(&self, _pid: u32, _fd: u32) -> Result<Transport, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn boot_id(&self) -> String {
        "replay".into()
    }
    fn clock(&self) -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_tells_when_its_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let live = LiveProc::new();
        let pin = live.pin(child.id()).expect("pidfd_open (Linux 5.3+)");
        assert!(live.is_alive(&pin));
        assert!(live.start_time(child.id()).is_ok());
        child.kill().expect("kill");
        // Reaped or not, the pinned process has exited.
        child.wait().expect("wait");
        assert!(!live.is_alive(&pin));
        assert!(live.pin(child.id()).is_none() || !live.is_alive(&pin));
    }
}
