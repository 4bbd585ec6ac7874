//! Audit record text → typed records: type, record time, serial and fields,
//! from netlink datagrams or auditd log lines. Bytes in, no I/O.

use std::borrow::Cow;
use std::fmt;

use memchr::memchr;

/// Record types we act on; everything else is kept with its number or name.
pub mod types {
    pub const SYSCALL: u16 = 1300;
    pub const PATH: u16 = 1302;
    pub const IPC: u16 = 1303;
    pub const SOCKETCALL: u16 = 1304;
    pub const CONFIG_CHANGE: u16 = 1305;
    pub const SOCKADDR: u16 = 1306;
    pub const CWD: u16 = 1307;
    pub const EXECVE: u16 = 1309;
    pub const EOE: u16 = 1320;
    pub const PROCTITLE: u16 = 1327;
    /// The offset a clock step injected (settimeofday, clock_settime,
    /// adjtimex ADJ_SETOFFSET), in an audited call's event.
    pub const TIME_INJOFFSET: u16 = 1332;
    /// One io_uring operation the io_uring filter audited.
    pub const URINGOP: u16 = 1336;
}

/// The auditd name of each record type we may meet in a log, and its number.
const TYPE_NAMES: &[(&str, u16)] = &[
    ("SYSCALL", types::SYSCALL),
    ("PATH", types::PATH),
    ("IPC", types::IPC),
    ("SOCKETCALL", types::SOCKETCALL),
    ("CONFIG_CHANGE", types::CONFIG_CHANGE),
    ("SOCKADDR", types::SOCKADDR),
    ("CWD", types::CWD),
    ("EXECVE", types::EXECVE),
    ("EOE", types::EOE),
    ("PROCTITLE", types::PROCTITLE),
    ("TIME_INJOFFSET", types::TIME_INJOFFSET),
    ("URINGOP", types::URINGOP),
    ("FD_PAIR", 1317),
    ("BPRM_FCAPS", 1321),
    ("CAPSET", 1322),
    ("MMAP", 1323),
    ("NETFILTER_CFG", 1325),
    ("SECCOMP", 1326),
    ("DAEMON_START", 1200),
    ("DAEMON_END", 1201),
    ("DAEMON_ABORT", 1202),
    ("DAEMON_CONFIG", 1203),
    ("LOGIN", 1006),
    ("USER_AUTH", 1100),
    ("USER_ACCT", 1101),
    ("CRED_ACQ", 1103),
    ("CRED_DISP", 1104),
    ("USER_START", 1105),
    ("USER_END", 1106),
    ("CRED_REFR", 1110),
    ("USER_CMD", 1123),
    ("SERVICE_START", 1130),
    ("SERVICE_STOP", 1131),
    ("AVC", 1400),
    ("ANOM_ABEND", 1701),
];

/// Seconds and milliseconds since the epoch, as the kernel stamped the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub sec: u64,
    pub msec: u16,
}

impl Timestamp {
    /// Saturates: a log line may carry any 19-digit number of seconds.
    pub fn as_millis(self) -> u64 {
        self.sec
            .saturating_mul(1000)
            .saturating_add(u64::from(self.msec))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no audit(SECONDS.MILLIS:SERIAL) header")]
    NoHeader,
    #[error("malformed audit(SECONDS.MILLIS:SERIAL) header")]
    BadTimestamp,
    #[error("malformed type= prefix")]
    BadType,
}

/// One field's position in the record text; values are decoded on access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSpan {
    key: (u32, u32),
    value: (u32, u32),
    quoted: bool,
}

/// One audit record. The text is kept as bytes: the kernel does not promise UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub rtype: u16,
    /// For a type name this parser does not know (log input only).
    pub type_name: Option<Box<str>>,
    pub time: Timestamp,
    pub serial: u64,
    /// The `node=` a log line began with (auditd's name_format): which host
    /// wrote it, when a log holds several.
    pub node: Option<Box<str>>,
    text: Box<[u8]>,
    fields: Vec<FieldSpan>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Record({} audit({}.{:03}:{}): {})",
            self.type_name(),
            self.time.sec,
            self.time.msec,
            self.serial,
            String::from_utf8_lossy(&self.text)
        )
    }
}

/// A field value as written in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    pub raw: &'a [u8],
    pub quoted: bool,
}

