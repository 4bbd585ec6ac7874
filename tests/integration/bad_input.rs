//! Bad input from real processes, through the kernel: an exec of 10,000
//! arguments and one of a 128 KiB argument (the most the kernel takes in one
//! argument; a 1 MiB one it refuses with E2BIG), and a file whose name holds
//! a newline and bytes that are not UTF-8. Each is one clear event, nothing
//! is counted malformed, and what is kept stays within the process table's bounds.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::util::{kernel_test, TempDir};

fn rule(name: &str, query: &str) -> String {
    format!(
        "[rule]\nauthor = [\"test\"]\ndescription = \"d\"\nname = \"{name}\"\nrisk_score = 21\n\
         rule_id = \"{name}\"\nseverity = \"low\"\ntype = \"eql\"\nmax_signals = 1000\nquery = '''\n{query}\n'''\n"
    )
}

fn alert_of<'a>(all: &'a [Value], rule: &str, pid: u32) -> &'a Value {
    all.iter()
        .find(|a| a["kibana"]["alert"]["rule"]["name"] == rule && a["process"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no {rule:?} alert for pid {pid}: {all:#?}"))
}

#[test]
fn kernel_huge_argv_and_hostile_file_names_are_clear_events() {
    let (lock, _) = kernel_test!();
    let rules = TempDir::new("bad-input-rules");
    std::fs::write(
        rules.path().join("argv.toml"),
        rule(
            "argv probe",
            r#"process where event.action == "exec" and process.name == "audetect-argv""#,
        ),
    )
    .expect("write rule");
    std::fs::write(
        rules.path().join("file.toml"),
        rule(
            "file probe",
            r#"file where event.action == "creation" and file.name : "audetect-bad*""#,
        ),
    )
    .expect("write rule");
    let d = Daemon::start(
        lock,
        &format!(
            "[detection]\nbuiltin_rules = false\nrule_paths = [{:?}]\n",
            rules.path().display().to_string()
        ),
    );
    let work = TempDir::new("bad-input");
    let prog = work.path().join("audetect-argv");
    std::fs::copy("/bin/true", &prog).expect("copy true");

    let many: Vec<String> = (0..10_000).map(|i| format!("a{i}")).collect();
    let many_pid = Command::new(&prog)
        .args(&many)
        .spawn()
        .expect("exec 10,000 args");
    let many_pid = {
        let mut c = many_pid;
        let pid = c.id();
        assert!(c.wait().expect("wait").success());
        pid
    };
    // MAX_ARG_STRLEN is 32 pages, NUL included.
    let long = "x".repeat(128 * 1024 - 1);
    let mut c = Command::new(&prog)
        .arg(&long)
        .spawn()
        .expect("exec a 128 KiB argument");
    let long_pid = c.id();
    assert!(c.wait().expect("wait").success());
    let e = Command::new(&prog)
        .arg("y".repeat(1 << 20))
        .status()
        .unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::E2BIG),
        "the kernel refuses a 1 MiB argument"
    );

    let name = work
        .path()
        .join(std::ffi::OsStr::from_bytes(b"audetect-bad\nline\xff.sh"));
    let mut c = Command::new("python3")
        .arg("-c")
        .arg("import sys; open(sys.argv[1].encode('utf-8', 'surrogateescape'), 'w').close()")
        .arg(&name)
        .spawn()
        .expect("python3");
    let file_pid = c.id();
    assert!(c.wait().expect("wait").success());

    let all = d.wait_alert_for(file_pid);
    let all = if all.iter().any(|a| a["process"]["pid"] == long_pid) {
        all
    } else {
        d.wait_alert_for(long_pid)
    };
    let many = alert_of(&all, "argv probe", many_pid);
    assert_eq!(
        many["process"]["args_count"], 10_001,
        "argv[0] and 10,000 more"
    );
    assert_eq!(
        many["process"]["args"].as_array().map(Vec::len),
        Some(audetect::process::MAX_ARGS)
    );
    assert_eq!(
        many["events"][0]["audetect"]["audit"]["args_truncated"],
        true
    );
    let long = alert_of(&all, "argv probe", long_pid);
    assert_eq!(long["process"]["args_count"], 2);
    let kept: usize = long["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().len())
        .sum();
    assert!(kept <= audetect::process::MAX_ARGS_BYTES, "{kept}");
    assert_eq!(
        long["events"][0]["audetect"]["audit"]["args_truncated"],
        true
    );
    let file = alert_of(&all, "file probe", file_pid);
    let path = file["file"]["path"]
        .as_str()
        .or(file["events"][0]["file"]["path"].as_str());
    let path = path.unwrap_or_else(|| panic!("no file.path: {file:#}"));
    assert!(path.ends_with("/audetect-bad\nline\u{fffd}.sh"), "{path:?}");
    assert_eq!(file["events"][0]["file"]["extension"], "sh");
    let log = d.stop();
    assert!(log.contains("(0 malformed)"), "{log}");
}
