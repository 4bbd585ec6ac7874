//! Turns the syntax tree into a checked, immutable [`Query`]: names checked against the
//! [`Schema`], functions resolved, patterns compiled so evaluation prepares nothing per event.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::ast::{CmpOp, EventFilter, Expr, FieldRef, Lit, MatchKind, Operand, Statement, Term};
use super::lexer::Pos;
use super::parser::parse;
use super::pattern::{fold_str, lucene_to_rust, Cidr, Pinned, StrHash, Wildcard};
use super::{EqlError, Schema, Value};

/// The field every category test reads.
pub(crate) const CATEGORY_FIELD: &str = "event.category";

/// A literal on the right of a comparison, with the other forms an event
/// value of another type is compared against.
#[derive(Debug, Clone)]
pub(crate) struct LitV {
    pub lit: Lit,
    /// The literal as text, for a string field against a number or boolean.
    pub text: Option<String>,
    /// The literal as a number, for a numeric field against a string.
    pub num: Option<f64>,
}

impl LitV {
    fn new(lit: Lit) -> LitV {
        let (text, num) = match &lit {
            Lit::Null => (None, None),
            Lit::Bool(b) => (Some(b.to_string()), None),
            Lit::Int(i) => (Some(i.to_string()), Some(*i as f64)),
            Lit::Float(f) => (Some(f.to_string()), Some(*f)),
            Lit::Str(s) => (None, s.trim().parse::<f64>().ok()),
        };
        LitV { lit, text, num }
    }
}

/// One alternative of an equality or pattern test.
#[derive(Debug, Clone)]
pub(crate) enum Atom {
    Eq(LitV),
    /// Case-insensitive equality with a folded string (`in~`).
    EqFold(String),
    Wild(Wildcard),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// A bare value used as a condition: true when it is `true`.
    Truthy,
    /// True when any element satisfies any atom, or (with `null_ok`) when
    /// the value is null.
    Any {
        atoms: Atoms,
        null_ok: bool,
    },
    Ord(CmpOp, LitV),
}

/// Fewest strings compared exactly (or folded) for a test to look them up
/// in a set rather than compare them one by one.
const SET_FROM: usize = 4;

/// A test's atoms, with its plain strings also in sets: Elastic's rules
/// list dozens of program names or arguments, which a string is looked up
/// among at once.
#[derive(Debug, Clone)]
pub(crate) struct Atoms {
    all: Vec<Atom>,
    /// A string equal to one of these satisfies an atom.
    pub exact: HashSet<Box<str>, StrHash>,
    /// A string whose folded text is one of these satisfies an atom.
    pub folded: HashSet<Box<str>, StrHash>,
    /// The atoms the sets do not stand for, by place in `all`.
    rest: Vec<u32>,
    /// Whether some of those ignore case: the text is folded for them.
    pub rest_folds: bool,
}

impl Atoms {
    pub fn new(all: Vec<Atom>) -> Atoms {
        let mut exact = HashSet::default();
        let mut folded = HashSet::default();
        let mut rest = Vec::new();
        for (i, a) in (0u32..).zip(&all) {
            match a {
                Atom::Eq(LitV {
                    lit: Lit::Str(s), ..
                }) => {
                    exact.insert(s.as_str().into());
                }
                Atom::EqFold(s) => {
                    folded.insert(s.as_str().into());
                }
                Atom::Wild(w) => match w.pinned() {
                    Some((Pinned::Exact, text)) if w.insensitive() => {
                        folded.insert(text.into());
                    }
                    Some((Pinned::Exact, text)) => {
                        exact.insert(text.into());
                    }
                    _ => rest.push(i),
                },
                _ => rest.push(i),
            }
        }
        if exact.len() + folded.len() < SET_FROM {
            exact = HashSet::default();
            folded = HashSet::default();
            rest = (0u32..).zip(&all).map(|(i, _)| i).collect();
        }
        let mut atoms = Atoms {
            all,
            exact,
            folded,
            rest,
            rest_folds: false,
        };
        let folds = atoms.rest().any(|a| match a {
            Atom::EqFold(_) => true,
            Atom::Wild(w) => w.insensitive(),
            _ => false,
        });
        atoms.rest_folds = folds;
        atoms
    }

    /// The atoms the sets do not stand for.
    pub fn rest(&self) -> impl Iterator<Item = &Atom> {
        self.rest.iter().filter_map(|&i| self.all.get(i as usize))
    }
}

impl std::ops::Deref for Atoms {
    type Target = [Atom];

