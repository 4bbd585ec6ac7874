//! The syslog output against a real rsyslogd (formats, transports, outages)
//! and against an independent RFC 5424 parser on the exact bytes sent.

use std::io::{BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use audetect::config::{SyslogConfig, SyslogFormat, SyslogTarget};
use audetect::output::{Alert, OutputStats, Outputs, Severity};
use serde_json::{json, Value};

use crate::rsyslog::{free_tcp_port, Rsyslog};

const HOST: &str = "audetect-test-host";
const WAIT: Duration = Duration::from_secs(20);

fn config(target: SyslogTarget, format: SyslogFormat, facility: u8) -> SyslogConfig {
    SyslogConfig {
        enabled: true,
        target,
        format,
        facility,
        queue_size: 10_000,
        queue_bytes: 32 << 20,
    }
}

/// 2024-01-02T03:04:05.123456Z: a fixed time, so the reported timestamp can
/// be checked exactly.
fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_704_164_645_123_456)
}

fn document(n: usize) -> Value {
    json!({
        "n": n,
        "kibana": {"alert": {"rule": {"name": "Suspicious Network Connection Attempt by Root"}}},
        "process": {"executable": "/tmp/a b/\"quoted\" ünïcode", "args": ["-c", "x; y"]},
        "message": "tabs\tand - dashes [brackets] {braces}",
    })
}

fn alert(n: usize, severity: Severity) -> Alert {
    Alert {
        json: document(n).to_string(),
        severity,
        time: fixed_time(),
    }
}

fn udp(rs: &Rsyslog) -> SyslogTarget {
    SyslogTarget::Udp(format!("127.0.0.1:{}", rs.udp_port()))
}

fn tcp(rs: &Rsyslog) -> SyslogTarget {
    SyslogTarget::Tcp(format!("127.0.0.1:{}", rs.tcp_port()))
}

fn wait_stats(out: &Outputs, what: &str, cond: impl Fn(&OutputStats) -> bool) -> OutputStats {
    let end = Instant::now() + WAIT;
    loop {
        let s = out.stats();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn field<'a>(line: &'a Value, name: &str) -> &'a str {
    line[name]
        .as_str()
        .unwrap_or_else(|| panic!("no field {name} in {line}"))
}

/// The message rsyslog parsed must be exactly the JSON document sent (for
/// RFC 3164 rsyslog keeps the space after the tag's colon).
fn assert_message(line: &Value, n: usize) {
    let msg = field(line, "msg");
    let parsed: Value = serde_json::from_str(msg.trim_start())
        .unwrap_or_else(|e| panic!("msg is not the JSON sent ({e}): {line}"));
    assert_eq!(parsed, document(n), "{line}");
}

/// Sends three alerts of different severities and checks every field
/// rsyslog parsed out of them.
fn round_trip(test: &str, target: impl Fn(&Rsyslog) -> SyslogTarget, format: SyslogFormat) {
    let Some(rs) = Rsyslog::start_or_skip(test) else {
        return;
    };
    let target = target(&rs);
    let is_unix = matches!(target, SyslogTarget::Unix(_));
    let out = Outputs::start(Some(&config(target, format, 10)), None, HOST).unwrap();
    let sevs = [Severity::Warning, Severity::Critical, Severity::Notice];
    for (n, &sev) in sevs.iter().enumerate() {
        out.send(alert(n, sev));
    }
    let lines = rs.wait_for_lines(3, WAIT);
    out.shutdown(Duration::from_secs(2));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let pid = std::process::id().to_string();
    for (n, line) in lines.iter().enumerate() {
        assert_message(line, n);
        assert_eq!(field(line, "programname"), "audetect", "{line}");
        assert_eq!(field(line, "app-name"), "audetect", "{line}");
        assert_eq!(field(line, "procid"), pid, "{line}");
        assert_eq!(field(line, "syslogfacility"), "10", "{line}"); // authpriv
        assert_eq!(field(line, "syslogfacility-text"), "authpriv", "{line}");
        assert_eq!(
            field(line, "syslogseverity"),
            sevs[n].code().to_string(),
            "{line}"
        );
        match format {
            SyslogFormat::Rfc5424 => {
                assert_eq!(field(line, "protocol-version"), "1", "{line}");
                assert_eq!(field(line, "msgid"), "alert", "{line}");
                assert_eq!(field(line, "hostname"), HOST, "{line}");
                assert_eq!(field(line, "structured-data"), "-", "{line}");
                assert_eq!(
                    field(line, "timereported"),
                    "2024-01-02T03:04:05.123456Z",
                    "{line}"
                );
            }
            SyslogFormat::Rfc3164 => {
                assert_eq!(field(line, "protocol-version"), "0", "{line}");
                assert_eq!(
                    field(line, "syslogtag"),
                    format!("audetect[{pid}]:"),
                    "{line}"
                );
                if is_unix {
                    assert_ne!(field(line, "hostname"), HOST, "no HOSTNAME on unix: {line}");
                } else {
                    assert_eq!(field(line, "hostname"), HOST, "{line}");
                }
            }
        }
    }
}

