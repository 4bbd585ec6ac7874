//! The matched process's sockets and stdio: its fds, then each socket's
//! protocol, ends and state, from a copy of the fd or its namespace's tables.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use procfs::process::FDTarget;

use super::super::fddup::FdSource;
use super::super::{tables, Piece, Snapshot, Socket, Status, StdioTarget};
use super::{classify, describe, io_status, lossy, read_rel_text, Budget, Found, LiveSnapshotter};

impl LiveSnapshotter {
    /// fds 0-2 and every socket fd; then the socket tables of the process's
    /// network namespace, for the sockets found.
    pub(super) fn read_fds(&self, f: &Found, budget: &Budget, s: &mut Snapshot) {
        let c = &self.config;
        let fds = match f.dir.fd() {
            Ok(fds) => fds,
            Err(e) => {
                let status = classify(&e);
                let piece = Piece::new(
                    status,
                    format!("/proc/{}/fd: {}", f.dir.pid, describe(status, &e)),
                );
                for p in [&mut s.pieces.sockets, &mut s.pieces.stdio] {
                    if p.status != Status::Disabled {
                        *p = piece.clone();
                    }
                }
                return;
            }
        };
        let mut stdio = [
            StdioTarget::Closed,
            StdioTarget::Closed,
            StdioTarget::Closed,
        ];
        let mut sockets: Vec<Socket> = Vec::new();
        let mut problems = Vec::new();
        let mut unreadable = 0usize;
        // The listing is in fd order: stdio comes first, before any cut.
        for (n, info) in fds.enumerate() {
            if n % 64 == 63 && budget.spent() {
                problems.push("the time budget was spent while listing fds".to_owned());
                break;
            }
            let Ok(info) = info else {
                // Closed between the listing and the read, most likely.
                unreadable += 1;
                continue;
            };
            let Ok(fd) = u32::try_from(info.fd) else {
                continue;
            };
            if let Some(slot) = stdio.get_mut(fd as usize) {
                *slot = stdio_target(&info.target);
            }
            if let FDTarget::Socket(inode) = info.target {
                if !c.sockets && fd > 2 {
                    continue;
                }
                match sockets.iter_mut().find(|s| s.inode == inode) {
                    Some(s) => s.fds.push(fd),
                    None => sockets.push(Socket {
                        fds: vec![fd],
                        ..Socket::bare(inode)
                    }),
                }
            }
        }
        for sock in &mut sockets {
            sock.fds.sort_unstable();
        }
        if unreadable > 0 {
            problems.push(format!("{unreadable} fd(s) closed while being read"));
        }
        s.sockets_total = if c.sockets { sockets.len() } else { 0 };
        // stdio's sockets first, then by fd, within max_sockets (stdio's
        // always kept): the budget is not spent on sockets that would be
        // dropped anyway.
        sockets.sort_by_key(|s| (s.fds.iter().all(|&fd| fd > 2), s.fds[0]));
        let on_stdio = sockets
            .iter()
            .filter(|k| k.fds.iter().any(|&fd| fd <= 2))
            .count();
        if c.sockets && sockets.len() > c.max_sockets {
            s.dropped.push(format!(
                "sockets: {} of {} listed (max_sockets)",
                c.max_sockets,
                sockets.len()
            ));
        }
        sockets.truncate(c.max_sockets.max(on_stdio));
        let tables = self.describe_sockets(f, &mut sockets, budget);
        let mut stdio_has_socket = false;
        for slot in &mut stdio {
            if let StdioTarget::Socket(bare) = slot {
                stdio_has_socket = true;
                if let Some(found) = sockets.iter().find(|k| k.inode == bare.inode) {
                    **bare = found.clone();
                }
            }
        }
        sockets.truncate(c.max_sockets);
        if c.sockets {
            s.sockets = sockets;
        }
        if c.stdio {
            s.stdio = Some(stdio);
            // What a stdio socket is connected to comes from the tables.
            s.pieces.stdio = match &tables {
                Some(p) if stdio_has_socket => p.clone(),
                _ => Piece::ok(),
            };
        }
        if c.sockets {
            if let Some(p) = &tables {
                problems.insert(0, p.reason.clone().unwrap_or_default());
            }
            let status = match &tables {
                Some(p) => p.status,
                None if problems.is_empty() => Status::Ok,
                None => Status::Partial,
            };
            s.pieces.sockets = if problems.is_empty() {
                Piece::ok()
            } else {
                Piece::new(status, problems.join("; "))
            };
        }
    }

