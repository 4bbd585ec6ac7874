//! A real rsyslogd for tests, in the foreground with its own config, sockets
//! and output file in a temporary directory; every message it receives
//! becomes one JSON line of the fields rsyslog parsed out of it.
//!
//! ```ignore
//! let Some(rs) = Rsyslog::start_or_skip("my_test") else { return };
//! // ... send to rs.unix_socket(), 127.0.0.1:rs.udp_port() or :rs.tcp_port()
//! let lines = rs.wait_for_lines(1, Duration::from_secs(10));
//! assert_eq!(lines[0]["app-name"], "audetect");
//! ```
//!
//! Each line is an object whose values are all strings (rsyslog's `jsonf`):
//! `inputname` (imuxsock, imudp, imtcp), `msg`, `rawmsg`, `programname`,
//! `syslogtag`, `app-name`, `procid`, `msgid`, `hostname`, `fromhost-ip`,
//! `syslogfacility`, `syslogseverity` (numbers as text),
//! `syslogfacility-text`, `syslogseverity-text`, `protocol-version` ("1" for
//! RFC 5424, "0" otherwise), `timereported` (RFC 3339, as sent when the
//! message carried one), `structured-data`.
//!
//! Inputs:
//! - [`Rsyslog::unix_socket`]: imuxsock with `UseSpecialParser="off"`
//!   (the regular parser chain, so RFC 5424 is understood: the default
//!   special parser only knows syslog(3)'s format and turns an RFC 5424
//!   header into the tag and message), `ParseHostname="on"` (a HOSTNAME in
//!   the message is taken; a 3164 message without one, as syslog(3) sends,
//!   still parses because `audetect[PID]:` cannot be a hostname), and
//!   `IgnoreTimestamp="off"` (keep the sender's time in `timereported`).
//! - [`Rsyslog::stock_unix_socket`]: imuxsock with rsyslog's defaults, i.e.
//!   what /dev/log is on a host whose stock rsyslog owns it.
//! - imudp and imtcp on 127.0.0.1, ports picked free at start and kept
//!   across [`Rsyslog::restart`]; imtcp accepts both RFC 6587 framings.
//!
//! Messages from the harness's own readiness probes and rsyslogd's internal
//! messages never reach the output file.
#![allow(dead_code)] // a shared harness: each test module uses a part of it

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// rsyslogd's location; `RSYSLOGD` overrides it.
const DEFAULT_BINARY: &str = "/usr/sbin/rsyslogd";
const PROBE_TAG: &str = "audetect-harness-probe";
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// A running (or stopped, between [`Rsyslog::stop`] and
/// [`Rsyslog::restart`]) rsyslogd. Dropping it kills it and removes its
/// directory, which is kept and printed when the test is panicking.
pub struct Rsyslog {
    binary: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    udp_port: u16,
    tcp_port: u16,
    /// Counts starts, so that a restart waits for its own probes.
    generation: u32,
}

impl Rsyslog {
    /// The rsyslogd binary, if installed.
    pub fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("RSYSLOGD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY));
        path.is_file().then_some(path)
    }

    /// Starts rsyslogd, or returns None after printing `SKIPPED <test>` when
    /// it is not installed. In CI (CI=true) a missing rsyslogd panics: the
    /// CI script must install it.
    pub fn start_or_skip(test: &str) -> Option<Rsyslog> {
        if Rsyslog::binary().is_none() {
            crate::util::skip(
                test,
                "rsyslogd is not installed (apt-get install -y rsyslog)",
            );
            return None;
        }
        Some(Rsyslog::start())
    }

    /// Starts rsyslogd and waits until every input delivers. Panics, with
    /// rsyslogd's own diagnostics, if it does not come up.
    pub fn start() -> Rsyslog {
        let binary = Rsyslog::binary().unwrap_or_else(|| {
            panic!("rsyslogd is not installed (apt-get install -y rsyslog; or set RSYSLOGD)")
        });
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("audetect-rsyslog-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the rsyslog test directory");
        let mut rs = Rsyslog {
            binary,
            dir,
            child: None,
            udp_port: free_udp_port(),
            tcp_port: free_tcp_port(),
            generation: 0,
        };
        std::fs::write(rs.dir.join("rsyslog.conf"), rs.config()).expect("write rsyslog.conf");
        rs.spawn();
        rs
    }

    /// The imuxsock socket whose parser understands RFC 5424 and RFC 3164.
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// An imuxsock socket with rsyslog's default (syslog(3)-only) parsing.
    pub fn stock_unix_socket(&self) -> PathBuf {
        self.dir.join("stock.log")
    }

