//! The seam to live processes: what normalization asks of them (start time,
//! the protocol behind a socket fd, a pin on one process, what a process
//! runs), and `NoProc`, the source of replay, which has no live processes.

use super::table::Creds;

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

/// What /proc says a process runs, for the process table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcInfo {
    pub ppid: u32,
    /// Start time in clock ticks since boot.
    pub start: u64,
    pub executable: Option<String>,
    pub args: Vec<String>,
    pub working_directory: Option<String>,
    pub creds: Option<Creds>,
    /// It has a controlling terminal.
    pub interactive: bool,
}

/// Facts about live processes. Tests fake it to model pid reuse and
/// processes that vanish; replay has no live processes at all.
pub trait ProcSource {
    /// A hold on one process (not on whatever later reuses its pid): a
    /// pidfd live, whatever a fake likes.
    type Pin;
    /// Process start time, in clock ticks since boot (field 22 of /proc/PID/stat).
    fn start_time(&self, pid: u32) -> Result<u64, ProcError>;
    /// The protocol of the socket at `fd` of `pid`, which a connect() to
    /// `peer` was recorded on. `Other` only while that fd still holds a
    /// socket that can be the one recorded (a non-TCP socket connected to
    /// `peer`): an fd swapped for a file or another socket since is an
    /// error, so that the connect counts as an attempt, as in replay.
    fn socket_transport(
        &self,
        pid: u32,
        fd: u32,
        peer: std::net::SocketAddr,
    ) -> Result<Transport, ProcError>;
    /// The boot id, so entity ids are unique across reboots.
    fn boot_id(&self) -> String;
    /// Boot time (seconds since the epoch) and clock ticks per second, to tell
    /// whether a process started after a record was written (a reused pid).
    fn clock(&self) -> Option<(u64, u64)>;
    /// A pin on this very process, to learn cheaply whether it still lives;
    /// None where not supported.
    fn pin(&self, _pid: u32) -> Option<Self::Pin> {
        None
    }
    /// Whether the pinned process has not exited yet.
    fn is_alive(&self, _pin: &Self::Pin) -> bool {
        false
    }
    /// What the process runs, read from /proc.
    fn info(&self, pid: u32) -> Result<ProcInfo, ProcError> {
        Err(ProcError::Unavailable(format!("no /proc for {pid}")))
    }
    /// The thread group (process) a task id belongs to; None when unknown.
    /// clone3's flags are out of audit's reach, so a new thread is told from
    /// a new process here.
    fn thread_group(&self, _tid: u32) -> Option<u32> {
        None
    }
    /// The local address of the socket at `fd` of `pid` (an accepted
    /// connection's own end: audit records only the peer's).
    fn socket_local(&self, _pid: u32, _fd: u32) -> Option<std::net::SocketAddr> {
        None
    }
    /// The user name of `uid` (the host's passwd database).
    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }
    /// Every process now running, for the table's seed.
    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// For replay: the processes behind the records are not ours to look at.
pub struct NoProc;

impl ProcSource for NoProc {
    type Pin = std::convert::Infallible;

    fn start_time(&self, _pid: u32) -> Result<u64, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn socket_transport(
        &self,
        _pid: u32,
        _fd: u32,
        _peer: std::net::SocketAddr,
    ) -> Result<Transport, ProcError> {
        Err(ProcError::Unavailable("replay".into()))
    }
    fn boot_id(&self) -> String {
        "replay".into()
    }
    fn clock(&self) -> Option<(u64, u64)> {
        None
    }
}
