//! Replay of real audit logs other projects publish (tests/corpus, with
//! their sources and licences), checked against `ausearch -i`: audit-userspace's
//! own reader, which nobody here wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{skip, test_name};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// Every log in the corpus, by directory then name.
fn logs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(CORPUS).expect("tests/corpus") {
        let dir = dir.expect("corpus entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("corpus dir") {
            let f = f.expect("corpus file").path();
            if matches!(f.extension().and_then(|e| e.to_str()), Some("log" | "txt")) {
                out.push(f);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 40, "the corpus is there: {out:?}");
    out
}

/// What one replay printed: its events, its alerts and its summary line.
struct Replay {
    events: Vec<Value>,
    alerts: Vec<Value>,
    stderr: String,
}

fn replay(config: Option<&Path>, inputs: &[PathBuf]) -> Replay {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_audetect"));
    cmd.arg("replay").arg("--events");
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    let out = cmd.args(inputs).output().expect("run audetect replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "replay of {inputs:?} failed: {stderr}"
    );
    let (mut events, mut alerts) = (Vec::new(), Vec::new());
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(l).expect("replay prints JSON lines");
        match v["event"]["kind"].as_str() {
            Some("event") => events.push(v),
            _ => alerts.push(v),
        }
    }
    Replay {
        events,
        alerts,
        stderr,
    }
}

