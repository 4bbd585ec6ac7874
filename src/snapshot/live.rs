//! The snapshot's look at a live host: /proc (or a fake root in tests),
//! /etc/passwd and /etc/group for names, utmp for logins. Every read is
//! bounded, the whole look has a time budget, and every failure is kept as
//! the status of its piece instead of ending the look.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procfs::process::Process;
use procfs::ProcError;
use sha2::{Digest, Sha256};

use super::{
    utmp, Id, Login, OnHost, Piece, Pieces, ProcessFacts, Snapshot, SnapshotSettings, Snapshotter,
    Status, Target,
};
use crate::process::live::read_btime;
use crate::process::proc_text::{parse_stat, split_args, status_gids, status_uids, Stat};
use crate::timefmt;

mod ancestry;
mod sockets;

/// The target's command line is read up to this; ancestors' up to the next.
const TARGET_ARGS_MAX: usize = 32 * 1024;
const ANCESTOR_ARGS_MAX: usize = 2048;
/// Small files (stat, status, cgroup, loginuid...) are read up to this.
const SMALL_FILE_MAX: usize = 8 * 1024;
/// /etc/passwd, /etc/group and utmp are read up to this.
const HOST_FILE_MAX: usize = 4 << 20;
/// Hashes kept, by file identity, so an executable seen again costs nothing.
const HASH_CACHE: usize = 256;
const HASH_CHUNK: usize = 64 * 1024;
/// The audit "unset" id (loginuid, sessionid).
const UNSET: u32 = u32::MAX;

/// Where the host's facts are read from; tests point these at a fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub proc: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
    pub utmp: PathBuf,
}

impl Paths {
    pub fn host() -> Paths {
        Paths {
            proc: "/proc".into(),
            passwd: "/etc/passwd".into(),
            group: "/etc/group".into(),
            utmp: "/run/utmp".into(),
        }
    }
}

/// Identifies a file's content for the hash cache: inode, size and both
/// change times, so a binary rewritten in place is hashed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Snapshots of live processes.
pub struct LiveSnapshotter {
    paths: Paths,
    config: SnapshotSettings,
    /// Boot time, seconds since the epoch, and clock ticks per second: to
    /// turn start times into dates.
    btime: Option<u64>,
    hz: u64,
    hashes: HashMap<FileKey, String>,
    /// Hashes the time budget cut short, resumed where they stopped by the
    /// next snapshot of the same file: a large executable is read once in
    /// all, over several alerts, not started again each time.
    partial: HashMap<FileKey, (Sha256, u64)>,
}

/// Hashes kept half done at once.
const PARTIAL_HASHES: usize = 16;

impl LiveSnapshotter {
    pub fn new(paths: Paths, config: SnapshotSettings) -> Self {
        let btime = read_btime(&paths.proc);
        LiveSnapshotter {
            paths,
            config,
            btime,
            hz: procfs::ticks_per_second().max(1),
            hashes: HashMap::new(),
            partial: HashMap::new(),
        }
    }

    fn start_date(&self, ticks: u64) -> Option<String> {
        let btime = self.btime?;
        let sec = btime.saturating_add(ticks / self.hz);
        let millis = (ticks % self.hz) * 1000 / self.hz;
        Some(timefmt::rfc3339_millis(sec, millis as u32))
    }
}

/// The deadline of one snapshot.
struct Budget {
    deadline: Instant,
    budget: Duration,
}

impl Budget {
    fn spent(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn piece(&self, what: &str) -> Piece {
        Piece::new(
            Status::TimeBudget,
            format!(
                "{what}: the time budget ({} us) was spent",
                self.budget.as_micros()
            ),
        )
    }
}

/// What a failed read means for the piece it belongs to.
fn classify(e: &ProcError) -> Status {
    match e {
        ProcError::PermissionDenied(_) => Status::Denied,
        ProcError::NotFound(_) => Status::Gone,
        ProcError::Io(e, _) => io_status(e),
        _ => Status::Unavailable,
    }
}

fn io_status(e: &io::Error) -> Status {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ESRCH) => Status::Gone,
        Some(libc::EACCES | libc::EPERM) => Status::Denied,
        _ => Status::Unavailable,
    }
}

fn describe(status: Status, e: &dyn std::fmt::Display) -> String {
    match status {
        Status::Gone => "no longer there (the process exited)".into(),
        Status::Denied => format!("permission denied ({e})"),
        _ => e.to_string(),
    }
}