    fn deref(&self) -> &[Atom] {
        &self.all
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Func {
    StartsWith { pat: String, ci: bool },
    EndsWith { pat: String, ci: bool },
    Contains { pat: String, ci: bool },
    Length,
    Number { base: Option<u32> },
    Cidr(Vec<Cidr>),
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub func: Func,
    pub src: Src,
}

/// A field the schema supplies: its name, and its place in `Schema::fields`
/// (for [`Event::field_at`](super::Event::field_at)).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: Box<str>,
    pub at: usize,
}

/// Where a tested value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Src {
    Field(Field),
    /// An optional field the event source never supplies: always null.
    Missing,
    Const(Value<'static>),
    Call(Box<Call>),
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Const(bool),
    /// The null a test on a missing optional field folds to. Only while
    /// compiling: [`resolve_nulls`] removes it before a query is built.
    Null,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// `script`: the inner test is one Elasticsearch runs as a script, where
    /// null stays null under `not` instead of turning true.
    Not {
        inner: Box<Cond>,
        script: bool,
    },
    /// `test` is shared: filters specialized to a kind of event copy their
    /// tree, not the patterns and sets in it.
    Test {
        src: Src,
        test: Arc<Test>,
        script: bool,
    },
}

impl Cond {
    fn is_script(&self) -> bool {
        match self {
            Cond::Test { script, .. } | Cond::Not { script, .. } => *script,
            _ => false,
        }
    }
}

/// Most stages a sequence may have once `runs` are expanded, and most
/// filters a sample may have: every partial sequence holds up to this many
/// events, and Elastic's own rules use at most `runs=60`.
pub(crate) const MAX_STAGES: usize = 128;

/// A join key component.
#[derive(Debug, Clone)]
pub(crate) struct KeyField {
    pub src: Src,
    pub optional: bool,
}

/// One sequence stage or sample filter after `runs` expansion.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    /// Index into `Query::conds`; stages repeated by `runs` share it.
    pub filter: usize,
    /// Index into `Query::key_specs`.
    pub keys: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Single,
    Sequence {
        stages: Vec<Stage>,
        until: Option<Stage>,
        maxspan_ms: Option<u64>,
    },
    Sample {
        stages: Vec<Stage>,
    },
}

/// A parsed, checked, immutable query.
#[derive(Debug, Clone)]
pub struct Query {
    pub(crate) kind: Kind,
    /// The distinct event filters: for a single-event query, one.
    pub(crate) conds: Vec<Cond>,
    pub(crate) key_specs: Vec<Vec<KeyField>>,
    fields: Vec<String>,
    join_fields: Vec<String>,
}

impl Query {
    /// Parses `text` and checks it against what the event source supplies.
    pub fn compile(text: &str, schema: &Schema) -> Result<Query, EqlError> {
        let statement = parse(text)?;
        let mut c = Compiler {
            schema,
            fields: BTreeSet::new(),
        };
        let mut conds = Vec::new();
        let mut key_specs = Vec::new();
        let mut join_fields = Vec::new();
        let kind = match statement {
            Statement::Event(filter) => {
                conds.push(c.filter(&filter)?);
                Kind::Single
            }
            Statement::Sequence {
                by,
                maxspan_ms,
                terms,
                until,
                pos,
            } => {
                join_fields = by.iter().map(|f| f.name.clone()).collect();
                let shared = c.keys(&by)?;
                check_key_counts(&terms, until.as_ref())?;
                let mut stages = Vec::new();
                for term in &terms {
                    let stage = c.stage(term, &shared, &mut conds, &mut key_specs)?;
                    stages.extend(std::iter::repeat_n(stage, term.runs));
                    if stages.len() > MAX_STAGES {
                        return Err(term.pos.error(format!(
                            "a sequence may have at most {MAX_STAGES} stages once runs are \
                             expanded; this stage brings it to {}",
                            stages.len()
                        )));
                    }
                }
                if stages.len() < 2 {
                    return Err(pos.error(
                        "a sequence needs at least two stages (or one stage `with runs=N`, N ≥ 2)",
                    ));
                }
                let until = match &until {
                    Some(term) => Some(c.stage(term, &shared, &mut conds, &mut key_specs)?),
                    None => None,
                };
                Kind::Sequence {
                    stages,
                    until,
                    maxspan_ms,
                }
            }
            Statement::Sample { by, terms, pos } => {
                join_fields = by.iter().map(|f| f.name.clone()).collect();
                let shared = c.keys(&by)?;
                check_key_counts(&terms, None)?;
                if terms.len() < 2 {
                    return Err(pos.error("a sample needs at least two filters"));
                }
                if let Some(extra) = terms.get(MAX_STAGES) {
                    return Err(extra
                        .pos
                        .error(format!("a sample may have at most {MAX_STAGES} filters")));
                }
                if by.is_empty() && terms[0].by.is_empty() {
                    return Err(
                        pos.error("a sample needs join keys: `sample by field [...] [...]`")
                    );
                }
                let mut stages = Vec::new();
                for term in &terms {
                    stages.push(c.stage(term, &shared, &mut conds, &mut key_specs)?);
                }
                Kind::Sample { stages }
            }
        };
        Ok(Query {
            kind,
            conds,
            key_specs,
            fields: c.fields.into_iter().collect(),
            join_fields,
        })
    }

