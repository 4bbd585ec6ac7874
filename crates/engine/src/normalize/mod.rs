//! Events → ECS documents as Elastic Defend writes them: process start
//! (exec, fork), end, credential and session changes, module loads, TCP
//! connects and accepts, file creation, deletion and rename. Each names its
//! process entity (boot id, pid, start time) and its parent, from a process
//! table fed by the same events.

mod ecs;
mod records;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

pub use ecs::{
    AuditFields, AuditSource, EcsEvent, Endpoint, EntryLeader, EventFields, FileExt, FileFields,
    FileName, GroupFields, Host, HostOs, Id, Network, ParentFields, ProcessFields, RealId,
    UserFields,
};

use crate::parse::{decode_sockaddr, decode_sockaddr_of, types, Record, SockAddr};
use crate::process::proc_text::split_args;
use crate::process::{
    Creds, EntityId, EntitySource, Entry, Image, ProcSource, ProcessTable, TableStats, Tracker,
    Transport,
};
use crate::reassemble::Event;
use crate::syscalls::{self, SyscallSet};
use crate::timefmt;

/// socketcall's call numbers (linux/net.h).
const SYS_CONNECT: u64 = 3;
const SYS_ACCEPT: u64 = 5;
const SYS_ACCEPT4: u64 = 18;
/// clone's flag for a new thread rather than a new process.
const CLONE_THREAD: u64 = 0x0001_0000;
/// sendto/sendmsg's flag that makes the call a TCP fast open connect.
const MSG_FASTOPEN: u64 = 0x2000_0000;
/// io_uring's connect operation (include/uapi/linux/io_uring.h).
const IORING_OP_CONNECT: u64 = 16;
/// An io_uring connect's first try, on a non-blocking attempt whose SYN is
/// out: io_uring turns EINPROGRESS into EAGAIN and waits for the socket.
const EAGAIN: i64 = -11;
/// The dirfd of an *at call that means "relative to the working directory".
const AT_FDCWD: u64 = 0xFFFF_FF9C;

/// What an audited system call is, for normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Exec,
    Fork,
    Exit,
    SetUid,
    SetGid,
    Setsid,
    LoadModule,
    Connect,
    /// sendto, sendmsg, sendmmsg: a connect when MSG_FASTOPEN is set.
    FastOpen,
    /// io_uring_enter: the URINGOP records of the operations it ran.
    Uring,
    Accept,
    /// i386's multiplexer: connect or accept by its first argument.
    Socketcall,
    /// open-like: a creation only when a PATH item says CREATE.
    Create,
    Delete,
    Rename,
}

/// Every system call normalize maps, by name: the one list the reassembler's
/// filter and the tests read.
const CALLS: &[(&str, Call)] = &[
    ("execve", Call::Exec),
    ("execveat", Call::Exec),
    ("fork", Call::Fork),
    ("vfork", Call::Fork),
    ("clone", Call::Fork),
    ("clone3", Call::Fork),
    ("exit_group", Call::Exit),
    ("setuid", Call::SetUid),
    ("setuid32", Call::SetUid),
    ("setreuid", Call::SetUid),
    ("setreuid32", Call::SetUid),
    ("setresuid", Call::SetUid),
    ("setresuid32", Call::SetUid),
    ("setfsuid", Call::SetUid),
    ("setfsuid32", Call::SetUid),
    ("setgid", Call::SetGid),
    ("setgid32", Call::SetGid),
    ("setregid", Call::SetGid),
    ("setregid32", Call::SetGid),
    ("setresgid", Call::SetGid),
    ("setresgid32", Call::SetGid),
    ("setfsgid", Call::SetGid),
    ("setfsgid32", Call::SetGid),
    ("setsid", Call::Setsid),
    ("init_module", Call::LoadModule),
    ("finit_module", Call::LoadModule),
    ("connect", Call::Connect),
    ("sendto", Call::FastOpen),
    ("sendmsg", Call::FastOpen),
    ("sendmmsg", Call::FastOpen),
    ("io_uring_enter", Call::Uring),
    ("accept", Call::Accept),
    ("accept4", Call::Accept),
    ("socketcall", Call::Socketcall),
    ("creat", Call::Create),
    ("open", Call::Create),
    ("openat", Call::Create),
    ("openat2", Call::Create),
    ("mknod", Call::Create),
    ("mknodat", Call::Create),
    ("link", Call::Create),
    ("linkat", Call::Create),
    ("symlink", Call::Create),
    ("symlinkat", Call::Create),
    ("unlink", Call::Delete),
    ("unlinkat", Call::Delete),
    ("rmdir", Call::Delete),
    ("rename", Call::Rename),
    ("renameat", Call::Rename),
    ("renameat2", Call::Rename),
];

fn syscall(arch: u64, nr: u64) -> Option<(&'static str, Call)> {
    let name = syscalls::name(u32::try_from(arch).ok()?, u32::try_from(nr).ok()?)?;
    CALLS.iter().find(|(n, _)| *n == name).map(|&(n, c)| (n, c))
}

