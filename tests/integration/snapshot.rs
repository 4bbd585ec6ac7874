//! The triage snapshot on the real kernel: a reverse shell started through a
//! chain of shells, processes gone before audetect looks, and the size cap.
//! Needs root.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::daemon::{actor, ports, run_actor, Daemon};
use crate::util::kernel_test;

/// The alert about `pid`, once it is there.
fn alert_for(d: &Daemon, pid: u32) -> Value {
    let all = d.wait_alert_for(pid);
    let mine: Vec<&Value> = all.iter().filter(|a| a["process"]["pid"] == pid).collect();
    assert_eq!(mine.len(), 1, "one alert for {pid}: {all:#?}");
    mine[0].clone()
}

/// `sh -c 'sh -c "ACTOR STEPS; true"; true'` (the `; true` keeps each shell
/// from exec'ing what it runs, so both stay in the chain): the actor's pid
/// from the first line it prints, and the outer shell to reap (holding the
/// actor's stdout open: it writes there until dup-stdio).
fn through_two_shells(steps: &str) -> (u32, Child, String) {
    let inner = format!("{} {steps}; true", actor().display());
    let outer = format!("sh -c \"{inner}\"; true");
    let mut child = Command::new("sh")
        .args(["-c", &outer])
        .stdout(Stdio::piped())
        // The shells' "Killed" when the test ends the actor is noise.
        .stderr(Stdio::null())
        .spawn()
        .expect("start sh");
    let mut first = String::new();
    let out = child.stdout.as_mut().expect("piped");
    BufReader::new(out).read_line(&mut first).expect("read pid");
    let pid = first
        .strip_prefix("pid ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("actor printed no pid: {first:?}"));
    (pid, child, inner)
}

fn stop_chain(pid: u32, mut child: Child) {
    // SAFETY: kill on the pid of a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect()
}

#[test]
fn kernel_snapshot_shows_a_reverse_shell_its_chain_and_its_stdio() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let port = listener.local_addr().expect("addr").port();
    let steps = format!("tcp4:{port} dup-stdio setsid sleep:4000");
    let (pid, chain, inner) = through_two_shells(&steps);
    // Accepted and kept open: the actor's socket is ESTABLISHED.
    let (_peer, _) = listener.accept().expect("the actor connects");
    let a = alert_for(&d, pid);
    stop_chain(pid, chain);
    let s = &a["audetect"]["snapshot"];
    for piece in ["process", "sockets", "stdio", "ancestry", "hash"] {
        assert_eq!(s["status"][piece], "ok", "{piece}: {s:#}");
    }
    let p = &a["process"];
    let exe = actor().display().to_string();
    // The command line, as the process has it.
    let mut want = vec![exe.as_str()];
    want.extend(steps.split(' '));
    assert_eq!(strings(&p["args"]), want);
    assert_eq!(p["command_line"], format!("{exe} {steps}"));
    assert_eq!(p["args_count"], 5);
    assert_eq!(p["executable"], exe);
    let digest: String = Sha256::digest(std::fs::read(actor()).expect("read actor"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(p["hash"]["sha256"], digest);
    assert_eq!(p["user"]["name"], "root");
    assert_eq!(a["user"]["name"], "root");
    assert!(p["start"].as_str().is_some_and(|t| t.ends_with('Z')), "{p}");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(p["working_directory"], cwd.display().to_string());
    // It called setsid: it leads its session and its process group.
    assert_eq!(p["session_leader"]["pid"], pid);
    assert_eq!(p["group_leader"]["pid"], pid);
    assert_eq!(s["process"]["leads_session"], true);
    assert_eq!(s["process"]["session_id"], pid);
    // The chain: two shells, this test, ..., pid 1.
    assert_eq!(strings(&p["parent"]["args"]), ["sh", "-c", inner.as_str()]);
    let chain = s["ancestry"].as_array().expect("ancestry");
    assert_eq!(chain[0]["pid"], p["parent"]["pid"]);
    assert_eq!(
        strings(&chain[1]["args"]),
        ["sh", "-c", &format!("sh -c \"{inner}\"; true")]
    );
    assert_eq!(
        chain[2]["pid"],
        std::process::id(),
        "this test started the shells"
    );
    assert_eq!(chain.last().unwrap()["pid"], 1);
    // Entity ids like the alert's own: BOOT_ID:PID:START.
    let boot = p["entity_id"].as_str().unwrap().split(':').next().unwrap();
    for c in chain {
        let id = c["entity_id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{boot}:{}:", c["pid"])), "{c}");
    }
    // Its socket, with its remote end, is its stdin, stdout and stderr.
    let sock = &s["sockets"][0];
    assert_eq!(sock["transport"], "tcp");
    assert_eq!(sock["state"], "ESTABLISHED");
    assert_eq!(sock["remote"]["ip"], "127.0.0.1");
    assert_eq!(sock["remote"]["port"], port);
    assert_eq!(sock["local"]["ip"], "127.0.0.1");
    let fds: Vec<u64> = sock["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(fds.starts_with(&[0, 1, 2]), "{fds:?}");
    for fd in ["stdin", "stdout", "stderr"] {
        assert_eq!(s["stdio"][fd]["type"], "socket", "{fd}");
        assert_eq!(s["stdio"][fd]["remote"]["port"], port, "{fd}");
    }
    assert_eq!(s["reverse_shell_stdio"], true);
    assert_eq!(s["truncated"], false);
    assert!(s["duration_us"].as_u64().is_some());
    d.stop();
}

/// connect → setsid → exit while the daemon is stopped (SIGSTOP): by the
/// time it reads the records the process is gone, whatever the machine's speed.
#[test]
fn kernel_snapshot_of_a_process_gone_says_what_could_not_be_read_and_why() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    // SAFETY: signals to the daemon this test started.
    unsafe { libc::kill(d.pid() as i32, libc::SIGSTOP) };
    let run = std::panic::catch_unwind(|| {
        run_actor(actor(), &[&format!("tcp4:{}", p.open), "setsid", "exit"])
    });
    unsafe { libc::kill(d.pid() as i32, libc::SIGCONT) };
    let run = run.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let a = alert_for(&d, run.pid);
    let s = &a["audetect"]["snapshot"];
    for piece in ["process", "sockets", "stdio", "hash"] {
        assert_eq!(s["status"][piece], "gone", "{piece}: {s:#}");
        let why = s["reasons"][piece].as_str().unwrap_or_default();
        assert!(
            why.contains(&format!("process {}", run.pid)) && why.contains("exited"),
            "{piece}: {why}"
        );
    }
    // What the audit record carried stands in: the command line from PROCTITLE.
    let exe = actor().display().to_string();
    assert_eq!(strings(&a["process"]["args"])[0], exe);
    assert_eq!(strings(&s["process"]["from_audit"]), ["args"]);
    // Its parent, this test, still lives: the chain starts there.
    assert_eq!(s["status"]["ancestry"], "partial");
    assert!(s["reasons"]["ancestry"]
        .as_str()
        .unwrap()
        .contains("audit record"));
    assert_eq!(s["ancestry"][0]["pid"], std::process::id());
    assert!(s["stdio"].is_null() && s["sockets"].is_null());
    assert!(s["reverse_shell_stdio"].is_null(), "unknown, not false");
    d.stop();
}

