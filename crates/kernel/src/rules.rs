//! The audit rule model, its byte-exact encoding as the kernel's
//! `struct audit_rule_data`, and rendering in the syntax `auditctl -l` prints.

use std::fmt;

use crate::syscalls;

/// Filter lists (the low bits of `audit_rule_data.flags`).
pub const AUDIT_FILTER_USER: u32 = 0x00;
pub const AUDIT_FILTER_TASK: u32 = 0x01;
pub const AUDIT_FILTER_ENTRY: u32 = 0x02;
pub const AUDIT_FILTER_WATCH: u32 = 0x03;
pub const AUDIT_FILTER_EXIT: u32 = 0x04;
pub const AUDIT_FILTER_EXCLUDE: u32 = 0x05;
pub const AUDIT_FILTER_FS: u32 = 0x06;
pub const AUDIT_FILTER_URING_EXIT: u32 = 0x07;
const AUDIT_FILTER_MASK: u32 = 0x07;

/// Rule actions.
pub const AUDIT_NEVER: u32 = 0;
pub const AUDIT_POSSIBLE: u32 = 1;
pub const AUDIT_ALWAYS: u32 = 2;

/// Field numbers (`audit_rule_data.fields`).
pub const AUDIT_PID: u32 = 0;
pub const AUDIT_UID: u32 = 1;
pub const AUDIT_EUID: u32 = 2;
pub const AUDIT_SUID: u32 = 3;
pub const AUDIT_FSUID: u32 = 4;
pub const AUDIT_GID: u32 = 5;
pub const AUDIT_EGID: u32 = 6;
pub const AUDIT_SGID: u32 = 7;
pub const AUDIT_FSGID: u32 = 8;
pub const AUDIT_LOGINUID: u32 = 9;
pub const AUDIT_PERS: u32 = 10;
pub const AUDIT_ARCH: u32 = 11;
pub const AUDIT_MSGTYPE: u32 = 12;
pub const AUDIT_SUBJ_USER: u32 = 13;
pub const AUDIT_SUBJ_CLR: u32 = 17;
pub const AUDIT_PPID: u32 = 18;
pub const AUDIT_OBJ_USER: u32 = 19;
pub const AUDIT_OBJ_LEV_HIGH: u32 = 23;
pub const AUDIT_LOGINUID_SET: u32 = 24;
pub const AUDIT_SESSIONID: u32 = 25;
pub const AUDIT_FSTYPE: u32 = 26;
pub const AUDIT_DEVMAJOR: u32 = 100;
pub const AUDIT_DEVMINOR: u32 = 101;
pub const AUDIT_INODE: u32 = 102;
pub const AUDIT_EXIT: u32 = 103;
pub const AUDIT_SUCCESS: u32 = 104;
pub const AUDIT_WATCH: u32 = 105;
pub const AUDIT_PERM: u32 = 106;
pub const AUDIT_DIR: u32 = 107;
pub const AUDIT_FILETYPE: u32 = 108;
pub const AUDIT_OBJ_UID: u32 = 109;
pub const AUDIT_OBJ_GID: u32 = 110;
pub const AUDIT_FIELD_COMPARE: u32 = 111;
pub const AUDIT_EXE: u32 = 112;
pub const AUDIT_SADDR_FAM: u32 = 113;
pub const AUDIT_ARG0: u32 = 200;
pub const AUDIT_ARG1: u32 = 201;
pub const AUDIT_ARG2: u32 = 202;
pub const AUDIT_ARG3: u32 = 203;
pub const AUDIT_FILTERKEY: u32 = 210;

/// Operators (`audit_rule_data.fieldflags`).
pub const AUDIT_BIT_MASK: u32 = 0x0800_0000;
pub const AUDIT_LESS_THAN: u32 = 0x1000_0000;
pub const AUDIT_GREATER_THAN: u32 = 0x2000_0000;
pub const AUDIT_NOT_EQUAL: u32 = 0x3000_0000;
pub const AUDIT_EQUAL: u32 = 0x4000_0000;
pub const AUDIT_BIT_TEST: u32 = AUDIT_BIT_MASK | AUDIT_EQUAL;
pub const AUDIT_LESS_THAN_OR_EQUAL: u32 = AUDIT_LESS_THAN | AUDIT_EQUAL;
pub const AUDIT_GREATER_THAN_OR_EQUAL: u32 = AUDIT_GREATER_THAN | AUDIT_EQUAL;
const AUDIT_OPERATORS: u32 = AUDIT_EQUAL | AUDIT_NOT_EQUAL | AUDIT_BIT_MASK;

