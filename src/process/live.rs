//! The host's /proc, read: `LiveProc` implements the process seam with
//! pidfd pins and sockfs attributes; the readers of btime and the boot id
//! serve the snapshot too. Parsing is `proc_text`'s.

use std::fs::File;
use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};

use super::proc_text;
use super::{Creds, ProcError, ProcInfo, ProcSource, Transport};

/// A pidfd (Linux 5.3+): it refers to one process for its whole life, and
/// polls readable once that process has exited.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: u32,
}

impl Pidfd {
    /// The pid the process had when it was pinned.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Reads /proc of the host.
pub struct LiveProc {
    boot_id: String,
    clock: Option<(u64, u64)>,
}

impl LiveProc {
    pub fn new() -> Self {
        let boot_id = match read_boot_id(Path::new("/proc")) {
            Ok(id) => id,
            Err(e) => {
                // Entity ids then repeat across reboots; say so once.
                log::warn!(
                    "cannot read the boot id ({e}): process.entity_id will use \"unknown-boot\""
                );
                "unknown-boot".into()
            }
        };
        let btime = read_btime(Path::new("/proc"));
        let ticks = procfs::ticks_per_second();
        LiveProc {
            boot_id,
            clock: btime.map(|b| (b, ticks)),
        }
    }
}

impl LiveProc {
    /// A copy of `fd` of `pid` (pidfd_getfd, Linux 5.6+). Taking it asks
    /// nothing of the file behind it; closing it may (a FUSE file's flush,
    /// a lingering socket's close when the process closed its own copy
    /// meanwhile), so every copy goes to the closer thread, and none is
    /// taken while that thread is stuck.
    fn dup_fd(&self, pid: u32, fd: u32) -> Result<OwnedFd, ProcError> {
        use std::os::fd::{AsRawFd, FromRawFd};
        if !closer().available() {
            return Err(ProcError::Unavailable(
                "the fd closer is stuck on a file of another process".into(),
            ));
        }
        let pin = self.pin(pid).ok_or(ProcError::Gone(pid))?;
        // SAFETY: pidfd_getfd with a pidfd we own, a target fd number and
        // no flags; returns a new fd (close-on-exec) or -1.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pin.fd.as_raw_fd(), fd, 0) };
        let Some(raw) = i32::try_from(got).ok().filter(|&fd| fd >= 0) else {
            return Err(io_error(pid, &io::Error::last_os_error()));
        };
        // SAFETY: a new fd from the kernel, ours alone. Closing a duplicate
        // leaves the process's connection open.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }
}

impl Default for LiveProc {
    fn default() -> Self {
        Self::new()
    }
}

/// Boot time (seconds since the epoch) from `proc_root`/stat, read line by
/// line: on a host with many CPUs and interrupts, the lines before btime
/// alone are tens of kilobytes.
pub fn read_btime(proc_root: &Path) -> Option<u64> {
    let f = File::open(proc_root.join("stat")).ok()?;
    io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| proc_text::btime_line(&l))
}

/// The boot id under `proc_root`.
pub fn read_boot_id(proc_root: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(proc_root.join("sys/kernel/random/boot_id"))?;
    Ok(proc_text::boot_id(&text).to_owned())
}

fn io_error(pid: u32, e: &io::Error) -> ProcError {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ESRCH) => ProcError::Gone(pid),
        Some(libc::EACCES | libc::EPERM) => ProcError::Denied(pid),
        _ => ProcError::Unavailable(e.to_string()),
    }
}

impl ProcSource for LiveProc {
    type Pin = Pidfd;

