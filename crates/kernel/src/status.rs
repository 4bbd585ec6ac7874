//! The kernel's `struct audit_status` (AUDIT_GET reply, AUDIT_SET request) and
//! the subset of it audetect may change.

/// `audit_status.mask` bits: which fields an AUDIT_SET changes.
pub const AUDIT_STATUS_ENABLED: u32 = 0x0001;
pub const AUDIT_STATUS_FAILURE: u32 = 0x0002;
pub const AUDIT_STATUS_PID: u32 = 0x0004;
pub const AUDIT_STATUS_RATE_LIMIT: u32 = 0x0008;
pub const AUDIT_STATUS_BACKLOG_LIMIT: u32 = 0x0010;
pub const AUDIT_STATUS_BACKLOG_WAIT_TIME: u32 = 0x0020;

/// Size of the full structure on current kernels (11 u32 fields).
pub const AUDIT_STATUS_LEN: usize = 11 * 4;
/// The original structure (up to `backlog`) that every kernel sends.
const AUDIT_STATUS_MIN_LEN: usize = 8 * 4;

/// `enabled` value meaning "locked until reboot": configuration is immutable.
pub const AUDIT_LOCKED: u32 = 2;

/// The kernel's audit status. Fields an older kernel does not send read as 0;
/// `reply_len` tells which were present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStatus {
    pub mask: u32,
    /// 0 off, 1 on, 2 on and locked.
    pub enabled: u32,
    /// 0 silent, 1 printk, 2 panic on lost records.
    pub failure: u32,
    /// The registered audit daemon's pid, 0 if none.
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
    /// Also `version` on kernels 3.12 to 3.18 (a union in the kernel).
    pub feature_bitmap: u32,
    pub backlog_wait_time: u32,
    pub backlog_wait_time_actual: u32,
    /// Bytes the kernel actually sent.
    pub reply_len: usize,
}

impl AuditStatus {
    /// Parses an AUDIT_GET reply body. Shorter (older kernel) replies are
    /// fine down to the original 8-field structure; longer ones (newer kernel)
    /// have their extra fields ignored. None if even that is missing.
    pub fn parse(body: &[u8]) -> Option<AuditStatus> {
        if body.len() < AUDIT_STATUS_MIN_LEN {
            return None;
        }
        let word = |i: usize| {
            body.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        Some(AuditStatus {
            mask: word(0),
            enabled: word(1),
            failure: word(2),
            pid: word(3),
            rate_limit: word(4),
            backlog_limit: word(5),
            lost: word(6),
            backlog: word(7),
            feature_bitmap: word(8),
            backlog_wait_time: word(9),
            backlog_wait_time_actual: word(10),
            reply_len: body.len(),
        })
    }

    /// Whether the kernel reported `backlog_wait_time` (kernels 3.14+), i.e.
    /// whether it can be read back and restored.
    pub fn has_backlog_wait_time(&self) -> bool {
        self.reply_len >= 10 * 4
    }

    /// Encodes the structure as an AUDIT_SET request body.
    pub(crate) fn to_bytes(self) -> [u8; AUDIT_STATUS_LEN] {
        let words = [
            self.mask,
            self.enabled,
            self.failure,
            self.pid,
            self.rate_limit,
            self.backlog_limit,
            self.lost,
            self.backlog,
            self.feature_bitmap,
            self.backlog_wait_time,
            self.backlog_wait_time_actual,
        ];
        let mut out = [0u8; AUDIT_STATUS_LEN];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }
}

/// The status fields audetect may change; `None` leaves a field alone.
/// The daemon pid is set through `AuditSocket::register_daemon` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusChange {
    pub enabled: Option<u32>,
    pub failure: Option<u32>,
    pub rate_limit: Option<u32>,
    pub backlog_limit: Option<u32>,
    pub backlog_wait_time: Option<u32>,
}

