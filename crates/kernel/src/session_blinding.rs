//! What in the kernel's audit rules and status can keep the records
//! audetect's own rules ask for from reaching it, with those rules intact:
//! a `never` rule matched first, an exclude rule, a task or filesystem
//! `never` rule, a rate limit. Pure: the listed rules and status in, findings out.

use crate::syscalls;

use super::rules::*;
use super::status::AuditStatus;

/// Record types (linux/audit.h) audetect reads.
const SYSCALL: u16 = 1300;
const PATH: u16 = 1302;
const SOCKETCALL: u16 = 1304;
const CONFIG_CHANGE: u16 = 1305;
const SOCKADDR: u16 = 1306;
const CWD: u16 = 1307;
const EXECVE: u16 = 1309;
const EOE: u16 = 1320;
const PROCTITLE: u16 = 1327;

/// One way the records audetect needs are being suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blinding {
    /// The configuration alert's event.action.
    pub action: &'static str,
    /// The rule (auditctl syntax) or status field that does it: also what
    /// tells one finding from another, so each is reported once.
    pub cause: String,
    /// What it hides: syscall names, record type numbers or names.
    pub hides: Vec<String>,
}

impl Blinding {
    /// One line for the log and the alert's message.
    pub fn message(&self) -> String {
        let what = self.hides.join(", ");
        match self.action {
            ACTION_SYSCALLS => format!(
                "an audit rule keeps the kernel from auditing syscalls audetect's rules need ({what}): {}",
                self.cause
            ),
            ACTION_EXCLUDED => format!(
                "an audit rule drops record types audetect needs ({what}): {}",
                self.cause
            ),
            _ => format!(
                "kernel audit is rate limited ({}): records past the limit are lost",
                self.cause
            ),
        }
    }
}

pub const ACTION_SYSCALLS: &str = "audit_syscalls_suppressed";
pub const ACTION_EXCLUDED: &str = "audit_records_excluded";
pub const ACTION_RATE_LIMIT: &str = "audit_rate_limited";

/// The record types the events of audetect's rules are made of, by the
/// rules' keys (`ruleset`'s EventKind keys).
pub fn needed_types(ours: &[AuditRule]) -> Vec<u16> {
    let mut types = vec![SYSCALL, PROCTITLE, EOE, CONFIG_CHANGE];
    for rule in ours {
        let key = rule.key().unwrap_or_default();
        let more: &[u16] = match key {
            b"audetect-connect" | b"audetect-accept" => &[SOCKADDR, SOCKETCALL],
            b"audetect-exec" => &[EXECVE, PATH, CWD],
            b"audetect-create" | b"audetect-delete" | b"audetect-rename" => &[PATH, CWD],
            _ => &[],
        };
        types.extend_from_slice(more);
    }
    types.sort_unstable();
    types.dedup();
    types
}

/// Everything in `listed` (the kernel's rules, in its order) and `status`
/// that suppresses what `ours` (audetect's rules, installed or adopted)
/// would produce. A rule counts as audetect's only if it is one of `ours`:
/// a key alone, which anyone can give, does not make it so.
pub fn blinding(listed: &[AuditRule], ours: &[AuditRule], status: &AuditStatus) -> Vec<Blinding> {
    let needed = needed_types(ours);
    let mut found = Vec::new();
    for (i, rule) in listed.iter().enumerate() {
        if ours.contains(rule) {
            continue;
        }
        let list = rule.list & 0x07;
        match (list, rule.action) {
            // The first exit rule that matches decides: a `never` one
            // before ours silences what ours would have audited.
            (AUDIT_FILTER_EXIT, AUDIT_NEVER) => {
                let hidden = hidden_syscalls(rule, &listed[i + 1..], ours);
                if !hidden.is_empty() {
                    found.push(Blinding {
                        action: ACTION_SYSCALLS,
                        cause: rule.to_auditctl(),
                        hides: hidden,
                    });
                }
            }
            // A task matched at fork gets no audit context at all: none
            // of its syscalls, nor its children's, reach any rule.
            (AUDIT_FILTER_TASK, AUDIT_NEVER) => found.push(Blinding {
                action: ACTION_SYSCALLS,
                cause: rule.to_auditctl(),
                hides: vec!["every syscall of the tasks it matches".into()],
            }),
            // On the exclude list any match drops the record, `always` or
            // `never` alike.
            (AUDIT_FILTER_EXCLUDE, _) => {
                let types: Vec<String> = needed
                    .iter()
                    .filter(|&&t| excludes(rule, t))
                    .map(|&t| type_name(t))
                    .collect();
                if !types.is_empty() {
                    found.push(Blinding {
                        action: ACTION_EXCLUDED,
                        cause: rule.to_auditctl(),
                        hides: types,
                    });
                }
            }
            // Names on a file system matched by a `never` rule get no
            // PATH record.
            (AUDIT_FILTER_FS, AUDIT_NEVER) if needed.contains(&PATH) => found.push(Blinding {
                action: ACTION_EXCLUDED,
                cause: rule.to_auditctl(),
                hides: vec![type_name(PATH)],
            }),
            _ => {}
        }
    }
    if status.rate_limit != 0 {
        found.push(Blinding {
            action: ACTION_RATE_LIMIT,
            cause: format!("rate_limit={}", status.rate_limit),
            hides: vec![format!("records past {} a second", status.rate_limit)],
        });
    }
    found
}

