//! Netlink framing target: arbitrary bytes as one datagram from the kernel,
//! walked into messages as control replies are, and classified as the
//! receive path classifies records. Nothing may panic, every payload and
//! body lies inside the datagram, and the messages re-encoded with exact
//! lengths walk back to the same messages.
#![no_main]

use audetect::kernel::fuzzing::{messages, record_outcome};
use audetect::kernel::{AuditRule, AuditStatus, RecvOutcome, AUDIT_GET, AUDIT_LIST_RULES};
use libfuzzer_sys::fuzz_target;

const NLMSG_HDRLEN: usize = 16;

/// A datagram of the messages, each with its exact nlmsg_len and NUL
/// padding to 4 bytes, as the kernel packs them.
fn encode(msgs: &[(u16, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(msg_type, seq, payload) in msgs {
        let len = u32::try_from(NLMSG_HDRLEN + payload.len()).expect("small input");
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&msg_type.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    let at = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    assert!(
        at <= outer.len() && inner.len() <= outer.len() - at,
        "a payload outside the datagram"
    );
    at
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes are the datagram's size as recvfrom reports it
    // (MSG_TRUNC), which may exceed the bytes the buffer holds.
    let [a, b, datagram @ ..] = data else {
        return;
    };
    let reported = usize::from(u16::from_le_bytes([*a, *b]));

    let msgs = messages(datagram);
    assert!(
        msgs.len() <= datagram.len() / NLMSG_HDRLEN,
        "more messages than headers fit"
    );
    let mut end = 0;
    for &(msg_type, seq, payload) in &msgs {
        let at = offset_in(datagram, payload);
        // Each payload follows its own header, after the previous message.
        assert!(at >= end + NLMSG_HDRLEN, "messages overlap");
        let h = &datagram[at - NLMSG_HDRLEN..at];
        assert_eq!(msg_type, u16::from_ne_bytes([h[4], h[5]]));
        assert_eq!(seq, u32::from_ne_bytes([h[8], h[9], h[10], h[11]]));
        end = at + payload.len();
        // What the reply handlers make of a payload.
        match msg_type {
            AUDIT_GET => {
                let status = AuditStatus::parse(payload);
                assert_eq!(status.is_some(), payload.len() >= 32);
                if let Some(s) = status {
                    assert_eq!(s.reply_len, payload.len());
                    assert_eq!(
                        s.pid,
                        u32::from_ne_bytes([payload[12], payload[13], payload[14], payload[15]])
                    );
                }
            }
            AUDIT_LIST_RULES => {
                if let Ok(rule) = AuditRule::from_bytes(payload) {
                    let _ = rule.to_auditctl();
                }
            }
            _ => {}
        }
    }
    let again = encode(&msgs);
    assert_eq!(
        messages(&again),
        msgs,
        "re-encoded messages walk differently"
    );

    for size in [datagram.len(), reported] {
        match record_outcome(datagram, size) {
            RecvOutcome::Malformed { len } => {
                assert_eq!(len, size);
                assert!(size.min(datagram.len()) < NLMSG_HDRLEN);
            }
            RecvOutcome::Record {
                msg_type,
                body,
                truncated,
            } => {
                let held = size.min(datagram.len());
                assert!(held >= NLMSG_HDRLEN);
                assert_eq!(msg_type, u16::from_ne_bytes([datagram[4], datagram[5]]));
                assert_eq!(truncated, size > datagram.len());
                assert_eq!(body.start, NLMSG_HDRLEN);
                assert!(body.end <= held, "body past the datagram");
                // Only NUL padding is trimmed, and all of it.
                assert!(datagram[body.end..held].iter().all(|&b| b == 0));
                assert!(body.is_empty() || datagram[body.end - 1] != 0);
                // The record parser takes the body as it stands.
                let _ = audetect::parse::parse_netlink(msg_type, &datagram[body]);
            }
            other => panic!("a datagram classified as {other:?}"),
        }
    }
});
