//! The system call table of the audit record model: every arch audetect
//! knows, by the id audit writes (`arch=c000003e`), with its calls both ways.

/// `AUDIT_ARCH_*` values: what `arch=` carries in records and in rules.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// AArch32 (EABI) processes, on an arm64 kernel built with COMPAT.
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
pub const AUDIT_ARCH_PPC64: u32 = 0x8000_0015;
pub const AUDIT_ARCH_PPC64LE: u32 = 0xC000_0015;
pub const AUDIT_ARCH_S390X: u32 = 0x8000_0016;

/// One arch: its audit id and the system calls audetect knows by name.
#[derive(Debug)]
pub struct Arch {
    /// The `AUDIT_ARCH_*` value.
    pub id: u32,
    /// The machine name, as uname and the kernel's headers call it.
    pub name: &'static str,
    /// Word size, the `b64`/`b32` auditctl writes for the arch.
    pub bits: u8,
    /// (number, name), sorted by number.
    calls: &'static [(u32, &'static str)],
}

impl Arch {
    /// (number, name), sorted by number.
    pub fn calls(&self) -> &'static [(u32, &'static str)] {
        self.calls
    }

    pub fn name_of(&self, nr: u32) -> Option<&'static str> {
        self.calls
            .binary_search_by_key(&nr, |&(n, _)| n)
            .ok()
            .map(|i| self.calls[i].1)
    }

    pub fn number_of(&self, name: &str) -> Option<u32> {
        self.calls
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(nr, _)| nr)
    }
}

/// Every arch audetect knows. Another one is one more row, with its calls
/// read from that arch's unistd headers.
pub static ARCHES: &[Arch] = &[
    Arch {
        id: AUDIT_ARCH_X86_64,
        name: "x86_64",
        bits: 64,
        calls: X86_64,
    },
    Arch {
        id: AUDIT_ARCH_I386,
        name: "i386",
        bits: 32,
        calls: I386,
    },
    Arch {
        id: AUDIT_ARCH_AARCH64,
        name: "aarch64",
        bits: 64,
        calls: AARCH64,
    },
    Arch {
        id: AUDIT_ARCH_ARM,
        name: "arm",
        bits: 32,
        calls: ARM,
    },
    // Big- and little-endian powerpc share one table; audit tells them apart.
    Arch {
        id: AUDIT_ARCH_PPC64LE,
        name: "ppc64le",
        bits: 64,
        calls: PPC64,
    },
    Arch {
        id: AUDIT_ARCH_PPC64,
        name: "ppc64",
        bits: 64,
        calls: PPC64,
    },
    Arch {
        id: AUDIT_ARCH_S390X,
        name: "s390x",
        bits: 64,
        calls: S390X,
    },
];

/// The arch of an `AUDIT_ARCH_*` value, if audetect knows it.
pub fn arch(id: u32) -> Option<&'static Arch> {
    ARCHES.iter().find(|a| a.id == id)
}

/// The arch audetect was built for, which a rule without `arch=` means
/// (auditctl reads such a rule as the machine it runs on).
pub fn native() -> u32 {
    host_arches()[0]
}

/// The arches whose processes run on the host audetect was built for: its
/// own, then its 32-bit compat arch where that is in common use (x86_64
/// runs i386 processes, arm64 AArch32 ones; a kernel without COMPAT never
/// writes those records, and their rules cost it nothing). ppc64le and
/// s390x kernels can run 32-bit processes too, but no distribution ships
/// them.
pub fn host_arches() -> &'static [u32] {
    if cfg!(target_arch = "x86") {
        &[AUDIT_ARCH_I386]
    } else if cfg!(target_arch = "aarch64") {
        &[AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM]
    } else if cfg!(target_arch = "arm") {
        &[AUDIT_ARCH_ARM]
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        &[AUDIT_ARCH_PPC64LE]
    } else if cfg!(target_arch = "powerpc64") {
        &[AUDIT_ARCH_PPC64]
    } else if cfg!(target_arch = "s390x") {
        &[AUDIT_ARCH_S390X]
    } else {
        &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386]
    }
}

/// Whether `arch`'s processes write little-endian words (the kernel's
/// __AUDIT_ARCH_LE bit): ppc64 and s390x do not.
pub fn is_little_endian(arch: u32) -> bool {
    arch & 0x4000_0000 != 0
}

