//! audetect's command line: the daemon (`run`), log replay, the audit rules it
//! installs, and config checking. Errors become exit codes here and only here.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use audetect::alert;
use audetect::caps;
use audetect::config::{self, Config, SyslogTarget};
use audetect::fields;
use audetect::kernel::{self, AuditSocket, Session, SessionSettings};
use audetect::output::{self, Outputs};
use audetect::pipeline::Pipeline;
use audetect::proc::{LiveProc, NoProc};
use audetect::receive::{self, Batch, Receiver, Source};
use audetect::rulefile::{self, Rule};
use audetect::snapshot::{self, LiveSnapshotter, NotTaken, OnWorker, Snapshotter};
use audetect::status;
use audetect::timefmt;
use serde_json::json;

const ABOUT: &str = "Real-time detections from the Linux kernel audit stream.

audetect installs a few audit rules (connect and setsid by root), reads the
records the kernel emits, and runs detection rules on them as they arrive:
Elastic detection-rules TOML files with EQL queries, from
/etc/audetect/rules.d, and the built-in rule, Elastic's \"Suspicious Network
Connection Attempt by Root\" (a root process that attempts an outbound TCP
connection and then calls setsid() within a minute). Alerts are JSON
documents sent to syslog (default /dev/log) or written as JSON lines.

It must run as root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ). On stop (SIGTERM,
SIGINT) it removes the rules it added and restores the audit status it changed.";

