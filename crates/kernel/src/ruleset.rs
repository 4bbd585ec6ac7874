//! The audit rules audetect installs: for each kind of event the loaded
//! detection rules need, the in-kernel filters that produce it and drop
//! what no rule can use (audit-rules/audetect.rules is the built-in set).

use super::rules::*;
use crate::syscalls;

/// Every audetect rule's key starts with this; rules keyed so are audetect's.
pub const KEY_PREFIX: &[u8] = b"audetect";
pub const KEY_CONNECT: &[u8] = b"audetect-connect";
pub const KEY_SETSID: &[u8] = b"audetect-setsid";
/// Calls that step the wall clock: their TIME_INJOFFSET record tells how far.
pub const KEY_CLOCK: &[u8] = b"audetect-clock";

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
/// socketcall(2)'s call numbers (linux/net.h SYS_*).
const SYS_CONNECT: u32 = 3;
const SYS_ACCEPT: u32 = 5;
const SYS_ACCEPT4: u32 = 18;
/// O_CREAT (0100 octal) on every arch audetect knows (alpha, sparc and
/// parisc, whose value differs, it does not).
const O_CREAT: u32 = 0o100;
const CLONE_THREAD: u32 = 0x0001_0000;
/// sendto/sendmsg's flag for TCP fast open: the call connects and sends the
/// first data in one go, with no connect() at all (client fast open is on by
/// default, net.ipv4.tcp_fastopen=1).
const MSG_FASTOPEN: u32 = 0x2000_0000;
/// io_uring's connect operation (include/uapi/linux/io_uring.h), the bit the
/// io_uring filter's rule sets in its mask.
pub const IORING_OP_CONNECT: u32 = 16;

