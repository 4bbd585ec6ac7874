//! JSON lines output: one alert document per line, to standard output or
//! appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{Counters, OutputError};

/// `[output.jsonl]`: alerts as JSON lines.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonlSettings {
    pub enabled: bool,
    /// `None` is standard output.
    pub path: Option<PathBuf>,
}

enum Sink {
    Stdout,
    File(File),
}

pub(super) struct JsonlWriter {
    sink: Sink,
    name: String,
    /// Set after a failure has been logged, so that a full disk gives one
    /// line and not one per alert.
    failing: bool,
}

impl JsonlWriter {
    /// `None` is standard output. A file is opened here, not lazily, so that
    /// a wrong path stops the daemon at start rather than losing alerts.
    pub(super) fn open(path: Option<&Path>) -> Result<JsonlWriter, OutputError> {
        let (sink, name) = match path {
            None => (Sink::Stdout, "standard output".to_owned()),
            Some(p) => {
                // O_APPEND keeps each line whole and in place even when
                // logrotate's copytruncate or another writer shares the file;
                // 0640 because alerts name users, hosts and commands.
                // O_NOFOLLOW: a symlink planted at the path would send
                // alerts (root's writes) wherever it points.
                let file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(p)
                    .map_err(|source| OutputError::OpenJsonl {
                        path: PathBuf::from(p),
                        source,
                    })?;
                (Sink::File(file), p.display().to_string())
            }
        };
        Ok(JsonlWriter {
            sink,
            name,
            failing: false,
        })
    }

    pub(super) fn write(&mut self, json: &str, counters: &Counters) {
        match self.write_line(json) {
            Ok(()) => {
                counters.sent_jsonl.fetch_add(1, Ordering::Relaxed);
                if self.failing {
                    log::info!("jsonl: writing to {} works again", self.name);
                    self.failing = false;
                }
            }
            Err(e) => {
                counters.jsonl_errors.fetch_add(1, Ordering::Relaxed);
                if !self.failing {
                    log::warn!("jsonl: cannot write an alert to {}: {e}", self.name);
                    self.failing = true;
                }
            }
        }
    }

    fn write_line(&mut self, json: &str) -> io::Result<()> {
        // One write per line: with O_APPEND a single write is not interleaved
        // with other writers.
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&line)?;
                out.flush()
            }
            Sink::File(f) => {
                f.write_all(&line)?;
                f.flush()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("audetect-jsonl-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn appends_lines_and_creates_0640() {
        let dir = scratch("append");
        let path = dir.join("alerts.json");
        std::fs::write(&path, "{\"old\":true}\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let counters = Counters::default();
        let mut w = JsonlWriter::open(Some(&path)).unwrap();
        w.write(r#"{"a":1}"#, &counters);
        w.write(r#"{"a":2}"#, &counters);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"old\":true}\n{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(counters.sent_jsonl.load(Ordering::Relaxed), 2);

        let fresh = dir.join("new.json");
        let _w = JsonlWriter::open(Some(&fresh)).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        // Read, not set: umask is process-wide and other tests create files.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map_or(0o022, |v| u32::from_str_radix(v.trim(), 8).unwrap());
        assert_eq!(mode, 0o640 & !umask);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unopenable_file_is_an_error_naming_it() {
        let e = JsonlWriter::open(Some(Path::new("/nonexistent-dir/x/alerts.json")))
            .err()
            .expect("must fail");
        assert!(
            e.to_string().contains("/nonexistent-dir/x/alerts.json"),
            "{e}"
        );
    }

    #[test]
    fn write_errors_are_counted_not_fatal() {
        let counters = Counters::default();
        // /dev/full accepts open for append and fails every write with ENOSPC.
        let mut w = JsonlWriter::open(Some(Path::new("/dev/full"))).unwrap();
        w.write("{}", &counters);
        w.write("{}", &counters);
        assert_eq!(counters.jsonl_errors.load(Ordering::Relaxed), 2);
        assert_eq!(counters.sent_jsonl.load(Ordering::Relaxed), 0);
    }
}