    fn start_time(&self, pid: u32) -> Result<u64, ProcError> {
        let text =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| io_error(pid, &e))?;
        proc_text::parse_stat(&text)
            .map(|s| s.starttime)
            .ok_or_else(|| ProcError::Unavailable(format!("/proc/{pid}/stat does not parse")))
    }

    fn socket_transport(
        &self,
        pid: u32,
        fd: u32,
        peer: SocketAddr,
    ) -> Result<Transport, ProcError> {
        // A copy of the fd, asked only what sockfs answers itself: a stat
        // or an xattr read through /proc/PID/fd/N would follow a file the
        // process swapped in into its filesystem, and a FUSE server can
        // hold such a call forever.
        let dup = self.dup_fd(pid, fd)?;
        let Some(protocol) = sock_opt(&dup, libc::SO_PROTOCOL) else {
            // ENOTSOCK: the fd holds a file now, not the socket recorded.
            closer().release(dup);
            return Err(ProcError::Unavailable(format!(
                "fd {fd} of {pid} is no longer a socket"
            )));
        };
        let domain = sock_opt(&dup, libc::SO_DOMAIN).unwrap_or(0);
        let inet = domain == libc::AF_INET || domain == libc::AF_INET6;
        let answer = if inet && (protocol == libc::IPPROTO_TCP || protocol == IPPROTO_MPTCP) {
            Ok(Transport::Tcp)
        } else if inet && same_peer(peer_of(&dup), peer) {
            Ok(Transport::Other(protocol_name(protocol)))
        } else {
            // A socket connected elsewhere, or none: another socket than
            // the one the record describes.
            Err(ProcError::Unavailable(format!(
                "fd {fd} of {pid} holds another socket than the one connected"
            )))
        };
        closer().release(dup);
        answer
    }

    fn boot_id(&self) -> String {
        self.boot_id.clone()
    }

    fn clock(&self) -> Option<(u64, u64)> {
        self.clock
    }

    fn pin(&self, pid: u32) -> Option<Pidfd> {
        use std::os::fd::FromRawFd;
        let raw_pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: the kernel just gave us this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Pidfd { fd, pid })
    }

    fn info(&self, pid: u32) -> Result<ProcInfo, ProcError> {
        let dir = format!("/proc/{pid}");
        let read = |f: &str| std::fs::read(format!("{dir}/{f}")).map_err(|e| io_error(pid, &e));
        let link = |f: &str| {
            std::fs::read_link(format!("{dir}/{f}"))
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        };
        let stat = read("stat")?;
        let stat = proc_text::parse_stat(&String::from_utf8_lossy(&stat))
            .ok_or_else(|| ProcError::Unavailable(format!("{dir}/stat does not parse")))?;
        let status = String::from_utf8_lossy(&read("status")?).into_owned();
        let creds = match (
            proc_text::status_uids(&status),
            proc_text::status_gids(&status),
        ) {
            (Some(u), Some(g)) => Some(Creds {
                uid: u.real,
                euid: u.effective,
                gid: g.real,
                egid: g.effective,
            }),
            _ => None,
        };
        Ok(ProcInfo {
            ppid: stat.ppid,
            start: stat.starttime,
            // A kernel thread has no executable and an empty command line.
            executable: link("exe"),
            // Read here, on the pipeline thread, on purpose: the command
            // line lies in the process's memory, and the kernel reads it
            // from anonymous memory only (FOLL_ANON: a page mapped from a
            // FUSE file is not faulted in) and without waiting on a
            // userfaultfd (a remote fault may not retry), so a process
            // cannot make this read wait on its own server.
            args: proc_text::split_args(&read("cmdline").unwrap_or_default()),
            working_directory: link("cwd"),
            creds,
            interactive: stat.tty_nr != 0,
        })
    }

    fn thread_group(&self, tid: u32) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
        proc_text::status_tgid(&status)
    }

    fn socket_local(&self, pid: u32, fd: u32) -> Option<SocketAddr> {
        let dup = self.dup_fd(pid, fd).ok()?;
        // getsockname; anything but an inet socket fails here.
        let local = sock_name(&dup, libc::getsockname);
        closer().release(dup);
        local
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        // Local accounts only: NSS (LDAP, sssd) would mean a network call
        // on the receive path.
        // Off the pipeline thread too: a FIFO or a FUSE file put in its
        // place would hold the open.
        let passwd = slow_reader().read("/etc/passwd".into()).ok()?.ok()?;
        let passwd = String::from_utf8_lossy(&passwd);
        proc_text::passwd_name(&passwd, uid).map(str::to_owned)
    }

    fn pids(&self) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_alive(&self, pin: &Pidfd) -> bool {
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

/// IPPROTO_MPTCP (linux/in.h), which libc does not name on every target.
const IPPROTO_MPTCP: i32 = 262;

/// An int socket option of `fd`; None when it is not a socket (ENOTSOCK).
fn sock_opt(fd: &OwnedFd, opt: i32) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of the length given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            std::ptr::addr_of_mut!(v).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(v)
}

/// getsockname or getpeername of an inet socket.
fn sock_name(
    fd: &OwnedFd,
    call: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
) -> Option<SocketAddr> {
    use std::os::fd::AsRawFd;
    // SAFETY: sockaddr_storage is plain old data; all zeroes is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of the length given.
    let rc = unsafe { call(fd.as_raw_fd(), std::ptr::addr_of_mut!(st).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match i32::from(st.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::addr_of!(st).cast::<libc::sockaddr_in>().read() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::addr_of!(st).cast::<libc::sockaddr_in6>().read() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))))
        }
        _ => None,
    }
}

fn peer_of(fd: &OwnedFd) -> Option<SocketAddr> {
    sock_name(fd, libc::getpeername)
}