#[test]
fn rfc5424_over_unix_socket() {
    round_trip(
        "rfc5424_over_unix_socket",
        |rs| SyslogTarget::Unix(rs.unix_socket()),
        SyslogFormat::Rfc5424,
    );
}

#[test]
fn rfc5424_over_udp() {
    round_trip("rfc5424_over_udp", udp, SyslogFormat::Rfc5424);
}

#[test]
fn rfc5424_over_tcp() {
    round_trip("rfc5424_over_tcp", tcp, SyslogFormat::Rfc5424);
}

#[test]
fn rfc3164_over_unix_socket() {
    round_trip(
        "rfc3164_over_unix_socket",
        |rs| SyslogTarget::Unix(rs.unix_socket()),
        SyslogFormat::Rfc3164,
    );
}

/// What syslog(3) sends, so what a stock /dev/log must take.
#[test]
fn rfc3164_over_stock_unix_socket() {
    round_trip(
        "rfc3164_over_stock_unix_socket",
        |rs| SyslogTarget::Unix(rs.stock_unix_socket()),
        SyslogFormat::Rfc3164,
    );
}

#[test]
fn rfc3164_over_udp() {
    round_trip("rfc3164_over_udp", udp, SyslogFormat::Rfc3164);
}

#[test]
fn large_alerts_over_tcp_keep_their_framing() {
    let Some(rs) = Rsyslog::start_or_skip("large_alerts_over_tcp_keep_their_framing") else {
        return;
    };
    let cfg = config(tcp(&rs), SyslogFormat::Rfc5424, 4);
    let out = Outputs::start(Some(&cfg), None, HOST).unwrap();
    let big = |n: usize| json!({"n": n, "pad": "y".repeat(20_000 + n)});
    for n in 0..5 {
        out.send(Alert {
            json: big(n).to_string(),
            severity: Severity::Warning,
            time: SystemTime::now(),
        });
    }
    let lines = rs.wait_for_lines(5, WAIT);
    out.shutdown(Duration::from_secs(2));
    for (n, line) in lines.iter().enumerate() {
        let parsed: Value = serde_json::from_str(field(line, "msg")).unwrap();
        assert_eq!(parsed, big(n));
    }
}

/// Parses every frame with the syslog_rfc5424 crate, which knows nothing of
/// our formatter.
fn check_independently(frame: &[u8], n: usize) {
    let text = std::str::from_utf8(frame).expect("frames are UTF-8");
    let m = syslog_rfc5424::parse_message(text)
        .unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {text}"));
    assert_eq!(m.version, 1);
    assert_eq!(m.facility, syslog_rfc5424::SyslogFacility::LOG_LOCAL3);
    assert_eq!(m.severity, syslog_rfc5424::SyslogSeverity::SEV_CRIT);
    assert_eq!(m.timestamp, Some(1_704_164_645));
    assert_eq!(m.timestamp_nanos, Some(123_456_000));
    assert_eq!(m.hostname.as_deref(), Some(HOST));
    assert_eq!(m.appname.as_deref(), Some("audetect"));
    assert_eq!(
        m.procid,
        Some(syslog_rfc5424::message::ProcId::PID(
            std::process::id() as i32
        ))
    );
    assert_eq!(m.msgid.as_deref(), Some("alert"));
    assert!(m.sd.is_empty());
    assert!(!text.contains('\u{feff}'), "no BOM");
    assert_eq!(serde_json::from_str::<Value>(&m.msg).unwrap(), document(n));
}

#[test]
fn udp_datagrams_parse_as_rfc5424_independently() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(WAIT)).unwrap();
    let target = SyslogTarget::Udp(rx.local_addr().unwrap().to_string());
    let out = Outputs::start(Some(&config(target, SyslogFormat::Rfc5424, 19)), None, HOST).unwrap();
    for n in 0..3 {
        out.send(alert(n, Severity::Critical));
    }
    let mut buf = vec![0u8; 65536];
    for n in 0..3 {
        let len = rx.recv(&mut buf).expect("a datagram");
        check_independently(&buf[..len], n);
    }
    out.shutdown(Duration::from_secs(1));
}

