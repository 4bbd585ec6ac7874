//! Events → ECS-shaped documents: TCP connection attempts and successful
//! setsid() calls, each tied to a process entity (boot id, pid, start time).

use std::borrow::Cow;

use serde::Serialize;

use crate::parse::{decode_sockaddr, types, Record, SockAddr, Timestamp};
use crate::process::proc_text::split_args;
use crate::process::{ProcSource, Tracker, Transport};
use crate::reassemble::Event;
use crate::syscalls::{self, SyscallSet};
use crate::timefmt;

/// socketcall's call number for connect.
const SYS_CONNECT: u64 = 3;

/// The system calls the built-in rule needs, whatever the arch numbered them;
/// the numbers come from the one syscall table, in `syscalls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syscall {
    Connect,
    Socketcall,
    Setsid,
}

const SYSCALL_NAMES: [&str; 3] = ["connect", "socketcall", "setsid"];

fn syscall(arch: u64, nr: u64) -> Option<Syscall> {
    let arch = u32::try_from(arch).ok()?;
    match syscalls::name(arch, u32::try_from(nr).ok()?)? {
        "connect" => Some(Syscall::Connect),
        "socketcall" => Some(Syscall::Socketcall),
        "setsid" => Some(Syscall::Setsid),
        _ => None,
    }
}

/// The system calls whose events can become ECS events, on every arch: the
/// others' events can be dropped before their records are parsed.
pub fn wanted_syscalls() -> SyscallSet {
    SyscallSet::of_names(&SYSCALL_NAMES)
}

/// connect() results after which the kernel had sent a SYN: Elastic's sensor
/// fires when tcp_v4_connect/tcp_v6_connect returns 0, and these are the
/// outcomes that follow it: established, in progress, refused by the peer,
/// timed out, reset, interrupted while waiting (EINTR, or ERESTARTSYS as
/// audit sees it before a restart). EHOSTUNREACH is an over-approximation
/// kept on purpose: an ICMP error after the SYN gives it, and so does an
/// `unreachable` route before any SYN; audit cannot tell them apart, and a
/// missed reverse shell costs more than a rare extra first stage.
const ATTEMPT_EXITS: [i64; 8] = [0, -115, -111, -110, -104, -4, -512, -113];

