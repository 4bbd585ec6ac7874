//! Normalizer tests: captured records in, ECS events out, with procfs faked
//! (vanished processes, reused pids and UDP sockets cannot be staged reliably live).

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::parse::parse_log_line;
use crate::process::ProcError;
use crate::testkit;

const FIXTURE: &str = testkit::SCENARIOS;

#[derive(Default)]
struct FakeProc {
    starts: RefCell<HashMap<u32, u64>>,
    udp: Vec<(u32, u32)>,
    clock: Option<(u64, u64)>,
    /// Hands out pins, which live until their pid is in `exited`.
    pins: bool,
    exited: RefCell<Vec<u32>>,
    start_reads: std::cell::Cell<u32>,
}

impl ProcSource for FakeProc {
    /// The pid pinned: the fake decides liveness by it.
    type Pin = u32;

    fn pin(&self, pid: u32) -> Option<u32> {
        (self.pins && self.starts.borrow().contains_key(&pid)).then_some(pid)
    }
    fn is_alive(&self, pin: &u32) -> bool {
        !self.exited.borrow().contains(pin)
    }
    fn start_time(&self, pid: u32) -> Result<u64, ProcError> {
        self.start_reads.set(self.start_reads.get() + 1);
        self.starts
            .borrow()
            .get(&pid)
            .copied()
            .ok_or(ProcError::Gone(pid))
    }
    fn socket_transport(
        &self,
        pid: u32,
        fd: u32,
        _peer: std::net::SocketAddr,
    ) -> Result<Transport, ProcError> {
        if !self.starts.borrow().contains_key(&pid) {
            return Err(ProcError::Gone(pid));
        }
        Ok(if self.udp.contains(&(pid, fd)) {
            Transport::Other("UDP".into())
        } else {
            Transport::Tcp
        })
    }
    fn boot_id(&self) -> String {
        "boot".into()
    }
    fn clock(&self) -> Option<(u64, u64)> {
        self.clock
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        (uid == 0).then(|| "root".into())
    }
}

fn events() -> Vec<Event> {
    testkit::reassemble_log(FIXTURE)
}

fn normalize_all(n: &mut Normalizer<FakeProc>) -> Vec<EcsEvent> {
    testkit::normalize_all(n, &events())
}

fn pids_of(fixture_steps: &str) -> u32 {
    // The fixture's three actor runs, found by a record only each one has.
    let line = FIXTURE.lines().find(|l| l.contains(fixture_steps)).unwrap();
    let r = parse_log_line(line.as_bytes()).unwrap();
    r.get("pid").unwrap().decimal().unwrap() as u32
}