impl<'a> Value<'a> {
    /// The value of a field the kernel writes with `audit_log_untrustedstring`:
    /// quoted when printable, hex when not, `(null)` when absent.
    pub fn untrusted(self) -> Option<Cow<'a, [u8]>> {
        if self.quoted {
            return Some(Cow::Borrowed(self.raw));
        }
        if self.raw == b"(null)" || self.raw == b"?" {
            return None;
        }
        match decode_hex(self.raw) {
            Some(bytes) => Some(Cow::Owned(bytes)),
            None => Some(Cow::Borrowed(self.raw)),
        }
    }

    pub fn decimal(self) -> Option<u64> {
        parse_decimal(self.raw)
    }

    pub fn signed(self) -> Option<i64> {
        match self.raw.split_first() {
            Some((b'-', rest)) => parse_decimal(rest)
                .and_then(|v| i64::try_from(v).ok())
                .map(|v| -v),
            _ => parse_decimal(self.raw).and_then(|v| i64::try_from(v).ok()),
        }
    }

    pub fn hex(self) -> Option<u64> {
        if self.raw.is_empty() || self.raw.len() > 16 {
            return None;
        }
        self.raw.iter().try_fold(0u64, |acc, &b| {
            let d = (b as char).to_digit(16)?;
            Some(acc << 4 | u64::from(d))
        })
    }
}

impl Record {
    pub fn type_name(&self) -> Cow<'_, str> {
        if let Some(name) = &self.type_name {
            return Cow::Borrowed(name);
        }
        match TYPE_NAMES.iter().find(|(_, n)| *n == self.rtype) {
            Some((name, _)) => Cow::Borrowed(name),
            None => Cow::Owned(format!("UNKNOWN[{}]", self.rtype)),
        }
    }

    /// The record seen as a head again (for feeding parsed records to a
    /// stage that takes heads).
    pub fn head(&self) -> Head<'_> {
        Head {
            rtype: self.rtype,
            type_name: self.type_name.as_deref(),
            time: self.time,
            serial: self.serial,
            node: self.node.as_deref().map(str::as_bytes),
            text: &self.text,
        }
    }

    /// The record text after the `audit(...): ` header.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        self.fields.iter().find_map(|f| {
            (self.slice(f.key) == key.as_bytes()).then(|| Value {
                raw: self.slice(f.value),
                quoted: f.quoted,
            })
        })
    }

    pub fn fields(&self) -> impl Iterator<Item = (&[u8], Value<'_>)> {
        self.fields.iter().map(|f| {
            (
                self.slice(f.key),
                Value {
                    raw: self.slice(f.value),
                    quoted: f.quoted,
                },
            )
        })
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.text[start as usize..end as usize]
    }
}

/// A record's type, time and serial, with its text not yet split into
/// fields or copied: enough to tell which event it belongs to, and whether
/// that event matters, before paying for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    pub rtype: u16,
    /// For a type name this parser does not know (log input only).
    type_name: Option<&'a str>,
    pub time: Timestamp,
    pub serial: u64,
    /// The log line's `node=`, if any.
    pub node: Option<&'a [u8]>,
    text: &'a [u8],
}

impl<'a> Head<'a> {
    /// One field's value, found by scanning the text; for the few fields
    /// read before a record is kept (a SYSCALL record's arch and syscall
    /// come first, so the scan is short).
    pub fn field(&self, key: &str) -> Option<Value<'a>> {
        let text = self.text;
        FieldIter { text, i: 0 }
            .find(|f| &text[f.key.0 as usize..f.key.1 as usize] == key.as_bytes())
            .map(|f| Value {
                raw: &text[f.value.0 as usize..f.value.1 as usize],
                quoted: f.quoted,
            })
    }

    /// The record, with its own copy of the text and its fields split.
    pub fn into_record(self) -> Record {
        // A SYSCALL record has about 30 fields; most others a handful.
        let mut fields = Vec::with_capacity(if self.rtype == types::SYSCALL { 32 } else { 4 });
        fields.extend(FieldIter {
            text: self.text,
            i: 0,
        });
        Record {
            rtype: self.rtype,
            type_name: self.type_name.map(Box::from),
            time: self.time,
            serial: self.serial,
            node: self
                .node
                .map(|n| String::from_utf8_lossy(n).into_owned().into_boxed_str()),
            text: self.text.into(),
            fields,
        }
    }
}

