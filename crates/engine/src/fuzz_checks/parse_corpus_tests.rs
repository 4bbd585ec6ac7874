//! The `parse_record` fuzz target's corpus (fuzz/corpus/parse_record, see
//! fuzz/README.md) replayed with the target's own checks, and round-trip
//! properties of what audit hex-encodes, on inputs from a seeded generator.

use crate::fuzz_checks::{corpus, record_input};
use crate::normalize::Normalizer;
use crate::parse::*;
use crate::process::NoProc;
use crate::reassemble::Reassembler;
use crate::testkit;

/// A xorshift64* generator: the same cases on every run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Bytes biased towards what breaks escaping: controls, quotes, `]`,
    /// backslashes, `=`, spaces, 0x1d, 0x7f and bytes that are not UTF-8.
    pub(crate) fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        const NASTY: &[u8] = b"\n\r\t\0\x1d\x7f\"'\\]=[ /%{}:<>#\xff\xc3\xa9\xe2\x80\xa8";
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| match self.below(3) {
                0 => NASTY[self.below(NASTY.len())],
                1 => b'a' + self.below(26) as u8,
                _ => self.next() as u8,
            })
            .collect()
    }
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02X}")).collect()
}

#[test]
fn parse_record_corpus_replays() {
    for (name, data) in corpus("parse_record") {
        let outcome = std::panic::catch_unwind(|| record_input(&data));
        assert!(outcome.is_ok(), "corpus file {name} fails: {data:?}");
    }
}

/// The fuzzer's first find: a 19-digit time overflowed the milliseconds.
#[test]
fn huge_record_times_do_not_overflow() {
    let t = Timestamp {
        sec: 9_999_999_999_999_999_999,
        msec: 999,
    };
    assert_eq!(t.as_millis(), u64::MAX);
    let line = b"type=SYSCALL msg=audit(9999999999999999999.111:11): arch=c000003e syscall=112 success=yes exit=1 pid=1 euid=0 exe=\"/x\"";
    record_input(line);
}

/// A SYSCALL record of a successful setsid() by root, with `exe` as given.
fn setsid_record(serial: u64, exe: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "audit(1795765558.200:{serial}): arch=c000003e syscall=112 success=yes exit={serial} a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=4242 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm=\"x\" exe="
    )
    .into_bytes();
    body.extend_from_slice(exe);
    body.extend_from_slice(b" subj=unconfined key=(null)");
    body
}

/// What the kernel's audit_log_untrustedstring does: quoted when every byte
/// is printable ASCII other than `"` and space, else upper-case hex.
fn kernel_encoding(b: &[u8]) -> Vec<u8> {
    if !b.is_empty() && b.iter().all(|&c| c > 0x20 && c < 0x7f && c != b'"') {
        [&b"\""[..], b, b"\""].concat()
    } else {
        hex_upper(b).into_bytes()
    }
}

#[test]
fn untrusted_values_round_trip_through_hex_and_quotes() {
    let mut rng = Rng::new(0x5eed_0001);
    for case in 0..2_000 {
        let b = match case {
            0 => b"/tmp/x\ntype=SYSCALL msg=audit(1.000:1): exe=\"/bin/sh\"".to_vec(),
            1 => b"/tmp/\"quoted\" ]\\ \x1d\xff\xfe".to_vec(),
            2 => b"(null)".to_vec(),
            _ if case % 3 == 0 => (0..rng.below(64))
                .map(|_| 0x21 + rng.below(0x5e) as u8)
                .filter(|&c| c != b'"')
                .collect(),
            _ => rng.bytes(256),
        };
        let mut forms = vec![
            hex_upper(&b).into_bytes(),
            hex_upper(&b).to_lowercase().into_bytes(),
        ];
        if !b.is_empty() && !b.contains(&b'"') && b.iter().all(|c| c.is_ascii_graphic()) {
            forms.push([&b"\""[..], &b, b"\""].concat());
        }
        for form in forms {
            if form.is_empty() {
                continue; // hex of nothing: the kernel writes no such field
            }
            let body = setsid_record(7, &form);
            let r = parse_netlink(types::SYSCALL, &body).unwrap();
            let exe = r.get("exe").unwrap().untrusted();
            assert_eq!(
                exe.as_deref(),
                Some(&b[..]),
                "{:?} as {:?}",
                String::from_utf8_lossy(&b),
                String::from_utf8_lossy(&form)
            );
            // The fields after it are still read as such.
            assert_eq!(r.get("key").unwrap().raw, b"(null)");
            assert_eq!(r.get("subj").unwrap().raw, b"unconfined");
        }
    }
}

#[test]
fn executables_come_out_of_normalize_as_lossy_text_in_valid_json() {
    let mut rng = Rng::new(0x5eed_0002);
    let mut n = Normalizer::new(NoProc);
    for serial in 1..=500u64 {
        let mut b = rng.bytes(200);
        if b.is_empty() {
            b.push(b'/');
        }
        let r = parse_netlink(types::SYSCALL, &setsid_record(serial, &kernel_encoding(&b)));
        let eoe = format!("audit(1795765558.200:{serial}): ");
        let eoe = parse_netlink(types::EOE, eoe.as_bytes()).unwrap();
        let events = testkit::reassemble(Reassembler::default(), [r.unwrap(), eoe]);
        assert_eq!(events.len(), 1);
        let ecs = n.normalize(&events[0]).expect("a setsid event");
        let want = String::from_utf8_lossy(&b);
        assert_eq!(ecs.process.executable(), Some(&*want));
        let name = want.rsplit('/').next().unwrap();
        assert_eq!(ecs.process.name(), Some(name));
        let json = serde_json::to_string(&ecs).unwrap();
        assert!(!json.contains(['\n', '\r', '\0', '\u{1d}']), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["process"]["executable"], *want);
    }
}

