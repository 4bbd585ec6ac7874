//! The ECS fields audetect supplies to rules: one table (documented in
//! audetect(8) and the README, checked by tests), the kinds of event, and
//! how each field is read from an event.

use std::borrow::Cow;

use crate::eql::{Event, Schema, Value};
use crate::normalize::EcsEvent;

/// Every field a rule may use without `?`, and where it comes from.
pub const FIELDS: &[(&str, &str)] = &[
    (
        "@timestamp",
        "the audit record's time (audit(SECONDS.MILLIS:SERIAL))",
    ),
    ("event.kind", "always \"event\""),
    (
        "event.category",
        "[\"process\"], [\"network\"] or [\"file\"] (see the kinds of event)",
    ),
    (
        "event.type",
        "[\"start\"], [\"end\"], [\"change\"], [\"creation\"] or [\"deletion\"]",
    ),
    ("event.action", "the kind of event, as Elastic Defend names it"),
    (
        "event.outcome",
        "\"success\"; \"unknown\" for a connect that did not return 0",
    ),
    ("host.os.type", "always \"linux\""),
    ("host.id", "/etc/machine-id"),
    ("host.name", "the host name (/proc/sys/kernel/hostname)"),
    (
        "agent.id",
        "host.id: one audetect per host, as one Elastic agent",
    ),
    ("process.pid", "SYSCALL pid= (the thread-group id); the child's for fork"),
    (
        "process.entity_id",
        "boot id, pid and start time (/proc/PID/stat field 22)",
    ),
    (
        "process.executable",
        "SYSCALL exe=, hex-decoded when audit encoded it",
    ),
    (
        "process.name",
        "the executable's file name (not the 15-byte comm)",
    ),
    (
        "process.args",
        "EXECVE a0... (exec); else the process table (its exec, or /proc/PID/cmdline), else PROCTITLE",
    ),
    ("process.args_count", "EXECVE argc=, or the number of process.args"),
    ("process.command_line", "process.args joined by spaces"),
    (
        "process.working_directory",
        "the event's CWD record, else the directory at exec",
    ),
    (
        "process.interactive",
        "SYSCALL tty= names a terminal",
    ),
    ("process.exit_code", "exit_group's status (end)"),
    (
        "process.entry_leader.entry_meta.type",
        "\"container\" when a container runtime (containerd-shim, runc, crun, conmon) started it or an ancestor; else null",
    ),
    ("process.user.id", "SYSCALL euid="),
    ("process.group.id", "SYSCALL egid="),
    ("process.real_user.id", "SYSCALL uid="),
    ("process.real_group.id", "SYSCALL gid="),
    ("process.parent.pid", "SYSCALL ppid=; the caller's pid for fork"),
    (
        "process.parent.entity_id",
        "the process that forked it, or its parent when first seen",
    ),
    ("process.parent.executable", "the process table's entry of the parent"),
    ("process.parent.name", "the process table's entry of the parent"),
    ("process.parent.args", "the process table's entry of the parent"),
    ("process.parent.args_count", "the process table's entry of the parent"),
    (
        "process.parent.command_line",
        "the process table's entry of the parent",
    ),
    (
        "process.parent.working_directory",
        "the parent's directory at its exec",
    ),
    ("process.parent.interactive", "the parent's latest event"),
    ("process.parent.user.id", "the parent's effective uid, as last seen"),
    (
        "process.parent.group.id",
        "the parent's effective gid, as last seen",
    ),
    ("user.id", "SYSCALL euid=, as a string"),
    (
        "user.name",
        "user.id's name in /etc/passwd (live only; local accounts)",
    ),
    ("user.Ext.real.id", "SYSCALL uid="),
    ("group.id", "SYSCALL egid="),
    ("group.Ext.real.id", "SYSCALL gid="),
    (
        "file.path",
        "the PATH item created, deleted or renamed to, joined to the CWD when relative",
    ),
    ("file.name", "file.path's last component"),
    (
        "file.extension",
        "what follows the last dot of file.name (none for \".bashrc\")",
    ),
    ("file.directory", "file.path without its last component"),
    ("file.Ext.original.path", "a rename's old path"),
    ("file.Ext.original.name", "a rename's old file name"),
    ("file.Ext.original.extension", "a rename's old extension"),
    ("source.ip", "SOCKADDR saddr= of accept (the peer)"),
    ("source.port", "SOCKADDR saddr= of accept (the peer)"),
    (
        "destination.ip",
        "SOCKADDR saddr= (connect); the accepted socket's own address (accept, live, while its process holds it)",
    ),
    (
        "destination.port",
        "SOCKADDR saddr= (connect); the accepted socket's own port (accept, live, while its process holds it)",
    ),
    (
        "network.transport",
        "\"tcp\" (connect: the socket's protocol from /proc/PID/fd; accept)",
    ),
    ("network.type", "\"ipv4\" or \"ipv6\""),
    (
        "network.direction",
        "\"egress\" (connect) or \"ingress\" (accept)",
    ),
    (
        "audetect.audit.syscall",
        "the system call's name (\"execve\", \"connect\", ...)",
    ),
    (
        "audetect.audit.exit",
        "SYSCALL exit= (connect: 0 or the errno, negated)",
    ),
];

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

