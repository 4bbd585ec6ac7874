//! Pure parsers of /proc text: /proc/PID/stat, the ids of /proc/PID/status,
//! btime of /proc/stat and the boot id. The reading is done elsewhere.

/// /proc/PID/stat, the fields audetect uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    pub tty_nr: u32,
    /// Start time in clock ticks since boot.
    pub starttime: u64,
}

/// The fields after the command name, which may itself hold spaces and
/// parentheses: the last `)` ends it.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 of proc(5).
    let num = |i: usize| f.get(i)?.parse::<i64>().ok();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: u32::try_from(num(1)?).ok()?,
        pgrp: u32::try_from(num(2)?).ok()?,
        session: u32::try_from(num(3)?).ok()?,
        // A negative tty_nr keeps its bits, as the kernel's dev_t would.
        tty_nr: num(4)? as u32,
        starttime: f.get(19)?.parse().ok()?,
    })
}

/// A real and an effective id, the first two of a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
}

/// The `Uid:` line of /proc/PID/status.
pub fn status_uids(status: &str) -> Option<Ids> {
    status_ids(status, "Uid:")
}

/// The `Gid:` line of /proc/PID/status.
pub fn status_gids(status: &str) -> Option<Ids> {
    status_ids(status, "Gid:")
}

fn status_ids(status: &str, key: &str) -> Option<Ids> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    let mut v = line.split_ascii_whitespace().map(|x| x.parse::<u32>());
    Some(Ids {
        real: v.next()?.ok()?,
        effective: v.next()?.ok()?,
    })
}

/// The `Tgid:` line of /proc/TID/status: the process a task belongs to.
pub fn status_tgid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// The name of `uid` in an /etc/passwd text (`name:x:uid:gid:...`); the
/// first line that gives the uid wins, as getpwuid's.
pub fn passwd_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then_some(name)
    })
}

/// Boot time, seconds since the epoch, from one line of /proc/stat: readers
/// go line by line, as the lines before it can be long on a large host.
pub fn btime_line(line: &str) -> Option<u64> {
    line.strip_prefix("btime ")?.trim().parse().ok()
}

/// Boot time from the whole text of /proc/stat.
pub fn btime(stat: &str) -> Option<u64> {
    stat.lines().find_map(btime_line)
}

/// The boot id from /proc/sys/kernel/random/boot_id.
pub fn boot_id(text: &str) -> &str {
    text.trim()
}

/// A NUL-separated command line (PROCTITLE, /proc/PID/cmdline) as its
/// arguments: a trailing NUL ends the last one rather than starting an
/// empty one.
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_after_the_last_parenthesis() {
        let text = "4242 (a) b) (c) S 4240 4242 4242 34816 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 930250 2744320 200 18446744073709551615\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.tty_nr, s.starttime),
            ('S', 4240, 4242, 4242, 34816, 930250)
        );
        assert_eq!(parse_stat("12 (x) S 1"), None, "too short");
        assert_eq!(parse_stat("12 x S 1 2 3 4"), None, "no command name");
    }

    #[test]
    fn stat_of_a_command_with_spaces_and_parentheses() {
        // As the kernel writes them for a tmux server, and for a process that
        // named itself "() Z 1 1 1 0)" (prctl PR_SET_NAME) to fool a parser.
        let tmux = "1873 (tmux: server) S 1 1873 1873 0 -1 4194368 2215 18 0 0 131 97 0 0 20 0 1 0 4121 9420800 1190 18446744073709551615 1 1 0 0 0 0 0 4096 84483 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let s = parse_stat(tmux).unwrap();
        assert_eq!((s.state, s.ppid, s.starttime), ('S', 1, 4121));
        let sneaky = "77 () Z 1 1 1 0) R 70 77 70 34817 77 4194304 110 0 0 0 0 0 0 0 20 0 1 0 55501 8343552 240 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let s = parse_stat(sneaky).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.tty_nr, s.starttime),
            ('R', 70, 77, 70, 34817, 55501)
        );
    }

    #[test]
    fn passwd_names_a_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nnobody:x:65534:65534::/:/sbin/nologin\nbad line\n";
        assert_eq!(passwd_name(passwd, 0), Some("root"));
        assert_eq!(passwd_name(passwd, 65534), Some("nobody"));
        assert_eq!(passwd_name(passwd, 1000), None);
    }

    #[test]
    fn status_gives_the_thread_group() {
        let status = "Name:\tpython3\nTgid:\t3100\nPid:\t3104\n";
        assert_eq!(status_tgid(status), Some(3100));
        assert_eq!(status_tgid("Name:\tx\n"), None);
    }

    #[test]
    fn status_gives_real_and_effective_ids() {
        let status = "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t3100\nPid:\t3100\nPPid:\t3099\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\n";
        assert_eq!(
            status_uids(status),
            Some(Ids {
                real: 1000,
                effective: 0
            })
        );
        assert_eq!(
            status_gids(status),
            Some(Ids {
                real: 1000,
                effective: 1000
            })
        );
        assert_eq!(status_uids("Name:\tx\nUid:\t1000\n"), None, "one id only");
        assert_eq!(status_gids("Name:\tx\n"), None);
    }

    #[test]
    fn btime_is_its_own_line_of_proc_stat() {
        let stat = "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 12 0 0\nctxt 100\nbtime 1795000000\nprocesses 4000\n";
        assert_eq!(btime(stat), Some(1_795_000_000));
        assert_eq!(btime_line("btime 1795000000\n"), Some(1_795_000_000));
        assert_eq!(btime_line("ctxt 100"), None);
        assert_eq!(btime("cpu 1 2 3\n"), None);
    }

    #[test]
    fn the_boot_id_is_the_file_trimmed() {
        assert_eq!(
            boot_id("0b8c9a2e-3d4f-4a5b-9c6d-7e8f90a1b2c3\n"),
            "0b8c9a2e-3d4f-4a5b-9c6d-7e8f90a1b2c3"
        );
    }
}
