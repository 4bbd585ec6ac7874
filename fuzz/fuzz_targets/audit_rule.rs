//! Audit rule-list target: arbitrary bytes as one `struct audit_rule_data`
//! the kernel lists (AUDIT_LIST_RULES). Nothing may panic; a rule that
//! decodes renders as auditctl text, encodes back (unless it holds the
//! syscall-class bits, which the model cannot send) and decodes again equal.
#![no_main]

use audetect::kernel::rules::{MAX_SYSCALL, RULE_DATA_HEADER_LEN};
use audetect::kernel::{AuditRule, FieldValue, RuleError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rule = match AuditRule::from_bytes(data) {
        Ok(rule) => rule,
        Err(RuleError::Truncated { need, have }) => {
            assert!(need > have, "truncated with {need} needed of {have}");
            return;
        }
        Err(RuleError::TooManyFields(n)) => {
            assert!(n > 64);
            return;
        }
        Err(e) => panic!("decoding gave {e}"),
    };
    assert!(
        rule.syscalls.windows(2).all(|w| w[0] < w[1]),
        "syscalls not sorted and unique"
    );
    let text = rule.to_auditctl();
    assert!(!text.is_empty());
    let _ = (rule.key(), rule.arch(), rule.to_string());

    match rule.to_bytes() {
        Ok(bytes) => {
            let strings: usize = rule
                .fields
                .iter()
                .map(|f| match &f.value {
                    FieldValue::Str(s) => s.len(),
                    FieldValue::Num(_) => 0,
                })
                .sum();
            assert_eq!(bytes.len(), RULE_DATA_HEADER_LEN + strings);
            assert_eq!(
                AuditRule::from_bytes(&bytes).as_ref(),
                Ok(&rule),
                "round trip"
            );
            // The auditctl text depends on the rule only.
            assert_eq!(
                AuditRule::from_bytes(&bytes).map(|r| r.to_auditctl()),
                Ok(text)
            );
        }
        Err(RuleError::SyscallOutOfRange(nr)) => {
            assert!(nr >= MAX_SYSCALL && rule.syscalls.contains(&nr));
        }
        Err(e) => panic!("a decoded rule does not encode: {e}"),
    }
});
