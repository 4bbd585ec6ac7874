//! EQL syntax tree as parsed, before fields are checked against the schema
//! and patterns compiled; every node keeps the position errors point at.

use super::lexer::Pos;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone)]
pub(crate) struct FieldRef {
    pub name: String,
    pub optional: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Field(FieldRef),
    Lit(Lit, Pos),
    Call {
        name: String,
        insensitive: bool,
        args: Vec<Operand>,
        pos: Pos,
    },
}

impl Operand {
    pub fn pos(&self) -> Pos {
        match self {
            Operand::Field(f) => f.pos,
            Operand::Lit(_, p) => *p,
            Operand::Call { pos, .. } => *pos,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its sides swapped (`1 < x` is `x > 1`).
    pub fn mirror(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// The pattern operators, whose right side is one literal or a list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    /// `:` — case-insensitive, `*`/`?` wildcards.
    Colon,
    Like,
    LikeInsensitive,
    Regex,
    RegexInsensitive,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    In {
        operand: Operand,
        items: Vec<(Lit, Pos)>,
        insensitive: bool,
        negated: bool,
    },
    Match {
        kind: MatchKind,
        operand: Operand,
        patterns: Vec<(Lit, Pos)>,
    },
    /// A bare value used as a condition: `true`, a boolean field, `startsWith(...)`.
    Value(Operand),
}

#[derive(Debug, Clone)]
pub(crate) struct EventFilter {
    /// None for `any`.
    pub category: Option<(String, Pos)>,
    pub condition: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct Term {
    pub filter: EventFilter,
    pub by: Vec<FieldRef>,
    pub runs: usize,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum Statement {
    Event(EventFilter),
    Sequence {
        by: Vec<FieldRef>,
        maxspan_ms: Option<u64>,
        terms: Vec<Term>,
        until: Option<Term>,
        pos: Pos,
    },
    Sample {
        by: Vec<FieldRef>,
        terms: Vec<Term>,
        pos: Pos,
    },
}
