//! Syslog framing target: an alert's text, hostname, time, facility and
//! severity from arbitrary bytes, made into RFC 5424 and RFC 3164 messages
//! and octet-counted frames. Nothing may panic; the header fields are
//! printable ASCII without spaces, so an independent RFC 5424 parser reads
//! back the same hostname, time and message; an octet count is the byte
//! length of what follows it.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use audetect::alert::Severity;
use audetect::output::frame::{
    header_field, octet_counted, pri, rfc3164, rfc3164_stamp, rfc5424, APP_NAME, MSG_ID,
};
use libfuzzer_sys::fuzz_target;

const SEVERITIES: [Severity; 8] = [
    Severity::Emergency,
    Severity::Alert,
    Severity::Critical,
    Severity::Error,
    Severity::Warning,
    Severity::Notice,
    Severity::Informational,
    Severity::Debug,
];

/// Up to 9999-12-31: RFC 5424's TIMESTAMP has four-digit years.
const TIME_RANGE: u64 = 253_402_300_800;

fn check_octet_counted(msg: &[u8]) {
    let frame = octet_counted(msg);
    let space = frame
        .iter()
        .position(|&b| b == b' ')
        .expect("a count and a space");
    let count: usize = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(|c| c.parse().ok())
        .expect("a decimal count");
    assert_eq!(
        count,
        frame.len() - space - 1,
        "the count is not the length"
    );
    assert_eq!(&frame[space + 1..], msg);
}

fuzz_target!(|data: &[u8]| {
    // facility, severity, 8 bytes of time, 4 of pid, a hostname up to a
    // NUL, then the message.
    let [facility, severity, rest @ ..] = data else {
        return;
    };
    let Some((time, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let Some((pid, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let (host, msg) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let host = String::from_utf8_lossy(host);
    let msg = String::from_utf8_lossy(msg);
    let severity = SEVERITIES[usize::from(*severity % 8)];
    let micros = u64::from_le_bytes(*time) % (TIME_RANGE * 1_000_000);
    let time = UNIX_EPOCH + Duration::from_micros(micros);
    let pid = u32::from_le_bytes(*pid);

    let p = pri(*facility, severity);
    assert!(p <= 191 && p % 8 == severity.code());

    let field = header_field(&host, 255);
    assert!(!field.is_empty() && field.chars().count() <= 255);
    assert!(field.bytes().all(|b| b.is_ascii_graphic()), "{field:?}");

    let m = rfc5424(p, time, &host, pid, &msg);
    let header: Vec<&str> = m.splitn(8, ' ').collect();
    assert_eq!(header.len(), 8, "{m:?}");
    assert_eq!(header[0], format!("<{p}>1"));
    for f in &header[1..7] {
        assert!(
            !f.is_empty() && f.bytes().all(|b| b.is_ascii_graphic()),
            "{f:?} in {m:?}"
        );
    }
    assert_eq!(header[2], field);
    assert_eq!(
        (header[3], header[4], header[5], header[6]),
        (APP_NAME, &*pid.to_string(), MSG_ID, "-")
    );
    assert_eq!(header[7], msg);
    // An independent parser agrees (it reads "-" as no hostname).
    let parsed = syslog_rfc5424::parse_message(&m).expect("valid RFC 5424");
    assert_eq!(
        parsed.hostname.as_deref(),
        (field != "-").then_some(field.as_str())
    );
    assert_eq!(parsed.severity as u8, severity.code());
    assert_eq!(parsed.timestamp, Some((micros / 1_000_000) as i64));
    assert_eq!(
        parsed.timestamp_nanos,
        Some((micros % 1_000_000) as u32 * 1000)
    );
    assert_eq!(parsed.msg, msg);

    let stamp = rfc3164_stamp(time);
    assert_eq!(stamp.len(), 15, "{stamp:?}");
    for hostname in [None, Some(&*host)] {
        let m = rfc3164(p, &stamp, hostname, pid, &msg);
        let prefix = match hostname {
            Some(_) => format!("<{p}>{stamp} {field} {APP_NAME}[{pid}]: "),
            None => format!("<{p}>{stamp} {APP_NAME}[{pid}]: "),
        };
        assert_eq!(m.strip_prefix(&prefix), Some(&*msg), "{m:?}");
        check_octet_counted(m.as_bytes());
    }
    check_octet_counted(m.as_bytes());
    check_octet_counted(msg.as_bytes());
});