#[test]
fn connects_and_setsids_become_ecs_events() {
    let all_alive = FakeProc::default();
    for line in FIXTURE.lines() {
        let r = parse_log_line(line.as_bytes()).unwrap();
        if let Some(pid) = r.get("pid").and_then(|v| v.decimal()) {
            all_alive.starts.borrow_mut().insert(pid as u32, 1000 + pid);
        }
    }
    let mut n = Normalizer::new(all_alive);
    let evs = normalize_all(&mut n);
    let actions: Vec<&str> = evs.iter().map(|e| e.event.action).collect();
    // Each run is the actor's exec, then: run 1: tcp4 ok, setsid; run 2:
    // tcp6 refused, tcp4 EINPROGRESS, setsid from a thread; run 3: udp4
    // (TCP to the fake), unix (not network), exec, setsid.
    assert_eq!(
        actions,
        [
            "exec",
            "connection_attempted",
            "session_id_change",
            "exec",
            "connection_attempted",
            "connection_attempted",
            "session_id_change",
            "exec",
            "connection_attempted",
            "exec",
            "session_id_change",
        ]
    );
    let evs: Vec<&EcsEvent> = evs.iter().filter(|e| e.event.action != "exec").collect();
    let v6 = &evs[2];
    assert_eq!(v6.destination.as_ref().unwrap().ip, "::1");
    assert_eq!(v6.network.as_ref().unwrap().ip_version, "ipv6");
    assert_eq!(v6.audetect.audit.exit, -111);
    assert_eq!(v6.user.id, "0");
    assert_eq!(v6.user.name.as_deref(), Some("root"));
    assert_eq!(v6.process.executable(), Some("/tmp/actor"));
    assert_eq!(v6.process.name(), Some("actor"));
    let pid = v6.process.pid;
    assert_eq!(v6.process.entity_id, format!("boot:{pid}:{}", 1000 + pid));
    assert_eq!(
        evs[4].process.entity_id, v6.process.entity_id,
        "thread's setsid, same entity"
    );
    assert_eq!(v6.audetect.audit.entity_source, "procfs");
    let json = serde_json::to_value(evs[0]).unwrap();
    assert_eq!(json["event"]["category"][0], "network");
    assert_eq!(json["event"]["type"][0], "start");
    assert_eq!(json["network"]["transport"], "tcp");
    assert!(json["@timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(n.stats().connect_attempts, 4);
    assert_eq!(n.stats().session_changes, 3);
}

/// Real records of this kernel (tests/fixtures/unseen.log): a fast open by
/// sendto and by sendmsg, an io_uring connect inline (URINGOP records inside
/// io_uring_enter's event, with its SOCKADDR) and one run by a worker
/// (URINGOP alone, no address), each then setsid; the auditctl calls that
/// added the rules are sendto on netlink, no connect.
#[test]
fn fast_open_and_io_uring_connects_are_attempts() {
    let mut n = Normalizer::new(FakeProc::default());
    let evs = testkit::normalize_all(&mut n, &testkit::reassemble_log(testkit::UNSEEN));
    let seen: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.event.action, e.audetect.audit.syscall))
        .collect();
    assert_eq!(
        seen,
        [
            ("connection_attempted", "sendto"),
            ("session_id_change", "setsid"),
            ("connection_attempted", "sendmsg"),
            ("session_id_change", "setsid"),
            ("connection_attempted", "io_uring_enter"),
            ("session_id_change", "setsid"),
            ("connection_attempted", "io_uring_enter"),
            ("connection_attempted", "io_uring_enter"),
            ("session_id_change", "setsid"),
        ]
    );
    for e in &evs[..5] {
        if e.event.action == "connection_attempted" {
            assert_eq!(e.destination.as_ref().unwrap().ip, "127.0.0.1");
            assert_eq!(e.network.as_ref().unwrap().ip_version, "ipv4");
        }
    }
    // The worker's operations: the process by its pid, no address.
    let worker = &evs[6];
    assert_eq!(worker.process.pid, evs[8].process.pid);
    assert!(worker.destination.is_none());
    let json = serde_json::to_value(worker).unwrap();
    assert!(json["network"].get("type").is_none(), "{json}");
    assert_eq!(json["user"]["id"], "0");
    assert_eq!(n.stats().connect_attempts, 5);

    // The same sendto without MSG_FASTOPEN (a3=0) is a plain send.
    let plain = testkit::UNSEEN.replace("a2=6 a3=20000000", "a2=6 a3=0");
    let mut n = Normalizer::new(FakeProc::default());
    let evs = testkit::normalize_all(&mut n, &testkit::reassemble_log(&plain));
    assert_eq!(evs[0].audetect.audit.syscall, "setsid", "{:?}", evs[0]);
}

#[test]
fn udp_connect_is_not_an_attempt() {
    let pid = pids_of("exit=-2");
    let fake = FakeProc::default();
    fake.starts.borrow_mut().insert(pid, 5);
    let fake = FakeProc {
        udp: vec![(pid, 3)],
        ..fake
    };
    let mut n = Normalizer::new(fake);
    let evs = normalize_all(&mut n);
    assert!(!evs
        .iter()
        .any(|e| e.process.pid == pid && e.event.action == "connection_attempted"));
    assert_eq!(n.stats().connects_ignored, 1);
}