/// The kinds of event an audit rule can produce, by the event.action the
/// normalizer gives them. The order is the rules' order within each arch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    ConnectionAttempted,
    ConnectionAccepted,
    SessionIdChange,
    Exec,
    Fork,
    End,
    UidChange,
    GidChange,
    LoadModule,
    Creation,
    Deletion,
    Rename,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::ConnectionAttempted,
        EventKind::ConnectionAccepted,
        EventKind::SessionIdChange,
        EventKind::Exec,
        EventKind::Fork,
        EventKind::End,
        EventKind::UidChange,
        EventKind::GidChange,
        EventKind::LoadModule,
        EventKind::Creation,
        EventKind::Deletion,
        EventKind::Rename,
    ];

    /// Its event.action.
    pub fn action(self) -> &'static str {
        match self {
            EventKind::ConnectionAttempted => "connection_attempted",
            EventKind::ConnectionAccepted => "connection_accepted",
            EventKind::SessionIdChange => "session_id_change",
            EventKind::Exec => "exec",
            EventKind::Fork => "fork",
            EventKind::End => "end",
            EventKind::UidChange => "uid_change",
            EventKind::GidChange => "gid_change",
            EventKind::LoadModule => "load_module",
            EventKind::Creation => "creation",
            EventKind::Deletion => "deletion",
            EventKind::Rename => "rename",
        }
    }

    pub fn from_action(action: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.action() == action)
    }

    /// The key of its rules: records say which kind they were audited for.
    pub fn key(self) -> &'static [u8] {
        match self {
            EventKind::ConnectionAttempted => KEY_CONNECT,
            EventKind::ConnectionAccepted => b"audetect-accept",
            EventKind::SessionIdChange => KEY_SETSID,
            EventKind::Exec => b"audetect-exec",
            EventKind::Fork => b"audetect-fork",
            EventKind::End => b"audetect-exit",
            EventKind::UidChange => b"audetect-uid",
            EventKind::GidChange => b"audetect-gid",
            EventKind::LoadModule => b"audetect-module",
            EventKind::Creation => b"audetect-create",
            EventKind::Deletion => b"audetect-delete",
            EventKind::Rename => b"audetect-rename",
        }
    }

    /// Only a call that succeeded is the event (a failed execve started
    /// nothing). connect counts its attempts, and exit_group never returns.
    fn success_only(self) -> bool {
        !matches!(self, EventKind::ConnectionAttempted | EventKind::End)
    }

    /// Network kinds: only IPv4/IPv6 addresses (see [`audetect_rules`]).
    fn inet_only(self) -> bool {
        matches!(
            self,
            EventKind::ConnectionAttempted | EventKind::ConnectionAccepted
        )
    }

    /// The system calls of this kind on `arch`, grouped by the argument test
    /// they share: one audit rule per group.
    fn groups(self, arch: u32) -> Vec<Group> {
        // i386, ppc64 and s390x keep the socketcall multiplexer beside their
        // own socket calls: a program built against an old libc uses it.
        let multiplexed = syscalls::number(arch, "socketcall").is_some();
        // i386 and AArch32 keep the 16-bit uid calls beside the 32-bit ones
        // libc uses.
        let uid32 = syscalls::number(arch, "setuid32").is_some();
        let socketcall = |call| Group::with_arg(&["socketcall"], AUDIT_ARG0, AUDIT_EQUAL, call);
        match self {
            // socketcall's sendto and sendmsg carry their flags behind a
            // pointer no rule can test: a fast open through it is not seen.
            EventKind::ConnectionAttempted if multiplexed => {
                let mut groups = fast_open();
                groups.insert(0, Group::of(&["connect"]));
                groups.push(socketcall(SYS_CONNECT));
                groups
            }
            EventKind::ConnectionAttempted => {
                let mut groups = fast_open();
                groups.insert(0, Group::of(&["connect"]));
                groups
            }
            EventKind::ConnectionAccepted if multiplexed => vec![
                // i386 and s390x have no accept of their own, only accept4.
                if syscalls::number(arch, "accept").is_some() {
                    Group::of(&["accept", "accept4"])
                } else {
                    Group::of(&["accept4"])
                },
                socketcall(SYS_ACCEPT),
                socketcall(SYS_ACCEPT4),
            ],
            EventKind::ConnectionAccepted => vec![Group::of(&["accept", "accept4"])],
            EventKind::SessionIdChange => vec![Group::of(&["setsid"])],
            EventKind::Exec => vec![Group::of(&["execve", "execveat"])],
            EventKind::Fork => vec![Group::of(&["fork", "vfork", "clone", "clone3"])],
            EventKind::End => vec![Group::of(&["exit_group"])],
            // i386 keeps the 16-bit uid calls beside the 32-bit ones libc uses.
            EventKind::UidChange if uid32 => vec![Group::of(&[
                "setuid",
                "setreuid",
                "setresuid",
                "setfsuid",
                "setuid32",
                "setreuid32",
                "setresuid32",
                "setfsuid32",
            ])],
            EventKind::UidChange => {
                vec![Group::of(&["setuid", "setreuid", "setresuid", "setfsuid"])]
            }
            EventKind::GidChange if uid32 => vec![Group::of(&[
                "setgid",
                "setregid",
                "setresgid",
                "setfsgid",
                "setgid32",
                "setregid32",
                "setresgid32",
                "setfsgid32",
            ])],
            EventKind::GidChange => {
                vec![Group::of(&["setgid", "setregid", "setresgid", "setfsgid"])]
            }
            EventKind::LoadModule => vec![Group::of(&["init_module", "finit_module"])],
            // open and openat create only with O_CREAT, in different
            // arguments; openat2 has its flags in a struct the kernel's
            // filter cannot read.
            EventKind::Creation => vec![
                Group::of(&[
                    "creat",
                    "mknod",
                    "mknodat",
                    "link",
                    "linkat",
                    "symlink",
                    "symlinkat",
                    "openat2",
                ]),
                Group::with_arg(&["open"], AUDIT_ARG1, AUDIT_BIT_MASK, O_CREAT),
                Group::with_arg(&["openat"], AUDIT_ARG2, AUDIT_BIT_MASK, O_CREAT),
            ],
            EventKind::Deletion => vec![Group::of(&["unlink", "unlinkat", "rmdir"])],
            EventKind::Rename => vec![Group::of(&["rename", "renameat", "renameat2"])],
        }
    }
}

/// The sends that connect: sendto and sendmmsg with MSG_FASTOPEN in their
/// fourth argument, sendmsg in its third.
fn fast_open() -> Vec<Group> {
    vec![
        Group::with_arg(
            &["sendto", "sendmmsg"],
            AUDIT_ARG0 + 3,
            AUDIT_BIT_MASK,
            MSG_FASTOPEN,
        ),
        Group::with_arg(&["sendmsg"], AUDIT_ARG0 + 2, AUDIT_BIT_MASK, MSG_FASTOPEN),
    ]
}

/// Syscalls that share one argument test, by name.
struct Group {
    calls: &'static [&'static str],
    arg: Option<(u32, u32, u32)>,
}

impl Group {
    fn of(calls: &'static [&'static str]) -> Group {
        Group { calls, arg: None }
    }

    fn with_arg(calls: &'static [&'static str], field: u32, op: u32, value: u32) -> Group {
        Group {
            calls,
            arg: Some((field, op, value)),
        }
    }
}

/// One kind of event to audit, and whether root's events (effective uid 0)
/// are all that any rule can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub kind: EventKind,
    pub root_only: bool,
    /// With `root_only`: also the events of a real uid 0 whose effective
    /// uid is not (`uid=0` beside `euid=0`).
    pub real_root: bool,
}

