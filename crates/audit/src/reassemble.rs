//! Records → events: groups the records of one audit event (one serial),
//! completes them on EOE or PROCTITLE, expires incomplete ones by record time.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::parse::{types, Head, Record, Timestamp};
use crate::syscalls::SyscallSet;

/// All the records of one audit event, in arrival order (EOE left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub time: Timestamp,
    pub serial: u64,
    pub records: Vec<Record>,
    /// The clock steps seen before it opened, summed (ms): `time` minus this
    /// puts it on one timeline with the events before the steps, which is
    /// what maxspan and expiry must measure (`date -s` between two steps of
    /// a sequence changes the records' times, not the time that passed).
    pub clock_shift_ms: i64,
}

impl Event {
    /// Its time in ms on the timeline before any clock step (see
    /// `clock_shift_ms`).
    pub fn steady_millis(&self) -> u64 {
        shifted(self.time, self.clock_shift_ms)
    }
}

fn shifted(t: Timestamp, shift_ms: i64) -> u64 {
    u64::try_from((t.as_millis() as i64).saturating_sub(shift_ms)).unwrap_or(0)
}

impl Event {
    pub fn record(&self, rtype: u16) -> Option<&Record> {
        self.records.iter().find(|r| r.rtype == rtype)
    }

    /// The host a multi-host log names (`node=`), if it names one.
    pub fn node(&self) -> Option<&str> {
        self.records.first()?.node.as_deref()
    }
}

/// Counters a user can read to see what reassembly had to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub events: u64,
    /// Events emitted without their EOE/PROCTITLE: timed out or pushed out.
    pub incomplete: u64,
    /// Records for an event that had already been emitted.
    pub late_records: u64,
    /// Events of system calls no detection uses, dropped unparsed (counted
    /// in `events` too).
    pub ignored: u64,
    /// Of those, events of an arch audetect has no syscall table for
    /// (`arch=` unknown): reported, since no rule could ever see them.
    pub unknown_arch: u64,
    /// Serial numbers never seen, though later ones were: events the kernel
    /// (or the socket) lost on the way to us.
    pub missing_serials: u64,
}

/// Counts gaps in the kernel's event serials. Records of different events
/// can arrive out of order, so a serial is only counted as missing once it
/// is far behind the newest one, or has been missing for a while of record
/// time (a quiet host may not see another thousand events for hours).
#[derive(Debug, Default)]
struct SerialGaps {
    newest: Option<u64>,
    /// Missing serials, with the record time (ms) at which the gap was seen.
    pending: BTreeMap<u64, u64>,
    missing: u64,
}

/// How far behind the newest serial a gap may still be filled.
const GAP_WINDOW: u64 = 1024;
/// How long, in record time, a gap may still be filled.
const GAP_WAIT_MS: u64 = 2_000;

impl SerialGaps {
    fn see(&mut self, serial: u64, now_ms: u64) {
        let Some(newest) = self.newest else {
            self.newest = Some(serial);
            return;
        };
        if serial == newest {
            // The other records of the newest event: the common case, and
            // never a gap; no need to look at the pending ones.
            return;
        }
        if serial > newest {
            let gap = serial - newest - 1;
            // A jump past the window is counted at once, not remembered.
            let remembered = gap.min(GAP_WINDOW);
            self.missing += gap - remembered;
            self.pending
                .extend((serial - remembered..serial).map(|s| (s, now_ms)));
            self.newest = Some(serial);
        } else if newest - serial > 1_000_000 {
            // The kernel's counter started again (another boot, in replay).
            self.pending.clear();
            self.newest = Some(serial);
        } else {
            self.pending.remove(&serial);
        }
        let newest = self.newest.unwrap_or(serial);
        while let Some((&oldest, &seen)) = self.pending.first_key_value() {
            if oldest.saturating_add(GAP_WINDOW) >= newest
                && seen.saturating_add(GAP_WAIT_MS) >= now_ms
            {
                break;
            }
            self.pending.pop_first();
            self.missing += 1;
        }
    }
}

