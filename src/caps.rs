//! Least privilege: the Linux capabilities audetect needs, checked at start
//! (refusing with the missing one's name) and the rest dropped once set up.

/// A capability audetect uses, and what for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub bit: u32,
    pub name: &'static str,
    pub why: &'static str,
}

pub const AUDIT_CONTROL: Cap = Cap {
    bit: 30,
    name: "CAP_AUDIT_CONTROL",
    why: "to install audit rules and change the audit status",
};
pub const AUDIT_READ: Cap = Cap {
    bit: 37,
    name: "CAP_AUDIT_READ",
    why: "to listen on the audit multicast group beside another audit daemon",
};
pub const SYS_PTRACE: Cap = Cap {
    bit: 19,
    name: "CAP_SYS_PTRACE",
    why: "to look at other users' processes in /proc (their socket fds)",
};
pub const DAC_READ_SEARCH: Cap = Cap {
    bit: 2,
    name: "CAP_DAC_READ_SEARCH",
    why: "to read /proc/PID/fd of processes it does not own",
};

/// What the daemon keeps after setup: audit control for repairs and the
/// clean stop, audit read for multicast, and what procfs lookups need.
pub const KEEP: [Cap; 4] = [AUDIT_CONTROL, AUDIT_READ, SYS_PTRACE, DAC_READ_SEARCH];

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("audetect needs {} ({}); run it as root, or grant it (systemd: AmbientCapabilities=)", .0.name, .0.why)]
    Missing(Cap),
    #[error("{op}: {source}")]
    Os {
        op: &'static str,
        source: std::io::Error,
    },
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

fn get() -> Result<[Data; 2], CapsError> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a v3 header and room for its two data words.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(CapsError::Os {
            op: "capget",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(data)
}

fn has(data: &[Data; 2], bit: u32) -> bool {
    data[(bit / 32) as usize].effective & (1 << (bit % 32)) != 0
}

/// The effective capability set, as one 64-bit mask.
pub fn effective() -> Result<u64, CapsError> {
    let d = get()?;
    Ok(u64::from(d[0].effective) | (u64::from(d[1].effective) << 32))
}

/// Refuses to go on without a capability the run needs, naming it.
pub fn require(needed: &[Cap]) -> Result<(), CapsError> {
    let data = get()?;
    match needed.iter().find(|c| !has(&data, c.bit)) {
        Some(c) => Err(CapsError::Missing(*c)),
        None => Ok(()),
    }
}

/// What the auditd plugin keeps: it never touches audit itself.
pub const KEEP_PLUGIN: [Cap; 2] = [SYS_PTRACE, DAC_READ_SEARCH];

/// The names of the capabilities of `KEEP` in `mask`.
pub fn names(mask: u64) -> String {
    KEEP.iter()
        .filter(|c| mask & (1 << c.bit) != 0)
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drops every capability but `keep`, from the bounding set too, so that
/// neither this thread nor anything it could execute gets them back.
/// Capabilities are per thread: call it before starting any thread.
pub fn drop_all_but(keep: &[Cap]) -> Result<u64, CapsError> {
    let keep: u64 = keep.iter().fold(0, |m, c| m | 1 << c.bit);
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for bit in 0..=last {
        if keep & (1 << bit) == 0 {
            // SAFETY: prctl with integer arguments. EINVAL for a capability
            // the kernel does not know is fine; anything else is reported.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, bit as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::EPERM) {
                    return Err(CapsError::Os {
                        op: "prctl(PR_CAPBSET_DROP)",
                        source: e,
                    });
                }
            }
        }
    }
    let current = get()?;
    let mut data = [Data::default(); 2];
    for i in 0..2 {
        let mask = (keep >> (32 * i)) as u32;
        data[i].effective = current[i].effective & mask;
        data[i].permitted = current[i].permitted & mask;
        data[i].inheritable = 0;
    }
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: capset with a v3 header and its two data words.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(CapsError::Os {
            op: "capset",
            source: std::io::Error::last_os_error(),
        });
    }
    effective()
}