/// `AUDIT_ARCH_*` values for the `arch` field (the audit model's table).
pub use crate::syscalls::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};

/// Separator auditctl puts between several keys of one rule.
const KEY_SEPARATOR: u8 = 0x01;

const AUDIT_MAX_FIELDS: usize = 64;
const AUDIT_BITMASK_SIZE: usize = 64;
/// The kernel reads the top 16 bits of the syscall mask as syscall *classes*
/// (`AUDIT_SYSCALL_CLASSES`), so syscall numbers from here on cannot be encoded.
pub const MAX_SYSCALL: u32 = (AUDIT_BITMASK_SIZE as u32) * 32 - 16;
/// flags, action, field_count, mask[64], fields[64], values[64], fieldflags[64], buflen.
pub const RULE_DATA_HEADER_LEN: usize = 4 * (3 + 4 * AUDIT_BITMASK_SIZE + 1);

/// What can be wrong with a rule we encode or with rule bytes we decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("a rule holds at most {AUDIT_MAX_FIELDS} fields, this one has {0}")]
    TooManyFields(usize),
    #[error("syscall number {0} cannot be encoded (the limit is {MAX_SYSCALL})")]
    SyscallOutOfRange(u32),
    #[error("field {field} takes a {expected} value")]
    ValueKind { field: u32, expected: &'static str },
    #[error("string value of field {field} is too long ({len} bytes)")]
    StringTooLong { field: u32, len: usize },
    #[error("rule data is truncated: {need} bytes needed, {have} present")]
    Truncated { need: usize, have: usize },
}

/// A field value: numeric, or the bytes of a string-valued field (key, exe,
/// path, dir, LSM labels). Strings are bytes: the kernel does not require UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    Num(u32),
    Str(Vec<u8>),
}

/// One `-F name<op>value` condition; `op` is one of the `AUDIT_*` operator bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleField {
    pub field: u32,
    pub op: u32,
    pub value: FieldValue,
}

/// One audit rule as the kernel stores it. Fields are ANDed, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditRule {
    /// Filter list, e.g. [`AUDIT_FILTER_EXIT`] (may carry the prepend bit 0x10 on input).
    pub list: u32,
    /// [`AUDIT_ALWAYS`] or [`AUDIT_NEVER`].
    pub action: u32,
    /// Syscall numbers, sorted and without duplicates (decoding yields them so,
    /// and equality with decoded rules depends on it).
    pub syscalls: Vec<u32>,
    pub fields: Vec<RuleField>,
}

/// Whether the kernel carries this field's value as a string in `buf`
/// (its length in `values[]`); mirrors the kernel's audit_data_to_entry.
pub fn is_string_field(field: u32) -> bool {
    matches!(
        field,
        AUDIT_SUBJ_USER..=AUDIT_SUBJ_CLR
            | AUDIT_OBJ_USER..=AUDIT_OBJ_LEV_HIGH
            | AUDIT_WATCH
            | AUDIT_DIR
            | AUDIT_EXE
            | AUDIT_FILTERKEY
    )
}