#[test]
fn vanished_process_keeps_its_entity_through_the_cache_or_fallback() {
    let pid = pids_of("exit=-111");
    let fake = FakeProc::default();
    fake.starts.borrow_mut().insert(pid, 77);
    let mut n = Normalizer::new(fake);
    let evs = events();
    let mut mine = evs.iter().filter(|e| {
        e.record(types::SYSCALL)
            .and_then(|r| r.get("pid"))
            .and_then(|v| v.decimal())
            == Some(u64::from(pid))
    });
    let connect = mine.find_map(|e| n.normalize(e)).unwrap();
    assert_eq!(connect.audetect.audit.entity_source, "procfs");
    n.proc.starts.borrow_mut().clear(); // the process exits
    let later: Vec<EcsEvent> = mine.filter_map(|e| n.normalize(e)).collect();
    assert_eq!(
        later.iter().map(|e| e.event.action).collect::<Vec<_>>(),
        [
            "connection_attempted",
            "connection_attempted",
            "session_id_change"
        ],
        "after its exec, its two connects and its setsid, once it exited"
    );
    assert!(later
        .iter()
        .all(|e| e.process.entity_id == connect.process.entity_id));
    assert!(later
        .iter()
        .all(|e| e.audetect.audit.entity_source == "cache"));

    // Never seen alive at all: every event falls back to pid + session, alike.
    let mut n = Normalizer::new(FakeProc::default());
    let ids: Vec<String> = normalize_all(&mut n)
        .into_iter()
        .filter(|e| e.process.pid == pid)
        .map(|e| e.process.entity_id)
        .collect();
    assert_eq!(ids.len(), 4, "its exec, two connects, setsid");
    assert!(ids
        .iter()
        .all(|id| id == &format!("boot:{pid}:ses4294967295")));
}

#[test]
fn a_reused_pid_is_not_mistaken_for_the_process_that_wrote_the_record() {
    let pid = pids_of("exit=-111");
    // The process now at that pid started a minute after the records.
    let record_sec = 1_795_765_558u64;
    let fake = FakeProc {
        clock: Some((record_sec - 100, 100)),
        ..FakeProc::default()
    };
    fake.starts.borrow_mut().insert(pid, 160 * 100);
    let mut n = Normalizer::new(fake);
    let evs = normalize_all(&mut n);
    let e = evs.iter().find(|e| e.process.pid == pid).unwrap();
    assert_eq!(e.audetect.audit.entity_source, "fallback");
}

#[test]
fn setsid_that_failed_and_non_inet_connects_are_ignored() {
    let text = "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=112 success=no exit=-1 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n\
                type=SYSCALL msg=audit(1700000000.001:2): arch=c000003e syscall=42 success=no exit=-101 a0=3 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n\
                type=SOCKADDR msg=audit(1700000000.001:2): saddr=0200BCAD7F0000010000000000000000\n\
                type=SYSCALL msg=audit(1700000000.001:3): arch=c000003e syscall=42 success=yes exit=0 a0=3 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n";
    let out = testkit::reassemble_log(text);
    assert_eq!(out.len(), 3, "three events, each dropped");
    let mut n = Normalizer::new(FakeProc::default());
    assert!(out.iter().all(|e| n.normalize(e).is_none()));
    assert_eq!(n.stats().connects_ignored, 1, "ENETUNREACH sent no SYN");
}

