//! The process table: what each process entity runs (executable, argv,
//! directory), who its parent is and as whom it runs, fed by exec, fork and
//! exit events and seeded from /proc, so that a parent's command line is
//! known after the parent has exited or changed. Bounded; expiry by record time.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::entity::EntityId;

/// Entries at once unless the config says otherwise (`[detection]
/// max_processes`); past the bound, exited entries go first, then the half of
/// the rest seen least recently (one procfs read re-learns a live process).
/// A host runs a few thousand processes, and exited ones leave within
/// EXITED_TTL_MS; 14,336 is 7/8 of 16,384, where the map would double.
pub const DEFAULT_MAX_ENTRIES: usize = 14_336;
/// Bytes of argv and paths held across all entries.
pub const MAX_BYTES: usize = 64 << 20;
/// How long (record time, ms) an exited process stays known, for its own
/// records that arrive late. Its children keep its image themselves, so at
/// thousands of execs a second the table holds seconds of dead processes,
/// not minutes.
pub const EXITED_TTL_MS: u64 = 5_000;
/// How often (record time, ms) exited entries are swept.
const SWEEP_MS: u64 = 1_000;

/// At most this many arguments are kept of one command line...
pub const MAX_ARGS: usize = 1_024;
/// ...and at most this many bytes of them in all. The kernel lets argv
/// reach 2 MiB or more; a rule tests the first few arguments.
pub const MAX_ARGS_BYTES: usize = 32 << 10;
/// The longest path the kernel resolves; an argv[0] longer is no path.
const PATH_MAX: usize = 4096;

/// One program as a process runs it: what exec gave it. Serialized as the
/// ECS process fields it gives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// The executable's file name, as Elastic Defend names processes (not
    /// the 15-byte comm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kept within MAX_ARGS and MAX_ARGS_BYTES.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// How many arguments there were, kept or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<u64>,
    /// Some arguments (or the end of one) were not kept.
    #[serde(skip)]
    pub args_truncated: bool,
    /// The arguments joined by spaces, as Defend writes process.command_line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Where it was when it ran exec (or was read); an event's own CWD
    /// record says where it is now.
    #[serde(skip)]
    pub working_directory: Option<String>,
    /// The args are a PROCTITLE record's (replay, or a process never seen
    /// alive): a later event's PROCTITLE is as good, and fresher.
    #[serde(skip)]
    pub from_title: bool,
}

impl Image {
    /// An image from what exec or /proc gave; `count` is the argc the kernel
    /// reported when that is more than the arguments at hand.
    pub fn new(
        executable: Option<String>,
        args: Option<Vec<String>>,
        count: Option<u64>,
        truncated: bool,
        working_directory: Option<String>,
    ) -> Image {
        let name = executable.as_deref().map(base_name).map(str::to_owned);
        let (args, cut) = match args {
            Some(a) => {
                let (a, cut) = bound_args(a);
                (Some(a), cut)
            }
            None => (None, false),
        };
        let args_count = count.or_else(|| args.as_ref().map(|a| a.len() as u64));
        let command_line = args.as_ref().map(|a| a.join(" "));
        Image {
            executable,
            name,
            args_truncated: truncated || cut,
            args,
            args_count,
            command_line,
            working_directory,
            from_title: false,
        }
    }

    /// The image with its arguments after the first cut to `max_bytes` in
    /// all (an alert's size cap); None when they already fit. argv[0] stays
    /// whole, up to PATH_MAX: it names the program, and a cut one names
    /// another.
    pub fn within(&self, max_bytes: usize) -> Option<Image> {
        let (first, rest) = self.args.as_ref()?.split_first()?;
        if rest.iter().map(String::len).sum::<usize>() <= max_bytes {
            return None;
        }
        let mut end = first.len().min(PATH_MAX);
        while !first.is_char_boundary(end) {
            end -= 1;
        }
        let mut kept = vec![first[..end].to_owned()];
        let mut left = max_bytes;
        for a in rest {
            if left == 0 {
                break;
            }
            let mut end = a.len().min(left);
            while !a.is_char_boundary(end) {
                end -= 1;
            }
            kept.push(a[..end].to_owned());
            left -= end;
        }
        let mut out = Image::new(
            self.executable.clone(),
            Some(kept),
            self.args_count,
            true,
            self.working_directory.clone(),
        );
        out.from_title = self.from_title;
        Some(out)
    }