impl AuditRule {
    /// An empty rule on `list` with `action`.
    pub fn new(list: u32, action: u32) -> Self {
        AuditRule {
            list,
            action,
            syscalls: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Adds a syscall, keeping the list sorted and free of duplicates.
    pub fn with_syscall(mut self, nr: u32) -> Self {
        if let Err(at) = self.syscalls.binary_search(&nr) {
            self.syscalls.insert(at, nr);
        }
        self
    }

    pub fn with_num(mut self, field: u32, op: u32, value: u32) -> Self {
        self.fields.push(RuleField {
            field,
            op,
            value: FieldValue::Num(value),
        });
        self
    }

    pub fn with_str(mut self, field: u32, op: u32, value: &[u8]) -> Self {
        self.fields.push(RuleField {
            field,
            op,
            value: FieldValue::Str(value.to_vec()),
        });
        self
    }

    /// The rule's key (all of it: several keys are joined by 0x01), if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.fields.iter().find_map(|f| match (&f.value, f.field) {
            (FieldValue::Str(s), AUDIT_FILTERKEY) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// The value of an `arch=` condition, if the rule has one.
    pub fn arch(&self) -> Option<u32> {
        self.fields.iter().find_map(|f| match (&f.value, f.field) {
            (FieldValue::Num(v), AUDIT_ARCH) if f.op == AUDIT_EQUAL => Some(*v),
            _ => None,
        })
    }

    /// Encodes the rule as `struct audit_rule_data` (native endianness, as the
    /// kernel expects), followed by the string buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RuleError> {
        if self.fields.len() > AUDIT_MAX_FIELDS {
            return Err(RuleError::TooManyFields(self.fields.len()));
        }
        let mut mask = [0u32; AUDIT_BITMASK_SIZE];
        for &nr in &self.syscalls {
            if nr >= MAX_SYSCALL {
                return Err(RuleError::SyscallOutOfRange(nr));
            }
            mask[(nr / 32) as usize] |= 1 << (nr % 32);
        }
        let mut fields = [0u32; AUDIT_MAX_FIELDS];
        let mut values = [0u32; AUDIT_MAX_FIELDS];
        let mut flags = [0u32; AUDIT_MAX_FIELDS];
        let mut buf = Vec::new();
        for (i, f) in self.fields.iter().enumerate() {
            fields[i] = f.field;
            flags[i] = f.op;
            values[i] = match (&f.value, is_string_field(f.field)) {
                (FieldValue::Num(v), false) => *v,
                (FieldValue::Str(s), true) => {
                    let len = u32::try_from(s.len()).map_err(|_| RuleError::StringTooLong {
                        field: f.field,
                        len: s.len(),
                    })?;
                    buf.extend_from_slice(s);
                    len
                }
                (_, string) => {
                    return Err(RuleError::ValueKind {
                        field: f.field,
                        expected: if string { "string" } else { "numeric" },
                    })
                }
            };
        }
        let buflen = u32::try_from(buf.len()).map_err(|_| RuleError::StringTooLong {
            field: AUDIT_FILTERKEY,
            len: buf.len(),
        })?;
        let mut out = Vec::with_capacity(RULE_DATA_HEADER_LEN + buf.len());
        let mut put = |v: u32| out.extend_from_slice(&v.to_ne_bytes());
        put(self.list);
        put(self.action);
        put(self.fields.len() as u32);
        mask.iter().for_each(|&v| put(v));
        fields.iter().for_each(|&v| put(v));
        values.iter().for_each(|&v| put(v));
        flags.iter().for_each(|&v| put(v));
        put(buflen);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decodes `struct audit_rule_data` as the kernel lists it. Unknown field
    /// numbers decode as numeric fields, so a rule using a field newer than
    /// this code still lists (a future *string* field would shift later string
    /// values, which the buffer bounds checks then catch).
    pub fn from_bytes(data: &[u8]) -> Result<Self, RuleError> {
        if data.len() < RULE_DATA_HEADER_LEN {
            return Err(RuleError::Truncated {
                need: RULE_DATA_HEADER_LEN,
                have: data.len(),
            });
        }
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&data[i * 4..i * 4 + 4]);
            u32::from_ne_bytes(b)
        };
        let list = word(0);
        let action = word(1);
        let field_count = word(2) as usize;
        if field_count > AUDIT_MAX_FIELDS {
            return Err(RuleError::TooManyFields(field_count));
        }
        const MASK: usize = 3;
        const FIELDS: usize = MASK + AUDIT_BITMASK_SIZE;
        const VALUES: usize = FIELDS + AUDIT_MAX_FIELDS;
        const FLAGS: usize = VALUES + AUDIT_MAX_FIELDS;
        const BUFLEN: usize = FLAGS + AUDIT_MAX_FIELDS;
        let mut syscalls = Vec::new();
        for w in 0..AUDIT_BITMASK_SIZE {
            let bits = word(MASK + w);
            for b in 0..32 {
                if bits & (1 << b) != 0 {
                    syscalls.push((w * 32 + b) as u32);
                }
            }
        }
        let buflen = word(BUFLEN) as usize;
        let buf = &data[RULE_DATA_HEADER_LEN..];
        if buf.len() < buflen {
            return Err(RuleError::Truncated {
                need: RULE_DATA_HEADER_LEN + buflen,
                have: data.len(),
            });
        }
        let buf = &buf[..buflen];
        let mut offset = 0usize;
        let mut fields = Vec::with_capacity(field_count);
        for i in 0..field_count {
            let field = word(FIELDS + i);
            let value = word(VALUES + i);
            let op = word(FLAGS + i);
            let value = if is_string_field(field) {
                let end = offset
                    .checked_add(value as usize)
                    .filter(|&e| e <= buf.len());
                let Some(end) = end else {
                    return Err(RuleError::Truncated {
                        need: RULE_DATA_HEADER_LEN + offset + value as usize,
                        have: RULE_DATA_HEADER_LEN + buf.len(),
                    });
                };
                let s = buf[offset..end].to_vec();
                offset = end;
                FieldValue::Str(s)
            } else {
                FieldValue::Num(value)
            };
            fields.push(RuleField { field, op, value });
        }
        Ok(AuditRule {
            list,
            action,
            syscalls,
            fields,
        })
    }