#[test]
fn i386_socketcall_connect_is_an_attempt() {
    let text = "type=SYSCALL msg=audit(1700000000.001:1): arch=40000003 syscall=102 success=yes exit=0 a0=3 a1=ffd0 pid=9 ppid=1 euid=0 ses=1 exe=\"/x32\"\n\
                type=SOCKETCALL msg=audit(1700000000.001:1): nargs=3 a0=5 a1=ffe0 a2=10\n\
                type=SOCKADDR msg=audit(1700000000.001:1): saddr=0200BCAD7F0000010000000000000000\n\
                type=PROCTITLE msg=audit(1700000000.001:1): proctitle=78\n";
    let out = testkit::reassemble_log(text);
    let mut n = Normalizer::new(FakeProc::default());
    let e = n.normalize(&out[0]).unwrap();
    assert_eq!(e.event.action, "connection_attempted");
    assert_eq!(e.audetect.audit.syscall, "socketcall");
    assert_eq!(e.destination.unwrap().port, 48301);
}

#[test]
fn a_pinned_process_is_not_read_again_until_it_exits() {
    let pid = pids_of("exit=-111");
    let fake = FakeProc {
        pins: true,
        ..FakeProc::default()
    };
    fake.starts.borrow_mut().insert(pid, 77);
    let mut n = Normalizer::new(fake);
    let mine: Vec<Event> = events()
        .into_iter()
        .filter(|e| {
            e.record(types::SYSCALL)
                .and_then(|r| r.get("pid"))
                .and_then(|v| v.decimal())
                == Some(u64::from(pid))
        })
        .collect();
    let mut mine = mine.iter();
    let mut next = |n: &mut Normalizer<FakeProc>| mine.find_map(|e| n.normalize(e)).unwrap();
    let first = next(&mut n);
    // The first event read its process and looked for its parent.
    let reads = n.proc.start_reads.get();
    let second = next(&mut n);
    assert_eq!(
        n.proc.start_reads.get(),
        reads,
        "the pin vouches for the second"
    );
    assert_eq!(second.process.entity_id, first.process.entity_id);
    assert_eq!(second.audetect.audit.entity_source, "procfs");

    // It exits and its pid is reused: the pin no longer vouches, procfs is
    // read again and names the new process (whose parent is looked up too).
    n.proc.exited.borrow_mut().push(pid);
    n.proc.starts.borrow_mut().insert(pid, 99);
    let third = next(&mut n);
    assert_eq!(n.proc.start_reads.get(), reads + 2);
    assert_eq!(third.process.entity_id, format!("boot:{pid}:99"));
}

#[test]
fn the_wanted_syscalls_are_those_normalize_maps() {
    let wanted = wanted_syscalls();
    for arch in crate::syscalls::ARCHES {
        for nr in 0..1024 {
            assert_eq!(
                wanted.contains(arch.id, nr),
                syscall(u64::from(arch.id), u64::from(nr)).is_some(),
                "{} {nr}",
                arch.name
            );
        }
    }
}

#[test]
fn proctitle_and_cwd_land_in_the_event() {
    // proctitle "sh\0-i", a full 128 bytes in the second event.
    let long = "61".repeat(128);
    let text = format!(
        "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=112 success=yes exit=9 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n\
         type=CWD msg=audit(1700000000.001:1): cwd=\"/srv/a b\"\n\
         type=PROCTITLE msg=audit(1700000000.001:1): proctitle=7368002D69\n\
         type=SYSCALL msg=audit(1700000000.001:2): arch=c000003e syscall=112 success=yes exit=9 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n\
         type=PROCTITLE msg=audit(1700000000.001:2): proctitle={long}\n\
         type=SYSCALL msg=audit(1700000000.001:3): arch=c000003e syscall=112 success=yes exit=9 pid=9 ppid=1 euid=0 ses=1 exe=\"/x\"\n"
    );
    let out = testkit::reassemble_log(&text);
    let mut n = Normalizer::new(FakeProc::default());
    let evs: Vec<EcsEvent> = out.iter().filter_map(|e| n.normalize(e)).collect();
    let p: Vec<_> = evs.iter().map(|e| &e.process).collect();
    assert_eq!(
        p[0].image.args,
        Some(vec!["sh".to_string(), "-i".to_string()])
    );
    assert!(!p[0].image.args_truncated);
    assert_eq!(p[0].working_directory.as_deref(), Some("/srv/a b"));
    assert_eq!(p[1].image.args.as_ref().map(|a| a[0].len()), Some(128));
    assert!(p[1].image.args_truncated, "the kernel cut it at 128 bytes");
    // The process table remembers the directory; the third event, with no
    // PROCTITLE of its own, gets the latest command line known.
    assert_eq!(p[1].working_directory.as_deref(), Some("/srv/a b"));
    assert_eq!(p[2].image.args, p[1].image.args);
    let json = serde_json::to_value(&evs[0]).unwrap();
    assert_eq!(json["process"]["args"][1], "-i", "{json}");
    assert_eq!(json["process"]["command_line"], "sh -i", "{json}");
    assert_eq!(json["process"]["working_directory"], "/srv/a b", "{json}");
}

