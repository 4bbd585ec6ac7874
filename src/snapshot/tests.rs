//! Snapshot tests. The live reader runs on fake /proc trees built in a temp
//! directory: the races it must survive (a process that exits between two
//! reads, a zombie, a pid reused, an ancestor gone) cannot be staged on
//! demand on a real kernel. The kernel tests (tests/integration/snapshot.rs)
//! cover the real thing.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::live::{cgroup_path, container_id, parse_id_file};
use super::*;
use crate::alert::Alert;
use crate::config::{Config, SnapshotConfig};
use crate::pipeline::Pipeline;
use crate::process::EntityId;
use crate::process::NoProc;

const BOOT: &str = "11111111-2222-3333-4444-555555555555";
/// Boot time of the fake host, and its start ticks (100 Hz on Linux).
const BTIME: u64 = 1_795_000_000;

// ---- pure parsers -------------------------------------------------------

#[test]
fn tcp_rows_of_both_families_parse() {
    // Captured from /proc/net/tcp and tcp6 on x86_64 (host byte order words).
    let v4 = "   3: 0100007F:CBD8 0100007F:15B3 01 00000000:00000000 00:00000000 00000000     0        0 8329126 1 0000000000000000 20 4 30 10 -1";
    let r = tables::parse_inet(v4).unwrap();
    assert_eq!(
        r.local,
        Endpoint {
            ip: "127.0.0.1".into(),
            port: 0xCBD8
        }
    );
    assert_eq!(
        r.remote,
        Endpoint {
            ip: "127.0.0.1".into(),
            port: 5555
        }
    );
    assert_eq!((r.state, r.inode), (1, 8329126));
    assert_eq!(tables::inode_of(v4, false), Some(8329126));
    let v6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 0000000000000000 100 0 0 10 0";
    let r = tables::parse_inet(v6).unwrap();
    assert_eq!(
        r.local,
        Endpoint {
            ip: "::1".into(),
            port: 8080
        }
    );
    assert_eq!(tables::inet_state(r.state, false), "LISTEN");
    let mapped = "   1: 0000000000000000FFFF00000100007F:B0E2 0000000000000000FFFF00000200000A:01BB 02 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0";
    let r = tables::parse_inet(mapped).unwrap();
    assert_eq!(r.local.ip, "::ffff:127.0.0.1");
    assert_eq!(
        r.remote,
        Endpoint {
            ip: "::ffff:10.0.0.2".into(),
            port: 443
        }
    );
    assert_eq!(tables::inet_state(r.state, false), "SYN_SENT");
    assert_eq!(tables::inet_state(7, true), "UNCONN");
    assert_eq!(tables::inet_state(1, true), "ESTABLISHED");
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
    assert_eq!(tables::parse_inet(header), None);
    assert_eq!(tables::inode_of(header, false), None);
}

#[test]
fn unix_rows_parse_with_and_without_a_path() {
    let listening =
        "0000000000000000: 00000002 00000000 00010000 0001 01 21011 /run/systemd/journal/stdout";
    let r = tables::parse_unix(listening).unwrap();
    assert_eq!(r.inode, 21011);
    assert_eq!(r.state, "LISTEN");
    assert_eq!(r.path.as_deref(), Some("/run/systemd/journal/stdout"));
    let connected = "00000000c5d0831b: 00000003 00000000 00000000 0001 03  1073";
    let r = tables::parse_unix(connected).unwrap();
    assert_eq!((r.inode, r.state, r.path), (1073, "CONNECTED", None));
    let spaced = "0000000000000000: 00000002 00000000 00000000 0002 01 7 /tmp/a  b";
    assert_eq!(
        tables::parse_unix(spaced).unwrap().path.as_deref(),
        Some("/tmp/a  b")
    );
    assert_eq!(tables::inode_of(connected, true), Some(1073));
}

/// A utmp record laid out by the compiler from libc's own struct, so the
/// parser's offsets are checked against an independent layout.
fn utmp_record(kind: i16, pid: i32, line: &str, user: &str, host: &str, sec: u32) -> Vec<u8> {
    // SAFETY: utmpx is plain old data; all-zero is a valid value.
    let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
    u.ut_type = kind;
    u.ut_pid = pid;
    for (dst, src) in [
        (&mut u.ut_line[..], line),
        (&mut u.ut_user[..], user),
        (&mut u.ut_host[..], host),
    ] {
        for (d, s) in dst.iter_mut().zip(src.bytes()) {
            *d = s as libc::c_char;
        }
    }
    u.ut_tv.tv_sec = sec as _;
    // SAFETY: reading the bytes of a value we own, for its exact size.
    unsafe {
        std::slice::from_raw_parts((&u as *const libc::utmpx).cast::<u8>(), utmp::RECORD).to_vec()
    }
}