    /// Fills in each socket's protocol and ends from its namespace's tables.
    /// Returns what went wrong, if anything.
    fn describe_sockets(
        &self,
        f: &Found,
        sockets: &mut [Socket],
        budget: &Budget,
    ) -> Option<Piece> {
        if sockets.is_empty() {
            return None;
        }
        // On the host itself, each socket is looked at through a copy of the
        // process's fd. A pidfd names whoever holds the pid when it is
        // opened: it is this process only if the handle that was checked
        // against the entity id still reads afterwards.
        if self.paths.proc == Path::new("/proc") {
            if let Some(src) = u32::try_from(f.dir.pid).ok().and_then(FdSource::open) {
                if read_rel_text(&f.dir, "stat").is_ok() {
                    for sock in sockets.iter_mut() {
                        // What is left undescribed, the tables below mark.
                        if budget.spent() {
                            break;
                        }
                        if let Some(&fd) = sock.fds.first() {
                            src.describe(fd, sock);
                        }
                    }
                }
            }
        }
        // The rest from the socket tables. sockfs names each socket's
        // protocol (one getxattr): only the tables that hold ours need
        // reading. Unnamed ones (a fake /proc) send us through all of them.
        let mut wanted: HashSet<&'static str> = HashSet::new();
        // Through the checked handle: a pid reused since cannot be read.
        let fd_dir = f.dir.open_relative("fd").ok();
        for sock in sockets.iter_mut().filter(|s| s.transport == "unknown") {
            if budget.spent() {
                return Some(budget.piece("naming the sockets' protocols"));
            }
            let proto = match (&fd_dir, sock.fds.first()) {
                (Some(dir), Some(&fd)) => sock_proto(dir, fd, sock.inode),
                _ => None,
            };
            let table = match proto.as_deref() {
                Some("TCP") => Some("tcp"),
                Some("TCPv6") => Some("tcp6"),
                Some("UDP") => Some("udp"),
                Some("UDPv6") => Some("udp6"),
                Some("UNIX") => Some("unix"),
                Some(other) => {
                    sock.transport = other.to_ascii_lowercase();
                    None
                }
                None => {
                    wanted.extend(["tcp", "tcp6", "udp", "udp6", "unix"]);
                    None
                }
            };
            wanted.extend(table);
        }
        let mut left: HashSet<u64> = sockets
            .iter()
            .filter(|s| s.transport == "unknown")
            .map(|s| s.inode)
            .collect();
        for table in ["tcp", "tcp6", "udp", "udp6", "unix"] {
            if left.is_empty() {
                break;
            }
            if !wanted.contains(table) {
                continue;
            }
            if budget.spent() {
                return Some(budget.piece("reading the socket tables"));
            }
            let file = match f.dir.open_relative(format!("net/{table}")) {
                Ok(file) => file,
                Err(e) => {
                    let status = classify(&e);
                    return Some(Piece::new(
                        if status == Status::Gone {
                            Status::Gone
                        } else {
                            Status::Partial
                        },
                        format!("net/{table}: {}", describe(status, &e)),
                    ));
                }
            };
            let unix = table == "unix";
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            let mut line = String::new();
            let mut n = 0u64;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let status = io_status(&e);
                        return Some(Piece::new(
                            Status::Partial,
                            format!("net/{table}: {}", describe(status, &e)),
                        ));
                    }
                }
                n += 1;
                if n % 256 == 0 && budget.spent() {
                    return Some(budget.piece(&format!("reading net/{table}")));
                }
                let Some(inode) = tables::inode_of(&line, unix) else {
                    continue;
                };
                if !left.remove(&inode) {
                    continue;
                }
                let Some(sock) = sockets.iter_mut().find(|s| s.inode == inode) else {
                    continue;
                };
                if unix {
                    if let Some(row) = tables::parse_unix(&line) {
                        sock.transport = "unix".into();
                        sock.state = Some(row.state);
                        sock.path = row.path;
                    }
                } else if let Some(row) = tables::parse_inet(&line) {
                    let udp = table.starts_with("udp");
                    sock.transport = if udp { "udp" } else { "tcp" }.into();
                    sock.ip_version = Some(if table.ends_with('6') { "ipv6" } else { "ipv4" });
                    sock.state = Some(tables::inet_state(row.state, udp));
                    sock.local = Some(row.local);
                    sock.remote = Some(row.remote);
                }
                if left.is_empty() {
                    break;
                }
            }
        }
        None
    }
}