/// Whether the socket's peer is the address the connect() named; an
/// IPv4-mapped IPv6 address is its IPv4 one.
fn same_peer(now: Option<SocketAddr>, recorded: SocketAddr) -> bool {
    now.is_some_and(|p| {
        p.port() == recorded.port() && p.ip().to_canonical() == recorded.ip().to_canonical()
    })
}

/// The protocol's name, as sockfs would give it for the usual ones.
fn protocol_name(protocol: i32) -> String {
    match protocol {
        libc::IPPROTO_UDP => "UDP".into(),
        libc::IPPROTO_UDPLITE => "UDPLITE".into(),
        libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 => "PING".into(),
        libc::IPPROTO_SCTP => "SCTP".into(),
        libc::IPPROTO_RAW => "RAW".into(),
        n => format!("protocol {n}"),
    }
}

/// Hands a copy of another process's fd to the closer thread: the triage
/// snapshot's copies too, which an attacker can swap for a FUSE file as
/// well as the pipeline's.
pub(crate) fn close_elsewhere(fd: OwnedFd) {
    closer().release(fd);
}

/// Whether a copy may be taken: none while the closer is stuck.
pub(crate) fn can_close_elsewhere() -> bool {
    closer().available()
}

/// Copies of other processes' fds wait here to be closed. Closing one can
/// block as long as its owner likes (a FUSE server that never answers the
/// flush), so it happens on a thread of its own, never on the pipeline's.
struct Closer {
    queue: mpsc::SyncSender<OwnedFd>,
    /// Copies handed over and not closed yet.
    pending: std::sync::Arc<AtomicUsize>,
}

/// Copies that may wait; past this the closer is taken to be stuck.
const CLOSER_QUEUE: usize = 64;

fn closer() -> &'static Closer {
    static CLOSER: OnceLock<Closer> = OnceLock::new();
    CLOSER.get_or_init(|| {
        let (queue, rx) = mpsc::sync_channel::<OwnedFd>(CLOSER_QUEUE);
        let pending = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&pending);
        let spawned = std::thread::Builder::new()
            .name("fd-closer".into())
            .spawn(move || {
                for fd in rx {
                    drop(fd);
                    count.fetch_sub(1, Ordering::Relaxed);
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the fd closer thread ({e}): socket fds of other processes will not be looked at");
            // Nothing closes what is queued: never take a copy.
            pending.store(usize::MAX / 2, Ordering::Relaxed);
        }
        Closer { queue, pending }
    })
}

impl Closer {
    fn available(&self) -> bool {
        self.pending.load(Ordering::Relaxed) < CLOSER_QUEUE
    }