/// One real process tree (tests/fixtures/kinds.log, captured by
/// `capture.py ... kinds` on Linux 6.x): bash running true, sh -c 'exit 3',
/// touch, mv, ln -s, rm, python3 setgid+setuid, python3 accept+connect over
/// loopback, setsid, rmdir.
fn kinds() -> &'static [EcsEvent] {
    testkit::kinds_ecs()
}

#[test]
fn every_kind_of_event_comes_from_a_real_process_tree() {
    let evs = kinds();
    let count = |a: &str| evs.iter().filter(|e| e.event.action == a).count();
    for (action, _, _) in crate::fields::KINDS {
        if *action == "load_module" {
            continue; // loading a module is not staged on a shared machine
        }
        assert!(count(action) > 0, "no {action} event");
    }
    let find = |action: &str, name: &str| {
        evs.iter()
            .find(|e| e.event.action == action && e.process.name() == Some(name))
            .unwrap_or_else(|| panic!("no {action} by {name}"))
    };
    let touch = find("exec", "touch");
    assert_eq!(
        touch.process.image.args.as_deref(),
        Some(&["touch".to_string(), "created.sh".into()][..])
    );
    assert_eq!(
        touch.process.image.command_line.as_deref(),
        Some("touch created.sh")
    );
    assert_eq!(touch.process.image.args_count, Some(2));
    assert_eq!(
        touch
            .process
            .parent
            .image
            .as_ref()
            .and_then(|i| i.name.as_deref()),
        Some("bash")
    );
    let created = find("creation", "touch");
    assert!(created
        .file
        .as_ref()
        .unwrap()
        .name
        .path
        .ends_with("/created.sh"));
    assert_eq!(
        created.file.as_ref().unwrap().name.extension.as_deref(),
        Some("sh")
    );
    assert_eq!(created.process.entity_id, touch.process.entity_id);
    let renamed = find("rename", "mv");
    let f = renamed.file.as_ref().unwrap();
    assert_eq!(f.name.name, "renamed.txt");
    assert_eq!(f.ext.as_ref().unwrap().original.name, "created.sh");
    assert_eq!(
        find("creation", "ln").file.as_ref().unwrap().name.name,
        "link"
    );
    assert!(evs
        .iter()
        .any(|e| e.event.action == "deletion" && e.file.as_ref().unwrap().name.name == "link"));
    let exit3 = evs
        .iter()
        .find(|e| e.event.action == "end" && e.process.exit_code == Some(3))
        .expect("sh -c 'exit 3' ends with 3");
    assert_eq!(exit3.process.name(), Some("dash"), "Debian's sh");
    let uid = evs.iter().find(|e| e.event.action == "uid_change").unwrap();
    assert_eq!(uid.user.name, None, "replay knows no names");
    assert_eq!(
        (uid.user.id.as_str(), uid.group.id.as_str()),
        ("65534", "65534")
    );
    let accepted = evs
        .iter()
        .find(|e| e.event.action == "connection_accepted")
        .unwrap();
    assert_eq!(accepted.source.as_ref().unwrap().ip, "127.0.0.1");
    assert_eq!(accepted.network.as_ref().unwrap().direction, "ingress");
    let fork = evs.iter().find(|e| e.event.action == "fork").unwrap();
    assert_ne!(fork.process.pid, fork.process.parent.pid);
    assert_eq!(
        fork.process
            .parent
            .image
            .as_ref()
            .and_then(|i| i.name.as_deref()),
        fork.process.name()
    );
    // The fork's child is the process whose exec follows.
    assert!(evs
        .iter()
        .any(|e| e.event.action == "exec" && e.process.entity_id == fork.process.entity_id));
}

