//! Hostile input, no kernel needed: executables whose names carry newlines,
//! quotes, `]`, backslashes, control characters, bytes that are not UTF-8 and
//! forged syslog or audit headers go through parse → reassemble → normalize →
//! alert → syslog output, and a real rsyslog must log each alert as exactly
//! one message whose text is the JSON sent (no log injection). Also: RFC 5424
//! frames of arbitrary JSON parse back with an independent parser.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audetect::config::{SyslogConfig, SyslogFormat, SyslogTarget};
use audetect::detect::Match;
use audetect::normalize::{EcsEvent, Normalizer};
use audetect::output::{Alert, Outputs};
use audetect::parse::{parse_netlink, types};
use audetect::process::NoProc;
use audetect::reassemble::Reassembler;
use serde_json::{json, Map, Value};

use crate::rsyslog::Rsyslog;

const HOST: &str = "audetect-hostile-host";
const WAIT: Duration = Duration::from_secs(20);

/// Executable paths an attacker can choose (any bytes but NUL and `/` in a
/// file name; the NUL here stands for what a hostile log may carry).
fn hostile_executables() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"/tmp/evil\nJan  1 00:00:00 host sshd[1]: Accepted password for root from 10.0.0.1"
            .to_vec(),
        b"/tmp/evil\r\n<13>1 2024-01-01T00:00:00Z host evil 1 - - injected\n".to_vec(),
        b"/tmp/q\"uo\"te'd \"] [x@1 a=\"b\"] \\back\\slash\\".to_vec(),
        b"/tmp/gs\x1dtype=SYSCALL msg=audit(1.000:1): exe=\"/bin/sh\"".to_vec(),
        b"/tmp/not-utf8-\xff\xfe\xc3(\xed\xa0\x80-\xc0\xaf".to_vec(),
        b"/tmp/ctl\x01\x07\x08\x0b\x0c\x1b[31mred\x1b[0m\x7fdel\x00nul".to_vec(),
        "/tmp/unicode \u{2028}\u{2029}\u{feff}é😀 \u{85}nel"
            .as_bytes()
            .to_vec(),
        b"/tmp/12 <13>1 - - - - - octet\n34 <13>1 - - evil - - - x".to_vec(),
        b"/tmp/%s%n%x{}$(id)`id`;|&<>".to_vec(),
        b"/tmp/\"}],\"event\":{\"kind\":\"forged\"},\"x\":[{\"".to_vec(),
    ];
    let mut long = b"/tmp/".to_vec();
    for _ in 0..600 {
        long.extend_from_slice(b"A\n\"]\\");
    }
    v.push(long);
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02X}")).collect()
}

/// A connect() to 127.0.0.1:4444 refused, then a setsid(), by root, of one
/// process running `exe`, as the kernel writes the records: `exe` and
/// `comm` hex-encoded (audit_log_untrustedstring), then EOE.
fn records(serial: u64, exe: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let comm = &exe[exe.len().saturating_sub(15)..];
    let head = |s: u64| format!("audit(1795765558.{:03}:{s}): ", s % 1000);
    let syscall = |s: u64, nr: u32, exit: i64| {
        format!(
            "{}arch=c000003e syscall={nr} success={} exit={exit} a0=3 a1=7ffd0 a2=10 a3=0 items=0 ppid=1 pid=4242 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm={} exe={} key=(null)",
            head(s),
            if exit < 0 { "no" } else { "yes" },
            hex(comm),
            hex(exe)
        )
    };
    let connect = serial;
    let setsid = serial + 1;
    vec![
        (types::SYSCALL, syscall(connect, 42, -111).into_bytes()),
        (
            types::SOCKADDR,
            format!("{}saddr=0200115C7F0000010000000000000000", head(connect)).into_bytes(),
        ),
        (types::EOE, head(connect).into_bytes()),
        (types::SYSCALL, syscall(setsid, 112, 4242).into_bytes()),
        (types::EOE, head(setsid).into_bytes()),
    ]
}

fn builtin_rule() -> Arc<audetect::rulefile::RuleMeta> {
    let rules = audetect::rulefile::load(true, &[], &audetect::fields::schema())
        .unwrap()
        .rules;
    Arc::clone(&rules[0].meta)
}

fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_795_765_600_123_456)
}