/// The system calls whose events can become ECS events, on every arch: the
/// others' events can be dropped before their records are parsed.
pub fn wanted_syscalls() -> SyscallSet {
    let names: Vec<&str> = CALLS.iter().map(|(n, _)| *n).collect();
    SyscallSet::of_names(&names)
}

/// Whether a send is a TCP fast open: MSG_FASTOPEN in its flags (sendto's
/// and sendmmsg's fourth argument, sendmsg's third). The kernel rule tests
/// the same bit; a log written under other rules may hold any send.
fn fast_open(sc: &Record, name: &str) -> bool {
    let flags = if name == "sendmsg" { "a2" } else { "a3" };
    sc.get(flags)
        .and_then(|v| v.hex())
        .is_some_and(|f| f & MSG_FASTOPEN != 0)
}

/// connect() results after which the kernel had sent a SYN: Elastic's sensor
/// fires when tcp_v4_connect/tcp_v6_connect returns 0, and these are the
/// outcomes that follow it: established, in progress, refused by the peer,
/// timed out, reset, interrupted while waiting (EINTR, or ERESTARTSYS as
/// audit sees it before a restart). EHOSTUNREACH is an over-approximation
/// kept on purpose: an ICMP error after the SYN gives it, and so does an
/// `unreachable` route before any SYN; audit cannot tell them apart, and a
/// missed reverse shell costs more than a rare extra first stage.
const ATTEMPT_EXITS: [i64; 8] = [0, -115, -111, -110, -104, -4, -512, -113];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizeStats {
    pub connect_attempts: u64,
    pub session_changes: u64,
    /// connect() calls on UDP sockets, or that never sent a SYN.
    pub connects_ignored: u64,
    pub execs: u64,
    pub forks: u64,
    /// clone/clone3 calls that made a thread, not a process.
    pub threads_ignored: u64,
    pub exits: u64,
    pub credential_changes: u64,
    pub module_loads: u64,
    pub accepts: u64,
    pub file_events: u64,
    /// Events whose process had already exited when we looked.
    pub process_gone: u64,
    /// Events whose entity id had to use the fallback form.
    pub entity_fallbacks: u64,
    /// Events of our syscalls that lacked a record or field they need.
    pub malformed_events: u64,
    /// connect/accept events with no SOCKADDR record (or an unreadable one).
    pub without_address: u64,
    pub table: TableStats,
}

impl NormalizeStats {
    /// ECS events made, of every kind.
    pub fn events(&self) -> u64 {
        self.connect_attempts
            + self.session_changes
            + self.execs
            + self.forks
            + self.exits
            + self.credential_changes
            + self.module_loads
            + self.accepts
            + self.file_events
    }
}

pub struct Normalizer<P: ProcSource> {
    proc: P,
    /// Which process each record's pid named: entity ids.
    processes: Tracker<P>,
    /// What each entity runs, and its parent.
    table: ProcessTable,
    host: Arc<Host>,
    /// The hosts a multi-host log names (`node=`), by name.
    nodes: HashMap<String, Arc<Host>>,
    /// uid → name, forgotten every USER_NAMES_MS of record time so that
    /// accounts added or renamed show.
    user_names: HashMap<u32, Option<Arc<str>>>,
    user_names_ms: u64,
    stats: NormalizeStats,
}

/// How long (record time, ms) a uid's name is believed.
const USER_NAMES_MS: u64 = 60_000;

/// The process an event is about, as resolved from its SYSCALL record.
struct Subject {
    pid: u32,
    ppid: u32,
    entity: EntityId,
    source: EntitySource,
    creds: Creds,
    interactive: bool,
    executable: Option<String>,
}

impl<P: ProcSource> Normalizer<P> {
    /// A normalizer for an unnamed host (tests, fuzzing).
    pub fn new(proc: P) -> Self {
        Self::with_host(proc, Host::new("unknown", "unknown"))
    }

    pub fn with_host(proc: P, host: Host) -> Self {
        Normalizer {
            processes: Tracker::new(&proc),
            proc,
            table: ProcessTable::new(),
            host: Arc::new(host),
            nodes: HashMap::new(),
            user_names: HashMap::new(),
            user_names_ms: 0,
            stats: NormalizeStats::default(),
        }
    }

    pub fn stats(&self) -> NormalizeStats {
        let tracked = self.processes.stats();
        NormalizeStats {
            process_gone: tracked.process_gone,
            entity_fallbacks: tracked.entity_fallbacks,
            table: self.table.stats(),
            ..self.stats
        }
    }

    /// Bounds the process table to `max` entries (`[detection] max_processes`).
    pub fn set_max_processes(&mut self, max: usize) {
        self.table.set_max_entries(max);
    }

