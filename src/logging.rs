//! The daemon's own log on stderr: plain lines for a terminal, with sd-daemon
//! priority prefixes when systemd's journal reads them.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLog {
    journal: bool,
}

impl Log for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = if self.journal {
            let prio = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{prio}>{}\n", record.args())
        } else {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            format!("audetect: {level}: {}\n", record.args())
        };
        // A closed stderr must not take the daemon down with it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger; `level` is "error", "warn", "info" or "debug".
pub fn init(level: LevelFilter) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger: &'static StderrLog = Box::leak(Box::new(StderrLog { journal }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