#[test]
fn sockaddrs_round_trip_through_hex() {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let mut rng = Rng::new(0x5eed_0003);
    for case in 0..3_000u64 {
        let (addr, mut raw) = match case % 3 {
            0 => {
                let a = SocketAddrV4::new(Ipv4Addr::from(rng.next() as u32), rng.next() as u16);
                let mut raw = 2u16.to_ne_bytes().to_vec();
                raw.extend_from_slice(&a.port().to_be_bytes());
                raw.extend_from_slice(&a.ip().octets());
                raw.extend_from_slice(&[0; 8]);
                (SockAddr::Inet(a), raw)
            }
            1 => {
                let ip = Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next()));
                let a =
                    SocketAddrV6::new(ip, rng.next() as u16, rng.next() as u32, rng.next() as u32);
                let mut raw = 10u16.to_ne_bytes().to_vec();
                raw.extend_from_slice(&a.port().to_be_bytes());
                raw.extend_from_slice(&a.flowinfo().to_be_bytes());
                raw.extend_from_slice(&a.ip().octets());
                raw.extend_from_slice(&a.scope_id().to_ne_bytes());
                (SockAddr::Inet6(a), raw)
            }
            _ => {
                let mut path: Vec<u8> = rng.bytes(100).into_iter().filter(|&c| c != 0).collect();
                let abstract_ns = rng.below(2) == 0;
                if abstract_ns {
                    path.insert(0, 0);
                }
                let mut raw = 1u16.to_ne_bytes().to_vec();
                raw.extend_from_slice(&path);
                if !abstract_ns && !path.is_empty() {
                    raw.push(0);
                }
                (SockAddr::Unix(path), raw)
            }
        };
        // The kernel may copy in more than the family needs.
        if case % 7 == 0 && !matches!(addr, SockAddr::Unix(_)) {
            raw.extend_from_slice(&[0xAB; 4]);
        }
        let hex = hex_upper(&raw);
        let body = format!("audit(1795765558.300:{case}): saddr={hex}");
        let r = parse_netlink(types::SOCKADDR, body.as_bytes()).unwrap();
        let decoded = decode_hex(r.get("saddr").unwrap().raw).and_then(|b| decode_sockaddr(&b));
        assert_eq!(decoded.as_ref(), Some(&addr), "{hex}");
        assert_eq!(decoded.unwrap().family(), addr.family());
        // Cut short of its family's size, it is refused, never misread.
        if let SockAddr::Inet(_) | SockAddr::Inet6(_) = addr {
            let need = if addr.family() == 2 { 8 } else { 24 };
            assert_eq!(decode_sockaddr(&raw[..need - 1]), None);
        }
    }
}

#[test]
fn a_fake_second_header_in_a_record_body_stays_inside_the_first_record() {
    let body = b"audit(1795765558.400:50): arch=c000003e syscall=112 success=yes exit=0 pid=10 euid=1000 exe=\"/a\"\naudit(1795765558.400:51): pid=1 euid=0 exe=\"/bin/evil\"";
    let r = parse_netlink(types::SYSCALL, body).unwrap();
    assert_eq!(
        (r.time.sec, r.time.msec, r.serial),
        (1_795_765_558, 400, 50)
    );
    // The first value of each field is the kernel's; what follows cannot shadow it.
    assert_eq!(r.get("pid").unwrap().decimal(), Some(10));
    assert_eq!(r.get("euid").unwrap().decimal(), Some(1000));
    assert_eq!(r.get("exe").unwrap().untrusted().unwrap().as_ref(), b"/a");

    // A value holding a header: quoted (as a log may show it) or hex (as the
    // kernel writes anything with a space), it is one value of one record.
    let evil = b"/tmp/x msg=audit(1795765558.400:99): pid=1 euid=0";
    let lines = [
        [
            &b"type=SYSCALL msg="[..],
            &setsid_record(52, &[&b"\""[..], evil, b"\""].concat()),
        ]
        .concat(),
        [
            &b"type=SYSCALL msg="[..],
            &setsid_record(52, hex_upper(evil).as_bytes()),
        ]
        .concat(),
    ];
    for line in lines {
        let r = parse_log_line(&line).unwrap();
        assert_eq!(r.serial, 52);
        assert_eq!(r.get("pid").unwrap().decimal(), Some(4242));
        assert_eq!(r.get("exe").unwrap().untrusted().unwrap().as_ref(), evil);
        let events = testkit::reassemble(Reassembler::default(), [r]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].records.len(), 1);
        assert_eq!(events[0].serial, 52);
    }

    // In a log, a second record on the same line is not a second record.
    let two = b"type=SYSCALL msg=audit(1795765558.400:53): pid=7 type=SYSCALL msg=audit(1795765558.400:54): pid=8";
    let r = parse_log_line(two).unwrap();
    assert_eq!(r.serial, 53);
    assert_eq!(r.get("pid").unwrap().decimal(), Some(7));
}
