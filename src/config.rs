//! The configuration file (`/etc/audetect/audetect.toml`): its schema, its
//! defaults, and validation that names the line of anything wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::output::{JsonlSettings, SyslogSettings};
use crate::receive::ReceiveSettings;
use crate::snapshot::SnapshotSettings;

// Each section's type belongs to the stage it configures; the config file
// only builds them. These are their names as the file's sections.
pub use crate::output::{
    JsonlSettings as JsonlConfig, SyslogFormat, SyslogSettings as SyslogConfig, SyslogTarget,
};
pub use crate::receive::ReceiveMode;
pub use crate::rulefile::DEFAULT_RULE_DIR;
pub use crate::snapshot::SnapshotSettings as SnapshotConfig;

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/audetect/audetect.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}, line {line}: {key}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        key: &'static str,
        message: String,
    },
    /// A config someone other than root could change.
    #[error("refusing the config: {0}")]
    Untrusted(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    kernel: RawKernel,
    #[serde(default)]
    detection: RawDetection,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    snapshot: RawSnapshot,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    #[serde(default = "default_true")]
    enable: bool,
    #[serde(default = "default_backlog_limit")]
    backlog_limit: u32,
    /// Unset: the kernel's own value is left alone.
    #[serde(default)]
    backlog_wait_time: Option<u32>,
    #[serde(default = "default_mode")]
    mode: Spanned<String>,
    #[serde(default = "default_receive_buffer")]
    receive_buffer: Spanned<usize>,
    #[serde(default = "default_watch_interval")]
    watch_interval: Spanned<String>,
    #[serde(default = "default_priority_boost")]
    priority_boost: Spanned<u32>,
}

impl Default for RawKernel {
    fn default() -> Self {
        RawKernel {
            enable: true,
            backlog_limit: default_backlog_limit(),
            backlog_wait_time: None,
            mode: default_mode(),
            receive_buffer: default_receive_buffer(),
            watch_interval: default_watch_interval(),
            priority_boost: default_priority_boost(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetection {
    #[serde(default = "default_true")]
    builtin_rules: bool,
    #[serde(default)]
    rule_paths: Option<Vec<String>>,
    #[serde(default = "default_max_pending_events")]
    max_pending_events: Spanned<usize>,
    #[serde(default = "default_max_processes")]
    max_processes: Spanned<usize>,
}

impl Default for RawDetection {
    fn default() -> Self {
        RawDetection {
            builtin_rules: true,
            rule_paths: None,
            max_pending_events: default_max_pending_events(),
            max_processes: default_max_processes(),
        }
    }
}

fn default_max_pending_events() -> Spanned<usize> {
    Spanned::new(0..0, 10_000)
}

fn default_max_processes() -> Spanned<usize> {
    Spanned::new(0..0, audetect_engine::process::DEFAULT_MAX_ENTRIES)
}

/// The kernel's own ceiling on pids (PID_MAX_LIMIT on 64-bit): a table
/// larger can never fill.
const MAX_PROCESSES_LIMIT: usize = 4 << 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default)]
    syslog: RawSyslog,
    #[serde(default)]
    jsonl: RawJsonl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyslog {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_target")]
    target: Spanned<String>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default = "default_facility")]
    facility: Spanned<String>,
    #[serde(default = "default_queue_size")]
    queue_size: Spanned<usize>,
    #[serde(default = "default_queue_bytes")]
    queue_bytes: Spanned<usize>,
}