impl StatusChange {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == StatusChange::default()
    }

    /// The AUDIT_SET request, or why it must not be sent. enabled=2 locks the
    /// configuration until reboot and failure=2 panics the machine when a
    /// record is lost: on a shared kernel neither is ours to decide, so they
    /// (and any larger value, which no kernel accepts today) are refused here.
    pub(crate) fn to_request(self) -> Result<AuditStatus, String> {
        if let Some(v) = self.enabled.filter(|&v| v >= AUDIT_LOCKED) {
            return Err(format!(
                "enabled={v} (2 locks the audit configuration until reboot)"
            ));
        }
        if let Some(v) = self.failure.filter(|&v| v >= 2) {
            return Err(format!(
                "failure={v} (2 makes the kernel panic when it loses a record)"
            ));
        }
        let mut s = AuditStatus::default();
        if let Some(v) = self.enabled {
            s.mask |= AUDIT_STATUS_ENABLED;
            s.enabled = v;
        }
        if let Some(v) = self.failure {
            s.mask |= AUDIT_STATUS_FAILURE;
            s.failure = v;
        }
        if let Some(v) = self.rate_limit {
            s.mask |= AUDIT_STATUS_RATE_LIMIT;
            s.rate_limit = v;
        }
        if let Some(v) = self.backlog_limit {
            s.mask |= AUDIT_STATUS_BACKLOG_LIMIT;
            s.backlog_limit = v;
        }
        if let Some(v) = self.backlog_wait_time {
            s.mask |= AUDIT_STATUS_BACKLOG_WAIT_TIME;
            s.backlog_wait_time = v;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn parses_full_reply() {
        let body = words(&[0x7f, 1, 1, 4242, 0, 8192, 3, 5, 0x7f, 0, 12]);
        let s = AuditStatus::parse(&body).unwrap();
        assert_eq!(
            (s.enabled, s.pid, s.backlog_limit, s.lost),
            (1, 4242, 8192, 3)
        );
        assert_eq!((s.backlog_wait_time, s.backlog_wait_time_actual), (0, 12));
        assert!(s.has_backlog_wait_time());
    }

    /// A 3.10-era kernel sends 8 fields (32 bytes), no feature_bitmap and no
    /// backlog_wait_time.
    #[test]
    fn parses_short_reply_of_older_kernel() {
        let body = words(&[0, 1, 1, 0, 0, 320, 0, 0]);
        let s = AuditStatus::parse(&body).unwrap();
        assert_eq!((s.enabled, s.failure, s.backlog_limit), (1, 1, 320));
        assert_eq!((s.feature_bitmap, s.backlog_wait_time), (0, 0));
        assert!(!s.has_backlog_wait_time());
        assert_eq!(AuditStatus::parse(&body[..28]), None);
        // A longer reply from a future kernel keeps the fields we know.
        let mut longer = words(&[0, 0, 1, 0, 0, 64, 0, 0, 0, 15000, 0]);
        longer.extend_from_slice(&[9; 8]);
        assert_eq!(
            AuditStatus::parse(&longer).unwrap().backlog_wait_time,
            15000
        );
    }

    #[test]
    fn change_sets_mask_bits_only_for_given_fields() {
        let req = StatusChange {
            backlog_limit: Some(8192),
            backlog_wait_time: Some(0),
            ..Default::default()
        }
        .to_request()
        .unwrap();
        assert_eq!(
            req.mask,
            AUDIT_STATUS_BACKLOG_LIMIT | AUDIT_STATUS_BACKLOG_WAIT_TIME
        );
        let bytes = req.to_bytes();
        assert_eq!(bytes[0..4], 0x30u32.to_ne_bytes(), "mask");
        assert_eq!(bytes[20..24], 8192u32.to_ne_bytes(), "backlog_limit");
        assert_eq!(bytes[36..40], 0u32.to_ne_bytes(), "backlog_wait_time");
    }

    #[test]
    fn refuses_lock_and_panic_modes() {
        for change in [
            StatusChange {
                enabled: Some(2),
                ..Default::default()
            },
            StatusChange {
                failure: Some(2),
                ..Default::default()
            },
            StatusChange {
                enabled: Some(1),
                failure: Some(7),
                ..Default::default()
            },
        ] {
            assert!(change.to_request().is_err(), "{change:?}");
        }
        let ok = StatusChange {
            enabled: Some(1),
            failure: Some(1),
            ..Default::default()
        };
        assert_eq!(ok.to_request().unwrap().mask, 3);
    }
}