/// A TIME_INJOFFSET record's step (`sec=-121 nsec=999993792`: seconds,
/// then a non-negative fraction), in ms rounded to the nearest.
fn injected_offset_ms(head: &Head<'_>) -> Option<i64> {
    let sec = head.field("sec")?.signed()?;
    let nsec = i64::try_from(head.field("nsec")?.decimal()?).ok()?;
    let ns = sec.checked_mul(1_000_000_000)?.checked_add(nsec)?;
    Some((ns + 500_000).div_euclid(1_000_000))
}

pub struct Reassembler {
    open: VecDeque<Open>,
    /// Keys of recently finished events, oldest first, to drop an EOE that
    /// follows PROCTITLE and count late records; the set answers lookups.
    recent: VecDeque<Key>,
    recent_set: HashSet<Key>,
    timeout_ms: u64,
    max_open: usize,
    /// The newest record time seen, on the steady timeline (ms, clock steps
    /// taken out): what expiry measures from.
    newest_ms: u64,
    /// The clock steps seen so far, summed (ms).
    clock_shift_ms: i64,
    serials: SerialGaps,
    /// The system calls whose events are emitted; all when None.
    wanted: Option<SyscallSet>,
    /// Events of an arch with no syscall table (counted where `wanted`
    /// reads them, hence a Cell).
    unknown_arch: std::cell::Cell<u64>,
    stats: ReassemblyStats,
}

/// Time, serial and the node's name hashed (0 for none): two hosts of one
/// log can give the same serial at the same time.
type Key = (Timestamp, u64, u64);

fn node_hash(node: Option<&[u8]>) -> u64 {
    use std::hash::{Hash, Hasher};
    node.map_or(0, |n| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        n.hash(&mut h);
        h.finish() | 1
    })
}

/// An event still collecting records. An ignored one (its SYSCALL record is
/// of a call nobody wants) keeps no records: it is only tracked so that its
/// other records are recognised and dropped without being parsed.
struct Open {
    key: Key,
    event: Event,
    ignored: bool,
    /// Its SYSCALL record has come (kept, or dropped as unwanted).
    has_syscall: bool,
    /// It holds a URINGOP record.
    uring: bool,
    /// Its time on the steady timeline when it opened (ms).
    at_ms: u64,
    /// Its EOE, or its PROCTITLE, came before its SYSCALL: the order of
    /// `ausearch` output (EOE first) and of some captures. The event ends
    /// at its SYSCALL when the EOE came first, else at its EOE.
    saw_eoe: bool,
    saw_title: bool,
}

const RECENT: usize = 512;

impl Default for Reassembler {
    fn default() -> Self {
        // Records of one event arrive within microseconds; two seconds of
        // record time is generous even for a loaded host.
        Reassembler::new(2_000, 4096)
    }
}

/// Types that open a multi-record syscall event; anything else that does not
/// join an open event stands alone (user-space messages, CONFIG_CHANGE, ...).
fn is_syscall_part(rtype: u16) -> bool {
    matches!(rtype, 1300..=1399 | 1400..=1499 | 1800..=1899) && rtype != types::CONFIG_CHANGE
}

impl Reassembler {
    pub fn new(timeout_ms: u64, max_open: usize) -> Self {
        Reassembler {
            open: VecDeque::new(),
            recent: VecDeque::with_capacity(RECENT),
            recent_set: HashSet::with_capacity(RECENT),
            timeout_ms,
            max_open: max_open.max(1),
            newest_ms: 0,
            clock_shift_ms: 0,
            serials: SerialGaps::default(),
            wanted: None,
            unknown_arch: std::cell::Cell::new(0),
            stats: ReassemblyStats::default(),
        }
    }

    /// Emits only the events of these system calls (and those that are no
    /// system call's): another call's event is tracked but never emitted,
    /// and none of its records is copied or split into fields.
    pub fn only_syscalls(mut self, wanted: SyscallSet) -> Self {
        self.wanted = Some(wanted);
        self
    }

