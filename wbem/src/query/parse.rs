//! Tokenizer and recursive-descent parser of the WQL / CQL subset. Nesting depth is bounded so
//! that a hostile query cannot exhaust the stack.

use super::{CompareOp, Condition, Operand, PropertyRef, Query, QueryError, QueryLanguage};
use crate::cim::{is_valid_name, CimValue};

const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Star,
    Comma,
    Dot,
    Scope,
    LParen,
    RParen,
    Op(CompareOp),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based column (in characters).
    column: usize,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError { column, message: message.into() })
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let single = |tok| Token { tok, column };
        match c {
            '*' => {
                out.push(single(Tok::Star));
                i += 1;
            }
            ',' => {
                out.push(single(Tok::Comma));
                i += 1;
            }
            '(' => {
                out.push(single(Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push(single(Tok::RParen));
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push(single(Tok::Scope));
                i += 2;
            }
            '=' => {
                out.push(single(Tok::Op(CompareOp::Eq)));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(single(Tok::Op(CompareOp::Ne)));
                i += 2;
            }
            '<' => {
                let (op, n) = match chars.get(i + 1) {
                    Some('>') => (CompareOp::Ne, 2),
                    Some('=') => (CompareOp::Le, 2),
                    _ => (CompareOp::Lt, 1),
                };
                out.push(single(Tok::Op(op)));
                i += n;
            }
            '>' => {
                let (op, n) = if chars.get(i + 1) == Some(&'=') { (CompareOp::Ge, 2) } else { (CompareOp::Gt, 1) };
                out.push(single(Tok::Op(op)));
                i += n;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err(column, "unterminated string literal"),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        // A doubled quote stands for one quote, as in SQL.
                        Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => {
                            s.push(quote);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                out.push(Token { tok: Tok::Str(s), column });
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                out.push(single(Tok::Dot));
                i += 1;
            }
            c if c.is_ascii_digit()
                || c == '.'
                || ((c == '-' || c == '+') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    let exponent_sign = (d == '-' || d == '+')
                        && matches!(chars[i - 1], 'e' | 'E')
                        && !chars[start..i].iter().any(|c| *c == 'x' || *c == 'X');
                    if d.is_ascii_alphanumeric() || d == '.' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Token { tok: Tok::Num(chars[start..i].iter().collect()), column });
            }
            c if c == '_' || c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                    i += 1;
                }
                out.push(Token { tok: Tok::Ident(chars[start..i].iter().collect()), column });
            }
            other => return err(column, format!("unexpected character '{other}'")),
        }
    }
    out.push(Token { tok: Tok::End, column: chars.len() + 1 });
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    language: QueryLanguage,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Star => "'*'".into(),
        Tok::Comma => "','".into(),
        Tok::Dot => "'.'".into(),
        Tok::Scope => "'::'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Op(_) => "an operator".into(),
        Tok::End => "the end of the query".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.is_keyword(kw) {
            self.next();
            Ok(())
        } else {
            let t = self.peek();
            err(t.column, format!("expected {kw}, found {}", describe(&t.tok)))
        }
    }

    fn name(&mut self, what: &str) -> Result<String, QueryError> {
        let t = self.next();
        match t.tok {
            Tok::Ident(s) if is_valid_name(&s) => Ok(s),
            other => err(t.column, format!("expected {what}, found {}", describe(&other))),
        }
    }

    /// `a.b`, `a.Class::b`, `Class::b`, `a.*`.
    fn property_ref(&mut self, first: String) -> Result<PropertyRef, QueryError> {
        let mut segments = vec![first];
        loop {
            match self.peek().tok {
                Tok::Scope => {
                    // `Class::Prop`: the scope names the class that declares the property; it does
                    // not change which property is meant.
                    self.next();
                    let prop = self.name("a property name after '::'")?;
                    *segments.last_mut().expect("one segment") = prop;
                }
                Tok::Dot => {
                    self.next();
                    if self.peek().tok == Tok::Star {
                        self.next();
                        segments.push("*".into());
                        return Ok(PropertyRef { segments });
                    }
                    segments.push(self.name("a property name after '.'")?);
                }
                _ => return Ok(PropertyRef { segments }),
            }
        }
    }

    fn query(&mut self, text: &str) -> Result<Query, QueryError> {
        self.keyword("SELECT")?;
        let select = if self.peek().tok == Tok::Star {
            self.next();
            None
        } else {
            let mut list = Vec::new();
            loop {
                if let Tok::Ident(word) = &self.peek().tok {
                    if is_reserved(word) {
                        let t = self.peek();
                        return err(t.column, format!("expected a property name or '*', found {}", describe(&t.tok)));
                    }
                }
                let first = self.name("a property name or '*'")?;
                list.push(self.property_ref(first)?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
            Some(list)
        };
        self.keyword("FROM")?;
        let from_class = self.name("a class name after FROM")?;
        let mut alias = None;
        if self.is_keyword("AS") {
            self.next();
            alias = Some(self.name("an alias after AS")?);
        } else if let Tok::Ident(s) = &self.peek().tok {
            if !s.eq_ignore_ascii_case("WHERE") {
                alias = Some(self.name("an alias")?);
            }
        }
        let condition = if self.is_keyword("WHERE") {
            self.next();
            Some(self.or()?)
        } else {
            None
        };
        let t = self.peek();
        if t.tok != Tok::End {
            return err(t.column, format!("unexpected {} after the query", describe(&t.tok)));
        }
        Ok(Query { language: self.language, text: text.to_string(), select, from_class, alias, condition })
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.peek().column, format!("condition nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Condition, QueryError> {
        self.enter()?;
        let mut left = self.and()?;
        while self.is_keyword("OR") {
            self.next();
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.not()?;
        while self.is_keyword("AND") {
            self.next();
            let right = self.not()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, QueryError> {
        if self.is_keyword("NOT") {
            self.next();
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        let t = self.next();
        Ok(match t.tok {
            Tok::Str(s) => Operand::Literal(Some(CimValue::String(s))),
            Tok::Num(n) => {
                Operand::Literal(Some(number(&n).ok_or_else(|| QueryError { column: t.column, message: format!("invalid number '{n}'") })?))
            }
            Tok::Ident(s) if s.eq_ignore_ascii_case("TRUE") => Operand::Literal(Some(CimValue::Boolean(true))),
            Tok::Ident(s) if s.eq_ignore_ascii_case("FALSE") => Operand::Literal(Some(CimValue::Boolean(false))),
            Tok::Ident(s) if s.eq_ignore_ascii_case("NULL") => Operand::Literal(None),
            Tok::Ident(s) if is_valid_name(&s) && !is_reserved(&s) => Operand::Property(self.property_ref(s)?),
            other => return err(t.column, format!("expected a property name or a literal, found {}", describe(&other))),
        })
    }

    fn primary(&mut self) -> Result<Condition, QueryError> {
        if self.peek().tok == Tok::LParen {
            self.next();
            let inner = self.or()?;
            let t = self.next();
            if t.tok != Tok::RParen {
                return err(t.column, format!("expected ')', found {}", describe(&t.tok)));
            }
            return Ok(inner);
        }
        let left = self.operand()?;
        if let Tok::Op(op) = self.peek().tok {
            self.next();
            let right = self.operand()?;
            return Ok(Condition::Compare(left, op, right));
        }
        if self.is_keyword("IS") {
            self.next();
            let negated = if self.is_keyword("NOT") {
                self.next();
                true
            } else {
                false
            };
            self.keyword("NULL")?;
            return Ok(Condition::IsNull(left, !negated));
        }
        if self.is_keyword("ISA") {
            self.next();
            let class = self.name("a class name after ISA")?;
            return Ok(Condition::Isa(left, class));
        }
        let negated_like = self.is_keyword("NOT")
            && matches!(&self.tokens.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("LIKE"));
        if negated_like {
            self.next();
        }
        if self.is_keyword("LIKE") {
            self.next();
            let t = self.next();
            return match t.tok {
                Tok::Str(p) => Ok(Condition::Like(left, p, !negated_like)),
                other => err(t.column, format!("expected a string pattern after LIKE, found {}", describe(&other))),
            };
        }
        match left {
            Operand::Property(_) | Operand::Literal(Some(CimValue::Boolean(_))) => Ok(Condition::Truth(left)),
            _ => {
                let t = self.peek();
                err(t.column, format!("expected a comparison, found {}", describe(&t.tok)))
            }
        }
    }
}

fn is_reserved(s: &str) -> bool {
    ["SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IS", "ISA", "LIKE", "AS"].iter().any(|k| k.eq_ignore_ascii_case(s))
}

fn number(text: &str) -> Option<CimValue> {
    if let Ok(n) = crate::cim::CimValue::parse_scalar(crate::cim::CimType::SInt64, text) {
        return Some(n);
    }
    if let Ok(n) = crate::cim::CimValue::parse_scalar(crate::cim::CimType::UInt64, text) {
        return Some(n);
    }
    crate::cim::CimValue::parse_scalar(crate::cim::CimType::Real64, text).ok()
}

pub(super) fn parse(language: QueryLanguage, text: &str) -> Result<Query, QueryError> {
    if text.trim().is_empty() {
        return err(1, "the query is empty");
    }
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0, depth: 0, language };
    p.query(text)
}