/// Names audit had to hex-encode (a newline, bytes that are not UTF-8)
/// come out as text a rule can test and JSON keeps on one line.
#[test]
fn a_path_with_a_newline_and_a_name_that_is_not_utf8_are_clear_events() {
    // "/tmp/a\nb.sh" and "/tmp/\xff\xfe.bin", as the kernel hex-encodes them.
    let hex = |s: &[u8]| s.iter().map(|b| format!("{b:02X}")).collect::<String>();
    let text = format!(
        "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=941 a3=1b6 items=2 ppid=1 pid=9 uid=0 gid=0 euid=0 egid=0 tty=(none) ses=1 exe=\"/usr/bin/touch\"\n\
         type=PATH msg=audit(1700000000.001:1): item=0 name=\"/tmp/\" nametype=PARENT\n\
         type=PATH msg=audit(1700000000.001:1): item=1 name={} nametype=CREATE\n\
         type=SYSCALL msg=audit(1700000000.001:2): arch=c000003e syscall=87 success=yes exit=0 a0=1 items=2 ppid=1 pid=9 uid=0 gid=0 euid=0 egid=0 tty=(none) ses=1 exe={}\n\
         type=PATH msg=audit(1700000000.001:2): item=1 name={} nametype=DELETE\n",
        hex(b"/tmp/a\nb.sh"),
        hex(b"/tmp/\xff\xfe"),
        hex(b"/tmp/\xff\xfe.bin"),
    );
    let out = testkit::reassemble_log(&text);
    let mut n = Normalizer::new(FakeProc::default());
    let evs: Vec<EcsEvent> = out.iter().filter_map(|e| n.normalize(e)).collect();
    assert_eq!(evs.len(), 2);
    let created = evs[0].file.as_ref().unwrap();
    assert_eq!(created.name.path, "/tmp/a\nb.sh");
    assert_eq!(created.name.extension.as_deref(), Some("sh"));
    let deleted = evs[1].file.as_ref().unwrap();
    assert_eq!(deleted.name.path, "/tmp/\u{fffd}\u{fffd}.bin");
    assert_eq!(evs[1].process.executable(), Some("/tmp/\u{fffd}\u{fffd}"));
    for e in &evs {
        let json = serde_json::to_string(e).unwrap();
        assert!(!json.contains('\n'), "{json}");
    }
    assert_eq!(n.stats().malformed_events, 0);
}

/// An exec whose argv the kernel spread over many EXECVE records: every
/// record is read, the count is kept, the memory is bounded.
#[test]
fn an_exec_of_ten_thousand_arguments_is_one_bounded_event() {
    let mut text = String::from(
        "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=59 success=yes exit=0 a0=1 items=2 ppid=1 pid=9 uid=0 gid=0 euid=0 egid=0 tty=pts0 ses=1 exe=\"/usr/bin/echo\"\n",
    );
    // The kernel cuts EXECVE records near 7,500 bytes: about 800 arguments each.
    let args: Vec<String> = (0..10_000).map(|i| format!("a{i}=\"x\"")).collect();
    for (i, chunk) in args.chunks(800).enumerate() {
        let argc = if i == 0 { "argc=10000 " } else { "" };
        text.push_str(&format!(
            "type=EXECVE msg=audit(1700000000.001:1): {argc}{}\n",
            chunk.join(" ")
        ));
    }
    let out = testkit::reassemble_log(&text);
    let mut n = Normalizer::new(FakeProc::default());
    let e = n.normalize(&out[0]).unwrap();
    assert_eq!(e.event.action, "exec");
    assert_eq!(e.process.image.args_count, Some(10_000));
    assert_eq!(
        e.process.image.args.as_ref().map(Vec::len),
        Some(crate::process::MAX_ARGS)
    );
    assert!(e.audetect.audit.args_truncated);
    assert!(e.process.interactive, "tty=pts0");
}

