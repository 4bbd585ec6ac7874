//! The triage snapshot's model: what a bounded look at the matched process
//! found (`Snapshot`), the process it is about (`Target`), and the
//! `Snapshotter` seam. `render.rs` turns a snapshot into alert fields and
//! shrinks it to a size cap; `tables.rs` parses socket-table lines. No I/O:
//! the look itself is the daemon's `snapshot::live` (the root package).

mod render;
pub mod tables;

pub use render::{render, shrink, tty_name, Rendered};

use serde::Serialize;

use crate::detect::Match;
use crate::process::EntityId;

/// What happened to one piece of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Read in full.
    Ok,
    /// Read in part; the reason says what is missing.
    Partial,
    /// The process (or the one this piece is about) had exited.
    Gone,
    /// The kernel refused the read (ptrace access, a missing capability).
    Denied,
    /// Larger than the configured bound (`hash_max_bytes`).
    TooLarge,
    /// Cut short or not started: the time budget was spent.
    TimeBudget,
    /// Turned off in `[snapshot]`.
    Disabled,
    /// Could not be read for another reason (a file that does not exist on
    /// this host, an error), said in the reason.
    Unavailable,
}

/// The status of one piece and, unless it is `Ok` or `Disabled`, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub status: Status,
    pub reason: Option<String>,
}

impl Piece {
    pub fn ok() -> Piece {
        Piece {
            status: Status::Ok,
            reason: None,
        }
    }

    pub fn new(status: Status, reason: impl Into<String>) -> Piece {
        Piece {
            status,
            reason: Some(reason.into()),
        }
    }

    pub fn disabled() -> Piece {
        Piece {
            status: Status::Disabled,
            reason: None,
        }
    }
}

/// Every piece's outcome, in the order they are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    pub process: Piece,
    pub sockets: Piece,
    pub stdio: Piece,
    pub ancestry: Piece,
    pub hash: Piece,
    pub sessions: Piece,
}

impl Pieces {
    pub fn iter(&self) -> [(&'static str, &Piece); 6] {
        [
            ("process", &self.process),
            ("sockets", &self.sockets),
            ("stdio", &self.stdio),
            ("ancestry", &self.ancestry),
            ("hash", &self.hash),
            ("sessions", &self.sessions),
        ]
    }
}

/// A user or group id with its name, when the host's files know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub id: u32,
    pub name: Option<String>,
}

/// The matched process, as /proc (or, once it is gone, the audit record)
/// showed it. Every field is optional: each read can fail on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub pid: u32,
    pub entity_id: Option<String>,
    pub executable: Option<String>,
    pub args: Option<Vec<String>>,
    /// The number of arguments before any truncation.
    pub args_count: Option<usize>,
    pub args_truncated: bool,
    pub working_directory: Option<String>,
    /// Fields taken from the audit record because /proc could not give them.
    pub from_audit: Vec<&'static str>,
    pub start: Option<String>,
    pub sha256: Option<String>,
    pub user: Option<Id>,
    pub real_user: Option<Id>,
    pub group: Option<Id>,
    pub real_group: Option<Id>,
    /// The audit login uid; `None` inside means unset (4294967295).
    pub auid: Option<Option<Id>>,
    /// The audit session id; `None` inside means unset.
    pub audit_session_id: Option<Option<u32>>,
    pub ppid: Option<u32>,
    pub process_group_id: Option<u32>,
    pub session_id: Option<u32>,
    /// tty_nr of /proc/PID/stat: (major, minor), (0, 0) for none.
    pub tty: Option<(u32, u32)>,
    pub state: Option<char>,
    pub cgroup: Option<String>,
    pub container_id: Option<String>,
    /// Whether the file the process runs is the host's file of that path.
    pub on_host: Option<OnHost>,
}

/// The executable the process runs (/proc/PID/exe) against the file its
/// path names in the host's mount namespace (/proc/1/root): a rule that
/// excludes a program by path trusts that the path is that program, and a
/// bind mount in a private mount namespace, or a container, breaks that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHost {
    /// The same (device, inode).
    Same,
    /// Another file has that path on the host.
    Differs,
    /// Nothing has that path on the host.
    Absent,
}

/// A process of the chain above the matched one, or one of its leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    pub pid: u32,
    pub entity_id: String,
    pub executable: Option<String>,
    pub args: Option<Vec<String>>,
    pub args_truncated: bool,
    pub start: Option<String>,
}

/// ECS's session view of the process: who leads its session and its
/// process group, and through which process its session entered the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leaders {
    pub session: Option<Brief>,
    pub group: Option<Brief>,
    pub entry: Option<Brief>,
}

/// An address and port of a socket end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

/// One socket the process holds (every fd that refers to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub fds: Vec<u32>,
    pub inode: u64,
    /// "tcp", "udp", "unix", or the kernel's protocol name for others
    /// ("NETLINK", "RAW", ...); "unknown" when nothing named it.
    pub transport: String,
    /// "ipv4" or "ipv6" for inet sockets.
    pub ip_version: Option<&'static str>,
    pub local: Option<Endpoint>,
    pub remote: Option<Endpoint>,
    /// TCP state as netstat names it ("ESTABLISHED"...); unix: "CONNECTED"...
    pub state: Option<&'static str>,
    /// A unix socket's bound path, if any.
    pub path: Option<String>,
}