/// Reads at most `max` bytes; true when there was more.
fn read_bounded(mut f: impl Read, max: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    (&mut f).take(max as u64 + 1).read_to_end(&mut buf)?;
    let more = buf.len() > max;
    buf.truncate(max);
    Ok((buf, more))
}

/// A process's file, relative to its /proc directory handle.
fn read_rel(dir: &Process, name: &str, max: usize) -> Result<(Vec<u8>, bool), Status> {
    let f = dir.open_relative(name).map_err(|e| classify(&e))?;
    read_bounded(f, max).map_err(|e| io_status(&e))
}

fn read_rel_text(dir: &Process, name: &str) -> Result<String, Status> {
    read_rel(dir, name, SMALL_FILE_MAX).map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// "0::/system.slice/x.service" → the v2 path; with v1 hierarchies only,
/// the first line's.
pub(super) fn cgroup_path(text: &str) -> Option<String> {
    let path_of = |l: &str| l.splitn(3, ':').nth(2).map(str::to_owned);
    text.lines()
        .find(|l| l.starts_with("0::"))
        .and_then(path_of)
        .or_else(|| text.lines().next().and_then(path_of))
        .filter(|p| !p.is_empty())
}

/// The 64-hex-digit id that container runtimes put in cgroup names
/// (docker-ID.scope, /docker/ID, cri-containerd-ID.scope, crio-ID,
/// libpod-ID), nearest the leaf.
pub(super) fn container_id(cgroup: &str) -> Option<String> {
    for segment in cgroup.rsplit('/') {
        let b = segment.as_bytes();
        let mut run = 0;
        for (i, c) in b.iter().enumerate() {
            run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
            let ends = b.get(i + 1).is_none_or(|n| !n.is_ascii_hexdigit());
            if run == 64 && ends {
                return Some(segment[i + 1 - 64..=i].to_ascii_lowercase());
            }
        }
    }
    None
}

/// Names from /etc/passwd or /etc/group, read once per snapshot and only if
/// asked. Users known only to NSS services (LDAP, sssd) keep their ids only:
/// asking those would put the network on the alert path.
struct Names {
    path: PathBuf,
    map: Option<HashMap<u32, String>>,
}

impl Names {
    fn new(path: &Path) -> Names {
        Names {
            path: path.to_owned(),
            map: None,
        }
    }

    fn get(&mut self, id: u32) -> Option<String> {
        let path = &self.path;
        self.map
            .get_or_insert_with(|| {
                File::open(path)
                    .and_then(|f| read_bounded(f, HOST_FILE_MAX))
                    .map(|(b, _)| parse_id_file(&String::from_utf8_lossy(&b)))
                    .unwrap_or_default()
            })
            .get(&id)
            .cloned()
    }

    fn id(&mut self, id: u32) -> Id {
        Id {
            id,
            name: self.get(id),
        }
    }
}

/// `name:x:ID:...` lines; the first name of an id wins, as getpwuid's would.
pub(super) fn parse_id_file(text: &str) -> HashMap<u32, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            map.entry(id).or_insert_with(|| name.to_owned());
        }
    }
    map
}

/// The process the snapshot is about, once found and verified.
struct Found {
    dir: Process,
    stat: Stat,
    zombie: bool,
}

/// Why the process of the target could not be looked at.
struct NotFound {
    status: Status,
    reason: String,
}

