//! `audetect replay`: auditd log files (or stdin) through the pipeline,
//! alerts as JSON lines on stdout.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::output::Alert;
use crate::pipeline::Pipeline;
use crate::process::NoProc;
use crate::snapshot::NotTaken;

use super::{feed_lines, host_name, load_config, load_rules, shut_down, DaemonError, Sink};

/// Replays `files` ("-" or none: stdin) and exits at the end of the input.
/// With `events`, every normalized event is written too, before the alerts
/// it leads to (`event.kind` "event"; alerts have "signal").
pub fn replay(path: Option<&Path>, files: &[PathBuf], events: bool) -> Result<(), DaemonError> {
    let (config, _) = load_config(path)?;
    let rules = load_rules(&config)?;
    let mut pipeline = Pipeline::new(
        NoProc,
        rules,
        config.detection.max_pending_events,
        super::setup::host(host_name()),
    );
    pipeline.set_max_processes(config.detection.max_processes);
    pipeline.set_snapshots(
        Box::new(NotTaken("replay: the processes of a log are not live")),
        config.snapshot.max_alert_bytes,
    );
    let out = std::rc::Rc::new(std::cell::RefCell::new(std::io::BufWriter::new(
        std::io::stdout().lock(),
    )));
    let tap_error: std::rc::Rc<std::cell::Cell<Option<std::io::ErrorKind>>> = Default::default();
    if events {
        let (out, tap_error) = (out.clone(), tap_error.clone());
        pipeline.set_event_tap(Box::new(move |e| {
            let line = serde_json::to_string(e)
                .unwrap_or_else(|e| unreachable!("an event serializes: {e}"));
            if let Err(e) = writeln!(out.borrow_mut(), "{line}") {
                tap_error.set(Some(e.kind()));
            }
        }));
    }
    let mut write_error = None;
    let mut emit = |alert: Alert| {
        if write_error.is_none() {
            if let Err(e) = writeln!(out.borrow_mut(), "{}", alert.json) {
                write_error = Some(e);
            }
        }
    };
    let stdin_only = files.is_empty() || files.iter().all(|f| f.as_os_str() == "-");
    let inputs: Vec<Option<&PathBuf>> = if stdin_only {
        vec![None]
    } else {
        oldest_first(
            files
                .iter()
                .map(|f| (f.as_os_str() != "-").then_some(f))
                .collect(),
        )
    };
    let started = Instant::now();
    let mut line = Vec::with_capacity(1024);
    for input in inputs {
        let mut reader: Box<dyn BufRead> = match input {
            Some(f) => Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(f).map_err(|source| DaemonError::Open {
                    path: f.clone(),
                    source,
                })?,
            )),
            None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
        };
        feed_lines(&mut *reader, &mut line, &mut pipeline, &mut emit)?;
    }
    shut_down(None, &mut pipeline, Sink::Emit(&mut emit));
    if let Some(e) = write_error.or_else(|| tap_error.get().map(std::io::Error::from)) {
        return Err(DaemonError::WriteAlerts(e));
    }
    out.borrow_mut().flush().map_err(DaemonError::WriteAlerts)?;
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
    // What the input lacked, by kind: nothing is dropped without a count.
    let r = &s.reassembly;
    let n = &s.normalize;
    if r.incomplete + r.late_records + r.missing_serials + n.malformed_events + n.without_address
        > 0
    {
        log::warn!(
            "the input was not whole: {} events without their last record, {} records after their event, {} serials missing, {} events lacking a field audetect needs, {} connects or accepts without an address (SOCKADDR)",
            r.incomplete,
            r.late_records,
            r.missing_serials,
            n.malformed_events,
            n.without_address
        );
    }
    if r.unknown_arch > 0 {
        let known: Vec<&str> = crate::syscalls::ARCHES.iter().map(|a| a.name).collect();
        log::warn!(
            "{} events of an arch audetect has no syscall table for were not read (it knows {})",
            r.unknown_arch,
            known.join(", ")
        );
    }
    Ok(())
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The files in the order of their first record's time, so that a shell's
/// `audit.log*` (newest first: audit.log, audit.log.1, ...) replays as it
/// happened; stdin and files with no record keep their place relative to
/// the rest. Says so when the order changes.
fn oldest_first(inputs: Vec<Option<&PathBuf>>) -> Vec<Option<&PathBuf>> {
    let first_time = |f: Option<&PathBuf>| -> Option<u64> {
        let file = std::fs::File::open(f?).ok()?;
        std::io::BufReader::new(file)
            .split(b'\n')
            .take(1000)
            .map_while(Result::ok)
            .find_map(|l| {
                crate::parse::log_line_head(&l)
                    .ok()
                    .map(|h| h.time.as_millis())
            })
    };
    let mut keyed: Vec<(u64, usize, Option<&PathBuf>)> = inputs
        .iter()
        .enumerate()
        .map(|(i, f)| (first_time(*f).unwrap_or(u64::MAX), i, *f))
        .collect();
    if keyed.iter().any(|k| k.0 == u64::MAX) {
        return inputs; // stdin, or a file without records: keep the order given
    }
    keyed.sort_by_key(|&(t, i, _)| (t, i));
    let sorted: Vec<Option<&PathBuf>> = keyed.into_iter().map(|(_, _, f)| f).collect();
    if sorted != inputs {
        let names: Vec<String> = sorted
            .iter()
            .flatten()
            .map(|f| f.display().to_string())
            .collect();
        log::info!(
            "replaying the files oldest first, by their first record: {}",
            names.join(", ")
        );
    }
    sorted
}