/// Reads one RFC 6587 octet-counted frame: digits, a space, that many bytes.
fn read_frame(r: &mut impl Read) -> Vec<u8> {
    let mut len = 0usize;
    let mut byte = [0u8; 1];
    loop {
        r.read_exact(&mut byte).expect("a frame length");
        match byte[0] {
            b' ' => break,
            d @ b'0'..=b'9' => len = len * 10 + usize::from(d - b'0'),
            other => panic!("bad octet-counting length byte {other:#x}"),
        }
    }
    let mut frame = vec![0u8; len];
    r.read_exact(&mut frame).expect("a whole frame");
    frame
}

#[test]
fn tcp_frames_are_octet_counted_rfc5424() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = SyslogTarget::Tcp(listener.local_addr().unwrap().to_string());
    let out = Outputs::start(Some(&config(target, SyslogFormat::Rfc5424, 19)), None, HOST).unwrap();
    for n in 0..3 {
        out.send(alert(n, Severity::Critical));
    }
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(conn);
    for n in 0..3 {
        check_independently(&read_frame(&mut r), n);
    }
    out.shutdown(Duration::from_secs(1));
}

/// rsyslog goes away with a connection established; alerts sent meanwhile
/// are all delivered, in order, once a new rsyslog listens on the port.
#[test]
fn tcp_outage_then_restart_delivers_everything_in_order() {
    let Some(mut rs) =
        Rsyslog::start_or_skip("tcp_outage_then_restart_delivers_everything_in_order")
    else {
        return;
    };
    let out = Outputs::start(
        Some(&config(tcp(&rs), SyslogFormat::Rfc5424, 4)),
        None,
        HOST,
    )
    .unwrap();
    out.send(alert(0, Severity::Warning));
    rs.wait_for_lines(1, WAIT);
    rs.stop();
    for n in 1..=200 {
        out.send(alert(n, Severity::Warning));
    }
    // Accepted into the queue, not stuck in send.
    wait_stats(&out, "the outage to be noticed", |s| s.syslog_errors >= 1);
    assert_eq!(out.stats().dropped_queue_full, 0);
    assert_eq!(out.stats().sent_syslog, 1);
    rs.restart();
    let lines = rs.wait_for_lines(201, WAIT);
    assert_eq!(lines.len(), 201, "duplicates or extras");
    for (n, line) in lines.iter().enumerate() {
        assert_message(line, n);
    }
    let s = wait_stats(&out, "all sent", |s| s.sent_syslog == 201);
    assert!(s.reconnects >= 1, "{s:?}");
    out.shutdown(Duration::from_secs(2));
}

/// A target that is down from the start: `send` returns at once every time
/// (the count proves the loop ran to its end with the thread stuck
/// retrying), the oldest `queue_size` alerts are kept and arrive in order
/// once something listens.
#[test]
fn dead_tcp_target_never_blocks_send_and_keeps_the_oldest() {
    let port = free_tcp_port();
    let mut cfg = config(
        SyslogTarget::Tcp(format!("127.0.0.1:{port}")),
        SyslogFormat::Rfc5424,
        19,
    );
    cfg.queue_size = 100;
    let out = Outputs::start(Some(&cfg), None, HOST).unwrap();
    for n in 0..1000 {
        out.send(alert(n, Severity::Critical));
    }
    // A failed attempt too, or the listener might come up before the first.
    let s = wait_stats(&out, "900 drops and a failed attempt", |s| {
        s.dropped_queue_full == 900 && s.syslog_errors >= 1
    });
    assert_eq!(s.sent_syslog, 0);

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(conn);
    for n in 0..100 {
        check_independently(&read_frame(&mut r), n);
    }
    wait_stats(&out, "100 sent", |s| s.sent_syslog == 100);
    assert_eq!(out.stats().dropped_queue_full, 900);
    out.shutdown(Duration::from_secs(1));
}

/// The unix socket goes away (rsyslog stopped, its socket file removed) and
/// comes back as a new socket at the same path.
#[test]
fn unix_socket_outage_then_restart() {
    let Some(mut rs) = Rsyslog::start_or_skip("unix_socket_outage_then_restart") else {
        return;
    };
    let cfg = config(
        SyslogTarget::Unix(rs.unix_socket()),
        SyslogFormat::Rfc5424,
        4,
    );
    let out = Outputs::start(Some(&cfg), None, HOST).unwrap();
    out.send(alert(0, Severity::Warning));
    rs.wait_for_lines(1, WAIT);
    rs.stop();
    for n in 1..=50 {
        out.send(alert(n, Severity::Warning));
    }
    wait_stats(&out, "the outage to be noticed", |s| s.syslog_errors >= 1);
    rs.restart();
    let lines = rs.wait_for_lines(51, WAIT);
    assert_eq!(lines.len(), 51);
    for (n, line) in lines.iter().enumerate() {
        assert_message(line, n);
    }
    out.shutdown(Duration::from_secs(2));
}