    pub fn udp_port(&self) -> u16 {
        self.udp_port
    }

    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The JSON lines file rsyslog writes (appended to across restarts).
    pub fn output_file(&self) -> PathBuf {
        self.dir.join("messages.jsonl")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every complete line written so far.
    pub fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.output_file()).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("rsyslog wrote a line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Polls the output file until it has at least `n` lines and returns
    /// them all; panics with what arrived and rsyslogd's diagnostics if that
    /// takes longer than `timeout`.
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let end = Instant::now() + timeout;
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            if Instant::now() >= end {
                let shown: Vec<String> = lines.iter().take(20).map(Value::to_string).collect();
                panic!(
                    "rsyslog: expected {n} lines within {timeout:?}, got {}:\n{}\n{}",
                    lines.len(),
                    shown.join("\n"),
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops rsyslogd (SIGTERM, then SIGKILL after 5 s), keeping its
    /// directory, output file and ports for [`Rsyslog::restart`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of a child we have not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let end = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts rsyslogd again with the same config, sockets and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// rsyslogd's stderr and internal messages, for failure reports.
    pub fn diagnostics(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "--- rsyslogd stderr ({}) ---\n{}--- rsyslogd internal messages ---\n{}",
            self.dir.display(),
            read("stderr.log"),
            read("internal.log")
        )
    }

    fn config(&self) -> String {
        let d = self.dir.display();
        let (udp, tcp) = (self.udp_port, self.tcp_port);
        format!(
            r#"# Written by the audetect test harness.
global(workDirectory="{d}" maxMessageSize="64k" net.enableDNS="off")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
input(type="imuxsock" Socket="{d}/log" UseSpecialParser="off" ParseHostname="on"
      IgnoreTimestamp="off" RateLimit.Interval="0")
input(type="imuxsock" Socket="{d}/stock.log" RateLimit.Interval="0")
input(type="imudp" Address="127.0.0.1" Port="{udp}")
input(type="imtcp" Address="127.0.0.1" Port="{tcp}")

template(name="harness_json" type="list" option.jsonf="on") {{
  property(outname="inputname" name="inputname" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="rawmsg" name="rawmsg" format="jsonf")
  property(outname="programname" name="programname" format="jsonf")
  property(outname="syslogtag" name="syslogtag" format="jsonf")
  property(outname="app-name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="fromhost-ip" name="fromhost-ip" format="jsonf")
  property(outname="syslogfacility" name="syslogfacility" format="jsonf")
  property(outname="syslogseverity" name="syslogseverity" format="jsonf")
  property(outname="syslogfacility-text" name="syslogfacility-text" format="jsonf")
  property(outname="syslogseverity-text" name="syslogseverity-text" format="jsonf")
  property(outname="protocol-version" name="protocol-version" format="jsonf")
  property(outname="timereported" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="structured-data" name="structured-data" format="jsonf")
}}
template(name="harness_probe" type="string" string="%msg%\n")

if $inputname == "rsyslogd" then {{
  action(type="omfile" file="{d}/internal.log")
  stop
}}
if $programname == "{PROBE_TAG}" then {{
  action(type="omfile" file="{d}/probes.log" template="harness_probe")
  stop
}}
action(type="omfile" file="{d}/messages.jsonl" template="harness_json")
"#
        )
    }

    fn spawn(&mut self) {
        self.generation += 1;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .expect("open the rsyslogd stderr log");
        let stdout = stderr.try_clone().expect("dup the stderr log");
        let child = Command::new(&self.binary)
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Ready means a probe sent through each input came out the other end:
    /// sockets that merely exist may not be read yet.
    fn wait_ready(&mut self) {
        let g = self.generation;
        let mut pending: Vec<&str> = vec!["unix", "stock", "udp", "tcp"];
        let end = Instant::now() + START_TIMEOUT;
        while !pending.is_empty() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "rsyslogd exited during start ({status})\n{}",
                        self.diagnostics()
                    );
                }
            }
            if Instant::now() >= end {
                let diag = self.diagnostics();
                self.stop();
                panic!("rsyslogd inputs {pending:?} not ready within {START_TIMEOUT:?}\n{diag}");
            }
            for input in &pending {
                let _ = self.probe(input, g);
            }
            std::thread::sleep(Duration::from_millis(50));
            let seen = std::fs::read_to_string(self.dir.join("probes.log")).unwrap_or_default();
            pending.retain(|i| !seen.lines().any(|l| l.trim() == format!("gen{g}-{i}")));
        }
    }

    fn probe(&self, input: &str, g: u32) -> std::io::Result<()> {
        let body = format!("gen{g}-{input}");
        let rfc5424 = format!("<14>1 - - {PROBE_TAG} - - - {body}");
        match input {
            "unix" => {
                UnixDatagram::unbound()?.send_to(rfc5424.as_bytes(), self.unix_socket())?;
            }
            "stock" => {
                let m = format!("<14>Jan  1 00:00:00 {PROBE_TAG}[1]: {body}");
                UnixDatagram::unbound()?.send_to(m.as_bytes(), self.stock_unix_socket())?;
            }
            "udp" => {
                UdpSocket::bind("127.0.0.1:0")?
                    .send_to(rfc5424.as_bytes(), ("127.0.0.1", self.udp_port))?;
            }
            _ => {
                let mut s = TcpStream::connect(("127.0.0.1", self.tcp_port))?;
                s.write_all(format!("{} {rfc5424}", rfc5424.len()).as_bytes())?;
            }
        }
        Ok(())
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("rsyslog test directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port free now on 127.0.0.1 (another process could take it before
/// rsyslogd binds it; start then fails loudly rather than flakily).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
