//! A snapshot as alert fields (ECS names where ECS has them, the rest for
//! `audetect.snapshot`), and its shrinking to fit an alert's size cap,
//! lowest-priority parts first. Pure functions over `Snapshot`.

use serde_json::{json, Map, Value};

use super::{Brief, Id, Login, Snapshot, Socket, StdioTarget};

/// The alert fields of one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// ECS fields of the process, for the alert's top-level `process`.
    pub process: Map<String, Value>,
    /// ECS `container.id`.
    pub container_id: Option<String>,
    /// The `audetect.snapshot` object.
    pub snapshot: Map<String, Value>,
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

fn id(i: &Id) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), i.id.to_string().into());
    if let Some(n) = &i.name {
        m.insert("name".into(), n.clone().into());
    }
    Value::Object(m)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// ECS fields of a process of the chain. `full` adds its arguments.
fn brief(b: &Brief, full: bool) -> Value {
    let mut m = Map::new();
    m.insert("pid".into(), b.pid.into());
    m.insert("entity_id".into(), b.entity_id.clone().into());
    if let Some(exe) = &b.executable {
        m.insert("executable".into(), exe.clone().into());
        m.insert("name".into(), basename(exe).into());
    }
    if full {
        if let Some(args) = &b.args {
            m.insert("args".into(), args.clone().into());
            m.insert("command_line".into(), args.join(" ").into());
            if b.args_truncated {
                m.insert("args_truncated".into(), true.into());
            }
        }
    }
    if let Some(start) = &b.start {
        m.insert("start".into(), start.clone().into());
    }
    Value::Object(m)
}

/// An entry of `audetect.snapshot.ancestry`: the ECS names, args but not
/// the command line (the same text again).
fn ancestor(b: &Brief) -> Value {
    let mut v = brief(b, false);
    if let (Value::Object(m), Some(args)) = (&mut v, &b.args) {
        m.insert("args".into(), args.clone().into());
        if b.args_truncated {
            m.insert("args_truncated".into(), true.into());
        }
    }
    v
}

fn socket(s: &Socket) -> Value {
    let mut m = Map::new();
    m.insert("fds".into(), s.fds.clone().into());
    m.insert("inode".into(), s.inode.into());
    m.insert("transport".into(), s.transport.clone().into());
    if let Some(v) = s.ip_version {
        m.insert("type".into(), v.into());
    }
    if let Some(e) = &s.local {
        m.insert("local".into(), json!(e));
    }
    if let Some(e) = &s.remote {
        m.insert("remote".into(), json!(e));
    }
    if let Some(st) = s.state {
        m.insert("state".into(), st.into());
    }
    if let Some(p) = &s.path {
        m.insert("path".into(), p.clone().into());
    }
    Value::Object(m)
}

fn stdio_entry(t: &StdioTarget) -> Value {
    match t {
        StdioTarget::Socket(sock) => {
            let mut m = Map::new();
            m.insert("type".into(), "socket".into());
            m.insert("inode".into(), sock.inode.into());
            m.insert("transport".into(), sock.transport.clone().into());
            if let Some(e) = &sock.remote {
                m.insert("remote".into(), json!(e));
            }
            if let Some(p) = &sock.path {
                m.insert("path".into(), p.clone().into());
            }
            Value::Object(m)
        }
        StdioTarget::Pipe(inode) => json!({"type": "pipe", "inode": inode}),
        StdioTarget::Tty(p) => json!({"type": "tty", "path": p}),
        StdioTarget::Device(p) => json!({"type": "device", "path": p}),
        StdioTarget::File(p) => json!({"type": "file", "path": p}),
        StdioTarget::Other(what) => json!({"type": "other", "target": what}),
        StdioTarget::Closed => json!({"type": "closed"}),
    }
}

fn login(l: &Login) -> Value {
    json!(l)
}