impl Snapshotter for LiveSnapshotter {
    fn take(&mut self, target: &Target) -> Snapshot {
        let started = Instant::now();
        let budget = Budget {
            deadline: started + self.config.time_budget,
            budget: self.config.time_budget,
        };
        let mut users = Names::new(&self.paths.passwd);
        let mut groups = Names::new(&self.paths.group);
        let c = self.config.clone();
        let pending = |on: bool| {
            if on {
                Piece::ok()
            } else {
                Piece::disabled()
            }
        };
        let mut s = Snapshot::blank(
            Pieces {
                process: pending(c.process),
                sockets: pending(c.sockets),
                stdio: pending(c.stdio),
                ancestry: pending(c.ancestry),
                hash: pending(c.hash),
                sessions: pending(c.sessions),
            },
            ProcessFacts {
                pid: target.pid,
                entity_id: Some(target.entity.to_string()),
                ..ProcessFacts::default()
            },
        );
        let boot_id = target.entity.boot_id.clone();
        let found = self.find(target);
        let mut exe_file = None;
        match &found {
            Ok(f) => {
                if c.process {
                    s.pieces.process =
                        self.read_process(f, &mut s.process, &mut users, &mut groups);
                } else {
                    // The ECS session fields below need these even so.
                    s.process.ppid = Some(f.stat.ppid);
                }
                if f.zombie {
                    let why = format!(
                        "process {} has exited (a zombie its parent {} has not reaped)",
                        target.pid, f.stat.ppid
                    );
                    for p in [
                        &mut s.pieces.process,
                        &mut s.pieces.sockets,
                        &mut s.pieces.stdio,
                        &mut s.pieces.hash,
                    ] {
                        if p.status != Status::Disabled {
                            *p = Piece::new(Status::Gone, why.clone());
                        }
                    }
                } else {
                    if c.hash {
                        exe_file = Some(f.dir.open_relative("exe"));
                    }
                    if c.sockets || c.stdio {
                        self.read_fds(f, &budget, &mut s);
                    }
                }
            }
            Err(nf) => {
                for p in [
                    &mut s.pieces.process,
                    &mut s.pieces.sockets,
                    &mut s.pieces.stdio,
                    &mut s.pieces.hash,
                ] {
                    if p.status != Status::Disabled {
                        *p = Piece::new(nf.status, nf.reason.clone());
                    }
                }
            }
        }
        // What the audit record carried stands in for what /proc no longer shows.
        if c.process {
            audit_fallbacks(target, &mut s.process);
        }
        if c.ancestry {
            self.ancestry_and_leaders(target, found.as_ref().ok(), &boot_id, &budget, &mut s);
        }
        if let Some(file) = exe_file {
            s.pieces.hash = if budget.spent() {
                budget.piece("not started")
            } else {
                self.hash(file, &budget, &mut s.process)
            };
        }
        if c.sessions {
            s.pieces.sessions = if budget.spent() {
                budget.piece("not started")
            } else {
                self.sessions(&mut s)
            };
        }
        s.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        s
    }
}

impl LiveSnapshotter {
    /// Opens the target's /proc directory and checks that it is the process
    /// of the entity id. Everything read later goes through that directory
    /// handle: once the process is reaped the handle fails every read, even
    /// if its pid is given to another process meanwhile.
    fn find(&self, target: &Target) -> Result<Found, NotFound> {
        let pid = target.pid;
        let Some(start) = target.start_ticks() else {
            return Err(NotFound {
                status: Status::Gone,
                reason: format!(
                    "process {pid} had exited before audetect first looked at it (entity id {} has no start time)",
                    target.entity
                ),
            });
        };
        let gone = || NotFound {
            status: Status::Gone,
            reason: format!("process {pid} had exited when the snapshot was taken"),
        };
        let dir = Process::new_with_root(self.paths.proc.join(pid.to_string())).map_err(|e| {
            match classify(&e) {
                Status::Gone => gone(),
                status => NotFound {
                    status,
                    reason: format!("/proc/{pid}: {}", describe(status, &e)),
                },
            }
        })?;
        let stat = read_rel_text(&dir, "stat")
            .ok()
            .and_then(|t| parse_stat(&t))
            .ok_or_else(gone)?;
        if stat.starttime != start {
            return Err(NotFound {
                status: Status::Gone,
                reason: format!(
                    "process {pid} had exited: its pid now belongs to a process started at tick {}, not {start}",
                    stat.starttime
                ),
            });
        }
        Ok(Found {
            dir,
            zombie: matches!(stat.state, 'Z' | 'X' | 'x'),
            stat,
        })
    }