    /// Learns every running process from the source (at start, live), so
    /// that the parents of later events are known even if they exit before
    /// their first event. Returns how many were learnt.
    pub fn seed(&mut self) -> usize {
        // Start times first (one short read each): past the bound only the
        // newest are read in full, so a crowded host costs no more memory
        // at start than the table holds.
        let mut starts: Vec<(u32, u64)> = self
            .proc
            .pids()
            .into_iter()
            .filter_map(|pid| Some((pid, self.proc.start_time(pid).ok()?)))
            .collect();
        // Parents first, so that children learn from them (in_container).
        starts.sort_by_key(|&(_, start)| start);
        // Past the bound the newest are kept (the oldest are mostly daemons
        // that fork rarely), and the rest counted: a lookup re-reads them.
        let over = starts.len().saturating_sub(self.table.max_entries());
        self.table.not_seeded(over);
        let start_of: std::collections::HashMap<u32, u64> = starts.iter().copied().collect();
        let boot: Arc<str> = self.proc.boot_id().into();
        let mut n = 0;
        for &(pid, _) in &starts[over..] {
            let Ok(info) = self.proc.info(pid) else {
                continue; // exited since
            };
            let parent = start_of
                .get(&info.ppid)
                .map(|&s| EntityId::new(boot.clone(), info.ppid, s));
            let id = EntityId::new(boot.clone(), pid, info.start);
            let entry = entry_of(info, parent);
            self.table.seed(id, entry);
            n += 1;
        }
        n
    }

    /// Turns one audit event into an ECS event, if it is one rules can use.
    pub fn normalize(&mut self, event: &Event) -> Option<EcsEvent> {
        let Some(sc) = event.record(types::SYSCALL) else {
            // An io_uring operation that ran off the submitting syscall
            // (io-wq, SQPOLL) is an event of URINGOP records alone.
            let result = self.uring(event, None);
            return self.settle(result);
        };
        let arch = sc.get("arch")?.hex()?;
        let (name, call) = syscall(arch, sc.get("syscall")?.decimal()?)?;
        let result = match call {
            Call::Uring => self.uring(event, Some(sc)),
            Call::FastOpen if !fast_open(sc, name) => Ok(None),
            Call::FastOpen => self.network(event, sc, name, call),
            Call::Setsid | Call::SetUid | Call::SetGid | Call::LoadModule => {
                self.process_change(event, sc, name, call)
            }
            Call::Connect | Call::Socketcall | Call::Accept => self.network(event, sc, name, call),
            Call::Exec => self.exec(event, sc, name),
            Call::Fork => self.fork(event, sc, name),
            Call::Exit => self.exit(event, sc, name),
            Call::Create | Call::Delete | Call::Rename => self.file(event, sc, name, call),
        };
        self.settle(result)
    }

    fn settle(&mut self, result: Result<Option<EcsEvent>, Malformed>) -> Option<EcsEvent> {
        match result {
            Ok(ev) => ev,
            Err(Malformed) => {
                self.stats.malformed_events += 1;
                None
            }
        }
    }

    /// io_uring connects: each is a connection attempt of the process that
    /// submitted it, with the address when the operation ran inside
    /// io_uring_enter (its SOCKADDR is then in the event) and without one
    /// when a worker ran it later. The socket's transport is not known (the
    /// record names no fd): a UDP connect through io_uring counts too.
    fn uring(&mut self, event: &Event, sc: Option<&Record>) -> Result<Option<EcsEvent>, Malformed> {
        let mut ops = event
            .records
            .iter()
            .filter(|r| r.rtype == types::URINGOP)
            .filter(|r| r.get("uring_op").and_then(|v| v.decimal()) == Some(IORING_OP_CONNECT))
            .peekable();
        let Some(&first) = ops.peek() else {
            return Ok(None);
        };
        let attempted = ops.any(|r| {
            r.get("exit")
                .and_then(|v| v.signed())
                .is_some_and(|x| x == EAGAIN || ATTEMPT_EXITS.contains(&x))
        });
        if !attempted {
            self.stats.connects_ignored += 1;
            return Ok(None);
        }
        let subject_record = sc.unwrap_or(first);
        let exit = first.get("exit").and_then(|v| v.signed()).unwrap_or(0);
        let address = event
            .record(types::SOCKADDR)
            .and_then(|r| r.get("saddr"))
            .and_then(|v| crate::parse::decode_hex(v.raw))
            .and_then(|b| {
                let arch = subject_record.get("arch").and_then(|v| v.hex());
                match arch.and_then(|a| u32::try_from(a).ok()) {
                    Some(a) => decode_sockaddr_of(&b, syscalls::is_little_endian(a)),
                    None => decode_sockaddr(&b),
                }
            });
        let (destination, ip_version) = match address {
            Some(SockAddr::Inet(a)) => (Some((a.ip().to_string(), a.port())), "ipv4"),
            Some(SockAddr::Inet6(a)) => (Some((a.ip().to_string(), a.port())), "ipv6"),
            // A unix or netlink socket's connect is no network event.
            Some(_) => return Ok(None),
            None => (None, ""),
        };
        self.stats.connect_attempts += 1;
        let s = self.subject(event, subject_record)?;
        let mut ev = self.build(
            event,
            subject_record,
            s,
            kind(
                "network",
                "start",
                "connection_attempted",
                if exit == 0 { "success" } else { "unknown" },
            ),
            "io_uring_enter",
        );
        ev.audetect.audit.exit = exit;
        ev.destination = destination.map(|(ip, port)| Endpoint { ip, port });
        ev.network = Some(Network {
            transport: "tcp",
            ip_version,
            direction: "egress",
        });
        Ok(Some(ev))
    }

