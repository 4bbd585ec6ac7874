//! The tracker: which process a record's pid named when the record was
//! written, as an entity id. Known start times and pins on live processes
//! spare procfs reads; both are bounded.

use std::collections::HashMap;
use std::sync::Arc;

use super::entity::EntityId;
use super::source::{ProcError, ProcSource};
use crate::parse::Timestamp;

/// Pids whose start time is remembered; past this the memory starts over
/// (cleared whole: cheaper than ageing each entry, and a process read again
/// costs one procfs read).
pub const MAX_KNOWN: usize = 65_536;
/// Processes held by a pin at once: each pin is an open fd.
pub const MAX_PINNED: usize = 256;
/// While the pins are full, pins of exited processes are released at most
/// this often (record time, ms): a sweep polls every pin.
pub const PIN_SWEEP_MS: u64 = 1_000;

/// How an entity id was obtained (`audetect.audit.entity_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitySource {
    /// Read from the live process (or vouched for by its pin).
    Procfs,
    /// The process was gone; its start time is what was last seen for the pid.
    Cache,
    /// Never seen alive: the audit session id stands in for the start time.
    Fallback,
}

impl EntitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            EntitySource::Procfs => "procfs",
            EntitySource::Cache => "cache",
            EntitySource::Fallback => "fallback",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Lookups whose process had already exited (or whose pid was reused).
    pub process_gone: u64,
    /// Entity ids that had to use the fallback form.
    pub entity_fallbacks: u64,
}

struct Known {
    start: u64,
}

/// Processes seen so far, for one `ProcSource`.
pub struct Tracker<P: ProcSource> {
    boot_id: Arc<str>,
    clock: Option<(u64, u64)>,
    known: HashMap<u32, Known>,
    /// Known processes held while they live, so that their next events need
    /// no procfs read: a pin that says alive proves the pid still names the
    /// process whose start time `known` has.
    pins: HashMap<u32, P::Pin>,
    /// Record time (ms) pins of exited processes were last released.
    pins_swept: u64,
    stats: TrackerStats,
}

