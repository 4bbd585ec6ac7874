//! Evaluates a compiled condition against one event: any-element semantics
//! for lists, Elasticsearch's null handling, no allocation on the usual paths.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt::Write as _;

use super::ast::{CmpOp, Lit};
use super::compile::{Atom, Atoms, Call, Cond, Func, LitV, Src, Test};
use super::pattern::{contains_fold, ends_with_fold, fold_into, parse_ip, starts_with_fold};
use super::{Event, Value};

/// Three-valued result: `Null` only comes out of script-style tests on
/// missing values and counts as false everywhere but directly under `not`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Null,
}

impl Tri {
    fn from(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

pub(crate) fn matches<E: Event>(cond: &Cond, ev: &E) -> bool {
    eval(cond, ev) == Tri::True
}

fn eval<E: Event>(cond: &Cond, ev: &E) -> Tri {
    match cond {
        Cond::Const(b) => Tri::from(*b),
        // Folded away at compile time; null if one ever got through.
        Cond::Null => Tri::Null,
        Cond::And(items) => Tri::from(items.iter().all(|c| eval(c, ev) == Tri::True)),
        Cond::Or(items) => Tri::from(items.iter().any(|c| eval(c, ev) == Tri::True)),
        Cond::Not { inner, script } => match (eval(inner, ev), script) {
            (Tri::True, _) => Tri::False,
            (Tri::False, _) => Tri::True,
            (Tri::Null, true) => Tri::Null,
            (Tri::Null, false) => Tri::True,
        },
        Cond::Test { src, test, script } => match eval_src(src, test, ev) {
            Some(b) => Tri::from(b),
            None if *script => Tri::Null,
            None => Tri::False,
        },
    }
}

/// `None` when the value is null (missing, or a list of nothing).
fn eval_src<E: Event>(src: &Src, test: &Test, ev: &E) -> Option<bool> {
    match src {
        Src::Field(f) => eval_value(&ev.field_at(f.at, &f.name), test),
        Src::Missing => eval_value(&Value::Null, test),
        Src::Const(v) => eval_value(v, test),
        Src::Call(call) => {
            let r = call_each(call, ev, &mut |v| test_scalar(v, test));
            match (r, test) {
                (None, Test::Any { null_ok: true, .. }) => Some(true),
                (r, _) => r,
            }
        }
    }
}

fn eval_value(v: &Value, test: &Test) -> Option<bool> {
    let mut seen = false;
    let any = for_each_scalar(v, &mut |s| {
        seen = true;
        test_scalar(s, test)
    });
    if seen {
        Some(any)
    } else if let Test::Any { null_ok: true, .. } = test {
        Some(true)
    } else {
        None
    }
}

/// Calls `f` on every non-null scalar of `v` (the elements of a list) until
/// it returns true; returns whether it did.
fn for_each_scalar(v: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Null => false,
        Value::List(items) => items.iter().any(|i| for_each_scalar(i, f)),
        scalar => f(scalar),
    }
}

/// Applies a function to each element of its input, feeding results to `f`;
/// `None` when no element gave a result (null in, null out).
fn call_each<E: Event>(call: &Call, ev: &E, f: &mut dyn FnMut(&Value) -> bool) -> Option<bool> {
    let mut seen = false;
    let mut apply = |input: &Value| -> bool {
        match apply(&call.func, input) {
            Some(out) => {
                seen = true;
                f(&out)
            }
            None => false,
        }
    };
    let any = match &call.src {
        Src::Field(f) => for_each_scalar(&ev.field_at(f.at, &f.name), &mut apply),
        Src::Missing => false,
        Src::Const(v) => for_each_scalar(v, &mut apply),
        Src::Call(inner) => call_each(inner, ev, &mut apply).unwrap_or(false),
    };
    if seen {
        Some(any)
    } else {
        None
    }
}

fn apply(func: &Func, input: &Value) -> Option<Value<'static>> {
    let s = match input {
        Value::Str(s) => Some(s.as_ref()),
        _ => None,
    };
    Some(match func {
        Func::StartsWith { pat, ci } => {
            let s = s?;
            Value::Bool(if *ci {
                starts_with_fold(s, pat)
            } else {
                s.starts_with(pat.as_str())
            })
        }
        Func::EndsWith { pat, ci } => {
            let s = s?;
            Value::Bool(if *ci {
                ends_with_fold(s, pat)
            } else {
                s.ends_with(pat.as_str())
            })
        }
        Func::Contains { pat, ci } => {
            let s = s?;
            // Elasticsearch: stringContains(x, "") is false.
            Value::Bool(
                !pat.is_empty()
                    && if *ci {
                        contains_fold(s, pat)
                    } else {
                        s.contains(pat.as_str())
                    },
            )
        }
        Func::Length => Value::Int(s?.chars().count() as i64),
        Func::Number { base } => match input {
            Value::Int(_) | Value::Float(_) => input.clone().into_static(),
            _ => parse_number(s?, *base)?,
        },
        Func::Cidr(nets) => {
            let ip = parse_ip(s?)?;
            Value::Bool(nets.iter().any(|n| n.contains(ip)))
        }
    })
}