/// What an fd of stdio refers to.
fn stdio_target(t: &FDTarget) -> StdioTarget {
    match t {
        FDTarget::Socket(inode) => StdioTarget::Socket(Box::new(Socket::bare(*inode))),
        FDTarget::Pipe(inode) => StdioTarget::Pipe(*inode),
        FDTarget::Path(p) => {
            let s = lossy(p);
            if s.starts_with("/dev/pts/") || s.starts_with("/dev/tty") || s == "/dev/console" {
                StdioTarget::Tty(s)
            } else if s.starts_with("/dev/") {
                StdioTarget::Device(s)
            } else {
                StdioTarget::File(s)
            }
        }
        FDTarget::AnonInode(s) => StdioTarget::Other(format!("anon_inode:{s}")),
        FDTarget::MemFD(s) => StdioTarget::Other(format!("memfd:{s}")),
        FDTarget::Net(i) => StdioTarget::Other(format!("net:[{i}]")),
        FDTarget::Other(s, i) => StdioTarget::Other(format!("{s}:[{i}]")),
        FDTarget::Unknown(a, b) => StdioTarget::Other(format!("{a}:{b}")),
    }
}

/// The kernel's name for the protocol of a socket fd ("TCP", "UDPv6",
/// "UNIX", "NETLINK"...), from sockfs's attribute. The fd is reached with
/// O_PATH, which opens nothing (a FIFO or a FUSE file the process put in
/// its place meanwhile would block an open or a getxattr), and must still
/// be the socket listed.
fn sock_proto(fd_dir: &File, fd: u32, inode: u64) -> Option<String> {
    let name = CString::new(fd.to_string()).ok()?;
    // SAFETY: a valid directory fd and NUL-terminated name; returns a new
    // fd or -1.
    let raw = unsafe {
        libc::openat(
            fd_dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: a new fd from the kernel, ours alone; closed on drop.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    // Cached attributes only (AT_STATX_DONT_SYNC): fstat would ask a FUSE
    // file's server, which could stall.
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: a valid fd, an empty NUL-terminated path with AT_EMPTY_PATH,
    // and a buffer of the struct's size.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE | libc::STATX_INO,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialized, then written by the kernel.
    let stx = unsafe { stx.assume_init() };
    let socket = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFSOCK;
    if !socket || stx.stx_ino != inode {
        return None;
    }
    // getxattr does not take an O_PATH fd; our own fd's link names the
    // same socket, which nothing can swap.
    let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    crate::process::live::socket_protocol(&path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// This very process's fd directory stands in for the target's.
    #[test]
    fn a_socket_is_named_only_while_its_fd_still_holds_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd() as u32;
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let dir = File::open("/proc/self/fd").unwrap();
        assert_eq!(sock_proto(&dir, fd, inode).as_deref(), Some("TCP"));
        assert_eq!(sock_proto(&dir, fd, inode + 1), None, "another socket");
        let file = File::open("/proc/self/stat").unwrap();
        let not_socket = file.as_raw_fd() as u32;
        let ino = file.metadata().unwrap().ino();
        assert_eq!(sock_proto(&dir, not_socket, ino), None, "not a socket");
    }
}
