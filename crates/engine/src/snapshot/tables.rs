//! The socket tables of a network namespace (/proc/PID/net/tcp, tcp6, udp,
//! udp6, unix): one line at a time, no I/O, so tests feed captured lines.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Endpoint;

/// One row of a tcp/udp table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetRow {
    pub local: Endpoint,
    pub remote: Endpoint,
    pub state: u8,
    pub inode: u64,
}

/// One row of the unix table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixRow {
    pub inode: u64,
    pub state: &'static str,
    pub path: Option<String>,
}

/// The inode column of a row, without parsing the rest: most rows of a busy
/// namespace are someone else's sockets.
pub fn inode_of(line: &str, unix: bool) -> Option<u64> {
    let column = if unix { 6 } else { 9 };
    line.split_ascii_whitespace().nth(column)?.parse().ok()
}

/// `  0: 0100007F:B0E2 0100007F:15B3 01 00000000:00000000 ... 0 0 123456 ...`
/// Addresses are the kernel's 32-bit words in host byte order, in hex.
pub fn parse_inet(line: &str) -> Option<InetRow> {
    let mut cols = line.split_ascii_whitespace();
    let _slot = cols.next()?;
    let local = endpoint(cols.next()?)?;
    let remote = endpoint(cols.next()?)?;
    let state = u8::from_str_radix(cols.next()?, 16).ok()?;
    let inode = cols.nth(5)?.parse().ok()?;
    Some(InetRow {
        local,
        remote,
        state,
        inode,
    })
}

fn endpoint(s: &str) -> Option<Endpoint> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => Ipv4Addr::from(word(addr)?).to_string(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            Ipv6Addr::from(bytes).to_string()
        }
        _ => return None,
    };
    Some(Endpoint { ip, port })
}

/// The state of a TCP socket as netstat names it (include/net/tcp_states.h).
/// UDP reuses the numbers: 1 is a connected socket, 7 an unconnected one.
pub fn inet_state(state: u8, udp: bool) -> &'static str {
    match (state, udp) {
        (1, _) => "ESTABLISHED",
        (7, true) => "UNCONN",
        (2, _) => "SYN_SENT",
        (3, _) => "SYN_RECV",
        (4, _) => "FIN_WAIT1",
        (5, _) => "FIN_WAIT2",
        (6, _) => "TIME_WAIT",
        (7, _) => "CLOSE",
        (8, _) => "CLOSE_WAIT",
        (9, _) => "LAST_ACK",
        (10, _) => "LISTEN",
        (11, _) => "CLOSING",
        (12, _) => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// `ffff...: 00000002 00000000 00010000 0001 01 12345 /run/sock`
/// (Num RefCount Protocol Flags Type St Inode Path).
pub fn parse_unix(line: &str) -> Option<UnixRow> {
    let mut cols = line.split_ascii_whitespace();
    let _num = cols.next()?;
    let _refs = cols.next()?;
    let _proto = cols.next()?;
    let flags = u32::from_str_radix(cols.next()?, 16).ok()?;
    let _kind = cols.next()?;
    let st = u8::from_str_radix(cols.next()?, 16).ok()?;
    let inode = cols.next()?.parse().ok()?;
    // The path is the rest of the line; it may hold spaces.
    let path = rest_after_columns(line, 7);
    // __SO_ACCEPTCON: a listening socket.
    let state = if flags & 0x0001_0000 != 0 {
        "LISTEN"
    } else {
        match st {
            1 => "UNCONNECTED",
            2 => "CONNECTING",
            3 => "CONNECTED",
            4 => "DISCONNECTING",
            _ => "UNKNOWN",
        }
    };
    Some(UnixRow { inode, state, path })
}

/// The text after `n` whitespace-separated columns.
fn rest_after_columns(line: &str, n: usize) -> Option<String> {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(|c: char| c.is_ascii_whitespace())?;
        rest = rest[end..].trim_start();
    }
    (!rest.is_empty()).then(|| rest.trim_end().to_owned())
}
