//! EQL parser: tokens to the syntax tree, by recursive descent; constructs
//! outside the supported subset are refused here with their position.

use super::ast::{CmpOp, EventFilter, Expr, FieldRef, Lit, MatchKind, Operand, Statement, Term};
use super::lexer::{tokenize, Pos, Tok, Token};
use super::EqlError;

/// The most a `with runs=N` may repeat a stage (Elasticsearch's own limit).
pub(crate) const MAX_RUNS: i64 = 100;

/// Deepest nesting of parentheses, `not` and calls we accept, so a hostile
/// query cannot overflow the stack.
const MAX_DEPTH: usize = 64;

pub(crate) fn parse(text: &str) -> Result<Statement, EqlError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let statement = p.statement()?;
    let t = p.peek();
    match &t.tok {
        Tok::Eof => Ok(statement),
        Tok::Pipe => Err(t
            .pos
            .unsupported("pipes (`| head`, `| tail`, `| unique`, ...) are not supported")),
        other => Err(t
            .pos
            .error(format!("expected end of query, found {}", other.describe()))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

fn is_word(t: &Tok, w: &str) -> bool {
    matches!(t, Tok::Ident(s) if s == w)
}

/// Words that cannot start or continue an expression as a field name.
const KEYWORDS: &[&str] = &[
    "and", "any", "by", "false", "in", "join", "like", "maxspan", "not", "null", "of", "or",
    "regex", "sample", "sequence", "true", "until", "where", "with",
];

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and we never move past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_n(&self, n: usize) -> &Token {
        &self.tokens[(self.at + n).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.at += 1;
        }
        t
    }

    fn at_word(&self, w: &str) -> bool {
        is_word(&self.peek().tok, w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.at_word(w) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expected(&self, what: &str) -> EqlError {
        let t = self.peek();
        t.pos
            .error(format!("expected {what}, found {}", t.tok.describe()))
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<Pos, EqlError> {
        if &self.peek().tok == tok {
            Ok(self.advance().pos)
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_word(&mut self, w: &str, what: &str) -> Result<Pos, EqlError> {
        if self.at_word(w) {
            Ok(self.advance().pos)
        } else {
            Err(self.expected(what))
        }
    }

    fn enter(&mut self, pos: Pos) -> Result<(), EqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(pos.error("query nests too deeply"));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Statement, EqlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Ident(w) if w == "sequence" => {
                self.advance();
                self.sequence(t.pos)
            }
            Tok::Ident(w) if w == "sample" => {
                self.advance();
                self.sample(t.pos)
            }
            Tok::Ident(w) if w == "join" => {
                Err(t.pos.unsupported("`join` is not supported; use `sequence`"))
            }
            _ => Ok(Statement::Event(self.event_filter()?)),
        }
    }

    fn sequence(&mut self, pos: Pos) -> Result<Statement, EqlError> {
        let mut by = Vec::new();
        if self.eat_word("by") {
            by = self.join_keys()?;
        }
        let mut maxspan_ms = None;
        if self.at_word("with") {
            self.advance();
            self.expect_word("maxspan", "`maxspan` after `sequence ... with`")?;
            self.expect(&Tok::Eq, "`=` after `maxspan`")?;
            maxspan_ms = Some(self.duration()?);
            if self.at_word("by") {
                return Err(self
                    .peek()
                    .pos
                    .error("`by` must come before `with maxspan` in a sequence"));
            }
        }
        let mut terms = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::LBracket => terms.push(self.term(true)?),
                Tok::Bang => {
                    return Err(t
                        .pos
                        .unsupported("missing-event stages (`![...]`) are not supported"))
                }
                _ => break,
            }
        }
        if terms.is_empty() {
            return Err(self.expected("`[` starting a sequence stage"));
        }
        let mut until = None;
        if self.at_word("until") {
            self.advance();
            if self.peek().tok != Tok::LBracket {
                return Err(self.expected("`[` after `until`"));
            }
            let term = self.term(false)?;
            until = Some(term);
        }
        Ok(Statement::Sequence {
            by,
            maxspan_ms,
            terms,
            until,
            pos,
        })
    }

    fn sample(&mut self, pos: Pos) -> Result<Statement, EqlError> {
        let mut by = Vec::new();
        if self.eat_word("by") {
            by = self.join_keys()?;
        }
        if self.at_word("with") {
            return Err(self
                .peek()
                .pos
                .error("`sample` takes no `with` options (maxspan and runs are for sequences)"));
        }
        let mut terms = Vec::new();
        while self.peek().tok == Tok::LBracket {
            terms.push(self.term(false)?);
        }
        if terms.is_empty() {
            return Err(self.expected("`[` starting a sample filter"));
        }
        if self.at_word("until") {
            return Err(self.peek().pos.error("`until` is not allowed in a sample"));
        }
        Ok(Statement::Sample { by, terms, pos })
    }

    /// `[ filter ] [by keys] [with runs=N]`.
    fn term(&mut self, allow_runs: bool) -> Result<Term, EqlError> {
        let pos = self.expect(&Tok::LBracket, "`[`")?;
        let filter = self.event_filter()?;
        self.expect(
            &Tok::RBracket,
            "`]` closing the stage (or `and`/`or` to continue)",
        )?;
        let mut by = Vec::new();
        if self.eat_word("by") {
            by = self.join_keys()?;
        }
        let mut runs = 1;
        if self.at_word("with") {
            let with_pos = self.peek().pos;
            if !allow_runs {
                return Err(with_pos.error("`with runs=` is only allowed on sequence stages"));
            }
            self.advance();
            if !self.at_word("runs") {
                if self.at_word("maxspan") {
                    return Err(self.peek().pos.error(
                        "`with maxspan` belongs right after `sequence [by ...]`, not after a stage",
                    ));
                }
                return Err(self.expected("`runs` after `with`"));
            }
            self.advance();
            self.expect(&Tok::Eq, "`=` after `runs`")?;
            let t = self.advance();
            match t.tok {
                Tok::Int(n) if (1..=MAX_RUNS).contains(&n) => runs = n as usize,
                Tok::Int(n) => {
                    return Err(t
                        .pos
                        .error(format!("runs must be between 1 and {MAX_RUNS}, found {n}")))
                }
                other => {
                    return Err(t.pos.error(format!(
                        "expected a whole number after `runs=`, found {}",
                        other.describe()
                    )))
                }
            }
        }
        Ok(Term {
            filter,
            by,
            runs,
            pos,
        })
    }

    fn duration(&mut self) -> Result<u64, EqlError> {
        let t = self.advance();
        let n = match t.tok {
            Tok::Int(n) if n > 0 => n as u64,
            Tok::Int(_) => return Err(t.pos.error("maxspan must be greater than zero")),
            Tok::Float(_) => {
                return Err(t.pos.error(
                    "maxspan must be a whole number with a unit (e.g. 90s rather than 1.5m)",
                ))
            }
            other => {
                return Err(t.pos.error(format!(
                    "expected a duration such as 30s or 5m after `maxspan=`, found {}",
                    other.describe()
                )))
            }
        };
        let u = self.peek().clone();
        let unit_ms: u64 = match &u.tok {
            Tok::Ident(unit) if !u.spaced => match unit.as_str() {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                other => {
                    return Err(u
                        .pos
                        .error(format!("unknown time unit `{other}`; use ms, s, m, h or d")))
                }
            },
            _ => {
                return Err(t
                    .pos
                    .error("maxspan needs a time unit right after the number: ms, s, m, h or d"))
            }
        };
        self.advance();
        n.checked_mul(unit_ms)
            .ok_or_else(|| t.pos.error("maxspan is too large"))
    }

    fn join_keys(&mut self) -> Result<Vec<FieldRef>, EqlError> {
        let mut keys = vec![self.join_key()?];
        while self.eat(&Tok::Comma) {
            keys.push(self.join_key()?);
        }
        Ok(keys)
    }

    fn join_key(&mut self) -> Result<FieldRef, EqlError> {
        let t = self.peek().clone();
        let key = match t.tok {
            Tok::Question | Tok::Quoted(_) => self.field_ref()?,
            Tok::Ident(ref w) if !KEYWORDS.contains(&w.as_str()) => self.field_ref()?,
            _ => return Err(self.expected("a field name after `by`")),
        };
        if self.peek().tok == Tok::LParen {
            return Err(t.pos.error("join keys must be fields, not function calls"));
        }
        Ok(key)
    }

    fn event_filter(&mut self) -> Result<EventFilter, EqlError> {
        let t = self.advance();
        let category = match t.tok {
            Tok::Ident(ref w) if w == "any" => None,
            Tok::Ident(ref w) if !KEYWORDS.contains(&w.as_str()) => Some((w.clone(), t.pos)),
            Tok::Str(ref s) => Some((s.clone(), t.pos)),
            ref other => {
                return Err(t.pos.error(format!(
                    "expected an event category (such as `process`) or `any`, found {}",
                    other.describe()
                )))
            }
        };
        self.expect_word("where", "`where` after the event category")?;
        let condition = self.expr()?;
        Ok(EventFilter {
            category,
            condition,
        })
    }

    fn expr(&mut self) -> Result<Expr, EqlError> {
        let mut items = vec![self.and_expr()?];
        while self.eat_word("or") {
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, EqlError> {
        let mut items = vec![self.not_expr()?];
        while self.eat_word("and") {
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Expr, EqlError> {
        if self.at_word("not") {
            let pos = self.advance().pos;
            self.enter(pos)?;
            let inner = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, EqlError> {
        let t = self.peek().clone();
        if let Tok::Ident(w) = &t.tok {
            if ["descendant", "child", "event"].contains(&w.as_str())
                && is_word(&self.peek_n(1).tok, "of")
            {
                return Err(t
                    .pos
                    .unsupported(format!("lineage (`{w} of [...]`) is not supported")));
            }
        }
        if t.tok == Tok::LParen {
            // A parenthesised condition; a parenthesised value would need a
            // comparison after it, which EQL rules do not write.
            self.advance();
            self.enter(t.pos)?;
            let inner = self.expr()?;
            self.depth -= 1;
            self.expect(
                &Tok::RParen,
                "`)` (or `and`/`or` to continue the condition)",
            )?;
            self.reject_trailing_operator()?;
            return Ok(inner);
        }
        let left = self.operand()?;
        let t = self.peek().clone();
        let cmp = match t.tok {
            Tok::EqEq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            self.advance();
            let right = self.operand()?;
            let n = self.peek().clone();
            if matches!(
                n.tok,
                Tok::EqEq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
            ) {
                return Err(n.pos.error(
                    "comparisons cannot be chained; join them with `and` (a < b and b < c)",
                ));
            }
            self.reject_trailing_operator()?;
            return Ok(Expr::Compare { op, left, right });
        }
        match &t.tok {
            Tok::Eq => Err(t.pos.error(
                "`=` is not an EQL operator; use `==` (case-sensitive) or `:` (case-insensitive)",
            )),
            Tok::Colon => {
                self.advance();
                self.match_rest(MatchKind::Colon, left)
            }
            Tok::Bang if self.peek_n(1).tok == Tok::Colon => Err(t
                .pos
                .unsupported("`!:` is not supported; write `not field : \"value\"`")),
            Tok::Ident(w) if w == "like" => {
                self.advance();
                self.match_rest(MatchKind::Like, left)
            }
            Tok::Ident(w) if w == "regex" => {
                self.advance();
                self.match_rest(MatchKind::Regex, left)
            }
            Tok::TildeIdent(w) if w == "like" => {
                self.advance();
                self.match_rest(MatchKind::LikeInsensitive, left)
            }
            Tok::TildeIdent(w) if w == "regex" => {
                self.advance();
                self.match_rest(MatchKind::RegexInsensitive, left)
            }
            Tok::Ident(w) if w == "in" => {
                self.advance();
                self.in_rest(left, false, false)
            }
            Tok::TildeIdent(w) if w == "in" => {
                self.advance();
                self.in_rest(left, true, false)
            }
            Tok::Ident(w) if w == "not" => {
                let n = self.peek_n(1).clone();
                match &n.tok {
                    Tok::Ident(x) if x == "in" => {
                        self.advance();
                        self.advance();
                        self.in_rest(left, false, true)
                    }
                    Tok::TildeIdent(x) if x == "in" => {
                        self.advance();
                        self.advance();
                        self.in_rest(left, true, true)
                    }
                    Tok::Ident(x) | Tok::TildeIdent(x) if x == "like" || x == "regex" => {
                        Err(t.pos.error(format!(
                            "`field not {x}` is not EQL; write `not field {x} ...`"
                        )))
                    }
                    _ => Err(t.pos.error("expected `in` or `in~` after `not` here")),
                }
            }
            _ => {
                self.reject_trailing_operator()?;
                Ok(Expr::Value(left))
            }
        }
    }

    fn reject_trailing_operator(&self) -> Result<(), EqlError> {
        let t = self.peek();
        match t.tok {
            Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::Percent => {
                Err(t.pos.unsupported(format!(
                    "arithmetic ({}) is not supported",
                    t.tok.describe()
                )))
            }
            _ => Ok(()),
        }
    }

    fn match_rest(&mut self, kind: MatchKind, operand: Operand) -> Result<Expr, EqlError> {
        let patterns = self.literal_list(false)?;
        Ok(Expr::Match {
            kind,
            operand,
            patterns,
        })
    }

    fn in_rest(
        &mut self,
        operand: Operand,
        insensitive: bool,
        negated: bool,
    ) -> Result<Expr, EqlError> {
        if self.peek().tok != Tok::LParen {
            return Err(self.expected("`(` starting the `in` list"));
        }
        let items = self.literal_list(true)?;
        Ok(Expr::In {
            operand,
            items,
            insensitive,
            negated,
        })
    }

    /// One literal, or a parenthesised list of them (required for `in`).
    fn literal_list(&mut self, list_only: bool) -> Result<Vec<(Lit, Pos)>, EqlError> {
        if self.eat(&Tok::LParen) {
            let mut items = vec![self.literal()?];
            while self.eat(&Tok::Comma) {
                items.push(self.literal()?);
            }
            self.expect(&Tok::RParen, "`,` or `)` in the list")?;
            self.reject_trailing_operator()?;
            return Ok(items);
        }
        debug_assert!(!list_only);
        let item = self.literal()?;
        self.reject_trailing_operator()?;
        Ok(vec![item])
    }

    fn literal(&mut self) -> Result<(Lit, Pos), EqlError> {
        let t = self.peek().clone();
        match self.operand()? {
            Operand::Lit(l, p) => Ok((l, p)),
            Operand::Field(f) => Err(f.pos.unsupported(format!(
                "expected a literal value here, found field {}; comparing two fields is not supported",
                f.name
            ))),
            Operand::Call { .. } => Err(t.pos.error("expected a literal value here, found a function call")),
        }
    }

    fn operand(&mut self) -> Result<Operand, EqlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.advance();
                Ok(Operand::Lit(Lit::Str(s.clone()), t.pos))
            }
            Tok::Int(i) => {
                self.advance();
                Ok(Operand::Lit(Lit::Int(*i), t.pos))
            }
            Tok::Float(f) => {
                self.advance();
                Ok(Operand::Lit(Lit::Float(*f), t.pos))
            }
            Tok::Minus => {
                self.advance();
                let n = self.advance();
                match n.tok {
                    Tok::Int(i) => Ok(Operand::Lit(Lit::Int(-i), t.pos)),
                    Tok::Float(f) => Ok(Operand::Lit(Lit::Float(-f), t.pos)),
                    _ => Err(t.pos.unsupported(
                        "arithmetic (`-`) is not supported; `-` may only start a number",
                    )),
                }
            }
            Tok::Plus => Err(t.pos.unsupported("arithmetic (`+`) is not supported")),
            Tok::Ident(w) if w == "true" || w == "false" => {
                self.advance();
                Ok(Operand::Lit(Lit::Bool(w == "true"), t.pos))
            }
            Tok::Ident(w) if w == "null" => {
                self.advance();
                Ok(Operand::Lit(Lit::Null, t.pos))
            }
            Tok::Ident(w)
                if self.peek_n(1).tok == Tok::LParen && !KEYWORDS.contains(&w.as_str()) =>
            {
                self.call(w.clone(), false)
            }
            Tok::TildeIdent(w) => {
                if self.peek_n(1).tok != Tok::LParen {
                    return Err(t.pos.error(format!(
                        "expected `(` after `{w}~` (a case-insensitive function call)"
                    )));
                }
                self.call(w.clone(), true)
            }
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => Err(t.pos.error(format!(
                "expected a field, value or function, found keyword `{w}`"
            ))),
            Tok::Ident(_) | Tok::Quoted(_) | Tok::Question => Ok(Operand::Field(self.field_ref()?)),
            other => Err(t.pos.error(format!(
                "expected a field, value or function, found {}",
                other.describe()
            ))),
        }
    }

    fn call(&mut self, name: String, insensitive: bool) -> Result<Operand, EqlError> {
        let pos = self.advance().pos;
        self.enter(pos)?;
        self.expect(&Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                let a = self.peek().clone();
                if a.tok == Tok::LParen || self.at_word("not") {
                    return Err(a
                        .pos
                        .error("function arguments must be fields, literals or function calls"));
                }
                args.push(self.operand()?);
                let n = self.peek().clone();
                match n.tok {
                    Tok::Comma => {
                        self.advance();
                    }
                    Tok::RParen => {
                        self.advance();
                        break;
                    }
                    Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::Percent => {
                        return Err(n.pos.error(format!(
                            "arithmetic ({}) is not supported",
                            n.tok.describe()
                        )))
                    }
                    _ => {
                        return Err(n.pos.error(format!(
                            "expected `,` or `)` in the arguments of {name}, found {}",
                            n.tok.describe()
                        )))
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Operand::Call {
            name,
            insensitive,
            args,
            pos,
        })
    }

    /// `[?]name(.name)*` where a name is a word or a backquoted name.
    fn field_ref(&mut self) -> Result<FieldRef, EqlError> {
        let start = self.peek().pos;
        let optional = self.eat(&Tok::Question);
        if optional && self.peek().spaced {
            return Err(self
                .peek()
                .pos
                .error("`?` must be glued to the field name (`?field.name`)"));
        }
        let mut name = String::new();
        loop {
            let t = self.advance();
            match t.tok {
                // A keyword may be a later segment (`event.sequence`) but not the first.
                Tok::Ident(ref w) if !name.is_empty() || !KEYWORDS.contains(&w.as_str()) => {
                    name.push_str(w)
                }
                Tok::Quoted(ref w) => name.push_str(w),
                ref other => {
                    return Err(t
                        .pos
                        .error(format!("expected a field name, found {}", other.describe())))
                }
            }
            if self.peek().tok == Tok::Dot && !self.peek().spaced {
                self.advance();
                name.push('.');
                continue;
            }
            break;
        }
        if self.peek().tok == Tok::LBracket && !self.peek().spaced {
            return Err(self
                .peek()
                .pos
                .unsupported("array indexing (`field[0]`) is not supported"));
        }
        Ok(FieldRef {
            name,
            optional,
            pos: start,
        })
    }
}
