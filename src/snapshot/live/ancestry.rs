//! The matched process's ancestry up to pid 1, and the ECS session,
//! group and entry leaders derived from it.

use procfs::process::Process;

use super::super::{Brief, Leaders, Piece, Snapshot, Status, Target};
use super::{
    classify, describe, lossy, read_rel, read_rel_text, split_args, Budget, Found, LiveSnapshotter,
    NotFound, ANCESTOR_ARGS_MAX, UNSET,
};
use crate::process::proc_text::{parse_stat, Stat};
use crate::process::EntityId;

/// One process of the chain, with what the entry leader is derived from.
struct Ancestor {
    brief: Brief,
    audit_session: Option<u32>,
}

impl LiveSnapshotter {
    /// The chain from the parent up to pid 1, and the ECS leaders.
    pub(super) fn ancestry_and_leaders(
        &self,
        target: &Target,
        found: Option<&Found>,
        boot_id: &str,
        budget: &Budget,
        s: &mut Snapshot,
    ) {
        // A process gone before the look still has its parent in the audit
        // record; a parent that started after the record cannot be it.
        let (first, child_start) = match found {
            Some(f) => (f.stat.ppid, f.stat.starttime),
            None => (
                target.ppid,
                target.start_ticks().unwrap_or_else(|| {
                    let since_boot = target
                        .record_sec
                        .saturating_sub(self.btime.unwrap_or(0))
                        .saturating_add(1);
                    since_boot.saturating_mul(self.hz)
                }),
            ),
        };
        let mut chain: Vec<Ancestor> = Vec::new();
        let mut pid = first;
        let mut child_start = child_start;
        let mut piece = Piece::ok();
        while pid != 0 {
            if chain.len() >= self.config.max_ancestors {
                s.dropped.push(format!(
                    "ancestry: stopped after max_ancestors ({})",
                    self.config.max_ancestors
                ));
                piece = Piece::new(
                    Status::Partial,
                    format!(
                        "stopped after max_ancestors ({}) before pid 1",
                        self.config.max_ancestors
                    ),
                );
                break;
            }
            if budget.spent() {
                piece = budget.piece(&format!("stopped at pid {pid}"));
                break;
            }
            match self.brief(pid, boot_id, ANCESTOR_ARGS_MAX) {
                Ok((a, stat)) if stat.starttime <= child_start => {
                    let next = stat.ppid;
                    child_start = stat.starttime;
                    chain.push(a);
                    if pid == 1 {
                        break;
                    }
                    pid = next;
                }
                Ok(_) => {
                    piece = Piece::new(
                        if chain.is_empty() { Status::Gone } else { Status::Partial },
                        format!("pid {pid} now belongs to a process younger than its child: the chain ends there"),
                    );
                    break;
                }
                Err(nf) => {
                    piece = Piece::new(
                        if chain.is_empty() {
                            nf.status
                        } else {
                            Status::Partial
                        },
                        format!("pid {pid}: {}", nf.reason),
                    );
                    break;
                }
            }
        }
        if found.is_none() && piece.status == Status::Ok {
            piece = Piece::new(
                Status::Partial,
                format!(
                    "the process was gone: the chain starts at its parent {} from the audit record",
                    target.ppid
                ),
            );
        }
        s.pieces.ancestry = piece;
        if let Some(f) = found {
            s.leaders = self.leaders(f, target, &chain, boot_id, s);
        }
        s.ancestry = chain.into_iter().map(|a| a.brief).collect();
    }

    /// session_leader (pid = sid), group_leader (pid = pgid), and
    /// entry_leader: the oldest process of the chain in the target's audit
    /// session (the login it came through), or, outside any login, the
    /// process below pid 1 (a service started by init).
    fn leaders(
        &self,
        f: &Found,
        target: &Target,
        chain: &[Ancestor],
        boot_id: &str,
        s: &Snapshot,
    ) -> Leaders {
        let own = Brief {
            pid: target.pid,
            entity_id: target.entity.to_string(),
            executable: s.process.executable.clone(),
            args: None,
            args_truncated: false,
            start: s.process.start.clone(),
        };
        let lookup = |pid: u32| -> Option<Brief> {
            if pid == target.pid {
                return Some(own.clone());
            }
            if let Some(a) = chain.iter().find(|a| a.brief.pid == pid) {
                return Some(Brief {
                    args: None,
                    args_truncated: false,
                    ..a.brief.clone()
                });
            }
            match self.brief(pid, boot_id, 0) {
                // A leader older than the process is the real one; a younger
                // one holds a reused pid.
                Ok((a, stat)) if stat.starttime <= f.stat.starttime => Some(Brief {
                    args: None,
                    ..a.brief
                }),
                _ => None,
            }
        };
        let session = lookup(f.stat.session);
        let group = lookup(f.stat.pgrp);
        let own_session = s.process.audit_session_id.flatten();
        let entry = match own_session {
            Some(ses) => chain
                .iter()
                .rev()
                .find(|a| a.audit_session == Some(ses))
                .map(|a| Brief {
                    args: None,
                    args_truncated: false,
                    ..a.brief.clone()
                })
                .or_else(|| Some(own.clone())),
            None => {
                let reached_init = chain.last().is_some_and(|a| a.brief.pid == 1);
                match chain.len() {
                    _ if !reached_init => None,
                    1 => Some(own.clone()),
                    n => Some(Brief {
                        args: None,
                        args_truncated: false,
                        ..chain[n - 2].brief.clone()
                    }),
                }
            }
        };
        Leaders {
            session,
            group,
            entry,
        }
    }

    /// pid, entity id, executable, arguments and start of one process.
    fn brief(
        &self,
        pid: u32,
        boot_id: &str,
        args_max: usize,
    ) -> Result<(Ancestor, Stat), NotFound> {
        let gone = |status: Status, what: &dyn std::fmt::Display| NotFound {
            status,
            reason: describe(status, what),
        };
        let dir = Process::new_with_root(self.paths.proc.join(pid.to_string()))
            .map_err(|e| gone(classify(&e), &e))?;
        let stat = read_rel_text(&dir, "stat").map_err(|st| gone(st, &"stat"))?;
        let stat =
            parse_stat(&stat).ok_or_else(|| gone(Status::Unavailable, &"stat does not parse"))?;
        let (args, args_truncated) = if args_max == 0 {
            (None, false)
        } else {
            match read_rel(&dir, "cmdline", args_max) {
                Ok((b, more)) if !b.is_empty() => (Some(split_args(&b)), more),
                _ => (None, false),
            }
        };
        let audit_session = read_rel_text(&dir, "sessionid")
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|&s| s != UNSET);
        let brief = Brief {
            pid,
            entity_id: EntityId::new(boot_id, pid, stat.starttime).to_string(),
            executable: dir.exe().ok().map(|p| lossy(&p)),
            args,
            args_truncated,
            start: self.start_date(stat.starttime),
        };
        Ok((
            Ancestor {
                brief,
                audit_session,
            },
            stat,
        ))
    }
}
