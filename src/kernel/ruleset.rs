//! The audit rules audetect installs, the in-kernel filters feeding the "root
//! connect then setsid" detection (audit-rules/audetect.rules in auditctl syntax).

use super::rules::*;

/// Every audetect rule's key starts with this; rules keyed so are audetect's.
pub const KEY_PREFIX: &[u8] = b"audetect";
pub const KEY_CONNECT: &[u8] = b"audetect-connect";
pub const KEY_SETSID: &[u8] = b"audetect-setsid";

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
/// socketcall(2)'s call number for connect.
const SYS_CONNECT: u32 = 3;

/// The rules, in the order of `audit-rules/audetect.rules`.
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
/// `saddr_fam&2` is EINVAL, `saddr_fam>=2` is accepted), so one rule each:
/// five rules instead of eight, fewer checks on every audited syscall. The
/// range lets through the obsolete families 3 to 9 (ax25, ipx, appletalk,
/// netrom, bridge, atmpvc, x25), which userland drops. AF_UNIX (1) and
/// netlink (16), the common noise, stay out. Kernels without saddr_fam (before
/// 5.3) refuse the field with EINVAL; `Session` then falls back to
/// [`without_saddr_fam`].
pub fn audetect_rules() -> Vec<AuditRule> {
    let exit = || AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS);
    let connect_filters = |r: AuditRule| {
        r.with_num(AUDIT_EUID, AUDIT_EQUAL, 0)
            .with_num(AUDIT_SADDR_FAM, AUDIT_GREATER_THAN_OR_EQUAL, AF_INET)
            .with_num(AUDIT_SADDR_FAM, AUDIT_LESS_THAN_OR_EQUAL, AF_INET6)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, KEY_CONNECT)
    };
    let setsid_filters = |r: AuditRule| {
        r.with_num(AUDIT_EUID, AUDIT_EQUAL, 0)
            .with_num(AUDIT_SUCCESS, AUDIT_EQUAL, 1)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, KEY_SETSID)
    };
    let b64 = || exit().with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64);
    let b32 = || exit().with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_I386);
    vec![
        // x86_64: connect 42, setsid 112.
        connect_filters(b64().with_syscall(42)),
        setsid_filters(b64().with_syscall(112)),
        // i386 (32-bit processes): connect 362, or socketcall 102 with
        // call SYS_CONNECT (older libcs), and setsid 66.
        connect_filters(b32().with_syscall(362)),
        connect_filters(
            b32()
                .with_syscall(102)
                .with_num(AUDIT_ARG0, AUDIT_EQUAL, SYS_CONNECT),
        ),
        setsid_filters(b32().with_syscall(66)),
    ]
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
    use super::*;

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
        let file = include_str!("../../audit-rules/audetect.rules");
        let lines: Vec<&str> = file
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let rendered: Vec<String> = audetect_rules().iter().map(|r| r.to_auditctl()).collect();
        assert_eq!(lines, rendered);
    }

    /// `-a always,exit -F arch=b32 -S socketcall -F a0=0x3 -F euid=0
    ///  -F saddr_fam>=2 -F saddr_fam<=10 -F key=audetect-connect`, byte by byte.
    #[test]
    fn socketcall_rule_bytes() {
        let rule = &audetect_rules()[3];
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

    #[test]
    fn fallback_drops_only_saddr_fam() {
        let rules = audetect_rules();
        let fb = without_saddr_fam(&rules[0]).unwrap();
        assert_eq!(
            fb.to_auditctl(),
            "-a always,exit -F arch=b64 -S connect -F euid=0 -F key=audetect-connect"
        );
        assert_eq!(without_saddr_fam(&rules[1]), None);
        assert_eq!(rules[0].key(), Some(KEY_CONNECT));
        assert_eq!(rules[1].key(), Some(KEY_SETSID));
    }
}