/// The number after `word` and before `unit` in the summary line.
fn summary_count(stderr: &str, before: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("replayed "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let at = line
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {line}"));
    let digits: String = line[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .expect("a count")
}

/// A SYSCALL record as `ausearch -i` interprets it, with its SOCKADDR.
#[derive(Debug, Default)]
struct Interpreted {
    fields: HashMap<String, String>,
    /// `saddr_fam` of the event's SOCKADDR, if it has one.
    family: Option<String>,
}

impl Interpreted {
    fn get(&self, k: &str) -> &str {
        self.fields.get(k).map_or("", String::as_str)
    }
    /// exit= without ausearch's explanation: `EINPROGRESS(Operation ...)`.
    fn exit(&self) -> &str {
        let e = self.get("exit");
        e.split('(').next().unwrap_or(e)
    }
}

/// `ausearch -if FILE -i`, by (node, serial).
fn ausearch(file: &Path) -> HashMap<(String, u64), Interpreted> {
    let out = Command::new("ausearch")
        .arg("-if")
        .arg(file)
        .arg("-i")
        .output()
        .expect("run ausearch");
    let mut by_serial: HashMap<(String, u64), Interpreted> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (node, line) = match line.strip_prefix("node=") {
            Some(rest) => match rest.split_once(' ') {
                Some((n, l)) => (n.to_owned(), l),
                None => continue,
            },
            None => (String::new(), line),
        };
        let Some(rest) = line.strip_prefix("type=") else {
            continue;
        };
        let Some((rtype, rest)) = rest.split_once(" msg=audit(") else {
            continue;
        };
        let Some((stamp, body)) = rest.split_once(") : ") else {
            continue;
        };
        let Some(serial) = stamp.rsplit(':').next().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let entry = by_serial.entry((node, serial)).or_default();
        match rtype {
            "SYSCALL" => {
                // exe= is decoded and may hold spaces ("... (deleted)"); it is
                // followed by subj= or key= when they are there.
                let (head, exe) = match body.split_once(" exe=") {
                    Some((h, e)) => {
                        let end = [" subj=", " key="]
                            .iter()
                            .filter_map(|m| e.find(m))
                            .min()
                            .unwrap_or(e.len());
                        (h, Some(e[..end].to_owned()))
                    }
                    None => (body, None),
                };
                for kv in head.split(' ') {
                    if let Some((k, v)) = kv.split_once('=') {
                        entry.fields.insert(k.to_owned(), v.to_owned());
                    }
                }
                if let Some(e) = exe {
                    entry.fields.insert("exe".into(), e);
                }
            }
            "SOCKADDR" => {
                entry.family = body
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix("saddr_fam="))
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    by_serial.retain(|_, r| !r.fields.is_empty());
    by_serial
}

fn ausearch_missing() -> Option<String> {
    match Command::new("ausearch").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("ausearch (Debian's auditd package) is not installed".into()),
    }
}

/// connect() results after which the kernel had sent a SYN, as ausearch names them.
const ATTEMPTS: [&str; 2] = ["0", "EINPROGRESS"];

/// The exec, setsid, exit and connect calls ausearch shows that must each
/// have become an event.
fn must_be_events(r: &Interpreted) -> bool {
    let ok = r.get("success") == "yes";
    match r.get("syscall") {
        "execve" | "execveat" | "setsid" => ok,
        "exit_group" => true,
        "connect" => {
            matches!(r.family.as_deref(), Some("inet" | "inet6")) && ATTEMPTS.contains(&r.exit())
        }
        _ => false,
    }
}

#[test]
fn every_corpus_record_is_read_or_counted_as_malformed() {
    for log in logs() {
        let text = std::fs::read(&log).expect("read a log");
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        // A line is a record when it has a header; laurel's `#` notes and a
        // record whose header is `msg=?` are not.
        let not_records = lines
            .iter()
            .filter(|l| !l.windows(10).any(|w| w == b"msg=audit("))
            .count() as u64;
        let r = replay(None, std::slice::from_ref(&log));
        assert_eq!(
            summary_count(&r.stderr, "records"),
            lines.len() as u64,
            "{}: every line is counted: {}",
            log.display(),
            r.stderr
        );
        assert_eq!(
            summary_count(&r.stderr, "malformed"),
            not_records,
            "{}: only what is not a record is malformed: {}",
            log.display(),
            r.stderr
        );
    }
}

#[test]
fn the_corpus_raises_no_alert_with_the_builtin_rule_or_the_pack() {
    let pack = crate::pack::pack_dir();
    let dir = crate::util::TempDir::new("corpus");
    let config = dir.path().join("pack.toml");
    if let Ok(p) = &pack {
        std::fs::write(
            &config,
            format!(
                "[detection]\nrule_paths = [{:?}]\n",
                p.display().to_string()
            ),
        )
        .expect("write the config");
    }
    for log in logs() {
        let r = replay(None, std::slice::from_ref(&log));
        assert!(r.alerts.is_empty(), "{}: {:#?}", log.display(), r.alerts);
        if pack.is_ok() {
            let r = replay(Some(&config), std::slice::from_ref(&log));
            assert!(r.alerts.is_empty(), "{}: {:#?}", log.display(), r.alerts);
        }
    }
    if let Err(why) = pack {
        skip(test_name!(), format!("its pack half: {why}"));
    }
}

#[test]
fn corpus_events_agree_with_ausearch_and_none_is_missing() {
    if let Some(why) = ausearch_missing() {
        return skip(test_name!(), why);
    }
    let (mut checked, mut required) = (0, 0);
    for log in logs() {
        let name = log.display().to_string();
        let interpreted = ausearch(&log);
        let r = replay(None, std::slice::from_ref(&log));
        let mut seen = Vec::new();
        for e in &r.events {
            let serial = e["audetect"]["audit"]["serial"].as_u64().expect("serial");
            // A `node=` log's events carry the node in their entity id:
            // `replay@NODE:PID:...`.
            let entity = e["process"]["entity_id"].as_str().unwrap_or("");
            let node = entity
                .split_once('@')
                .and_then(|(_, rest)| rest.split_once(':'))
                .map_or(String::new(), |(n, _)| n.to_owned());
            let key = (node, serial);
            let rec = interpreted.get(&key).unwrap_or_else(|| {
                panic!("{name}: event {serial} has no SYSCALL in ausearch: {e}")
            });
            assert_eq!(
                e["audetect"]["audit"]["syscall"].as_str(),
                Some(rec.get("syscall")),
                "{name}: serial {serial}, arch {}",
                rec.get("arch")
            );
            let pid = |v: &Value| v.as_u64().map(|p| p.to_string()).unwrap_or_default();
            if e["event"]["action"] == "fork" {
                assert_eq!(
                    pid(&e["process"]["parent"]["pid"]),
                    rec.get("pid"),
                    "{name}: {serial}"
                );
                assert_eq!(pid(&e["process"]["pid"]), rec.exit(), "{name}: {serial}");
            } else {
                assert_eq!(
                    pid(&e["process"]["pid"]),
                    rec.get("pid"),
                    "{name}: {serial}"
                );
                assert_eq!(
                    pid(&e["process"]["parent"]["pid"]),
                    rec.get("ppid"),
                    "{name}: {serial}"
                );
            }
            if let Some(exe) = e["process"]["executable"].as_str() {
                assert_eq!(exe, rec.get("exe"), "{name}: {serial}");
            }
            seen.push(key);
            checked += 1;
        }
        for (key, rec) in &interpreted {
            if must_be_events(rec) {
                required += 1;
                assert!(
                    seen.contains(key),
                    "{name}: serial {} ({} {} exit={}) gave no event",
                    key.1,
                    rec.get("arch"),
                    rec.get("syscall"),
                    rec.get("exit")
                );
            }
        }
    }
    eprintln!(
        "{checked} events agree with ausearch; {required} calls ausearch shows all became events"
    );
    assert!(
        checked >= 100 && required >= 50,
        "{checked} events, {required} required"
    );
}

/// laurel's `tree/` series is one `apt-get update` run in 17 files: replayed
/// as one input, each child's parent comes from the process table.
#[test]
fn a_process_tree_split_across_files_keeps_each_parents_program() {
    let mut tree: Vec<PathBuf> = logs()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tree-"))
        })
        .collect();
    assert_eq!(tree.len(), 17);
    // Newest first, as a shell glob of rotated logs gives them: the order
    // of the inputs must not matter.
    tree.reverse();
    let r = replay(None, &tree);
    let mut programs: HashMap<u64, String> = HashMap::new();
    let mut with_parent = 0;
    let mut execs = 0;
    for e in r.events.iter().filter(|e| e["event"]["action"] == "exec") {
        execs += 1;
        let pid = e["process"]["pid"].as_u64().expect("pid");
        let ppid = e["process"]["parent"]["pid"].as_u64().expect("ppid");
        if let Some(parent) = programs.get(&ppid) {
            assert_eq!(
                e["process"]["parent"]["executable"].as_str(),
                Some(parent.as_str()),
                "{e}"
            );
            with_parent += 1;
        }
        if let Some(exe) = e["process"]["executable"].as_str() {
            programs.insert(pid, exe.to_owned());
        }
    }
    assert_eq!(execs, 17, "{}", r.stderr);
    assert_eq!(
        with_parent, 16,
        "every child of apt-get knows it: {}",
        r.stderr
    );
}

/// audetect's syscall tables against audit-userspace's own (`ausyscall`),
/// which were written from the kernel's headers by other hands.
#[test]
fn every_syscall_table_agrees_with_ausyscall() {
    if let Some(why) = ausearch_missing() {
        return skip(test_name!(), why);
    }
    let mut checked = 0;
    for arch in audetect::syscalls::ARCHES {
        // ausyscall names powerpc "ppc", whichever the byte order.
        let table = match arch.name {
            "ppc64" | "ppc64le" => "ppc",
            n => n,
        };
        for &(nr, name) in arch.calls() {
            let out = Command::new("ausyscall")
                .args([table, &nr.to_string()])
                .output()
                .expect("run ausyscall");
            let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert_eq!(theirs, name, "{} syscall {nr}", arch.name);
            checked += 1;
        }
    }
    eprintln!("{checked} (arch, number, name) rows agree with ausyscall");
}