/// The syscalls (by name, `arch/name`) of our `always` rules listed after
/// the `never` rule `never` that it may match first. Its other conditions
/// (pid, exe, uid...) are taken to match: an attacker picks them to match
/// its own processes.
fn hidden_syscalls(never: &AuditRule, after: &[AuditRule], ours: &[AuditRule]) -> Vec<String> {
    let mut hidden = Vec::new();
    for rule in after
        .iter()
        .filter(|r| r.action == AUDIT_ALWAYS && r.list & 0x07 == AUDIT_FILTER_EXIT)
        .filter(|r| ours.contains(r))
    {
        let arch = rule.arch();
        if let (Some(a), Some(b)) = (never.arch(), arch) {
            if a != b {
                continue;
            }
        }
        for nr in rule.syscalls.iter().filter(|n| never.syscalls.contains(n)) {
            let name = arch
                .and_then(|a| syscalls::name(a, *nr))
                .map_or_else(|| nr.to_string(), str::to_owned);
            let bits = arch
                .and_then(syscalls::arch)
                .map_or_else(String::new, |k| format!("b{}/", k.bits));
            let entry = format!("{bits}{name}");
            if !hidden.contains(&entry) {
                hidden.push(entry);
            }
        }
    }
    hidden
}

/// Whether the exclude rule can drop a record of type `t`: every msgtype
/// condition holds for it (other conditions, on the sender, may hold).
fn excludes(rule: &AuditRule, t: u16) -> bool {
    rule.fields
        .iter()
        .filter(|f| f.field == AUDIT_MSGTYPE)
        .all(|f| match f.value {
            FieldValue::Num(v) => compare(u32::from(t), f.op, v),
            FieldValue::Str(_) => true,
        })
}

/// The kernel's audit_comparator.
fn compare(left: u32, op: u32, right: u32) -> bool {
    match op {
        AUDIT_EQUAL => left == right,
        AUDIT_NOT_EQUAL => left != right,
        AUDIT_LESS_THAN => left < right,
        AUDIT_LESS_THAN_OR_EQUAL => left <= right,
        AUDIT_GREATER_THAN => left > right,
        AUDIT_GREATER_THAN_OR_EQUAL => left >= right,
        AUDIT_BIT_MASK => left & right != 0,
        AUDIT_BIT_TEST => left & right == right,
        _ => true,
    }
}