/// Parses the body of a netlink audit message (`audit(...): fields`).
pub fn parse_netlink(rtype: u16, body: &[u8]) -> Result<Record, ParseError> {
    netlink_head(rtype, body).map(Head::into_record)
}

/// Parses one line of an auditd log (`[node=N ]type=T msg=audit(...): fields`),
/// raw or enriched (the enriched part after 0x1d is left out).
pub fn parse_log_line(line: &[u8]) -> Result<Record, ParseError> {
    log_line_head(line).map(Head::into_record)
}

/// The head of a netlink audit message's body.
pub fn netlink_head(rtype: u16, body: &[u8]) -> Result<Head<'_>, ParseError> {
    let (time, serial, rest) = parse_header(body)?;
    Ok(head(rtype, None, time, serial, rest))
}

/// The head of one line of an auditd log.
pub fn log_line_head(line: &[u8]) -> Result<Head<'_>, ParseError> {
    // A UTF-8 byte order mark (a log that went through an editor).
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let mut line = trim_end(line);
    let mut node = None;
    if let Some(rest) = line.strip_prefix(b"node=") {
        let space = memchr(b' ', rest).ok_or(ParseError::BadType)?;
        node = Some(&rest[..space]).filter(|n| !n.is_empty());
        line = &rest[space + 1..];
    }
    let line = line.strip_prefix(b"type=").ok_or(ParseError::BadType)?;
    let space = memchr(b' ', line).ok_or(ParseError::BadType)?;
    let name = &line[..space];
    let rest = line[space + 1..]
        .strip_prefix(b"msg=")
        .ok_or(ParseError::NoHeader)?;
    let (rtype, type_name) = type_from_name(name)?;
    let (time, serial, fields) = parse_header(rest)?;
    let mut h = head(rtype, type_name, time, serial, fields);
    h.node = node;
    Ok(h)
}

fn type_from_name(name: &[u8]) -> Result<(u16, Option<&str>), ParseError> {
    // The types of nearly every line of a log, without the table search.
    match name {
        b"SYSCALL" => return Ok((types::SYSCALL, None)),
        b"EOE" => return Ok((types::EOE, None)),
        b"PROCTITLE" => return Ok((types::PROCTITLE, None)),
        b"PATH" => return Ok((types::PATH, None)),
        b"SOCKADDR" => return Ok((types::SOCKADDR, None)),
        b"CWD" => return Ok((types::CWD, None)),
        b"EXECVE" => return Ok((types::EXECVE, None)),
        _ => {}
    }
    let name = std::str::from_utf8(name).map_err(|_| ParseError::BadType)?;
    if let Some(num) = name
        .strip_prefix("UNKNOWN[")
        .and_then(|n| n.strip_suffix(']'))
    {
        return num
            .parse()
            .map(|n| (n, None))
            .map_err(|_| ParseError::BadType);
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ParseError::BadType);
    }
    Ok(match TYPE_NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, code)) => (*code, None),
        None => (0, Some(name)),
    })
}

fn parse_header(body: &[u8]) -> Result<(Timestamp, u64, &[u8]), ParseError> {
    let body = body.strip_prefix(b"audit(").ok_or(ParseError::NoHeader)?;
    let close = memchr(b')', body).ok_or(ParseError::BadTimestamp)?;
    let stamp = &body[..close];
    let dot = memchr(b'.', stamp).ok_or(ParseError::BadTimestamp)?;
    let colon = memchr(b':', stamp).ok_or(ParseError::BadTimestamp)?;
    if colon < dot {
        return Err(ParseError::BadTimestamp);
    }
    let sec = parse_decimal(&stamp[..dot]).ok_or(ParseError::BadTimestamp)?;
    let msec = parse_decimal(&stamp[dot + 1..colon])
        .filter(|&m| m < 1000 && colon - dot == 4)
        .ok_or(ParseError::BadTimestamp)?;
    let serial = parse_decimal(&stamp[colon + 1..]).ok_or(ParseError::BadTimestamp)?;
    let rest = &body[close + 1..];
    // auditd writes an EOE as `msg=audit(...)` with no colon, and nothing
    // after; its own DAEMON_* records as `msg=audit(...) config changed, ...`.
    let rest = match rest.strip_prefix(b":") {
        Some(r) => r,
        None if trim_end(rest).is_empty() => &rest[..0],
        None if rest.starts_with(b" ") => rest,
        None => return Err(ParseError::BadTimestamp),
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Ok((
        Timestamp {
            sec,
            msec: msec as u16,
        },
        serial,
        rest,
    ))
}

fn head<'a>(
    rtype: u16,
    type_name: Option<&'a str>,
    time: Timestamp,
    serial: u64,
    text: &'a [u8],
) -> Head<'a> {
    // The enriched log format appends interpreted fields after a 0x1d separator.
    let text = match memchr(0x1d, text) {
        Some(gs) => &text[..gs],
        None => text,
    };
    Head {
        rtype,
        type_name,
        time,
        serial,
        node: None,
        text: trim_end(text),
    }
}