#[test]
fn utmp_records_parse() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!(utmp::RECORD, 384, "struct utmp on x86_64");
    let mut file = utmp_record(2, 0, "~", "reboot", "6.18.0", 1_795_000_000); // BOOT_TIME
    file.extend(utmp_record(
        7,
        812,
        "pts/0",
        "alice",
        "203.0.113.7",
        1_795_000_100,
    ));
    // A full-width user name has no NUL terminator.
    file.extend(utmp_record(
        7,
        813,
        "tty1",
        &"u".repeat(32),
        "",
        4_000_000_000,
    ));
    file.extend(vec![0u8; 100]); // a writer mid-update
    let e: Vec<utmp::Entry> = utmp::parse(&file).collect();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].kind, 2);
    assert_eq!(
        e[1],
        utmp::Entry {
            kind: utmp::USER_PROCESS,
            pid: 812,
            line: "pts/0".into(),
            user: "alice".into(),
            host: "203.0.113.7".into(),
            sec: 1_795_000_100,
        }
    );
    assert_eq!(e[2].user, "u".repeat(32));
    assert_eq!(e[2].sec, 4_000_000_000, "past 2038");
}

#[test]
fn cgroups_name_their_container() {
    let id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100";
    for cg in [
        format!("/system.slice/docker-{id}.scope"),
        format!("/docker/{id}"),
        format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope"),
        format!("/machine.slice/libpod-{id}.scope/container"),
    ] {
        assert_eq!(container_id(&cg).as_deref(), Some(id), "{cg}");
    }
    assert_eq!(
        container_id("/user.slice/user-0.slice/session-3.scope"),
        None
    );
    // 65 hex digits is not an id.
    assert_eq!(container_id(&format!("/x/{id}0")), None);
    assert_eq!(
        cgroup_path("12:pids:/a\n0::/system.slice/x.service\n").as_deref(),
        Some("/system.slice/x.service")
    );
    assert_eq!(cgroup_path("4:cpu:/v1only\n").as_deref(), Some("/v1only"));
}

#[test]
fn ttys_and_id_files() {
    assert_eq!(tty_name(136, 3).as_deref(), Some("pts/3"));
    assert_eq!(tty_name(137, 1).as_deref(), Some("pts/257"));
    assert_eq!(tty_name(4, 1).as_deref(), Some("tty1"));
    assert_eq!(tty_name(4, 64).as_deref(), Some("ttyS0"));
    assert_eq!(tty_name(0, 0), None);
    let ids = parse_id_file("root:x:0:0:root:/root:/bin/bash\n#junk\nalice:x:1000:1000::/home/alice:/bin/sh\ntoor:x:0:0::/:/bin/sh\n");
    assert_eq!(ids.get(&0).map(String::as_str), Some("root"), "first wins");
    assert_eq!(ids.get(&1000).map(String::as_str), Some("alice"));
}

// ---- a fake host --------------------------------------------------------

/// A process of the fake /proc.
#[derive(Clone)]
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    session: u32,
    start: u64,
    state: char,
    uid: u32,
    args: Vec<String>,
    exe: Option<String>,
    cwd: Option<String>,
    fds: Vec<(u32, String)>,
    loginuid: u32,
    sessionid: u32,
    cgroup: String,
}

impl Proc {
    fn new(pid: u32, ppid: u32, start: u64, args: &[&str]) -> Proc {
        Proc {
            pid,
            ppid,
            pgrp: ppid,
            session: ppid,
            start,
            state: 'S',
            uid: 0,
            args: args.iter().map(|a| a.to_string()).collect(),
            exe: None,
            cwd: Some("/srv".into()),
            fds: Vec::new(),
            loginuid: u32::MAX,
            sessionid: u32::MAX,
            cgroup: "0::/system.slice/x.service\n".into(),
        }
    }
}

struct FakeHost {
    root: PathBuf,
}