    /// Bytes this image holds, for the table's bound.
    pub fn bytes(&self) -> usize {
        let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        s(&self.executable)
            + s(&self.name)
            + s(&self.working_directory)
            + 2 * s(&self.command_line)
            + 64
    }
}

/// Whether a program of this name starts containers' processes: what their
/// children run is in a container (as Elastic's session view decides).
pub fn is_container_runtime(name: &str) -> bool {
    name.starts_with("containerd-shim") || matches!(name, "runc" | "crun" | "conmon")
}

/// The last path component (the whole string when it has no `/`).
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// argv within MAX_ARGS and MAX_ARGS_BYTES: whole arguments while they fit,
/// the last one cut at a character boundary. True when anything was cut.
fn bound_args(mut args: Vec<String>) -> (Vec<String>, bool) {
    let mut cut = false;
    if args.len() > MAX_ARGS {
        args.truncate(MAX_ARGS);
        cut = true;
    }
    let mut left = MAX_ARGS_BYTES;
    for (i, a) in args.iter_mut().enumerate() {
        if a.len() <= left {
            left -= a.len();
            continue;
        }
        let mut end = left;
        while !a.is_char_boundary(end) {
            end -= 1;
        }
        a.truncate(end);
        let keep = i + 1;
        args.truncate(keep);
        return (args, true);
    }
    (args, cut)
}

/// What is known of one process entity.
#[derive(Debug, Clone)]
pub struct Entry {
    pub image: Arc<Image>,
    /// The process that forked it, or its parent as /proc said when it was
    /// first seen.
    pub parent: Option<EntityId>,
    /// What that parent ran when this process was first seen: its fields
    /// outlive the parent's entry.
    pub parent_image: Option<Arc<Image>>,
    pub ppid: u32,
    /// The credentials of its last event (or of /proc): effective and real.
    pub creds: Option<Creds>,
    /// Whether it has a controlling terminal.
    pub interactive: Option<bool>,
    /// Record time (ms) it exited, if it has.
    exited_ms: Option<u64>,
    /// Record time (ms) of its latest event, for eviction.
    seen_ms: u64,
    /// A container runtime started it or an ancestor (Defend's entry
    /// leader of type "container"); learnt from the parent at insertion.
    pub in_container: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

impl Entry {
    pub fn new(image: Arc<Image>, parent: Option<EntityId>, ppid: u32) -> Entry {
        Entry {
            image,
            parent,
            parent_image: None,
            ppid,
            creds: None,
            interactive: None,
            exited_ms: None,
            seen_ms: 0,
            in_container: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries now held.
    pub entries: u64,
    /// Of those, processes that have exited.
    pub exited: u64,
    /// Processes read from /proc at start.
    pub seeded: u64,
    /// Exited processes forgotten after EXITED_TTL_MS.
    pub expired: u64,
    /// Live (or never seen to exit) processes forgotten because the table
    /// was full.
    pub evicted: u64,
    /// Processes running at start that the table had no room for.
    pub not_seeded: u64,
}

/// Every known process entity, by entity id.
#[derive(Debug)]
pub struct ProcessTable {
    entries: HashMap<EntityId, Entry>,
    max_entries: usize,
    bytes: usize,
    swept_ms: u64,
    stats: TableStats,
}

impl Default for ProcessTable {
    fn default() -> Self {
        ProcessTable::with_max_entries(DEFAULT_MAX_ENTRIES)
    }
}

impl ProcessTable {
    pub fn new() -> ProcessTable {
        ProcessTable::default()
    }

    /// A table that holds at most `max_entries` (at least 4).
    pub fn with_max_entries(max_entries: usize) -> ProcessTable {
        ProcessTable {
            entries: HashMap::new(),
            max_entries: max_entries.max(4),
            bytes: 0,
            swept_ms: 0,
            stats: TableStats::default(),
        }
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Changes the bound; a table over it makes room at its next insertion.
    pub fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries.max(4);
    }

    /// Processes that could not be seeded (the table was full).
    pub fn not_seeded(&mut self, n: usize) {
        self.stats.not_seeded += n as u64;
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            entries: self.entries.len() as u64,
            exited: self
                .entries
                .values()
                .filter(|e| e.exited_ms.is_some())
                .count() as u64,
            ..self.stats
        }
    }

    pub fn get(&self, id: &EntityId) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn get_mut(&mut self, id: &EntityId) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    /// Notes that `id` was seen at `now_ms` (eviction spares the recent).
    pub fn touch(&mut self, id: &EntityId, now_ms: u64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.seen_ms = now_ms;
        }
    }