impl Event for EcsEvent {
    fn field(&self, name: &str) -> Value<'_> {
        let p = &self.process;
        let parent = &p.parent;
        let pimage = parent.image.as_deref();
        let file = self.file.as_ref().map(|f| &f.name);
        let original = self
            .file
            .as_ref()
            .and_then(|f| f.ext.as_ref())
            .map(|e| &e.original);
        match name {
            "@timestamp" => text(&self.timestamp),
            "event.kind" => text(self.event.kind),
            "event.category" => list(&self.event.category),
            "event.type" => list(&self.event.kind_of_change),
            "event.action" => text(self.event.action),
            "event.outcome" => text(self.event.outcome),
            "host.os.type" => text("linux"),
            "host.id" => text(&self.host.id),
            "host.name" => text(&self.host.name),
            "agent.id" => text(&self.host.id),
            "process.pid" => Value::Int(i64::from(p.pid)),
            "process.entity_id" => text(&p.entity_id),
            "process.executable" => opt_text(p.executable()),
            "process.name" => opt_text(p.name()),
            "process.args" => args(p.image.args.as_ref()),
            "process.args_count" => int(p.image.args_count),
            "process.command_line" => opt_text(p.image.command_line.as_deref()),
            "process.working_directory" => opt_text(p.working_directory.as_deref()),
            "process.interactive" => Value::Bool(p.interactive),
            "process.exit_code" => p.exit_code.map_or(Value::Null, Value::Int),
            "process.entry_leader.entry_meta.type" => {
                opt_text(p.entry_leader.as_ref().map(|e| e.entry_meta.kind))
            }
            "process.user.id" | "user.id" => text(&self.user.id),
            "process.group.id" | "group.id" => text(&self.group.id),
            "user.name" => opt_text(self.user.name.as_deref()),
            "process.real_user.id" | "user.Ext.real.id" => text(&self.user.ext.real.id),
            "process.real_group.id" | "group.Ext.real.id" => text(&self.group.ext.real.id),
            "process.parent.pid" => Value::Int(i64::from(parent.pid)),
            "process.parent.entity_id" => opt_text(parent.entity_id.as_deref()),
            "process.parent.executable" => opt_text(pimage.and_then(|i| i.executable.as_deref())),
            "process.parent.name" => opt_text(pimage.and_then(|i| i.name.as_deref())),
            "process.parent.args" => args(pimage.and_then(|i| i.args.as_ref())),
            "process.parent.args_count" => int(pimage.and_then(|i| i.args_count)),
            "process.parent.command_line" => {
                opt_text(pimage.and_then(|i| i.command_line.as_deref()))
            }
            "process.parent.working_directory" => opt_text(parent.working_directory.as_deref()),
            "process.parent.interactive" => parent.interactive.map_or(Value::Null, Value::Bool),
            "process.parent.user.id" => opt_text(parent.user.as_ref().map(|u| u.id.as_str())),
            "process.parent.group.id" => opt_text(parent.group.as_ref().map(|g| g.id.as_str())),
            "file.path" => opt_text(file.map(|f| f.path.as_str())),
            "file.name" => opt_text(file.map(|f| f.name.as_str())),
            "file.extension" => opt_text(file.and_then(|f| f.extension.as_deref())),
            "file.directory" => opt_text(file.map(|f| f.directory.as_str())),
            "file.Ext.original.path" => opt_text(original.map(|f| f.path.as_str())),
            "file.Ext.original.name" => opt_text(original.map(|f| f.name.as_str())),
            "file.Ext.original.extension" => {
                opt_text(original.and_then(|f| f.extension.as_deref()))
            }
            "source.ip" => opt_text(self.source.as_ref().map(|d| d.ip.as_str())),
            "source.port" => self
                .source
                .as_ref()
                .map_or(Value::Null, |d| Value::Int(i64::from(d.port))),
            "destination.ip" => opt_text(self.destination.as_ref().map(|d| d.ip.as_str())),
            "destination.port" => self
                .destination
                .as_ref()
                .map_or(Value::Null, |d| Value::Int(i64::from(d.port))),
            "network.transport" => opt_text(self.network.as_ref().map(|n| n.transport)),
            "network.type" => opt_text(self.network.as_ref().map(|n| n.ip_version)),
            "network.direction" => opt_text(self.network.as_ref().map(|n| n.direction)),
            "audetect.audit.syscall" => text(self.audetect.audit.syscall),
            "audetect.audit.exit" => Value::Int(self.audetect.audit.exit),
            "audetect.audit.serial" => {
                i64::try_from(self.audetect.audit.serial).map_or(Value::Null, Value::Int)
            }
            "audetect.audit.entity_source" => text(self.audetect.audit.entity_source),
            _ => Value::Null,
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
        let json = serde_json::to_value(ecs[0]).unwrap();
        assert_eq!(
            ecs[0].field("process.executable"),
            Value::Str(json["process"]["executable"].as_str().unwrap().into())
        );
    }
}