    /// The rule as `auditctl -l` (audit userspace 3.x) prints it, for the
    /// fields audetect uses and most others. Known divergences: `exit=` is
    /// printed as a number (auditctl: `-EACCES`), `msgtype=` as a number,
    /// field comparisons as `-F field_compare=N` (auditctl: `-C ...`), and
    /// syscall names are known only for a few x86_64/i386 syscalls.
    pub fn to_auditctl(&self) -> String {
        let watch = self.is_watch();
        let mut out = String::new();
        if !watch {
            out.push_str(&format!(
                "-a {},{}",
                action_name(self.action),
                list_name(self.list)
            ));
            for f in self
                .fields
                .iter()
                .filter(|f| f.field & !AUDIT_OPERATORS == AUDIT_ARCH)
            {
                if let FieldValue::Num(v) = f.value {
                    out.push_str(&format!(" -F arch{}{}", op_symbol(f.op), arch_name(v)));
                }
            }
            self.push_syscalls(&mut out);
        }
        for f in &self.fields {
            let field = f.field & !AUDIT_OPERATORS;
            let op = op_symbol(f.op);
            if field == AUDIT_ARCH {
                continue;
            }
            let Some(name) = field_name(field) else {
                // auditctl prints unknown fields without "-F".
                out.push_str(&format!(" f{}{}{}", f.field, op, value_i32(&f.value)));
                continue;
            };
            match (&f.value, field) {
                (FieldValue::Str(s), AUDIT_FILTERKEY) => {
                    for k in s.split(|&b| b == KEY_SEPARATOR).filter(|k| !k.is_empty()) {
                        let k = String::from_utf8_lossy(k);
                        if watch {
                            out.push_str(&format!(" -k {k}"));
                        } else {
                            out.push_str(&format!(" -F key={k}"));
                        }
                    }
                }
                (FieldValue::Str(s), AUDIT_WATCH | AUDIT_DIR) if watch => {
                    let slash = if field == AUDIT_DIR { "/" } else { "" };
                    out.push_str(&format!("-w {}{slash}", String::from_utf8_lossy(s)));
                }
                (FieldValue::Str(s), _) => {
                    out.push_str(&format!(" -F {name}{op}{}", String::from_utf8_lossy(s)));
                }
                (FieldValue::Num(v), AUDIT_PERM) => {
                    let perms: String = [(8, 'r'), (2, 'w'), (1, 'x'), (4, 'a')]
                        .iter()
                        .filter(|(bit, _)| v & bit != 0)
                        .map(|(_, c)| c)
                        .collect();
                    if watch {
                        out.push_str(&format!(" -p {perms}"));
                    } else {
                        out.push_str(&format!(" -F perm={perms}"));
                    }
                }
                (FieldValue::Num(v), AUDIT_INODE) => {
                    out.push_str(&format!(" -F {name}{op}{v}"));
                }
                (FieldValue::Num(v), AUDIT_ARG0..=AUDIT_ARG3) => {
                    out.push_str(&format!(" -F {name}{op}0x{v:X}"));
                }
                (FieldValue::Num(v), _) => {
                    out.push_str(&format!(" -F {name}{op}{}", *v as i32));
                }
            }
        }
        out
    }