    /// The process events that are one successful call and nothing more:
    /// setsid, the set*id families, module loads.
    fn process_change(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
        call: Call,
    ) -> Result<Option<EcsEvent>, Malformed> {
        if !succeeded(sc) {
            return Ok(None);
        }
        let (counter, kind_of_change, action) = match call {
            Call::Setsid => (
                &mut self.stats.session_changes,
                "change",
                "session_id_change",
            ),
            Call::SetUid => (&mut self.stats.credential_changes, "change", "uid_change"),
            Call::SetGid => (&mut self.stats.credential_changes, "change", "gid_change"),
            _ => (&mut self.stats.module_loads, "start", "load_module"),
        };
        *counter += 1;
        let s = self.subject(event, sc)?;
        Ok(Some(self.build(
            event,
            sc,
            s,
            kind("process", kind_of_change, action, "success"),
            name,
        )))
    }

    /// exec: the process now runs the program EXECVE and exe= name; the
    /// table learns it, so its children and later events carry it.
    fn exec(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
    ) -> Result<Option<EcsEvent>, Malformed> {
        if !succeeded(sc) {
            return Ok(None);
        }
        self.stats.execs += 1;
        let s = self.resolve(event, sc)?;
        let argv = records::argv(event);
        let cwd = cwd_of(event);
        let (args, count, truncated) = match argv {
            Some(a) => (Some(a.args), a.argc, a.truncated),
            None => proctitle_args(event),
        };
        let image = Arc::new(Image::new(
            s.executable.clone(),
            args,
            count,
            truncated,
            cwd,
        ));
        let now = event.steady_millis();
        if !self.table.exec(&s.entity, image.clone(), now) {
            let parent = self.parent_entity(s.ppid, event);
            self.table
                .insert(s.entity.clone(), Entry::new(image, parent, s.ppid), now);
        }
        self.note(&s, event);
        Ok(Some(self.build(
            event,
            sc,
            s,
            kind("process", "start", "exec", "success"),
            name,
        )))
    }

    /// fork: the event is the child's (process.* the new process, its parent
    /// the caller), which runs its parent's program until it execs.
    fn fork(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
    ) -> Result<Option<EcsEvent>, Malformed> {
        let child = sc.get("exit").and_then(|v| v.signed()).ok_or(Malformed)?;
        let Ok(child) = u32::try_from(child) else {
            return Ok(None); // failed, or the child's own return
        };
        if child == 0 {
            return Ok(None);
        }
        let arch = sc.get("arch").and_then(|v| v.hex()).unwrap_or(0);
        let flags_arg = ["a0", "a1"][syscalls::clone_flags_arg(u32::try_from(arch).unwrap_or(0))];
        let flags = sc.get(flags_arg).and_then(|v| v.hex()).unwrap_or(0);
        let thread = match name {
            "clone" => flags & CLONE_THREAD != 0,
            // clone3 takes its flags in a struct audit does not copy.
            "clone3" => self.proc.thread_group(child).is_some_and(|tg| tg != child),
            _ => false,
        };
        if thread {
            self.stats.threads_ignored += 1;
            return Ok(None);
        }
        self.stats.forks += 1;
        let parent = self.subject(event, sc)?;
        let ses = session(sc);
        let (child_id, child_source) = self.entity(child, &ses, event);
        let now = event.steady_millis();
        let parent_image = self.image_of(&parent, event);
        let parent_image_for_event = parent_image.clone();
        match self.table.get_mut(&child_id) {
            // The child's exec can reach us before its parent's fork event.
            Some(e) => {
                if e.parent.is_none() {
                    e.parent = Some(parent.entity.clone());
                }
            }
            None => {
                let mut e = Entry::new(
                    parent_image.clone(),
                    Some(parent.entity.clone()),
                    parent.pid,
                );
                e.parent_image = Some(parent_image);
                e.creds = Some(parent.creds);
                e.interactive = Some(parent.interactive);
                self.table.insert(child_id.clone(), e, now);
            }
        }
        let s = Subject {
            pid: child,
            ppid: parent.pid,
            entity: child_id,
            source: child_source,
            creds: parent.creds,
            interactive: parent.interactive,
            executable: parent.executable.clone(),
        };
        let mut ev = self.build(
            event,
            sc,
            s,
            kind("process", "start", "fork", "success"),
            name,
        );
        // At the fork the child ran its parent's program, even when its own
        // exec (a vfork or posix_spawn child's) reached us first.
        let image = parent_image_for_event;
        ev.audetect.audit.args_truncated = image.args_truncated;
        ev.process.working_directory = cwd_of(event).or_else(|| image.working_directory.clone());
        ev.process.image = image;
        Ok(Some(ev))
    }

