//! The procfs seam: what normalization asks of live processes (start time,
//! the protocol behind a socket fd), with a live implementation and one for replay.

use procfs::process::{FDTarget, Process};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Found in the process's TCP tables.
    Tcp,
    /// Found in its UDP tables: a connect() that sends nothing.
    Udp,
    /// Not found in the UDP tables: a TCP socket after a refused connect is
    /// in no table at all, and a closed fd leaves nothing to look at.
    NotUdp,
}

/// Facts about live processes. Tests fake it to model pid reuse and
/// processes that vanish; replay has no live processes at all.
pub trait ProcSource {
    /// Process start time, in clock ticks since boot (field 22 of /proc/PID/stat).
    fn start_time(&self, pid: u32) -> Result<u64, ProcError>;
    /// Whether the socket at `fd` of `pid` is UDP, for family 2 or 10.
    fn socket_transport(&self, pid: u32, fd: u32, family: u16) -> Result<Transport, ProcError>;
    /// The boot id, so entity ids are unique across reboots.
    fn boot_id(&self) -> String;
    /// Boot time (seconds since the epoch) and clock ticks per second, to tell
    /// whether a process started after a record was written (a reused pid).
    fn clock(&self) -> Option<(u64, u64)>;
}

/// Reads /proc of the host.
pub struct LiveProc {
    boot_id: String,
    clock: Option<(u64, u64)>,
}

impl LiveProc {
    pub fn new() -> Self {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
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

    fn socket_transport(&self, pid: u32, fd: u32, family: u16) -> Result<Transport, ProcError> {
        let p = process(pid)?;
        let fd = i32::try_from(fd).map_err(|_| ProcError::Unavailable("fd out of range".into()))?;
        let inode = match p.fd_from_fd(fd).map_err(|e| map_err(pid, e))?.target {
            FDTarget::Socket(inode) => inode,
            _ => return Ok(Transport::NotUdp),
        };
        // An AF_INET6 socket may connect to a v4-mapped address: it is still
        // in udp6. Only one table is read, so the cost stays one file per connect.
        let udp = if family == 10 { p.udp6() } else { p.udp() };
        let udp = udp.map_err(|e| map_err(pid, e))?;
        if udp.iter().any(|e| e.inode == inode) {
            return Ok(Transport::Udp);
        }
        let tcp = if family == 10 { p.tcp6() } else { p.tcp() };
        match tcp {
            Ok(t) if t.iter().any(|e| e.inode == inode) => Ok(Transport::Tcp),
            _ => Ok(Transport::NotUdp),
        }
    }

    fn boot_id(&self) -> String {
        self.boot_id.clone()
    }

    fn clock(&self) -> Option<(u64, u64)> {
        self.clock
    }
}

/// For replay: the processes behind the records are not ours to look at.
pub struct NoProc;

impl ProcSource for NoProc {
    fn start_time(&self, _pid: u32) -> Result<u64, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn socket_transport(&self, _pid: u32, _fd: u32, _family: u16) -> Result<Transport, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn boot_id(&self) -> String {
        "replay".into()
    }
    fn clock(&self) -> Option<(u64, u64)> {
        None
    }
}