    /// auditctl prints a rule as a watch (`-w path -p perms`) when it applies
    /// to all syscalls and has only path/dir, perm and key fields, one being perm.
    fn is_watch(&self) -> bool {
        let only_watch_fields = self.fields.iter().all(|f| {
            matches!(
                f.field & !AUDIT_OPERATORS,
                AUDIT_PERM | AUDIT_FILTERKEY | AUDIT_DIR | AUDIT_WATCH
            )
        });
        let has_perm = self
            .fields
            .iter()
            .any(|f| f.field & !AUDIT_OPERATORS == AUDIT_PERM);
        let list = self.list & AUDIT_FILTER_MASK;
        let takes_syscalls = !matches!(
            list,
            AUDIT_FILTER_USER | AUDIT_FILTER_TASK | AUDIT_FILTER_EXCLUDE
        );
        only_watch_fields && has_perm && (!takes_syscalls || self.all_syscalls())
    }

    /// auditctl's test for `-S all`: every word of the mask but the last
    /// (which holds the class bits) is all ones.
    fn all_syscalls(&self) -> bool {
        let full_words = (AUDIT_BITMASK_SIZE - 1) * 32;
        self.syscalls.len() >= full_words
            && self.syscalls[..full_words]
                .iter()
                .enumerate()
                .all(|(i, &nr)| nr == i as u32)
    }

    fn push_syscalls(&self, out: &mut String) {
        let list = self.list & AUDIT_FILTER_MASK;
        if matches!(
            list,
            AUDIT_FILTER_USER | AUDIT_FILTER_TASK | AUDIT_FILTER_EXCLUDE
        ) {
            return;
        }
        if self.all_syscalls() {
            out.push_str(" -S all");
            return;
        }
        // The io_uring filter's mask holds operations, not system calls
        // (auditctl 3.1 names them so; 3.0 cannot read such a rule).
        if list == AUDIT_FILTER_URING_EXIT {
            for (i, &op) in self.syscalls.iter().enumerate() {
                out.push_str(if i == 0 { " -S " } else { "," });
                match URING_OPS.iter().find(|(nr, _)| *nr == op) {
                    Some((_, name)) => out.push_str(name),
                    None => out.push_str(&op.to_string()),
                }
            }
            return;
        }
        // A rule without an arch is read as native, as auditctl does.
        let arch = self.arch().unwrap_or_else(syscalls::native);
        for (i, &nr) in self.syscalls.iter().enumerate() {
            out.push_str(if i == 0 { " -S " } else { "," });
            match syscalls::name(arch, nr) {
                Some(name) => out.push_str(name),
                None => out.push_str(&nr.to_string()),
            }
        }
    }
}

impl fmt::Display for AuditRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_auditctl())
    }
}

/// io_uring operations by number (include/uapi/linux/io_uring.h), the few
/// audetect may audit.
const URING_OPS: &[(u32, &str)] = &[(13, "accept"), (16, "connect"), (18, "openat")];

fn value_i32(v: &FieldValue) -> String {
    match v {
        FieldValue::Num(n) => (*n as i32).to_string(),
        FieldValue::Str(s) => String::from_utf8_lossy(s).into_owned(),
    }
}

fn action_name(action: u32) -> String {
    match action {
        AUDIT_NEVER => "never".into(),
        AUDIT_POSSIBLE => "possible".into(),
        AUDIT_ALWAYS => "always".into(),
        other => other.to_string(),
    }
}

