//! String matching compiled once per query: case folding, `*`/`?` wildcards, Lucene
//! regular expressions (translated for the `regex` crate), CIDR blocks; matching allocates nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Simple one-to-one lowercase, the same both for patterns (at compile time)
/// and for event values (at match time), so that folded comparison never
/// allocates. Characters whose lowercase is several characters stay as they are.
#[inline]
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

pub(crate) fn fold_str(s: &str) -> String {
    let mut out = String::new();
    fold_into(s, &mut out);
    out
}

/// [`fold_str`] into a buffer it reuses.
pub(crate) fn fold_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        out.extend(s.chars().map(fold));
    }
}

/// `s == pat` ignoring case; `pat` is already folded.
pub(crate) fn eq_fold(s: &str, folded: &str) -> bool {
    if s.is_ascii() && folded.is_ascii() {
        return s.eq_ignore_ascii_case(folded);
    }
    s.chars().map(fold).eq(folded.chars())
}

/// If `s` starts with `folded` ignoring case, the byte length of that prefix in `s`.
fn prefix_len_fold(s: &str, folded: &str) -> Option<usize> {
    let mut it = s.char_indices();
    for p in folded.chars() {
        match it.next() {
            Some((_, c)) if fold(c) == p => {}
            _ => return None,
        }
    }
    Some(it.next().map_or(s.len(), |(i, _)| i))
}

pub(crate) fn starts_with_fold(s: &str, folded: &str) -> bool {
    prefix_len_fold(s, folded).is_some()
}

pub(crate) fn ends_with_fold(s: &str, folded: &str) -> bool {
    let mut it = s.chars().rev();
    for p in folded.chars().rev() {
        match it.next() {
            Some(c) if fold(c) == p => {}
            _ => return false,
        }
    }
    true
}

pub(crate) fn contains_fold(s: &str, folded: &str) -> bool {
    if folded.is_empty() {
        return true;
    }
    s.char_indices()
        .any(|(i, _)| starts_with_fold(&s[i..], folded))
}

/// A fast hash for the sets and maps of rule literals that event strings
/// are looked up in (FxHash's mixing, 8 bytes at a time). Not resistant to
/// chosen collisions, which needs no resisting here: the tables hold only
/// the rules' own literals, so an event's string costs one probe sequence
/// however it is chosen.
#[derive(Debug, Clone, Copy, Default)]
pub struct StrHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for StrHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`StrHasher`]s, for `HashMap::with_hasher` and friends.
pub type StrHash = std::hash::BuildHasherDefault<StrHasher>;

#[derive(Debug, Clone, PartialEq)]
enum WTok {
    Char(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters.
    Any,
}

/// The common shapes get a direct test; the rest runs the general matcher.
#[derive(Debug, Clone)]
enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// `*` only, three or more pieces: the text before the first `*`, the
    /// pieces between (none empty), the text after the last.
    Pieces {
        head: String,
        middle: Vec<String>,
        tail: String,
    },
    General(Vec<WTok>),
}

/// A `*`/`?` wildcard pattern as `like`, `like~` and `:` use it. There is no
/// escape character: as in Elasticsearch, every `*` and `?` is a wildcard and
/// a backslash is an ordinary character.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    shape: Shape,
    insensitive: bool,
    /// The pattern as written, folded when insensitive.
    text: String,
}

/// How a string a pattern matches relates to the text [`Wildcard::pinned`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pinned {
    Exact,
    Prefix,
    Suffix,
}