    pub fn is_sequence(&self) -> bool {
        matches!(self.kind, Kind::Sequence { .. })
    }

    pub fn is_sample(&self) -> bool {
        matches!(self.kind, Kind::Sample { .. })
    }

    /// Events in one match: 1 for a single-event query, the stages (after
    /// `runs` expansion) of a sequence, the filters of a sample.
    pub fn stage_count(&self) -> usize {
        match &self.kind {
            Kind::Single => 1,
            Kind::Sequence { stages, .. } | Kind::Sample { stages } => stages.len(),
        }
    }

    /// The sequence's maxspan in milliseconds, if it has one.
    pub fn maxspan_ms(&self) -> Option<u64> {
        match &self.kind {
            Kind::Sequence { maxspan_ms, .. } => *maxspan_ms,
            _ => None,
        }
    }

    /// The fields it reads from events (those the schema supplies), sorted.
    pub fn fields(&self) -> Vec<String> {
        self.fields.clone()
    }

    /// The filters an event must pass for the query to fire: the one filter
    /// of a single-event query, each stage of a sequence (once, however many
    /// `runs`), each filter of a sample. Not the `until` filter.
    pub fn required_filters(&self) -> Vec<usize> {
        let mut out: Vec<usize> = match &self.kind {
            Kind::Single => vec![0],
            Kind::Sequence { stages, .. } | Kind::Sample { stages } => {
                stages.iter().map(|s| s.filter).collect()
            }
        };
        out.dedup();
        out
    }

    /// A sequence's first stage filter: the only one (with `until`, which
    /// only drops partial sequences) that matters while none is pending.
    pub fn first_stage_filter(&self) -> Option<usize> {
        match &self.kind {
            Kind::Sequence { stages, .. } => stages.first().map(|s| s.filter),
            _ => None,
        }
    }

    /// A sequence's `until` filter, which needs its events seen too.
    pub fn until_filter(&self) -> Option<usize> {
        match &self.kind {
            Kind::Sequence {
                until: Some(stage), ..
            } => Some(stage.filter),
            _ => None,
        }
    }

    /// Whether an event whose fields `known` gives (others unknown: `None`)
    /// could pass filter `filter`. With the fields that name an event's kind
    /// (category, type, action) this tells which kinds a rule can use.
    pub fn filter_may_match(
        &self,
        filter: usize,
        known: &dyn Fn(&str) -> Option<Value<'static>>,
    ) -> bool {
        self.conds
            .get(filter)
            .is_some_and(|c| super::eval::may_match(c, known))
    }