impl FakeHost {
    fn new() -> FakeHost {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "audetect-snapshot-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["proc", "etc", "bin"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(
            root.join("proc/stat"),
            format!("cpu 1 2 3\nbtime {BTIME}\n"),
        )
        .unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
        FakeHost { root }
    }

    fn paths(&self) -> Paths {
        Paths {
            proc: self.root.join("proc"),
            passwd: self.root.join("etc/passwd"),
            group: self.root.join("etc/group"),
            utmp: self.root.join("utmp"),
        }
    }

    /// A file under the fake root (an executable, say).
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.root.join("bin").join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn add(&self, p: &Proc) {
        let dir = self.root.join("proc").join(p.pid.to_string());
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::create_dir_all(dir.join("net")).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!(
                "{} (x) {} {} {} {} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {} 0 0\n",
                p.pid, p.state, p.ppid, p.pgrp, p.session, p.start
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("status"),
            format!(
                "Name:\tx\nUid:\t{0}\t{0}\t{0}\t{0}\nGid:\t{0}\t{0}\t{0}\t{0}\n",
                p.uid
            ),
        )
        .unwrap();
        let mut cmdline = Vec::new();
        for a in &p.args {
            cmdline.extend_from_slice(a.as_bytes());
            cmdline.push(0);
        }
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        if let Some(exe) = &p.exe {
            symlink(exe, dir.join("exe")).unwrap();
        }
        if let Some(cwd) = &p.cwd {
            symlink(cwd, dir.join("cwd")).unwrap();
        }
        for (fd, target) in &p.fds {
            symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
        }
        std::fs::write(dir.join("loginuid"), p.loginuid.to_string()).unwrap();
        std::fs::write(dir.join("sessionid"), p.sessionid.to_string()).unwrap();
        std::fs::write(dir.join("cgroup"), &p.cgroup).unwrap();
        let tcp_header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        for t in ["tcp", "tcp6", "udp", "udp6"] {
            std::fs::write(dir.join("net").join(t), tcp_header).unwrap();
        }
        std::fs::write(
            dir.join("net/unix"),
            "Num       RefCount Protocol Flags    Type St Inode Path\n",
        )
        .unwrap();
    }

    fn append(&self, pid: u32, file: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.root.join("proc").join(pid.to_string()).join(file))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn snapshotter(&self, config: SnapshotConfig) -> LiveSnapshotter {
        LiveSnapshotter::new(self.paths(), config)
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The defaults, with a budget no test machine overruns (one test spends it
/// on purpose).
fn config() -> SnapshotConfig {
    SnapshotConfig {
        time_budget: Duration::from_secs(1),
        ..Config::default().snapshot
    }
}

fn target(pid: u32, start: u64, ppid: u32) -> Target {
    Target {
        pid,
        entity: EntityId::new(BOOT, pid, start),
        ppid,
        record_sec: BTIME + 100,
        args: Some(vec!["/bin/rsh".into(), "-i".into()]),
        args_truncated: false,
        working_directory: Some("/from-audit".into()),
    }
}

/// pid 1 ← 300 (sshd, the login) ← 400 (sh -c ...) ← 500 (the shell that
/// connected out: stdio on a TCP socket, setsid done).
fn reverse_shell_host() -> (FakeHost, Vec<u8>) {
    let host = FakeHost::new();
    let exe_bytes = b"\x7fELF a shell".repeat(1000);
    let shell = host.file("rsh", &exe_bytes);
    let sh = host.file("sh", b"sh");
    let mut init = Proc::new(1, 0, 1, &["/sbin/init"]);
    init.exe = Some(host.file("init", b"init").display().to_string());
    host.add(&init);
    let mut sshd = Proc::new(300, 1, 50, &["sshd: alice [priv]"]);
    sshd.sessionid = 7;
    sshd.loginuid = 1000;
    host.add(&sshd);
    let mut outer = Proc::new(400, 300, 90, &["sh", "-c", "/bin/rsh -i"]);
    outer.exe = Some(sh.display().to_string());
    outer.sessionid = 7;
    outer.loginuid = 1000;
    host.add(&outer);
    let mut p = Proc::new(500, 400, 100, &["/bin/rsh", "-i"]);
    p.pgrp = 500;
    p.session = 500;
    p.exe = Some(shell.display().to_string());
    p.sessionid = 7;
    p.loginuid = 1000;
    p.fds = vec![
        (0, "socket:[5001]".into()),
        (1, "socket:[5001]".into()),
        (2, "socket:[5001]".into()),
        (3, "pipe:[77]".into()),
        (4, "/var/log/x.log".into()),
        (5, "socket:[5002]".into()),
        (6, "socket:[5003]".into()),
    ];
    let id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100";
    p.cgroup = format!("0::/system.slice/docker-{id}.scope\n");
    host.add(&p);
    host.append(
        500,
        "net/tcp",
        "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0\n   1: 0100007F:CBD8 0100007F:15B3 01 00000000:00000000 00:00000000 00000000     0        0 5001 1 0 20 4 30 10 -1\n",
    );
    host.append(
        500,
        "net/unix",
        "0000000000000000: 00000002 00000000 00000000 0001 03 5003 /run/x.sock\n",
    );
    host.append(
        500,
        "net/udp6",
        "  12: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5002 2 0 0\n",
    );
    let mut utmp = utmp_record(7, 300, "pts/0", "alice", "203.0.113.7", (BTIME + 40) as u32);
    utmp.extend(utmp_record(8, 290, "pts/1", "", "", (BTIME + 20) as u32)); // DEAD_PROCESS
    utmp.extend(utmp_record(7, 310, "tty1", "root", "", (BTIME + 60) as u32));
    std::fs::write(host.root.join("utmp"), utmp).unwrap();
    (host, exe_bytes)
}

#[test]
fn a_reverse_shell_on_a_fake_host_is_described_whole() {
    let (host, exe) = reverse_shell_host();
    let mut s = host.snapshotter(config());
    let snap = s.take(&target(500, 100, 400));
    for (name, piece) in snap.pieces.iter() {
        assert_eq!(piece.status, Status::Ok, "{name}: {:?}", piece.reason);
    }
    let p = &snap.process;
    assert_eq!(
        p.args.as_deref(),
        Some(&["/bin/rsh".to_string(), "-i".into()][..])
    );
    assert_eq!(p.args_count, Some(2));
    assert!(p.from_audit.is_empty(), "/proc had it all");
    assert_eq!(p.working_directory.as_deref(), Some("/srv"));
    // 100 ticks after boot, at 100 Hz.
    let start = crate::timefmt::rfc3339_millis(BTIME + 100 / procfs::ticks_per_second(), 0);
    assert_eq!(p.start.as_deref(), Some(start.as_str()));
    let want = Sha256::digest(&exe);
    let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(p.sha256.as_deref(), Some(want.as_str()));
    assert_eq!(
        p.user,
        Some(Id {
            id: 0,
            name: Some("root".into())
        })
    );
    assert_eq!(
        p.auid,
        Some(Some(Id {
            id: 1000,
            name: Some("alice".into())
        }))
    );
    assert_eq!(p.audit_session_id, Some(Some(7)));
    assert_eq!((p.session_id, p.process_group_id), (Some(500), Some(500)));
    assert_eq!(p.container_id.as_deref().map(str::len), Some(64));
    // The chain, up to pid 1.
    let pids: Vec<u32> = snap.ancestry.iter().map(|b| b.pid).collect();
    assert_eq!(pids, [400, 300, 1]);
    assert_eq!(snap.ancestry[0].entity_id, format!("{BOOT}:400:90"));
    assert_eq!(
        snap.ancestry[0].args.as_deref(),
        Some(&["sh".to_string(), "-c".into(), "/bin/rsh -i".into()][..])
    );
    assert_eq!(
        snap.ancestry[1].executable, None,
        "sshd's exe was not readable"
    );
    // Leaders: it leads its session and group (setsid); it entered through
    // the oldest process of audit session 7.
    assert_eq!(snap.leaders.session.as_ref().map(|b| b.pid), Some(500));
    assert_eq!(snap.leaders.group.as_ref().map(|b| b.pid), Some(500));
    assert_eq!(snap.leaders.entry.as_ref().map(|b| b.pid), Some(300));
    // Sockets, stdio's first; found through every table, as a fake /proc
    // names no protocol.
    assert_eq!(snap.sockets.len(), 3);
    let tcp = &snap.sockets[0];
    assert_eq!(tcp.fds, [0, 1, 2]);
    assert_eq!(
        (tcp.transport.as_str(), tcp.ip_version),
        ("tcp", Some("ipv4"))
    );
    assert_eq!(
        tcp.remote,
        Some(Endpoint {
            ip: "127.0.0.1".into(),
            port: 5555
        })
    );
    assert_eq!(tcp.state, Some("ESTABLISHED"));
    assert_eq!(snap.sockets[1].transport, "udp");
    assert_eq!(snap.sockets[1].state, Some("UNCONN"));
    assert_eq!(snap.sockets[2].path.as_deref(), Some("/run/x.sock"));
    assert_eq!(snap.reverse_shell_stdio(), Some(true));
    // utmp: the live logins, newest first.
    let users: Vec<&str> = snap.sessions.iter().map(|l| l.user.as_str()).collect();
    assert_eq!(users, ["root", "alice"]);
    assert_eq!(snap.sessions[1].host, "203.0.113.7");
    assert!(snap.dropped.is_empty(), "{:?}", snap.dropped);
    // The hash is remembered: a second alert for that binary reads nothing.
    std::fs::remove_file(host.root.join("proc/500/exe")).unwrap();
    symlink(host.root.join("bin/rsh"), host.root.join("proc/500/exe")).unwrap();
    let again = s.take(&target(500, 100, 400));
    assert_eq!(again.process.sha256, snap.process.sha256);
}

#[test]
fn a_process_gone_before_the_look_says_so_and_keeps_what_audit_had() {
    let (host, _) = reverse_shell_host();
    std::fs::remove_dir_all(host.root.join("proc/500")).unwrap();
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    for piece in [
        &snap.pieces.process,
        &snap.pieces.sockets,
        &snap.pieces.stdio,
        &snap.pieces.hash,
    ] {
        assert_eq!(piece.status, Status::Gone);
        assert!(
            piece.reason.as_deref().unwrap().contains("exited"),
            "{piece:?}"
        );
    }
    // The parent is there: the chain starts at the record's ppid.
    assert_eq!(snap.pieces.ancestry.status, Status::Partial);
    assert!(snap
        .pieces
        .ancestry
        .reason
        .as_deref()
        .unwrap()
        .contains("audit record"));
    assert_eq!(
        snap.ancestry.iter().map(|b| b.pid).collect::<Vec<_>>(),
        [400, 300, 1]
    );
    assert_eq!(snap.pieces.sessions.status, Status::Ok);
    let p = &snap.process;
    assert_eq!(
        p.args.as_deref(),
        Some(&["/bin/rsh".to_string(), "-i".into()][..])
    );
    assert_eq!(p.working_directory.as_deref(), Some("/from-audit"));
    assert_eq!(p.from_audit, ["args", "working_directory"]);
    assert_eq!(snap.stdio, None);
    assert_eq!(snap.reverse_shell_stdio(), None, "unknown, not false");
}

#[test]
fn a_reused_pid_is_not_taken_for_the_process() {
    let (host, _) = reverse_shell_host();
    // The alert is about the process that started at tick 99; 500 is now another.
    let snap = host.snapshotter(config()).take(&target(500, 99, 400));
    assert_eq!(snap.pieces.process.status, Status::Gone);
    assert!(snap
        .pieces
        .process
        .reason
        .as_deref()
        .unwrap()
        .contains("now belongs to"));
    assert_eq!(
        snap.process.args.as_deref().map(<[String]>::len),
        Some(2),
        "from PROCTITLE"
    );
    assert_eq!(snap.process.from_audit, ["args", "working_directory"]);
    // Its parent 400 started at 90, before the process at 99: still its parent.
    assert_eq!(snap.ancestry.first().map(|b| b.pid), Some(400));
}

#[test]
fn a_process_never_seen_alive_is_not_looked_up() {
    let (host, _) = reverse_shell_host();
    let mut t = target(500, 100, 400);
    t.entity = EntityId::fallback(BOOT, 500, "7");
    let snap = host.snapshotter(config()).take(&t);
    assert_eq!(snap.pieces.process.status, Status::Gone);
    assert!(snap
        .pieces
        .process
        .reason
        .as_deref()
        .unwrap()
        .contains("no start time"));
    // Its parent started before the record (BTIME + 100 s): it is kept.
    assert_eq!(snap.ancestry.first().map(|b| b.pid), Some(400));
}

#[test]
fn a_zombie_keeps_its_stat_and_chain() {
    let host = FakeHost::new();
    host.add(&Proc::new(1, 0, 1, &["/sbin/init"]));
    let mut parent = Proc::new(400, 1, 90, &["sh"]);
    parent.pgrp = 400;
    host.add(&parent);
    let mut z = Proc::new(500, 400, 100, &[]);
    z.state = 'Z';
    z.cwd = None;
    z.pgrp = 500;
    z.session = 500;
    host.add(&z);
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    assert_eq!(snap.pieces.process.status, Status::Gone);
    assert!(snap
        .pieces
        .process
        .reason
        .as_deref()
        .unwrap()
        .contains("zombie"));
    assert_eq!(snap.pieces.sockets.status, Status::Gone);
    assert_eq!(snap.pieces.hash.status, Status::Gone);
    assert_eq!(snap.pieces.ancestry.status, Status::Ok);
    assert_eq!(
        snap.ancestry.iter().map(|b| b.pid).collect::<Vec<_>>(),
        [400, 1]
    );
    assert_eq!(snap.process.state, Some('Z'));
    assert_eq!(snap.process.session_id, Some(500));
    assert_eq!(snap.process.from_audit, ["args", "working_directory"]);
}

#[test]
fn an_ancestor_younger_than_its_child_ends_the_chain() {
    let (host, _) = reverse_shell_host();
    // 300 exited and its pid went to a process started after 400.
    std::fs::remove_dir_all(host.root.join("proc/300")).unwrap();
    host.add(&Proc::new(300, 1, 95, &["new"]));
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    assert_eq!(
        snap.ancestry.iter().map(|b| b.pid).collect::<Vec<_>>(),
        [400]
    );
    assert_eq!(snap.pieces.ancestry.status, Status::Partial);
    assert!(snap
        .pieces
        .ancestry
        .reason
        .as_deref()
        .unwrap()
        .contains("younger"));
}

#[test]
fn bounds_and_switches_are_kept_and_reported() {
    let (host, _) = reverse_shell_host();
    let c = SnapshotConfig {
        hash_max_bytes: 100,
        max_ancestors: 2,
        max_sockets: 1,
        max_sessions: 1,
        ..config()
    };
    let snap = host.snapshotter(c).take(&target(500, 100, 400));
    assert_eq!(snap.pieces.hash.status, Status::TooLarge);
    assert!(snap
        .pieces
        .hash
        .reason
        .as_deref()
        .unwrap()
        .contains("hash_max_bytes (100)"));
    assert_eq!(snap.ancestry.len(), 2);
    assert_eq!(snap.pieces.ancestry.status, Status::Partial);
    assert_eq!(snap.sockets.len(), 1);
    assert_eq!(snap.sockets_total, 3);
    assert_eq!(snap.sessions.len(), 1);
    assert_eq!(snap.sessions_total, 2);
    assert_eq!(snap.dropped.len(), 3, "{:?}", snap.dropped);

    let off = SnapshotConfig {
        process: false,
        hash: false,
        ancestry: false,
        sockets: false,
        stdio: true,
        sessions: false,
        ..config()
    };
    let snap = host.snapshotter(off).take(&target(500, 100, 400));
    for (name, piece) in snap.pieces.iter() {
        let want = if name == "stdio" {
            Status::Ok
        } else {
            Status::Disabled
        };
        assert_eq!(piece.status, want, "{name}");
    }
    assert_eq!(snap.process.args, None);
    assert!(snap.ancestry.is_empty() && snap.sessions.is_empty());
    // stdio alone still names its socket's far end, and lists no sockets.
    assert!(snap.sockets.is_empty());
    assert_eq!(snap.reverse_shell_stdio(), Some(true));
    let Some([StdioTarget::Socket(stdin), ..]) = &snap.stdio else {
        panic!("{:?}", snap.stdio);
    };
    assert_eq!(stdin.remote.as_ref().map(|e| e.port), Some(5555));
}

#[test]
fn a_spent_time_budget_marks_what_was_not_done() {
    let (host, _) = reverse_shell_host();
    let c = SnapshotConfig {
        time_budget: Duration::ZERO,
        ..config()
    };
    let snap = host.snapshotter(c).take(&target(500, 100, 400));
    // The process itself is always read; the rest waits on the budget.
    assert_eq!(snap.pieces.process.status, Status::Ok);
    for piece in [
        &snap.pieces.sockets,
        &snap.pieces.ancestry,
        &snap.pieces.hash,
        &snap.pieces.sessions,
    ] {
        assert_eq!(piece.status, Status::TimeBudget, "{piece:?}");
        assert!(piece.reason.as_deref().unwrap().contains("time budget"));
    }
}

#[test]
fn a_missing_utmp_is_said_and_not_an_error() {
    let (host, _) = reverse_shell_host();
    std::fs::remove_file(host.root.join("utmp")).unwrap();
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    assert_eq!(snap.pieces.sessions.status, Status::Unavailable);
    assert!(snap
        .pieces
        .sessions
        .reason
        .as_deref()
        .unwrap()
        .contains("does not exist"));
    assert_eq!(snap.pieces.process.status, Status::Ok);
}

#[test]
fn boot_time_is_found_past_a_long_proc_stat() {
    let (host, _) = reverse_shell_host();
    // Many CPUs and interrupts: the lines before btime alone are tens of KB.
    let cpus: String = (0..512)
        .map(|i| format!("cpu{i} 1 2 3 4 5 6 7 8 9 10\n"))
        .collect();
    let intr = format!("intr {}\n", "0 ".repeat(8000));
    std::fs::write(
        host.root.join("proc/stat"),
        format!("cpu 1 2 3\n{cpus}{intr}btime {BTIME}\n"),
    )
    .unwrap();
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    let start = crate::timefmt::rfc3339_millis(BTIME + 100 / procfs::ticks_per_second(), 0);
    assert_eq!(snap.process.start.as_deref(), Some(start.as_str()));
    assert!(!snap.ancestry.is_empty(), "the reverse shell has ancestors");
    assert!(snap.ancestry.iter().all(|b| b.start.is_some()));
}

#[test]
fn a_utmp_over_its_bound_is_read_in_part_and_says_so() {
    let (host, _) = reverse_shell_host();
    let one = utmp_record(7, 310, "tty1", "root", "", (BTIME + 60) as u32);
    let records = (4 << 20) / one.len() + 2;
    std::fs::write(host.root.join("utmp"), one.repeat(records)).unwrap();
    let snap = host.snapshotter(config()).take(&target(500, 100, 400));
    assert_eq!(snap.pieces.sessions.status, Status::Partial);
    assert!(snap
        .pieces
        .sessions
        .reason
        .as_deref()
        .unwrap()
        .contains("only the logins of its first"));
    assert!(snap.sessions_total < records);
    assert_eq!(snap.sessions.len(), config().max_sessions);
}

// ---- in the alert -------------------------------------------------------

/// Hands the pipeline a fixed snapshot and records the targets it was asked for.
struct Fixed(Snapshot, std::rc::Rc<std::cell::RefCell<Vec<Target>>>);

impl Snapshotter for Fixed {
    fn take(&mut self, target: &Target) -> Snapshot {
        self.1.borrow_mut().push(target.clone());
        let mut s = self.0.clone();
        if s.process.session_id == Some(s.process.pid) {
            s.process.session_id = Some(target.pid);
        }
        s.process.pid = target.pid;
        s.process.entity_id = Some(target.entity.to_string());
        s
    }
}

/// The alerts of the captured scenarios, each with `snap`, under `cap`.
fn alerts_with(snap: Snapshot, cap: usize) -> (Vec<Value>, Vec<usize>, Vec<Target>) {
    let rules = crate::rulefile::load(true, &[], &crate::fields::schema())
        .unwrap()
        .rules;
    let mut pipeline = Pipeline::new(NoProc, rules, 10_000, crate::normalize::Host::new("i", "h"));
    let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    pipeline.set_snapshots(Box::new(Fixed(snap, asked.clone())), cap);
    let mut out: Vec<Alert> = Vec::new();
    let now = || SystemTime::UNIX_EPOCH + Duration::from_secs(BTIME);
    for line in include_str!("../../tests/fixtures/scenarios.log").lines() {
        pipeline.push_log_line(line.as_bytes(), &now, &mut |a| out.push(a));
    }
    pipeline.flush(&now, &mut |a| out.push(a));
    assert!(!out.is_empty());
    let docs = out
        .iter()
        .map(|a| serde_json::from_str(&a.json).unwrap())
        .collect();
    let lens = out.iter().map(|a| a.json.len()).collect();
    let targets = asked.borrow().clone();
    (docs, lens, targets)
}

/// A large snapshot: long chain, many sockets and logins, a long command line.
fn big_snapshot() -> Snapshot {
    let (host, _) = reverse_shell_host();
    let mut s = host.snapshotter(config()).take(&target(500, 100, 400));
    let brief = |pid: u32| Brief {
        pid,
        entity_id: format!("{BOOT}:{pid}:{pid}"),
        executable: Some(format!("/usr/bin/p{pid}")),
        args: Some(vec![format!("p{pid}"), "--flag".into(), "x".repeat(300)]),
        args_truncated: false,
        start: Some("2026-11-27T07:48:41.000Z".into()),
    };
    s.ancestry = (0..12).map(|i| brief(400 - i)).collect();
    s.process.ppid = Some(400);
    for i in 0..40 {
        let mut k = s.sockets[0].clone();
        k.fds = vec![10 + i];
        k.inode = 9000 + u64::from(i);
        s.sockets.push(k);
    }
    s.sockets_total = s.sockets.len();
    let login = s.sessions[0].clone();
    s.sessions = vec![login; 30];
    s.sessions_total = 30;
    // The program of the replayed records.
    s.process.executable = Some("/tmp/actor".into());
    let mut args = vec!["/bin/rsh".to_string()];
    args.extend((0..200).map(|i| format!("--argument-{i}")));
    args.push("y".repeat(4000));
    s.process.args = Some(args);
    s
}

#[test]
fn the_snapshot_lands_in_ecs_fields_without_clobbering_audit_ones() {
    let (host, _) = reverse_shell_host();
    let mut snap = host.snapshotter(config()).take(&target(500, 100, 400));
    // /proc shows another executable than the records (an execve since).
    snap.process.executable = Some("/usr/bin/other".into());
    let (docs, _, targets) = alerts_with(snap, usize::MAX);
    let a = &docs[0];
    // The snapshot is about the process of the join key, with the
    // matching event's PROCTITLE at hand (setsid has no CWD record).
    assert_eq!(a["process"]["pid"], targets[0].pid);
    let args = targets[0].args.as_deref().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("/tmp/actor"),
        "{:?}",
        targets[0]
    );
    let p = &a["process"];
    assert_eq!(p["executable"], "/tmp/actor", "the record's, not /proc's");
    assert_eq!(p["name"], "actor");
    let s = &a["audetect"]["snapshot"];
    // The program /proc shows is another: all of it stays apart.
    assert_eq!(s["process"]["executable"], "/usr/bin/other");
    assert_eq!(s["process"]["name"], "other");
    assert_eq!(s["process"]["args"][1], "-i");
    assert_eq!(
        s["process"]["hash"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    // The record's command line (its PROCTITLE) stays; /proc's hash is of another program.
    assert_eq!(p["args"][0], "/tmp/actor", "{p:#}");
    assert!(p["hash"].is_null(), "{p:#}");
    // The record's directory (its CWD record) wins too.
    assert_eq!(p["working_directory"], "/work/main");
    // The same program as the record's: /proc's view fills the top.
    let mut snap = host.snapshotter(config()).take(&target(500, 100, 400));
    snap.process.executable = Some("/tmp/actor".into());
    let (docs, _, _) = alerts_with(snap, usize::MAX);
    let a = &docs[0];
    let p = &a["process"];
    let s = &a["audetect"]["snapshot"];
    assert_eq!(p["executable"], "/tmp/actor");
    // What the records said of the command line wins over /proc's later view.
    assert_eq!(p["command_line"], "/tmp/actor tcp4:48301 setsid");
    assert_eq!(p["working_directory"], "/work/main");
    assert_eq!(p["hash"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(p["user"]["name"], "root");
    assert_eq!(
        a["user"],
        serde_json::json!({"id": "0", "name": "root", "Ext": {"real": {"id": "0"}}})
    );
    assert_eq!(p["session_leader"]["pid"], 500);
    assert_eq!(p["entry_leader"]["pid"], 300);
    assert_eq!(a["container"]["id"].as_str().map(str::len), Some(64));
    // The record's parent (its ppid) differs from /proc's: /proc's is
    // kept aside, the record's stays.
    assert_ne!(p["parent"]["pid"], 400);
    assert_eq!(s["process"]["parent"]["pid"], 400);
    assert_eq!(s["status"]["process"], "ok");
    assert_eq!(s["reverse_shell_stdio"], true);
    assert_eq!(s["stdio"]["stdin"]["remote"]["port"], 5555);
    assert_eq!(s["sockets"][0]["state"], "ESTABLISHED");
    assert_eq!(s["ancestry"][0]["args"][2], "/bin/rsh -i");
    assert_eq!(s["sessions"][0]["user"], "root");
    assert_eq!(s["truncated"], false);
    assert_eq!(s["process"]["auid"]["name"], "alice");
    assert_eq!(s["process"]["leads_session"], true);
    // The audit events are untouched.
    assert_eq!(a["events"][1]["process"]["executable"], "/tmp/actor");
    // The record's program, deleted since it started: still the same
    // program, so its command line and hash fill the top.
    let mut snap = host.snapshotter(config()).take(&target(500, 100, 400));
    snap.process.executable = Some("/tmp/actor (deleted)".into());
    let (docs, _, _) = alerts_with(snap, usize::MAX);
    let p = &docs[0]["process"];
    assert_eq!(p["executable"], "/tmp/actor");
    assert_eq!(p["command_line"], "/tmp/actor tcp4:48301 setsid", "{p:#}");
    assert_eq!(
        p["hash"]["sha256"].as_str().map(str::len),
        Some(64),
        "{p:#}"
    );
    assert_eq!(
        docs[0]["audetect"]["snapshot"]["process"]["executable"],
        "/tmp/actor (deleted)"
    );
}

#[test]
fn the_size_cap_holds_and_says_what_it_dropped() {
    let (docs, lens, _) = alerts_with(big_snapshot(), usize::MAX);
    let whole = lens[0];
    assert!(whole > 20_000, "{whole}");
    assert_eq!(docs[0]["audetect"]["snapshot"]["truncated"], false);
    // The events alone (two, with process table fields) are about 4 KB.
    for cap in [16_000, 8_000, 7_680, 6_500, 6_000] {
        let (docs, lens, _) = alerts_with(big_snapshot(), cap);
        for (doc, len) in docs.iter().zip(&lens) {
            assert!(*len <= cap, "cap {cap}: {len} bytes");
            let s = &doc["audetect"]["snapshot"];
            assert_eq!(s["truncated"], true, "cap {cap}");
            let dropped: Vec<&str> = s["dropped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            assert!(
                dropped[0].starts_with("sessions"),
                "lowest priority first: {dropped:?}"
            );
            // What matters most stays while anything else can go.
            assert_eq!(s["reverse_shell_stdio"], true, "cap {cap}: {doc:#}");
            assert_eq!(doc["process"]["args"][0], "/tmp/actor", "cap {cap}");
        }
    }
    // Below what the audit part needs the alert stays whole, its snapshot bare.
    let (docs, lens, _) = alerts_with(big_snapshot(), 1024);
    assert!(lens[0] > 1024);
    let s = &docs[0]["audetect"]["snapshot"];
    assert_eq!(s["truncated"], true);
    assert!(s["sockets"].is_null() && s["ancestry"].is_null() && s["sessions"].is_null());
    assert_eq!(s["status"]["process"], "ok");
}

#[test]
fn replay_and_disabled_snapshots_say_why_there_is_none() {
    let (docs, _, _) = alerts_with(
        Snapshot::not_taken("replay: the processes of a log are not live"),
        2000,
    );
    let s = &docs[0]["audetect"]["snapshot"];
    assert_eq!(s["taken"], false);
    assert_eq!(s["reason"], "replay: the processes of a log are not live");
    // The records' own command line is all there is.
    assert_eq!(docs[0]["process"]["args"][0], "/tmp/actor");
}

#[test]
fn a_shrunk_command_line_keeps_its_head() {
    let mut s = big_snapshot();
    s.sessions.clear();
    s.ancestry.clear();
    s.sockets.truncate(1);
    s.leaders = Leaders::default();
    let before = s.process.args.as_ref().unwrap().len();
    assert!(shrink(&mut s, 2_000));
    let args = s.process.args.as_ref().unwrap();
    assert!(args.len() < before && args[0] == "/bin/rsh");
    assert!(s.process.args_truncated);
    assert!(
        s.dropped[0].starts_with("process.args:") && s.dropped[0].ends_with("(max_alert_bytes)"),
        "{:?}",
        s.dropped
    );
    // One huge argument is cut, not dropped.
    s.process.args = Some(vec!["z".repeat(10_000)]);
    assert!(shrink(&mut s, 5_000));
    let kept = s.process.args.as_ref().unwrap()[0].len();
    assert!((64..10_000).contains(&kept), "{kept}");
}

#[test]
fn the_size_cap_keeps_the_notes_of_the_bounds() {
    let (host, _) = reverse_shell_host();
    let c = SnapshotConfig {
        max_sessions: 1,
        ..config()
    };
    let mut s = host.snapshotter(c).take(&target(500, 100, 400));
    assert_eq!(s.dropped, ["sessions: 1 of 2 listed (max_sessions)"]);
    assert!(shrink(&mut s, 1));
    assert!(s.sessions.is_empty());
    assert_eq!(s.dropped.len(), 2, "{:?}", s.dropped);
    assert!(s.dropped[1].starts_with("sessions:") && s.dropped[1].ends_with("(max_alert_bytes)"));
}

#[test]
fn empty_arguments_dropped_for_the_cap_are_marked() {
    let mut s = big_snapshot();
    s.sessions.clear();
    s.ancestry.clear();
    s.sockets.truncate(1);
    s.leaders = Leaders::default();
    s.process.args_truncated = false;
    s.process.args = Some(vec!["/bin/rsh".into(), String::new(), String::new()]);
    assert!(shrink(&mut s, 1));
    assert_eq!(s.process.args.as_ref().map(Vec::len), Some(2));
    assert!(s.process.args_truncated);
    assert!(
        s.dropped.iter().any(|d| d.starts_with("process.args:")),
        "{:?}",
        s.dropped
    );
}

/// A hash the time budget cuts short goes on where it stopped at the next
/// snapshot of the same executable: a large binary gets its hash after a few
/// alerts (here the budget is tight so that several snapshots share the
/// work on most machines), and the hash is that of the whole file.
#[test]
fn a_hash_cut_by_the_budget_is_resumed_by_the_next_snapshot() {
    let (host, _) = reverse_shell_host();
    let big: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8).collect();
    host.file("rsh", &big);
    let mut snapshotter = host.snapshotter(SnapshotConfig {
        time_budget: Duration::from_millis(30),
        hash_max_bytes: 64 << 20,
        ..config()
    });
    let mut cut = 0;
    let mut snap = snapshotter.take(&target(500, 100, 400));
    for _ in 0..500 {
        if snap.pieces.hash.status == Status::Ok {
            break;
        }
        let reason = snap.pieces.hash.reason.clone().unwrap_or_default();
        if snap.pieces.hash.status == Status::TimeBudget && reason.contains("hashed") {
            assert!(reason.contains("goes on from there"), "{reason}");
            cut += 1;
        }
        snap = snapshotter.take(&target(500, 100, 400));
    }
    eprintln!("hash cut short {cut} times before it completed");
    assert_eq!(
        snap.pieces.hash.status,
        Status::Ok,
        "{:?}",
        snap.pieces.hash
    );
    let want: String = Sha256::digest(&big)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        snap.process.sha256.as_deref(),
        Some(want.as_str()),
        "after {cut} cut short"
    );
}