fn type_name(t: u16) -> String {
    match t {
        SYSCALL => "SYSCALL",
        PATH => "PATH",
        SOCKETCALL => "SOCKETCALL",
        CONFIG_CHANGE => "CONFIG_CHANGE",
        SOCKADDR => "SOCKADDR",
        CWD => "CWD",
        EXECVE => "EXECVE",
        EOE => "EOE",
        PROCTITLE => "PROCTITLE",
        _ => return t.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::audetect_rules;

    fn status() -> AuditStatus {
        AuditStatus::default()
    }

    fn connect_never(arch: u32) -> AuditRule {
        AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_NEVER)
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, arch)
            .with_syscall(42)
    }

    #[test]
    fn our_rules_alone_blind_nothing() {
        let ours = audetect_rules();
        assert_eq!(blinding(&ours, &ours, &status()), vec![]);
    }

    #[test]
    fn a_never_rule_ahead_of_ours_for_a_syscall_we_need_is_found() {
        let ours = audetect_rules();
        let mut listed = vec![connect_never(AUDIT_ARCH_X86_64)];
        listed.extend(ours.iter().cloned());
        let found = blinding(&listed, &ours, &status());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].action, ACTION_SYSCALLS);
        assert_eq!(found[0].hides, ["b64/connect"]);
        assert!(
            found[0].cause.starts_with("-a never,exit"),
            "{}",
            found[0].cause
        );

        // After ours it decides nothing for what ours match.
        let mut after = ours.clone();
        after.push(connect_never(AUDIT_ARCH_X86_64));
        assert_eq!(blinding(&after, &ours, &status()), vec![]);
        // Another arch's syscall 42 (i386's is not connect) is not ours.
        let mut other = vec![connect_never(AUDIT_ARCH_I386)];
        other.extend(ours.iter().cloned());
        assert_eq!(blinding(&other, &ours, &status()), vec![]);
        // With no arch it applies to every arch's number 42.
        let mut any = vec![AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_NEVER).with_syscall(42)];
        any.extend(ours.iter().cloned());
        assert_eq!(blinding(&any, &ours, &status())[0].hides, ["b64/connect"]);
    }

    #[test]
    fn a_rule_with_our_key_is_not_taken_for_ours() {
        let ours = audetect_rules();
        let mut listed = vec![connect_never(AUDIT_ARCH_X86_64).with_str(
            AUDIT_FILTERKEY,
            AUDIT_EQUAL,
            b"audetect-connect",
        )];
        listed.extend(ours.iter().cloned());
        assert_eq!(blinding(&listed, &ours, &status()).len(), 1);
    }

    #[test]
    fn exclude_rules_are_judged_by_the_record_types_they_can_drop() {
        let ours = audetect_rules();
        let exclude = |op, t| {
            AuditRule::new(AUDIT_FILTER_EXCLUDE, AUDIT_ALWAYS).with_num(AUDIT_MSGTYPE, op, t)
        };
        let found = |r: AuditRule| {
            let mut listed = ours.clone();
            listed.push(r);
            blinding(&listed, &ours, &status())
        };
        let syscall = found(exclude(AUDIT_EQUAL, 1300));
        assert_eq!(syscall.len(), 1);
        assert_eq!(syscall[0].action, ACTION_EXCLUDED);
        assert_eq!(syscall[0].hides, ["SYSCALL"]);
        // CWD: no rule of the built-in set needs it.
        assert_eq!(found(exclude(AUDIT_EQUAL, 1307)), vec![]);
        // A range catches what it spans.
        let range = found(exclude(AUDIT_GREATER_THAN_OR_EQUAL, 1306));
        assert_eq!(range[0].hides, ["SOCKADDR", "EOE", "PROCTITLE"]);
        // No msgtype: any record of the processes it names.
        let by_exe = AuditRule::new(AUDIT_FILTER_EXCLUDE, AUDIT_ALWAYS).with_str(
            AUDIT_EXE,
            AUDIT_EQUAL,
            b"/tmp/x",
        );
        assert_eq!(found(by_exe)[0].hides.len(), needed_types(&ours).len());
    }

    #[test]
    fn task_never_rules_and_a_rate_limit_are_found() {
        let ours = audetect_rules();
        let mut listed = vec![AuditRule::new(AUDIT_FILTER_TASK, AUDIT_NEVER)];
        listed.extend(ours.iter().cloned());
        let st = AuditStatus {
            rate_limit: 1,
            ..status()
        };
        let found = blinding(&listed, &ours, &st);
        let actions: Vec<&str> = found.iter().map(|b| b.action).collect();
        assert_eq!(actions, [ACTION_SYSCALLS, ACTION_RATE_LIMIT]);
        assert_eq!(found[1].cause, "rate_limit=1");
        assert!(found[1].message().contains("rate limited"));
    }
}