/// A container runtime's child and its children are in a container
/// (process.entry_leader.entry_meta.type); the runtime itself is not.
#[test]
fn processes_under_a_container_runtime_are_in_a_container() {
    let sc = |serial: u32, nr: u32, exit: u32, pid: u32, ppid: u32, exe: &str| {
        format!(
            "type=SYSCALL msg=audit(1700000000.001:{serial}): arch=c000003e syscall={nr} success=yes exit={exit} a0=1200011 items=0 ppid={ppid} pid={pid} uid=0 gid=0 euid=0 egid=0 tty=(none) ses=4 exe=\"{exe}\"\n"
        )
    };
    let shim = "/usr/bin/containerd-shim-runc-v2";
    let text = [
        sc(1, 59, 0, 100, 1, shim),
        sc(2, 56, 101, 100, 1, shim),
        sc(3, 59, 0, 101, 100, "/bin/sh"),
        sc(4, 56, 102, 101, 100, "/bin/sh"),
        sc(5, 59, 0, 102, 101, "/usr/bin/curl"),
    ]
    .concat();
    let out = testkit::reassemble_log(&text);
    let mut n = Normalizer::new(FakeProc::default());
    let evs: Vec<EcsEvent> = out.iter().filter_map(|e| n.normalize(e)).collect();
    fn kind(e: &EcsEvent) -> crate::eql::Value<'_> {
        crate::eql::Event::field(e, "process.entry_leader.entry_meta.type")
    }
    let of = |action: &str, name: &str| {
        evs.iter()
            .find(|e| e.event.action == action && e.process.name() == Some(name))
            .unwrap()
    };
    assert_eq!(
        kind(of("exec", "containerd-shim-runc-v2")),
        crate::eql::Value::Null
    );
    assert_eq!(
        kind(of("exec", "sh")),
        crate::eql::Value::Str("container".into())
    );
    assert_eq!(
        kind(of("exec", "curl")),
        crate::eql::Value::Str("container".into())
    );
}

/// A posix_spawn child's exec can reach audetect before its parent's clone:
/// the fork event still shows the parent's program, the child's exec its own.
#[test]
fn a_fork_reported_after_the_child_s_exec_shows_the_parent_s_program() {
    let text = "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=59 success=yes exit=0 a0=1 items=0 ppid=1 pid=9 uid=0 gid=0 euid=0 egid=0 tty=(none) ses=4 exe=\"/usr/bin/python3\"\n\
                type=SYSCALL msg=audit(1700000000.002:3): arch=c000003e syscall=59 success=yes exit=0 a0=1 items=0 ppid=9 pid=10 uid=0 gid=0 euid=0 egid=0 tty=(none) ses=4 exe=\"/usr/bin/dash\"\n\
                type=EXECVE msg=audit(1700000000.002:3): argc=2 a0=\"sh\" a1=\"-c\"\n\
                type=SYSCALL msg=audit(1700000000.002:2): arch=c000003e syscall=435 success=yes exit=10 a0=1 items=0 ppid=1 pid=9 uid=0 gid=0 euid=0 egid=0 tty=(none) ses=4 exe=\"/usr/bin/python3\"\n";
    let out = testkit::reassemble_log(text);
    let mut n = Normalizer::new(FakeProc::default());
    let evs: Vec<EcsEvent> = out.iter().filter_map(|e| n.normalize(e)).collect();
    let fork = evs.iter().find(|e| e.event.action == "fork").unwrap();
    let exec = evs
        .iter()
        .find(|e| e.event.action == "exec" && e.process.pid == 10)
        .unwrap();
    assert_eq!(fork.process.pid, 10);
    assert_eq!(fork.process.name(), Some("python3"));
    assert_eq!(exec.process.name(), Some("dash"));
    assert_eq!(fork.process.entity_id, exec.process.entity_id);
    assert_eq!(
        exec.process
            .parent
            .image
            .as_ref()
            .and_then(|i| i.name.as_deref()),
        Some("python3")
    );
}