/// ECS `process.*` of the snapshot's process.
fn ecs_process(s: &Snapshot) -> Map<String, Value> {
    let p = &s.process;
    let mut m = Map::new();
    m.insert("pid".into(), p.pid.into());
    if let Some(e) = &p.entity_id {
        m.insert("entity_id".into(), e.clone().into());
    }
    if let Some(exe) = &p.executable {
        m.insert("executable".into(), exe.clone().into());
        m.insert("name".into(), basename(exe).into());
    }
    if let Some(args) = &p.args {
        m.insert("args".into(), args.clone().into());
        m.insert("command_line".into(), args.join(" ").into());
    }
    if let Some(n) = p.args_count {
        m.insert("args_count".into(), n.into());
    }
    if let Some(cwd) = &p.working_directory {
        m.insert("working_directory".into(), cwd.clone().into());
    }
    if let Some(start) = &p.start {
        m.insert("start".into(), start.clone().into());
    }
    if let Some(h) = &p.sha256 {
        m.insert("hash".into(), json!({"sha256": h}));
    }
    for (key, v) in [
        ("user", &p.user),
        ("real_user", &p.real_user),
        ("group", &p.group),
        ("real_group", &p.real_group),
    ] {
        if let Some(i) = v {
            m.insert(key.into(), id(i));
        }
    }
    if let Some((major, minor)) = p.tty {
        let has_tty = (major, minor) != (0, 0);
        if has_tty {
            m.insert(
                "tty".into(),
                json!({"char_device": {"major": major, "minor": minor}}),
            );
        }
        m.insert("interactive".into(), has_tty.into());
    }
    match s.ancestry.first() {
        Some(parent) if Some(parent.pid) == p.ppid => {
            m.insert("parent".into(), brief(parent, true));
        }
        _ => {
            if let Some(ppid) = p.ppid {
                m.insert("parent".into(), json!({"pid": ppid}));
            }
        }
    }
    for (key, leader) in [
        ("session_leader", &s.leaders.session),
        ("group_leader", &s.leaders.group),
        ("entry_leader", &s.leaders.entry),
    ] {
        if let Some(b) = leader {
            m.insert(key.into(), brief(b, false));
        }
    }
    m
}

/// What /proc says of the process that ECS has no field for.
fn extras(s: &Snapshot) -> Map<String, Value> {
    let p = &s.process;
    let mut m = Map::new();
    match &p.auid {
        Some(Some(i)) => {
            m.insert("auid".into(), id(i));
        }
        Some(None) => {
            m.insert("auid".into(), json!({"id": "unset"}));
        }
        None => {}
    }
    match p.audit_session_id {
        Some(Some(n)) => {
            m.insert("audit_session_id".into(), n.into());
        }
        Some(None) => {
            m.insert("audit_session_id".into(), "unset".into());
        }
        None => {}
    }
    if let Some(sid) = p.session_id {
        m.insert("session_id".into(), sid.into());
        m.insert("leads_session".into(), (sid == p.pid).into());
    }
    if let Some(pgid) = p.process_group_id {
        m.insert("process_group_id".into(), pgid.into());
    }
    if let Some(on_host) = p.on_host {
        let word = match on_host {
            super::OnHost::Same => "same",
            super::OnHost::Differs => "another file",
            super::OnHost::Absent => "absent",
        };
        m.insert("executable_on_host".into(), word.into());
    }
    if let Some(name) = p.tty.and_then(|(ma, mi)| tty_name(ma, mi)) {
        m.insert("tty_name".into(), name.into());
    }
    if let Some(st) = p.state {
        m.insert("state".into(), st.to_string().into());
    }
    if let Some(cg) = &p.cgroup {
        m.insert("cgroup".into(), cg.clone().into());
    }
    if p.args_truncated {
        m.insert("args_truncated".into(), true.into());
    }
    if !p.from_audit.is_empty() {
        m.insert("from_audit".into(), p.from_audit.clone().into());
    }
    m
}

