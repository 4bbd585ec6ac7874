//! The ECS fields audetect supplies to rules: one table (documented in
//! audetect(8) and the README, checked by tests), the kinds of event, and
//! how each field is read from an event.

use std::borrow::Cow;

use crate::eql::{Event, Schema, Value};
use crate::normalize::EcsEvent;

/// Reads one field of an event.
pub(crate) type Reader = for<'a> fn(&'a EcsEvent) -> Value<'a>;

/// Every field a rule may use without `?`: its name, where it comes from,
/// and how it is read. A query's fields are resolved to their place here
/// when it is compiled, so an event is read by position, not by name.
const TABLE: &[(&str, &str, Reader)] = &[
    (
        "@timestamp",
        "the audit record's time (audit(SECONDS.MILLIS:SERIAL))",
        |e| text(&e.timestamp),
    ),
    (
        "event.kind",
        "always \"event\"",
        |e| text(e.event.kind),
    ),
    (
        "event.category",
        "[\"process\"], [\"network\"] or [\"file\"] (see the kinds of event)",
        |e| list(&e.event.category),
    ),
    (
        "event.type",
        "[\"start\"], [\"end\"], [\"change\"], [\"creation\"] or [\"deletion\"]",
        |e| list(&e.event.kind_of_change),
    ),
    (
        "event.action",
        "the kind of event, as Elastic Defend names it",
        |e| text(e.event.action),
    ),
    (
        "event.outcome",
        "\"success\"; \"unknown\" for a connect that did not return 0",
        |e| text(e.event.outcome),
    ),
    (
        "host.os.type",
        "always \"linux\"",
        |_| text("linux"),
    ),
    (
        "host.id",
        "/etc/machine-id",
        |e| text(&e.host.id),
    ),
    (
        "host.name",
        "the host name (/proc/sys/kernel/hostname)",
        |e| text(&e.host.name),
    ),
    (
        "agent.id",
        "host.id: one audetect per host, as one Elastic agent",
        |e| text(&e.host.id),
    ),
    (
        "process.pid",
        "SYSCALL pid= (the thread-group id); the child's for fork",
        |e| Value::Int(i64::from(e.process.pid)),
    ),
    (
        "process.entity_id",
        "boot id, pid and start time (/proc/PID/stat field 22)",
        |e| text(&e.process.entity_id),
    ),
    (
        "process.executable",
        "SYSCALL exe=, hex-decoded when audit encoded it",
        |e| opt_text(e.process.executable()),
    ),
    (
        "process.name",
        "the executable's file name (not the 15-byte comm)",
        |e| opt_text(e.process.name()),
    ),
    (
        "process.args",
        "EXECVE a0... (exec); else the process table (its exec, or /proc/PID/cmdline), else PROCTITLE",
        |e| args(e.process.image.args.as_ref()),
    ),
    (
        "process.args_count",
        "EXECVE argc=, or the number of process.args",
        |e| int(e.process.image.args_count),
    ),
    (
        "process.command_line",
        "process.args joined by spaces",
        |e| opt_text(e.process.image.command_line.as_deref()),
    ),
    (
        "process.working_directory",
        "the event's CWD record, else the directory at exec",
        |e| opt_text(e.process.working_directory.as_deref()),
    ),
    (
        "process.interactive",
        "SYSCALL tty= names a terminal",
        |e| Value::Bool(e.process.interactive),
    ),
    (
        "process.exit_code",
        "exit_group's status (end)",
        |e| e.process.exit_code.map_or(Value::Null, Value::Int),
    ),
    (
        "process.entry_leader.entry_meta.type",
        "\"container\" when a container runtime (containerd-shim, runc, crun, conmon) started it or an ancestor; else null",
        |e| { opt_text(e.process.entry_leader.as_ref().map(|e| e.entry_meta.kind)) },
    ),
    (
        "process.user.id",
        "SYSCALL euid=",
        |e| text(&e.user.id),
    ),
    (
        "process.group.id",
        "SYSCALL egid=",
        |e| text(&e.group.id),
    ),
    (
        "process.real_user.id",
        "SYSCALL uid=",
        |e| text(&e.user.ext.real.id),
    ),
    (
        "process.real_group.id",
        "SYSCALL gid=",
        |e| text(&e.group.ext.real.id),
    ),
    (
        "process.parent.pid",
        "SYSCALL ppid=; the caller's pid for fork",
        |e| Value::Int(i64::from(e.process.parent.pid)),
    ),
    (
        "process.parent.entity_id",
        "the process that forked it, or its parent when first seen",
        |e| opt_text(e.process.parent.entity_id.as_deref()),
    ),
    (
        "process.parent.executable",
        "the process table's entry of the parent",
        |e| opt_text(parent_image(e).and_then(|i| i.executable.as_deref())),
    ),
    (
        "process.parent.name",
        "the process table's entry of the parent",
        |e| opt_text(parent_image(e).and_then(|i| i.name.as_deref())),
    ),
    (
        "process.parent.args",
        "the process table's entry of the parent",
        |e| args(parent_image(e).and_then(|i| i.args.as_ref())),
    ),
    (
        "process.parent.args_count",
        "the process table's entry of the parent",
        |e| int(parent_image(e).and_then(|i| i.args_count)),
    ),
    (
        "process.parent.command_line",
        "the process table's entry of the parent",
        |e| { opt_text(parent_image(e).and_then(|i| i.command_line.as_deref())) },
    ),
    (
        "process.parent.working_directory",
        "the parent's directory at its exec",
        |e| opt_text(e.process.parent.working_directory.as_deref()),
    ),
    (
        "process.parent.interactive",
        "the parent's latest event",
        |e| e.process.parent.interactive.map_or(Value::Null, Value::Bool),
    ),
    (
        "process.parent.user.id",
        "the parent's effective uid, as last seen",
        |e| opt_text(e.process.parent.user.as_ref().map(|u| u.id.as_str())),
    ),
    (
        "process.parent.group.id",
        "the parent's effective gid, as last seen",
        |e| opt_text(e.process.parent.group.as_ref().map(|g| g.id.as_str())),
    ),
    (
        "user.id",
        "SYSCALL euid=, as a string",
        |e| text(&e.user.id),
    ),
    (
        "user.name",
        "user.id's name in /etc/passwd (live only; local accounts)",
        |e| opt_text(e.user.name.as_deref()),
    ),
    (
        "user.Ext.real.id",
        "SYSCALL uid=",
        |e| text(&e.user.ext.real.id),
    ),
    (
        "group.id",
        "SYSCALL egid=",
        |e| text(&e.group.id),
    ),
    (
        "group.Ext.real.id",
        "SYSCALL gid=",
        |e| text(&e.group.ext.real.id),
    ),
    (
        "file.path",
        "the PATH item created, deleted or renamed to, joined to the CWD when relative",
        |e| opt_text(file(e).map(|f| f.path.as_str())),
    ),
    (
        "file.name",
        "file.path's last component",
        |e| opt_text(file(e).map(|f| f.name.as_str())),
    ),
    (
        "file.extension",
        "what follows the last dot of file.name (none for \".bashrc\")",
        |e| opt_text(file(e).and_then(|f| f.extension.as_deref())),
    ),
    (
        "file.directory",
        "file.path without its last component",
        |e| opt_text(file(e).map(|f| f.directory.as_str())),
    ),
    (
        "file.Ext.original.path",
        "a rename's old path",
        |e| opt_text(original(e).map(|f| f.path.as_str())),
    ),
    (
        "file.Ext.original.name",
        "a rename's old file name",
        |e| opt_text(original(e).map(|f| f.name.as_str())),
    ),
    (
        "file.Ext.original.extension",
        "a rename's old extension",
        |e| { opt_text(original(e).and_then(|f| f.extension.as_deref())) },
    ),
    (
        "source.ip",
        "SOCKADDR saddr= of accept (the peer)",
        |e| opt_text(e.source.as_ref().map(|d| d.ip.as_str())),
    ),
    (
        "source.port",
        "SOCKADDR saddr= of accept (the peer)",
        |e| e.source.as_ref().map_or(Value::Null, |d| Value::Int(i64::from(d.port))),
    ),
    (
        "destination.ip",
        "SOCKADDR saddr= (connect); the accepted socket's own address (accept, live, while its process holds it)",
        |e| opt_text(e.destination.as_ref().map(|d| d.ip.as_str())),
    ),
    (
        "destination.port",
        "SOCKADDR saddr= (connect); the accepted socket's own port (accept, live, while its process holds it)",
        |e| e.destination.as_ref().map_or(Value::Null, |d| Value::Int(i64::from(d.port))),
    ),
    (
        "network.transport",
        "\"tcp\" (connect: the socket's protocol from /proc/PID/fd; accept)",
        |e| opt_text(e.network.as_ref().map(|n| n.transport)),
    ),
    (
        "network.type",
        "\"ipv4\" or \"ipv6\"",
        |e| opt_text(e.network.as_ref().map(|n| n.ip_version).filter(|v| !v.is_empty())),
    ),
    (
        "network.direction",
        "\"egress\" (connect) or \"ingress\" (accept)",
        |e| opt_text(e.network.as_ref().map(|n| n.direction)),
    ),
    (
        "audetect.audit.syscall",
        "the system call's name (\"execve\", \"connect\", ...)",
        |e| text(e.audetect.audit.syscall),
    ),
    (
        "audetect.audit.exit",
        "SYSCALL exit= (connect: 0 or the errno, negated)",
        |e| Value::Int(e.audetect.audit.exit),
    ),
];

