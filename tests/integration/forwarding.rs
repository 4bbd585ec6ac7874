//! The README's rsyslog forwarding snippet, as written: a local rsyslogd
//! with it forwards an alert sent by audetect's output to a second rsyslogd
//! (the SIEM stand-in on loopback), which gets exactly the JSON sent.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::rsyslog::Rsyslog;
use crate::util::{wait_for, TempDir};

fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- rsyslog-forwarding-example -->")
        .expect("marker in README");
    let end = readme
        .find("<!-- /rsyslog-forwarding-example -->")
        .expect("end marker");
    let block = &readme[start..end];
    let body = block
        .split("```")
        .nth(1)
        .expect("a code block between the markers");
    body.trim_start_matches('\n').to_owned()
}

/// A local rsyslogd with the README's snippet, forwarding to 127.0.0.1:`port`;
/// audetect's syslog output, sending to it as it does by default (a local
/// unix socket, RFC 3164). Stopped on drop.
struct Forwarder {
    rsyslogd: std::process::Child,
    outputs: Option<audetect::output::Outputs>,
    _dir: TempDir,
}

impl Forwarder {
    fn start(port: u16) -> Forwarder {
        let dir = TempDir::new("forwarder");
        let socket = dir.path().join("log");
        let snippet = readme_snippet()
            .replace("siem.example.com", "127.0.0.1")
            .replace("port=\"6514\"", &format!("port=\"{port}\""));
        let conf = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{socket}\")\n{snippet}\n",
            dir = dir.path().display(),
            socket = socket.display()
        );
        let conf_path = dir.path().join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let rsyslogd = Command::new(Rsyslog::binary().unwrap())
            .args(["-n", "-f"])
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.path().join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = wait_for(Duration::from_secs(10), || socket.exists().then_some(()));
        assert!(
            up.is_some(),
            "the forwarding rsyslogd did not create its socket"
        );
        let config = audetect::config::parse_str(
            &format!("[output.syslog]\ntarget = \"unix:{}\"\n", socket.display()),
            "test",
        )
        .unwrap();
        let outputs =
            audetect::output::Outputs::start(Some(&config.syslog), None, "testhost").unwrap();
        Forwarder {
            rsyslogd,
            outputs: Some(outputs),
            _dir: dir,
        }
    }

    fn send(&self, json: &str) {
        if let Some(o) = &self.outputs {
            o.send(audetect::output::Alert {
                json: json.into(),
                severity: audetect::output::Severity::Warning,
                time: std::time::SystemTime::now(),
            });
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(o) = self.outputs.take() {
            o.shutdown(Duration::from_secs(2));
        }
        let _ = self.rsyslogd.kill();
        let _ = self.rsyslogd.wait();
    }
}

#[test]
fn readme_forwarding_example_delivers_alerts_to_the_siem() {
    let Some(siem) =
        Rsyslog::start_or_skip("readme_forwarding_example_delivers_alerts_to_the_siem")
    else {
        return;
    };
    let forwarder = Forwarder::start(siem.tcp_port());
    let json = r#"{"rule":{"name":"Suspicious Network Connection Attempt by Root"},"event":{"kind":"signal"}}"#;
    forwarder.send(json);
    let lines = siem.wait_for_lines(1, Duration::from_secs(15));
    drop(forwarder);
    let line = &lines[0];
    assert_eq!(line["programname"], "audetect", "{line}");
    assert_eq!(line["inputname"], "imtcp", "{line}");
    let msg: serde_json::Value =
        serde_json::from_str(line["msg"].as_str().unwrap().trim()).unwrap();
    assert_eq!(
        msg,
        serde_json::from_str::<serde_json::Value>(json).unwrap()
    );
}

/// A real alert at the size cap of a `unix:` target (7680 bytes), through
/// the README's snippet as written, to a receiver that takes only
/// octet-counted frames (RFC 6587 3.4.1, what the snippet promises): one
/// frame, its count its length, the alert whole in it.
#[test]
fn readme_forwarding_example_sends_a_full_size_alert_octet_counted() {
    if Rsyslog::binary().is_none() {
        return crate::util::skip(
            crate::util::test_name!(),
            "rsyslogd is not installed (apt-get install -y rsyslog)",
        );
    }
    let alert = full_size_alert();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = tx.send(read_octet_counted(&mut stream));
    });
    let forwarder = Forwarder::start(port);
    forwarder.send(&alert);
    let frame = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the forwarder connects and sends a frame")
        .unwrap_or_else(|e| panic!("not an octet-counted frame: {e}"));
    drop(forwarder);
    // RFC 5424 (RSYSLOG_SyslogProtocol23Format): <PRI>1 TIME HOST APP PROCID MSGID SD MSG
    assert!(frame.starts_with('<'), "{}", &frame[..80.min(frame.len())]);
    let fields: Vec<&str> = frame.splitn(8, ' ').collect();
    assert_eq!(fields.len(), 8, "{}", &frame[..200.min(frame.len())]);
    assert!(fields[0].ends_with(">1"), "{}", fields[0]);
    assert_eq!(fields[3], "audetect");
    assert_eq!(fields[7].trim(), alert, "the alert arrives whole");
}

/// A replayed alert of the built-in rule, its command line grown (as a
/// long one is) until the document is just under the unix: cap.
fn full_size_alert() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .args([
            "replay",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scenarios.log"),
        ])
        .output()
        .expect("run audetect replay");
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .expect("the fixture alerts")
        .to_owned();
    let mut v: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    let cap = audetect::config::SMALL_ALERT_BYTES;
    let base = serde_json::to_string(&v).unwrap().len();
    assert!(base < cap - 100, "{base}");
    let pad = "x".repeat(cap - base - 100);
    v["process"]["args"]
        .as_array_mut()
        .expect("args")
        .push(serde_json::Value::String(pad));
    let alert = serde_json::to_string(&v).unwrap();
    assert!(alert.len() > 7000 && alert.len() <= cap, "{}", alert.len());
    alert
}

/// One frame of RFC 6587's octet counting: `LEN SP MSG`, LEN in ASCII
/// digits, the message exactly LEN bytes. Anything else is an error.
fn read_octet_counted(stream: &mut impl Read) -> Result<String, String> {
    let mut len = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream
            .read_exact(&mut byte)
            .map_err(|e| format!("reading the count: {e}"))?;
        match byte[0] {
            b'0'..=b'9' if len.len() < 9 => len.push(byte[0]),
            b' ' if !len.is_empty() => break,
            other => return Err(format!("byte {other:#04x} where the count belongs")),
        }
    }
    let n: usize = String::from_utf8_lossy(&len)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut msg = vec![0u8; n];
    stream
        .read_exact(&mut msg)
        .map_err(|e| format!("a frame of {n} bytes cut short: {e}"))?;
    String::from_utf8(msg).map_err(|e| format!("{e}"))
}
