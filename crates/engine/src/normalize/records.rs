//! Readers of the records beside SYSCALL: the argv of EXECVE records (long
//! arguments split over several records put together again) and the PATH
//! items of file events.

use std::borrow::Cow;

use crate::parse::{types, Value};
use crate::process::{MAX_ARGS, MAX_ARGS_BYTES};
use crate::reassemble::Event;

/// argv as the EXECVE records of one exec gave it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Argv {
    /// The arguments kept (at most MAX_ARGS, MAX_ARGS_BYTES in all).
    pub args: Vec<String>,
    /// argc=, the number the process really had.
    pub argc: Option<u64>,
    /// Some argument or byte was not kept, or a record was missing.
    pub truncated: bool,
}

/// The argv of an exec event; None when it has no EXECVE record.
///
/// The kernel writes `aN="text"` (or hex when the text is not printable),
/// and for an argument too long for one record `aN_len=LEN` followed by
/// `aN[0]=...`, `aN[1]=...` chunks, each quoted or hex on its own; records
/// are cut between fields, so one argument's chunks can span records.
/// Fields are read in one pass: an argv of 10,000 arguments is 10,000
/// fields, and looking each up by name would be quadratic.
pub fn argv(event: &Event) -> Option<Argv> {
    let mut out = Argv::default();
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    let mut kept = 0usize;
    let mut any = false;
    for rec in event.records.iter().filter(|r| r.rtype == types::EXECVE) {
        any = true;
        for (key, value) in rec.fields() {
            if key == b"argc" {
                out.argc = value.decimal();
                continue;
            }
            let Some((index, chunk)) = arg_key(key) else {
                continue;
            };
            if index >= MAX_ARGS {
                out.truncated = true;
                continue;
            }
            if chunk.is_none() && key.ends_with(b"_len") {
                continue;
            }
            let Some(text) = decode(value) else { continue };
            if bytes.len() <= index {
                bytes.resize(index + 1, Vec::new());
            }
            let room = MAX_ARGS_BYTES - kept;
            let take = text.len().min(room);
            if take < text.len() {
                out.truncated = true;
            }
            bytes[index].extend_from_slice(&text[..take]);
            kept += take;
        }
    }
    if !any {
        return None;
    }
    if out.argc.is_some_and(|n| n > bytes.len() as u64) {
        out.truncated = true;
    }
    out.args = bytes
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    Some(out)
}

/// `a7` → (7, None), `a7[2]` → (7, Some(2)), `a7_len` → (7, None); other
/// keys → None.
fn arg_key(key: &[u8]) -> Option<(usize, Option<usize>)> {
    let rest = key.strip_prefix(b"a")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let index = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    match &rest[digits..] {
        b"" | b"_len" => Some((index, None)),
        chunk => {
            let inner = chunk.strip_prefix(b"[")?.strip_suffix(b"]")?;
            let n = std::str::from_utf8(inner).ok()?.parse().ok()?;
            Some((index, Some(n)))
        }
    }
}

fn decode(v: Value<'_>) -> Option<Cow<'_, [u8]>> {
    // An empty argument is `a1=""`; `untrusted` keeps it empty.
    v.untrusted()
}

/// One PATH item of an event: the name as the caller passed it, and what
/// the call did to it (`nametype=`: NORMAL, PARENT, CREATE, DELETE, UNKNOWN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathItem {
    pub name: Option<Vec<u8>>,
    pub nametype: Vec<u8>,
}

pub fn path_items(event: &Event) -> Vec<PathItem> {
    event
        .records
        .iter()
        .filter(|r| r.rtype == types::PATH)
        .map(|r| PathItem {
            name: r
                .get("name")
                .and_then(|v| v.untrusted())
                .map(Cow::into_owned),
            nametype: r
                .get("nametype")
                .map(|v| v.raw.to_vec())
                .unwrap_or_default(),
        })
        .collect()
}

/// A name as a path a rule can test: absolute names as they are; relative
/// ones joined to `cwd` when they were relative to it (`relative_to_cwd`:
/// not an *at call with a directory fd), else left relative.
pub fn absolute(name: &[u8], cwd: Option<&str>, relative_to_cwd: bool) -> String {
    let name = String::from_utf8_lossy(name);
    if name.starts_with('/') || !relative_to_cwd {
        return name.into_owned();
    }
    match cwd {
        Some(cwd) => {
            let name = name.strip_prefix("./").unwrap_or(&name);
            if cwd.ends_with('/') {
                format!("{cwd}{name}")
            } else {
                format!("{cwd}/{name}")
            }
        }
        None => name.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_log_line;

    fn event(lines: &[String]) -> Event {
        let records: Vec<_> = lines
            .iter()
            .map(|l| parse_log_line(l.as_bytes()).unwrap())
            .collect();
        Event {
            time: records[0].time,
            serial: records[0].serial,
            records,
            clock_shift_ms: 0,
        }
    }

    fn execve(body: &str) -> String {
        format!("type=EXECVE msg=audit(1700000000.000:7): {body}")
    }

    #[test]
    fn quoted_hex_and_empty_arguments() {
        let ev = event(&[execve(r#"argc=4 a0="ls" a1=2D6C20612062 a2="" a3="/tmp""#)]);
        let a = argv(&ev).unwrap();
        assert_eq!(a.args, ["ls", "-l a b", "", "/tmp"]);
        assert_eq!(a.argc, Some(4));
        assert!(!a.truncated);
    }

    #[test]
    fn a_long_argument_split_over_records_is_put_together() {
        let ev = event(&[
            execve(r#"argc=3 a0="sh" a1_len=10 a1[0]="abcde""#),
            execve(r#"a1[1]=6667686A6B a2="end""#),
        ]);
        let a = argv(&ev).unwrap();
        assert_eq!(a.args, ["sh", "abcdefghjk", "end"]);
    }

    #[test]
    fn ten_thousand_arguments_keep_their_count_and_a_bounded_part() {
        let body: Vec<String> = (0..10_000).map(|i| format!("a{i}=\"x{i}\"")).collect();
        let ev = event(&[execve(&format!("argc=10000 {}", body.join(" ")))]);
        let a = argv(&ev).unwrap();
        assert_eq!(a.args.len(), MAX_ARGS);
        assert_eq!(a.argc, Some(10_000));
        assert!(a.truncated);
    }

    #[test]
    fn a_missing_record_shows_as_truncation() {
        let ev = event(&[execve(r#"argc=3 a0="sh" a1="-c""#)]);
        assert!(argv(&ev).unwrap().truncated);
        assert_eq!(
            argv(&event(&[
                "type=CWD msg=audit(1700000000.000:7): cwd=\"/\"".to_string()
            ])),
            None
        );
    }

    #[test]
    fn relative_names_join_the_working_directory() {
        assert_eq!(absolute(b"x.sh", Some("/tmp"), true), "/tmp/x.sh");
        assert_eq!(absolute(b"./x.sh", Some("/"), true), "/x.sh");
        assert_eq!(absolute(b"/etc/passwd", Some("/tmp"), true), "/etc/passwd");
        assert_eq!(absolute(b"x.sh", Some("/tmp"), false), "x.sh");
    }
}