    /// Whether the event of this SYSCALL record is wanted, read from its
    /// head alone. A record without a readable arch or call number is kept,
    /// for the later stages to judge.
    fn wanted(&self, head: &Head<'_>) -> bool {
        let Some(wanted) = &self.wanted else {
            return true;
        };
        match (
            head.field("arch").and_then(|v| v.hex()),
            head.field("syscall").and_then(|v| v.decimal()),
        ) {
            (Some(arch), Some(nr)) => match (u32::try_from(arch), u32::try_from(nr)) {
                (Ok(arch), Ok(nr)) => {
                    if crate::syscalls::arch(arch).is_none() {
                        self.unknown_arch.set(self.unknown_arch.get() + 1);
                    }
                    wanted.contains(arch, nr)
                }
                _ => false,
            },
            _ => true,
        }
    }

    pub fn stats(&self) -> ReassemblyStats {
        ReassemblyStats {
            missing_serials: self.serials.missing,
            unknown_arch: self.unknown_arch.get(),
            ..self.stats
        }
    }

    /// Feeds one record; completed events are appended to `out`.
    pub fn push(&mut self, record: Record, out: &mut Vec<Event>) {
        self.push_head(record.head(), out);
    }

    /// Feeds one record by its head, which is split into fields only if
    /// its event is wanted; completed events are appended to `out`.
    pub fn push_head(&mut self, head: Head<'_>, out: &mut Vec<Event>) {
        let unwanted = head.rtype == types::SYSCALL && !self.wanted(&head);
        let key = (head.time, head.serial, node_hash(head.node));
        let joins = self.open.iter().rposition(|o| o.key == key);
        // The records of one event share its stamp: those after its own
        // TIME_INJOFFSET were stamped before the step, like the first. A
        // late record of a finished event moves no time (the stepping
        // event's EOE would count as 60 s in the future).
        let at_ms = match joins {
            Some(pos) => self.open[pos].at_ms,
            None => shifted(head.time, self.clock_shift_ms),
        };
        self.serials.see(head.serial, at_ms);
        if joins.is_some() || !self.recent_set.contains(&key) {
            self.newest_ms = self.newest_ms.max(at_ms);
        }
        if head.rtype == types::TIME_INJOFFSET {
            // After this record: its own event was stamped before the step.
            if let Some(step) = injected_offset_ms(&head) {
                self.clock_shift_ms = self.clock_shift_ms.saturating_add(step);
            }
        }
        let ends = matches!(head.rtype, types::EOE | types::PROCTITLE);
        let is_syscall = head.rtype == types::SYSCALL;
        if let Some(pos) = joins {
            let open = &mut self.open[pos];
            if !open.ignored && unwanted {
                open.ignored = true;
                open.event.records.clear();
            }
            open.has_syscall |= is_syscall;
            open.uring |= head.rtype == types::URINGOP;
            // In the kernel's order the SYSCALL comes first and PROCTITLE
            // or EOE last; in the reverse order the SYSCALL comes last.
            // An io_uring operation run by a worker has URINGOP records and
            // an EOE, and no SYSCALL.
            let done = (ends && open.has_syscall && !open.saw_title)
                || (head.rtype == types::EOE && (open.has_syscall || open.uring))
                || (is_syscall && open.saw_eoe);
            if head.rtype != types::EOE && !open.ignored {
                open.event.records.push(head.into_record());
            }
            open.saw_eoe |= head.rtype == types::EOE;
            open.saw_title |= head.rtype == types::PROCTITLE && !open.has_syscall;
            if done {
                let open = self.open.remove(pos).unwrap_or_else(|| unreachable!());
                self.finish(open, false, out);
            }
        } else if self.recent_set.contains(&key) {
            if head.rtype != types::EOE {
                self.stats.late_records += 1;
            }
        } else {
            let ignored = unwanted;
            let open = Open {
                key,
                event: Event {
                    time: head.time,
                    serial: head.serial,
                    clock_shift_ms: self.clock_shift_ms,
                    records: if ignored || head.rtype == types::EOE {
                        Vec::new()
                    } else {
                        vec![head.into_record()]
                    },
                },
                ignored,
                has_syscall: is_syscall,
                uring: head.rtype == types::URINGOP,
                at_ms,
                saw_eoe: head.rtype == types::EOE,
                saw_title: head.rtype == types::PROCTITLE,
            };
            if !is_syscall_part(head.rtype) && !ends {
                self.finish(open, false, out);
            } else {
                if self.open.len() >= self.max_open {
                    if let Some(oldest) = self.open.pop_front() {
                        self.finish(oldest, true, out);
                    }
                }
                self.open.push_back(open);
            }
        }
        self.expire(out);
    }