    fn release(&self, fd: OwnedFd) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::TrySendError::Full(fd) | mpsc::TrySendError::Disconnected(fd)) =
            self.queue.try_send(fd)
        {
            // Full (the closer is stuck) or gone: an fd left open is a
            // leak bounded by `available`; blocking the caller is not.
            std::mem::forget(fd);
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads of files whose reading another process can hold up for as long
/// as it likes, on a thread of their own: the caller waits at most
/// SLOW_READ_WAIT, and while a read is stuck none is started.
struct SlowReader {
    jobs: mpsc::SyncSender<(String, mpsc::SyncSender<io::Result<Vec<u8>>>)>,
    /// A read is under way (set by the caller, cleared by the thread).
    busy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Far more than a read of /proc or /etc takes (microseconds), far less
/// than a pipeline can spare once.
const SLOW_READ_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

fn slow_reader() -> &'static SlowReader {
    static READER: OnceLock<SlowReader> = OnceLock::new();
    READER.get_or_init(SlowReader::start)
}

impl SlowReader {
    fn start() -> SlowReader {
        type Job = (String, mpsc::SyncSender<io::Result<Vec<u8>>>);
        let (jobs, rx) = mpsc::sync_channel::<Job>(1);
        let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::clone(&busy);
        let spawned = std::thread::Builder::new()
            .name("slow-reads".into())
            .spawn(move || {
                for (path, reply) in rx {
                    let got = std::fs::read(&path);
                    done.store(false, Ordering::Release);
                    let _ = reply.try_send(got);
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the slow-reads thread ({e}): user names will not be read");
            busy.store(true, Ordering::Release);
        }
        SlowReader { jobs, busy }
    }

    /// The file's bytes (or why not), or an error when the read did not
    /// finish in time or another is still stuck.
    fn read(&self, path: String) -> Result<io::Result<Vec<u8>>, ProcError> {
        let stuck = || ProcError::Unavailable(format!("reading {path} did not finish in time"));
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(stuck());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        if self.jobs.try_send((path.clone(), reply)).is_err() {
            self.busy.store(false, Ordering::Release);
            return Err(stuck());
        }
        match answer.recv_timeout(SLOW_READ_WAIT) {
            Ok(got) => Ok(got),
            Err(_) => {
                log::warn!("reading {path} did not finish in {SLOW_READ_WAIT:?}: no such read until it does");
                Err(stuck())
            }
        }
    }
}

/// The protocol name sockfs gives the socket at `path` (a /proc fd link):
/// "TCP", "UDPv6", ... ENODATA or EOPNOTSUPP when it is not a socket.
pub fn socket_protocol(path: &std::ffi::CStr) -> io::Result<String> {
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
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let name = buf.get(..n).unwrap_or(&buf);
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    Ok(String::from_utf8_lossy(name).into_owned())
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
        assert_eq!(pin.pid(), child.id());
        assert!(live.is_alive(&pin));
        let started = live.start_time(child.id()).expect("the child's start time");
        child.kill().expect("kill");
        // Reaped or not, the pinned process has exited.
        child.wait().expect("wait");
        assert!(!live.is_alive(&pin));
        // A pin taken now is not of the exited process: there is none, or
        // the pid went to a process that started later.
        if live.pin(child.id()).is_some() {
            assert_ne!(
                live.start_time(child.id()).ok(),
                Some(started),
                "a new pin of the pid is of the exited process"
            );
        }
    }

    /// This process stands in for the one that connected: its own fds are
    /// looked at through pidfd_getfd as another's would be.
    #[test]
    fn a_connects_fd_is_judged_by_what_it_holds_now() {
        use std::os::fd::AsRawFd;
        let live = LiveProc::new();
        let me = std::process::id();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let tcp = std::net::TcpStream::connect(to).unwrap();
        let tcp_fd = tcp.as_raw_fd() as u32;
        assert_eq!(live.socket_transport(me, tcp_fd, to), Ok(Transport::Tcp));
        assert_eq!(live.socket_local(me, tcp_fd), tcp.local_addr().ok());

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(to).unwrap();
        let udp_fd = udp.as_raw_fd() as u32;
        assert_eq!(
            live.socket_transport(me, udp_fd, to),
            Ok(Transport::Other("UDP".into()))
        );
        // The same socket, recorded connecting elsewhere: not the one the
        // record describes.
        let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(live.socket_transport(me, udp_fd, elsewhere).is_err());
        // A UDP socket dup2'd over a TCP connect's fd.
        // SAFETY: dup2 between two fds this test owns.
        assert!(unsafe { libc::dup2(udp.as_raw_fd(), tcp.as_raw_fd()) } >= 0);
        let other: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert!(live.socket_transport(me, tcp_fd, other).is_err());
        // /dev/null dup2'd over it.
        let null = File::open("/dev/null").unwrap();
        // SAFETY: as above.
        assert!(unsafe { libc::dup2(null.as_raw_fd(), tcp.as_raw_fd()) } >= 0);
        assert!(matches!(
            live.socket_transport(me, tcp_fd, to),
            Err(ProcError::Unavailable(_))
        ));
        assert_eq!(live.socket_local(me, tcp_fd), None);
        // A closed fd.
        drop(null);
        drop(tcp);
        assert!(live.socket_transport(me, tcp_fd, to).is_err());
        // The copies were all closed (by the closer thread).
        let closed = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            closer().pending.load(Ordering::Relaxed) == 0
        });
        assert!(closed);
    }

    /// A FIFO with no writer holds its open forever, as a root attacker's
    /// FIFO in place of /etc/passwd would.
    #[test]
    fn a_read_that_never_finishes_is_given_up_and_the_next_ones_refused() {
        let dir = std::env::temp_dir().join(format!("audetect-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("passwd");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = SlowReader::start();
        let path = fifo.display().to_string();
        assert!(matches!(
            reader.read(path.clone()),
            Err(ProcError::Unavailable(_))
        ));
        // Still stuck: refused without waiting for it.
        assert!(reader.read("/proc/self/stat".into()).is_err());
        // A writer comes and goes: the stuck read ends, reads work again.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        let back = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            matches!(reader.read("/proc/self/stat".into()), Ok(Ok(_)))
        });
        assert!(back);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_host_has_a_boot_id_and_a_boot_time() {
        let live = LiveProc::new();
        assert_ne!(live.boot_id(), "unknown-boot");
        let (btime, hz) = live.clock().expect("btime in /proc/stat");
        assert!(btime > 0 && hz > 0);
        let own = live.start_time(std::process::id()).expect("own stat");
        assert!(own > 0);
    }
}
