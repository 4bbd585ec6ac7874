//! A socket described through a duplicate of the process's own fd
//! (pidfd_getfd, Linux 5.6+): its addresses and state in a few syscalls,
//! where /proc/PID/net/tcp walks the whole socket hash of the namespace
//! (over a millisecond on an idle host).

use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use super::{tables, Endpoint, Socket};

/// A hold on one process, to copy its fds from.
pub struct FdSource {
    pidfd: OwnedFd,
}

impl FdSource {
    /// None where the kernel, a seccomp filter or an LSM refuses it; the
    /// socket tables are the way then. The caller checks afterwards that
    /// the process it meant is still the one alive (a pidfd names whatever
    /// holds the pid when it is opened).
    pub fn open(pid: u32) -> Option<FdSource> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags, returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: the kernel just gave us this fd; nothing else owns it.
        Some(FdSource {
            pidfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Fills in `sock` (protocol, both ends, state) from the process's `fd`;
    /// false if that could not be done, or if `fd` is no longer the socket
    /// `sock.inode` that was listed (the process closed or replaced it).
    pub fn describe(&self, fd: u32, sock: &mut Socket) -> bool {
        if !crate::process::live::can_close_elsewhere() {
            return false;
        }
        // SAFETY: pidfd_getfd with a pidfd we own, a target fd number and no
        // flags; returns a new fd (close-on-exec) or -1.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.pidfd.as_raw_fd(), fd, 0) };
        let Some(raw) = RawFd::try_from(got).ok().filter(|&fd| fd >= 0) else {
            return false;
        };
        // SAFETY: a new fd from the kernel, ours alone. The process may
        // have swapped the socket for a file since it was listed, whose
        // close can block (a FUSE flush): it is closed on the closer thread.
        let dup = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        // A socket first (getsockopt fails on anything else without asking
        // its file system, which fstat of a FUSE file would, and its server
        // could stall), then the very one listed.
        let same = getsockopt_int(dup.as_raw_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN).is_some()
            && dup.metadata().is_ok_and(|m| m.ino() == sock.inode);
        let described = same && describe_socket(dup.as_raw_fd(), sock);
        crate::process::live::close_elsewhere(OwnedFd::from(dup));
        described
    }
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(v)
}

/// The address of one end; None if the call fails (ENOTCONN for a peer).
fn address(fd: RawFd, peer: bool) -> Option<(libc::sockaddr_storage, libc::socklen_t)> {
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss and len describe a buffer of that size.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, ss.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd, ss.as_mut_ptr().cast(), &mut len)
        }
    };
    // SAFETY: zero-initialized, then written by the kernel.
    (rc == 0).then(|| (unsafe { ss.assume_init() }, len))
}

fn inet_endpoint(ss: &libc::sockaddr_storage) -> Option<Endpoint> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(Endpoint {
                ip: Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).to_string(),
                port: u16::from_be(a.sin_port),
            })
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(Endpoint {
                ip: Ipv6Addr::from(a.sin6_addr.s6_addr).to_string(),
                port: u16::from_be(a.sin6_port),
            })
        }
        _ => None,
    }
}

/// A unix socket's path; an abstract name is shown with a leading '@'.
fn unix_path(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<String> {
    if libc::c_int::from(ss.ss_family) != libc::AF_UNIX {
        return None;
    }
    // SAFETY: the family says the storage holds a sockaddr_un.
    let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
    let n = (len as usize)
        .saturating_sub(size_of::<libc::sa_family_t>())
        .min(a.sun_path.len());
    let bytes: Vec<u8> = a.sun_path[..n].iter().map(|&c| c as u8).collect();
    match bytes.split_first() {
        None => None,
        Some((0, rest)) => Some(format!("@{}", String::from_utf8_lossy(rest))),
        Some(_) => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            (end > 0).then(|| String::from_utf8_lossy(&bytes[..end]).into_owned())
        }
    }
}