/// The audit rules for `wanted`: per arch (x86_64, then i386), per kind in
/// [`EventKind`] order, one rule per group of syscalls sharing their
/// filters. The kernel checks every syscall exit against every rule on the
/// exit list whose syscall mask has it, so fewer rules cost less.
///
/// Filters: the arch; `euid=0` when the kind is root-only; `success=1`
/// where a failed call is no event; IPv4/IPv6 only for connect and accept;
/// O_CREAT for open and openat. For fork, a `never` rule first drops
/// clone(CLONE_THREAD): threads are not processes, and the first rule that
/// matches a syscall decides. clone's flags are its first argument (a0) on
/// x86_64 and i386 alike (kernel/fork.c: only CLONE_BACKWARDS2 arches, s390,
/// put them second). clone3 passes its flags in a struct, so its threads
/// reach userland, which drops them. A kind listed twice is root-only only
/// if it is both times.
pub fn rules_for(wanted: &[Wanted]) -> Vec<AuditRule> {
    let kinds: Vec<Wanted> = EventKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let mut of_kind = wanted.iter().filter(|w| w.kind == kind).peekable();
            of_kind.peek()?;
            let of_kind: Vec<&Wanted> = of_kind.collect();
            let root_only = of_kind.iter().all(|w| w.root_only);
            let real_root = root_only && of_kind.iter().any(|w| w.real_root);
            Some(Wanted {
                kind,
                root_only,
                real_root,
            })
        })
        .collect();
    let mut rules = rules_for_arches(&kinds, syscalls::host_arches());
    rules.extend(kinds.iter().flat_map(|w| uring_rules(*w)));
    rules
}

/// The io_uring filter's rule for a kind (Linux 5.16 and later): an
/// IORING_OP_CONNECT never enters connect(2), so no syscall rule sees it.
/// The filter takes no arch, argument, exit or address test; its records
/// (URINGOP) carry the submitter's credentials, and the address only when
/// the operation ran inside io_uring_enter. Only connect: io_uring's sends
/// (and so a fast open through it) are exempt from audit in the kernel.
pub fn uring_rules(w: Wanted) -> Vec<AuditRule> {
    if w.kind != EventKind::ConnectionAttempted {
        return Vec::new();
    }
    let rule =
        AuditRule::new(AUDIT_FILTER_URING_EXIT, AUDIT_ALWAYS).with_syscall(IORING_OP_CONNECT);
    let uid_tests: &[u32] = match (w.root_only, w.real_root) {
        (true, true) => &[AUDIT_EUID, AUDIT_UID],
        (true, false) => &[AUDIT_EUID],
        (false, _) => &[],
    };
    let key = |r: AuditRule| r.with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, w.kind.key());
    if uid_tests.is_empty() {
        return vec![key(rule)];
    }
    uid_tests
        .iter()
        .map(|&field| key(rule.clone().with_num(field, AUDIT_EQUAL, 0)))
        .collect()
}

/// The rules that make clock steps visible, for sequences with maxspan: a
/// clock set by `date -s` (clock_settime), settimeofday, stime, or adjtimex
/// and clock_adjtime with ADJ_SETOFFSET writes TIME_INJOFFSET with the step
/// into the call's event, but only when the call is audited. Every caller:
/// CAP_SYS_TIME is what it takes, and chronyd holds it as its own user.
/// adjtimex is also how NTP daemons read and slew the clock, a few events a
/// minute; its flags are behind a pointer no rule can test.
pub fn clock_rules() -> Vec<AuditRule> {
    const CALLS: [&str; 7] = [
        "settimeofday",
        "clock_settime",
        "clock_settime64",
        "stime",
        "adjtimex",
        "clock_adjtime",
        "clock_adjtime64",
    ];
    syscalls::host_arches()
        .iter()
        .filter_map(|&arch| {
            let mut rule = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS).with_num(
                AUDIT_ARCH,
                AUDIT_EQUAL,
                arch,
            );
            for nr in CALLS.iter().filter_map(|c| syscalls::number(arch, c)) {
                rule = rule.with_syscall(nr);
            }
            (!rule.syscalls.is_empty()).then(|| {
                rule.with_num(AUDIT_SUCCESS, AUDIT_EQUAL, 1).with_str(
                    AUDIT_FILTERKEY,
                    AUDIT_EQUAL,
                    KEY_CLOCK,
                )
            })
        })
        .collect()
}

/// Whether the rule is on the io_uring filter, which kernels before 5.16 lack.
pub fn is_uring_rule(rule: &AuditRule) -> bool {
    rule.list & 0x07 == AUDIT_FILTER_URING_EXIT
}

/// [`rules_for`] for given arches (the host's, or another's in tests).
pub fn rules_for_arches(kinds: &[Wanted], arches: &[u32]) -> Vec<AuditRule> {
    let mut rules = Vec::new();
    for &arch in arches {
        for w in kinds {
            rules.extend(kind_rules(*w, arch));
        }
    }
    rules
}