fn list_name(list: u32) -> &'static str {
    match list & AUDIT_FILTER_MASK {
        AUDIT_FILTER_USER => "user",
        AUDIT_FILTER_TASK => "task",
        AUDIT_FILTER_ENTRY => "entry",
        AUDIT_FILTER_WATCH => "watch",
        AUDIT_FILTER_EXIT => "exit",
        AUDIT_FILTER_EXCLUDE => "exclude",
        AUDIT_FILTER_FS => "filesystem",
        _ => "io_uring",
    }
}

/// The symbol auditctl prints for an operator; unknown bit patterns print as
/// `=`, which is also what auditctl falls back to.
pub fn op_symbol(op: u32) -> &'static str {
    match op & AUDIT_OPERATORS {
        AUDIT_NOT_EQUAL => "!=",
        AUDIT_BIT_MASK => "&",
        AUDIT_BIT_TEST => "&=",
        AUDIT_LESS_THAN => "<",
        AUDIT_GREATER_THAN => ">",
        AUDIT_LESS_THAN_OR_EQUAL => "<=",
        AUDIT_GREATER_THAN_OR_EQUAL => ">=",
        _ => "=",
    }
}

fn arch_name(arch: u32) -> String {
    match syscalls::arch(arch) {
        Some(known) => format!("b{}", known.bits),
        None => format!("0x{arch:X}"),
    }
}