fn describe_socket(fd: RawFd, sock: &mut Socket) -> bool {
    let Some(domain) = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN) else {
        return false;
    };
    let protocol = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0);
    let local = address(fd, false);
    let remote = address(fd, true);
    match domain {
        libc::AF_INET | libc::AF_INET6 => {
            sock.ip_version = Some(if domain == libc::AF_INET {
                "ipv4"
            } else {
                "ipv6"
            });
            sock.local = local.as_ref().and_then(|(ss, _)| inet_endpoint(ss));
            sock.remote = remote.as_ref().and_then(|(ss, _)| inet_endpoint(ss));
            let (transport, state) = match protocol {
                libc::IPPROTO_TCP | libc::IPPROTO_MPTCP => {
                    // tcpi_state is the first byte of struct tcp_info.
                    let mut info = [0u8; 8];
                    let mut len = info.len() as libc::socklen_t;
                    // SAFETY: info and len describe a buffer of that size.
                    let rc = unsafe {
                        libc::getsockopt(
                            fd,
                            libc::IPPROTO_TCP,
                            libc::TCP_INFO,
                            info.as_mut_ptr().cast(),
                            &mut len,
                        )
                    };
                    let state = (rc == 0).then(|| tables::inet_state(info[0], false));
                    (
                        if protocol == libc::IPPROTO_TCP {
                            "tcp"
                        } else {
                            "mptcp"
                        },
                        state,
                    )
                }
                libc::IPPROTO_UDP | libc::IPPROTO_UDPLITE => (
                    if protocol == libc::IPPROTO_UDP {
                        "udp"
                    } else {
                        "udplite"
                    },
                    Some(if sock.remote.is_some() {
                        "ESTABLISHED"
                    } else {
                        "UNCONN"
                    }),
                ),
                libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 => ("icmp", None),
                libc::IPPROTO_SCTP => ("sctp", None),
                _ => ("raw", None),
            };
            sock.transport = transport.into();
            sock.state = state;
        }
        libc::AF_UNIX => {
            sock.transport = "unix".into();
            let listening = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1);
            sock.state = Some(match (listening, &remote) {
                (true, _) => "LISTEN",
                (false, Some(_)) => "CONNECTED",
                (false, None) => "UNCONNECTED",
            });
            sock.path = local
                .as_ref()
                .and_then(|(ss, len)| unix_path(ss, *len))
                .or_else(|| remote.as_ref().and_then(|(ss, len)| unix_path(ss, *len)));
        }
        libc::AF_NETLINK => sock.transport = "netlink".into(),
        libc::AF_PACKET => sock.transport = "packet".into(),
        libc::AF_VSOCK => sock.transport = "vsock".into(),
        other => sock.transport = format!("family {other}"),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn bare(inode: u64) -> Socket {
        Socket::bare(inode)
    }

    /// Our own sockets, described as another process's would be.
    #[test]
    fn own_sockets_are_described() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut s = bare(1);
        assert!(describe_socket(client.as_raw_fd(), &mut s));
        assert_eq!(
            (s.transport.as_str(), s.ip_version, s.state),
            ("tcp", Some("ipv4"), Some("ESTABLISHED"))
        );
        assert_eq!(
            s.remote,
            Some(Endpoint {
                ip: "127.0.0.1".into(),
                port
            })
        );
        let mut l = bare(2);
        assert!(describe_socket(listener.as_raw_fd(), &mut l));
        assert_eq!((l.state, l.remote.clone()), (Some("LISTEN"), None));
        match std::net::UdpSocket::bind("[::1]:0") {
            Ok(udp) => {
                let mut u = bare(3);
                assert!(describe_socket(udp.as_raw_fd(), &mut u));
                assert_eq!(
                    (u.transport.as_str(), u.ip_version, u.state),
                    ("udp", Some("ipv6"), Some("UNCONN"))
                );
            }
            // The rest of the test still runs; only this case is skipped.
            Err(e) => crate::test_skip::skip(
                "own_sockets_are_described (UDP over IPv6)",
                format_args!("no ::1 on this host: {e}"),
            ),
        }
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut x = bare(4);
        assert!(describe_socket(a.as_raw_fd(), &mut x));
        assert_eq!(
            (x.transport.as_str(), x.state, x.path.clone()),
            ("unix", Some("CONNECTED"), None)
        );
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(
            !describe_socket(file.as_raw_fd(), &mut bare(5)),
            "not a socket"
        );
    }

    /// Through pidfd_getfd from this very process, where the kernel allows it.
    #[test]
    fn a_process_fd_is_copied_when_allowed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let test = crate::test_skip::test_name!();
        let Some(src) = FdSource::open(std::process::id()) else {
            let why = std::io::Error::last_os_error();
            return crate::test_skip::skip(
                test,
                format_args!("no pidfd_open here (kernel < 5.3, seccomp): {why}"),
            );
        };
        // SAFETY: pidfd_getfd on our own pidfd and fd; the copy is closed.
        let probe = unsafe {
            libc::syscall(
                libc::SYS_pidfd_getfd,
                src.pidfd.as_raw_fd(),
                listener.as_raw_fd(),
                0,
            )
        };
        if probe < 0 {
            let why = std::io::Error::last_os_error();
            return crate::test_skip::skip(
                test,
                format_args!("no pidfd_getfd here (kernel < 5.6, seccomp, an LSM): {why}"),
            );
        }
        // SAFETY: the copy just made, ours alone.
        drop(unsafe { OwnedFd::from_raw_fd(probe as RawFd) });
        let fd = listener.as_raw_fd() as u32;
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let mut s = bare(inode);
        assert!(src.describe(fd, &mut s));
        assert_eq!((s.transport.as_str(), s.state), ("tcp", Some("LISTEN")));
        // The fd no longer holds the socket that was listed: not described.
        let mut other = bare(inode + 1);
        assert!(!src.describe(fd, &mut other), "another socket's fd");
        assert_eq!(other.transport, "unknown");
        assert!(!src.describe(999_999, &mut bare(2)), "no such fd");
    }
}