/// The rules of one kind on one arch.
fn kind_rules(w: Wanted, arch: u32) -> Vec<AuditRule> {
    let key = w.kind.key();
    let on_arch =
        |action| AuditRule::new(AUDIT_FILTER_EXIT, action).with_num(AUDIT_ARCH, AUDIT_EQUAL, arch);
    let mut rules = Vec::new();
    if w.kind == EventKind::Fork {
        if let Some(clone) = syscalls::number(arch, "clone") {
            rules.push(
                on_arch(AUDIT_NEVER)
                    .with_syscall(clone)
                    .with_num(
                        AUDIT_ARG0 + syscalls::clone_flags_arg(arch) as u32,
                        AUDIT_BIT_MASK,
                        CLONE_THREAD,
                    )
                    .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, key),
            );
        }
    }
    for group in w.kind.groups(arch) {
        let mut rule = on_arch(AUDIT_ALWAYS);
        for nr in group
            .calls
            .iter()
            .filter_map(|name| syscalls::number(arch, name))
        {
            rule = rule.with_syscall(nr);
        }
        if rule.syscalls.is_empty() {
            continue;
        }
        if let Some((field, op, value)) = group.arg {
            rule = rule.with_num(field, op, value);
        }
        // Fields are ANDed: "euid 0 or uid 0" is one rule of each.
        let uid_tests: &[u32] = match (w.root_only, w.real_root) {
            (true, true) => &[AUDIT_EUID, AUDIT_UID],
            (true, false) => &[AUDIT_EUID],
            (false, _) => &[u32::MAX],
        };
        for &uid_field in uid_tests {
            let mut rule = rule.clone();
            if uid_field != u32::MAX {
                rule = rule.with_num(uid_field, AUDIT_EQUAL, 0);
            }
            if w.kind.success_only() {
                rule = rule.with_num(AUDIT_SUCCESS, AUDIT_EQUAL, 1);
            }
            if w.kind.inet_only() {
                rule = rule
                    .with_num(AUDIT_SADDR_FAM, AUDIT_GREATER_THAN_OR_EQUAL, AF_INET)
                    .with_num(AUDIT_SADDR_FAM, AUDIT_LESS_THAN_OR_EQUAL, AF_INET6);
            }
            rules.push(rule.with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, key));
        }
    }
    rules
}

/// The syscall names of [`EventKind::groups`] that the syscall table lacks,
/// as (arch name, call name): their events would be missing. What each arch
/// lacks by design is in its test.
pub fn unknown_syscalls() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for arch in syscalls::ARCHES {
        for kind in EventKind::ALL {
            for group in kind.groups(arch.id) {
                for name in group.calls {
                    if arch.number_of(name).is_none() && !out.contains(&(arch.name, *name)) {
                        out.push((arch.name, *name));
                    }
                }
            }
        }
    }
    out
}

/// The rules of the built-in detection rule: root connects and setsids.
///
/// Why these filters: only root matters (`euid=0`, the detection's user.id),
/// only IPv4/IPv6 connects are network events, and only a successful setsid
/// changes the session. connect has no `success` filter: Elastic counts an
/// attempt whether connect() returns 0, EINPROGRESS or ECONNREFUSED.
///
/// Why a range for the address family: rule fields are ANDed, so "inet or
/// inet6" is either two rules per connect syscall (=2, =10) or one range
/// (>=2 and <=10). The kernel accepts `<`/`>`/`<=`/`>=` on saddr_fam
/// (audit_field_valid refuses only the bit operators; verified on 6.18:
/// `saddr_fam&2` is EINVAL, `saddr_fam>=2` is accepted), so one rule per
/// group of calls instead of two, fewer checks on every audited syscall. The
/// range lets through the obsolete families 3 to 9 (ax25, ipx, appletalk,
/// netrom, bridge, atmpvc, x25), which userland drops. AF_UNIX (1) and
/// netlink (16), the common noise, stay out. Kernels without saddr_fam (before
/// 5.3) refuse the field with EINVAL; `Session` then falls back to
/// [`without_saddr_fam`]. accept is filtered the same way: the kernel keeps
/// the peer's address only when the caller asks for it, so an
/// accept(fd, NULL, NULL) is not seen (it would have no source.ip either).
///
/// Both by effective uid (Elastic's rule) and by real uid (audetect's two
/// companion rules, for root that lowered only its effective uid).
pub fn audetect_rules() -> Vec<AuditRule> {
    let mut rules = rules_for(&[
        Wanted {
            kind: EventKind::ConnectionAttempted,
            root_only: true,
            real_root: true,
        },
        Wanted {
            kind: EventKind::SessionIdChange,
            root_only: true,
            real_root: true,
        },
    ]);
    // Its sequence has a maxspan, measured across clock steps.
    add_clock_rules(&mut rules);
    rules
}

/// Adds [`clock_rules`] after the exit-filter rules and before the io_uring
/// ones: the kernel lists its rules filter by filter, so the set then reads
/// back in the order it was written.
pub fn add_clock_rules(rules: &mut Vec<AuditRule>) {
    let at = rules.iter().position(is_uring_rule).unwrap_or(rules.len());
    rules.splice(at..at, clock_rules());
}

