//! The ECS document of one event, spelt as Elastic Defend spells it (the
//! rule pack queries Defend's data): what the detection stage reads and
//! what an alert's events show.

use std::sync::Arc;

use serde::Serialize;

use crate::parse::Timestamp;
use crate::process::{EntityId, Image};

/// An ECS document for one detected-upon event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsEvent {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: EventFields,
    /// Not written with each event: the alert names its host once.
    #[serde(skip)]
    pub host: Arc<Host>,
    pub process: ProcessFields,
    pub user: UserFields,
    pub group: GroupFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    pub audetect: AuditFields,
    /// Record time with the clock steps seen before it taken out (the
    /// steady timeline), which the detection stage measures spans in.
    #[serde(skip)]
    pub time: Timestamp,
    /// The record's own time in seconds (the wall clock, steps and all):
    /// what /proc's start times, also wall clock, compare with.
    #[serde(skip)]
    pub wall_sec: u64,
}

/// The host the events happen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// /etc/machine-id, as Defend's host.id.
    pub id: String,
    pub name: String,
    pub os: HostOs,
    /// Named by a multi-host log's `node=`, not the host audetect runs on.
    #[serde(skip)]
    pub from_log: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostOs {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl Host {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Host {
        Host {
            id: id.into(),
            name: name.into(),
            os: HostOs { kind: "linux" },
            from_log: false,
        }
    }

    /// The host a log line's `node=` names; its name stands for its id.
    pub fn node(name: &str) -> Host {
        Host {
            from_log: true,
            ..Host::new(name, name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventFields {
    pub kind: &'static str,
    pub category: Vec<&'static str>,
    #[serde(rename = "type")]
    pub kind_of_change: Vec<&'static str>,
    pub action: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessFields {
    pub pid: u32,
    /// The entity, typed, for the code; `entity_id` is its ECS string form,
    /// made once, which rules compare and join on.
    #[serde(skip)]
    pub entity: EntityId,
    pub entity_id: String,
    /// What the process runs: its executable (SYSCALL exe=), argv and
    /// command line, from its exec, the process table or PROCTITLE.
    #[serde(flatten)]
    pub image: Arc<Image>,
    /// The event's own CWD record, else what the table knew.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// It has a controlling terminal (SYSCALL tty= is not "(none)").
    pub interactive: bool,
    /// Set to a container's when a container runtime started it or an
    /// ancestor; audetect does not name other entry leaders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_leader: Option<EntryLeader>,
    /// exit_group's status (end events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub parent: ParentFields,
}

impl ProcessFields {
    pub fn executable(&self) -> Option<&str> {
        self.image.executable.as_deref()
    }

    pub fn name(&self) -> Option<&str> {
        self.image.name.as_deref()
    }
}

/// Defend's session view: the process that entered the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryLeader {
    pub entry_meta: EntryMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryMeta {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl EntryLeader {
    pub fn container() -> EntryLeader {
        EntryLeader {
            entry_meta: EntryMeta { kind: "container" },
        }
    }
}

/// The parent, as the process table knows it; only the pid when it does not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentFields {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub image: Option<Arc<Image>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Id>,
}

impl ParentFields {
    /// Only the pid: what the record says when the table knows nothing.
    pub fn pid_only(pid: u32) -> ParentFields {
        ParentFields {
            pid,
            entity_id: None,
            image: None,
            working_directory: None,
            interactive: None,
            user: None,
            group: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Id {
    pub id: String,
}

/// user.id is the effective uid, as Defend's; the real one is in Ext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserFields {
    pub id: String,
    /// The effective uid's name in /etc/passwd (live only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Ext")]
    pub ext: RealId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupFields {
    pub id: String,
    #[serde(rename = "Ext")]
    pub ext: RealId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealId {
    pub real: Id,
}

impl UserFields {
    pub fn new(effective: u64, real: u64) -> UserFields {
        UserFields {
            id: effective.to_string(),
            name: None,
            ext: RealId {
                real: Id {
                    id: real.to_string(),
                },
            },
        }
    }
}

impl GroupFields {
    pub fn new(effective: u64, real: u64) -> GroupFields {
        GroupFields {
            id: effective.to_string(),
            ext: RealId {
                real: Id {
                    id: real.to_string(),
                },
            },
        }
    }
}

/// A file an event created, deleted or renamed; for a rename, `ext`
/// holds the old name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFields {
    #[serde(flatten)]
    pub name: FileName,
    #[serde(rename = "Ext", skip_serializing_if = "Option::is_none")]
    pub ext: Option<FileExt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileExt {
    pub original: FileName,
}

/// A path and the parts rules test: name, extension, directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileName {
    pub path: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    pub directory: String,
}

impl FileName {
    pub fn new(path: String) -> FileName {
        let (directory, name) = match path.rfind('/') {
            Some(0) => ("/".to_owned(), path[1..].to_owned()),
            Some(i) => (path[..i].to_owned(), path[i + 1..].to_owned()),
            None => (String::new(), path.clone()),
        };
        // "archive.tar.gz" has extension "gz"; ".bashrc" has none.
        let extension = name
            .rfind('.')
            .filter(|&i| i > 0 && i + 1 < name.len())
            .map(|i| name[i + 1..].to_owned());
        FileName {
            path,
            name,
            extension,
            directory,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    pub transport: &'static str,
    /// Empty when the address is not known (an io_uring connect a worker ran).
    #[serde(rename = "type", skip_serializing_if = "str::is_empty")]
    pub ip_version: &'static str,
    pub direction: &'static str,
}

/// What the audit event itself said, for an analyst who wants the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditFields {
    pub audit: AuditSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditSource {
    pub serial: u64,
    pub syscall: &'static str,
    pub exit: i64,
    /// How process.entity_id was obtained: "procfs", "cache" or "fallback".
    pub entity_source: &'static str,
    /// process.args holds fewer arguments (or bytes) than the process had.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_splits_into_directory_name_and_extension() {
        let f = FileName::new("/etc/cron.d/evil.sh".into());
        assert_eq!(
            (f.directory.as_str(), f.name.as_str()),
            ("/etc/cron.d", "evil.sh")
        );
        assert_eq!(f.extension.as_deref(), Some("sh"));
        assert_eq!(FileName::new("/root/.bashrc".into()).extension, None);
        assert_eq!(FileName::new("/x".into()).directory, "/");
        assert_eq!(
            FileName::new("a.tar.gz".into()).extension.as_deref(),
            Some("gz")
        );
        assert_eq!(FileName::new("trailing.".into()).extension, None);
    }
}