    /// exit_group: the process ends with status a0; the table keeps it a
    /// while for its children's events.
    fn exit(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
    ) -> Result<Option<EcsEvent>, Malformed> {
        self.stats.exits += 1;
        let s = self.subject(event, sc)?;
        let code = sc
            .get("a0")
            .and_then(|v| v.hex())
            .map(|c| i64::from(c as i32));
        let entity = s.entity.clone();
        let mut ev = self.build(event, sc, s, kind("process", "end", "end", "success"), name);
        ev.process.exit_code = code;
        self.table.exit(&entity, event.steady_millis());
        Ok(Some(ev))
    }

    fn network(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
        call: Call,
    ) -> Result<Option<EcsEvent>, Malformed> {
        let (accept, fd) = match call {
            Call::Socketcall => {
                let accept = match sc.get("a0").and_then(|v| v.hex()) {
                    Some(SYS_CONNECT) => false,
                    Some(SYS_ACCEPT | SYS_ACCEPT4) => true,
                    _ => return Ok(None),
                };
                // socketcall's own arguments live in its SOCKETCALL record.
                let fd = event
                    .record(types::SOCKETCALL)
                    .and_then(|r| r.get("a0"))
                    .and_then(|v| v.hex());
                (accept, fd)
            }
            Call::Accept => (true, sc.get("a0").and_then(|v| v.hex())),
            _ => (false, sc.get("a0").and_then(|v| v.hex())),
        };
        let Some(addr) = event
            .record(types::SOCKADDR)
            .and_then(|r| r.get("saddr"))
            .and_then(|v| crate::parse::decode_hex(v.raw))
            .and_then(|b| {
                let arch = sc.get("arch").and_then(|v| v.hex());
                match arch.and_then(|a| u32::try_from(a).ok()) {
                    Some(a) => decode_sockaddr_of(&b, syscalls::is_little_endian(a)),
                    None => decode_sockaddr(&b),
                }
            })
        else {
            // The kernel writes a SOCKADDR whenever it copied an address; a
            // log without one lost it (or the caller passed none).
            self.stats.without_address += 1;
            return Ok(None);
        };
        let (ip, port, ip_version, peer) = match &addr {
            SockAddr::Inet(a) => (
                a.ip().to_string(),
                a.port(),
                "ipv4",
                std::net::SocketAddr::from(*a),
            ),
            SockAddr::Inet6(a) => (
                a.ip().to_string(),
                a.port(),
                "ipv6",
                std::net::SocketAddr::from(*a),
            ),
            _ => return Ok(None),
        };
        let exit = sc.get("exit").and_then(|v| v.signed()).ok_or(Malformed)?;
        if accept {
            if exit < 0 {
                return Ok(None);
            }
            self.stats.accepts += 1;
            let s = self.subject(event, sc)?;
            // The accepted socket is the new fd, exit=; its own end is
            // destination.*, as Defend has it.
            // The listening socket (fd) has the same port, and an address
            // too unless it listens on all of them.
            let local = [
                u32::try_from(exit).ok(),
                fd.and_then(|f| u32::try_from(f).ok()),
            ]
            .into_iter()
            .flatten()
            .find_map(|fd| self.proc.socket_local(s.pid, fd));
            let mut ev = self.build(
                event,
                sc,
                s,
                kind("network", "start", "connection_accepted", "success"),
                name,
            );
            ev.source = Some(Endpoint { ip, port });
            ev.destination = local.map(|a| Endpoint {
                ip: a.ip().to_canonical().to_string(),
                port: a.port(),
            });
            ev.network = Some(Network {
                transport: "tcp",
                ip_version,
                direction: "ingress",
            });
            return Ok(Some(ev));
        }
        // A fast open that sent its data with the SYN returns the bytes sent.
        let attempted = ATTEMPT_EXITS.contains(&exit) || (call == Call::FastOpen && exit > 0);
        if !attempted {
            self.stats.connects_ignored += 1;
            return Ok(None);
        }
        let pid = sc.get("pid").and_then(|v| v.decimal()).ok_or(Malformed)? as u32;
        if let Some(fd) = fd.and_then(|f| u32::try_from(f).ok()) {
            // Only a TCP connect sends anything; when the socket can no
            // longer be looked at, or the fd no longer holds it, the
            // connect counts as an attempt.
            if let Ok(Transport::Other(_)) = self.proc.socket_transport(pid, fd, peer) {
                self.stats.connects_ignored += 1;
                return Ok(None);
            }
        }
        self.stats.connect_attempts += 1;
        let s = self.subject(event, sc)?;
        let mut ev = self.build(
            event,
            sc,
            s,
            kind(
                "network",
                "start",
                "connection_attempted",
                if exit == 0 { "success" } else { "unknown" },
            ),
            name,
        );
        ev.destination = Some(Endpoint { ip, port });
        ev.network = Some(Network {
            transport: "tcp",
            ip_version,
            direction: "egress",
        });
        Ok(Some(ev))
    }