/// The alert fields of a snapshot.
pub fn render(s: &Snapshot) -> Rendered {
    if let Some(why) = &s.not_taken {
        return Rendered {
            process: Map::new(),
            container_id: None,
            snapshot: obj(json!({"taken": false, "reason": why})),
        };
    }
    let mut snap = Map::new();
    snap.insert("taken".into(), true.into());
    let mut status = Map::new();
    let mut reasons = Map::new();
    for (name, piece) in s.pieces.iter() {
        status.insert(name.into(), json!(piece.status));
        if let Some(r) = &piece.reason {
            reasons.insert(name.into(), r.clone().into());
        }
    }
    snap.insert("status".into(), status.into());
    if !reasons.is_empty() {
        snap.insert("reasons".into(), reasons.into());
    }
    let extras = extras(s);
    if !extras.is_empty() {
        snap.insert("process".into(), extras.into());
    }
    if let Some(rs) = s.reverse_shell_stdio() {
        snap.insert("reverse_shell_stdio".into(), rs.into());
    }
    if let Some([stdin, stdout, stderr]) = &s.stdio {
        snap.insert(
            "stdio".into(),
            json!({
                "stdin": stdio_entry(stdin),
                "stdout": stdio_entry(stdout),
                "stderr": stdio_entry(stderr),
            }),
        );
    }
    if !s.sockets.is_empty() {
        snap.insert(
            "sockets".into(),
            s.sockets.iter().map(socket).collect::<Vec<_>>().into(),
        );
    }
    if s.sockets_total > s.sockets.len() {
        snap.insert("sockets_total".into(), s.sockets_total.into());
    }
    if !s.ancestry.is_empty() {
        snap.insert(
            "ancestry".into(),
            s.ancestry.iter().map(ancestor).collect::<Vec<_>>().into(),
        );
    }
    if !s.sessions.is_empty() {
        snap.insert(
            "sessions".into(),
            s.sessions.iter().map(login).collect::<Vec<_>>().into(),
        );
    }
    if s.sessions_total > s.sessions.len() {
        snap.insert("sessions_total".into(), s.sessions_total.into());
    }
    snap.insert("truncated".into(), (!s.dropped.is_empty()).into());
    if !s.dropped.is_empty() {
        snap.insert("dropped".into(), s.dropped.clone().into());
    }
    snap.insert("duration_us".into(), s.duration_us.into());
    Rendered {
        process: ecs_process(s),
        container_id: s.process.container_id.clone(),
        snapshot: snap,
    }
}

/// Pops from the end of `v`, keeping `keep`, until about `excess` bytes
/// are freed; returns how many went.
fn drop_tail<T>(v: &mut Vec<T>, keep: usize, excess: usize, size: impl Fn(&T) -> usize) -> usize {
    let mut freed = 0;
    let mut n = 0;
    while v.len() > keep && freed < excess {
        if let Some(x) = v.pop() {
            freed += size(&x) + 1;
            n += 1;
        }
    }
    n
}

/// Arguments are never cut below this many bytes.
const MIN_ARG: usize = 64;

/// Records a drop made for the size cap; a second drop of the same part
/// replaces the first's note, never a bound's (max_sessions...) before it.
fn note(s: &mut Snapshot, part: &str, what: String) {
    let line = format!("{part}: {what} (max_alert_bytes)");
    match s.dropped.last_mut() {
        Some(last)
            if last.starts_with(&format!("{part}:")) && last.ends_with("(max_alert_bytes)") =>
        {
            *last = line
        }
        _ => s.dropped.push(line),
    }
}

