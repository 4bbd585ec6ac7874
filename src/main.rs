//! audetect's command line: clap parsing and dispatch to one module per
//! command. Errors become exit codes here and only here.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "audetect", version, about = commands::ABOUT, long_about = commands::ABOUT)]
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
        /// Also write every normalized event (ECS, one JSON per line, before
        /// the alerts it leads to): what a rule sees, for when it does not fire
        #[arg(long)]
        events: bool,
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
    /// Print the audit rules audetect installs for the detection rules the
    /// config loads, in auditctl syntax, with a comment line per kind of
    /// event saying whose events and which rules need it.
    ///
    /// With the built-in rule alone: root connects and setsids. For
    /// `plugin` hosts, save it in /etc/audit/rules.d/ (augenrules).
    Rules {
        /// Config file [default: /etc/audetect/audetect.toml if present, else built-in defaults]
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
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
        Command::Run { config } => commands::run::run(config.as_deref()),
        Command::Replay {
            config,
            files,
            events,
        } => commands::replay::run(config.as_deref(), &files, events),
        Command::Rules { config } => commands::rules::run(config.as_deref()),
        Command::CheckConfig { config, verbose } => {
            commands::check_config::run(config.as_deref(), verbose)
        }
        Command::Status => commands::status::run(),
        Command::Selftest => commands::selftest::run(),
        Command::SelftestActor { port } => commands::selftest::actor(port),
        Command::Plugin { config } => commands::plugin::run(config.as_deref()),
    };
    if let Err(e) = result {
        log::error!("{e:#}");
        std::process::exit(1);
    }
}