    /// Files: the PATH item the call created or deleted (both for a rename:
    /// the new name is file.*, the old one file.Ext.original.*).
    fn file(
        &mut self,
        event: &Event,
        sc: &Record,
        name: &'static str,
        call: Call,
    ) -> Result<Option<EcsEvent>, Malformed> {
        if !succeeded(sc) {
            return Ok(None);
        }
        let items = records::path_items(event);
        let named = |t: &'static [u8]| {
            items
                .iter()
                .filter(move |i| i.nametype == t)
                .filter_map(|i| i.name.as_deref())
        };
        let cwd = cwd_of(event);
        // Relative names of *at calls are relative to their dirfd, which
        // audit does not name; with AT_FDCWD they are relative to the cwd.
        let path = |n: &[u8], new: bool| {
            let relative_to_cwd = match dirfd_arg(name, new) {
                Some(arg) => sc.get(arg).and_then(|v| v.hex()) == Some(AT_FDCWD),
                None => true,
            };
            records::absolute(n, cwd.as_deref(), relative_to_cwd)
        };
        let (file, original, action, type_) = match call {
            Call::Create => {
                let Some(created) = named(b"CREATE").next_back() else {
                    return Ok(None); // an existing file opened
                };
                (path(created, true), None, "creation", "creation")
            }
            Call::Delete => {
                let Some(deleted) = named(b"DELETE").next() else {
                    return Ok(None);
                };
                (path(deleted, true), None, "deletion", "deletion")
            }
            _ => {
                let old = named(b"DELETE").next();
                let new = named(b"CREATE").next_back();
                let (Some(old), Some(new)) = (old, new) else {
                    return Ok(None);
                };
                (path(new, true), Some(path(old, false)), "rename", "change")
            }
        };
        self.stats.file_events += 1;
        let s = self.subject(event, sc)?;
        let mut ev = self.build(event, sc, s, kind("file", type_, action, "success"), name);
        ev.file = Some(FileFields {
            name: FileName::new(file),
            ext: original.map(|o| FileExt {
                original: FileName::new(o),
            }),
        });
        Ok(Some(ev))
    }

    /// The process of a SYSCALL record: its entity, and its image in the table.
    fn subject(&mut self, event: &Event, sc: &Record) -> Result<Subject, Malformed> {
        let s = self.resolve(event, sc)?;
        let _ = self.image_of(&s, event);
        self.note(&s, event);
        Ok(s)
    }

    /// The entity and credentials of a SYSCALL record's process, without
    /// touching the table.
    fn resolve(&mut self, event: &Event, sc: &Record) -> Result<Subject, Malformed> {
        let pid = sc.get("pid").and_then(|v| v.decimal()).ok_or(Malformed)? as u32;
        let ppid = sc.get("ppid").and_then(|v| v.decimal()).unwrap_or(0) as u32;
        let id = |k: &str| sc.get(k).and_then(|v| v.decimal()).map(|v| v as u32);
        let euid = id("euid").ok_or(Malformed)?;
        let creds = Creds {
            uid: id("uid").unwrap_or(euid),
            euid,
            egid: id("egid").unwrap_or(0),
            gid: id("gid").or(id("egid")).unwrap_or(0),
        };
        let interactive = sc
            .get("tty")
            .is_some_and(|v| !v.raw.is_empty() && v.raw != b"(none)");
        let executable = sc
            .get("exe")
            .and_then(|v| v.untrusted())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let ses = session(sc);
        let (entity, source) = self.entity(pid, &ses, event);
        Ok(Subject {
            pid,
            ppid,
            entity,
            source,
            creds,
            interactive,
            executable,
        })
    }

    /// What the subject runs: the table's image while it names the same
    /// executable; else /proc's while the process lives; else what the
    /// records say (exe=, PROCTITLE). The table learns the answer.
    fn image_of(&mut self, s: &Subject, event: &Event) -> Arc<Image> {
        let now = event.steady_millis();
        if let Some(e) = self.table.get(&s.entity) {
            let same = s.executable.is_none() || e.image.executable == s.executable;
            let stale_title = e.image.from_title && event.record(types::PROCTITLE).is_some();
            if same && !stale_title {
                return e.image.clone();
            }
        }
        // A record without exe= (URINGOP) leaves /proc as the only witness.
        let unnamed = s.executable.is_none();
        let live = (s.source == EntitySource::Procfs || unnamed)
            .then(|| self.proc.info(s.pid).ok())
            .flatten()
            .filter(|i| {
                Some(i.start) == s.entity.start_ticks() && (unnamed || i.executable == s.executable)
            });
        let (image, ppid) = match live {
            Some(info) => {
                let ppid = info.ppid;
                (entry_of(info, None).image, ppid)
            }
            None => {
                let (args, count, truncated) = proctitle_args(event);
                let cwd = cwd_of(event).or_else(|| {
                    let known = self.table.get(&s.entity)?;
                    known.image.working_directory.clone()
                });
                let mut image = Image::new(s.executable.clone(), args, count, truncated, cwd);
                image.from_title = image.args.is_some();
                (Arc::new(image), s.ppid)
            }
        };
        if !self.table.exec(&s.entity, image.clone(), now) {
            let parent = self.parent_entity(ppid, event);
            self.table.insert(
                s.entity.clone(),
                Entry::new(image.clone(), parent, ppid),
                now,
            );
        }
        image
    }

    /// The entity of `pid` as of `event`. In a log of several hosts
    /// (`node=`), each host's processes are its own: the node joins the
    /// boot id.
    fn entity(&mut self, pid: u32, ses: &str, event: &Event) -> (EntityId, EntitySource) {
        let (id, source) = self.processes.entity(&self.proc, pid, ses, event.time);
        match event.node() {
            Some(node) => {
                let boot: Arc<str> = format!("{}@{node}", id.boot_id).into();
                (
                    EntityId {
                        boot_id: boot,
                        ..id
                    },
                    source,
                )
            }
            None => (id, source),
        }
    }

    /// The host of `event`: the one audetect runs on, or the `node=` a
    /// multi-host log names (its host.id is then the node's name too).
    fn host_of(&mut self, event: &Event) -> Arc<Host> {
        let Some(node) = event.node() else {
            return self.host.clone();
        };
        if let Some(h) = self.nodes.get(node) {
            return h.clone();
        }
        if self.nodes.len() >= 1024 {
            self.nodes.clear();
        }
        let h = Arc::new(Host::node(node));
        self.nodes.insert(node.to_owned(), h.clone());
        h
    }

    /// The entity of the process at `ppid` when the event was written.
    /// A parent never seen alive gets the fallback form with the child's
    /// session, which a parent most often shares: in replay, its own
    /// events then carry the same id.
    fn parent_entity(&mut self, ppid: u32, event: &Event) -> Option<EntityId> {
        if ppid == 0 {
            return None;
        }
        let ses = event
            .record(types::SYSCALL)
            .map(|sc| session(sc).into_owned())
            .unwrap_or_default();
        let (id, _) = self.entity(ppid, &ses, event);
        Some(id)
    }

    /// The subject's credentials and terminal, as of its latest event.
    fn note(&mut self, s: &Subject, event: &Event) {
        if let Some(e) = self.table.get_mut(&s.entity) {
            e.creds = Some(s.creds);
            e.interactive = Some(s.interactive);
        }
        self.table.touch(&s.entity, event.steady_millis());
    }

    /// The parent fields of the subject, from the table.
    fn parent_fields(&mut self, s: &Subject, event: &Event) -> ParentFields {
        // The record's ppid is the parent as the kernel saw it: one that
        // differs from the table's, the parent exited and the process was
        // reparented (to init or a subreaper), which Defend's data shows too.
        let reparented = self
            .table
            .get(&s.entity)
            .is_some_and(|e| s.ppid != 0 && e.ppid != s.ppid);
        if reparented {
            let adopter = self.parent_entity(s.ppid, event);
            if let Some(e) = self.table.get_mut(&s.entity) {
                e.parent = adopter;
                e.parent_image = None;
                e.ppid = s.ppid;
            }
        }
        let known = self.table.get(&s.entity).and_then(|e| e.parent.clone());
        let parent = match known {
            Some(p) => Some(p),
            None => self.parent_entity(s.ppid, event),
        };
        let Some(parent) = parent else {
            return ParentFields::pid_only(s.ppid);
        };
        if self.table.get(&parent).is_none() && parent.start_ticks().is_some() {
            // Alive (the tracker read it) but not in the table yet.
            if let Ok(info) = self.proc.info(parent.pid) {
                if Some(info.start) == parent.start_ticks() {
                    let grand = self.parent_entity(info.ppid, event);
                    self.table
                        .insert(parent.clone(), entry_of(info, grand), event.steady_millis());
                }
            }
        }
        let mut out = ParentFields::pid_only(parent.pid);
        out.entity_id = Some(parent.to_string());
        if let Some(e) = self.table.get(&parent) {
            let image = e.image.clone();
            out.working_directory = image.working_directory.clone();
            out.image = Some(image.clone());
            out.interactive = e.interactive;
            if let Some(c) = e.creds {
                out.user = Some(Id {
                    id: c.euid.to_string(),
                });
                out.group = Some(Id {
                    id: c.egid.to_string(),
                });
            }
            // The child keeps it, for when the parent's entry has gone.
            if let Some(child) = self.table.get_mut(&s.entity) {
                if child.parent_image.is_none() {
                    child.parent_image = Some(image);
                }
            }
        } else if let Some(image) = self
            .table
            .get(&s.entity)
            .and_then(|e| e.parent_image.clone())
        {
            out.working_directory = image.working_directory.clone();
            out.image = Some(image);
        }
        out
    }

    fn user_name(&mut self, uid: u32, event: &Event) -> Option<Arc<str>> {
        let now = event.steady_millis();
        if now >= self.user_names_ms.saturating_add(USER_NAMES_MS) || self.user_names.len() > 4096 {
            self.user_names.clear();
            self.user_names_ms = now;
        }
        let proc = &self.proc;
        self.user_names
            .entry(uid)
            .or_insert_with(|| proc.user_name(uid).map(Arc::from))
            .clone()
    }

    fn build(
        &mut self,
        event: &Event,
        sc: &Record,
        s: Subject,
        fields: EventFields,
        syscall: &'static str,
    ) -> EcsEvent {
        let parent = self.parent_fields(&s, event);
        let image = match self.table.get(&s.entity) {
            Some(e) => e.image.clone(),
            None => Arc::new(Image::new(s.executable.clone(), None, None, false, None)),
        };
        let working_directory = cwd_of(event).or_else(|| image.working_directory.clone());
        let exit = sc.get("exit").and_then(|v| v.signed()).unwrap_or(0);
        let mut user = UserFields::new(u64::from(s.creds.euid), u64::from(s.creds.uid));
        user.name = self.user_name(s.creds.euid, event).map(|n| n.to_string());
        EcsEvent {
            timestamp: timefmt::rfc3339_millis(event.time.sec, u32::from(event.time.msec)),
            event: fields,
            host: self.host_of(event),
            user,
            group: GroupFields::new(u64::from(s.creds.egid), u64::from(s.creds.gid)),
            audetect: AuditFields {
                audit: AuditSource {
                    serial: event.serial,
                    syscall,
                    exit,
                    entity_source: s.source.as_str(),
                    args_truncated: image.args_truncated,
                },
            },
            process: ProcessFields {
                pid: s.pid,
                entity_id: s.entity.to_string(),
                entity: s.entity.clone(),
                entry_leader: self
                    .table
                    .get(&s.entity)
                    .filter(|e| e.in_container)
                    .map(|_| EntryLeader::container()),
                image,
                working_directory,
                interactive: s.interactive,
                exit_code: None,
                parent,
            },
            file: None,
            source: None,
            destination: None,
            network: None,
            // Sequences measure order and maxspan on the steady timeline: a
            // clock stepped between two steps moves @timestamp, not this.
            time: {
                let ms = event.steady_millis();
                crate::parse::Timestamp {
                    sec: ms / 1000,
                    msec: (ms % 1000) as u16,
                }
            },
            wall_sec: event.time.sec,
        }
    }
}