/// Splits `key=value` pairs. Values may be "double" or 'single' quoted (the
/// latter for the nested msg='...' of user-space records); tokens without `=`
/// (AVC's `{ read }`) are skipped.
struct FieldIter<'a> {
    text: &'a [u8],
    i: usize,
}

impl Iterator for FieldIter<'_> {
    type Item = FieldSpan;

    fn next(&mut self) -> Option<FieldSpan> {
        let text = self.text;
        let n = text.len();
        let mut i = self.i;
        while i < n {
            while i < n && text[i] == b' ' {
                i += 1;
            }
            let key_start = i;
            while i < n && text[i] != b'=' && text[i] != b' ' {
                i += 1;
            }
            if i >= n || text[i] == b' ' {
                continue;
            }
            let key_end = i;
            i += 1;
            let (value, quoted) = match text.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = i + 1;
                    let end = memchr(q, &text[start..]).map_or(n, |p| start + p);
                    i = (end + 1).min(n);
                    ((start, end), true)
                }
                _ => {
                    let start = i;
                    i = memchr(b' ', &text[i..]).map_or(n, |p| i + p);
                    ((start, i), false)
                }
            };
            if key_end > key_start {
                self.i = i;
                return Some(FieldSpan {
                    key: (key_start as u32, key_end as u32),
                    value: (value.0 as u32, value.1 as u32),
                    quoted,
                });
            }
        }
        self.i = n;
        None
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| !matches!(c, b'\n' | b'\r' | b'\0' | b' '))
        .map_or(0, |p| p + 1);
    &b[..end]
}

fn parse_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

pub fn decode_hex(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    raw.chunks_exact(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// A socket address from a SOCKADDR record's `saddr` (hex of struct sockaddr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    Inet(std::net::SocketAddrV4),
    Inet6(std::net::SocketAddrV6),
    Unix(Vec<u8>),
    /// Any other family, by number.
    Other(u16),
}

impl SockAddr {
    pub fn family(&self) -> u16 {
        match self {
            SockAddr::Inet(_) => 2,
            SockAddr::Inet6(_) => 10,
            SockAddr::Unix(_) => 1,
            SockAddr::Other(f) => *f,
        }
    }
}

/// Decodes the bytes of a struct sockaddr written on this host; None when
/// too short for its family.
pub fn decode_sockaddr(b: &[u8]) -> Option<SockAddr> {
    decode_sockaddr_of(b, cfg!(target_endian = "little"))
}

/// Decodes a struct sockaddr from a host of either byte order (a replayed
/// log of ppc64 or s390x): the family and scope id are in the writer's order,
/// the port and address in network order.
pub fn decode_sockaddr_of(b: &[u8], little_endian: bool) -> Option<SockAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let host16 = |x: [u8; 2]| {
        if little_endian {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        }
    };
    let family = host16([*b.first()?, *b.get(1)?]);
    match family {
        2 if b.len() >= 8 => Some(SockAddr::Inet(SocketAddrV4::new(
            Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            u16::from_be_bytes([b[2], b[3]]),
        ))),
        10 if b.len() >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[8..24]);
            let scope = b.get(24..28).map_or(0, |s| {
                let x = [s[0], s[1], s[2], s[3]];
                if little_endian {
                    u32::from_le_bytes(x)
                } else {
                    u32::from_be_bytes(x)
                }
            });
            Some(SockAddr::Inet6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                scope,
            )))
        }
        1 => {
            let path = &b[2..];
            // Abstract sockets start with NUL; filesystem paths end at one.
            let path = if path.first() == Some(&0) {
                path
            } else {
                path.split(|&c| c == 0).next().unwrap_or(path)
            };
            Some(SockAddr::Unix(path.to_vec()))
        }
        2 | 10 => None,
        other => Some(SockAddr::Other(other)),
    }
}

#[cfg(test)]
mod tests;
