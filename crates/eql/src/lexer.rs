//! EQL lexer: query text to tokens with their line/column, following the
//! token rules of Elasticsearch's EQL grammar (strings, comments, `name~`).

use super::EqlError;

/// Where a token starts; errors point here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn error(self, message: impl Into<String>) -> EqlError {
        EqlError {
            line: self.line,
            column: self.column,
            offset: self.offset,
            message: message.into(),
            unsupported: false,
        }
    }

    /// An error for valid EQL that audetect does not run.
    pub fn unsupported(self, message: impl Into<String>) -> EqlError {
        EqlError {
            unsupported: true,
            ..self.error(message)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: keyword, field segment, category or function name.
    Ident(String),
    /// A word glued to `~` (`like~`, `endsWith~`): the case-insensitive forms.
    TildeIdent(String),
    /// A backquoted field segment.
    Quoted(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Question,
    Bang,
    Pipe,
    Eq,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::TildeIdent(s) => format!("`{s}~`"),
            Tok::Quoted(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Eof => "end of query".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Question => "?",
            Tok::Bang => "!",
            Tok::Pipe => "|",
            Tok::Eq => "=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Colon => ":",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// True when whitespace or a comment came right before it; `?field` and
    /// `name~` must be glued.
    pub spaced: bool,
}

struct Lexer<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    fn pos(&self) -> Pos {
        Pos {
            offset: self.offset,
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text[self.offset..].chars().nth(n)
    }

    fn rest(&self) -> &'a str {
        &self.text[self.offset..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Skips whitespace and comments; returns whether anything was skipped.
    fn skip_trivia(&mut self) -> Result<bool, EqlError> {
        let mut skipped = false;
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                    skipped = true;
                }
                Some('/') if self.peek_at(1) == Some('/') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                    skipped = true;
                }
                Some('/') if self.peek_at(1) == Some('*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    // Elasticsearch's grammar lets block comments nest.
                    let mut depth = 1;
                    while depth > 0 {
                        if self.rest().starts_with("/*") {
                            self.bump();
                            self.bump();
                            depth += 1;
                        } else if self.rest().starts_with("*/") {
                            self.bump();
                            self.bump();
                            depth -= 1;
                        } else if self.bump().is_none() {
                            return Err(start.error("unterminated comment: `/*` without `*/`"));
                        }
                    }
                    skipped = true;
                }
                _ => return Ok(skipped),
            }
        }
    }

    fn string(&mut self, start: Pos) -> Result<Tok, EqlError> {
        if self.rest().starts_with("\"\"\"") {
            for _ in 0..3 {
                self.bump();
            }
            let body_start = self.offset;
            loop {
                if self.rest().starts_with("\"\"\"") {
                    // Like Elasticsearch, up to two extra quotes before the
                    // closing three belong to the string: `"""a""""` is `a"`.
                    let mut end = self.offset;
                    let mut quotes = 0;
                    while self.rest()[quotes..].starts_with('"') && quotes < 5 {
                        quotes += 1;
                    }
                    end += quotes - 3;
                    let body = self.text[body_start..end].to_string();
                    for _ in 0..quotes {
                        self.bump();
                    }
                    return Ok(Tok::Str(body));
                }
                match self.peek() {
                    None => {
                        return Err(
                            start.error("unterminated string: `\"\"\"` without closing `\"\"\"`")
                        )
                    }
                    Some('\n') | Some('\r') => {
                        return Err(self
                            .pos()
                            .error("line break inside a string; EQL strings stay on one line"))
                    }
                    _ => {
                        self.bump();
                    }
                }
            }
        }
        self.bump();
        let mut out = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => return Err(start.error("unterminated string: missing closing `\"`")),
                Some('"') => return Ok(Tok::Str(out)),
                Some('\n') | Some('\r') => {
                    return Err(here.error("line break inside a string; EQL strings stay on one line"))
                }
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('"') => out.push('"'),
                    Some('\'') => out.push('\''),
                    Some('\\') => out.push('\\'),
                    Some('u') => out.push(self.unicode_escape(here)?),
                    Some(c) => {
                        return Err(here.error(format!(
                            "unknown escape `\\{c}` in string; EQL knows \\n \\r \\t \\b \\f \\\" \\\\ and \\u{{XXXX}} \
                             (use a \"\"\"raw string\"\"\" for backslashes)"
                        )))
                    }
                    None => return Err(start.error("unterminated string: missing closing `\"`")),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn unicode_escape(&mut self, at: Pos) -> Result<char, EqlError> {
        let bad = || at.error("bad unicode escape: write \\u{XXXX} with 2 to 8 hex digits");
        if self.bump() != Some('{') {
            return Err(bad());
        }
        let mut hex = String::new();
        loop {
            match self.bump() {
                Some('}') => break,
                Some(c) if c.is_ascii_hexdigit() && hex.len() < 8 => hex.push(c),
                _ => return Err(bad()),
            }
        }
        if hex.len() < 2 {
            return Err(bad());
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
        char::from_u32(code)
            .ok_or_else(|| at.error(format!("\\u{{{hex}}} is not a valid character")))
    }

    fn number(&mut self, start: Pos) -> Result<Tok, EqlError> {
        let begin = self.offset;
        let mut is_float = false;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') && matches!(self.peek_at(1), Some(c) if c.is_ascii_digit()) {
            is_float = true;
            self.bump();
            while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e') | Some('E')) {
            let sign = matches!(self.peek_at(1), Some('+') | Some('-'));
            let digit_at = if sign { 2 } else { 1 };
            if matches!(self.peek_at(digit_at), Some(c) if c.is_ascii_digit()) {
                is_float = true;
                for _ in 0..digit_at {
                    self.bump();
                }
                while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let text = &self.text[begin..self.offset];
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Tok::Int(i));
            }
        }
        // Like Elasticsearch, an integer too large for a long becomes a float.
        text.parse::<f64>()
            .map(Tok::Float)
            .map_err(|_| start.error(format!("bad number `{text}`")))
    }

    fn next(&mut self) -> Result<Token, EqlError> {
        let spaced = self.skip_trivia()?;
        let pos = self.pos();
        let tok = |tok| Ok(Token { tok, pos, spaced });
        let Some(c) = self.peek() else {
            return tok(Tok::Eof);
        };
        let two = |l: &Self, s: &str| l.rest().starts_with(s);
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            '.' => Some(Tok::Dot),
            '|' => Some(Tok::Pipe),
            ':' => Some(Tok::Colon),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '*' => Some(Tok::Star),
            '/' => Some(Tok::Slash),
            '%' => Some(Tok::Percent),
            _ => None,
        };
        if let Some(t) = simple {
            self.bump();
            return tok(t);
        }
        for (s, t) in [
            ("==", Tok::EqEq),
            ("!=", Tok::Ne),
            ("<=", Tok::Le),
            (">=", Tok::Ge),
        ] {
            if two(self, s) {
                self.bump();
                self.bump();
                return tok(t);
            }
        }
        match c {
            '=' => {
                self.bump();
                tok(Tok::Eq)
            }
            '<' => {
                self.bump();
                tok(Tok::Lt)
            }
            '>' => {
                self.bump();
                tok(Tok::Gt)
            }
            '!' => {
                self.bump();
                tok(Tok::Bang)
            }
            '?' => {
                if matches!(self.peek_at(1), Some('"') | Some('\'')) {
                    return Err(pos.error(
                        "`?\"...\"` raw strings are not supported in EQL; use \"\"\"...\"\"\" for a raw string",
                    ));
                }
                self.bump();
                tok(Tok::Question)
            }
            '"' => {
                let s = self.string(pos)?;
                tok(s)
            }
            '\'' => Err(pos.error(
                "single-quoted strings are not supported in EQL; use double quotes (\"...\") or \"\"\"...\"\"\"",
            )),
            '`' => {
                self.bump();
                let mut name = String::new();
                loop {
                    match self.bump() {
                        None => return Err(pos.error("unterminated backquoted name: missing closing `")),
                        Some('`') if self.peek() == Some('`') => {
                            self.bump();
                            name.push('`');
                        }
                        Some('`') => break,
                        Some(c) => name.push(c),
                    }
                }
                if name.is_empty() {
                    return Err(pos.error("empty backquoted name"));
                }
                tok(Tok::Quoted(name))
            }
            c if c.is_ascii_digit() => {
                let n = self.number(pos)?;
                tok(n)
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' => {
                let begin = self.offset;
                self.bump();
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.bump();
                }
                let word = self.text[begin..self.offset].to_string();
                if self.peek() == Some('~') {
                    self.bump();
                    return tok(Tok::TildeIdent(word));
                }
                tok(Tok::Ident(word))
            }
            '~' => Err(pos.error("`~` must follow a function or operator name directly (like~, in~, endsWith~)")),
            other => Err(pos.error(format!("unexpected character `{other}`"))),
        }
    }
}

/// Splits a query into tokens, ending with `Tok::Eof`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, EqlError> {
    let mut lexer = Lexer {
        text,
        offset: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    loop {
        let t = lexer.next()?;
        let end = t.tok == Tok::Eof;
        out.push(t);
        if end {
            return Ok(out);
        }
    }
}