/// The alerts for every hostile executable, each with the document it must
/// read back as, checked on the way.
fn hostile_alerts() -> Vec<(Alert, Value)> {
    let rule = builtin_rule();
    let mut normalizer = Normalizer::new(NoProc);
    let mut out = Vec::new();
    for (i, exe) in hostile_executables().iter().enumerate() {
        let mut reassembler = Reassembler::default();
        let mut events = Vec::new();
        for (rtype, body) in records(100 + 2 * i as u64, exe) {
            let r = parse_netlink(rtype, &body).expect("the kernel's records parse");
            reassembler.push(r, &mut events);
        }
        assert_eq!(events.len(), 2, "one event per serial");
        let ecs: Vec<EcsEvent> = events
            .iter()
            .filter_map(|e| normalizer.normalize(e))
            .collect();
        assert_eq!(ecs.len(), 2, "connect and setsid: {ecs:?}");
        let want = String::from_utf8_lossy(exe).into_owned();
        for e in &ecs {
            assert_eq!(e.process.executable(), Some(want.as_str()));
        }
        let alert = audetect::alert::build(
            &Match {
                rule: Arc::clone(&rule),
                events: ecs,
            },
            HOST,
            fixed_time(),
        );
        assert!(
            !alert.json.contains(['\n', '\r', '\0']),
            "raw line break or NUL in the alert: {:?}",
            alert.json
        );
        let doc: Value = serde_json::from_str(&alert.json).expect("the alert is JSON");
        assert_eq!(doc["process"]["executable"], *want);
        assert_eq!(doc["events"][0]["process"]["executable"], *want);
        assert_eq!(doc["events"][1]["process"]["executable"], *want);
        assert_eq!(doc["event"], json!({"kind": "signal"}), "not forged");
        assert_eq!(doc["host"]["name"], HOST);
        let name = want.rsplit('/').next().unwrap();
        assert_eq!(doc["process"]["name"], name);
        assert!(doc["kibana"]["alert"]["reason"]
            .as_str()
            .unwrap()
            .contains(name));
        out.push((alert, doc));
    }
    out
}

#[test]
fn hostile_executables_make_well_formed_alerts() {
    assert_eq!(hostile_alerts().len(), hostile_executables().len());
}

fn config(target: SyslogTarget, format: SyslogFormat) -> SyslogConfig {
    SyslogConfig {
        enabled: true,
        target,
        format,
        facility: 10,
        queue_size: 10_000,
        queue_bytes: 32 << 20,
    }
}

fn field<'a>(line: &'a Value, name: &str) -> &'a str {
    line[name]
        .as_str()
        .unwrap_or_else(|| panic!("no field {name} in {line}"))
}

/// Sends every hostile alert and checks that rsyslog logged exactly one
/// message for each, from audetect, whose text is the JSON sent.
fn through_rsyslog(test: &str, target: impl Fn(&Rsyslog) -> SyslogTarget, format: SyslogFormat) {
    let Some(rs) = Rsyslog::start_or_skip(test) else {
        return;
    };
    let alerts = hostile_alerts();
    let out = Outputs::start(Some(&config(target(&rs), format)), None, HOST).unwrap();
    for (alert, _) in &alerts {
        out.send(alert.clone());
    }
    // Then a plain alert as the sentinel: rsyslog handles one input's
    // messages in order, so once the sentinel is logged, anything the
    // hostile ones injected (an extra line, a split message) is logged too.
    let sentinel = json!({"sentinel": "after the hostile alerts"});
    out.send(Alert {
        json: sentinel.to_string(),
        ..alerts[0].0.clone()
    });
    let is_sentinel = |line: &Value| {
        serde_json::from_str::<Value>(field(line, "msg").trim_start()).ok()
            == Some(sentinel.clone())
    };
    let end = std::time::Instant::now() + WAIT;
    let mut lines = rs.lines();
    while !lines.iter().any(is_sentinel) {
        assert!(
            std::time::Instant::now() < end,
            "the sentinel never came:\n{}",
            rs.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(20));
        lines = rs.lines();
    }
    let stats = out.shutdown(Duration::from_secs(2));
    assert_eq!(stats.sent_syslog, alerts.len() as u64 + 1, "{stats:?}");
    assert_eq!(lines.iter().filter(|&l| is_sentinel(l)).count(), 1);
    lines.retain(|l| !is_sentinel(l));
    assert_eq!(
        lines.len(),
        alerts.len(),
        "one message per alert, nothing more:\n{}",
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pid = std::process::id().to_string();
    let mut seen = vec![false; alerts.len()];
    for line in &lines {
        assert_eq!(field(line, "programname"), "audetect", "{line}");
        assert_eq!(field(line, "app-name"), "audetect", "{line}");
        assert_eq!(field(line, "procid"), pid, "{line}");
        if format == SyslogFormat::Rfc5424 {
            assert_eq!(field(line, "protocol-version"), "1", "{line}");
            assert_eq!(field(line, "hostname"), HOST, "{line}");
            assert_eq!(field(line, "msgid"), "alert", "{line}");
            assert_eq!(field(line, "structured-data"), "-", "{line}");
        }
        // RFC 3164: rsyslog keeps the space after the tag's colon.
        let msg = field(line, "msg").trim_start();
        let doc: Value = serde_json::from_str(msg)
            .unwrap_or_else(|e| panic!("msg is not the JSON sent ({e}): {line}"));
        let i = alerts
            .iter()
            .position(|(_, sent)| *sent == doc)
            .unwrap_or_else(|| panic!("msg is not a document that was sent: {line}"));
        assert!(!seen[i], "alert {i} logged twice");
        seen[i] = true;
    }
}

#[test]
fn hostile_alerts_rfc5424_over_unix_socket() {
    through_rsyslog(
        "hostile_alerts_rfc5424_over_unix_socket",
        |rs| SyslogTarget::Unix(rs.unix_socket()),
        SyslogFormat::Rfc5424,
    );
}

#[test]
fn hostile_alerts_rfc5424_over_udp() {
    through_rsyslog(
        "hostile_alerts_rfc5424_over_udp",
        |rs| SyslogTarget::Udp(format!("127.0.0.1:{}", rs.udp_port())),
        SyslogFormat::Rfc5424,
    );
}

#[test]
fn hostile_alerts_rfc5424_over_tcp() {
    through_rsyslog(
        "hostile_alerts_rfc5424_over_tcp",
        |rs| SyslogTarget::Tcp(format!("127.0.0.1:{}", rs.tcp_port())),
        SyslogFormat::Rfc5424,
    );
}

#[test]
fn hostile_alerts_rfc3164_over_stock_unix_socket() {
    through_rsyslog(
        "hostile_alerts_rfc3164_over_stock_unix_socket",
        |rs| SyslogTarget::Unix(rs.stock_unix_socket()),
        SyslogFormat::Rfc3164,
    );
}

/// xorshift64*: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn text(&mut self, max: u64) -> String {
        const NASTY: &[char] = &[
            '\n', '\r', '\t', '\0', '\u{1d}', '\u{7f}', '"', '\\', ']', '[', '=', ' ', '-', '<',
            '>', '\u{85}', '\u{2028}', '\u{feff}', 'é', '😀',
        ];
        let len = self.below(max + 1);
        (0..len)
            .map(|_| match self.below(3) {
                0 => NASTY[self.below(NASTY.len() as u64) as usize],
                1 => char::from(b' ' + self.below(95) as u8),
                _ => char::from_u32(self.below(0x11_0000) as u32).unwrap_or('?'),
            })
            .collect()
    }
    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(f64::from(self.next() as u32) / 8.0),
            4 => Value::String(self.text(30)),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => Value::Object(self.object(depth - 1)),
        }
    }
    fn object(&mut self, depth: u32) -> Map<String, Value> {
        (0..self.below(5))
            .map(|_| (self.text(10), self.json(depth)))
            .collect()
    }
}