/// Which argument of clone(2) holds its flags on `arch`: the first, except
/// on s390x, whose clone takes the new stack first (CLONE_BACKWARDS2).
pub fn clone_flags_arg(arch: u32) -> usize {
    usize::from(arch == AUDIT_ARCH_S390X)
}

/// The name of system call `nr` of `arch`.
pub fn name(arch: u32, nr: u32) -> Option<&'static str> {
    self::arch(arch)?.name_of(nr)
}

/// The number of system call `name` of `arch`.
pub fn number(arch: u32, name: &str) -> Option<u32> {
    self::arch(arch)?.number_of(name)
}

/// Some system calls, by (arch, number), across every arch that has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallSet {
    /// Sorted, for binary search.
    calls: Vec<(u32, u32)>,
}

impl SyscallSet {
    /// The calls of these names, on every arch that has them.
    pub fn of_names(names: &[&str]) -> SyscallSet {
        let mut calls: Vec<(u32, u32)> = ARCHES
            .iter()
            .flat_map(|a| names.iter().filter_map(|n| Some((a.id, a.number_of(n)?))))
            .collect();
        calls.sort_unstable();
        calls.dedup();
        SyscallSet { calls }
    }

    pub fn contains(&self, arch: u32, nr: u32) -> bool {
        self.calls.binary_search(&(arch, nr)).is_ok()
    }
}

