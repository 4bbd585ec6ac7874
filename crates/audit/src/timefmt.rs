//! RFC 3339 timestamps in UTC from epoch seconds, without a date-time crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Month abbreviations of RFC 3164 timestamps.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parts(sec: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (sec / 86_400) as i64;
    let rem = sec % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-27T07:38:54.123Z`
pub fn rfc3339_millis(sec: u64, millis: u32) -> String {
    let (y, mo, d, h, mi, s) = parts(sec);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

/// `2026-11-27T07:38:54.123456Z`
pub fn rfc3339_micros(sec: u64, micros: u32) -> String {
    let (y, mo, d, h, mi, s) = parts(sec);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
}

/// `Nov 27 07:38:54` (RFC 3164; day padded with a space).
pub fn rfc3164(sec: u64) -> String {
    let (_, mo, d, h, mi, s) = parts(sec);
    format!("{} {d:>2} {h:02}:{mi:02}:{s:02}", MONTHS[(mo - 1) as usize])
}

/// Seconds and microseconds since the epoch of a wall-clock instant.
pub fn split(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_millis(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_700_000_000, 123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339_micros(951_782_400, 5),
            "2000-02-29T00:00:00.000005Z"
        );
        assert_eq!(rfc3164(1_700_000_000), "Nov 14 22:13:20");
        assert_eq!(rfc3164(1_704_153_600), "Jan  2 00:00:00");
    }
}