/// auditctl's names for rule fields (audit userspace fieldtab).
pub fn field_name(field: u32) -> Option<&'static str> {
    Some(match field {
        AUDIT_PID => "pid",
        AUDIT_UID => "uid",
        AUDIT_EUID => "euid",
        AUDIT_SUID => "suid",
        AUDIT_FSUID => "fsuid",
        AUDIT_GID => "gid",
        AUDIT_EGID => "egid",
        AUDIT_SGID => "sgid",
        AUDIT_FSGID => "fsgid",
        AUDIT_LOGINUID => "auid",
        AUDIT_PERS => "pers",
        AUDIT_ARCH => "arch",
        AUDIT_MSGTYPE => "msgtype",
        13 => "subj_user",
        14 => "subj_role",
        15 => "subj_type",
        16 => "subj_sen",
        17 => "subj_clr",
        AUDIT_PPID => "ppid",
        19 => "obj_user",
        20 => "obj_role",
        21 => "obj_type",
        22 => "obj_lev_low",
        23 => "obj_lev_high",
        AUDIT_LOGINUID_SET => "loginuid_set",
        AUDIT_SESSIONID => "sessionid",
        AUDIT_FSTYPE => "fstype",
        AUDIT_DEVMAJOR => "devmajor",
        AUDIT_DEVMINOR => "devminor",
        AUDIT_INODE => "inode",
        AUDIT_EXIT => "exit",
        AUDIT_SUCCESS => "success",
        AUDIT_WATCH => "path",
        AUDIT_PERM => "perm",
        AUDIT_DIR => "dir",
        AUDIT_FILETYPE => "filetype",
        AUDIT_OBJ_UID => "obj_uid",
        AUDIT_OBJ_GID => "obj_gid",
        AUDIT_FIELD_COMPARE => "field_compare",
        AUDIT_EXE => "exe",
        AUDIT_SADDR_FAM => "saddr_fam",
        AUDIT_ARG0 => "a0",
        AUDIT_ARG1 => "a1",
        AUDIT_ARG2 => "a2",
        AUDIT_ARG3 => "a3",
        AUDIT_FILTERKEY => "key",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the u32 at word index `i` of encoded rule data.
    fn word(data: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes(data[i * 4..i * 4 + 4].try_into().unwrap())
    }

    /// `-a always,exit -F arch=b64 -S connect -F euid=0 -F key=k`
    #[test]
    fn encodes_byte_exact() {
        let rule = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
            .with_syscall(42)
            .with_num(AUDIT_EUID, AUDIT_EQUAL, 0)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"k");
        let data = rule.to_bytes().unwrap();
        assert_eq!(data.len(), RULE_DATA_HEADER_LEN + 1);
        assert_eq!(word(&data, 0), 4, "flags: exit list");
        assert_eq!(word(&data, 1), 2, "action: always");
        assert_eq!(word(&data, 2), 3, "field_count: arch, euid, key");
        assert_eq!(
            word(&data, 3 + 1),
            1 << 10,
            "mask[1] bit 10: syscall 42 (connect)"
        );
        assert!((0..64).filter(|&w| w != 1).all(|w| word(&data, 3 + w) == 0));
        let (fields, values, flags) = (3 + 64, 3 + 128, 3 + 192);
        assert_eq!(word(&data, fields), 11, "fields[0]: arch");
        assert_eq!(
            word(&data, values),
            0xC000_003E,
            "values[0]: AUDIT_ARCH_X86_64"
        );
        assert_eq!(word(&data, flags), 0x4000_0000, "fieldflags[0]: =");
        assert_eq!(word(&data, fields + 1), 2, "fields[1]: euid");
        assert_eq!(word(&data, values + 1), 0, "values[1]: 0");
        assert_eq!(word(&data, fields + 2), 210, "fields[2]: key");
        assert_eq!(word(&data, values + 2), 1, "values[2]: key length");
        assert_eq!(word(&data, 3 + 256), 1, "buflen");
        assert_eq!(data[RULE_DATA_HEADER_LEN], b'k', "buf: the key");
        assert_eq!(AuditRule::from_bytes(&data).unwrap(), rule);
    }

    /// `-a never,exit -F arch=b32 -S socketcall -F a0&=0x3 -F exe=/bin/\xff -F saddr_fam>=2`
    /// plus field 999 (unknown) `<` 7: bytes built by hand as the kernel lists them.
    #[test]
    fn decodes_unknown_field_and_exe_string() {
        let mut words = vec![0u32; RULE_DATA_HEADER_LEN / 4];
        words[0] = AUDIT_FILTER_EXIT;
        words[1] = AUDIT_NEVER;
        words[2] = 5;
        words[3 + 102 / 32] |= 1 << (102 % 32); // socketcall
        let entries = [
            (AUDIT_ARCH, AUDIT_ARCH_I386, AUDIT_EQUAL),
            (AUDIT_ARG0, 3, AUDIT_BIT_TEST),
            (AUDIT_EXE, 6, AUDIT_EQUAL),
            (999, 7, AUDIT_LESS_THAN),
            (AUDIT_SADDR_FAM, 2, AUDIT_GREATER_THAN_OR_EQUAL),
        ];
        for (i, (f, v, op)) in entries.iter().enumerate() {
            words[3 + 64 + i] = *f;
            words[3 + 128 + i] = *v;
            words[3 + 192 + i] = *op;
        }
        words[3 + 256] = 6;
        let mut data: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        data.extend_from_slice(b"/bin/\xff");
        let rule = AuditRule::from_bytes(&data).unwrap();
        assert_eq!(rule.syscalls, vec![102]);
        assert_eq!(rule.fields[2].value, FieldValue::Str(b"/bin/\xff".to_vec()));
        assert_eq!(rule.fields[3].value, FieldValue::Num(7));
        assert_eq!(rule.key(), None);
        assert_eq!(
            rule.to_auditctl(),
            "-a never,exit -F arch=b32 -S socketcall -F a0&=0x3 -F exe=/bin/\u{fffd} f999<7 -F saddr_fam>=2"
        );
        assert_eq!(rule.to_bytes().unwrap(), data);
    }

    #[test]
    fn rejects_truncated_and_mismatched_data() {
        let rule = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS).with_str(
            AUDIT_FILTERKEY,
            AUDIT_EQUAL,
            b"abc",
        );
        let data = rule.to_bytes().unwrap();
        assert!(matches!(
            AuditRule::from_bytes(&data[..data.len() - 1]),
            Err(RuleError::Truncated { .. })
        ));
        assert!(matches!(
            AuditRule::from_bytes(&data[..100]),
            Err(RuleError::Truncated { .. })
        ));
        let bad =
            AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS).with_num(AUDIT_EXE, AUDIT_EQUAL, 1);
        assert!(matches!(bad.to_bytes(), Err(RuleError::ValueKind { .. })));
        let bad = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS).with_syscall(MAX_SYSCALL);
        assert!(matches!(
            bad.to_bytes(),
            Err(RuleError::SyscallOutOfRange(_))
        ));
    }

    /// Renderings checked against `auditctl -l` (audit 3.0.9) on kernel 6.18.
    #[test]
    fn renders_like_auditctl() {
        let r = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
            .with_syscall(112)
            .with_syscall(42)
            .with_num(AUDIT_ARG1, AUDIT_BIT_MASK, 4)
            .with_num(AUDIT_ARG2, AUDIT_BIT_TEST, 8)
            .with_num(AUDIT_EUID, AUDIT_LESS_THAN_OR_EQUAL, 0)
            .with_num(AUDIT_EUID, AUDIT_GREATER_THAN_OR_EQUAL, 0)
            .with_num(AUDIT_EUID, AUDIT_LESS_THAN, 5)
            .with_num(AUDIT_SUCCESS, AUDIT_EQUAL, 0)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"audetect-probe");
        assert_eq!(
            r.to_auditctl(),
            "-a always,exit -F arch=b64 -S connect,setsid -F a1&0x4 -F a2&=0x8 -F euid<=0 \
             -F euid>=0 -F euid<5 -F success=0 -F key=audetect-probe"
        );
        let r = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
            .with_syscall(42)
            .with_num(AUDIT_LOGINUID, AUDIT_NOT_EQUAL, u32::MAX)
            .with_num(AUDIT_ARG0, AUDIT_EQUAL, u32::MAX)
            .with_num(AUDIT_PPID, AUDIT_EQUAL, 3)
            .with_num(AUDIT_SADDR_FAM, AUDIT_EQUAL, 10)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"audetect-a\x01audetect-b");
        assert_eq!(
            r.to_auditctl(),
            "-a always,exit -F arch=b64 -S connect -F auid!=-1 -F a0=0xFFFFFFFF -F ppid=3 \
             -F saddr_fam=10 -F key=audetect-a -F key=audetect-b"
        );
        let mut r = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS).with_num(
            AUDIT_ARCH,
            AUDIT_EQUAL,
            AUDIT_ARCH_I386,
        );
        for nr in [1, 3, 102, 362, 66, 500] {
            r = r.with_syscall(nr);
        }
        let r = r.with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"k");
        assert_eq!(
            r.to_auditctl(),
            "-a always,exit -F arch=b32 -S exit,3,setsid,socketcall,connect,500 -F key=k"
        );
        let r = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
            .with_num(AUDIT_ARCH, AUDIT_NOT_EQUAL, AUDIT_ARCH_X86_64)
            .with_syscall(112)
            .with_str(AUDIT_EXE, AUDIT_EQUAL, b"/usr/bin/sp ace");
        assert_eq!(
            r.to_auditctl(),
            "-a always,exit -F arch!=b64 -S setsid -F exe=/usr/bin/sp ace"
        );
        let mut all = AuditRule::new(AUDIT_FILTER_EXIT, AUDIT_ALWAYS);
        all.syscalls = (0..MAX_SYSCALL).collect();
        let w = all
            .clone()
            .with_str(AUDIT_WATCH, AUDIT_EQUAL, b"/etc/passwd")
            .with_num(AUDIT_PERM, AUDIT_EQUAL, 2 | 4)
            .with_str(AUDIT_FILTERKEY, AUDIT_EQUAL, b"pw");
        assert_eq!(w.to_auditctl(), "-w /etc/passwd -p wa -k pw");
        assert_eq!(AuditRule::from_bytes(&w.to_bytes().unwrap()).unwrap(), w);
        let d = all
            .with_num(AUDIT_ARCH, AUDIT_EQUAL, AUDIT_ARCH_X86_64)
            .with_str(AUDIT_DIR, AUDIT_EQUAL, b"/etc/")
            .with_num(AUDIT_INODE, AUDIT_EQUAL, u32::MAX);
        assert_eq!(
            d.to_auditctl(),
            "-a always,exit -F arch=b64 -S all -F dir=/etc/ -F inode=4294967295"
        );
    }
}