impl<P: ProcSource> Tracker<P> {
    pub fn new(proc: &P) -> Self {
        Tracker {
            boot_id: proc.boot_id().into(),
            clock: proc.clock(),
            known: HashMap::new(),
            pins: HashMap::new(),
            pins_swept: 0,
            stats: TrackerStats::default(),
        }
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// The entity of `pid` as of a record written at `time`. The start time
    /// comes from procfs while the process lives; once it is gone, from what
    /// was last seen for that pid; if it was never seen, the audit session
    /// id `ses` stands in for the start time, so that events of one vanished
    /// process still share an id.
    pub fn entity(
        &mut self,
        proc: &P,
        pid: u32,
        ses: &str,
        time: Timestamp,
    ) -> (EntityId, EntitySource) {
        if let (Some(k), Some(pin)) = (self.known.get(&pid), self.pins.get(&pid)) {
            if proc.is_alive(pin) && !self.started_after(k.start, time) {
                return (self.id(pid, k.start), EntitySource::Procfs);
            }
        }
        // Whatever the pin held is gone, or was never this process.
        self.pins.remove(&pid);
        if self.pins.len() >= MAX_PINNED
            && time.as_millis() >= self.pins_swept.saturating_add(PIN_SWEEP_MS)
        {
            self.pins.retain(|_, p| proc.is_alive(p));
            self.pins_swept = time.as_millis();
        }
        // Pinned before the read: if the pin still lives after it, the start
        // time read belongs to the pinned process.
        let pin = (self.pins.len() < MAX_PINNED)
            .then(|| proc.pin(pid))
            .flatten();
        match proc.start_time(pid) {
            Ok(start) if !self.started_after(start, time) => {
                if self.known.len() >= MAX_KNOWN && !self.known.contains_key(&pid) {
                    self.known.clear();
                }
                self.known.insert(pid, Known { start });
                if let Some(pin) = pin.filter(|p| proc.is_alive(p)) {
                    self.pins.insert(pid, pin);
                }
                return (self.id(pid, start), EntitySource::Procfs);
            }
            Ok(_) | Err(ProcError::Gone(_)) => self.stats.process_gone += 1,
            Err(_) => {}
        }
        if let Some(k) = self.known.get(&pid) {
            return (self.id(pid, k.start), EntitySource::Cache);
        }
        self.stats.entity_fallbacks += 1;
        (
            EntityId::fallback(self.boot_id.clone(), pid, ses),
            EntitySource::Fallback,
        )
    }

    fn id(&self, pid: u32, start: u64) -> EntityId {
        EntityId::new(self.boot_id.clone(), pid, start)
    }

    /// A process that started after the record was written cannot have
    /// written it: its pid was reused. Boot time is known to the second only.
    fn started_after(&self, start_ticks: u64, time: Timestamp) -> bool {
        match self.clock {
            Some((btime, hz)) if hz > 0 => {
                btime.saturating_add(start_ticks / hz) > time.sec.saturating_add(1)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    use super::*;
    use crate::process::Transport;

    /// Every pid lives, started at tick = pid, and can be pinned; `exited`
    /// ones are gone.
    #[derive(Default)]
    struct Fake {
        exited: RefCell<HashSet<u32>>,
        reads: Cell<u32>,
        polls: Cell<u32>,
    }

    impl ProcSource for Fake {
        type Pin = u32;
        fn start_time(&self, pid: u32) -> Result<u64, ProcError> {
            self.reads.set(self.reads.get() + 1);
            if self.exited.borrow().contains(&pid) {
                return Err(ProcError::Gone(pid));
            }
            Ok(u64::from(pid))
        }
        fn socket_transport(
            &self,
            _pid: u32,
            _fd: u32,
            _peer: std::net::SocketAddr,
        ) -> Result<Transport, ProcError> {
            Ok(Transport::Tcp)
        }
        fn boot_id(&self) -> String {
            "b".into()
        }
        fn clock(&self) -> Option<(u64, u64)> {
            None
        }
        fn pin(&self, pid: u32) -> Option<u32> {
            Some(pid)
        }
        fn is_alive(&self, pin: &u32) -> bool {
            self.polls.set(self.polls.get() + 1);
            !self.exited.borrow().contains(pin)
        }
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp {
            sec: ms / 1000,
            msec: (ms % 1000) as u16,
        }
    }

    #[test]
    fn pins_stop_at_their_bound_and_exited_ones_are_swept_once_a_second() {
        let fake = Fake::default();
        let mut t = Tracker::new(&fake);
        for pid in 1..=MAX_PINNED as u32 + 10 {
            let (id, src) = t.entity(&fake, pid, "1", at(0));
            assert_eq!(
                (id.to_string(), src),
                (format!("b:{pid}:{pid}"), EntitySource::Procfs)
            );
        }
        assert_eq!(t.pins.len(), MAX_PINNED);
        assert_eq!(t.known.len(), MAX_PINNED + 10);
        // Half the pinned exit; once PIN_SWEEP_MS has passed, the next new
        // process sweeps their pins away.
        fake.exited.borrow_mut().extend(1..=MAX_PINNED as u32 / 2);
        let _ = t.entity(&fake, 5_000, "1", at(PIN_SWEEP_MS));
        assert_eq!(t.pins.len(), MAX_PINNED / 2 + 1);
        // Unpinned processes are read each time; pinned ones are not.
        let reads = fake.reads.get();
        let _ = t.entity(&fake, 5_000, "1", at(PIN_SWEEP_MS));
        assert_eq!(fake.reads.get(), reads, "pinned");
        let (id, src) = t.entity(&fake, 3, "1", at(PIN_SWEEP_MS));
        assert_eq!((id.to_string(), src), ("b:3:3".into(), EntitySource::Cache));
        assert_eq!(t.stats().process_gone, 1);
    }

    #[test]
    fn known_start_times_start_over_past_their_bound() {
        let fake = Fake::default();
        let mut t = Tracker::new(&fake);
        for pid in 1..=MAX_KNOWN as u32 {
            let _ = t.entity(&fake, pid, "1", at(0));
        }
        assert_eq!(t.known.len(), MAX_KNOWN);
        let _ = t.entity(&fake, 7, "1", at(0));
        assert_eq!(t.known.len(), MAX_KNOWN, "a known pid does not evict");
        let _ = t.entity(&fake, MAX_KNOWN as u32 + 1, "1", at(0));
        assert_eq!(t.known.len(), 1, "a new one past the bound clears the rest");
        // Gone and no longer known: the fallback form.
        fake.exited.borrow_mut().insert(9);
        let (id, src) = t.entity(&fake, 9, "4", at(0));
        assert_eq!(
            (id.to_string(), src),
            ("b:9:ses4".into(), EntitySource::Fallback)
        );
        assert_eq!(t.stats().entity_fallbacks, 1);
    }
}