/// An ECS document for one detected-upon event. Open to more categories and
/// actions as audetect learns them; the detection stage reads it, not records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsEvent {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: EventFields,
    pub process: ProcessFields,
    pub user: UserFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    pub audetect: AuditFields,
    /// Record time, which the detection stage measures spans in.
    #[serde(skip)]
    pub time: Timestamp,
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
    pub entity_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub parent: ParentFields,
    /// The command line of the PROCTITLE record, split at its NULs; None
    /// when the event had none. Not serialized, like the two below: the
    /// alert's events hold what the SYSCALL record said, and these reach
    /// the alert through the snapshot, where /proc cannot give its own.
    #[serde(skip)]
    pub args: Option<Vec<String>>,
    /// The kernel keeps at most 128 bytes of the command line.
    #[serde(skip)]
    pub args_truncated: bool,
    /// The CWD record's directory.
    #[serde(skip)]
    pub working_directory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentFields {
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserFields {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    pub ip: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    pub transport: &'static str,
    #[serde(rename = "type")]
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
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizeStats {
    pub connect_attempts: u64,
    pub session_changes: u64,
    /// connect() calls on UDP sockets, or that never sent a SYN.
    pub connects_ignored: u64,
    /// Events whose process had already exited when we looked.
    pub process_gone: u64,
    /// Events whose entity id had to use the fallback form.
    pub entity_fallbacks: u64,
    /// Events of our syscalls that lacked a record or field they need.
    pub malformed_events: u64,
}

pub struct Normalizer<P: ProcSource> {
    proc: P,
    /// Which process each record's pid named: entity ids.
    processes: Tracker<P>,
    stats: NormalizeStats,
}

impl<P: ProcSource> Normalizer<P> {
    pub fn new(proc: P) -> Self {
        Normalizer {
            processes: Tracker::new(&proc),
            proc,
            stats: NormalizeStats::default(),
        }
    }

    pub fn stats(&self) -> NormalizeStats {
        let tracked = self.processes.stats();
        NormalizeStats {
            process_gone: tracked.process_gone,
            entity_fallbacks: tracked.entity_fallbacks,
            ..self.stats
        }
    }

    /// Turns one audit event into an ECS event, if it is one the rule uses.
    pub fn normalize(&mut self, event: &Event) -> Option<EcsEvent> {
        let sc = event.record(types::SYSCALL)?;
        let arch = sc.get("arch")?.hex()?;
        let call = syscall(arch, sc.get("syscall")?.decimal()?)?;
        let result = match call {
            Syscall::Setsid => self.session_change(event, sc),
            Syscall::Connect | Syscall::Socketcall => self.connection(event, sc, call),
        };
        match result {
            Ok(ev) => ev,
            Err(Malformed) => {
                self.stats.malformed_events += 1;
                None
            }
        }
    }

    fn session_change(
        &mut self,
        event: &Event,
        sc: &Record,
    ) -> Result<Option<EcsEvent>, Malformed> {
        if sc.get("success").map(|v| v.raw) != Some(b"yes") {
            return Ok(None);
        }
        let exit = sc.get("exit").and_then(|v| v.signed()).unwrap_or(0);
        self.stats.session_changes += 1;
        let common = self.common(event, sc)?;
        Ok(Some(common.build(
            EventFields {
                kind: "event",
                category: vec!["process"],
                kind_of_change: vec!["change"],
                action: "session_id_change",
                outcome: "success",
            },
            "setsid",
            exit,
            None,
            None,
        )))
    }

    fn connection(
        &mut self,
        event: &Event,
        sc: &Record,
        call: Syscall,
    ) -> Result<Option<EcsEvent>, Malformed> {
        let fd = match call {
            Syscall::Socketcall => {
                if sc.get("a0").and_then(|v| v.hex()) != Some(SYS_CONNECT) {
                    return Ok(None);
                }
                // socketcall's own arguments live in its SOCKETCALL record.
                event
                    .record(types::SOCKETCALL)
                    .and_then(|r| r.get("a0"))
                    .and_then(|v| v.hex())
            }
            _ => sc.get("a0").and_then(|v| v.hex()),
        };
        let Some(addr) = event
            .record(types::SOCKADDR)
            .and_then(|r| r.get("saddr"))
            .and_then(|v| crate::parse::decode_hex(v.raw))
            .and_then(|b| decode_sockaddr(&b))
        else {
            // No address copied in: not a connection to anything.
            return Ok(None);
        };
        let (ip, port, ip_version) = match &addr {
            SockAddr::Inet(a) => (a.ip().to_string(), a.port(), "ipv4"),
            SockAddr::Inet6(a) => (a.ip().to_string(), a.port(), "ipv6"),
            _ => return Ok(None),
        };
        let exit = sc.get("exit").and_then(|v| v.signed()).ok_or(Malformed)?;
        if !ATTEMPT_EXITS.contains(&exit) {
            self.stats.connects_ignored += 1;
            return Ok(None);
        }
        let pid = sc.get("pid").and_then(|v| v.decimal()).ok_or(Malformed)? as u32;
        if let Some(fd) = fd.and_then(|f| u32::try_from(f).ok()) {
            // Only a TCP connect sends anything; when the socket can no
            // longer be looked at, the connect counts as an attempt.
            if let Ok(Transport::Other(_)) = self.proc.socket_transport(pid, fd) {
                self.stats.connects_ignored += 1;
                return Ok(None);
            }
        }
        self.stats.connect_attempts += 1;
        let common = self.common(event, sc)?;
        let syscall = if call == Syscall::Socketcall {
            "socketcall"
        } else {
            "connect"
        };
        Ok(Some(common.build(
            EventFields {
                kind: "event",
                category: vec!["network"],
                kind_of_change: vec!["start"],
                action: "connection_attempted",
                outcome: if exit == 0 { "success" } else { "unknown" },
            },
            syscall,
            exit,
            Some(Destination { ip, port }),
            Some(Network {
                transport: "tcp",
                ip_version,
                direction: "egress",
            }),
        )))
    }

    fn common(&mut self, event: &Event, sc: &Record) -> Result<Common, Malformed> {
        let pid = sc.get("pid").and_then(|v| v.decimal()).ok_or(Malformed)? as u32;
        let ppid = sc.get("ppid").and_then(|v| v.decimal()).unwrap_or(0) as u32;
        let euid = sc.get("euid").and_then(|v| v.decimal()).ok_or(Malformed)?;
        let executable = sc
            .get("exe")
            .and_then(|v| v.untrusted())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let name = executable
            .as_deref()
            .map(|e| e.rsplit('/').next().unwrap_or(e).to_owned());
        let ses = sc
            .get("ses")
            .map_or(Cow::Borrowed(""), |v| String::from_utf8_lossy(v.raw));
        let (entity_id, entity_source) = self.processes.entity(&self.proc, pid, &ses, event.time);
        let title = untrusted(event, types::PROCTITLE, "proctitle");
        let args = title.as_deref().map(split_args).filter(|a| !a.is_empty());
        let args_truncated = args.is_some() && title.is_some_and(|t| t.len() >= PROCTITLE_MAX);
        let working_directory = untrusted(event, types::CWD, "cwd")
            .map(|cwd| String::from_utf8_lossy(&cwd).into_owned());
        Ok(Common {
            time: event.time,
            serial: event.serial,
            process: ProcessFields {
                pid,
                entity_id: entity_id.to_string(),
                executable,
                name,
                parent: ParentFields { pid: ppid },
                args,
                args_truncated,
                working_directory,
            },
            user: UserFields {
                id: euid.to_string(),
            },
            entity_source: entity_source.as_str(),
        })
    }
}

struct Malformed;

/// The most of a command line the kernel puts in a PROCTITLE record.
const PROCTITLE_MAX: usize = 128;

fn untrusted<'e>(event: &'e Event, rtype: u16, field: &str) -> Option<Cow<'e, [u8]>> {
    event.record(rtype)?.get(field)?.untrusted()
}

struct Common {
    time: Timestamp,
    serial: u64,
    process: ProcessFields,
    user: UserFields,
    entity_source: &'static str,
}

impl Common {
    fn build(
        self,
        event: EventFields,
        syscall: &'static str,
        exit: i64,
        destination: Option<Destination>,
        network: Option<Network>,
    ) -> EcsEvent {
        EcsEvent {
            timestamp: timefmt::rfc3339_millis(self.time.sec, u32::from(self.time.msec)),
            event,
            process: self.process,
            user: self.user,
            destination,
            network,
            audetect: AuditFields {
                audit: AuditSource {
                    serial: self.serial,
                    syscall,
                    exit,
                    entity_source: self.entity_source,
                },
            },
            time: self.time,
        }
    }
}

#[cfg(test)]
mod tests;