impl Socket {
    /// A socket known by its inode only, before the tables describe it.
    pub fn bare(inode: u64) -> Socket {
        Socket {
            fds: Vec::new(),
            inode,
            transport: "unknown".into(),
            ip_version: None,
            local: None,
            remote: None,
            state: None,
            path: None,
        }
    }

    pub fn is_inet(&self) -> bool {
        self.ip_version.is_some()
    }
}

/// What one of fds 0, 1, 2 refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdioTarget {
    /// A socket, as found in the socket tables (also listed in
    /// `Snapshot::sockets`, which the size cap may shorten).
    Socket(Box<Socket>),
    Pipe(u64),
    Tty(String),
    /// A device other than a terminal (/dev/null...).
    Device(String),
    File(String),
    Other(String),
    Closed,
}

/// One login session of utmp (USER_PROCESS), as `w` and `who` list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    pub user: String,
    pub tty: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub pid: u32,
    pub login: String,
}

/// Everything the snapshot found, and for each piece whether it was
/// obtained or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `Some(why)` when no snapshot was attempted (replay, disabled).
    pub not_taken: Option<String>,
    pub pieces: Pieces,
    pub process: ProcessFacts,
    /// From the parent up to pid 1.
    pub ancestry: Vec<Brief>,
    pub leaders: Leaders,
    /// Every socket found, stdio's first.
    pub sockets: Vec<Socket>,
    /// How many sockets the process held, including any not listed.
    pub sockets_total: usize,
    /// fds 0, 1, 2, when read.
    pub stdio: Option<[StdioTarget; 3]>,
    pub sessions: Vec<Login>,
    pub sessions_total: usize,
    pub duration_us: u64,
    /// What the size cap (or a bound) dropped, in words.
    pub dropped: Vec<String>,
}

impl Snapshot {
    /// A snapshot that was never attempted, and why.
    pub fn not_taken(why: &str) -> Snapshot {
        let none = || Piece::new(Status::Disabled, why);
        let mut s = Snapshot::blank(
            Pieces {
                process: none(),
                sockets: none(),
                stdio: none(),
                ancestry: none(),
                hash: none(),
                sessions: none(),
            },
            ProcessFacts::default(),
        );
        s.not_taken = Some(why.to_owned());
        s
    }

    /// A snapshot with nothing found yet.
    pub fn blank(pieces: Pieces, process: ProcessFacts) -> Snapshot {
        Snapshot {
            not_taken: None,
            pieces,
            process,
            ancestry: Vec::new(),
            leaders: Leaders::default(),
            sockets: Vec::new(),
            sockets_total: 0,
            stdio: None,
            sessions: Vec::new(),
            sessions_total: 0,
            duration_us: 0,
            dropped: Vec::new(),
        }
    }

    /// The classic reverse shell: standard input and output both an
    /// IPv4/IPv6 socket. `None` when stdio was not read.
    pub fn reverse_shell_stdio(&self) -> Option<bool> {
        let [stdin, stdout, _] = self.stdio.as_ref()?;
        let inet = |t: &StdioTarget| matches!(t, StdioTarget::Socket(s) if s.is_inet());
        Some(inet(stdin) && inet(stdout))
    }
}

/// The process a snapshot is about, and what the audit record already said
/// of it (for when /proc no longer can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    /// Boot id, pid and start time, or the fallback form (the audit
    /// session for the start) of a process never seen alive.
    pub entity: EntityId,
    /// ppid= of the record.
    pub ppid: u32,
    /// The record's time, seconds since the epoch.
    pub record_sec: u64,
    /// The command line the matching event gave its process (its exec, the
    /// process table, or its PROCTITLE record).
    pub args: Option<Vec<String>>,
    /// Whether the kernel cut that command line short (it keeps 128 bytes).
    pub args_truncated: bool,
    /// The directory of the matching event's CWD record.
    pub working_directory: Option<String>,
}

impl Target {
    /// The process of a match: that of its last event (for a sequence by
    /// process.entity_id, the process of the join key), with what that
    /// event's records said of its command line and directory.
    pub fn of(m: &Match) -> Option<Target> {
        let last = m.events.last()?;
        Some(Target {
            pid: last.process.pid,
            entity: last.process.entity.clone(),
            ppid: last.process.parent.pid,
            record_sec: last.wall_sec,
            args: last.process.image.args.clone(),
            args_truncated: last.process.image.args_truncated,
            working_directory: last.process.working_directory.clone(),
        })
    }

    /// The start time in clock ticks the entity id was built from, if it
    /// has one (not the fallback form).
    pub fn start_ticks(&self) -> Option<u64> {
        self.entity.start_ticks()
    }
}

/// Takes snapshots. The daemon's looks at /proc; replay's never looks.
pub trait Snapshotter {
    fn take(&mut self, target: &Target) -> Snapshot;
}

/// For replay (no live processes) and `[snapshot] enabled = false`.
pub struct NotTaken(pub &'static str);

impl Snapshotter for NotTaken {
    fn take(&mut self, _target: &Target) -> Snapshot {
        Snapshot::not_taken(self.0)
    }
}