impl Default for RawSyslog {
    fn default() -> Self {
        RawSyslog {
            enabled: true,
            target: default_target(),
            format: None,
            facility: default_facility(),
            queue_size: default_queue_size(),
            queue_bytes: default_queue_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJsonl {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "default_jsonl_path")]
    path: String,
}

impl Default for RawJsonl {
    fn default() -> Self {
        RawJsonl {
            enabled: false,
            path: default_jsonl_path(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_time_budget")]
    time_budget: Spanned<String>,
    #[serde(default)]
    max_alert_bytes: Option<Spanned<usize>>,
    #[serde(default = "default_true")]
    process: bool,
    #[serde(default = "default_true")]
    hash: bool,
    #[serde(default = "default_hash_max_bytes")]
    hash_max_bytes: u64,
    #[serde(default = "default_true")]
    ancestry: bool,
    #[serde(default = "default_max_ancestors")]
    max_ancestors: Spanned<usize>,
    #[serde(default = "default_true")]
    sockets: bool,
    #[serde(default = "default_max_sockets")]
    max_sockets: Spanned<usize>,
    #[serde(default = "default_true")]
    stdio: bool,
    #[serde(default = "default_true")]
    sessions: bool,
    #[serde(default = "default_max_sessions")]
    max_sessions: Spanned<usize>,
}

impl Default for RawSnapshot {
    fn default() -> Self {
        RawSnapshot {
            enabled: true,
            time_budget: default_time_budget(),
            max_alert_bytes: None,
            process: true,
            hash: true,
            hash_max_bytes: default_hash_max_bytes(),
            ancestry: true,
            max_ancestors: default_max_ancestors(),
            sockets: true,
            max_sockets: default_max_sockets(),
            stdio: true,
            sessions: true,
            max_sessions: default_max_sessions(),
        }
    }
}

fn default_time_budget() -> Spanned<String> {
    Spanned::new(0..0, "5ms".into())
}
fn default_hash_max_bytes() -> u64 {
    DEFAULT_HASH_MAX_BYTES
}
fn default_max_ancestors() -> Spanned<usize> {
    Spanned::new(0..0, 16)
}
fn default_max_sockets() -> Spanned<usize> {
    Spanned::new(0..0, 32)
}
fn default_max_sessions() -> Spanned<usize> {
    Spanned::new(0..0, 16)
}

fn default_true() -> bool {
    true
}
fn default_backlog_limit() -> u32 {
    8192
}
fn default_mode() -> Spanned<String> {
    Spanned::new(0..0, "auto".into())
}
fn default_receive_buffer() -> Spanned<usize> {
    Spanned::new(0..0, 32 << 20)
}
fn default_priority_boost() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}

fn default_watch_interval() -> Spanned<String> {
    Spanned::new(0..0, "1s".into())
}
fn default_target() -> Spanned<String> {
    Spanned::new(0..0, "unix:/dev/log".into())
}
fn default_facility() -> Spanned<String> {
    Spanned::new(0..0, "auth".into())
}
fn default_queue_size() -> Spanned<usize> {
    Spanned::new(0..0, 10_000)
}
/// 32 MiB: the count's worth of typical 3 KB alerts, and a bound on large ones.
fn default_queue_bytes() -> Spanned<usize> {
    Spanned::new(0..0, 32 << 20)
}
fn default_jsonl_path() -> String {
    "-".into()
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kernel: KernelConfig,
    pub detection: DetectionConfig,
    pub syslog: SyslogSettings,
    pub jsonl: JsonlSettings,
    pub snapshot: SnapshotSettings,
}

impl Config {
    /// What the receive edge takes from `[kernel]`.
    pub fn receive_settings(&self) -> ReceiveSettings {
        ReceiveSettings {
            mode: self.kernel.mode,
            receive_buffer: self.kernel.receive_buffer,
        }
    }

    /// The syslog output, if enabled.
    pub fn syslog_output(&self) -> Option<&SyslogSettings> {
        self.syslog.enabled.then_some(&self.syslog)
    }

    /// The JSON lines output, if enabled.
    pub fn jsonl_output(&self) -> Option<&JsonlSettings> {
        self.jsonl.enabled.then_some(&self.jsonl)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KernelConfig {
    /// Turn auditing on (enabled=1) when it is off; never touches a locked (2) kernel.
    pub enable: bool,
    pub backlog_limit: u32,
    /// None: leave the kernel's value (at boot 60 s: audited calls wait for
    /// the reader rather than their records being dropped).
    pub backlog_wait_time: Option<u32>,
    pub mode: ReceiveMode,
    pub receive_buffer: usize,
    /// How often the audit status and rules are checked, and put back if
    /// someone removed the rules or disabled audit.
    pub watch_interval: Duration,
    /// How far below the default nice value (0) the daemon runs, so that
    /// under load the reader keeps pace with what the kernel queues.
    pub priority_boost: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectionConfig {
    pub builtin_rules: bool,
    /// Rule files, or directories of `*.toml` rule files.
    pub rule_paths: Vec<PathBuf>,
    /// Events each rule may hold in unfinished sequences (about 1.3 KiB each);
    /// past it the oldest partial sequences are dropped and counted.
    pub max_pending_events: usize,
    /// Processes the process table holds (about 800 bytes each); past it the
    /// least recently seen live ones are forgotten and counted.
    pub max_processes: usize,
}

/// Executables larger than this are not hashed by default.
pub const DEFAULT_HASH_MAX_BYTES: u64 = 8 << 20;

/// The alert size cap for a syslog target that is read by rsyslog with its
/// default maxMessageSize (8 KiB, header included): unix sockets (journald
/// forwards to rsyslog on Debian) and UDP.
pub const SMALL_ALERT_BYTES: usize = 7680;
/// The cap for TCP targets and JSON lines alone.
pub const LARGE_ALERT_BYTES: usize = 65536;
/// The largest UDP payload (IPv4), less room for the syslog header.
const UDP_ALERT_BYTES: usize = 65000;

impl Default for Config {
    fn default() -> Self {
        // The built-in defaults are exactly an empty file.
        match parse_str("", "built-in defaults") {
            Ok(config) => config,
            Err(e) => unreachable!("built-in defaults are invalid: {e}"),
        }
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if let Some(why) = crate::trust::untrusted(path, &meta) {
        return Err(ConfigError::Untrusted(why));
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let mut config = parse_str(&text, &path.display().to_string())?;
    // A relative rule path means one next to the config file, not one in
    // whatever directory the daemon happens to start in.
    if let Some(dir) = path.parent() {
        for p in &mut config.detection.rule_paths {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
    Ok(config)
}

/// Parses configuration text; `origin` names it in errors.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let at = Located { text, origin };
    let kernel = kernel_section(&raw.kernel, &at)?;
    let detection = detection_section(&raw.detection, &at)?;
    let syslog = syslog_section(&raw.output.syslog, &at)?;
    let jsonl = jsonl_section(&raw.output.jsonl);
    let snapshot = snapshot_section(&raw.snapshot, &syslog, &at)?;
    Ok(Config {
        kernel,
        detection,
        syslog,
        jsonl,
        snapshot,
    })
}

/// The text being parsed, to name the line of a bad value.
struct Located<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Located<'_> {
    fn invalid(
        &self,
        span: std::ops::Range<usize>,
        key: &'static str,
        message: String,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line: line_of(self.text, span.start),
            key,
            message,
        }
    }

    /// A duration within `range`, named in the message as `lowest`..`highest`.
    fn duration(
        &self,
        value: &Spanned<String>,
        key: &'static str,
        range: std::ops::RangeInclusive<Duration>,
        bounds: (&str, &str),
    ) -> Result<Duration, ConfigError> {
        parse_duration(value.get_ref())
            .filter(|d| range.contains(d))
            .ok_or_else(|| {
                self.invalid(
                    value.span(),
                    key,
                    format!(
                        "{:?} is not a duration from \"{}\" to \"{}\" (a number and ms or s)",
                        value.get_ref(),
                        bounds.0,
                        bounds.1
                    ),
                )
            })
    }
}

fn kernel_section(raw: &RawKernel, at: &Located) -> Result<KernelConfig, ConfigError> {
    let mode = match raw.mode.get_ref().as_str() {
        "auto" => ReceiveMode::Auto,
        "unicast" => ReceiveMode::Unicast,
        "multicast" => ReceiveMode::Multicast,
        other => {
            return Err(at.invalid(
                raw.mode.span(),
                "kernel.mode",
                format!("{other:?} is not one of \"auto\", \"unicast\", \"multicast\""),
            ))
        }
    };
    let receive_buffer = &raw.receive_buffer;
    if *receive_buffer.get_ref() < 65536 {
        return Err(at.invalid(
            receive_buffer.span(),
            "kernel.receive_buffer",
            "must be at least 65536 bytes".into(),
        ));
    }
    let boost = &raw.priority_boost;
    if *boost.get_ref() > 20 {
        return Err(at.invalid(
            boost.span(),
            "kernel.priority_boost",
            "must be from 0 to 20".into(),
        ));
    }
    let watch_interval = at.duration(
        &raw.watch_interval,
        "kernel.watch_interval",
        Duration::from_millis(100)..=Duration::from_secs(60),
        ("100ms", "60s"),
    )?;
    Ok(KernelConfig {
        enable: raw.enable,
        backlog_limit: raw.backlog_limit,
        backlog_wait_time: raw.backlog_wait_time,
        mode,
        receive_buffer: *receive_buffer.get_ref(),
        watch_interval,
        priority_boost: *boost.get_ref(),
    })
}

fn detection_section(raw: &RawDetection, at: &Located) -> Result<DetectionConfig, ConfigError> {
    let max_pending = &raw.max_pending_events;
    if *max_pending.get_ref() < 100 {
        return Err(at.invalid(
            max_pending.span(),
            "detection.max_pending_events",
            "must be at least 100".into(),
        ));
    }
    let max_processes = &raw.max_processes;
    if !(1024..=MAX_PROCESSES_LIMIT).contains(max_processes.get_ref()) {
        return Err(at.invalid(
            max_processes.span(),
            "detection.max_processes",
            format!("must be between 1024 and {MAX_PROCESSES_LIMIT}"),
        ));
    }
    Ok(DetectionConfig {
        max_pending_events: *max_pending.get_ref(),
        max_processes: *max_processes.get_ref(),
        builtin_rules: raw.builtin_rules,
        rule_paths: raw
            .rule_paths
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_RULE_DIR.to_owned()])
            .into_iter()
            .map(PathBuf::from)
            .collect(),
    })
}

fn syslog_section(raw: &RawSyslog, at: &Located) -> Result<SyslogSettings, ConfigError> {
    let target = parse_target(raw.target.get_ref())
        .map_err(|m| at.invalid(raw.target.span(), "output.syslog.target", m))?;
    let format = match raw
        .format
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        Some(("rfc5424", _)) => SyslogFormat::Rfc5424,
        Some(("rfc3164", _)) => SyslogFormat::Rfc3164,
        Some((other, span)) => {
            return Err(at.invalid(
                span,
                "output.syslog.format",
                format!("{other:?} is not one of \"rfc5424\", \"rfc3164\""),
            ))
        }
        // The local socket's readers (journald, rsyslog's imuxsock with its
        // default parser) understand only syslog(3)'s format; RFC 5424 there
        // would arrive with its header folded into the message.
        None if matches!(target, SyslogTarget::Unix(_)) => SyslogFormat::Rfc3164,
        None => SyslogFormat::Rfc5424,
    };
    let facility = facility_code(raw.facility.get_ref()).ok_or_else(|| {
        at.invalid(
            raw.facility.span(),
            "output.syslog.facility",
            format!(
                "{:?} is not a syslog facility (kern, user, daemon, auth, authpriv, local0..local7, ...)",
                raw.facility.get_ref()
            ),
        )
    })?;
    if *raw.queue_size.get_ref() == 0 {
        return Err(at.invalid(
            raw.queue_size.span(),
            "output.syslog.queue_size",
            "must be at least 1".into(),
        ));
    }
    if *raw.queue_bytes.get_ref() < 65_536 {
        return Err(at.invalid(
            raw.queue_bytes.span(),
            "output.syslog.queue_bytes",
            "must be at least 65536 (one alert of the largest size)".into(),
        ));
    }
    Ok(SyslogSettings {
        enabled: raw.enabled,
        target,
        format,
        facility,
        queue_size: *raw.queue_size.get_ref(),
        queue_bytes: *raw.queue_bytes.get_ref(),
    })
}

fn jsonl_section(raw: &RawJsonl) -> JsonlSettings {
    JsonlSettings {
        enabled: raw.enabled,
        path: (raw.path != "-").then(|| PathBuf::from(&raw.path)),
    }
}

/// `[snapshot]`; its size cap defaults to what the syslog target's usual
/// reader accepts.
fn snapshot_section(
    raw: &RawSnapshot,
    syslog: &SyslogSettings,
    at: &Located,
) -> Result<SnapshotSettings, ConfigError> {
    let time_budget = at.duration(
        &raw.time_budget,
        "snapshot.time_budget",
        Duration::from_millis(1)..=Duration::from_secs(1),
        ("1ms", "1s"),
    )?;
    let udp = syslog.enabled && matches!(syslog.target, SyslogTarget::Udp(_));
    let max_alert_bytes = match &raw.max_alert_bytes {
        Some(v) if *v.get_ref() < 1024 => {
            return Err(at.invalid(
                v.span(),
                "snapshot.max_alert_bytes",
                "must be at least 1024".into(),
            ))
        }
        Some(v) if udp && *v.get_ref() > UDP_ALERT_BYTES => {
            return Err(at.invalid(
                v.span(),
                "snapshot.max_alert_bytes",
                format!("at most {UDP_ALERT_BYTES} with a udp: syslog target (one datagram carries at most 65507 bytes)"),
            ))
        }
        Some(v) => *v.get_ref(),
        // rsyslog truncates messages past its maxMessageSize, 8 KiB unless
        // raised, and it is the usual reader of both the local socket and UDP.
        None if syslog.enabled && !matches!(syslog.target, SyslogTarget::Tcp(_)) => {
            SMALL_ALERT_BYTES
        }
        None => LARGE_ALERT_BYTES,
    };
    let bounded = |v: &Spanned<usize>, key: &'static str, max: usize| {
        if (1..=max).contains(v.get_ref()) {
            Ok(*v.get_ref())
        } else {
            Err(at.invalid(v.span(), key, format!("must be from 1 to {max}")))
        }
    };
    Ok(SnapshotSettings {
        enabled: raw.enabled,
        time_budget,
        max_alert_bytes,
        process: raw.process,
        hash: raw.hash,
        hash_max_bytes: raw.hash_max_bytes,
        ancestry: raw.ancestry,
        max_ancestors: bounded(&raw.max_ancestors, "snapshot.max_ancestors", 1024)?,
        sockets: raw.sockets,
        max_sockets: bounded(&raw.max_sockets, "snapshot.max_sockets", 4096)?,
        stdio: raw.stdio,
        sessions: raw.sessions,
        max_sessions: bounded(&raw.max_sessions, "snapshot.max_sessions", 4096)?,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_target(s: &str) -> Result<SyslogTarget, String> {
    let bad = || format!("{s:?} is not \"unix:/PATH\", \"udp:HOST:PORT\" or \"tcp:HOST:PORT\"");
    if let Some(path) = s.strip_prefix("unix:") {
        if !path.starts_with('/') {
            return Err(bad());
        }
        return Ok(SyslogTarget::Unix(PathBuf::from(path)));
    }
    let (proto, addr) = s.split_once(':').ok_or_else(bad)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    match proto {
        "udp" => Ok(SyslogTarget::Udp(addr.to_owned())),
        "tcp" => Ok(SyslogTarget::Tcp(addr.to_owned())),
        _ => Err(bad()),
    }
}

/// "250ms" or "2s".
fn parse_duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    s.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES.iter().position(|&n| n == name).map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = parse_str("", "t").unwrap();
        assert!(c.kernel.enable);
        assert_eq!(c.kernel.backlog_limit, 8192);
        assert_eq!(c.kernel.backlog_wait_time, None);
        let c = parse_str("[kernel]\nbacklog_wait_time = 0\n", "t").unwrap();
        assert_eq!(c.kernel.backlog_wait_time, Some(0));
        assert_eq!(c.kernel.mode, ReceiveMode::Auto);
        assert_eq!(c.kernel.watch_interval, Duration::from_secs(1));
        let c = parse_str("[kernel]\nwatch_interval = \"250ms\"\n", "t").unwrap();
        assert_eq!(c.kernel.watch_interval, Duration::from_millis(250));
        let e = parse_str("[kernel]\nwatch_interval = \"5m\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(c.detection.builtin_rules);
        assert_eq!(
            c.detection.rule_paths,
            vec![PathBuf::from("/etc/audetect/rules.d")]
        );
        assert!(c.syslog.enabled);
        assert_eq!(c.syslog.target, SyslogTarget::Unix("/dev/log".into()));
        assert_eq!(
            c.syslog.format,
            SyslogFormat::Rfc3164,
            "local socket default"
        );
        assert_eq!(c.syslog.facility, 4);
        let c = parse_str("[output.syslog]\ntarget = \"udp:127.0.0.1:514\"\n", "t").unwrap();
        assert_eq!(c.syslog.format, SyslogFormat::Rfc5424, "network default");
        assert!(!c.jsonl.enabled);
        assert_eq!(c.jsonl.path, None);
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let text = "[output.syslog]\nenabled = true\ntargte = \"udp:127.0.0.1:514\"\n";
        let e = parse_str(text, "a.toml").unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("targte"), "{e}");
    }

    #[test]
    fn bad_value_is_refused_with_its_line() {
        let text = "\n[output.syslog]\ntarget = \"udp:nowhere\"\n";
        let e = parse_str(text, "a.toml").unwrap_err().to_string();
        assert!(e.starts_with("a.toml, line 3: output.syslog.target"), "{e}");
        let e = parse_str("[detection]\nrule_paths = \"/etc\"\n", "b").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_str("[kernel]\nmode = \"auto\"\npriority_boost = 21\n", "c").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(e.to_string().contains("priority_boost"), "{e}");
        let e = parse_str("[kernel]\nreceive_buffer = 10\n", "c").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_str("[output.syslog]\n\nqueue_size = 0\n", "d").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse_str("[detection]\n\nmax_processes = 10\n", "e").unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("e, line 3: detection.max_processes"), "{e}");
    }

    #[test]
    fn the_process_table_bound_defaults_and_can_be_raised() {
        let c = parse_str("", "t").unwrap();
        assert_eq!(c.detection.max_processes, 14_336);
        let c = parse_str("[detection]\nmax_processes = 131072\n", "t").unwrap();
        assert_eq!(c.detection.max_processes, 131_072);
        assert!(parse_str("[detection]\nmax_processes = 5000000\n", "t").is_err());
    }

    #[test]
    fn targets_and_spans_parse() {
        let c = parse_str(
            "[output.syslog]\ntarget = \"tcp:[::1]:6514\"\nformat = \"rfc3164\"\nfacility = \"local3\"\n[detection]\nbuiltin_rules = false\nrule_paths = [\"/r\"]\n[output.jsonl]\nenabled = true\npath = \"/var/log/a.json\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.syslog.target, SyslogTarget::Tcp("[::1]:6514".into()));
        assert_eq!(c.syslog.format, SyslogFormat::Rfc3164);
        assert_eq!(c.syslog.facility, 19);
        assert!(!c.detection.builtin_rules);
        assert_eq!(c.detection.rule_paths, vec![PathBuf::from("/r")]);
        assert_eq!(c.jsonl.path, Some(PathBuf::from("/var/log/a.json")));
    }

    #[test]
    fn snapshot_defaults_follow_the_syslog_target() {
        let c = parse_str("", "t").unwrap().snapshot;
        assert!(c.enabled && c.process && c.hash && c.ancestry && c.sockets && c.stdio);
        assert!(c.sessions);
        assert_eq!(c.time_budget, Duration::from_millis(5));
        assert_eq!(c.hash_max_bytes, 8 << 20);
        assert_eq!(
            (c.max_ancestors, c.max_sockets, c.max_sessions),
            (16, 32, 16)
        );
        assert_eq!(c.max_alert_bytes, SMALL_ALERT_BYTES, "unix:/dev/log");
        let cap = |text: &str| parse_str(text, "t").unwrap().snapshot.max_alert_bytes;
        assert_eq!(
            cap("[output.syslog]\ntarget = \"udp:127.0.0.1:514\"\n"),
            SMALL_ALERT_BYTES
        );
        assert_eq!(
            cap("[output.syslog]\ntarget = \"tcp:127.0.0.1:514\"\n"),
            LARGE_ALERT_BYTES
        );
        assert_eq!(
            cap("[output.syslog]\nenabled = false\n[output.jsonl]\nenabled = true\n"),
            LARGE_ALERT_BYTES
        );
        assert_eq!(cap("[snapshot]\nmax_alert_bytes = 2048\n"), 2048);
        let c = parse_str("[snapshot]\nenabled = false\ntime_budget = \"2s\"\n", "t");
        assert!(c.is_err(), "over 1s");
        let c = parse_str(
            "[snapshot]\nenabled = false\ntime_budget = \"1s\"\nhash = false\nsessions = false\n",
            "t",
        )
        .unwrap()
        .snapshot;
        assert!(!c.enabled && !c.hash && !c.sessions);
        assert_eq!(c.time_budget, Duration::from_secs(1));
    }

    #[test]
    fn snapshot_errors_name_their_line() {
        for (text, line, key) in [
            ("[snapshot]\n\ntime_budget = \"0ms\"\n", 3, "snapshot.time_budget"),
            ("[snapshot]\ntime_budget = \"5m\"\n", 2, "snapshot.time_budget"),
            ("[snapshot]\nmax_alert_bytes = 100\n", 2, "snapshot.max_alert_bytes"),
            (
                "[output.syslog]\ntarget = \"udp:10.0.0.1:514\"\n[snapshot]\nmax_alert_bytes = 70000\n",
                4,
                "snapshot.max_alert_bytes",
            ),
            ("[snapshot]\nmax_ancestors = 0\n", 2, "snapshot.max_ancestors"),
            ("[snapshot]\nmax_sockets = 100000\n", 2, "snapshot.max_sockets"),
            ("[snapshot]\nmax_sessions = 0\n", 2, "snapshot.max_sessions"),
            ("[snapshot]\nenabled = true\nhashes = true\n", 3, "hashes"),
            ("[snapshot]\nhash_max_bytes = -1\n", 2, "hash_max_bytes"),
        ] {
            let e = parse_str(text, "a.toml").unwrap_err().to_string();
            assert!(e.contains(&format!("line {line}")), "{text:?}: {e}");
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }

    #[test]
    fn shipped_config_file_is_the_defaults() {
        let shipped = include_str!("../packaging/audetect.toml");
        assert_eq!(
            parse_str(shipped, "packaging/audetect.toml").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn relative_rule_paths_are_next_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("audetect-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("audetect.toml");
        std::fs::write(&file, "[detection]\nrule_paths = [\"rules.d\", \"/abs\"]\n").unwrap();
        let c = load(&file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            c.detection.rule_paths,
            vec![dir.join("rules.d"), PathBuf::from("/abs")]
        );
    }
}
