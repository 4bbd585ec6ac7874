//! Syslog wire formats: RFC 5424 and RFC 3164 messages, PRI, RFC 6587 octet
//! counting. Pure functions, so the exact bytes can be tested without sockets.

use std::time::SystemTime;

use crate::alert::Severity;
use crate::timefmt;

/// APP-NAME in RFC 5424 and the TAG in RFC 3164.
pub const APP_NAME: &str = "audetect";
/// RFC 5424 MSGID of every alert.
pub const MSG_ID: &str = "alert";

/// PRI = facility * 8 + severity (RFC 5424 §6.2.1). Facilities above 23 do not
/// exist; they are clamped rather than allowed to spill into another value.
pub fn pri(facility: u8, severity: Severity) -> u8 {
    facility.min(23) * 8 + severity.code()
}

/// "Mmm dd hh:mm:ss" in local time, as syslog(3) stamps RFC 3164 messages:
/// receivers read those timestamps as their own local time. Falls back to
/// UTC if the C library cannot convert.
pub fn rfc3164_stamp(time: SystemTime) -> String {
    let (secs, _) = timefmt::split(time);
    let Ok(t) = libc::time_t::try_from(secs) else {
        return timefmt::rfc3164(secs);
    };
    // SAFETY: tm is plain old data; localtime_r only writes into it and is
    // the thread-safe variant.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return timefmt::rfc3164(secs);
    }
    let month = timefmt::MONTHS[tm.tm_mon.clamp(0, 11) as usize];
    // A leap second (60) is not valid in RFC 3164.
    let sec = tm.tm_sec.min(59);
    format!(
        "{month} {:>2} {:02}:{:02}:{sec:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min
    )
}