    fn read_process(
        &self,
        f: &Found,
        p: &mut ProcessFacts,
        users: &mut Names,
        groups: &mut Names,
    ) -> Piece {
        let mut missing: Vec<String> = Vec::new();
        let mut gone = false;
        let mut note = |what: &str, status: Status, detail: &dyn std::fmt::Display| {
            gone |= status == Status::Gone;
            missing.push(format!("{what}: {}", describe(status, detail)));
        };
        let st = f.stat;
        p.start = self.start_date(st.starttime);
        p.ppid = Some(st.ppid);
        p.process_group_id = Some(st.pgrp);
        p.session_id = Some(st.session);
        p.tty = Some((
            (st.tty_nr >> 8) & 0xfff,
            (st.tty_nr & 0xff) | ((st.tty_nr >> 12) & 0xfff00),
        ));
        p.state = Some(st.state);
        match read_rel_text(&f.dir, "status") {
            Ok(text) => {
                if let Some(uids) = status_uids(&text) {
                    p.real_user = Some(users.id(uids.real));
                    p.user = Some(users.id(uids.effective));
                }
                if let Some(gids) = status_gids(&text) {
                    p.real_group = Some(groups.id(gids.real));
                    p.group = Some(groups.id(gids.effective));
                }
            }
            Err(status) => note("user and group", status, &"status"),
        }
        match read_rel(&f.dir, "cmdline", TARGET_ARGS_MAX) {
            Ok((bytes, more)) if !bytes.is_empty() => {
                let args = split_args(&bytes);
                // Past the bound the real count is unknown.
                p.args_count = (!more).then_some(args.len());
                p.args_truncated = more;
                p.args = Some(args);
            }
            Ok(_) => {}
            Err(status) => note("args", status, &"cmdline"),
        }
        match f.dir.exe() {
            Ok(exe) => p.executable = Some(lossy(&exe)),
            Err(e) => note("executable", classify(&e), &e),
        }
        match f.dir.cwd() {
            Ok(cwd) => p.working_directory = Some(lossy(&cwd)),
            Err(e) => note("working_directory", classify(&e), &e),
        }
        let id_file = |name: &str| -> Result<u32, Status> {
            read_rel_text(&f.dir, name)?
                .trim()
                .parse()
                .map_err(|_| Status::Unavailable)
        };
        match id_file("loginuid") {
            Ok(UNSET) => p.auid = Some(None),
            Ok(uid) => p.auid = Some(Some(users.id(uid))),
            Err(status) => note("auid", status, &"loginuid"),
        }
        match id_file("sessionid") {
            Ok(UNSET) => p.audit_session_id = Some(None),
            Ok(ses) => p.audit_session_id = Some(Some(ses)),
            Err(status) => note("audit_session_id", status, &"sessionid"),
        }
        match read_rel_text(&f.dir, "cgroup") {
            Ok(text) => {
                p.cgroup = cgroup_path(&text);
                p.container_id = p.cgroup.as_deref().and_then(container_id);
            }
            Err(status) => note("cgroup", status, &"cgroup"),
        }
        match (missing.is_empty(), gone) {
            (true, _) => Piece::ok(),
            (false, true) => Piece::new(
                Status::Gone,
                format!(
                    "the process exited while being read: {}",
                    missing.join("; ")
                ),
            ),
            (false, false) => Piece::new(Status::Partial, missing.join("; ")),
        }
    }

