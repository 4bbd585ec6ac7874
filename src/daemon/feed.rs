//! The record sources that feed the pipeline: batches from the netlink
//! receive thread, and auditd-format lines (a log, or auditd's plugin
//! stream).

use std::io::BufRead;
use std::sync::mpsc;
use std::time::SystemTime;

use crate::output::Alert;
use crate::pipeline::Pipeline;
use crate::process::ProcSource;
use crate::receive::Batch;

use super::DaemonError;

/// Feeds a batch from the receive thread to the pipeline and hands it back
/// for reuse.
pub fn feed_batch(
    pipeline: &mut Pipeline<impl ProcSource>,
    mut batch: Batch,
    recycle: &mpsc::SyncSender<Batch>,
    emit: &mut dyn FnMut(Alert),
) {
    let now = SystemTime::now;
    for (rtype, body) in batch.iter() {
        pipeline.push_netlink(rtype, body, &now, emit);
    }
    batch.clear();
    // A full return queue only means the receive thread has spares enough.
    let _ = recycle.try_send(batch);
}

/// Feeds auditd-format lines to the pipeline until the end of the input.
pub fn feed_lines(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    pipeline: &mut Pipeline<impl ProcSource>,
    emit: &mut dyn FnMut(Alert),
) -> Result<(), DaemonError> {
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
        let buf = reader.fill_buf().map_err(DaemonError::Input)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Host;
    use crate::process::NoProc;

    #[test]
    fn lines_split_across_reads_arrive_whole() {
        let fixture = include_str!("../../tests/fixtures/scenarios.log");
        let lines = fixture.lines().filter(|l| !l.trim().is_empty()).count();
        // A reader buffer of 7 bytes splits nearly every line between reads;
        // the last line has no newline.
        let input = fixture.trim_end().as_bytes();
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut pipeline = Pipeline::new(NoProc, Vec::new(), 16, Host::new("i", "h"));
        let mut line = Vec::new();
        feed_lines(&mut reader, &mut line, &mut pipeline, &mut |_| {}).unwrap();
        let s = pipeline.stats();
        assert_eq!((s.records, s.malformed_records), (lines as u64, 0));
    }
}