#[derive(Parser)]
#[command(name = "audetect", version, about = ABOUT, long_about = ABOUT)]
struct Cli {
    /// Log level of audetect's own messages on stderr: error, warn, info, debug.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Info, value_name = "LEVEL")]
    log_level: LogLevel,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    ///
    /// Enables audit if it is off, raises backlog_limit and sets
    /// backlog_wait_time as configured, installs the rules, registers as the
    /// audit daemon when none is registered (else listens on the multicast
    /// group beside it), and sends alerts to the configured outputs. With no
    /// config file and no /dev/log, alerts go to stdout.
    Run {
        /// Config file [default: /etc/audetect/audetect.toml if present, else built-in defaults]
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the detection over auditd log files (or stdin) and print alerts as
    /// JSON lines on stdout; exits at the end of the input.
    ///
    /// Process facts that only a live host has (start times, socket types)
    /// are unknown in replay: every inet connect() that got as far as sending
    /// a SYN counts as an attempt, and processes are told apart by pid and
    /// audit session.
    Replay {
        /// Config file (only [detection], the rules, is used)
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// auditd log files; none, or "-", reads stdin
        files: Vec<PathBuf>,
    },
    /// Run as an auditd plugin: records on stdin in auditd's string format,
    /// alerts to the configured outputs, until auditd closes the stream.
    ///
    /// For hosts where auditd must own the audit socket and the rules:
    /// install packaging/audetect-plugin.conf in /etc/audit/plugins.d/ and
    /// the rules of `audetect rules` in /etc/audit/rules.d/ (augenrules).
    Plugin {
        /// Config file [default: /etc/audetect/audetect.toml if present, else built-in defaults]
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Prove, on this host, that the kernel-to-alert path works: a child
    /// process connects to a loopback listener and calls setsid(), and the
    /// built-in rule must fire. Uses the running audetect if there is one,
    /// else a pipeline of its own; leaves the audit state as it found it.
    /// Prints what it did, then PASS (exit 0) or FAIL with the reason (1).
    Selftest,
    /// The child process of `selftest` (not for direct use).
    #[command(hide = true)]
    SelftestActor { port: u16 },
    /// Print the audit rules audetect installs, in auditctl syntax.
    Rules,
    /// Show the running daemon's counters: records received, lost (kernel,
    /// socket, serial gaps), detections, alerts, tampering repaired, outputs.
    ///
    /// Reads /run/audetect/stats.json, which `audetect run` rewrites every
    /// 5 seconds. Exits 0 if the daemon is running, 1 if not.
    Status,
    /// Check a config file and the rules it loads, and exit: 0 if valid, 1
    /// with the reason if not. Ends with `rules: N loaded, M skipped`; a rule
    /// audetect cannot run (a field, category, function or kind of event it
    /// does not supply, another rule type or OS) is skipped, not an error.
    CheckConfig {
        /// Config file [default: /etc/audetect/audetect.toml if present, else built-in defaults]
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also list each skipped rule with the reason
        #[arg(long, short)]
        verbose: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    audetect::logging::init(cli.log_level.into());
    let result = match cli.command {
        Command::Run { config } => run(config.as_deref()),
        Command::Replay { config, files } => replay(config.as_deref(), &files),
        Command::Rules => {
            print_rules();
            Ok(())
        }
        Command::CheckConfig { config, verbose } => check_config(config.as_deref(), verbose),
        Command::Status => show_status(),
        Command::Selftest => selftest(),
        Command::SelftestActor { port } => selftest_actor(port),
        Command::Plugin { config } => plugin(config.as_deref()),
    };
    if let Err(e) = result {
        log::error!("{e:#}");
        std::process::exit(1);
    }
}

/// The config in force, and whether it came from a file.
fn load_config(path: Option<&Path>) -> Result<(Config, Option<PathBuf>)> {
    let path = match path {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(config::DEFAULT_PATH)).filter(|p| p.exists()),
    };
    match path {
        Some(p) => Ok((config::load(&p)?, Some(p))),
        None => Ok((Config::default(), None)),
    }
}

fn check_config(path: Option<&Path>, verbose: bool) -> Result<()> {
    let (config, origin) = load_config(path)?;
    check_outputs(&config)?;
    let set = load_rule_set(&config)?;
    for rule in &set.rules {
        println!("rule {:?} ({}): OK", rule.meta.name, rule.meta.origin);
    }
    if verbose {
        for s in &set.skipped {
            println!("rule {:?} ({}): skipped: {}", s.name, s.origin, s.reason);
        }
    }
    match origin {
        Some(p) => println!("{}: OK", p.display()),
        None => println!("no config file; built-in defaults: OK"),
    }
    println!("{}", set.summary());
    Ok(())
}

/// The detection rules in force; any error in any rule refuses them all.
/// Skipped rules are logged: one line with the count and the top reasons,
/// and each at debug level.
fn load_rules(config: &Config) -> Result<Vec<Rule>> {
    let set = load_rule_set(config)?;
    if !set.skipped.is_empty() {
        for s in &set.skipped {
            log::debug!("rule {:?} ({}) skipped: {}", s.name, s.origin, s.reason);
        }
        let top: Vec<String> = set
            .top_reasons(3)
            .into_iter()
            .map(|(n, r)| format!("{n}× {r}"))
            .collect();
        log::info!(
            "{}; audetect cannot run the skipped ones (`audetect check-config --verbose` lists each and why); most often: {}",
            set.summary(),
            top.join("; ")
        );
    }
    Ok(set.rules)
}

fn load_rule_set(config: &Config) -> Result<rulefile::RuleSet> {
    let d = &config.detection;
    let set = rulefile::load(d.builtin_rules, &d.rule_paths, &fields::schema())?;
    if set.rules.is_empty() && set.skipped.is_empty() {
        bail!(
            "no detection rules: builtin_rules is false and no rule file was found in {}",
            d.rule_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if set.rules.is_empty() {
        bail!(
            "no detection rule audetect can run: {} skipped (`audetect check-config --verbose` says why)",
            set.skipped.len()
        );
    }
    Ok(set)
}

fn log_suppressed(pipeline: &mut Pipeline<impl audetect::proc::ProcSource>) {
    for (rule, n) in pipeline.take_suppressed() {
        log::warn!(
            "rule {:?}: {n} more match(es) not alerted: over its max_signals ({}) in a 5-minute window",
            rule.name,
            rule.max_signals
        );
    }
}

/// The reverse-shell shape: connect out, then leave the session. Run as a
/// child so that it is not a process group leader (setsid would fail).
fn selftest_actor(port: u16) -> Result<()> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .context("connecting to the selftest listener")?;
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } < 0 {
        bail!("setsid: {}", std::io::Error::last_os_error());
    }
    drop(stream);
    Ok(())
}

fn spawn_selftest_actor(port: u16) -> Result<u32> {
    let exe = std::env::current_exe().context("locating the audetect binary")?;
    let mut child = std::process::Command::new(exe)
        .args(["selftest-actor", &port.to_string()])
        .spawn()
        .context("starting the selftest child")?;
    let pid = child.id();
    let status = child.wait().context("waiting for the selftest child")?;
    if !status.success() {
        bail!("the selftest child failed ({status})");
    }
    Ok(pid)
}

fn selftest() -> Result<()> {
    println!("audetect selftest: a root child process connects to 127.0.0.1 and calls setsid(); the built-in rule must alert");
    let result = selftest_steps();
    match &result {
        Ok(how) => println!("PASS: {how}"),
        Err(e) => println!("FAIL: {e:#}"),
    }
    result.map(|_| ())
}

fn selftest_steps() -> Result<String> {
    caps::require(&[caps::AUDIT_CONTROL])?;
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("opening a loopback listener")?;
    let port = listener.local_addr().context("listener address")?.port();
    println!("listening on 127.0.0.1:{port}");
    if let Ok(stats) = status::read(Path::new(status::DEFAULT_STATS_FILE)) {
        let alive = kernel::process_is_audetect(stats.pid);
        if alive {
            return selftest_through_daemon(port, stats);
        }
    }
    selftest_own_pipeline(port)
}

/// With the service running: its counters must show the match.
fn selftest_through_daemon(port: u16, before: status::Stats) -> Result<String> {
    println!(
        "using the running audetect (pid {}, {})",
        before.pid, before.source
    );
    let pid = spawn_selftest_actor(port)?;
    println!("child {pid} connected and called setsid()");
    // The service rewrites its counters every 5 seconds.
    let deadline = Instant::now() + Duration::from_secs(12);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(now) = status::read(Path::new(status::DEFAULT_STATS_FILE)) {
            if now.pid == before.pid && now.detection.matches > before.detection.matches {
                return Ok(format!(
                    "the running audetect matched it (matches {} -> {})",
                    before.detection.matches, now.detection.matches
                ));
            }
        }
    }
    bail!("the running audetect did not count a match within 12 s (see its log: journalctl -u audetect)")
}

/// Without a service: a pipeline of its own, started and stopped here.
fn selftest_own_pipeline(port: u16) -> Result<String> {
    println!("no audetect running: starting a pipeline of its own");
    let mut ctl = AuditSocket::open().context("opening the audit socket")?;
    let before = ctl.status().context("reading the audit status")?;
    let rules_before = ctl.list_rules().context("listing audit rules")?.len();
    let config = Config::default();
    let (tx, rx) = mpsc::sync_channel(receive::QUEUED_BATCHES);
    let (recycle_tx, recycle_rx) = mpsc::sync_channel(receive::QUEUED_BATCHES);
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(
        &config.kernel,
        before.pid,
        tx,
        recycle_rx,
        Arc::clone(&stop),
    )
    .context("starting to receive audit records")?;
    let unicast = receiver.source == Source::Unicast;
    let session = match Session::start(&SessionSettings {
        enable: true,
        backlog_limit: unicast.then_some(config.kernel.backlog_limit),
        backlog_wait_time: config.kernel.backlog_wait_time.filter(|_| unicast),
        state_file: None,
    }) {
        Ok(s) => s,
        Err(e) => {
            stop_receiving(receiver, &stop, unicast);
            return Err(e).context("installing audit rules");
        }
    };
    println!(
        "{} audit rules in, receiving as {}",
        session.installed().len(),
        if unicast {
            "the audit daemon"
        } else {
            "a multicast listener"
        }
    );
    // Interrupted, it still puts the audit state back before exiting.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&interrupted));
    }
    let rules = rulefile::load(true, &[], &fields::schema())?.rules;
    let mut pipeline = live_pipeline(&config, rules, host_name());
    let outcome = spawn_selftest_actor(port).and_then(|pid| {
        println!("child {pid} connected and called setsid()");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = None;
        while found.is_none() && Instant::now() < deadline && !interrupted.load(Ordering::Relaxed) {
            if let Ok(batch) = rx.recv_timeout(Duration::from_millis(100)) {
                feed_batch(&mut pipeline, batch, &recycle_tx, &mut |a| {
                    let doc: serde_json::Value = serde_json::from_str(&a.json).unwrap_or_default();
                    if doc["process"]["pid"] == pid {
                        found = Some(doc["rule"]["name"].as_str().unwrap_or("?").to_owned());
                    }
                });
            }
        }
        found.ok_or_else(|| anyhow::anyhow!("no alert for child {pid} within 10 s"))
    });
    let stopped = session.stop();
    stop_receiving(receiver, &stop, unicast);
    stopped.context("restoring the audit state")?;
    let after = ctl.status().context("reading the audit status")?;
    let rules_after = ctl.list_rules().context("listing audit rules")?.len();
    if (
        after.enabled,
        after.backlog_limit,
        after.backlog_wait_time,
        rules_after,
    ) != (
        before.enabled,
        before.backlog_limit,
        before.backlog_wait_time,
        rules_before,
    ) {
        bail!("the audit state was not restored (enabled {} -> {}, rules {rules_before} -> {rules_after})", before.enabled, after.enabled);
    }
    println!(
        "audit state restored (enabled {}, {} rules)",
        after.enabled, rules_after
    );
    let rule = outcome?;
    Ok(format!("alert {rule:?} raised"))
}