    /// SHA-256 of the executable, read through /proc/PID/exe: the file the
    /// process runs, even where its path is hidden from audetect
    /// (ProtectHome, PrivateTmp, another mount namespace) or deleted.
    fn hash(
        &mut self,
        file: Result<File, ProcError>,
        budget: &Budget,
        p: &mut ProcessFacts,
    ) -> Piece {
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let status = classify(&e);
                return Piece::new(status, format!("exe: {}", describe(status, &e)));
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Piece::new(io_status(&e), format!("exe: {e}")),
        };
        p.on_host = p
            .executable
            .as_deref()
            .and_then(|exe| on_host(exe, meta.dev(), meta.ino()));
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        if let Some(h) = self.hashes.get(&key) {
            p.sha256 = Some(h.clone());
            return Piece::ok();
        }
        let max = self.config.hash_max_bytes;
        if meta.size() > max {
            return Piece::new(
                Status::TooLarge,
                format!(
                    "the executable is {} bytes, over hash_max_bytes ({max})",
                    meta.size()
                ),
            );
        }
        let (mut hasher, mut done) = self
            .partial
            .remove(&key)
            .unwrap_or_else(|| (Sha256::new(), 0));
        let mut file = file;
        if done > 0 && file.seek(io::SeekFrom::Start(done)).is_err() {
            (hasher, done) = (Sha256::new(), 0);
        }
        let mut reader = file.take(max.saturating_sub(done));
        let mut buf = vec![0u8; HASH_CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    done += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Piece::new(io_status(&e), format!("exe: {e}")),
            }
            if done < meta.size() && budget.spent() {
                if self.partial.len() >= PARTIAL_HASHES {
                    self.partial.clear();
                }
                self.partial.insert(key, (hasher, done));
                return budget.piece(&format!(
                    "hashed {done} of {} bytes; the next snapshot of this executable goes on from there",
                    meta.size()
                ));
            }
        }
        // Hashed is what was read: a file changed meanwhile (or cut short)
        // must neither be reported nor cached under the key taken before.
        let after = reader.get_ref().metadata();
        let unchanged = after.is_ok_and(|m| {
            (
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ) == (key.size, key.mtime.0, key.mtime.1, key.ctime.0, key.ctime.1)
        });
        if !unchanged || done != meta.size() {
            return Piece::new(
                Status::Unavailable,
                format!(
                    "exe: the file changed while being hashed ({done} of {} bytes read)",
                    meta.size()
                ),
            );
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if self.hashes.len() >= HASH_CACHE {
            self.hashes.clear();
        }
        self.hashes.insert(key, hex.clone());
        p.sha256 = Some(hex);
        Piece::ok()
    }

    /// The login sessions of utmp, newest first, within max_sessions.
    fn sessions(&self, s: &mut Snapshot) -> Piece {
        let path = &self.paths.utmp;
        let (bytes, more) = match File::open(path).and_then(|f| read_bounded(f, HOST_FILE_MAX)) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Piece::new(
                    Status::Unavailable,
                    format!(
                        "{} does not exist: nothing on this host records logins there",
                        path.display()
                    ),
                )
            }
            Err(e) => return Piece::new(io_status(&e), format!("{}: {e}", path.display())),
        };
        let mut logins: Vec<(u64, Login)> = utmp::parse(&bytes)
            .filter(|e| e.kind == utmp::USER_PROCESS)
            .map(|e| {
                (
                    e.sec,
                    Login {
                        user: e.user,
                        tty: e.line,
                        host: e.host,
                        pid: u32::try_from(e.pid).unwrap_or(0),
                        login: timefmt::rfc3339_millis(e.sec, 0),
                    },
                )
            })
            .collect();
        logins.sort_by_key(|l| std::cmp::Reverse(l.0));
        s.sessions_total = logins.len();
        if logins.len() > self.config.max_sessions {
            s.dropped.push(format!(
                "sessions: {} of {} listed (max_sessions)",
                self.config.max_sessions,
                logins.len()
            ));
            logins.truncate(self.config.max_sessions);
        }
        s.sessions = logins.into_iter().map(|(_, l)| l).collect();
        if more {
            return Piece::new(
                Status::Partial,
                format!(
                    "{} is over {HOST_FILE_MAX} bytes: only the logins of its first {HOST_FILE_MAX} were read",
                    path.display()
                ),
            );
        }
        Piece::ok()
    }
}

/// The audit record's PROCTITLE and CWD, where /proc gave nothing.
fn audit_fallbacks(target: &Target, p: &mut ProcessFacts) {
    if p.args.is_none() {
        if let Some(args) = &target.args {
            p.args_count = None;
            p.args_truncated = target.args_truncated;
            p.args = Some(args.clone());
            p.from_audit.push("args");
        }
    }
    if p.working_directory.is_none() {
        if let Some(cwd) = &target.working_directory {
            p.working_directory = Some(cwd.clone());
            p.from_audit.push("working_directory");
        }
    }
}

/// Whether the host's file at `exe` is the one with (`dev`, `ino`): looked
/// up under /proc/1/root, the host's mount namespace, since audetect's own
/// may be private (the unit's PrivateTmp, ProtectHome). Where init's root
/// is closed to it (a sandbox whose init is not the host's), its own
/// namespace answers, and a path missing there says nothing: it may only
/// be hidden from audetect. None for a deleted executable, which no path
/// names any more.
fn on_host(exe: &str, dev: u64, ino: u64) -> Option<OnHost> {
    if exe.ends_with(" (deleted)") || !exe.starts_with('/') {
        return None;
    }
    let host = Path::new("/proc/1/root").join(exe.trim_start_matches('/'));
    let (meta, own_namespace) = match std::fs::metadata(&host) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (std::fs::metadata(exe), true)
        }
        other => (other, false),
    };
    match meta {
        Ok(m) if (m.dev(), m.ino()) == (dev, ino) => Some(OnHost::Same),
        Ok(_) => Some(OnHost::Differs),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !own_namespace => {
            Some(OnHost::Absent)
        }
        Err(_) => None,
    }
}