/// Every field a rule may use without `?`, and where it comes from.
pub const FIELDS: &[(&str, &str)] = &NAMES_AND_DOCS;

const NAMES_AND_DOCS: [(&str, &str); TABLE.len()] = {
    let mut out = [("", ""); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = (TABLE[i].0, TABLE[i].1);
        i += 1;
    }
    out
};

/// Event categories audetect produces.
pub const CATEGORIES: &[&str] = &["file", "network", "process"];

/// The kinds of event audetect produces, as Elastic Defend names them:
/// event.action, event.category, event.type. A rule whose every event
/// needs some other kind (an action such as "already_running") is skipped.
pub const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("exec", &["process"], &["start"]),
    ("fork", &["process"], &["start"]),
    ("end", &["process"], &["end"]),
    ("uid_change", &["process"], &["change"]),
    ("gid_change", &["process"], &["change"]),
    ("session_id_change", &["process"], &["change"]),
    ("load_module", &["process"], &["start"]),
    ("connection_attempted", &["network"], &["start"]),
    ("connection_accepted", &["network"], &["start"]),
    ("creation", &["file"], &["creation"]),
    ("deletion", &["file"], &["deletion"]),
    ("rename", &["file"], &["change"]),
];

pub fn schema() -> Schema {
    let owned = |items: &[&str]| {
        Value::List(
            items
                .iter()
                .map(|i| Value::Str(Cow::Owned((*i).to_owned())))
                .collect(),
        )
    };
    Schema {
        fields: FIELDS.iter().map(|(name, _)| (*name).to_owned()).collect(),
        categories: CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
        kinds: KINDS
            .iter()
            .map(|(action, category, kind)| {
                vec![
                    (
                        "event.action".to_owned(),
                        Value::Str(Cow::Owned((*action).to_owned())),
                    ),
                    ("event.category".to_owned(), owned(category)),
                    ("event.type".to_owned(), owned(kind)),
                    ("event.kind".to_owned(), Value::Str(Cow::Borrowed("event"))),
                    (
                        "host.os.type".to_owned(),
                        Value::Str(Cow::Borrowed("linux")),
                    ),
                ]
            })
            .collect(),
    }
}