/// What RFC 5424 allows in HOSTNAME: printable ASCII, at most 255.
fn header_field(s: &str) -> Option<String> {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(255)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// RFC 5424 and RFC 3164 frames of arbitrary JSON documents, with arbitrary
/// host names, as they arrive on a datagram socket: no raw line break, and
/// an independent RFC 5424 parser reads back the very document sent.
#[test]
fn frames_of_arbitrary_json_parse_back() {
    let dir = std::env::temp_dir().join(format!("audetect-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(WAIT)).unwrap();
    let mut rng = Rng(0x5eed_0005);
    let mut buf = vec![0u8; 1 << 17];
    for round in 0..24 {
        let host = match round {
            0 => String::new(),
            1 => "a".repeat(300),
            _ => rng.text(20),
        };
        let format = if round % 4 == 3 {
            SyslogFormat::Rfc3164
        } else {
            SyslogFormat::Rfc5424
        };
        let out = Outputs::start(
            Some(&config(SyslogTarget::Unix(path.clone()), format)),
            None,
            &host,
        )
        .unwrap();
        for _ in 0..25 {
            let doc = Value::Object(rng.object(3));
            let sent = doc.to_string();
            out.send(Alert {
                json: sent.clone(),
                severity: audetect::output::Severity::Warning,
                time: fixed_time(),
            });
            let n = rx.recv(&mut buf).expect("a datagram");
            let frame = &buf[..n];
            assert!(
                !frame.contains(&b'\n') && !frame.contains(&b'\r'),
                "raw line break in {:?}",
                String::from_utf8_lossy(frame)
            );
            let text = std::str::from_utf8(frame).expect("frames are UTF-8");
            let msg = match format {
                SyslogFormat::Rfc5424 => {
                    let m = syslog_rfc5424::parse_message(text)
                        .unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {text}"));
                    assert_eq!(m.hostname, header_field(&host), "{text}");
                    assert_eq!(m.appname.as_deref(), Some("audetect"));
                    assert_eq!(m.msgid.as_deref(), Some("alert"));
                    assert!(m.sd.is_empty(), "{text}");
                    m.msg
                }
                SyslogFormat::Rfc3164 => {
                    let tag = format!(" audetect[{}]: ", std::process::id());
                    let at = text.find(&tag).expect("the tag");
                    text[at + tag.len()..].to_owned()
                }
            };
            assert_eq!(msg, sent, "{text}");
            assert_eq!(serde_json::from_str::<Value>(&msg).unwrap(), doc);
        }
        out.shutdown(Duration::from_secs(1));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
