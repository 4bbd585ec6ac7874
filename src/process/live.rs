//! The host's /proc, read: `LiveProc` implements the process seam with
//! pidfd pins and sockfs attributes; the readers of btime and the boot id
//! serve the snapshot too. Parsing is `proc_text`'s.

use std::fs::File;
use std::io::{self, BufRead};
use std::os::fd::OwnedFd;
use std::path::Path;

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
                    Some(libc::ENODATA | libc::EOPNOTSUPP) => {
                        Ok(Transport::Other("not a socket".into()))
                    }
                    _ => Err(io_error(pid, &e)),
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

    fn socket_local(&self, pid: u32, fd: u32) -> Option<std::net::SocketAddr> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let pin = self.pin(pid)?;
        // SAFETY: pidfd_getfd with a pidfd we own, a target fd number and
        // no flags; returns a new fd (close-on-exec) or -1.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pin.fd.as_raw_fd(), fd, 0) };
        let raw = i32::try_from(got).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: a new fd from the kernel, ours alone. Closing a duplicate
        // leaves the process's connection open.
        let dup = unsafe { OwnedFd::from_raw_fd(raw) };
        // getsockname; anything but an inet socket fails here.
        std::net::TcpStream::from(dup).local_addr().ok()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        // Local accounts only: NSS (LDAP, sssd) would mean a network call
        // on the receive path.
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
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