fn text(s: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(s))
}

/// An ECS array. One value is returned as a plain string: the same to any
/// comparison (any element matches), and no allocation per event.
fn list<'a>(items: &[&'a str]) -> Value<'a> {
    match items {
        [one] => text(one),
        _ => Value::List(items.iter().map(|s| text(s)).collect()),
    }
}

fn opt_text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, text)
}

fn int(v: Option<u64>) -> Value<'static> {
    v.and_then(|v| i64::try_from(v).ok())
        .map_or(Value::Null, Value::Int)
}

fn args(a: Option<&Vec<String>>) -> Value<'_> {
    a.map_or(Value::Null, |a| {
        Value::List(a.iter().map(|s| text(s)).collect())
    })
}

fn parent_image(e: &EcsEvent) -> Option<&crate::process::Image> {
    e.process.parent.image.as_deref()
}

fn file(e: &EcsEvent) -> Option<&crate::normalize::FileName> {
    e.file.as_ref().map(|f| &f.name)
}

fn original(e: &EcsEvent) -> Option<&crate::normalize::FileName> {
    e.file
        .as_ref()
        .and_then(|f| f.ext.as_ref())
        .map(|x| &x.original)
}

impl Event for EcsEvent {
    fn field(&self, name: &str) -> Value<'_> {
        match TABLE.iter().find(|(n, _, _)| *n == name) {
            Some((_, _, read)) => read(self),
            // Not for rules (not in the schema), but read by name.
            None => match name {
                "audetect.audit.serial" => {
                    i64::try_from(self.audetect.audit.serial).map_or(Value::Null, Value::Int)
                }
                "audetect.audit.entity_source" => text(self.audetect.audit.entity_source),
                _ => Value::Null,
            },
        }
    }

    /// The schema's fields are the table's, in its order; a name that is
    /// not at `index` (a query compiled against another schema) is looked up.
    fn field_at(&self, index: usize, name: &str) -> Value<'_> {
        match TABLE.get(index) {
            Some((n, _, read)) if *n == name => read(self),
            _ => self.field(name),
        }
    }

    fn ordinal(&self) -> (u64, u64) {
        (self.time.as_millis(), self.audetect.audit.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_is_supplied_by_some_event() {
        let scenarios = crate::testkit::scenario_ecs();
        let kinds = crate::testkit::kinds_ecs();
        assert!(scenarios.len() > 2 && kinds.len() > 10);
        let ecs: Vec<&EcsEvent> = scenarios.iter().chain(kinds).collect();
        // Live only (replay has no passwd of the logged host), and only in
        // containers, which the fixtures have none of: normalize's tests
        // check them with a fake passwd and a made-up container runtime.
        let live_only = ["user.name", "process.entry_leader.entry_meta.type"];
        for (name, _) in FIELDS.iter().filter(|(n, _)| !live_only.contains(n)) {
            assert!(
                ecs.iter().any(|e| e.field(name) != Value::Null),
                "{name} is listed but no event supplies it"
            );
        }
        assert_eq!(ecs[0].field("process.env_vars"), Value::Null);
        // By position, as compiled queries read them, the same as by name.
        let schema = schema();
        for e in &ecs {
            for (i, name) in schema.fields.iter().enumerate() {
                assert_eq!(e.field_at(i, name), e.field(name), "{name}");
                assert_eq!(e.field_at(i + 1, name), e.field(name), "{name} misplaced");
            }
            assert_eq!(
                e.field_at(usize::MAX, "audetect.audit.serial"),
                e.field("audetect.audit.serial")
            );
        }
        let json = serde_json::to_value(ecs[0]).unwrap();
        assert_eq!(
            ecs[0].field("process.executable"),
            Value::Str(json["process"]["executable"].as_str().unwrap().into())
        );
    }
}