/// Drops the next lowest-priority part of the snapshot, about `excess`
/// bytes of it, and says so in `dropped`. False when nothing is left to
/// drop. Order: logins, the chain beyond the parent and grandparent,
/// sockets not on stdio, the ancestors' arguments, the leaders, the
/// process's own arguments (shortened, never to nothing), the rest of the
/// chain, the socket list, stdio, the rest of the process's details. What
/// stays whatever the cap: each piece's status and reason, the
/// reverse-shell finding, the process's identity, user and hash.
pub fn shrink(s: &mut Snapshot, excess: usize) -> bool {
    let excess = excess.max(1);
    if !s.sessions.is_empty() {
        let total = s.sessions.len();
        let n = drop_tail(&mut s.sessions, 0, excess, |l| json_len(&login(l)));
        note(s, "sessions", format!("{n} of {total} dropped"));
        return true;
    }
    if s.ancestry.len() > 2 {
        let total = s.ancestry.len();
        let n = drop_tail(&mut s.ancestry, 2, excess, |b| json_len(&ancestor(b)));
        note(
            s,
            "ancestry",
            format!("the {n} farthest of {total} dropped"),
        );
        return true;
    }
    let on_stdio = |k: &Socket| k.fds.iter().any(|&fd| fd <= 2);
    let stdio_sockets = s.sockets.iter().filter(|k| on_stdio(k)).count();
    if s.sockets.len() > stdio_sockets {
        // stdio's sockets are sorted first.
        let n = drop_tail(&mut s.sockets, stdio_sockets, excess, |k| {
            json_len(&socket(k))
        });
        note(s, "sockets", format!("{n} not on stdio dropped"));
        return true;
    }
    if s.ancestry.iter().any(|a| a.args.is_some()) {
        for a in &mut s.ancestry {
            a.args = None;
            a.args_truncated = false;
        }
        note(s, "ancestry.args", "dropped".into());
        return true;
    }
    let l = &mut s.leaders;
    if l.session.is_some() || l.group.is_some() || l.entry.is_some() {
        *l = super::Leaders::default();
        note(s, "process.*_leader", "dropped".into());
        return true;
    }
    if shorten_args(s, excess) {
        return true;
    }
    if !s.ancestry.is_empty() {
        s.ancestry.clear();
        note(s, "ancestry", "dropped".into());
        return true;
    }
    if !s.sockets.is_empty() {
        s.sockets.clear();
        note(s, "sockets", "dropped".into());
        return true;
    }
    if s.stdio.is_some() {
        s.stdio = None;
        note(s, "stdio", "dropped".into());
        return true;
    }
    let p = &mut s.process;
    let before = p.clone();
    *p = super::ProcessFacts {
        pid: p.pid,
        entity_id: p.entity_id.take(),
        executable: p.executable.take(),
        sha256: p.sha256.take(),
        user: p.user.take(),
        ppid: p.ppid,
        session_id: p.session_id,
        ..super::ProcessFacts::default()
    };
    if *p != before {
        note(s, "process", "details dropped".into());
        return true;
    }
    false
}

/// Keeps the first arguments of the process that fit; a lone argument too
/// long is cut. Each argument is in the alert twice (args, command_line).
fn shorten_args(s: &mut Snapshot, excess: usize) -> bool {
    let Some(args) = &mut s.process.args else {
        return false;
    };
    let before = (args.len(), args.iter().map(|a| a.len()).sum::<usize>());
    let mut freed = 0;
    while args.len() > 1 && freed < excess {
        if let Some(a) = args.pop() {
            freed += 2 * (json_len(&Value::String(a)) + 1);
        }
    }
    if freed < excess {
        if let Some(first) = args.first_mut() {
            if first.len() > MIN_ARG {
                let want = first
                    .len()
                    .saturating_sub((excess - freed) / 2)
                    .max(MIN_ARG);
                let mut cut = want.min(first.len());
                while !first.is_char_boundary(cut) {
                    cut -= 1;
                }
                first.truncate(cut);
            }
        }
    }
    let after_len: usize = args.iter().map(|a| a.len()).sum();
    // Empty arguments free bytes too: a count that changed is a cut.
    if (args.len(), after_len) == before {
        return false;
    }
    let kept = args.len();
    let of = s
        .process
        .args_count
        .map_or(String::new(), |n| format!(" of {n}"));
    s.process.args_truncated = true;
    note(
        s,
        "process.args",
        format!("{kept}{of} kept, {after_len} bytes"),
    );
    true
}

/// A tty_nr as the device name `ps` shows.
pub fn tty_name(major: u32, minor: u32) -> Option<String> {
    match major {
        136..=143 => Some(format!("pts/{}", (major - 136) * 256 + minor)),
        4 if minor < 64 => Some(format!("tty{minor}")),
        4 => Some(format!("ttyS{}", minor - 64)),
        5 if minor == 1 => Some("console".into()),
        _ => None,
    }
}