    /// Emits open events older than the timeout, measured in record time.
    fn expire(&mut self, out: &mut Vec<Event>) {
        let horizon = self.newest_ms.saturating_sub(self.timeout_ms);
        while self.open.front().is_some_and(|o| o.at_ms < horizon) {
            if let Some(open) = self.open.pop_front() {
                self.finish(open, true, out);
            }
        }
    }

    /// Emits everything still open (end of input, or shutdown).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        while let Some(open) = self.open.pop_front() {
            self.finish(open, true, out);
        }
    }

    fn finish(&mut self, open: Open, incomplete: bool, out: &mut Vec<Event>) {
        let key = open.key;
        if !open.ignored && open.event.records.is_empty() {
            // An EOE alone: the event's other records were lost.
            self.stats.late_records += 1;
            return;
        }
        if self.recent_set.insert(key) {
            if self.recent.len() == RECENT {
                if let Some(oldest) = self.recent.pop_front() {
                    self.recent_set.remove(&oldest);
                }
            }
            self.recent.push_back(key);
        }
        self.stats.events += 1;
        if incomplete {
            self.stats.incomplete += 1;
        }
        if open.ignored {
            self.stats.ignored += 1;
        } else {
            out.push(open.event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_log_line;

    fn rec(line: &str) -> Record {
        parse_log_line(line.as_bytes()).unwrap()
    }

    fn run(lines: &[&str]) -> (Vec<Event>, ReassemblyStats) {
        let mut r = Reassembler::new(2000, 16);
        let mut out = Vec::new();
        for l in lines {
            r.push(rec(l), &mut out);
        }
        (out, r.stats())
    }

    const SYSCALL_A: &str = "type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=112 success=yes exit=5 pid=5";
    const PROCTITLE_A: &str = "type=PROCTITLE msg=audit(1700000000.100:10): proctitle=6100";
    const EOE_A: &str = "type=EOE msg=audit(1700000000.100:10): ";
    const SYSCALL_B: &str = "type=SYSCALL msg=audit(1700000000.101:11): arch=c000003e syscall=42 success=yes exit=0 pid=6";
    const SOCKADDR_B: &str = "type=SOCKADDR msg=audit(1700000000.101:11): saddr=02000050C0A80001";
    const PROCTITLE_B: &str = "type=PROCTITLE msg=audit(1700000000.101:11): proctitle=6200";

    #[test]
    fn completes_on_proctitle_and_drops_the_following_eoe() {
        let (events, stats) = run(&[SYSCALL_A, PROCTITLE_A, EOE_A]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].serial, 10);
        assert_eq!(events[0].records.len(), 2);
        assert_eq!(stats.late_records, 0);
        assert_eq!(stats.incomplete, 0);
    }

    #[test]
    fn interleaved_events_are_kept_apart() {
        let (events, _) = run(&[SYSCALL_A, SYSCALL_B, SOCKADDR_B, PROCTITLE_B, PROCTITLE_A]);
        let serials: Vec<u64> = events.iter().map(|e| e.serial).collect();
        assert_eq!(serials, vec![11, 10]);
        assert_eq!(events[0].records.len(), 3);
        assert_eq!(events[1].records.len(), 2);
    }

    #[test]
    fn completes_on_eoe_without_proctitle() {
        let (events, _) = run(&[SYSCALL_A, EOE_A]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].records.len(), 1);
    }

    /// `ausearch` lists an event's records EOE first and SYSCALL last; some
    /// captures put PROCTITLE before SYSCALL. Neither loses a record.
    #[test]
    fn record_order_within_an_event_does_not_matter() {
        let (events, stats) = run(&[
            EOE_A,
            PROCTITLE_A,
            SYSCALL_A,
            PROCTITLE_B,
            SOCKADDR_B,
            SYSCALL_B,
        ]);
        let serials: Vec<u64> = events.iter().map(|e| e.serial).collect();
        assert_eq!(serials, [10], "B waits for its EOE or the timeout");
        assert_eq!(events[0].records.len(), 2);
        assert_eq!((stats.late_records, stats.incomplete), (0, 0));
        let (events, stats) = run(&[
            PROCTITLE_B,
            SYSCALL_B,
            SOCKADDR_B,
            "type=EOE msg=audit(1700000000.101:11): ",
        ]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].records.len(), 3, "{:?}", events[0].records);
        assert_eq!((stats.late_records, stats.incomplete), (0, 0));
    }

    #[test]
    fn an_eoe_alone_is_a_late_record_once_its_time_is_past() {
        let later = "type=SYSCALL msg=audit(1700000003.000:12): arch=c000003e syscall=112 success=yes exit=5 pid=7";
        let (events, stats) = run(&[EOE_A, later]);
        assert!(events.is_empty());
        assert_eq!((stats.late_records, stats.events), (1, 0));
    }

    #[test]
    fn incomplete_event_expires_by_record_time() {
        let later = "type=SYSCALL msg=audit(1700000003.000:12): arch=c000003e syscall=112 success=yes exit=5 pid=7";
        let (events, stats) = run(&[SYSCALL_A, later]);
        assert_eq!(events.len(), 1, "only the stale event is out");
        assert_eq!(events[0].serial, 10);
        assert_eq!(stats.incomplete, 1);
    }

    /// `date -s` 60 s back between two events: the event after the step has
    /// an earlier record time than everything before it. It must still
    /// collect its records (expiry measured against the newest time before
    /// the step would close it at its first record, losing its SOCKADDR),
    /// and on the steady timeline it comes after the step, not before.
    #[test]
    fn a_clock_step_back_neither_expires_nor_reorders_the_events_after_it() {
        let (events, stats) = run(&[
            "type=SYSCALL msg=audit(1700000100.000:20): arch=c000003e syscall=227 success=yes exit=0 pid=8",
            "type=TIME_INJOFFSET msg=audit(1700000100.000:20): sec=-61 nsec=999000000",
            "type=PROCTITLE msg=audit(1700000100.000:20): proctitle=6100",
            "type=EOE msg=audit(1700000100.000:20): ",
            "type=SYSCALL msg=audit(1700000040.005:21): arch=c000003e syscall=42 success=no exit=-115 pid=9",
            "type=SOCKADDR msg=audit(1700000040.005:21): saddr=02000050C0A80001",
            "type=PROCTITLE msg=audit(1700000040.005:21): proctitle=6200",
        ]);
        let serials: Vec<u64> = events.iter().map(|e| e.serial).collect();
        assert_eq!(serials, [20, 21]);
        assert_eq!(stats.incomplete, 0);
        assert_eq!(events[1].records.len(), 3, "{:?}", events[1].records);
        assert_eq!(events[0].clock_shift_ms, 0, "stamped before its own step");
        assert_eq!(events[1].clock_shift_ms, -61_000 + 999);
        assert_eq!(events[0].steady_millis(), 1_700_000_100_000);
        assert_eq!(events[1].steady_millis(), 1_700_000_100_006);
    }

    /// A step forward (an hour) must not expire, at once, an event that was
    /// stamped before it and is still collecting records.
    #[test]
    fn a_clock_step_forward_leaves_open_events_open() {
        let (events, stats) = run(&[
            SYSCALL_B,
            "type=SYSCALL msg=audit(1700000000.102:12): arch=c000003e syscall=227 success=yes exit=0 pid=8",
            "type=TIME_INJOFFSET msg=audit(1700000000.102:12): sec=3600 nsec=0",
            "type=EOE msg=audit(1700000000.102:12): ",
            "type=SYSCALL msg=audit(1700003600.200:13): arch=c000003e syscall=112 success=yes exit=5 pid=7",
            SOCKADDR_B,
            PROCTITLE_B,
        ]);
        let serials: Vec<u64> = events.iter().map(|e| e.serial).collect();
        assert_eq!(serials, [12, 11], "13 still waits for its end");
        assert_eq!(stats.incomplete, 0);
        assert_eq!(events[1].records.len(), 3);
    }

    #[test]
    fn standalone_records_are_events_at_once() {
        let (events, _) = run(&[
            "type=CONFIG_CHANGE msg=audit(1700000000.100:20): auid=0 ses=1 op=add_rule key=\"audetect-connect\" list=4 res=1",
            "type=USER_START msg=audit(1700000000.100:21): pid=1 uid=0 msg='op=PAM:session_open res=success'",
        ]);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn serial_gaps_are_counted_once_far_behind_and_late_records_fill_them() {
        let mut g = SerialGaps::default();
        for s in [10, 11, 13, 12, 16] {
            g.see(s, 0);
        }
        assert_eq!(g.missing, 0, "14 and 15 may still come");
        g.see(15, 0);
        g.see(16 + GAP_WINDOW + 1, 0);
        assert_eq!(
            g.missing, 1,
            "14 is now far behind; the jump's gap may still fill"
        );
        g.see(17, 0);
        g.see(16 + 3 * GAP_WINDOW, 0);
        // Now every serial more than a window behind 3088 counts, but 17:
        // 14, 18..=1040 and 1042..=2063.
        assert_eq!(g.missing, 1 + 1023 + 1022);
        g.see(5, 0);
        assert_eq!(
            g.newest,
            Some(16 + 3 * GAP_WINDOW),
            "a late record is not news"
        );
        g.see(3_000_000, 0);
        let before = g.missing;
        g.see(7, 0);
        assert_eq!(g.missing, before, "a restarted counter is not a loss");
        assert_eq!(g.newest, Some(7));
    }

    #[test]
    fn a_gap_on_a_quiet_host_is_counted_after_a_while_of_record_time() {
        let mut g = SerialGaps::default();
        g.see(1, 1_000);
        g.see(3, 1_000);
        g.see(4, 2_500);
        assert_eq!(g.missing, 0, "2 may still come");
        g.see(5, 3_001);
        assert_eq!(g.missing, 1);
    }

    #[test]
    fn too_many_open_events_push_out_the_oldest() {
        let mut r = Reassembler::new(2000, 2);
        let mut out = Vec::new();
        for serial in 1..=3 {
            r.push(
                rec(&format!(
                    "type=SYSCALL msg=audit(1700000000.100:{serial}): pid=1"
                )),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].serial, 1);
        r.flush(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(r.stats().incomplete, 3);
    }

    #[test]
    fn events_of_unwanted_calls_are_tracked_but_never_emitted() {
        // Only connect (42) is wanted; A is an execve (59) whose AVC came
        // before its SYSCALL record, as the kernel writes them.
        let mut r = Reassembler::new(2000, 16).only_syscalls(SyscallSet::of_names(&["connect"]));
        let mut out = Vec::new();
        let lines = [
            "type=AVC msg=audit(1700000000.100:10): avc:  denied  { read } for pid=5",
            "type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=59 success=yes exit=0 pid=5",
            "type=PATH msg=audit(1700000000.100:10): item=0 name=\"/bin/sh\"",
            SYSCALL_B,
            PROCTITLE_A,
            EOE_A,
            SOCKADDR_B,
            PROCTITLE_B,
            EOE_A,
        ];
        for l in lines {
            let head = crate::parse::log_line_head(l.as_bytes()).unwrap();
            r.push_head(head, &mut out);
        }
        assert_eq!(out.len(), 1, "only the connect: {out:?}");
        assert_eq!(out[0].serial, 11);
        assert_eq!(out[0].records.len(), 3);
        let stats = r.stats();
        assert_eq!((stats.events, stats.ignored), (2, 1));
        assert_eq!(stats.late_records, 0, "the execve's EOE is no late record");
        assert_eq!(stats.incomplete, 0);
    }
}
