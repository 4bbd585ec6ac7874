//! utmp (/run/utmp): glibc's fixed-size login records, read without libc's
//! getutent (which locks the file and keeps global state). Offsets come from
//! libc's own `utmpx` definition, which glibc's `utmp` shares, so the parser
//! follows the target's layout (384 bytes on x86_64).

use std::mem::{offset_of, size_of};

use libc::utmpx;

/// The size of one record.
pub const RECORD: usize = size_of::<utmpx>();

/// ut_type of a login session (utmp.h).
pub const USER_PROCESS: i16 = 7;

/// The fields of a record audetect reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: i16,
    pub pid: i32,
    pub line: String,
    pub user: String,
    pub host: String,
    /// Login time, seconds since the epoch.
    pub sec: u64,
}

const TYPE: usize = offset_of!(utmpx, ut_type);
const PID: usize = offset_of!(utmpx, ut_pid);
const LINE: usize = offset_of!(utmpx, ut_line);
const USER: usize = offset_of!(utmpx, ut_user);
const HOST: usize = offset_of!(utmpx, ut_host);
const TV: usize = offset_of!(utmpx, ut_tv);
/// ut_tv is two 32-bit words on x86_64 (for 32-bit compatibility of the
/// file) and a native timeval elsewhere: the next field says which.
const TV_SEC_SIZE: usize = (offset_of!(utmpx, ut_addr_v6) - TV) / 2;

/// The records of a utmp file; a short tail (a writer mid-update) is ignored.
pub fn parse(bytes: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    bytes.chunks_exact(RECORD).map(entry)
}

fn entry(r: &[u8]) -> Entry {
    let i16_at = |o: usize| i16::from_ne_bytes([r[o], r[o + 1]]);
    let i32_at = |o: usize| i32::from_ne_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
    let sec = if TV_SEC_SIZE == 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[TV..TV + 8]);
        u64::try_from(i64::from_ne_bytes(b)).unwrap_or(0)
    } else {
        // Unsigned: glibc's 32-bit field runs to 2106 this way, not 2038.
        u64::from(i32_at(TV) as u32)
    };
    Entry {
        kind: i16_at(TYPE),
        pid: i32_at(PID),
        line: text(&r[LINE..LINE + 32]),
        user: text(&r[USER..USER + 32]),
        host: text(&r[HOST..HOST + 256]),
        sec,
    }
}

/// A NUL-padded (not always NUL-terminated) field.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}