/// The argument holding the directory fd a relative name of an *at call is
/// relative to: of its new (created, deleted) name, or of a rename's old
/// one. None for calls that take no dirfd.
fn dirfd_arg(call: &str, new: bool) -> Option<&'static str> {
    match (call, new) {
        ("openat" | "openat2" | "mknodat" | "unlinkat", _) => Some("a0"),
        ("linkat" | "renameat" | "renameat2", true) => Some("a2"),
        ("renameat" | "renameat2", false) => Some("a0"),
        ("symlinkat", _) => Some("a1"),
        _ => None,
    }
}

/// A table entry from what /proc said.
fn entry_of(info: crate::process::ProcInfo, parent: Option<EntityId>) -> Entry {
    let args = (!info.args.is_empty()).then_some(info.args);
    let image = Image::new(info.executable, args, None, false, info.working_directory);
    let mut e = Entry::new(Arc::new(image), parent, info.ppid);
    e.creds = info.creds;
    e.interactive = Some(info.interactive);
    e
}

fn kind(
    category: &'static str,
    type_: &'static str,
    action: &'static str,
    outcome: &'static str,
) -> EventFields {
    EventFields {
        kind: "event",
        category: vec![category],
        kind_of_change: vec![type_],
        action,
        outcome,
    }
}