impl Value<'_> {
    fn into_static(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(s.into_owned().into()),
            Value::List(l) => Value::List(l.into_iter().map(Value::into_static).collect()),
        }
    }
}

/// EQL's number(): decimal integers and floats, `0x` hex, an explicit base;
/// surrounding whitespace and a sign allowed. Unparseable text gives null.
fn parse_number(text: &str, base: Option<u32>) -> Option<Value<'static>> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let hex = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"));
    let (radix, body) = match (base, hex) {
        (None, Some(h)) | (Some(16), Some(h)) => (16, h),
        (Some(b), _) => (b, digits),
        (None, None) => (10, digits),
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    if let Ok(i) = i64::from_str_radix(body, radix) {
        return Some(Value::Int(if neg { -i } else { i }));
    }
    if radix == 10 {
        if let Ok(f) = body.parse::<f64>() {
            return Some(Value::Float(if neg { -f } else { f }));
        }
    }
    None
}

fn test_scalar(v: &Value, test: &Test) -> bool {
    match test {
        Test::Truthy => matches!(v, Value::Bool(true)),
        Test::Any { atoms, .. } => match v {
            Value::Str(s) => any_str(s, atoms),
            _ => atoms.iter().any(|a| atom(v, a)),
        },
        Test::Ord(op, lit) => match order(v, lit) {
            Some(o) => match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
            },
            None => false,
        },
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn equal(v: &Value, lit: &LitV) -> bool {
    match (v, &lit.lit) {
        (Value::Str(s), Lit::Str(l)) => s.as_ref() == l.as_str(),
        (Value::Str(s), _) => lit.text.as_deref() == Some(s.as_ref()),
        (Value::Bool(b), Lit::Bool(l)) => b == l,
        (Value::Bool(b), Lit::Str(l)) => l.as_str() == if *b { "true" } else { "false" },
        (Value::Int(a), Lit::Int(b)) => a == b,
        (Value::Int(_) | Value::Float(_), _) => match (num(v), lit.num) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

thread_local! {
    /// The folded text of the string being tested, for the case-insensitive
    /// atoms: folded once for all of a test's patterns, into a buffer kept
    /// from event to event.
    static FOLDED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Whether a string satisfies any atom; as [`atom`] on each, with the text
/// folded at most once and the plain strings looked up in sets.
fn any_str(s: &str, atoms: &Atoms) -> bool {
    if atoms.exact.contains(s) {
        return true;
    }
    if atoms.folded.is_empty() && !atoms.rest_folds {
        return atoms.rest().any(|a| atom_str(s, a, None));
    }
    FOLDED.with(|buf| match buf.try_borrow_mut() {
        Ok(mut folded) => {
            fold_into(s, &mut folded);
            atoms.folded.contains(folded.as_str())
                || atoms.rest().any(|a| atom_str(s, a, Some(&folded)))
        }
        // Not reentered today; if it ever is, fold per atom instead.
        Err(_) => atoms.iter().any(|a| atom_str(s, a, None)),
    })
}

/// An atom on a string, given its folded text if the caller has it.
fn atom_str(s: &str, a: &Atom, folded: Option<&str>) -> bool {
    match (a, folded) {
        (Atom::EqFold(f), Some(text)) => text == f,
        (Atom::Wild(w), Some(text)) if w.insensitive() => w.matches_folded(text),
        (Atom::Wild(w), _) => w.matches(s),
        (Atom::Regex(re), _) => re.is_match(s),
        (Atom::Eq(lit), _) => match &lit.lit {
            Lit::Str(l) => s == l.as_str(),
            _ => lit.text.as_deref() == Some(s),
        },
        (Atom::EqFold(f), None) => super::pattern::eq_fold(s, f),
    }
}

fn atom(v: &Value, a: &Atom) -> bool {
    match a {
        Atom::Eq(lit) => equal(v, lit),
        Atom::EqFold(folded) => match v {
            Value::Str(s) => super::pattern::eq_fold(s, folded),
            _ => false,
        },
        Atom::Wild(w) => match v {
            Value::Str(s) => w.matches(s),
            Value::Int(_) | Value::Float(_) => with_number_text(v, |t| w.matches(t)),
            Value::Bool(b) => w.matches(if *b { "true" } else { "false" }),
            _ => false,
        },
        Atom::Regex(re) => match v {
            Value::Str(s) => re.is_match(s),
            Value::Int(_) | Value::Float(_) => with_number_text(v, |t| re.is_match(t)),
            _ => false,
        },
    }
}

/// Text of a number on the stack: the longest i64 is 20 characters, and
/// most floats fit too, so a pattern tested against a numeric field (pids,
/// ports) allocates nothing per event.
struct StackText {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Calls `f` with the number's text as `to_string` gives it; false for a
/// value that is not a number.
fn with_number_text(v: &Value, f: impl FnOnce(&str) -> bool) -> bool {
    let mut t = StackText {
        buf: [0; 40],
        len: 0,
    };
    let written = match v {
        Value::Int(i) => write!(t, "{i}"),
        Value::Float(x) => write!(t, "{x}"),
        _ => return false,
    };
    // Only whole `str`s are copied in, so the bytes are valid UTF-8.
    match (written, t.buf.get(..t.len).map(std::str::from_utf8)) {
        (Ok(()), Some(Ok(text))) => f(text),
        // A float too long for the buffer (1e300 prints every digit).
        _ => match v {
            Value::Float(x) => f(&x.to_string()),
            _ => false,
        },
    }
}

fn order(v: &Value, lit: &LitV) -> Option<Ordering> {
    match (v, &lit.lit) {
        (Value::Str(s), Lit::Str(l)) => Some(s.as_ref().cmp(l.as_str())),
        (Value::Str(s), _) => {
            let a = s.trim().parse::<f64>().ok()?;
            a.partial_cmp(&lit.num?)
        }
        (Value::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
        (Value::Int(_) | Value::Float(_), _) => num(v)?.partial_cmp(&lit.num?),
        (Value::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// What the partial evaluation of [`may_match`] knows of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maybe {
    Known(Tri),
    /// Depends on a field the caller does not know.
    Unknown,
}

/// An event holding only the fields the caller knows; the others are never
/// asked for, since tests on them are not evaluated.
#[derive(Clone)]
struct KnownFields<'k> {
    known: &'k dyn Fn(&str) -> Option<Value<'static>>,
}

impl Event for KnownFields<'_> {
    fn field(&self, name: &str) -> Value<'_> {
        (self.known)(name).unwrap_or(Value::Null)
    }
    fn ordinal(&self) -> (u64, u64) {
        (0, 0)
    }
}

fn src_known(src: &Src, known: &dyn Fn(&str) -> Option<Value<'static>>) -> bool {
    match src {
        Src::Field(f) => known(&f.name).is_some(),
        Src::Missing | Src::Const(_) => true,
        Src::Call(call) => src_known(&call.src, known),
    }
}

/// Whether some event whose fields `known` gives (the rest being anything)
/// could satisfy `cond`: false only when the known fields alone rule it out.
pub(crate) fn may_match(cond: &Cond, known: &dyn Fn(&str) -> Option<Value<'static>>) -> bool {
    let ev = KnownFields { known };
    !matches!(partial(cond, &ev), Maybe::Known(Tri::False | Tri::Null))
}

fn partial(cond: &Cond, ev: &KnownFields) -> Maybe {
    match cond {
        Cond::And(items) => {
            let mut all_true = true;
            for c in items {
                match partial(c, ev) {
                    Maybe::Known(Tri::True) => {}
                    Maybe::Known(_) => return Maybe::Known(Tri::False),
                    Maybe::Unknown => all_true = false,
                }
            }
            if all_true {
                Maybe::Known(Tri::True)
            } else {
                Maybe::Unknown
            }
        }
        Cond::Or(items) => {
            let mut all_false = true;
            for c in items {
                match partial(c, ev) {
                    Maybe::Known(Tri::True) => return Maybe::Known(Tri::True),
                    Maybe::Known(_) => {}
                    Maybe::Unknown => all_false = false,
                }
            }
            if all_false {
                Maybe::Known(Tri::False)
            } else {
                Maybe::Unknown
            }
        }
        Cond::Not { inner, script } => match partial(inner, ev) {
            Maybe::Known(Tri::True) => Maybe::Known(Tri::False),
            Maybe::Known(Tri::False) => Maybe::Known(Tri::True),
            Maybe::Known(Tri::Null) if *script => Maybe::Known(Tri::Null),
            Maybe::Known(Tri::Null) => Maybe::Known(Tri::True),
            Maybe::Unknown => Maybe::Unknown,
        },
        Cond::Test { src, .. } if !src_known(src, ev.known) => Maybe::Unknown,
        Cond::Const(_) | Cond::Null | Cond::Test { .. } => Maybe::Known(eval(cond, ev)),
    }
}

/// `cond` with what `known` tells folded in: for every event whose fields
/// `known` gives are those values, it evaluates as `cond` does (the same
/// `Tri`), testing only what `known` leaves open. And and or keep their
/// shape, as one item alone could be null where the and is false.
pub(crate) fn specialize(cond: &Cond, known: &dyn Fn(&str) -> Option<Value<'static>>) -> Cond {
    spec(cond, &KnownFields { known })
}

fn spec(cond: &Cond, ev: &KnownFields) -> Cond {
    match partial(cond, ev) {
        Maybe::Known(Tri::True) => return Cond::Const(true),
        Maybe::Known(Tri::False) => return Cond::Const(false),
        Maybe::Known(Tri::Null) => return Cond::Null,
        Maybe::Unknown => {}
    }
    match cond {
        // Unknown: no item is known false or null (the and would be false);
        // the items known true change nothing.
        Cond::And(items) => Cond::And(
            items
                .iter()
                .filter(|c| partial(c, ev) != Maybe::Known(Tri::True))
                .map(|c| spec(c, ev))
                .collect(),
        ),
        // Unknown: no item is known true; those known false or null change nothing.
        Cond::Or(items) => Cond::Or(
            items
                .iter()
                .filter(|c| partial(c, ev) == Maybe::Unknown)
                .map(|c| spec(c, ev))
                .collect(),
        ),
        Cond::Not { inner, script } => Cond::Not {
            inner: Box::new(spec(inner, ev)),
            script: *script,
        },
        other => other.clone(),
    }
}