    /// A process learnt at start (from /proc): counted as seeded.
    pub fn seed(&mut self, id: EntityId, entry: Entry) {
        self.stats.seeded += 1;
        self.insert(id, entry, 0);
    }

    /// Adds or replaces what is known of `id`.
    pub fn insert(&mut self, id: EntityId, mut entry: Entry, now_ms: u64) {
        entry.seen_ms = now_ms;
        if let Some(parent) = entry.parent.as_ref().and_then(|p| self.entries.get(p)) {
            entry.in_container |= parent.in_container
                || parent
                    .image
                    .name
                    .as_deref()
                    .is_some_and(is_container_runtime);
        }
        self.sweep(now_ms);
        if !self.entries.contains_key(&id)
            && (self.entries.len() >= self.max_entries || self.bytes >= MAX_BYTES)
        {
            self.make_room();
        }
        self.bytes += entry.image.bytes();
        if let Some(old) = self.entries.insert(id, entry) {
            self.bytes = self.bytes.saturating_sub(old.image.bytes());
        }
    }

    /// `id` ran exec: its new image; its parent stays.
    pub fn exec(&mut self, id: &EntityId, image: Arc<Image>, now_ms: u64) -> bool {
        let Some(e) = self.entries.get_mut(id) else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(e.image.bytes()) + image.bytes();
        e.image = image;
        e.exited_ms = None;
        self.sweep(now_ms);
        true
    }

    /// `id` exited at `now_ms`: kept EXITED_TTL_MS for late lookups.
    pub fn exit(&mut self, id: &EntityId, now_ms: u64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.exited_ms = Some(now_ms);
        }
        self.sweep(now_ms);
    }