/// The rule without its saddr_fam conditions, for kernels that do not know
/// the field; None if it had none.
pub fn without_saddr_fam(rule: &AuditRule) -> Option<AuditRule> {
    if !rule.fields.iter().any(|f| f.field == AUDIT_SADDR_FAM) {
        return None;
    }
    let mut stripped = rule.clone();
    stripped.fields.retain(|f| f.field != AUDIT_SADDR_FAM);
    Some(stripped)
}

/// Whether the rule carries an audetect key (and so belongs to audetect).
pub fn is_audetect_rule(rule: &AuditRule) -> bool {
    rule.key().is_some_and(|k| k.starts_with(KEY_PREFIX))
}

#[cfg(test)]
mod tests {
    /// arm64 (the generic syscall table): the same kinds by their own
    /// numbers, and only the calls it has (openat, not open; clone, not fork).
    #[test]
    fn aarch64_rules_use_its_own_table() {
        use crate::syscalls::AUDIT_ARCH_AARCH64;
        let all = |kind| Wanted {
            kind,
            root_only: false,
            real_root: false,
        };
        let rules: Vec<String> = rules_for_arches(
            &[
                all(EventKind::ConnectionAttempted),
                all(EventKind::Fork),
                all(EventKind::Creation),
            ],
            &[AUDIT_ARCH_AARCH64],
        )
        .iter()
        .map(AuditRule::to_auditctl)
        .collect();
        assert_eq!(
            rules,
            [
                "-a always,exit -F arch=b64 -S connect -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect",
                "-a always,exit -F arch=b64 -S sendto,sendmmsg -F a3&0x20000000 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect",
                "-a always,exit -F arch=b64 -S sendmsg -F a2&0x20000000 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect",
                "-a never,exit -F arch=b64 -S clone -F a0&0x10000 -F key=audetect-fork",
                "-a always,exit -F arch=b64 -S clone,clone3 -F success=1 -F key=audetect-fork",
                "-a always,exit -F arch=b64 -S mknodat,symlinkat,linkat,openat2 -F success=1 -F key=audetect-create",
                "-a always,exit -F arch=b64 -S openat -F a2&0x40 -F success=1 -F key=audetect-create",
            ]
        );
        let connect = rules_for_arches(
            &[all(EventKind::ConnectionAttempted)],
            &[AUDIT_ARCH_AARCH64],
        );
        assert_eq!(connect[0].syscalls, [203]);
    }

    /// ppc64le and s390x keep socketcall beside their own socket calls;
    /// s390x's clone has its flags second; AArch32 has the 16-bit uid calls.
    #[test]
    fn other_cpus_get_their_own_numbers_and_quirks() {
        use crate::syscalls::{AUDIT_ARCH_ARM, AUDIT_ARCH_PPC64LE, AUDIT_ARCH_S390X};
        let all = |kind| Wanted {
            kind,
            root_only: true,
            real_root: false,
        };
        let kinds = [
            all(EventKind::ConnectionAttempted),
            all(EventKind::ConnectionAccepted),
            all(EventKind::Fork),
            all(EventKind::UidChange),
        ];
        // Each rule's syscalls and its argument tests (argument, value).
        type Shape = (Vec<u32>, Vec<(u32, u32)>);
        let on = |arch| -> Vec<Shape> {
            rules_for_arches(&kinds, &[arch])
                .into_iter()
                .map(|r| {
                    let args = r
                        .fields
                        .iter()
                        .filter(|f| (AUDIT_ARG0..=AUDIT_ARG3).contains(&f.field))
                        .filter_map(|f| match f.value {
                            FieldValue::Num(v) => Some((f.field - AUDIT_ARG0, v)),
                            FieldValue::Str(_) => None,
                        })
                        .collect();
                    (r.syscalls, args)
                })
                .collect()
        };
        let (connect, socketcall) = (vec![], vec![(0, SYS_CONNECT)]);
        let (sendto, sendmsg) = (vec![(3, MSG_FASTOPEN)], vec![(2, MSG_FASTOPEN)]);
        assert_eq!(
            on(AUDIT_ARCH_PPC64LE),
            [
                (vec![328], connect.clone()),
                (vec![335, 349], sendto.clone()),
                (vec![341], sendmsg.clone()),
                (vec![102], socketcall.clone()),
                (vec![330, 344], vec![]),
                (vec![102], vec![(0, SYS_ACCEPT)]),
                (vec![102], vec![(0, SYS_ACCEPT4)]),
                (vec![120], vec![(0, CLONE_THREAD)]),
                (vec![2, 120, 189, 435], vec![]),
                (vec![23, 70, 138, 164], vec![]),
            ]
        );
        let s390x = on(AUDIT_ARCH_S390X);
        assert_eq!(s390x[0], (vec![362], connect));
        assert_eq!(s390x[1], (vec![358, 369], sendto.clone()));
        assert_eq!(s390x[2], (vec![370], sendmsg.clone()));
        assert_eq!(s390x[3], (vec![102], socketcall));
        assert_eq!(s390x[4], (vec![364], vec![]), "accept4 only");
        assert_eq!(s390x[7], (vec![120], vec![(1, CLONE_THREAD)]));
        assert_eq!(s390x[9], (vec![203, 208, 213, 215], vec![]));
        let arm = on(AUDIT_ARCH_ARM);
        assert_eq!(arm[0], (vec![283], vec![]));
        assert_eq!(arm[1], (vec![290, 374], sendto));
        assert_eq!(arm[2], (vec![296], sendmsg));
        assert_eq!(arm[3], (vec![285, 366], vec![]), "no socketcall in EABI");
        assert_eq!(
            arm.last().map(|r| r.0.clone()),
            Some(vec![23, 70, 138, 164, 203, 208, 213, 215])
        );
    }

