//! The README's rsyslog forwarding snippet, as written: a local rsyslogd
//! with it forwards an alert sent by audetect's output to a second rsyslogd
//! (the SIEM stand-in on loopback), which gets exactly the JSON sent.

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

#[test]
fn readme_forwarding_example_delivers_alerts_to_the_siem() {
    let Some(siem) =
        Rsyslog::start_or_skip("readme_forwarding_example_delivers_alerts_to_the_siem")
    else {
        return;
    };
    let dir = TempDir::new("forwarder");
    let socket = dir.path().join("log");
    let snippet = readme_snippet()
        .replace("siem.example.com", "127.0.0.1")
        .replace("port=\"6514\"", &format!("port=\"{}\"", siem.tcp_port()));
    let conf = format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
         input(type=\"imuxsock\" Socket=\"{socket}\")\n{snippet}\n",
        dir = dir.path().display(),
        socket = socket.display()
    );
    let conf_path = dir.path().join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut forwarder = Command::new(Rsyslog::binary().unwrap())
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

    // As audetect sends by default to a local socket (RFC 3164, auth).
    let config = audetect::config::parse_str(
        &format!("[output.syslog]\ntarget = \"unix:{}\"\n", socket.display()),
        "test",
    )
    .unwrap();
    let outputs = audetect::output::Outputs::start(Some(&config.syslog), None, "testhost").unwrap();
    let json = r#"{"rule":{"name":"Suspicious Network Connection Attempt by Root"},"event":{"kind":"signal"}}"#;
    outputs.send(audetect::output::Alert {
        json: json.into(),
        severity: audetect::output::Severity::Warning,
        time: std::time::SystemTime::now(),
    });
    let lines = siem.wait_for_lines(1, Duration::from_secs(15));
    outputs.shutdown(Duration::from_secs(2));
    let _ = forwarder.kill();
    let _ = forwarder.wait();
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