/// RFC 5424 allows only printable US-ASCII without spaces in header fields, at
/// most `max` characters; anything else would make the receiver misparse
/// every field after it.
pub fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` with a UTC RFC 3339
/// timestamp in microseconds and no BOM (many receivers keep a BOM as part
/// of the text, and JSON needs none).
pub fn rfc5424(pri: u8, time: SystemTime, hostname: &str, pid: u32, msg: &str) -> String {
    let (secs, micros) = timefmt::split(time);
    format!(
        "<{pri}>1 {} {} {APP_NAME} {pid} {MSG_ID} - {msg}",
        timefmt::rfc3339_micros(secs, micros),
        header_field(hostname, 255),
    )
}

/// `<PRI>Mmm dd hh:mm:ss HOSTNAME audetect[PID]: MSG`, `stamp` from
/// [`rfc3164_stamp`]. `hostname` None leaves the field out, as syslog(3) does
/// on the local socket: local daemons do not expect one there and may take
/// it for the tag.
pub fn rfc3164(pri: u8, stamp: &str, hostname: Option<&str>, pid: u32, msg: &str) -> String {
    let host = match hostname {
        Some(h) => format!("{} ", header_field(h, 255)),
        None => String::new(),
    };
    format!("<{pri}>{stamp} {host}{APP_NAME}[{pid}]: {msg}")
}

/// RFC 6587 §3.4.1 octet counting: `LEN SP MSG`, LEN in bytes. Unlike
/// newline framing it survives any byte in the message.
pub fn octet_counted(msg: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(4, Severity::Warning), 36); // auth.warning
        assert_eq!(pri(0, Severity::Emergency), 0);
        assert_eq!(pri(23, Severity::Debug), 191); // local7.debug: the maximum
        assert_eq!(pri(10, Severity::Notice), 85); // authpriv.notice
        assert_eq!(pri(200, Severity::Debug), 191);
        let codes: Vec<u8> = [
            Severity::Emergency,
            Severity::Alert,
            Severity::Critical,
            Severity::Error,
            Severity::Warning,
            Severity::Notice,
            Severity::Informational,
            Severity::Debug,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, (0..8).collect::<Vec<u8>>());
    }

    #[test]
    fn rfc5424_exact() {
        let t = at(1_704_164_645, 123_456); // 2024-01-02T03:04:05.123456Z
        let m = rfc5424(36, t, "web-1.example.org", 4242, r#"{"a":1}"#);
        assert_eq!(
            m,
            r#"<36>1 2024-01-02T03:04:05.123456Z web-1.example.org audetect 4242 alert - {"a":1}"#
        );
        // Microseconds are zero-padded, never trimmed.
        assert!(rfc5424(0, at(1_704_164_645, 7), "h", 1, "x").contains("T03:04:05.000007Z h "));
    }

    #[test]
    fn rfc5424_hostname_is_made_valid() {
        let t = at(0, 0);
        assert_eq!(
            rfc5424(13, t, "", 1, "m"),
            "<13>1 1970-01-01T00:00:00.000000Z - audetect 1 alert - m"
        );
        assert!(rfc5424(13, t, "my host\u{e9}", 1, "m").contains(" my_host_ audetect "));
        let long = "a".repeat(300);
        let m = rfc5424(13, t, &long, 1, "m");
        assert!(m.contains(&format!(" {} audetect", "a".repeat(255))));
    }

    #[test]
    fn rfc5424_parses_with_an_independent_parser() {
        let json = r#"{"event":{"kind":"signal"},"msg":"a b - c"}"#;
        let t = at(1_704_164_645, 123_456);
        let m = rfc5424(pri(10, Severity::Notice), t, "host-a", 77, json);
        let p = syslog_rfc5424::parse_message(&m).expect("valid RFC 5424");
        assert_eq!(p.facility, syslog_rfc5424::SyslogFacility::LOG_AUTHPRIV);
        assert_eq!(p.severity, syslog_rfc5424::SyslogSeverity::SEV_NOTICE);
        assert_eq!(p.version, 1);
        assert_eq!(p.timestamp, Some(1_704_164_645));
        assert_eq!(p.timestamp_nanos, Some(123_456_000));
        assert_eq!(p.hostname.as_deref(), Some("host-a"));
        assert_eq!(p.appname.as_deref(), Some("audetect"));
        assert_eq!(p.procid, Some(syslog_rfc5424::message::ProcId::PID(77)));
        assert_eq!(p.msgid.as_deref(), Some("alert"));
        assert!(p.sd.is_empty());
        assert_eq!(p.msg, json);
    }

    #[test]
    fn rfc3164_exact() {
        let stamp = "Jan  2 03:04:05";
        assert_eq!(
            rfc3164(38, stamp, Some("web-1"), 4242, r#"{"a":1}"#),
            r#"<38>Jan  2 03:04:05 web-1 audetect[4242]: {"a":1}"#
        );
        assert_eq!(
            rfc3164(38, stamp, None, 4242, r#"{"a":1}"#),
            r#"<38>Jan  2 03:04:05 audetect[4242]: {"a":1}"#
        );
    }

    #[test]
    fn rfc3164_stamp_shape() {
        // Local time varies with TZ; the shape does not.
        for t in [at(0, 0), at(1_704_164_645, 0), at(1_709_251_198, 0)] {
            let s = rfc3164_stamp(t);
            let b = s.as_bytes();
            assert_eq!(b.len(), 15, "{s}");
            assert!(timefmt::MONTHS.contains(&&s[..3]), "{s}");
            assert_eq!((b[3], b[6], b[9], b[12]), (b' ', b' ', b':', b':'), "{s}");
            assert!(b[4] == b' ' || b[4].is_ascii_digit(), "{s}");
        }
    }

    /// The stamp is the local time of the zone the process runs in. The C
    /// library reads TZ once, so each zone is a child run of this very test
    /// with TZ set (POSIX zone strings: no zone files needed).
    #[test]
    fn rfc3164_stamp_is_local_time() {
        const EXPECT: &str = "AUDETECT_TEST_RFC3164_STAMP";
        // 2024-01-02 03:04:05 UTC.
        let t = at(1_704_164_645, 0);
        if let Ok(expected) = std::env::var(EXPECT) {
            assert_eq!(rfc3164_stamp(t), expected, "TZ={:?}", std::env::var("TZ"));
            return;
        }
        let module = module_path!();
        let test = format!(
            "{}::rfc3164_stamp_is_local_time",
            module.split_once("::").map_or(module, |(_, rest)| rest)
        );
        for (tz, expected) in [
            ("UTC0", "Jan  2 03:04:05"),
            ("JST-9", "Jan  2 12:04:05"),
            ("<-05>5", "Jan  1 22:04:05"),
        ] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", &test, "--test-threads=1"])
                .env("TZ", tz)
                .env(EXPECT, expected)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "TZ={tz}: {}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn octet_counting_counts_bytes() {
        assert_eq!(
            octet_counted(b"<13>1 - - - - - hi"),
            b"18 <13>1 - - - - - hi"
        );
        assert_eq!(octet_counted("é".as_bytes()), b"2 \xc3\xa9");
        assert_eq!(octet_counted(b""), b"0 ");
        let big = vec![b'x'; 12_345];
        assert!(octet_counted(&big).starts_with(b"12345 x"));
    }
}
