//! The running daemon's counters, written to a stats file that `audetect
//! status` reads: what was received, lost, detected, repaired and sent.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where `audetect run` keeps its counters (beside its state file).
pub const DEFAULT_STATS_FILE: &str = "/run/audetect/stats.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub pid: u32,
    pub started: String,
    pub updated: String,
    /// "unicast" (the registered audit daemon) or "multicast".
    pub source: String,
    pub audit_rules: usize,
    pub detection_rules: usize,
    pub received: Received,
    pub lost: Lost,
    pub detection: Detection,
    /// The process table (parents' command lines) and entity ids.
    #[serde(default)]
    pub processes: Processes,
    pub tampering: Tampering,
    pub outputs: Outputs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub datagrams: u64,
    pub records: u64,
    pub malformed_records: u64,
    pub events: u64,
    pub incomplete_events: u64,
    /// Events of system calls no detection uses (another daemon's rules,
    /// seen on multicast), dropped before their records were parsed.
    #[serde(default)]
    pub ignored_events: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// Growth of the kernel's `lost` counter since audetect started.
    pub kernel: u64,
    /// Times the audit socket overflowed (ENOBUFS).
    pub socket_overflows: u64,
    /// Event serial numbers never seen.
    pub missing_serials: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub events: u64,
    pub matches: u64,
    pub alerts: u64,
    /// Matches over a rule's max_signals, not alerted.
    pub suppressed: u64,
    /// Partial sequences dropped at detection.max_pending_events.
    pub dropped_pending: u64,
    /// Matches completed by an earlier step whose records came after the
    /// last step's (a blocking connect written after a setsid).
    #[serde(default)]
    pub late_matches: u64,
    /// Last steps kept for such late pairing and forgotten at the bound.
    #[serde(default)]
    pub late_forgotten: u64,
    /// Events held now in unfinished sequences, all rules together (each
    /// rule holds at most detection.max_pending_events).
    #[serde(default)]
    pub pending_events: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processes {
    /// Processes in the table now, and of those, exited ones kept a while.
    pub tracked: u64,
    pub exited: u64,
    /// Read from /proc at start.
    pub seeded: u64,
    /// Exited processes forgotten after a few seconds of record time.
    pub expired: u64,
    /// Forgotten because the table was full (least recently seen first).
    pub evicted: u64,
    /// Running at start, past detection.max_processes: not tracked.
    #[serde(default)]
    pub not_seeded: u64,
    /// Events whose process had exited before audetect could read it.
    pub gone_before_read: u64,
    /// Entity ids in the fallback form (start time unknown).
    pub entity_fallbacks: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tampering {
    pub rules_restored: u64,
    pub audit_reenabled: u64,
    /// Causes that suppress audetect's records, reported since start.
    #[serde(default)]
    pub blinding_reported: u64,
    /// What suppresses them now (a rule in auditctl syntax, or
    /// `rate_limit=N`): not audetect's to remove, and reported.
    #[serde(default)]
    pub blinding: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    pub sent_syslog: u64,
    pub sent_jsonl: u64,
    pub dropped: u64,
    pub syslog_errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a stats file: {source}")]
    Format {
        path: String,
        source: serde_json::Error,
    },
}

/// Replaces the stats file in one step, so a reader never sees half of it.
pub fn write(path: &Path, stats: &Stats) -> Result<(), StatsError> {
    let err = |source| StatsError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(stats).unwrap_or_default();
    // 0600: what audetect lost and repaired is for root's eyes.
    crate::kernel::write_private(&tmp, (text + "\n").as_bytes()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

pub fn read(path: &Path) -> Result<Stats, StatsError> {
    let text = std::fs::read_to_string(path).map_err(|source| StatsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| StatsError::Format {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let path = std::env::temp_dir().join(format!("audetect-stats-{}.json", std::process::id()));
        let mut s = Stats {
            pid: 7,
            source: "unicast".into(),
            ..Stats::default()
        };
        s.lost.kernel = 3;
        write(&path, &s).unwrap();
        assert_eq!(read(&path).unwrap(), s);
        let _ = std::fs::remove_file(&path);
    }

    /// Only root reads what was lost and repaired, even when an earlier
    /// file (or a stale temporary one) was readable by all.
    #[test]
    fn written_for_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("audetect-stats-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.json");
        for stale in [&path, &path.with_extension("tmp")] {
            std::fs::write(stale, "{}").unwrap();
            std::fs::set_permissions(stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write(&path, &Stats::default()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