/// The child connects, calls setsid and exits; its parent reaps it only
/// 3 s later. The daemon is stopped until the child is a zombie, so that it
/// finds one: its stat is there, the rest is not.
#[test]
fn kernel_snapshot_of_a_zombie_keeps_its_chain() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    // SAFETY: signals to the daemon this test started.
    unsafe { libc::kill(d.pid() as i32, libc::SIGSTOP) };
    let staged = std::panic::catch_unwind(|| {
        let mut parent = Command::new(actor())
            .args([
                "fork-reap-after:3000",
                &format!("tcp4:{}", p.open),
                "setsid",
                "exit",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start actor");
        // Kept open to the end: both write to it, and would die of SIGPIPE.
        let mut out = BufReader::new(parent.stdout.take().expect("piped"));
        let mut line = String::new();
        let mut child = None;
        while child.is_none() && out.read_line(&mut line).is_ok_and(|n| n > 0) {
            child = line
                .strip_prefix("child ")
                .and_then(|c| c.trim().parse::<u32>().ok());
            line.clear();
        }
        let child = child.expect("the actor names its child");
        let zombie = crate::util::wait_for(std::time::Duration::from_secs(5), || {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            stat.rsplit_once(") ")?.1.starts_with('Z').then_some(())
        });
        assert!(zombie.is_some(), "child {child} never became a zombie");
        (parent, child, out)
    });
    unsafe { libc::kill(d.pid() as i32, libc::SIGCONT) };
    let (mut parent, child, out) = staged.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let a = alert_for(&d, child);
    let _ = parent.wait();
    drop(out);
    let s = &a["audetect"]["snapshot"];
    assert_eq!(s["status"]["process"], "gone", "{s:#}");
    assert!(
        s["reasons"]["process"].as_str().unwrap().contains("zombie"),
        "{s:#}"
    );
    for piece in ["sockets", "stdio", "hash"] {
        assert_eq!(s["status"][piece], "gone", "{piece}");
    }
    assert_eq!(s["process"]["state"], "Z");
    assert_eq!(s["process"]["leads_session"], true, "stat still says so");
    assert_eq!(s["status"]["ancestry"], "ok", "{s:#}");
    assert_eq!(
        s["ancestry"][0]["pid"],
        parent.id(),
        "the parent that had not reaped it"
    );
    assert_eq!(s["ancestry"][1]["pid"], std::process::id());
    d.stop();
}

#[test]
fn kernel_snapshot_size_cap_holds() {
    let (lock, _) = kernel_test!();
    // The audit part alone (two events, each with its process and parent
    // from the process table, command lines cut to the least) is about
    // 5.5 KB, more from a deeper checkout (the actor's path is in it a dozen
    // times); the cap leaves the stdio and the nearest ancestors 2 KB.
    let cap = 8000;
    let d = Daemon::start(lock, &format!("[snapshot]\nmax_alert_bytes = {cap}\n"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let port = listener.local_addr().expect("addr").port();
    // A command line of 12 KB, in the process and in both shells above it.
    let pad = format!("pad:{}", "x".repeat(12_000));
    let (pid, chain, _) =
        through_two_shells(&format!("tcp4:{port} dup-stdio setsid {pad} sleep:4000"));
    let (_peer, _) = listener.accept().expect("the actor connects");
    let a = alert_for(&d, pid);
    stop_chain(pid, chain);
    let line = std::fs::read_to_string(d.dir.path().join("alerts.jsonl")).expect("alerts");
    for l in line.lines() {
        assert!(l.len() <= cap, "an alert of {} bytes over {cap}", l.len());
    }
    let s = &a["audetect"]["snapshot"];
    assert_eq!(s["truncated"], true);
    let dropped = strings(&s["dropped"]);
    assert!(
        dropped.iter().any(|d| d.starts_with("process.args:")),
        "{dropped:?}"
    );
    // What matters most survives the cap.
    assert_eq!(s["reverse_shell_stdio"], true);
    assert_eq!(s["stdio"]["stdin"]["remote"]["port"], port);
    assert_eq!(
        strings(&a["process"]["args"])[0],
        actor().display().to_string()
    );
    assert_eq!(s["process"]["args_truncated"], true);
    assert_eq!(s["status"]["process"], "ok");
    d.stop();
}

#[test]
fn replay_alerts_say_no_snapshot_was_taken() {
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .args([
            "replay",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scenarios.log"),
        ])
        .output()
        .expect("run audetect replay");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    for line in text.lines() {
        let a: Value = serde_json::from_str(line).expect("JSON");
        let s = &a["audetect"]["snapshot"];
        assert_eq!(s["taken"], false, "{s}");
        assert!(s["reason"].as_str().unwrap().starts_with("replay"), "{s}");
        // The command line is the records' own (PROCTITLE), not /proc's.
        assert_eq!(strings(&a["process"]["args"])[0], "/tmp/actor", "{a}");
        n += 1;
    }
    assert!(n > 0, "replay gave no alert");
}

/// Issue 18's exclusion by path: a program bind-mounted over another's path
/// in a private mount namespace runs under that path. The snapshot compares
/// the file the process runs with the host's file of its path.
#[test]
fn kernel_snapshot_says_when_the_executable_is_not_the_hosts_file_of_its_path() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let dir = crate::util::TempDir::new("bind");
    // The host's "program" at that path: a copy, another inode.
    let host_file = dir.path().join("sshd");
    std::fs::copy(actor(), &host_file).expect("copy the actor");
    let p = ports();
    let steps = format!("tcp4:{} setsid sleep:2000", p.open);
    let plain = crate::daemon::run_command(Command::new(&host_file).args(steps.split(' ')));
    let a = alert_for(&d, plain.pid);
    assert_eq!(
        a["audetect"]["snapshot"]["process"]["executable_on_host"], "same",
        "{a:#}"
    );
    let bound = crate::daemon::run_command(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &format!(
            "mount --bind {actor} {host} && exec {host} {steps}",
            actor = actor().display(),
            host = host_file.display()
        ),
    ]));
    let a = alert_for(&d, bound.pid);
    assert_eq!(
        a["process"]["executable"],
        host_file.display().to_string(),
        "the path it runs under"
    );
    assert_eq!(
        a["audetect"]["snapshot"]["process"]["executable_on_host"], "another file",
        "{a:#}"
    );
    d.stop();
}