    /// Forgets exited processes past their time, at most once per SWEEP_MS.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms < self.swept_ms.saturating_add(SWEEP_MS) {
            return;
        }
        self.swept_ms = now_ms;
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = e
                .exited_ms
                .is_none_or(|t| t.saturating_add(EXITED_TTL_MS) > now_ms);
            if !keep {
                freed += e.image.bytes();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        self.stats.expired += (before - self.entries.len()) as u64;
    }

    /// Full: exited processes go first; if that is not enough, the half
    /// seen least recently.
    fn make_room(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.exited_ms.is_none());
        self.stats.expired += (before - self.entries.len()) as u64;
        if self.entries.len() >= self.max_entries * 3 / 4 || self.bytes_held() >= MAX_BYTES * 3 / 4
        {
            let mut seen: Vec<u64> = self.entries.values().map(|e| e.seen_ms).collect();
            let mid = seen.len() / 2;
            let (_, &mut cutoff, _) = seen.select_nth_unstable(mid);
            let before = self.entries.len();
            // Ties at the cutoff go too, so at least half goes.
            self.entries.retain(|_, e| e.seen_ms > cutoff);
            self.stats.evicted += (before - self.entries.len()) as u64;
        }
        self.bytes = self.bytes_held();
    }

    fn bytes_held(&self) -> usize {
        self.entries.values().map(|e| e.image.bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pid: u32) -> EntityId {
        EntityId::new("b", pid, u64::from(pid))
    }

    fn image(exe: &str) -> Arc<Image> {
        Arc::new(Image::new(
            Some(exe.into()),
            Some(vec![exe.into(), "-c".into()]),
            None,
            false,
            None,
        ))
    }

    #[test]
    fn an_image_is_named_after_its_executable_and_joins_its_args() {
        let i = image("/usr/bin/python3");
        assert_eq!(i.name.as_deref(), Some("python3"));
        assert_eq!(i.command_line.as_deref(), Some("/usr/bin/python3 -c"));
        assert_eq!(i.args_count, Some(2));
        assert!(!i.args_truncated);
    }

    #[test]
    fn long_command_lines_are_kept_within_bounds_and_say_so() {
        let many: Vec<String> = (0..10_000).map(|i| format!("arg{i}")).collect();
        let i = Image::new(None, Some(many), Some(10_000), false, None);
        assert_eq!(i.args.as_ref().map(Vec::len), Some(MAX_ARGS));
        assert_eq!(i.args_count, Some(10_000));
        assert!(i.args_truncated);
        let huge = vec!["x".into(), "é".repeat(MAX_ARGS_BYTES)];
        let i = Image::new(None, Some(huge), None, false, None);
        let kept: usize = i.args.as_ref().unwrap().iter().map(String::len).sum();
        assert!(kept <= MAX_ARGS_BYTES && kept > MAX_ARGS_BYTES - 4);
        assert_eq!(i.args_count, Some(2));
        assert!(i.args_truncated);
    }

    #[test]
    fn a_cut_for_an_alert_keeps_the_program_whole() {
        let program = format!("/{}/actor", "d".repeat(60));
        let args = vec![program.clone(), "x".repeat(1000), "tail".into()];
        let i = Image::new(None, Some(args), Some(3), false, None);
        let cut = i.within(16).expect("over 16 bytes");
        let kept = cut.args.as_ref().expect("args");
        assert_eq!(kept[0], program);
        assert_eq!(kept[1].len(), 16);
        assert_eq!(kept.len(), 2);
        assert!(cut.args_truncated);
        assert!(i.within(2000).is_none());
    }

    #[test]
    fn exited_processes_are_kept_for_a_while_of_record_time_then_forgotten() {
        let mut t = ProcessTable::new();
        t.insert(id(1), Entry::new(image("/bin/sh"), None, 0), 0);
        t.insert(id(2), Entry::new(image("/bin/sh"), Some(id(1)), 1), 0);
        t.exit(&id(1), 10_000);
        assert!(t.get(&id(1)).is_some());
        assert_eq!(t.stats().exited, 1);
        t.insert(
            id(3),
            Entry::new(image("/bin/ls"), Some(id(2)), 2),
            10_000 + EXITED_TTL_MS,
        );
        assert!(t.get(&id(1)).is_none());
        assert!(t.get(&id(2)).is_some());
        assert_eq!(t.stats().expired, 1);
        assert_eq!(t.stats().entries, 2);
    }

    #[test]
    fn exec_replaces_the_image_and_keeps_the_parent() {
        let mut t = ProcessTable::new();
        t.insert(id(2), Entry::new(image("/bin/sh"), Some(id(1)), 1), 0);
        assert!(t.exec(&id(2), image("/usr/bin/curl"), 5));
        let e = t.get(&id(2)).unwrap();
        assert_eq!(e.image.name.as_deref(), Some("curl"));
        assert_eq!(e.parent, Some(id(1)));
        assert!(!t.exec(&id(9), image("/bin/true"), 5), "unknown");
    }

    #[test]
    fn a_full_table_drops_exited_entries_first() {
        let mut t = ProcessTable::new();
        for pid in 0..DEFAULT_MAX_ENTRIES as u32 {
            t.insert(id(pid), Entry::new(image("/bin/sh"), None, 0), 0);
        }
        for pid in 0..DEFAULT_MAX_ENTRIES as u32 / 2 {
            t.exit(&id(pid), 0);
        }
        t.insert(
            id(DEFAULT_MAX_ENTRIES as u32),
            Entry::new(image("/bin/sh"), None, 0),
            0,
        );
        assert_eq!(t.stats().entries, DEFAULT_MAX_ENTRIES as u64 / 2 + 1);
        assert!(
            t.get(&id(DEFAULT_MAX_ENTRIES as u32 - 1)).is_some(),
            "live kept"
        );
        assert_eq!(t.stats().evicted, 0);
    }

    #[test]
    fn a_configured_bound_is_where_the_table_makes_room() {
        let mut t = ProcessTable::with_max_entries(2048);
        for pid in 0..2048 {
            t.insert(
                id(pid),
                Entry::new(image("/bin/sh"), None, 0),
                pid as u64 / 8,
            );
        }
        assert_eq!((t.stats().entries, t.stats().evicted), (2048, 0));
        t.insert(id(2048), Entry::new(image("/bin/sh"), None, 0), 300);
        let s = t.stats();
        assert!(s.entries <= 1025 && s.evicted >= 1023, "{s:?}");
        assert!(t.get(&id(2048)).is_some(), "the newest");
        assert!(t.get(&id(0)).is_none(), "the least recently seen");
    }

    #[test]
    fn a_table_full_of_live_processes_forgets_the_least_recently_seen_half() {
        let mut t = ProcessTable::new();
        for pid in 0..DEFAULT_MAX_ENTRIES as u32 {
            // Record time stays within one sweep: nothing expires.
            t.insert(
                id(pid),
                Entry::new(image("/bin/sh"), None, 0),
                u64::from(pid) / 64,
            );
        }
        t.touch(&id(3), 600);
        t.insert(
            id(DEFAULT_MAX_ENTRIES as u32),
            Entry::new(image("/bin/sh"), None, 0),
            600,
        );
        let s = t.stats();
        assert!(s.entries <= DEFAULT_MAX_ENTRIES as u64 / 2 + 1, "{s:?}");
        assert!(s.evicted >= DEFAULT_MAX_ENTRIES as u64 / 2 - 1, "{s:?}");
        assert!(t.get(&id(3)).is_some(), "seen recently");
        assert!(
            t.get(&id(DEFAULT_MAX_ENTRIES as u32)).is_some(),
            "the newest"
        );
        assert!(t.get(&id(10)).is_none(), "among the oldest");
    }

    #[test]
    fn a_container_runtime_s_descendants_are_in_a_container() {
        let mut t = ProcessTable::new();
        t.insert(
            id(1),
            Entry::new(image("/usr/bin/containerd-shim-runc-v2"), None, 0),
            0,
        );
        t.insert(id(2), Entry::new(image("/bin/sh"), Some(id(1)), 1), 0);
        t.insert(id(3), Entry::new(image("/usr/bin/curl"), Some(id(2)), 2), 0);
        t.insert(id(4), Entry::new(image("/bin/sh"), None, 0), 0);
        t.insert(id(5), Entry::new(image("/usr/bin/curl"), Some(id(4)), 4), 0);
        assert!(
            !t.get(&id(1)).unwrap().in_container,
            "the shim runs on the host"
        );
        assert!(t.get(&id(2)).unwrap().in_container);
        assert!(t.get(&id(3)).unwrap().in_container, "inherited");
        assert!(!t.get(&id(5)).unwrap().in_container);
    }
}