impl Wildcard {
    pub fn new(pattern: &str, insensitive: bool) -> Wildcard {
        let text = if insensitive {
            fold_str(pattern)
        } else {
            pattern.to_string()
        };
        let toks: Vec<WTok> = text
            .chars()
            .map(|c| match c {
                '*' => WTok::Any,
                '?' => WTok::One,
                c => WTok::Char(c),
            })
            .collect();
        let literal = |ts: &[WTok]| -> Option<String> {
            ts.iter()
                .map(|t| match t {
                    WTok::Char(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        let n = toks.len();
        let shape = if let Some(s) = literal(&toks) {
            Shape::Exact(s)
        } else if n >= 1 && toks[n - 1] == WTok::Any && literal(&toks[..n - 1]).is_some() {
            Shape::Prefix(literal(&toks[..n - 1]).unwrap_or_default())
        } else if n >= 1 && toks[0] == WTok::Any && literal(&toks[1..]).is_some() {
            Shape::Suffix(literal(&toks[1..]).unwrap_or_default())
        } else if n >= 2
            && toks[0] == WTok::Any
            && toks[n - 1] == WTok::Any
            && literal(&toks[1..n - 1]).is_some()
        {
            Shape::Contains(literal(&toks[1..n - 1]).unwrap_or_default())
        } else if !toks.contains(&WTok::One) {
            let mut pieces: Vec<String> = text.split('*').map(str::to_owned).collect();
            let tail = pieces.pop().unwrap_or_default();
            let head = if pieces.is_empty() {
                String::new()
            } else {
                pieces.remove(0)
            };
            pieces.retain(|p| !p.is_empty());
            Shape::Pieces {
                head,
                middle: pieces,
                tail,
            }
        } else {
            Shape::General(toks)
        };
        Wildcard {
            shape,
            insensitive,
            text,
        }
    }

    /// What every string it matches is, or starts or ends with: the
    /// pattern's text before its first wildcard (or after its last, when
    /// it starts with one), folded when it ignores case.
    pub fn pinned(&self) -> Option<(Pinned, &str)> {
        let wild = |c: char| c == '*' || c == '?';
        let (Some(first), Some(last)) = (self.text.find(wild), self.text.rfind(wild)) else {
            return Some((Pinned::Exact, self.text.as_str()));
        };
        if first > 0 {
            Some((Pinned::Prefix, &self.text[..first]))
        } else if last + 1 < self.text.len() {
            // `*` and `?` are one byte each.
            Some((Pinned::Suffix, &self.text[last + 1..]))
        } else {
            None
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match (&self.shape, self.insensitive) {
            (Shape::Exact(p), false) => s == p,
            (Shape::Exact(p), true) => eq_fold(s, p),
            (Shape::Prefix(p), false) => s.starts_with(p.as_str()),
            (Shape::Prefix(p), true) => starts_with_fold(s, p),
            (Shape::Suffix(p), false) => s.ends_with(p.as_str()),
            (Shape::Suffix(p), true) => ends_with_fold(s, p),
            (Shape::Contains(p), false) => s.contains(p.as_str()),
            (Shape::Contains(p), true) => contains_fold(s, p),
            (Shape::Pieces { .. }, false) => self.matches_folded(s),
            (Shape::Pieces { .. }, true) => self.matches_folded(&fold_str(s)),
            (Shape::General(toks), ci) => general_match(toks, s, ci),
        }
    }

    /// Whether it matches ignoring case (`:`, `like~`).
    pub fn insensitive(&self) -> bool {
        self.insensitive
    }

    /// As [`matches`](Self::matches), given the text already folded when
    /// the pattern ignores case: folding is one character to one, so a
    /// folded pattern matches the folded text exactly when it matches the
    /// text ignoring case.
    pub fn matches_folded(&self, s: &str) -> bool {
        match &self.shape {
            Shape::Exact(p) => s == p,
            Shape::Prefix(p) => s.starts_with(p.as_str()),
            Shape::Suffix(p) => s.ends_with(p.as_str()),
            Shape::Contains(p) => s.contains(p.as_str()),
            Shape::Pieces { head, middle, tail } => {
                // With `*` the only wildcard, taking each piece where it is
                // first found leaves the most room for the rest.
                if s.len() < head.len() + tail.len()
                    || !s.starts_with(head.as_str())
                    || !s.ends_with(tail.as_str())
                {
                    return false;
                }
                let mut rest = &s[head.len()..s.len() - tail.len()];
                for piece in middle {
                    match rest.find(piece.as_str()) {
                        Some(at) => rest = &rest[at + piece.len()..],
                        None => return false,
                    }
                }
                true
            }
            Shape::General(toks) => general_match(toks, s, false),
        }
    }
}

/// Greedy matching with backtracking to the last `*`: linear for the usual
/// patterns, O(pattern × input) at worst, never exponential.
fn general_match(pat: &[WTok], s: &str, ci: bool) -> bool {
    let next = |i: usize| s[i..].chars().next();
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pat.len() {
            match pat[p] {
                WTok::Any => {
                    star = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                WTok::One => {
                    if let Some(c) = next(i) {
                        i += c.len_utf8();
                        p += 1;
                        continue;
                    }
                }
                WTok::Char(pc) => {
                    if let Some(c) = next(i) {
                        let c2 = if ci { fold(c) } else { c };
                        if c2 == pc {
                            i += c.len_utf8();
                            p += 1;
                            continue;
                        }
                    }
                }
            }
        } else if i == s.len() {
            return true;
        }
        match star {
            Some((sp, si)) => match next(si) {
                Some(c) => {
                    let ni = si + c.len_utf8();
                    star = Some((sp, ni));
                    p = sp;
                    i = ni;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// Translates an Elasticsearch (Lucene) regular expression into the `regex`
/// crate's syntax, anchored at both ends as Lucene's are.
///
/// Lucene differs from the `regex` crate in ways rules can hit: `^` and `$`
/// are ordinary characters, `"..."` quotes a literal string, `\` before any
/// character makes it literal (`\_`, `\-`), `.` matches newlines, `\d` `\w`
/// `\s` are ASCII classes; and with Elasticsearch's default flags `@` (any
/// string), `&` (intersection), `~` (complement), `#` (empty) and `<n-m>`
/// (numeric interval) are operators. Those operators have no equivalent
/// here, so a pattern using them is refused (escape them to match them
/// literally); `(?` groups do not exist in Lucene and are refused too.
pub(crate) fn lucene_to_rust(pattern: &str) -> Result<String, String> {
    let mut out = String::from("^(?:");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut depth = 0i32;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(&e) => push_escape(&mut out, e, false),
                    None => return Err("regex ends with a lone `\\`".into()),
                }
            }
            '"' => {
                let mut j = i + 1;
                let mut lit = String::new();
                while j < chars.len() && chars[j] != '"' {
                    lit.push(chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err("unterminated `\"` quoted literal in regex".into());
                }
                out.push_str(&regex::escape(&lit));
                i = j;
            }
            '[' => {
                i = push_class(&mut out, &chars, i)?;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    return Err("`(?` groups are not Lucene regex syntax".into());
                }
                depth += 1;
                out.push('(');
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced `)` in regex".into());
                }
                out.push(')');
            }
            '.' | '?' | '+' | '*' | '|' | '{' | '}' => out.push(c),
            '@' | '&' | '~' | '#' | '<' => {
                return Err(format!(
                    "the Lucene regex operator `{c}` is not supported; write `\\{c}` to match it literally"
                ))
            }
            c => push_literal(&mut out, c),
        }
        i += 1;
    }
    out.push_str(")$");
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

fn push_escape(out: &mut String, e: char, in_class: bool) {
    let class = match e {
        'd' => Some("0-9"),
        'w' => Some("a-zA-Z0-9_"),
        's' => Some(" \\t\\n\\r"),
        _ => None,
    };
    if let Some(body) = class {
        if in_class {
            out.push_str(body);
        } else {
            out.push('[');
            out.push_str(body);
            out.push(']');
        }
        return;
    }
    let negated = match e {
        'D' => Some("0-9"),
        'W' => Some("a-zA-Z0-9_"),
        'S' => Some(" \\t\\n\\r"),
        _ => None,
    };
    if let Some(body) = negated {
        if in_class {
            // A negated class inside a class: the regex crate's own, which is
            // Unicode-aware rather than ASCII (a rare, documented difference).
            out.push('\\');
            out.push(e);
        } else {
            out.push_str("[^");
            out.push_str(body);
            out.push(']');
        }
        return;
    }
    if in_class {
        push_class_char(out, e);
    } else {
        push_literal(out, e);
    }
}

fn push_class_char(out: &mut String, c: char) {
    // Inside a class the regex crate treats `[`, `&&`, `--`, `~~` and `^` as
    // syntax; escape every punctuation character so each stays literal.
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

/// Copies the class starting at `chars[start] == '['`; returns the index of its `]`.
fn push_class(out: &mut String, chars: &[char], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' if !first => {
                out.push(']');
                return Ok(i);
            }
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(&e) => push_escape(out, e, true),
                    None => return Err("regex ends inside a `[...]` class".into()),
                }
            }
            '-' if !first && chars.get(i + 1).is_some_and(|n| *n != ']') => out.push('-'),
            c => push_class_char(out, c),
        }
        first = false;
        i += 1;
    }
    Err("unterminated `[` class in regex".into())
}

/// An address block for `cidrMatch`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4(u32, u32),
    V6(u128, u128),
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("\"{text}\" is not an IP address or CIDR block"))?;
        let bits = match bits {
            Some(b) => Some(
                b.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad prefix length in \"{text}\""))?,
            ),
            None => None,
        };
        match unmap(ip) {
            IpAddr::V4(v4) => {
                let bits = bits.unwrap_or(32);
                if bits > 32 {
                    return Err(format!("prefix length over 32 in \"{text}\""));
                }
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                Ok(Cidr::V4(u32::from(v4) & mask, mask))
            }
            IpAddr::V6(v6) => {
                let bits = bits.unwrap_or(128);
                if bits > 128 {
                    return Err(format!("prefix length over 128 in \"{text}\""));
                }
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                Ok(Cidr::V6(u128::from(v6) & mask, mask))
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, unmap(ip)) {
            (Cidr::V4(net, mask), IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6(net, mask), IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

/// Elasticsearch stores IPv4 addresses as IPv4-mapped IPv6; treating
/// `::ffff:a.b.c.d` as `a.b.c.d` gives the same answers.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address as an event gives it (no allocation).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}
