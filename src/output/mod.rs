//! Alert outputs (syslog, JSON lines), fed through a bounded queue by a thread
//! of their own so that the receive path never waits on them.
//!
//! Queue policy: alerts wait first in a channel, then (for syslog) in a queue
//! of `queue_size` while the target is away. Both keep the OLDEST alerts:
//! when full, the new alert is dropped and counted in `dropped_queue_full`.
//! The first alerts of an incident matter most, and what is kept is
//! delivered in order without holes.

#[cfg(not(feature = "fuzzing"))]
mod frame;
/// Public for the fuzz targets (fuzz/) only.
#[cfg(feature = "fuzzing")]
pub mod frame;
mod jsonl;
mod syslog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use jsonl::JsonlSettings;
pub use syslog::{SyslogFormat, SyslogSettings, SyslogTarget};
// The sinks take the alert model; re-exported for callers that name them
// through the outputs.
pub use crate::alert::{Alert, Severity};

use jsonl::JsonlWriter;
use syslog::SyslogSender;

/// Channel depth when there is no syslog output to size it from.
const DEFAULT_CHANNEL: usize = 10_000;

/// A snapshot of the output counters, all monotonic since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// Messages the syslog socket accepted (for UDP: sent, not known received).
    pub sent_syslog: u64,
    pub sent_jsonl: u64,
    /// Alerts refused because the channel or the syslog queue was full.
    pub dropped_queue_full: u64,
    /// Failed connection attempts, failed sends, and messages too large to
    /// send (dropped).
    pub syslog_errors: u64,
    /// Successful connections to the syslog target after the first one.
    pub reconnects: u64,
    pub jsonl_errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot open the JSON lines file {path}: {source}")]
    OpenJsonl {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the output thread: {0}")]
    Spawn(#[source] std::io::Error),
}

#[derive(Debug, Default)]
struct Counters {
    sent_syslog: AtomicU64,
    sent_jsonl: AtomicU64,
    dropped_queue_full: AtomicU64,
    syslog_errors: AtomicU64,
    reconnects: AtomicU64,
    jsonl_errors: AtomicU64,
}

/// The running outputs. Dropping without [`Outputs::shutdown`] stops the
/// thread after one last attempt, without waiting for it.
pub struct Outputs {
    tx: Option<SyncSender<Alert>>,
    counters: Arc<Counters>,
    /// When the thread must give up delivering, set just before the channel
    /// closes; read by the thread once it sees the channel closed.
    deadline: Arc<Mutex<Option<Instant>>>,
    done: Option<Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Outputs {
    /// Opens the outputs and spawns their thread. Disabled configs (or None)
    /// are left out. A syslog target that is down is not an error: it is
    /// retried, with alerts queued meanwhile. A JSON lines file that cannot be
    /// opened is.
    pub fn start(
        syslog: Option<&SyslogSettings>,
        jsonl: Option<&JsonlSettings>,
        hostname: &str,
    ) -> Result<Outputs, OutputError> {
        let syslog = syslog.filter(|c| c.enabled);
        let jsonl = match jsonl.filter(|c| c.enabled) {
            Some(c) => Some(JsonlWriter::open(c.path.as_deref())?),
            None => None,
        };
        let capacity = syslog.map_or(DEFAULT_CHANNEL, |c| c.queue_size.max(1));
        let sender = syslog.map(|c| SyslogSender::new(c, hostname));

        let (tx, rx) = mpsc::sync_channel(capacity);
        let (done_tx, done_rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let deadline = Arc::new(Mutex::new(None));
        let worker = Worker {
            rx,
            syslog: sender,
            jsonl,
            counters: Arc::clone(&counters),
            deadline: Arc::clone(&deadline),
        };
        let thread = std::thread::Builder::new()
            .name("audetect-output".into())
            .spawn(move || {
                worker.run();
                // The receiver is gone only if shutdown stopped waiting.
                let _ = done_tx.send(());
            })
            .map_err(OutputError::Spawn)?;
        Ok(Outputs {
            tx: Some(tx),
            counters,
            deadline,
            done: Some(done_rx),
            thread: Some(thread),
        })
    }

    /// Hands an alert to the output thread without ever waiting: if the
    /// channel is full the alert is dropped and counted.
    pub fn send(&self, alert: Alert) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                // Only if the thread died; its panic has been reported.
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> OutputStats {
        let c = &self.counters;
        OutputStats {
            sent_syslog: c.sent_syslog.load(Ordering::Relaxed),
            sent_jsonl: c.sent_jsonl.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            syslog_errors: c.syslog_errors.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            jsonl_errors: c.jsonl_errors.load(Ordering::Relaxed),
        }
    }

    /// Writes out everything already sent, keeps trying the syslog target
    /// until its queue is empty or `deadline` has passed, then returns. If
    /// the thread is stuck past the deadline (a connect or write in
    /// progress) it is left behind rather than waited for. Returns the
    /// final counters.
    pub fn shutdown(mut self, deadline: Duration) -> OutputStats {
        let until = Instant::now() + deadline;
        self.close(until);
        let Some(done) = self.done.take() else {
            return self.stats();
        };
        match done.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    if t.join().is_err() {
                        log::error!("the output thread panicked");
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "outputs did not finish within {deadline:?}; undelivered alerts are lost"
                );
            }
        }
        self.stats()
    }

    fn close(&mut self, until: Instant) {
        if let Ok(mut d) = self.deadline.lock() {
            d.get_or_insert(until);
        }
        self.tx = None;
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        self.close(Instant::now());
    }
}

struct Worker {
    rx: Receiver<Alert>,
    syslog: Option<SyslogSender>,
    jsonl: Option<JsonlWriter>,
    counters: Arc<Counters>,
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl Worker {
    fn run(mut self) {
        let counters = Arc::clone(&self.counters);
        // Connect at once, so that a target that is down is reported at start.
        if let Some(s) = self.syslog.as_mut() {
            s.pump(&counters);
        }
        loop {
            let wake = self.syslog.as_ref().and_then(SyslogSender::next_wakeup);
            let got = match wake {
                Some(t) => self
                    .rx
                    .recv_timeout(t.saturating_duration_since(Instant::now())),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(alert) => {
                    if let Some(j) = self.jsonl.as_mut() {
                        j.write(&alert.json, &counters);
                    }
                    if let Some(s) = self.syslog.as_mut() {
                        s.enqueue(&alert, &counters);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // recv hands out everything buffered before reporting this.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(s) = self.syslog.as_mut() {
                s.pump(&counters);
            }
        }
        let until = self
            .deadline
            .lock()
            .ok()
            .and_then(|d| *d)
            .unwrap_or_else(Instant::now);
        if let Some(s) = self.syslog.as_mut() {
            if s.queued() > 0 {
                s.drain_until(until, &counters);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::net::{UnixDatagram, UnixListener};
    use std::path::PathBuf;
    use std::time::SystemTime;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audetect-out-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn syslog(target: SyslogTarget, format: SyslogFormat, queue_size: usize) -> SyslogSettings {
        SyslogSettings {
            enabled: true,
            target,
            format,
            facility: 4,
            queue_size,
            queue_bytes: 1 << 30,
        }
    }

    fn alert(n: usize) -> Alert {
        Alert {
            json: format!(r#"{{"n":{n}}}"#),
            severity: Severity::Warning,
            time: SystemTime::now(),
        }
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn unix_datagram_3164_has_no_hostname_and_oversize_is_dropped() {
        let dir = scratch("dgram");
        let path = dir.join("log");
        let rx = UnixDatagram::bind(&path).unwrap();
        let cfg = syslog(SyslogTarget::Unix(path), SyslogFormat::Rfc3164, 10);
        let out = Outputs::start(Some(&cfg), None, "myhost").unwrap();
        out.send(Alert {
            json: format!(r#"{{"big":"{}"}}"#, "x".repeat(1 << 20)),
            ..alert(0)
        });
        out.send(alert(1));
        let mut buf = vec![0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let expect = format!(" audetect[{}]: {{\"n\":1}}", std::process::id());
        assert!(msg.starts_with("<36>"), "{msg}");
        assert!(msg.ends_with(&expect), "{msg}");
        assert!(!msg.contains("myhost"), "{msg}");
        wait_until("counts", || out.stats().sent_syslog == 1);
        assert_eq!(out.stats().syslog_errors, 1);
        out.shutdown(Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unix_stream_socket_gets_newline_terminated_messages() {
        let dir = scratch("stream");
        let path = dir.join("log");
        let listener = UnixListener::bind(&path).unwrap();
        let cfg = syslog(SyslogTarget::Unix(path), SyslogFormat::Rfc5424, 10);
        let out = Outputs::start(Some(&cfg), None, "h").unwrap();
        out.send(alert(1));
        out.send(alert(2));
        let (conn, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(conn).lines();
        for n in 1..=2 {
            let line = lines.next().unwrap().unwrap();
            assert!(line.starts_with("<36>1 "), "{line}");
            assert!(
                line.ends_with(&format!(
                    r#" audetect {} alert - {{"n":{n}}}"#,
                    std::process::id()
                )),
                "{line}"
            );
        }
        out.shutdown(Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dead_target_keeps_oldest_and_delivers_them_when_back() {
        let dir = scratch("dead");
        let path = dir.join("log");
        let cfg = syslog(SyslogTarget::Unix(path.clone()), SyslogFormat::Rfc5424, 5);
        let out = Outputs::start(Some(&cfg), None, "h").unwrap();
        for n in 0..50 {
            out.send(alert(n));
        }
        // Both, or the socket might appear before the first attempt.
        wait_until("drops and a failed attempt", || {
            let s = out.stats();
            s.dropped_queue_full == 45 && s.syslog_errors >= 1
        });
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut buf = vec![0u8; 4096];
        for n in 0..5 {
            let len = rx.recv(&mut buf).unwrap();
            let msg = std::str::from_utf8(&buf[..len]).unwrap();
            assert!(msg.ends_with(&format!(r#"{{"n":{n}}}"#)), "{msg}");
        }
        wait_until("sent", || out.stats().sent_syslog == 5);
        let s = out.stats();
        assert_eq!(s.dropped_queue_full, 45);
        assert!(s.syslog_errors >= 1);
        assert_eq!(s.reconnects, 0, "the first connection is not a reconnect");
        out.shutdown(Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_target_holds_at_most_queue_bytes() {
        let dir = scratch("dead-bytes");
        let path = dir.join("log");
        let cfg = SyslogSettings {
            queue_bytes: 3500,
            ..syslog(SyslogTarget::Unix(path.clone()), SyslogFormat::Rfc5424, 100)
        };
        let out = Outputs::start(Some(&cfg), None, "h").unwrap();
        // About 1,060 bytes each as formatted: three fit in 3500.
        let big = |n: usize| Alert {
            json: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(1000)),
            ..alert(n)
        };
        for n in 0..10 {
            out.send(big(n));
        }
        wait_until("drops and a failed attempt", || {
            let s = out.stats();
            s.dropped_queue_full == 7 && s.syslog_errors >= 1
        });
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut buf = vec![0u8; 4096];
        for n in 0..3 {
            let len = rx.recv(&mut buf).unwrap();
            let msg = std::str::from_utf8(&buf[..len]).unwrap();
            assert!(msg.contains(&format!(r#"{{"n":{n},"#)), "{msg}");
        }
        wait_until("sent", || out.stats().sent_syslog == 3);
        out.shutdown(Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shutdown_writes_everything_sent_to_jsonl_and_gives_up_on_syslog_at_the_deadline() {
        let dir = scratch("jsonl");
        let path = dir.join("alerts.json");
        let jsonl = JsonlSettings {
            enabled: true,
            path: Some(path.clone()),
        };
        // A syslog target that never comes: shutdown must still return.
        let cfg = syslog(
            SyslogTarget::Unix(dir.join("nobody")),
            SyslogFormat::Rfc5424,
            100,
        );
        let out = Outputs::start(Some(&cfg), Some(&jsonl), "h").unwrap();
        for n in 0..20 {
            out.send(alert(n));
        }
        // It returns (the test would hang otherwise), and says what it did:
        // every alert in the JSON lines, none to syslog, the failed
        // connection attempts counted, nothing dropped.
        let stats = out.shutdown(Duration::from_millis(300));
        assert_eq!(
            (
                stats.sent_jsonl,
                stats.sent_syslog,
                stats.dropped_queue_full
            ),
            (20, 0, 0),
            "{stats:?}"
        );
        assert!(stats.syslog_errors >= 1, "{stats:?}");
        assert_eq!((stats.reconnects, stats.jsonl_errors), (0, 0), "{stats:?}");
        let mut text = String::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let expect: String = (0..20).map(|n| format!("{{\"n\":{n}}}\n")).collect();
        assert_eq!(text, expect);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disabled_outputs_are_left_out() {
        let cfg = SyslogSettings {
            enabled: false,
            ..syslog(
                SyslogTarget::Unix("/nonexistent/log".into()),
                SyslogFormat::Rfc5424,
                1,
            )
        };
        let jsonl = JsonlSettings {
            enabled: false,
            path: Some("/nonexistent/dir/a.json".into()),
        };
        let out = Outputs::start(Some(&cfg), Some(&jsonl), "h").unwrap();
        out.send(alert(1));
        out.shutdown(Duration::from_secs(1));
        let e = Outputs::start(
            None,
            Some(&JsonlSettings {
                enabled: true,
                ..jsonl
            }),
            "h",
        )
        .err()
        .expect("an unopenable jsonl file is an error");
        assert!(matches!(e, OutputError::OpenJsonl { .. }));
    }
}
