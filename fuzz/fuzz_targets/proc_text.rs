//! /proc text target: arbitrary bytes as the /proc and /etc files audetect
//! reads (PID/stat, PID/status, PID/cmdline, /proc/stat, the boot id,
//! /etc/passwd, the net/tcp and net/unix tables). Nothing may panic; a stat
//! line rebuilt from what was parsed, under any command name, parses the
//! same; a command line's arguments join back to its bytes; a table row's
//! inode is the one the quick column reader finds.
#![no_main]

use audetect::process::proc_text::{
    boot_id, btime, btime_line, parse_stat, passwd_name, split_args, status_gids, status_tgid,
    status_uids, Stat,
};
use audetect::process::EntityId;
use audetect::snapshot::tables::{inode_of, parse_inet, parse_unix};
use libfuzzer_sys::fuzz_target;

/// A /proc/PID/stat line as the kernel writes it, with the fields parsed.
fn stat_line(comm: &str, s: &Stat) -> String {
    format!(
        "4242 ({comm}) {} {} {} {} {} -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 {} 2744320 200 18446744073709551615\n",
        s.state, s.ppid, s.pgrp, s.session, s.tty_nr as i32, s.starttime
    )
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Some(s) = parse_stat(&text) {
        // The kernel's comm is at most 15 bytes and may hold anything,
        // ")" and spaces included: take it from the input.
        let comm: String = text.chars().take(15).collect();
        if !s.state.is_whitespace() && s.state != ')' {
            assert_eq!(parse_stat(&stat_line(&comm, &s)), Some(s), "comm {comm:?}");
        }
    }

    for ids in [status_uids(&text), status_gids(&text)]
        .into_iter()
        .flatten()
    {
        let line = format!(
            "Name:\tx\nUid:\t{0}\t{1}\t{1}\t{1}\nGid:\t{0}\t{1}\t{1}\t{1}\n",
            ids.real, ids.effective
        );
        assert_eq!(status_uids(&line), Some(ids));
    }
    if let Some(tgid) = status_tgid(&text) {
        assert_eq!(status_tgid(&format!("Tgid:\t{tgid}\n")), Some(tgid));
    }

    // The uid asked for comes from the input too.
    let uid = data
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % 70_000);
    for uid in [0, 1000, 65534, uid] {
        if let Some(name) = passwd_name(&text, uid) {
            assert!(!name.is_empty() && !name.contains(':') && !name.contains('\n'));
        }
    }

    assert_eq!(btime(&text), text.lines().find_map(btime_line));
    let id = boot_id(&text);
    assert_eq!(id, id.trim());

    let args = split_args(data);
    let body = data.strip_suffix(b"\0").unwrap_or(data);
    assert_eq!(
        args.len(),
        if body.is_empty() {
            0
        } else {
            body.split(|&b| b == 0).count()
        }
    );
    assert_eq!(
        args.join("\0"),
        String::from_utf8_lossy(body),
        "arguments do not join back"
    );

    for line in text.lines() {
        if let Some(row) = parse_inet(line) {
            assert_eq!(inode_of(line, false), Some(row.inode));
        }
        if let Some(row) = parse_unix(line) {
            assert_eq!(inode_of(line, true), Some(row.inode));
            if let Some(path) = &row.path {
                assert!(!path.is_empty() && path.trim() == path);
            }
        }
        // The entity id's one string form, both ways.
        if let Ok(e) = line.parse::<EntityId>() {
            assert_eq!(e.to_string().parse::<EntityId>(), Ok(e));
        }
    }
});
