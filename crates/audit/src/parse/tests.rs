//! Parser tests on records captured from this machine's kernel
//! (tests/fixtures/scenarios.log, made by tests/fixtures/capture.py).

use super::*;

const FIXTURE: &str = include_str!("../../../../tests/fixtures/scenarios.log");

fn fixture_line(needle: &str) -> &'static str {
    FIXTURE
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no fixture line contains {needle:?}"))
}

#[test]
fn every_captured_record_parses() {
    for line in FIXTURE.lines() {
        let r = parse_log_line(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(r.time.sec > 1_700_000_000, "{line}");
    }
}

#[test]
fn syscall_record_fields() {
    let r = parse_log_line(fixture_line("syscall=42 success=yes").as_bytes()).unwrap();
    assert_eq!(r.rtype, types::SYSCALL);
    assert_eq!(r.type_name(), "SYSCALL");
    assert_eq!(r.get("arch").unwrap().hex(), Some(0xc000003e));
    assert_eq!(r.get("syscall").unwrap().decimal(), Some(42));
    assert_eq!(r.get("exit").unwrap().signed(), Some(0));
    assert_eq!(r.get("euid").unwrap().decimal(), Some(0));
    let exe = r.get("exe").unwrap();
    assert!(exe.quoted);
    assert_eq!(exe.untrusted().unwrap().as_ref(), b"/tmp/actor");
    assert_eq!(r.get("tty").unwrap().raw, b"(none)");
    assert_eq!(r.get("missing"), None);
}

#[test]
fn negative_exit_and_null_key() {
    let r = parse_log_line(fixture_line("exit=-111").as_bytes()).unwrap();
    assert_eq!(r.get("exit").unwrap().signed(), Some(-111));
    let r = parse_log_line(fixture_line("key=(null)").as_bytes()).unwrap();
    assert_eq!(r.get("key").unwrap().untrusted(), None);
}

#[test]
fn hex_encoded_proctitle_decodes() {
    let r = parse_log_line(fixture_line("PROCTITLE").as_bytes()).unwrap();
    let title = r.get("proctitle").unwrap().untrusted().unwrap();
    assert!(title.starts_with(b"auditctl\0-a\0always,exit"), "{title:?}");
}

#[test]
fn sockaddrs_decode_by_family() {
    let decode = |needle: &str| {
        let r = parse_log_line(fixture_line(needle).as_bytes()).unwrap();
        decode_sockaddr(&decode_hex(r.get("saddr").unwrap().raw).unwrap()).unwrap()
    };
    match decode("saddr=0200") {
        SockAddr::Inet(a) => assert_eq!(a.ip().to_string(), "127.0.0.1"),
        other => panic!("{other:?}"),
    }
    match decode("saddr=0A00") {
        SockAddr::Inet6(a) => {
            assert_eq!(a.ip().to_string(), "::1");
            assert_eq!(a.port(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode("saddr=0100"),
        SockAddr::Unix(b"/nonexistent".to_vec())
    );
    assert_eq!(decode("saddr=1000"), SockAddr::Other(16));
}

#[test]
fn netlink_body_parses_like_a_log_line() {
    let line = fixture_line("syscall=112");
    let body = &line[line.find("audit(").unwrap()..];
    let mut bytes = body.as_bytes().to_vec();
    bytes.extend_from_slice(b"\0\0");
    let a = parse_netlink(types::SYSCALL, &bytes).unwrap();
    let b = parse_log_line(line.as_bytes()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn unknown_types_are_kept() {
    let r = parse_log_line(b"type=UNKNOWN[1334] msg=audit(1700000000.001:5): prog-id=3 op=LOAD")
        .unwrap();
    assert_eq!(r.rtype, 1334);
    assert_eq!(r.type_name(), "UNKNOWN[1334]");
    let r = parse_log_line(b"type=FUTURE_THING msg=audit(1700000000.001:5): a=1").unwrap();
    assert_eq!(r.type_name(), "FUTURE_THING");
    assert_eq!(r.get("a").unwrap().raw, b"1");
}

#[test]
fn node_prefix_enriched_suffix_and_nested_msg() {
    let r = parse_log_line(
        b"node=web1 type=USER_START msg=audit(1700000000.001:7): pid=1 uid=0 msg='op=PAM:session_open acct=\"root\" res=success'\x1dUID=\"root\" AUID=\"root\"",
    )
    .unwrap();
    assert_eq!(r.rtype, 1105);
    let msg = r.get("msg").unwrap();
    assert!(msg.quoted);
    assert_eq!(msg.raw, b"op=PAM:session_open acct=\"root\" res=success");
    assert_eq!(r.get("UID"), None, "enriched fields are left out");
}

#[test]
fn values_that_are_not_utf8_survive() {
    let r = parse_log_line(
        b"type=SYSCALL msg=audit(1700000000.001:8): comm=\"\xff\xfe\" exe=2F746D702FFF",
    )
    .unwrap();
    assert_eq!(
        r.get("comm").unwrap().untrusted().unwrap().as_ref(),
        b"\xff\xfe"
    );
    assert_eq!(
        r.get("exe").unwrap().untrusted().unwrap().as_ref(),
        b"/tmp/\xff"
    );
}

#[test]
fn malformed_lines_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"garbage",
        b"type=SYSCALL",
        b"type=SYSCALL msg=audit(",
        b"type=SYSCALL msg=audit(17:1): x=1",
        b"type=SYSCALL msg=audit(1700000000.1:1): x=1",
        b"type=SYSCALL msg=audit(1700000000.001:): x=1",
        b"type=SYS CALL msg=audit(1700000000.001:1): x=1",
        b"type=SYSCALL msg=audit(1700000000.001:1)x=1",
    ] {
        assert!(
            parse_log_line(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(parse_netlink(1300, b"not a record").is_err());
    // Odd tokens inside a well-formed record are tolerated.
    let r = parse_log_line(b"type=AVC msg=audit(1700000000.001:1): avc:  denied  { read } for pid=5 ==x= k=\"unterminated").unwrap();
    assert_eq!(r.get("pid").unwrap().decimal(), Some(5));
    assert_eq!(r.get("k").unwrap().raw, b"unterminated");
}

/// What real logs carry that the kernel never writes: auditd's EOE without
/// the colon, a byte order mark on the first line, a `node=` name.
#[test]
fn eoe_without_a_colon_a_bom_and_a_node_parse() {
    let eoe = parse_log_line(b"type=EOE msg=audit(1364481363.243:24287)").unwrap();
    assert_eq!((eoe.rtype, eoe.serial), (types::EOE, 24287));
    let bom = parse_log_line(
        b"\xEF\xBB\xBFtype=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 pid=1",
    )
    .unwrap();
    assert_eq!(bom.rtype, types::SYSCALL);
    let node = parse_log_line(b"node=web01 type=EOE msg=audit(1364481363.243:24287): ").unwrap();
    assert_eq!(node.node.as_deref(), Some("web01"));
    assert!(parse_log_line(b"type=EOE msg=audit(1364481363.243:24287)x").is_err());
    // auditd's own record, as go-libaudit's rhel7 log has it.
    let daemon = parse_log_line(
        b"type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512 res=success",
    )
    .unwrap();
    assert_eq!(daemon.serial, 34);
    assert_eq!(daemon.get("pid").unwrap().decimal(), Some(1512));
}