/// Syscalls audetect uses or is likely to use next (process, network, file
/// and module events), checked against the kernel's unistd_64.h/unistd_32.h.
const X86_64: &[(u32, &str)] = &[
    (2, "open"),
    (41, "socket"),
    (42, "connect"),
    (43, "accept"),
    (44, "sendto"),
    (46, "sendmsg"),
    (49, "bind"),
    (50, "listen"),
    (56, "clone"),
    (57, "fork"),
    (58, "vfork"),
    (59, "execve"),
    (60, "exit"),
    (62, "kill"),
    (82, "rename"),
    (84, "rmdir"),
    (85, "creat"),
    (86, "link"),
    (87, "unlink"),
    (88, "symlink"),
    (101, "ptrace"),
    (105, "setuid"),
    (106, "setgid"),
    (112, "setsid"),
    (113, "setreuid"),
    (114, "setregid"),
    (117, "setresuid"),
    (119, "setresgid"),
    (122, "setfsuid"),
    (123, "setfsgid"),
    (133, "mknod"),
    (159, "adjtimex"),
    (164, "settimeofday"),
    (175, "init_module"),
    (227, "clock_settime"),
    (231, "exit_group"),
    (257, "openat"),
    (259, "mknodat"),
    (263, "unlinkat"),
    (264, "renameat"),
    (265, "linkat"),
    (266, "symlinkat"),
    (288, "accept4"),
    (305, "clock_adjtime"),
    (307, "sendmmsg"),
    (313, "finit_module"),
    (316, "renameat2"),
    (322, "execveat"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

const I386: &[(u32, &str)] = &[
    (1, "exit"),
    (2, "fork"),
    (5, "open"),
    (8, "creat"),
    (9, "link"),
    (10, "unlink"),
    (11, "execve"),
    (14, "mknod"),
    (23, "setuid"),
    (25, "stime"),
    (26, "ptrace"),
    (37, "kill"),
    (38, "rename"),
    (40, "rmdir"),
    (46, "setgid"),
    (66, "setsid"),
    (70, "setreuid"),
    (71, "setregid"),
    (79, "settimeofday"),
    (83, "symlink"),
    (102, "socketcall"),
    (120, "clone"),
    (124, "adjtimex"),
    (128, "init_module"),
    (138, "setfsuid"),
    (139, "setfsgid"),
    (164, "setresuid"),
    (170, "setresgid"),
    (190, "vfork"),
    (203, "setreuid32"),
    (204, "setregid32"),
    (208, "setresuid32"),
    (210, "setresgid32"),
    (213, "setuid32"),
    (214, "setgid32"),
    (215, "setfsuid32"),
    (216, "setfsgid32"),
    (252, "exit_group"),
    (264, "clock_settime"),
    (295, "openat"),
    (297, "mknodat"),
    (301, "unlinkat"),
    (302, "renameat"),
    (303, "linkat"),
    (304, "symlinkat"),
    (343, "clock_adjtime"),
    (345, "sendmmsg"),
    (350, "finit_module"),
    (353, "renameat2"),
    (358, "execveat"),
    (359, "socket"),
    (361, "bind"),
    (362, "connect"),
    (363, "listen"),
    (364, "accept4"),
    (369, "sendto"),
    (370, "sendmsg"),
    (404, "clock_settime64"),
    (405, "clock_adjtime64"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

/// arm64 uses the generic table (include/uapi/asm-generic/unistd.h): no
/// open, creat, fork, rename or unlink of its own, only their *at forms.
const AARCH64: &[(u32, &str)] = &[
    (33, "mknodat"),
    (35, "unlinkat"),
    (36, "symlinkat"),
    (37, "linkat"),
    (38, "renameat"),
    (56, "openat"),
    (93, "exit"),
    (94, "exit_group"),
    (105, "init_module"),
    (112, "clock_settime"),
    (117, "ptrace"),
    (129, "kill"),
    (143, "setregid"),
    (144, "setgid"),
    (145, "setreuid"),
    (146, "setuid"),
    (147, "setresuid"),
    (149, "setresgid"),
    (151, "setfsuid"),
    (152, "setfsgid"),
    (157, "setsid"),
    (170, "settimeofday"),
    (171, "adjtimex"),
    (198, "socket"),
    (200, "bind"),
    (201, "listen"),
    (202, "accept"),
    (203, "connect"),
    (206, "sendto"),
    (211, "sendmsg"),
    (220, "clone"),
    (221, "execve"),
    (242, "accept4"),
    (266, "clock_adjtime"),
    (269, "sendmmsg"),
    (273, "finit_module"),
    (276, "renameat2"),
    (281, "execveat"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

/// powerpc (arch/powerpc/kernel/syscalls/syscall.tbl, as the uapi
/// unistd_64.h gives it): socket calls of its own since 2.6.37 beside
/// socketcall, and no 32-bit-id set*id32 calls.
const PPC64: &[(u32, &str)] = &[
    (1, "exit"),
    (2, "fork"),
    (5, "open"),
    (8, "creat"),
    (9, "link"),
    (10, "unlink"),
    (11, "execve"),
    (14, "mknod"),
    (23, "setuid"),
    (26, "ptrace"),
    (37, "kill"),
    (38, "rename"),
    (40, "rmdir"),
    (46, "setgid"),
    (66, "setsid"),
    (70, "setreuid"),
    (71, "setregid"),
    (83, "symlink"),
    (102, "socketcall"),
    (120, "clone"),
    (128, "init_module"),
    (138, "setfsuid"),
    (139, "setfsgid"),
    (164, "setresuid"),
    (169, "setresgid"),
    (189, "vfork"),
    (234, "exit_group"),
    (286, "openat"),
    (288, "mknodat"),
    (292, "unlinkat"),
    (293, "renameat"),
    (294, "linkat"),
    (295, "symlinkat"),
    (326, "socket"),
    (327, "bind"),
    (328, "connect"),
    (329, "listen"),
    (330, "accept"),
    (335, "sendto"),
    (341, "sendmsg"),
    (344, "accept4"),
    (349, "sendmmsg"),
    (353, "finit_module"),
    (357, "renameat2"),
    (362, "execveat"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

/// s390x (unistd_64.h): its 64-bit set*id calls take the numbers that are
/// the *32 ones on i386; socket calls of their own since 4.3, and no
/// accept (only accept4).
const S390X: &[(u32, &str)] = &[
    (1, "exit"),
    (2, "fork"),
    (5, "open"),
    (8, "creat"),
    (9, "link"),
    (10, "unlink"),
    (11, "execve"),
    (14, "mknod"),
    (26, "ptrace"),
    (37, "kill"),
    (38, "rename"),
    (40, "rmdir"),
    (66, "setsid"),
    (83, "symlink"),
    (102, "socketcall"),
    (120, "clone"),
    (128, "init_module"),
    (190, "vfork"),
    (203, "setreuid"),
    (204, "setregid"),
    (208, "setresuid"),
    (210, "setresgid"),
    (213, "setuid"),
    (214, "setgid"),
    (215, "setfsuid"),
    (216, "setfsgid"),
    (248, "exit_group"),
    (288, "openat"),
    (290, "mknodat"),
    (294, "unlinkat"),
    (295, "renameat"),
    (296, "linkat"),
    (297, "symlinkat"),
    (344, "finit_module"),
    (347, "renameat2"),
    (354, "execveat"),
    (358, "sendmmsg"),
    (359, "socket"),
    (361, "bind"),
    (362, "connect"),
    (363, "listen"),
    (364, "accept4"),
    (369, "sendto"),
    (370, "sendmsg"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

/// AArch32 EABI (unistd-eabi.h): the i386 numbers up to 190 for the old
/// calls, its own for sockets; no socketcall.
const ARM: &[(u32, &str)] = &[
    (1, "exit"),
    (2, "fork"),
    (5, "open"),
    (8, "creat"),
    (9, "link"),
    (10, "unlink"),
    (11, "execve"),
    (14, "mknod"),
    (23, "setuid"),
    (26, "ptrace"),
    (37, "kill"),
    (38, "rename"),
    (40, "rmdir"),
    (46, "setgid"),
    (66, "setsid"),
    (70, "setreuid"),
    (71, "setregid"),
    (83, "symlink"),
    (120, "clone"),
    (128, "init_module"),
    (138, "setfsuid"),
    (139, "setfsgid"),
    (164, "setresuid"),
    (170, "setresgid"),
    (190, "vfork"),
    (203, "setreuid32"),
    (204, "setregid32"),
    (208, "setresuid32"),
    (210, "setresgid32"),
    (213, "setuid32"),
    (214, "setgid32"),
    (215, "setfsuid32"),
    (216, "setfsgid32"),
    (248, "exit_group"),
    (281, "socket"),
    (282, "bind"),
    (283, "connect"),
    (284, "listen"),
    (285, "accept"),
    (290, "sendto"),
    (296, "sendmsg"),
    (322, "openat"),
    (324, "mknodat"),
    (328, "unlinkat"),
    (329, "renameat"),
    (330, "linkat"),
    (331, "symlinkat"),
    (366, "accept4"),
    (374, "sendmmsg"),
    (379, "finit_module"),
    (382, "renameat2"),
    (387, "execveat"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search_and_ids_unique() {
        for a in ARCHES {
            assert!(a.calls.windows(2).all(|w| w[0].0 < w[1].0), "{}", a.name);
            assert_eq!(ARCHES.iter().filter(|b| b.id == a.id).count(), 1);
        }
    }

    #[test]
    fn looks_up_both_ways() {
        assert_eq!(name(AUDIT_ARCH_X86_64, 42), Some("connect"));
        assert_eq!(name(AUDIT_ARCH_I386, 102), Some("socketcall"));
        assert_eq!(name(AUDIT_ARCH_X86_64, 102), None);
        assert_eq!(name(0xB7, 42), None);
        assert_eq!(number(AUDIT_ARCH_I386, "setsid"), Some(66));
        assert_eq!(number(AUDIT_ARCH_X86_64, "socketcall"), None);
        assert_eq!(name(AUDIT_ARCH_AARCH64, 203), Some("connect"));
        assert_eq!(number(AUDIT_ARCH_AARCH64, "setsid"), Some(157));
        assert_eq!(number(AUDIT_ARCH_AARCH64, "open"), None, "only openat");
        for a in ARCHES {
            for &(nr, n) in a.calls {
                assert_eq!(a.number_of(n), Some(nr), "{} {n}", a.name);
            }
        }
    }

    #[test]
    fn a_set_holds_each_arch_s_numbers() {
        let set = SyscallSet::of_names(&["connect", "socketcall"]);
        assert!(set.contains(AUDIT_ARCH_X86_64, 42));
        assert!(set.contains(AUDIT_ARCH_I386, 362));
        assert!(set.contains(AUDIT_ARCH_I386, 102));
        assert!(!set.contains(AUDIT_ARCH_X86_64, 102));
        assert!(!set.contains(AUDIT_ARCH_I386, 42));
    }
}
