//! The snapshot on a thread of its own: a read that blocks in the kernel (an
//! executable on a stalled FUSE mount, a target whose memory lock is held)
//! then holds up that thread only, never the pipeline and the receive path.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::Duration;

use super::{Piece, Pieces, ProcessFacts, Snapshot, Snapshotter, Status, Target};

/// Takes snapshots with `inner` on a worker thread, started on first use (so
/// after the daemon has dropped its capabilities, which threads inherit).
/// The pipeline waits for a snapshot at most `wait`; one that takes longer
/// is given up, and until the worker is free again alerts say so at once
/// instead of queueing behind it.
pub struct OnWorker {
    inner: Option<Box<dyn Snapshotter + Send>>,
    worker: Option<(SyncSender<Target>, Receiver<Snapshot>)>,
    wait: Duration,
    busy: bool,
}

impl OnWorker {
    pub fn new(inner: Box<dyn Snapshotter + Send>, wait: Duration) -> Self {
        OnWorker {
            inner: Some(inner),
            worker: None,
            wait,
            busy: false,
        }
    }

    fn start(&mut self) -> Option<&(SyncSender<Target>, Receiver<Snapshot>)> {
        if self.worker.is_none() {
            let mut inner = self.inner.take()?;
            let (to_worker, requests) = mpsc::sync_channel::<Target>(1);
            let (answers, from_worker) = mpsc::sync_channel::<Snapshot>(1);
            let spawned = std::thread::Builder::new()
                .name("snapshot".into())
                .spawn(move || {
                    for target in requests {
                        if answers.send(inner.take(&target)).is_err() {
                            return;
                        }
                    }
                });
            if let Err(e) = spawned {
                log::warn!("cannot start the snapshot thread: {e}; alerts carry no snapshot");
                return None;
            }
            self.worker = Some((to_worker, from_worker));
        }
        self.worker.as_ref()
    }
}

/// A snapshot whose every piece could not be read, and why.
fn unavailable(why: &str) -> Snapshot {
    let piece = || Piece::new(Status::Unavailable, why);
    Snapshot::blank(
        Pieces {
            process: piece(),
            sockets: piece(),
            stdio: piece(),
            ancestry: piece(),
            hash: piece(),
            sessions: piece(),
        },
        ProcessFacts::default(),
    )
}

impl Snapshotter for OnWorker {
    fn take(&mut self, target: &Target) -> Snapshot {
        let wait = self.wait;
        let was_busy = self.busy;
        let Some((to_worker, from_worker)) = self.start() else {
            return unavailable("the snapshot thread could not be started");
        };
        if was_busy {
            // The look given up on may have finished since; its answer is
            // too late for its alert.
            match from_worker.try_recv() {
                Ok(_) => {}
                Err(TryRecvError::Empty) => {
                    return unavailable("an earlier look at /proc is still blocked in the kernel")
                }
                Err(TryRecvError::Disconnected) => {
                    return unavailable("the snapshot thread has stopped")
                }
            }
        }
        if to_worker.send(target.clone()).is_err() {
            return unavailable("the snapshot thread has stopped");
        }
        match from_worker.recv_timeout(wait) {
            Ok(snapshot) => {
                self.busy = false;
                snapshot
            }
            Err(RecvTimeoutError::Timeout) => {
                self.busy = true;
                log::warn!(
                    "the triage snapshot of pid {} did not finish within {} ms: a read of /proc \
                     is blocked in the kernel; alerts go out without snapshots until it returns",
                    target.pid,
                    wait.as_millis()
                );
                unavailable("the look at /proc blocked in the kernel past the time budget")
            }
            Err(RecvTimeoutError::Disconnected) => unavailable("the snapshot thread has stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Blocks while the test holds the gate, as a read stuck in the kernel would.
    struct Gated(Arc<Mutex<()>>);

    impl Snapshotter for Gated {
        fn take(&mut self, _target: &Target) -> Snapshot {
            let _held = self.0.lock();
            Snapshot::not_taken("answered")
        }
    }

    fn target() -> Target {
        Target {
            pid: 1,
            entity: crate::process::EntityId::new("b", 1, 1),
            ppid: 0,
            record_sec: 0,
            args: None,
            args_truncated: false,
            working_directory: None,
        }
    }

    #[test]
    fn a_blocked_look_costs_the_pipeline_one_wait_then_none_until_it_returns() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let mut s = OnWorker::new(
            Box::new(Gated(Arc::clone(&gate))),
            Duration::from_millis(50),
        );
        let first = s.take(&target());
        assert_eq!(first.pieces.process.status, Status::Unavailable);
        let reason = |s: &Snapshot| s.pieces.hash.reason.clone().unwrap_or_default();
        assert!(reason(&first).contains("blocked"), "{first:?}");
        // Still blocked: answered at once, without queueing behind it.
        let second = s.take(&target());
        assert!(reason(&second).contains("still blocked"), "{second:?}");
        drop(held);
        // Once it returns, looks go through again.
        let mut third = s.take(&target());
        for _ in 0..100 {
            if third.not_taken.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            third = s.take(&target());
        }
        assert_eq!(third.not_taken.as_deref(), Some("answered"));
    }
}