fn show_status() -> Result<()> {
    let path = Path::new(status::DEFAULT_STATS_FILE);
    let stats = match status::read(path) {
        Ok(s) => s,
        Err(status::StatsError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            bail!(
                "audetect is not running ({} does not exist)",
                path.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let alive = kernel::process_is_audetect(stats.pid);
    println!(
        "{}",
        serde_json::to_string_pretty(&stats).context("formatting the stats")?
    );
    if !alive {
        bail!(
            "audetect (pid {}) is not running: {} is left from a run that did not stop cleanly",
            stats.pid,
            path.display()
        );
    }
    Ok(())
}

fn check_outputs(config: &Config) -> Result<()> {
    if !config.syslog.enabled && !config.jsonl.enabled {
        bail!(
            "no output is enabled: enable [output.syslog] or [output.jsonl], or alerts go nowhere"
        );
    }
    Ok(())
}

fn print_rules() {
    println!(
        "# The audit rules audetect installs (auditctl syntax); keys start with \"audetect\"."
    );
    for rule in kernel::audetect_rules() {
        println!("{}", rule.to_auditctl());
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn replay(path: Option<&Path>, files: &[PathBuf]) -> Result<()> {
    let (config, _) = load_config(path)?;
    let rules = load_rules(&config)?;
    let mut pipeline = Pipeline::new(
        NoProc,
        rules,
        config.detection.max_pending_events,
        host_name(),
    );
    pipeline.set_snapshots(
        Box::new(NotTaken("replay: the processes of a log are not live")),
        config.snapshot.max_alert_bytes,
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let mut emit = |alert: output::Alert| {
        if write_error.is_none() {
            if let Err(e) = writeln!(out, "{}", alert.json) {
                write_error = Some(e);
            }
        }
    };
    let now = SystemTime::now;
    let stdin_only = files.is_empty() || files.iter().all(|f| f.as_os_str() == "-");
    let inputs: Vec<Option<&PathBuf>> = if stdin_only {
        vec![None]
    } else {
        files
            .iter()
            .map(|f| (f.as_os_str() != "-").then_some(f))
            .collect()
    };
    let started = Instant::now();
    let mut line = Vec::with_capacity(1024);
    for input in inputs {
        let mut reader: Box<dyn BufRead> = match input {
            Some(f) => Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?,
            )),
            None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
        };
        feed_lines(&mut *reader, &mut line, &mut pipeline, &mut emit)?;
    }
    pipeline.flush(&now, &mut emit);
    log_suppressed(&mut pipeline);
    if let Some(e) = write_error {
        return Err(e).context("writing alerts to stdout");
    }
    out.flush().context("writing alerts to stdout")?;
    let s = pipeline.stats();
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "replayed {} records ({} malformed, skipped) in {:.3} s ({:.0} records/s): {} events, {} alerts; peak memory {} KiB, {} partial sequences dropped at the cap",
        s.records,
        s.malformed_records,
        secs,
        s.records as f64 / secs.max(1e-9),
        s.reassembly.events,
        s.alerts,
        peak_rss_kib().map_or("?".into(), |k| k.to_string()),
        s.detect.dropped_pending
    );
    Ok(())
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Feeds auditd-format lines (a log, or auditd's plugin stream) to the
/// pipeline until the end of the input.
/// Feeds a batch from the receive thread to the pipeline and hands it back
/// for reuse.
fn feed_batch(
    pipeline: &mut Pipeline<LiveProc>,
    mut batch: Batch,
    recycle: &mpsc::SyncSender<Batch>,
    emit: &mut dyn FnMut(output::Alert),
) {
    let now = SystemTime::now;
    for (rtype, body) in batch.iter() {
        pipeline.push_netlink(rtype, body, &now, emit);
    }
    batch.clear();
    // A full return queue only means the receive thread has spares enough.
    let _ = recycle.try_send(batch);
}

fn feed_lines(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    pipeline: &mut Pipeline<impl audetect::proc::ProcSource>,
    emit: &mut dyn FnMut(output::Alert),
) -> Result<()> {
    let now = SystemTime::now;
    let mut push = |line: &[u8], pipeline: &mut Pipeline<_>| {
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            pipeline.push_log_line(line, &now, emit);
        }
    };
    // Lines are handed over where they lie in the reader's buffer; only one
    // that straddles two reads is put together in `line`.
    line.clear();
    loop {
        let buf = reader.fill_buf().context("reading the input")?;
        if buf.is_empty() {
            if !line.is_empty() {
                push(line, pipeline);
            }
            return Ok(());
        }
        match memchr::memchr(b'\n', buf) {
            Some(end) if line.is_empty() => {
                push(&buf[..end], pipeline);
                reader.consume(end + 1);
            }
            Some(end) => {
                line.extend_from_slice(&buf[..end]);
                reader.consume(end + 1);
                push(line, pipeline);
                line.clear();
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                reader.consume(n);
            }
        }
    }
}

/// auditd's plugin: records arrive on stdin in auditd's string format, from
/// an auditd that owns the audit socket and loads the rules (augenrules).
/// Processes are live, so procfs is used as in `run`; alerts go to the
/// configured outputs. Ends when auditd closes the stream.
fn plugin(path: Option<&Path>) -> Result<()> {
    let (mut config, origin) = load_config(path)?;
    effective_outputs(&mut config, origin.is_some());
    check_outputs(&config)?;
    let rules = load_rules(&config)?;
    let host = host_name();
    // auditd owns audit here: keep only what procfs lookups need, in every
    // thread (none has started yet).
    drop_capabilities(&caps::KEEP_PLUGIN);
    let outputs = start_outputs(&config, &host).context("starting outputs")?;
    let mut pipeline = live_pipeline(&config, rules, host);
    log::info!(
        "plugin mode: reading auditd's event stream on stdin, {} detection rule(s); the audit rules are auditd's to load (see audetect rules)",
        pipeline.rules().count()
    );
    let mut emit = |alert: output::Alert| outputs.send(alert);
    let stdin = std::io::stdin();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let mut line = Vec::with_capacity(1024);
    let fed = feed_lines(&mut reader, &mut line, &mut pipeline, &mut emit);
    pipeline.flush(&SystemTime::now, &mut emit);
    log_suppressed(&mut pipeline);
    let o = outputs.shutdown(Duration::from_secs(2));
    let s = pipeline.stats();
    log::info!(
        "end of auditd's stream: {} records ({} malformed), {} events, {} alerts ({} to syslog, {} as JSON lines, {} dropped)",
        s.records,
        s.malformed_records,
        s.reassembly.events,
        s.alerts,
        o.sent_syslog,
        o.sent_jsonl,
        o.dropped_queue_full
    );
    fed
}

/// Decides the outputs: with no config file and no syslog socket (a
/// container, a fresh VM), alerts go to stdout so a person sees them.
fn effective_outputs(config: &mut Config, from_file: bool) {
    if from_file || !config.syslog.enabled {
        return;
    }
    if let SyslogTarget::Unix(path) = &config.syslog.target {
        if !path.exists() {
            eprintln!(
                "audetect: no config file and no syslog socket at {}: printing alerts as JSON lines on stdout instead",
                path.display()
            );
            config.syslog.enabled = false;
            config.jsonl.enabled = true;
            config.jsonl.path = None;
        }
    }
}

fn run(path: Option<&Path>) -> Result<()> {
    let (mut config, origin) = load_config(path)?;
    effective_outputs(&mut config, origin.is_some());
    check_outputs(&config)?;
    match &origin {
        Some(p) => log::info!("config {}", p.display()),
        None => log::info!(
            "no config file at {}; using built-in defaults",
            config::DEFAULT_PATH
        ),
    }

    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&signalled))
            .context("installing signal handlers")?;
    }
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
        .context("installing signal handlers")?;

    let rules = load_rules(&config)?;
    let host = host_name();

    caps::require(&[caps::AUDIT_CONTROL])?;
    let before = AuditSocket::open()
        .and_then(|mut s| s.status())
        .context("reading the kernel audit status (audetect needs root: CAP_AUDIT_CONTROL)")?;
    if before.pid != 0 || config.kernel.mode == config::ReceiveMode::Multicast {
        caps::require(&[caps::AUDIT_READ])?;
    }

    // The event socket comes first: once our rules are in, every record
    // has a reader, and none is left for the kernel to print to its log.
    // Its thread starts only after the capabilities are dropped: they are
    // per thread, and a thread started before would keep them all.
    let socket =
        Receiver::open(&config.kernel, before.pid).context("starting to receive audit records")?;
    let unicast = socket.source == Source::Unicast;
    if socket.buffer_bytes < config.kernel.receive_buffer {
        log::warn!(
            "audit socket receive buffer is {} bytes, less than the {} configured (SO_RCVBUFFORCE needs CAP_NET_ADMIN)",
            socket.buffer_bytes,
            config.kernel.receive_buffer
        );
    }
    let settings = SessionSettings {
        enable: config.kernel.enable,
        // Beside another audit daemon the backlog is its to size: records
        // reach a multicast listener however the backlog is set.
        backlog_limit: unicast.then_some(config.kernel.backlog_limit),
        backlog_wait_time: config.kernel.backlog_wait_time.filter(|_| unicast),
        state_file: Some(PathBuf::from(kernel::DEFAULT_STATE_FILE)),
    };
    let mut session = match Session::start(&settings) {
        Ok(s) => s,
        Err(e) => {
            socket.abandon();
            return Err(e).context("setting up kernel audit");
        }
    };
    match socket.source {
        Source::Unicast => log::info!(
            "registered as the audit daemon; receive buffer {} bytes",
            socket.buffer_bytes
        ),
        Source::Multicast if before.pid == 0 => log::warn!(
            "listening on the audit multicast group with no audit daemon registered: \
             the kernel also prints every record to its log"
        ),
        Source::Multicast => log::info!(
            "audit daemon pid {} is registered: listening on the multicast group beside it",
            before.pid
        ),
    }
    if session.initial_status().enabled == 0 && !config.kernel.enable {
        log::warn!("audit is disabled and [kernel] enable = false: no records will arrive until something enables it");
    }
    // Set up: from here on only what the daemon keeps using, in every thread
    // (none has been started yet, so each inherits the priority too).
    raise_priority(config.kernel.priority_boost);
    drop_capabilities(&caps::KEEP);
    let outputs_started = start_outputs(&config, &host).context("starting outputs");
    let (tx, rx) = mpsc::sync_channel(receive::QUEUED_BATCHES);
    let (recycle_tx, recycle_rx) = mpsc::sync_channel(receive::QUEUED_BATCHES);
    let receiver_stop = Arc::new(AtomicBool::new(false));
    let (mut outputs, receiver) = match outputs_started {
        Ok(outputs) => match socket.spawn(tx, recycle_rx, Arc::clone(&receiver_stop)) {
            Ok(receiver) => (outputs, receiver),
            Err(e) => {
                drop(session);
                return Err(e).context("starting the receive thread");
            }
        },
        Err(e) => {
            drop(session);
            socket.abandon();
            return Err(e);
        }
    };
    let host_for_alerts = host.clone();
    let mut pipeline = live_pipeline(&config, rules, host);
    for rule in pipeline.rules() {
        log::info!("detection rule {:?} ({})", rule.name, rule.origin);
    }
    log::info!(
        "ready: {} audit rules installed, {} detection rule(s)",
        session.installed().len(),
        pipeline.rules().count()
    );
    notify_ready();

    let now = SystemTime::now;
    let mut supervisor = Supervisor::new(
        &config,
        &host_for_alerts,
        receiver.source,
        before.lost,
        session.installed().len(),
        pipeline.rules().count(),
    );
    while !signalled.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(batch) => feed_batch(&mut pipeline, batch, &recycle_tx, &mut |a| outputs.send(a)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if hangup.swap(false, Ordering::Relaxed) {
            if let Some(reloaded) =
                reload(path, &config, &mut pipeline, &mut outputs, &host_for_alerts)
            {
                config = reloaded;
            }
        }
        supervisor.tick(&mut session, &receiver, &outputs, &mut pipeline);
    }
    let mut emit = |alert: output::Alert| outputs.send(alert);

    log::info!("stopping");
    let counters = Arc::clone(&receiver.counters);
    // Rules go first, then the status, while we are still the registered
    // daemon and still reading, so no record goes to the kernel log.
    let result = session.stop().context("restoring kernel audit state");
    let unicast = receiver.counters.unicast.load(Ordering::Relaxed);
    stop_receiving(receiver, &receiver_stop, unicast);
    while let Ok(batch) = rx.try_recv() {
        feed_batch(&mut pipeline, batch, &recycle_tx, &mut emit);
    }
    pipeline.flush(&now, &mut emit);
    log_suppressed(&mut pipeline);
    let outputs_stats = outputs.shutdown(Duration::from_secs(2));
    supervisor.remove_stats();
    let s = pipeline.stats();
    let o = outputs_stats;
    log::info!(
        "stopped: {} datagrams ({} socket overflows, {} not from the kernel), {} records ({} malformed), {} events, {} alerts ({} to syslog, {} as JSON lines, {} dropped)",
        counters.datagrams.load(Ordering::Relaxed),
        counters.overruns.load(Ordering::Relaxed),
        counters.foreign.load(Ordering::Relaxed),
        s.records,
        s.malformed_records,
        s.reassembly.events,
        s.alerts,
        o.sent_syslog,
        o.sent_jsonl,
        o.dropped_queue_full
    );
    result
}

/// The outputs the config enables, on a thread of their own.
fn start_outputs(config: &Config, host: &str) -> Result<Outputs, output::OutputError> {
    Outputs::start(
        config.syslog.enabled.then_some(&config.syslog),
        config.jsonl.enabled.then_some(&config.jsonl),
        host,
    )
}

/// The pipeline of `run` and `plugin`: live processes, with snapshots.
fn live_pipeline(config: &Config, rules: Vec<Rule>, host: String) -> Pipeline<LiveProc> {
    let mut pipeline = Pipeline::new(
        LiveProc::new(),
        rules,
        config.detection.max_pending_events,
        host,
    );
    pipeline.set_snapshots(
        snapshotter(&config.snapshot),
        config.snapshot.max_alert_bytes,
    );
    pipeline
}

/// What takes each alert's triage snapshot: /proc of this host, or, with
/// `[snapshot] enabled = false`, nothing (the alert says so).
fn snapshotter(config: &config::SnapshotConfig) -> Box<dyn Snapshotter> {
    if config.enabled {
        // The wait covers the budget, which the snapshot keeps to between
        // reads, and some slack; a read blocked past it is given up on.
        Box::new(OnWorker::new(
            Box::new(LiveSnapshotter::new(
                snapshot::Paths::host(),
                config.clone(),
            )),
            config.time_budget * 2 + Duration::from_millis(20),
        ))
    } else {
        Box::new(NotTaken("disabled ([snapshot] enabled = false)"))
    }
}

/// Runs at nice -boost, as auditd's priority_boost does: under a load that
/// competes for the CPU, the reader keeps pace with what the kernel queues
/// instead of letting records wait (or be dropped) behind it. Under the
/// packaged unit, systemd has done it (Nice=) and the seccomp filter would
/// refuse setpriority.
fn raise_priority(boost: u32) {
    let target = -i64::from(boost);
    let now = procfs::process::Process::myself()
        .and_then(|p| p.stat())
        .map(|s| s.nice);
    match now {
        Ok(nice) if nice <= target => {}
        _ => {
            // SAFETY: sets this thread's nice value; the threads started
            // later inherit it.
            let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target as i32) };
            if rc == 0 {
                log::info!("running at nice {target} ([kernel] priority_boost = {boost})");
            } else {
                log::warn!(
                    "cannot raise the priority to nice {target} ({}); under load, records may wait longer",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// Keeps only `keep`, in every thread: call before starting any thread.
fn drop_capabilities(keep: &[caps::Cap]) {
    match caps::drop_all_but(keep) {
        Ok(mask) => log::info!("capabilities now {}", caps::names(mask)),
        Err(e) => log::warn!("cannot drop capabilities: {e}"),
    }
}

/// SIGHUP: reads the config and the rules again. Rules whose query did not
/// change keep their pending sequences; new outputs replace the old ones
/// once the old have sent what they hold. A bad config or rule is refused
/// and the running one kept. Kernel settings take effect at restart.
fn reload(
    path: Option<&Path>,
    running: &Config,
    pipeline: &mut Pipeline<LiveProc>,
    outputs: &mut Outputs,
    host: &str,
) -> Option<Config> {
    let loaded = load_config(path).and_then(|(mut config, origin)| {
        effective_outputs(&mut config, origin.is_some());
        check_outputs(&config)?;
        let rules = load_rules(&config)?;
        Ok((config, rules))
    });
    let (config, rules) = match loaded {
        Ok(c) => c,
        Err(e) => {
            log::error!("reload refused, keeping the running configuration: {e:#}");
            return None;
        }
    };
    if config.kernel != running.kernel {
        log::warn!("[kernel] settings changed: they take effect when audetect restarts");
    }
    if config.syslog != running.syslog || config.jsonl != running.jsonl {
        match start_outputs(&config, host) {
            Ok(new) => {
                let old = std::mem::replace(outputs, new);
                // The old outputs finish on their own, off the receive path.
                std::thread::spawn(move || old.shutdown(Duration::from_secs(5)));
            }
            Err(e) => log::error!("reload: keeping the running outputs: {e}"),
        }
    }
    if config.snapshot != running.snapshot {
        pipeline.set_snapshots(
            snapshotter(&config.snapshot),
            config.snapshot.max_alert_bytes,
        );
    }
    let total = rules.len();
    let kept = pipeline.replace_rules(rules);
    log::info!(
        "reloaded: {total} detection rule(s), {kept} unchanged kept their pending sequences"
    );
    Some(config)
}

/// Unregisters (when we were the audit daemon) and ends the receive thread.
fn stop_receiving(receiver: Receiver, stop: &AtomicBool, unicast: bool) {
    if unicast {
        // The kernel accepts this from any socket of the registered process.
        if let Err(e) = AuditSocket::open().and_then(|mut s| s.unregister_daemon()) {
            log::warn!("cannot unregister as the audit daemon: {e}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    receiver.join();
}

/// The daemon's periodic duties beside the pipeline: keep the kernel state
/// audetect needs (repairing tampering), watch for loss, write the stats file.
struct Supervisor {
    watch_interval: Duration,
    last_watch: Instant,
    last_log: Instant,
    last_stats: Instant,
    host: String,
    stats: status::Stats,
    stats_path: PathBuf,
    kernel_lost_at_start: u32,
    kernel_lost: u32,
    logged: status::Stats,
    /// audetect handed the socket to another audit daemon: once none is
    /// registered any more, it registers again.
    handed_over: bool,
}

impl Supervisor {
    fn new(
        config: &Config,
        host: &str,
        source: Source,
        initial_lost: u32,
        audit_rules: usize,
        detection_rules: usize,
    ) -> Self {
        let now = Instant::now();
        let (sec, micros) = timefmt::split(SystemTime::now());
        Supervisor {
            watch_interval: config.kernel.watch_interval,
            last_watch: now,
            last_log: now,
            // The first stats file is written at the first tick.
            last_stats: now.checked_sub(Duration::from_secs(60)).unwrap_or(now),
            host: host.to_owned(),
            stats: status::Stats {
                pid: std::process::id(),
                started: timefmt::rfc3339_micros(sec, micros),
                source: match source {
                    Source::Unicast => "unicast".into(),
                    Source::Multicast => "multicast".into(),
                },
                audit_rules,
                detection_rules,
                ..Default::default()
            },
            stats_path: PathBuf::from(status::DEFAULT_STATS_FILE),
            kernel_lost_at_start: initial_lost,
            kernel_lost: initial_lost,
            logged: status::Stats::default(),
            handed_over: false,
        }
    }

    fn tick(
        &mut self,
        session: &mut Session,
        receiver: &Receiver,
        outputs: &Outputs,
        pipeline: &mut Pipeline<impl audetect::proc::ProcSource>,
    ) {
        if self.last_watch.elapsed() >= self.watch_interval {
            self.last_watch = Instant::now();
            self.watch_handover(receiver);
            let daemon_pid = self.watch_kernel(session, outputs);
            self.watch_reclaim(receiver, daemon_pid);
        }
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            self.last_log = Instant::now();
            log_suppressed(pipeline);
            self.collect(receiver, outputs, pipeline);
            self.log_losses();
        }
        if self.last_stats.elapsed() >= Duration::from_secs(5) {
            self.last_stats = Instant::now();
            self.collect(receiver, outputs, pipeline);
            self.write_stats();
        }
    }

    fn watch_handover(&mut self, receiver: &Receiver) {
        let pid = receiver.counters.handed_over_to.swap(0, Ordering::Relaxed);
        if pid == 0 {
            return;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|_| "?".into());
        log::warn!(
            "process {pid} ({comm}) asked to become the audit daemon and was refused by the kernel while audetect held the audit socket; \
             audetect handed the socket over and now listens on the multicast group: start that daemon again and both will run"
        );
        self.stats.source = "multicast".into();
        self.handed_over = true;
    }

    /// After a hand-over: when the kernel shows no audit daemon any more (it
    /// stopped), ask the receive thread to register again, and report it
    /// once it has.
    fn watch_reclaim(&mut self, receiver: &Receiver, daemon_pid: Option<u32>) {
        if receiver.counters.reclaimed.swap(false, Ordering::Relaxed) {
            log::info!(
                "the audit daemon audetect had handed the socket to is gone: registered as the audit daemon again"
            );
            self.stats.source = "unicast".into();
            self.handed_over = false;
        }
        if self.handed_over
            && daemon_pid == Some(0)
            && !receiver.counters.unicast.load(Ordering::Relaxed)
        {
            receiver.counters.reclaim.store(true, Ordering::Relaxed);
        }
    }

    /// Returns the registered audit daemon's pid, when the check could read it.
    fn watch_kernel(&mut self, session: &mut Session, outputs: &Outputs) -> Option<u32> {
        let repair = match session.check_and_repair() {
            Ok(r) => r,
            Err(e) => {
                log::error!("checking the audit rules and status: {e}");
                return None;
            }
        };
        let daemon_pid = repair.daemon_pid;
        self.kernel_lost = repair.lost;
        let mut reports = Vec::new();
        if repair.reenabled {
            self.stats.tampering.audit_reenabled += 1;
            reports.push((
                "audit_disabled",
                "kernel audit was disabled while audetect ran; enabled it again".to_owned(),
                json!({"repaired": true}),
            ));
        }
        if !repair.rules_restored.is_empty() {
            self.stats.tampering.rules_restored += repair.rules_restored.len() as u64;
            reports.push((
                "audit_rules_removed",
                format!(
                    "{} audit rule(s) audetect needs were removed while it ran; put them back: {}",
                    repair.rules_restored.len(),
                    repair.rules_restored.join("; ")
                ),
                json!({"rules_restored": repair.rules_restored}),
            ));
        }
        if repair.locked {
            reports.push((
                "audit_locked",
                "kernel audit was locked (enabled=2) while audetect ran: its configuration can no longer change until reboot; audetect carries on with what is loaded".to_owned(),
                json!({"repaired": false}),
            ));
        }
        let now = SystemTime::now();
        for (action, message, details) in reports {
            log::warn!("{message}");
            outputs.send(alert::configuration_alert(
                action, &message, details, &self.host, now,
            ));
        }
        Some(daemon_pid)
    }

    fn collect(
        &mut self,
        receiver: &Receiver,
        outputs: &Outputs,
        pipeline: &Pipeline<impl audetect::proc::ProcSource>,
    ) {
        let p = pipeline.stats();
        let o = outputs.stats();
        let c = &receiver.counters;
        let s = &mut self.stats;
        s.received = status::Received {
            datagrams: c.datagrams.load(Ordering::Relaxed),
            records: p.records,
            malformed_records: p.malformed_records,
            events: p.reassembly.events,
            incomplete_events: p.reassembly.incomplete,
            ignored_events: p.reassembly.ignored,
        };
        s.lost = status::Lost {
            kernel: u64::from(self.kernel_lost.wrapping_sub(self.kernel_lost_at_start)),
            socket_overflows: c.overruns.load(Ordering::Relaxed),
            missing_serials: p.reassembly.missing_serials,
        };
        s.detection = status::Detection {
            events: p.normalize.connect_attempts + p.normalize.session_changes,
            matches: p.detect.matches,
            alerts: p.alerts,
            suppressed: p.detect.suppressed,
            dropped_pending: p.detect.dropped_pending,
        };
        s.outputs = status::Outputs {
            sent_syslog: o.sent_syslog,
            sent_jsonl: o.sent_jsonl,
            dropped: o.dropped_queue_full,
            syslog_errors: o.syslog_errors,
        };
    }

    /// One line per kind of loss that grew since the last one.
    fn log_losses(&mut self) {
        let (now, was) = (&self.stats, &self.logged);
        let grew = |name: &str, n: u64, before: u64| {
            if n > before {
                log::warn!("{name}: {} more, {n} since start", n - before);
            }
        };
        grew(
            "records lost by the kernel (its lost counter)",
            now.lost.kernel,
            was.lost.kernel,
        );
        grew(
            "audit socket overflows (ENOBUFS), records lost",
            now.lost.socket_overflows,
            was.lost.socket_overflows,
        );
        grew(
            "audit event serials never received",
            now.lost.missing_serials,
            was.lost.missing_serials,
        );
        grew(
            "alerts dropped because the output queue was full",
            now.outputs.dropped,
            was.outputs.dropped,
        );
        grew(
            "partial sequences dropped at detection.max_pending_events",
            now.detection.dropped_pending,
            was.detection.dropped_pending,
        );
        self.logged = self.stats.clone();
    }

    fn write_stats(&mut self) {
        let (sec, micros) = timefmt::split(SystemTime::now());
        self.stats.updated = timefmt::rfc3339_micros(sec, micros);
        if let Err(e) = status::write(&self.stats_path, &self.stats) {
            log::warn!("{e}");
        }
    }

    fn remove_stats(&self) {
        let _ = std::fs::remove_file(&self.stats_path);
    }
}

fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", &path)
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_arrive_whole() {
        let fixture = include_str!("../tests/fixtures/scenarios.log");
        let lines = fixture.lines().filter(|l| !l.trim().is_empty()).count();
        // A reader buffer of 7 bytes splits nearly every line between reads;
        // the last line has no newline.
        let input = fixture.trim_end().as_bytes();
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut pipeline = Pipeline::new(NoProc, Vec::new(), 16, "h".into());
        let mut line = Vec::new();
        feed_lines(&mut reader, &mut line, &mut pipeline, &mut |_| {}).unwrap();
        let s = pipeline.stats();
        assert_eq!((s.records, s.malformed_records), (lines as u64, 0));
    }
}