    /// The string literals filter `filter` tests `field` for equality with
    /// (`==`, `in`, `:` without wildcards), sorted and deduplicated: what a
    /// message can name when no event kind passes the filter.
    pub fn literals(&self, filter: usize, field: &str) -> Vec<String> {
        fn walk(c: &Cond, field: &str, out: &mut Vec<String>) {
            match c {
                Cond::And(items) | Cond::Or(items) => {
                    items.iter().for_each(|i| walk(i, field, out))
                }
                Cond::Not { inner, .. } => walk(inner, field, out),
                Cond::Test {
                    src: Src::Field(f),
                    test,
                    ..
                } if f.name.as_ref() == field => {
                    let Test::Any { atoms, .. } = &**test else {
                        return;
                    };
                    for a in atoms.iter() {
                        match a {
                            Atom::Eq(LitV {
                                lit: Lit::Str(s), ..
                            })
                            | Atom::EqFold(s) => out.push(s.clone()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(c) = self.conds.get(filter) {
            walk(c, field, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// What filter `filter` requires of `fields` (strings, or lists of
    /// them): `Some(pins)` when it can only pass an event whose field
    /// `fields[i]` satisfies `r` for some `(i, r)` of `pins`; `None` when it
    /// does not pin them. Tests that pin a field are `field == "a"`, `field
    /// in ("a", "b")`, `field in~ (...)`, and `field :` (`like`, `like~`)
    /// patterns that do not both start and end with a wildcard. Through `or`
    /// every branch must pin (its pins are the union); of an `and`'s pinned
    /// parts the one of least `weight` (summed over its pins) is taken;
    /// under `not` nothing is pinned.
    pub fn required_values(
        &self,
        filter: usize,
        fields: &[&str],
        weight: &dyn Fn(usize, &Required) -> u64,
    ) -> Option<Vec<(usize, Required)>> {
        let mut out = required(self.conds.get(filter)?, fields, weight)?;
        out.sort();
        out.dedup();
        Some(out)
    }

    /// Its filters as they apply to events whose fields `known` gives (the
    /// fields that name a kind of event, say): the tests those fields
    /// decide are folded away, so a matcher fed only such events can test
    /// the rest ([`Matcher::on_event_with`](super::Matcher::on_event_with)).
    pub fn specialize(&self, known: &dyn Fn(&str) -> Option<Value<'static>>) -> Filters {
        Filters {
            conds: self
                .conds
                .iter()
                .map(|c| super::eval::specialize(c, known))
                .collect(),
        }
    }

    /// The `sequence by` / `sample by` fields: equal in every event of a match.
    pub fn join_fields(&self) -> Vec<String> {
        self.join_fields.clone()
    }
}

/// A query's filters specialized to some events ([`Query::specialize`]).
#[derive(Debug, Clone)]
pub struct Filters {
    pub(crate) conds: Vec<Cond>,
}

/// What a filter requires of a field's value: to be a string, or to start
/// or end with one (what a pattern has before its first wildcard, or after
/// its last), compared exactly (`==`, `in`, `like`) or ignoring case (`in~`,
/// `:`, `like~`; the text folded as [`fold_case`] folds it, so the folded
/// value must be, start or end with it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Required {
    Exact(String),
    Folded(String),
    Prefix(String),
    FoldedPrefix(String),
    Suffix(String),
    FoldedSuffix(String),
}

/// Case folding as the case-insensitive operators apply it to event values:
/// an event value `v` passes `Required::Folded(f)` exactly when
/// `fold_case(v) == f`.
pub fn fold_case(s: &str, out: &mut String) {
    super::pattern::fold_into(s, out);
}

/// What [`Query::required_values`] finds in one condition.
fn required(
    c: &Cond,
    fields: &[&str],
    weight: &dyn Fn(usize, &Required) -> u64,
) -> Option<Vec<(usize, Required)>> {
    match c {
        Cond::Const(false) => Some(Vec::new()),
        Cond::And(items) => items
            .iter()
            .filter_map(|i| required(i, fields, weight))
            .min_by_key(|pins| pins.iter().map(|(f, r)| weight(*f, r)).sum::<u64>()),
        Cond::Or(items) => {
            let mut all = Vec::new();
            for i in items {
                all.extend(required(i, fields, weight)?);
            }
            Some(all)
        }
        Cond::Test {
            src: Src::Field(f),
            test,
            ..
        } => {
            let Test::Any {
                atoms,
                null_ok: false,
            } = &**test
            else {
                return None;
            };
            let at = fields.iter().position(|name| *name == f.name.as_ref())?;
            atoms
                .iter()
                .map(|a| required_atom(a).map(|r| (at, r)))
                .collect()
        }
        _ => None,
    }
}

/// The value an atom requires of a string, if it pins one.
fn required_atom(a: &Atom) -> Option<Required> {
    match a {
        Atom::Eq(LitV {
            lit: Lit::Str(s), ..
        }) => Some(Required::Exact(s.clone())),
        // A string equals a number or boolean literal in its text form.
        Atom::Eq(LitV {
            lit: Lit::Int(_) | Lit::Float(_) | Lit::Bool(_),
            text: Some(t),
            ..
        }) => Some(Required::Exact(t.clone())),
        Atom::EqFold(s) => Some(Required::Folded(s.clone())),
        Atom::Wild(w) => {
            let (how, text) = w.pinned()?;
            let text = text.to_owned();
            Some(match (how, w.insensitive()) {
                (Pinned::Exact, false) => Required::Exact(text),
                (Pinned::Exact, true) => Required::Folded(text),
                (Pinned::Prefix, false) => Required::Prefix(text),
                (Pinned::Prefix, true) => Required::FoldedPrefix(text),
                (Pinned::Suffix, false) => Required::Suffix(text),
                (Pinned::Suffix, true) => Required::FoldedSuffix(text),
            })
        }
        _ => None,
    }
}

fn check_key_counts(terms: &[Term], until: Option<&Term>) -> Result<(), EqlError> {
    let Some(first) = terms.first() else {
        return Ok(());
    };
    let n = first.by.len();
    for (i, t) in terms.iter().enumerate().skip(1) {
        if t.by.len() != n {
            return Err(t.pos.error(format!(
                "every stage needs the same number of `by` fields: the first has {n}, number {} has {}",
                i + 1,
                t.by.len()
            )));
        }
    }
    if let Some(u) = until {
        if u.by.len() != n {
            return Err(u.pos.error(format!(
                "`until` needs the same number of `by` fields as the stages ({n}), found {}",
                u.by.len()
            )));
        }
    }
    Ok(())
}

struct Compiler<'s> {
    schema: &'s Schema,
    fields: BTreeSet<String>,
}

const FUNCTIONS: &str = "cidrMatch, endsWith, length, number, startsWith, stringContains";
const ES_ONLY_FUNCTIONS: &[&str] = &[
    "add",
    "between",
    "concat",
    "divide",
    "indexof",
    "modulo",
    "multiply",
    "string",
    "substring",
    "subtract",
];

impl Compiler<'_> {
    fn stage(
        &mut self,
        term: &Term,
        shared: &[KeyField],
        conds: &mut Vec<Cond>,
        key_specs: &mut Vec<Vec<KeyField>>,
    ) -> Result<Stage, EqlError> {
        conds.push(self.filter(&term.filter)?);
        let mut keys = shared.to_vec();
        keys.extend(self.keys(&term.by)?);
        key_specs.push(keys);
        Ok(Stage {
            filter: conds.len() - 1,
            keys: key_specs.len() - 1,
        })
    }

    fn keys(&mut self, by: &[FieldRef]) -> Result<Vec<KeyField>, EqlError> {
        by.iter()
            .map(|f| {
                Ok(KeyField {
                    src: self.field(f)?,
                    optional: f.optional,
                })
            })
            .collect()
    }

    fn field(&mut self, f: &FieldRef) -> Result<Src, EqlError> {
        if let Some(at) = self.schema.fields.iter().position(|s| s == &f.name) {
            self.fields.insert(f.name.clone());
            return Ok(Src::Field(Field {
                name: f.name.as_str().into(),
                at,
            }));
        }
        if f.optional {
            return Ok(Src::Missing);
        }
        let mut known: Vec<&str> = self.schema.fields.iter().map(String::as_str).collect();
        known.sort_unstable();
        Err(f.pos.unsupported(format!(
            "unknown field {}; audetect supplies: {} (mark it optional as ?{} if it may be absent)",
            f.name,
            known.join(", "),
            f.name
        )))
    }

    fn filter(&mut self, filter: &EventFilter) -> Result<Cond, EqlError> {
        let cond = resolve_nulls(self.expr(&filter.condition)?);
        let Some((category, pos)) = &filter.category else {
            return Ok(cond);
        };
        if !self.schema.categories.iter().any(|c| c == category) {
            let mut known: Vec<&str> = self.schema.categories.iter().map(String::as_str).collect();
            known.sort_unstable();
            return Err(pos.unsupported(format!(
                "unknown event category \"{category}\"; audetect supplies: {} (or `any`)",
                known.join(", ")
            )));
        }
        self.fields.insert(CATEGORY_FIELD.to_string());
        let is_cat = Cond::Test {
            src: Src::Field(Field {
                name: CATEGORY_FIELD.into(),
                // Not at any place when the schema does not list it: read by name.
                at: self
                    .schema
                    .fields
                    .iter()
                    .position(|s| s == CATEGORY_FIELD)
                    .unwrap_or(usize::MAX),
            }),
            test: Arc::new(Test::Any {
                atoms: Atoms::new(vec![Atom::Eq(LitV::new(Lit::Str(category.clone())))]),
                null_ok: false,
            }),
            script: false,
        };
        Ok(match cond {
            Cond::Const(true) => is_cat,
            Cond::Const(false) => Cond::Const(false),
            Cond::And(mut items) => {
                items.insert(0, is_cat);
                Cond::And(items)
            }
            other => Cond::And(vec![is_cat, other]),
        })
    }

    fn expr(&mut self, e: &Expr) -> Result<Cond, EqlError> {
        Ok(match e {
            Expr::And(items) => Cond::And(
                items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(items) => Cond::Or(
                items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(inner) => not(self.expr(inner)?),
            Expr::Value(op) => match op {
                Operand::Lit(Lit::Bool(b), _) => Cond::Const(*b),
                // Null as a condition: false, and still null under `not`.
                Operand::Lit(Lit::Null, _) => Cond::Null,
                Operand::Lit(_, pos) => {
                    return Err(pos.error("a string or number alone is not a condition"))
                }
                _ => {
                    let src = self.operand(op)?;
                    let script = truthy_is_script(&src);
                    test_cond(src, Test::Truthy, script)
                }
            },
            Expr::Compare {
                op, left, right, ..
            } => self.compare(*op, left, right)?,
            Expr::In {
                operand,
                items,
                insensitive,
                negated,
            } => {
                let src = self.operand(operand)?;
                let mut atoms = Vec::new();
                for (lit, _) in items {
                    match lit {
                        // Elasticsearch drops nulls from the terms of an `in`.
                        Lit::Null => {}
                        Lit::Str(s) if *insensitive => atoms.push(Atom::EqFold(fold_str(s))),
                        other => atoms.push(Atom::Eq(LitV::new(other.clone()))),
                    }
                }
                let script = comparison_is_script(&src);
                let test = test_cond(
                    src,
                    Test::Any {
                        atoms: Atoms::new(atoms),
                        null_ok: false,
                    },
                    script,
                );
                if *negated {
                    not(test)
                } else {
                    test
                }
            }
            Expr::Match {
                kind,
                operand,
                patterns,
            } => {
                let src = self.operand(operand)?;
                let mut atoms = Vec::new();
                let mut null_ok = false;
                for (lit, pos) in patterns {
                    match (kind, lit) {
                        (MatchKind::Colon, Lit::Str(s)) => {
                            atoms.push(Atom::Wild(Wildcard::new(s, true)))
                        }
                        (MatchKind::Colon, Lit::Null) => null_ok = true,
                        (MatchKind::Colon, other) => atoms.push(Atom::Eq(LitV::new(other.clone()))),
                        (MatchKind::Like, Lit::Str(s)) => {
                            atoms.push(Atom::Wild(Wildcard::new(s, false)))
                        }
                        (MatchKind::LikeInsensitive, Lit::Str(s)) => {
                            atoms.push(Atom::Wild(Wildcard::new(s, true)))
                        }
                        (MatchKind::Regex | MatchKind::RegexInsensitive, Lit::Str(s)) => atoms
                            .push(Atom::Regex(compile_regex(
                                s,
                                *kind == MatchKind::RegexInsensitive,
                                *pos,
                            )?)),
                        (_, _) => {
                            return Err(pos.error("`like` and `regex` patterns must be strings"))
                        }
                    }
                }
                let script = comparison_is_script(&src);
                test_cond(
                    src,
                    Test::Any {
                        atoms: Atoms::new(atoms),
                        null_ok,
                    },
                    script,
                )
            }
        })
    }

    fn compare(&mut self, op: CmpOp, left: &Operand, right: &Operand) -> Result<Cond, EqlError> {
        let (op, value, lit) =
            match (left, right) {
                (Operand::Lit(a, _), Operand::Lit(b, _)) => {
                    // Both constant: decide now.
                    let src = Src::Const(lit_value(a));
                    let c = self.compare_src(op, src, b.clone());
                    return Ok(c);
                }
                (v, Operand::Lit(l, _)) => (op, v, l),
                (Operand::Lit(l, _), v) => (op.mirror(), v, l),
                (_, other) => return Err(other.pos().unsupported(
                    "comparing a field or function to another field or function is not supported; \
                     compare each to a literal",
                )),
            };
        let src = self.operand(value)?;
        Ok(self.compare_src(op, src, lit.clone()))
    }

    fn compare_src(&mut self, op: CmpOp, src: Src, lit: Lit) -> Cond {
        let script = comparison_is_script(&src);
        let eq = |lit: Lit| match lit {
            Lit::Null => Test::Any {
                atoms: Atoms::new(vec![]),
                null_ok: true,
            },
            l => Test::Any {
                atoms: Atoms::new(vec![Atom::Eq(LitV::new(l))]),
                null_ok: false,
            },
        };
        match op {
            CmpOp::Eq => test_cond(src, eq(lit), script),
            // Elasticsearch builds `a != b` as `not (a == b)`.
            CmpOp::Ne => not(test_cond(src, eq(lit), script)),
            _ if lit == Lit::Null => Cond::Const(false),
            _ => test_cond(src, Test::Ord(op, LitV::new(lit)), script),
        }
    }

    fn operand(&mut self, op: &Operand) -> Result<Src, EqlError> {
        match op {
            Operand::Field(f) => self.field(f),
            Operand::Lit(l, _) => Ok(Src::Const(lit_value(l))),
            Operand::Call {
                name,
                insensitive,
                args,
                pos,
            } => self.call(name, *insensitive, args, *pos),
        }
    }

    fn call(&mut self, name: &str, ci: bool, args: &[Operand], pos: Pos) -> Result<Src, EqlError> {
        let lower = name.to_ascii_lowercase();
        let arity = |min: usize, max: Option<usize>| -> Result<(), EqlError> {
            let n = args.len();
            if n < min || max.is_some_and(|m| n > m) {
                let want = match max {
                    Some(m) if m == min => format!("{min}"),
                    Some(m) => format!("{min} to {m}"),
                    None => format!("at least {min}"),
                };
                return Err(pos.error(format!(
                    "{name} takes {want} argument{}, found {n}",
                    if want == "1" { "" } else { "s" }
                )));
            }
            Ok(())
        };
        let takes_tilde = matches!(lower.as_str(), "startswith" | "endswith" | "stringcontains");
        let known = takes_tilde || matches!(lower.as_str(), "length" | "cidrmatch" | "number");
        if !known {
            if ES_ONLY_FUNCTIONS.contains(&lower.as_str()) {
                return Err(pos.unsupported(format!(
                    "function {name} is not supported; supported: {FUNCTIONS}"
                )));
            }
            return Err(pos.unsupported(format!("unknown function {name}; supported: {FUNCTIONS}")));
        }
        if ci && !takes_tilde {
            return Err(pos.unsupported(format!("{name} has no case-insensitive `~` form")));
        }
        let string_arg = |a: &Operand, what: &str| -> Result<String, EqlError> {
            match a {
                Operand::Lit(Lit::Str(s), _) => Ok(if ci { fold_str(s) } else { s.clone() }),
                other => Err(other.pos().unsupported(format!(
                    "{what} of {name} must be a literal string (fields are not supported there)"
                ))),
            }
        };
        let func = match lower.as_str() {
            "startswith" | "endswith" | "stringcontains" => {
                arity(2, Some(2))?;
                let pat = string_arg(&args[1], "the second argument")?;
                match lower.as_str() {
                    "startswith" => Func::StartsWith { pat, ci },
                    "endswith" => Func::EndsWith { pat, ci },
                    _ => Func::Contains { pat, ci },
                }
            }
            "length" => {
                arity(1, Some(1))?;
                Func::Length
            }
            "number" => {
                arity(1, Some(2))?;
                let base = match args.get(1) {
                    None | Some(Operand::Lit(Lit::Null, _)) => None,
                    Some(Operand::Lit(Lit::Int(b), p)) => {
                        if !(2..=36).contains(b) {
                            return Err(p.error("the base of number() must be between 2 and 36"));
                        }
                        Some(*b as u32)
                    }
                    Some(other) => {
                        return Err(other
                            .pos()
                            .error("the base of number() must be a literal whole number"))
                    }
                };
                Func::Number { base }
            }
            // cidrMatch: the one name left once `known` held.
            _ => {
                arity(2, None)?;
                let mut nets = Vec::new();
                for a in &args[1..] {
                    match a {
                        Operand::Lit(Lit::Str(s), p) => {
                            nets.push(Cidr::parse(s).map_err(|m| p.error(m))?)
                        }
                        other => {
                            return Err(other.pos().error(
                                "cidrMatch blocks must be literal strings such as \"10.0.0.0/8\"",
                            ))
                        }
                    }
                }
                Func::Cidr(nets)
            }
        };
        let src = self.operand(&args[0])?;
        Ok(Src::Call(Box::new(Call { func, src })))
    }
}

fn not(inner: Cond) -> Cond {
    match inner {
        Cond::Const(b) => Cond::Const(!b),
        Cond::Null => Cond::Null,
        other => {
            let script = other.is_script();
            Cond::Not {
                inner: Box::new(other),
                script,
            }
        }
    }
}

fn lit_value(l: &Lit) -> Value<'static> {
    match l {
        Lit::Null => Value::Null,
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Int(i) => Value::Int(*i),
        Lit::Float(f) => Value::Float(*f),
        Lit::Str(s) => Value::Str(s.clone().into()),
    }
}

fn compile_regex(pattern: &str, ci: bool, pos: Pos) -> Result<regex::Regex, EqlError> {
    let translated = lucene_to_rust(pattern).map_err(|m| pos.error(m))?;
    regex::RegexBuilder::new(&translated)
        .case_insensitive(ci)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| pos.error(format!("bad regular expression: {e}")))
}

/// Whether Elasticsearch evaluates a comparison on this value as a script
/// (null-propagating) rather than as a query on an indexed field.
fn comparison_is_script(src: &Src) -> bool {
    matches!(src, Src::Call(_))
}

/// Whether a function used directly as a condition runs as a script. The
/// ones Elasticsearch turns into index queries when applied to a field behave
/// like field comparisons: `startsWith` (a prefix query), `endsWith` and
/// `stringContains` (wildcard queries, case-insensitive for `~`; see
/// `CaseInsensitiveScalarFunctions` in its EQL `QueryTranslator`) and
/// `cidrMatch` (a terms query).
fn truthy_is_script(src: &Src) -> bool {
    match src {
        Src::Call(call) => {
            let on_field = matches!(call.src, Src::Field(_));
            let query_form = matches!(
                call.func,
                Func::StartsWith { .. }
                    | Func::EndsWith { .. }
                    | Func::Contains { .. }
                    | Func::Cidr(_)
            );
            !(on_field && query_form)
        }
        _ => false,
    }
}

/// Whether the value is null for every event: a missing optional field, or a
/// function of one (every supported function gives null for null).
fn missing_rooted(src: &Src) -> bool {
    match src {
        Src::Missing => true,
        Src::Call(call) => missing_rooted(&call.src),
        Src::Field(_) | Src::Const(_) => false,
    }
}

/// A test, folded when its value is always null. Elasticsearch replaces a
/// missing optional field in a filter with a null literal and folds the
/// expression: a comparison or function on it is null, except `== null`
/// (and `: null`), which is true.
fn test_cond(src: Src, test: Test, script: bool) -> Cond {
    if missing_rooted(&src) {
        return match test {
            Test::Any { null_ok: true, .. } => Cond::Const(true),
            _ => Cond::Null,
        };
    }
    Cond::Test {
        src,
        test: Arc::new(test),
        script,
    }
}

/// Removes [`Cond::Null`] with SQL's three-valued logic, leaving the
/// condition under which the whole is TRUE (null, like false, does not
/// match). Conditions without a folded null are left exactly as they are, so
/// the query-versus-script null handling of real fields is untouched.
fn resolve_nulls(cond: Cond) -> Cond {
    if has_null(&cond) {
        rails(cond).0
    } else {
        cond
    }
}

fn has_null(cond: &Cond) -> bool {
    match cond {
        Cond::Null => true,
        Cond::And(items) | Cond::Or(items) => items.iter().any(has_null),
        Cond::Not { inner, .. } => has_null(inner),
        Cond::Const(_) | Cond::Test { .. } => false,
    }
}

/// Splits a condition into (when it is TRUE, when it is FALSE); where
/// neither holds it is null. `not` swaps the two, so `not (null or x)` is
/// true nowhere and `not (null and x)` is true where x is false.
fn rails(cond: Cond) -> (Cond, Cond) {
    match cond {
        Cond::Null => (Cond::Const(false), Cond::Const(false)),
        Cond::And(items) if items.iter().any(has_null) => {
            let (t, f): (Vec<Cond>, Vec<Cond>) = items.into_iter().map(rails).unzip();
            (and_of(t), or_of(f))
        }
        Cond::Or(items) if items.iter().any(has_null) => {
            let (t, f): (Vec<Cond>, Vec<Cond>) = items.into_iter().map(rails).unzip();
            (or_of(t), and_of(f))
        }
        Cond::Not { inner, .. } if has_null(&inner) => {
            let (t, f) = rails(*inner);
            (f, t)
        }
        other => {
            let f = not(other.clone());
            (other, f)
        }
    }
}

fn and_of(items: Vec<Cond>) -> Cond {
    let mut out = Vec::with_capacity(items.len());
    for c in items {
        match c {
            Cond::Const(true) => {}
            Cond::Const(false) => return Cond::Const(false),
            Cond::And(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    if out.len() > 1 {
        Cond::And(out)
    } else {
        out.pop().unwrap_or(Cond::Const(true))
    }
}

fn or_of(items: Vec<Cond>) -> Cond {
    let mut out = Vec::with_capacity(items.len());
    for c in items {
        match c {
            Cond::Const(false) => {}
            Cond::Const(true) => return Cond::Const(true),
            Cond::Or(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    if out.len() > 1 {
        Cond::Or(out)
    } else {
        out.pop().unwrap_or(Cond::Const(false))
    }
}