fn succeeded(sc: &Record) -> bool {
    sc.get("success").map(|v| v.raw) == Some(b"yes")
}

fn session(sc: &Record) -> Cow<'_, str> {
    sc.get("ses")
        .map_or(Cow::Borrowed(""), |v| String::from_utf8_lossy(v.raw))
}

fn cwd_of(event: &Event) -> Option<String> {
    untrusted(event, types::CWD, "cwd").map(|cwd| String::from_utf8_lossy(&cwd).into_owned())
}

/// The command line of the PROCTITLE record: args, count, truncated.
fn proctitle_args(event: &Event) -> (Option<Vec<String>>, Option<u64>, bool) {
    let title = untrusted(event, types::PROCTITLE, "proctitle");
    let args = title.as_deref().map(split_args).filter(|a| !a.is_empty());
    // The kernel keeps at most 128 bytes of the command line.
    let truncated = args.is_some() && title.is_some_and(|t| t.len() >= PROCTITLE_MAX);
    (args, None, truncated)
}

struct Malformed;

/// The most of a command line the kernel puts in a PROCTITLE record.
const PROCTITLE_MAX: usize = 128;

fn untrusted<'e>(event: &'e Event, rtype: u16, field: &str) -> Option<Cow<'e, [u8]>> {
    event.record(rtype)?.get(field)?.untrusted()
}

#[cfg(test)]
mod tests;