/// An event after a clock step: @timestamp is the record's own (wall) time,
/// which the SIEM sorts by, while the time sequences measure is on the
/// steady timeline the reassembler keeps (the step taken out).
#[test]
fn an_event_after_a_clock_step_is_measured_on_the_steady_timeline() {
    let mut stepped = events();
    let alive = FakeProc::default();
    for event in &mut stepped {
        event.clock_shift_ms = -60_000;
        for r in &event.records {
            if let Some(pid) = r.get("pid").and_then(|v| v.decimal()) {
                alive.starts.borrow_mut().insert(pid as u32, 1000 + pid);
            }
        }
    }
    let mut n = Normalizer::new(alive);
    let all = testkit::normalize_all(&mut n, &stepped);
    let ecs = all
        .iter()
        .find(|e| e.event.action == "connection_attempted")
        .expect("a connect in the fixture");
    let wall = stepped
        .iter()
        .find(|e| e.serial == ecs.audetect.audit.serial)
        .expect("its event")
        .time;
    assert_eq!(ecs.time.as_millis(), wall.as_millis() + 60_000);
    assert_eq!(ecs.wall_sec, wall.sec);
    let json = serde_json::to_value(ecs).unwrap();
    let stamp = json["@timestamp"].as_str().unwrap();
    assert_eq!(
        stamp,
        crate::timefmt::rfc3339_millis(wall.sec, u32::from(wall.msec)),
        "@timestamp keeps the record's time"
    );
}

/// A host of `n` processes with nothing but a start time (its pid) and a
/// command line, for the table's seed.
struct Crowd(u32);

impl ProcSource for Crowd {
    type Pin = ();
    fn start_time(&self, pid: u32) -> Result<u64, ProcError> {
        Ok(pid as u64)
    }
    fn socket_transport(
        &self,
        pid: u32,
        _fd: u32,
        _peer: std::net::SocketAddr,
    ) -> Result<Transport, ProcError> {
        Err(ProcError::Gone(pid))
    }
    fn boot_id(&self) -> String {
        "boot".into()
    }
    fn clock(&self) -> Option<(u64, u64)> {
        None
    }
    fn pids(&self) -> Vec<u32> {
        // Not in start order: the seed sorts.
        (1..=self.0).rev().collect()
    }
    fn info(&self, pid: u32) -> Result<crate::process::ProcInfo, ProcError> {
        Ok(crate::process::ProcInfo {
            ppid: 1,
            start: pid as u64,
            executable: Some("/usr/bin/sleep".into()),
            args: vec!["sleep".into(), "infinity".into()],
            working_directory: None,
            creds: None,
            interactive: false,
        })
    }
}

#[test]
fn a_host_past_the_bound_seeds_its_newest_processes_and_counts_the_rest() {
    let mut n = Normalizer::new(Crowd(3000));
    n.set_max_processes(1024);
    assert_eq!(n.seed(), 1024);
    let t = n.stats().table;
    assert_eq!(
        (t.entries, t.seeded, t.not_seeded, t.evicted),
        (1024, 1024, 1976, 0),
        "{t:?}"
    );
    let known = |pid: u32| {
        n.table
            .get(&EntityId::new("boot", pid, pid as u64))
            .is_some()
    };
    assert!(known(3000) && known(1977), "the newest 1024 are known");
    assert!(!known(1976) && !known(1), "the oldest are not");
}