    use super::*;

    /// The io_uring filter's rule: last, connect by its operation number,
    /// euid and key only (the filter refuses arch and argument tests).
    #[test]
    fn io_uring_connects_have_a_rule_of_their_own() {
        let rules = audetect_rules();
        let uring: Vec<&AuditRule> = rules.iter().filter(|r| is_uring_rule(r)).collect();
        assert_eq!(uring.len(), 2, "{rules:#?}");
        // After the kinds' syscall rules: only the clock's follow.
        let after: Vec<&AuditRule> = rules
            .iter()
            .skip_while(|r| !is_uring_rule(r))
            .skip(2)
            .collect();
        assert!(
            after.iter().all(|r| r.key() == Some(KEY_CLOCK)),
            "{after:?}"
        );
        assert_eq!(uring[0].syscalls, [IORING_OP_CONNECT]);
        assert_eq!(
            [uring[0].to_auditctl(), uring[1].to_auditctl()],
            [
                "-a always,io_uring -S connect -F euid=0 -F key=audetect-connect",
                "-a always,io_uring -S connect -F uid=0 -F key=audetect-connect"
            ]
        );
        let bytes = uring[0].to_bytes().unwrap();
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()),
            7,
            "list 7"
        );
        let everyone = uring_rules(Wanted {
            kind: EventKind::ConnectionAttempted,
            root_only: false,
            real_root: false,
        });
        assert_eq!(
            everyone.iter().map(|r| r.to_auditctl()).collect::<Vec<_>>(),
            ["-a always,io_uring -S connect -F key=audetect-connect"]
        );
        assert!(uring_rules(Wanted {
            kind: EventKind::Exec,
            root_only: true,
            real_root: false
        })
        .is_empty());
    }

    #[test]
    fn every_rule_round_trips() {
        for rule in audetect_rules() {
            let bytes = rule.to_bytes().unwrap();
            assert_eq!(AuditRule::from_bytes(&bytes).unwrap(), rule, "{rule}");
            assert!(is_audetect_rule(&rule));
        }
    }

    #[test]
    fn rules_match_the_rules_file() {
        let file = include_str!("../../../audit-rules/audetect.rules");
        let lines: Vec<&str> = file
            .lines()
            .map(str::trim)
            // The io_uring rule is there commented out, for auditctl 3.0.
            .map(|l| l.strip_prefix("#-a always,io_uring").map_or(l, |_| &l[1..]))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let rendered: Vec<String> = audetect_rules().iter().map(|r| r.to_auditctl()).collect();
        assert_eq!(lines, rendered);
    }

    /// `-a always,exit -F arch=b32 -S socketcall -F a0=0x3 -F euid=0
    ///  -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect`, byte by byte.
    #[test]
    fn socketcall_rule_bytes() {
        let rule = &audetect_rules()[14];
        let d = rule.to_bytes().unwrap();
        let w = |i: usize| u32::from_ne_bytes(d[i * 4..i * 4 + 4].try_into().unwrap());
        let (mask, fields, values, flags, buflen) = (3, 3 + 64, 3 + 128, 3 + 192, 3 + 256);
        assert_eq!((w(0), w(1), w(2)), (4, 2, 6), "exit list, always, 6 fields");
        assert_eq!(w(mask + 3), 1 << 6, "socketcall = 102 = 3*32 + 6");
        let expect = [
            (11, 0x4000_0003, 0x4000_0000), // arch = i386
            (200, 3, 0x4000_0000),          // a0 = 3
            (2, 0, 0x4000_0000),            // euid = 0
            (113, 2, 0x6000_0000),          // saddr_fam >= 2
            (113, 10, 0x5000_0000),         // saddr_fam <= 10
            (210, 16, 0x4000_0000),         // key, 16 bytes in buf
        ];
        for (i, (f, v, op)) in expect.into_iter().enumerate() {
            assert_eq!(
                (w(fields + i), w(values + i), w(flags + i)),
                (f, v, op),
                "field {i}"
            );
        }
        assert_eq!(w(buflen), 16);
        assert_eq!(&d[RULE_DATA_HEADER_LEN..], b"audetect-connect");
        assert_eq!(d.len(), RULE_DATA_HEADER_LEN + 16);
    }

    fn all(root_only: bool) -> Vec<Wanted> {
        EventKind::ALL
            .into_iter()
            .map(|kind| Wanted {
                kind,
                root_only,
                real_root: false,
            })
            .collect()
    }

    fn rendered(wanted: &[Wanted]) -> Vec<String> {
        rules_for(wanted)
            .iter()
            .map(AuditRule::to_auditctl)
            .collect()
    }

    #[test]
    fn every_kind_s_syscalls_are_in_the_table() {
        let mut lacking = unknown_syscalls();
        lacking.sort_unstable();
        // arm64 has only the *at forms and clone (the generic table); the
        // rest have every call the kinds use.
        let generic = [
            "creat", "fork", "link", "mknod", "open", "rename", "rmdir", "symlink", "unlink",
            "vfork",
        ];
        assert_eq!(
            lacking,
            generic.iter().map(|c| ("aarch64", *c)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_kind_encodes_and_is_keyed_as_its_own() {
        for root_only in [true, false] {
            for rule in rules_for(&all(root_only)) {
                let bytes = rule.to_bytes().unwrap();
                assert_eq!(AuditRule::from_bytes(&bytes).unwrap(), rule, "{rule}");
                assert!(is_audetect_rule(&rule));
                assert!(!rule.syscalls.is_empty(), "{rule}");
                let euid = rule.fields.iter().any(|f| f.field == AUDIT_EUID);
                assert_eq!(euid, root_only && rule.action == AUDIT_ALWAYS, "{rule}");
            }
        }
        let mut keys: Vec<&[u8]> = EventKind::ALL.iter().map(|k| k.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), EventKind::ALL.len(), "one key per kind");
        for kind in EventKind::ALL {
            assert!(kind.key().starts_with(KEY_PREFIX));
            assert_eq!(EventKind::from_action(kind.action()), Some(kind));
        }
        assert_eq!(EventKind::from_action("already_running"), None);
    }

    #[test]
    fn the_builtin_set_is_connect_and_setsid_for_root() {
        assert_eq!(
            rendered(&[
                Wanted {
                    kind: EventKind::SessionIdChange,
                    root_only: true,
                    real_root: true
                },
                Wanted {
                    kind: EventKind::ConnectionAttempted,
                    root_only: true,
                    real_root: false
                },
                Wanted {
                    kind: EventKind::ConnectionAttempted,
                    root_only: true,
                    real_root: true
                },
            ])
            .into_iter()
            .filter(|r| !r.contains("io_uring"))
            .chain(clock_rules().iter().map(AuditRule::to_auditctl))
            .chain(
                uring_rules(Wanted {
                    kind: EventKind::ConnectionAttempted,
                    root_only: true,
                    real_root: true,
                })
                .iter()
                .map(AuditRule::to_auditctl)
            )
            .collect::<Vec<_>>(),
            audetect_rules()
                .iter()
                .map(AuditRule::to_auditctl)
                .collect::<Vec<_>>(),
            "kinds come in one order, whatever the order asked"
        );
        assert_eq!(rules_for(&[]), vec![]);
        // By effective uid, then by real uid, for each group of calls.
        let rules: Vec<String> = audetect_rules().iter().map(|r| r.to_auditctl()).collect();
        assert_eq!(
            &rules[..2],
            [
                "-a always,exit -F arch=b64 -S connect -F euid=0 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect",
                "-a always,exit -F arch=b64 -S connect -F uid=0 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect",
            ]
        );
        assert_eq!(rules.len(), 22);
        assert_eq!(
            &rules[18..20],
            [
                "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime,clock_adjtime -F success=1 -F key=audetect-clock",
                "-a always,exit -F arch=b32 -S stime,settimeofday,adjtimex,clock_settime,clock_adjtime,clock_settime64,clock_adjtime64 -F success=1 -F key=audetect-clock",
            ]
        );
    }

    #[test]
    fn a_kind_is_root_only_if_every_request_says_so() {
        let exec = |root_only| Wanted {
            kind: EventKind::Exec,
            root_only,
            real_root: false,
        };
        assert_eq!(
            rendered(&[exec(true), exec(false)]),
            [
                "-a always,exit -F arch=b64 -S execve,execveat -F success=1 -F key=audetect-exec",
                "-a always,exit -F arch=b32 -S execve,execveat -F success=1 -F key=audetect-exec",
            ]
        );
        assert_eq!(
            rendered(&[exec(true)]),
            [
                "-a always,exit -F arch=b64 -S execve,execveat -F euid=0 -F success=1 -F key=audetect-exec",
                "-a always,exit -F arch=b32 -S execve,execveat -F euid=0 -F success=1 -F key=audetect-exec",
            ]
        );
    }

    /// Threads are dropped first, on clone's first argument.
    #[test]
    fn fork_drops_clone_threads_first() {
        let rules = rules_for(&[Wanted {
            kind: EventKind::Fork,
            root_only: false,
            real_root: false,
        }]);
        let text: Vec<String> = rules.iter().map(AuditRule::to_auditctl).collect();
        assert_eq!(
            text,
            [
                "-a never,exit -F arch=b64 -S clone -F a0&0x10000 -F key=audetect-fork",
                "-a always,exit -F arch=b64 -S clone,fork,vfork,clone3 -F success=1 -F key=audetect-fork",
                "-a never,exit -F arch=b32 -S clone -F a0&0x10000 -F key=audetect-fork",
                "-a always,exit -F arch=b32 -S fork,clone,vfork,clone3 -F success=1 -F key=audetect-fork",
            ]
        );
        let never = rules[0].to_bytes().unwrap();
        let w = |i: usize| u32::from_ne_bytes(never[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((w(0), w(1)), (AUDIT_FILTER_EXIT, AUDIT_NEVER));
        assert_eq!(w(3 + 1), 1 << (56 - 32), "clone = 56 on x86_64");
        let (fields, values, flags) = (3 + 64, 3 + 128, 3 + 192);
        assert_eq!(
            (w(fields + 1), w(values + 1), w(flags + 1)),
            (AUDIT_ARG0, 0x1_0000, AUDIT_BIT_MASK),
            "a0 & CLONE_THREAD"
        );
    }

    #[test]
    fn files_are_created_by_o_creat_opens_and_the_rest() {
        let b64: Vec<String> = rendered(&[Wanted {
            kind: EventKind::Creation,
            root_only: false,
            real_root: false,
        }])
        .into_iter()
        .filter(|r| r.contains("arch=b64"))
        .collect();
        assert_eq!(
            b64,
            [
                "-a always,exit -F arch=b64 -S creat,link,symlink,mknod,mknodat,linkat,symlinkat,openat2 -F success=1 -F key=audetect-create",
                "-a always,exit -F arch=b64 -S open -F a1&0x40 -F success=1 -F key=audetect-create",
                "-a always,exit -F arch=b64 -S openat -F a2&0x40 -F success=1 -F key=audetect-create",
            ]
        );
    }

    #[test]
    fn i386_accepts_and_uid_changes_have_their_own_calls() {
        let text = rendered(&[
            Wanted {
                kind: EventKind::ConnectionAccepted,
                root_only: false,
                real_root: false,
            },
            Wanted {
                kind: EventKind::UidChange,
                root_only: true,
                real_root: false,
            },
        ]);
        assert_eq!(
            text,
            [
                "-a always,exit -F arch=b64 -S accept,accept4 -F success=1 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-accept",
                "-a always,exit -F arch=b64 -S setuid,setreuid,setresuid,setfsuid -F euid=0 -F success=1 -F key=audetect-uid",
                "-a always,exit -F arch=b32 -S accept4 -F success=1 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-accept",
                "-a always,exit -F arch=b32 -S socketcall -F a0=0x5 -F success=1 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-accept",
                "-a always,exit -F arch=b32 -S socketcall -F a0=0x12 -F success=1 -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-accept",
                "-a always,exit -F arch=b32 -S setuid,setreuid,setfsuid,setresuid,setreuid32,setresuid32,setuid32,setfsuid32 -F euid=0 -F success=1 -F key=audetect-uid",
            ]
        );
    }

    /// exit_group never returns: no success filter, or nothing would match.
    #[test]
    fn process_ends_have_no_success_filter() {
        assert_eq!(
            rendered(&[Wanted {
                kind: EventKind::End,
                root_only: false,
                real_root: false
            }]),
            [
                "-a always,exit -F arch=b64 -S exit_group -F key=audetect-exit",
                "-a always,exit -F arch=b32 -S exit_group -F key=audetect-exit",
            ]
        );
    }

    #[test]
    fn fallback_drops_only_saddr_fam() {
        let rules = audetect_rules();
        let fb = without_saddr_fam(&rules[0]).unwrap();
        assert_eq!(
            fb.to_auditctl(),
            "-a always,exit -F arch=b64 -S connect -F euid=0 -F key=audetect-connect"
        );
        let setsid = &rules[6];
        assert_eq!(without_saddr_fam(setsid), None);
        assert_eq!(rules[0].key(), Some(KEY_CONNECT));
        assert_eq!(setsid.key(), Some(KEY_SETSID));
    }
}
