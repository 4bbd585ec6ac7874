//! utmp target: arbitrary bytes as /run/utmp. Nothing may panic; each whole
//! record gives one entry (a short tail none), with text fields that hold
//! no NUL, and the login time the snapshot prints is an RFC 3339 time.
#![no_main]

use audetect::snapshot::utmp::{parse, RECORD};
use audetect::timefmt;
use libfuzzer_sys::fuzz_target;

/// 9999-12-31T23:59:59Z: four-digit years, as RFC 3339 has them.
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    let entries: Vec<_> = parse(data).collect();
    assert_eq!(entries.len(), data.len() / RECORD);
    for e in &entries {
        for field in [&e.line, &e.user, &e.host] {
            assert!(!field.contains('\0'), "NUL in {field:?}");
        }
        assert!(e.line.len() <= 32 * 3 && e.user.len() <= 32 * 3 && e.host.len() <= 256 * 3);
        let login = timefmt::rfc3339_millis(e.sec, 0);
        if e.sec <= LAST_RFC3339_SECOND {
            let b = login.as_bytes();
            assert_eq!(b.len(), 24, "{login}");
            assert_eq!(
                (b[4], b[7], b[10], b[13], b[16], b[19], b[23]),
                (b'-', b'-', b'T', b':', b':', b'.', b'Z'),
                "{login}"
            );
        }
    }
});
