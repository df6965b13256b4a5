//! The MOF lexer (DSP0004 ANNEX A tokens).
//!
//! Keywords are not tokens of their own: MOF keywords are case-insensitive and most of them are also
//! legal names (`Association`, `In`, `Reference`...), so the parser decides by context.

use super::diag::{Pos, SyntaxError};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// `$Name`, without the dollar sign.
    Alias(String),
    /// One string literal with its escapes resolved; the parser joins adjacent literals.
    Str(String),
    Char16(char),
    /// Sign included. i128 holds every uint64 and sint64 value; the range check for the target type
    /// happens when the value gets its type.
    Integer(i128),
    Real(f64),
    /// `#pragma`
    Pragma,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Semicolon,
    Comma,
    Colon,
    Equals,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

impl Tok {
    /// How an error message names what it found.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Alias(s) => format!("alias '${s}'"),
            Tok::Str(s) => {
                let short: String = s.chars().take(24).collect();
                let ellipsis = if short.len() < s.len() { "..." } else { "" };
                format!("string \"{short}{ellipsis}\"")
            }
            Tok::Char16(c) => format!("char16 {c:?}"),
            Tok::Integer(i) => format!("integer {i}"),
            Tok::Real(r) => format!("real {r}"),
            Tok::Pragma => "'#pragma'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Semicolon => "';'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Equals => "'='".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// Splits a MOF text into tokens, ending with [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer { chars: src.chars().collect(), i: 0, line: 1, col: 1 };
    if lexer.peek() == Some('\u{feff}') {
        lexer.i += 1;
    }
    let mut out = Vec::new();
    loop {
        lexer.skip_blanks()?;
        let pos = lexer.pos();
        let Some(c) = lexer.peek() else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let tok = match c {
            '{' => lexer.punct(Tok::LBrace),
            '}' => lexer.punct(Tok::RBrace),
            '[' => lexer.punct(Tok::LBracket),
            ']' => lexer.punct(Tok::RBracket),
            '(' => lexer.punct(Tok::LParen),
            ')' => lexer.punct(Tok::RParen),
            ';' => lexer.punct(Tok::Semicolon),
            ',' => lexer.punct(Tok::Comma),
            ':' => lexer.punct(Tok::Colon),
            '=' => lexer.punct(Tok::Equals),
            '"' => lexer.string()?,
            '\'' => lexer.char16()?,
            '#' => lexer.pragma()?,
            '$' => lexer.alias()?,
            c if c.is_ascii_digit() => lexer.number()?,
            '+' | '-' | '.' if lexer.number_follows() => lexer.number()?,
            c if is_ident_start(c) => Tok::Ident(lexer.ident()),
            c => return Err(SyntaxError::new(pos, format!("unexpected character {c:?}"))),
        };
        out.push(Token { tok, pos });
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || ('\u{80}'..='\u{FFEF}').contains(&c)
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
}

impl Lexer {
    fn pos(&self) -> Pos {
        Pos::new(self.line, self.col)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn punct(&mut self, tok: Tok) -> Tok {
        self.bump();
        tok
    }

    fn skip_blanks(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(), self.peek_at(1)) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => return Err(SyntaxError::new(start, "unterminated comment: '/*' without '*/'")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| is_ident_char(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    fn pragma(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos();
        self.bump();
        let word = if self.peek().is_some_and(is_ident_start) { self.ident() } else { String::new() };
        if word.eq_ignore_ascii_case("pragma") {
            Ok(Tok::Pragma)
        } else {
            Err(SyntaxError::new(start, format!("expected 'pragma' after '#', found '{word}'")))
        }
    }

    fn alias(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos();
        self.bump();
        if !self.peek().is_some_and(is_ident_start) {
            return Err(SyntaxError::new(start, "expected an alias name after '$'"));
        }
        Ok(Tok::Alias(self.ident()))
    }

    /// An escape sequence after the backslash (DSP0004 `escapeSequence`).
    fn escape(&mut self, backslash: Pos) -> Result<char, SyntaxError> {
        let Some(c) = self.bump() else {
            return Err(SyntaxError::new(backslash, "unterminated escape sequence"));
        };
        Ok(match c {
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'f' => '\u{c}',
            'r' => '\r',
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            'x' | 'X' => {
                let mut digits = String::new();
                while digits.len() < 4 {
                    match self.peek() {
                        Some(d) if d.is_ascii_hexdigit() => {
                            digits.push(d);
                            self.bump();
                        }
                        _ => break,
                    }
                }
                if digits.is_empty() {
                    return Err(SyntaxError::new(backslash, format!("expected 1 to 4 hexadecimal digits after '\\{c}'")));
                }
                let code = u32::from_str_radix(&digits, 16).expect("hex digits");
                char::from_u32(code)
                    .ok_or_else(|| SyntaxError::new(backslash, format!("'\\{c}{digits}' is not a character (a UTF-16 surrogate)")))?
            }
            other => return Err(SyntaxError::new(backslash, format!("unknown escape sequence '\\{other}'"))),
        })
    }

    fn string(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos();
        self.bump();
        let mut s = String::new();
        loop {
            match self.peek() {
                None | Some('\n') | Some('\r') => return Err(SyntaxError::new(start, "unterminated string literal")),
                Some('"') => {
                    self.bump();
                    return Ok(Tok::Str(s));
                }
                Some('\\') => {
                    let backslash = self.pos();
                    self.bump();
                    s.push(self.escape(backslash)?);
                }
                Some(c) => {
                    s.push(c);
                    self.bump();
                }
            }
        }
    }

    fn char16(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos();
        self.bump();
        let c = match self.peek() {
            None | Some('\n') | Some('\r') => return Err(SyntaxError::new(start, "unterminated char16 literal")),
            Some('\'') => return Err(SyntaxError::new(start, "empty char16 literal")),
            Some('\\') => {
                let backslash = self.pos();
                self.bump();
                self.escape(backslash)?
            }
            Some(c) => {
                self.bump();
                c
            }
        };
        if self.peek() != Some('\'') {
            return Err(SyntaxError::new(start, "unterminated char16 literal: expected one character between quotes"));
        }
        self.bump();
        if c as u32 > 0xFFFF {
            return Err(SyntaxError::new(start, format!("char16 literal {c:?} is outside the UCS-2 range")));
        }
        Ok(Tok::Char16(c))
    }

    /// Whether a sign or a dot starts a number rather than being a stray character.
    fn number_follows(&self) -> bool {
        match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (Some('.'), Some(d), _) => d.is_ascii_digit(),
            (Some('+' | '-'), Some(d), _) if d.is_ascii_digit() => true,
            (Some('+' | '-'), Some('.'), Some(d)) => d.is_ascii_digit(),
            _ => false,
        }
    }

    /// Reads the whole run of characters that could belong to a numeric literal, then decides what it
    /// is: a typo such as `12ab` or `089` is reported as one bad literal, not as two tokens.
    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos();
        let mut text = String::new();
        if let Some(sign @ ('+' | '-')) = self.peek() {
            text.push(sign);
            self.bump();
        }
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == '_' => {
                    text.push(c);
                    self.bump();
                    let exponent_sign = matches!(c, 'e' | 'E')
                        && text.contains('.')
                        && matches!(self.peek(), Some('+' | '-'))
                        && self.peek_at(1).is_some_and(|d| d.is_ascii_digit());
                    if exponent_sign {
                        text.push(self.bump().expect("peeked"));
                    }
                }
                _ => break,
            }
        }
        classify_number(&text).map_err(|why| SyntaxError::new(start, why))
    }
}

/// Classifies and evaluates a numeric literal (DSP0004 `integerValue` and `realValue`).
fn classify_number(text: &str) -> Result<Tok, String> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.contains('.') {
        return parse_real(text, body).map(Tok::Real);
    }
    let bad = |detail: String| Err(format!("invalid integer literal '{text}': {detail}"));
    let first_bad = |digits: &str, ok: fn(char) -> bool| digits.chars().find(|&c| !ok(c));
    let (digits, radix) = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() {
            return bad("no digits after '0x'".into());
        }
        if let Some(c) = first_bad(hex, |c| c.is_ascii_hexdigit()) {
            return bad(format!("'{c}' is not a hexadecimal digit"));
        }
        (hex, 16)
    } else if let Some(bin) = body.strip_suffix(['b', 'B']).filter(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_digit())) {
        if let Some(c) = first_bad(bin, |c| c == '0' || c == '1') {
            return bad(format!("'{c}' is not a binary digit"));
        }
        (bin, 2)
    } else if let Some(c) = first_bad(body, |c| c.is_ascii_digit()) {
        let what = if c.is_ascii_alphabetic() || c == '_' { format!("unexpected '{c}'") } else { format!("'{c}' is not a digit") };
        return bad(what);
    } else if body.len() > 1 && body.starts_with('0') {
        if let Some(c) = first_bad(body, |c| ('0'..='7').contains(&c)) {
            return bad(format!("'{c}' is not an octal digit (a leading 0 makes the literal octal)"));
        }
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    let magnitude = u128::from_str_radix(digits, radix)
        .ok()
        .and_then(|m| i128::try_from(m).ok())
        .ok_or_else(|| format!("integer literal '{text}' is too large"))?;
    Ok(Tok::Integer(if negative { -magnitude } else { magnitude }))
}

/// `[+-] *digit "." 1*digit [ (e|E) [+-] 1*digit ]`
fn parse_real(text: &str, body: &str) -> Result<f64, String> {
    let bad = || format!("invalid real literal '{text}'");
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = mantissa.split_once('.').ok_or_else(bad)?;
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !all_digits(int_part) || frac.is_empty() || !all_digits(frac) {
        return Err(bad());
    }
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !all_digits(digits) {
            return Err(bad());
        }
    }
    text.parse::<f64>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut v: Vec<Tok> = tokenize(src).unwrap().into_iter().map(|t| t.tok).collect();
        assert_eq!(v.pop(), Some(Tok::Eof));
        v
    }

    fn one(src: &str) -> Tok {
        let v = toks(src);
        assert_eq!(v.len(), 1, "{src}: {v:?}");
        v.into_iter().next().unwrap()
    }

    fn err(src: &str) -> (u32, u32, String) {
        let e = tokenize(src).unwrap_err();
        (e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn integer_literals_in_every_base() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("42", 42),
            ("+42", 42),
            ("-42", -42),
            ("0x1F", 31),
            ("0XfF", 255),
            ("-0x10", -16),
            ("1010b", 10),
            ("1010B", 10),
            ("-11b", -3),
            ("0b", 0),
            ("017", 15),
            ("-017", -15),
            ("00", 0),
            ("18446744073709551615", u64::MAX as i128),
            ("-9223372036854775808", i64::MIN as i128),
        ];
        for (src, want) in cases {
            assert_eq!(one(src), Tok::Integer(*want), "{src}");
        }
    }

    #[test]
    fn real_literals() {
        let cases: &[(&str, f64)] =
            &[("1.5", 1.5), ("-0.25", -0.25), (".5", 0.5), ("+.5", 0.5), ("1.0e3", 1000.0), ("2.5E-2", 0.025), ("-1.5e+2", -150.0)];
        for (src, want) in cases {
            assert_eq!(one(src), Tok::Real(*want), "{src}");
        }
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(
            err("089"),
            (1, 1, "invalid integer literal '089': '8' is not an octal digit (a leading 0 makes the literal octal)".into())
        );
        assert_eq!(err("x = 12ab;").2, "invalid integer literal '12ab': unexpected 'a'");
        assert_eq!(err("102b").2, "invalid integer literal '102b': '2' is not a binary digit");
        assert_eq!(err("0x").2, "invalid integer literal '0x': no digits after '0x'");
        assert_eq!(err("0x1G").2, "invalid integer literal '0x1G': 'G' is not a hexadecimal digit");
        assert_eq!(err("1e5").2, "invalid integer literal '1e5': unexpected 'e'");
        assert_eq!(err("1.").2, "invalid real literal '1.'");
        assert_eq!(err("1.2.3").2, "invalid real literal '1.2.3'");
        assert_eq!(err("1.5e").2, "invalid real literal '1.5e'");
        assert_eq!(
            err("999999999999999999999999999999999999999999").2.as_str(),
            "integer literal '999999999999999999999999999999999999999999' is too large"
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(one(r#""plain""#), Tok::Str("plain".into()));
        assert_eq!(one(r#""""#), Tok::Str(String::new()));
        assert_eq!(one(r#""a\tb\nc\rd\be\ff\"g\'h\\i""#), Tok::Str("a\tb\nc\rd\u{8}e\u{c}f\"g'h\\i".into()));
        assert_eq!(one(r#""\x41\X42\x263A!""#), Tok::Str("AB\u{263A}!".into()));
        assert_eq!(one(r#""\x4g""#), Tok::Str("\u{4}g".into()));
        assert_eq!(one("\"Größe ✓\""), Tok::Str("Größe ✓".into()));
        // Adjacent literals stay separate tokens: concatenation is the parser's job.
        assert_eq!(toks(r#""a" "b""#), vec![Tok::Str("a".into()), Tok::Str("b".into())]);
    }

    #[test]
    fn bad_strings() {
        assert_eq!(err("x = \"abc\ny\";"), (1, 5, "unterminated string literal".into()));
        assert_eq!(err("\"abc"), (1, 1, "unterminated string literal".into()));
        assert_eq!(err("  \"a\\qb\""), (1, 5, "unknown escape sequence '\\q'".into()));
        assert_eq!(err("\"\\x\"").2, "expected 1 to 4 hexadecimal digits after '\\x'");
        assert_eq!(err("\"\\xD800\"").2, "'\\xD800' is not a character (a UTF-16 surrogate)");
    }

    #[test]
    fn char16_literals() {
        assert_eq!(one("'a'"), Tok::Char16('a'));
        assert_eq!(one("'\\n'"), Tok::Char16('\n'));
        assert_eq!(one("'\\''"), Tok::Char16('\''));
        assert_eq!(one("'\\x263a'"), Tok::Char16('\u{263a}'));
        assert_eq!(one("'é'"), Tok::Char16('é'));
        assert_eq!(err("''").2, "empty char16 literal");
        assert_eq!(err("'ab'").2, "unterminated char16 literal: expected one character between quotes");
        assert_eq!(err("'a").2, "unterminated char16 literal: expected one character between quotes");
        assert_eq!(err("'\u{1F600}'").2, "char16 literal '\u{1F600}' is outside the UCS-2 range");
    }

    #[test]
    fn identifiers_aliases_pragmas_and_punctuation() {
        assert_eq!(
            toks("#pragma include (\"x.mof\") $Alias_1 CIM_X _y Ünï {}[]();,:="),
            vec![
                Tok::Pragma,
                Tok::Ident("include".into()),
                Tok::LParen,
                Tok::Str("x.mof".into()),
                Tok::RParen,
                Tok::Alias("Alias_1".into()),
                Tok::Ident("CIM_X".into()),
                Tok::Ident("_y".into()),
                Tok::Ident("Ünï".into()),
                Tok::LBrace,
                Tok::RBrace,
                Tok::LBracket,
                Tok::RBracket,
                Tok::LParen,
                Tok::RParen,
                Tok::Semicolon,
                Tok::Comma,
                Tok::Colon,
                Tok::Equals,
            ]
        );
        assert_eq!(one("#PRAGMA"), Tok::Pragma);
        assert_eq!(err("#include").2, "expected 'pragma' after '#', found 'include'");
        assert_eq!(err("$ x").2, "expected an alias name after '$'");
        assert_eq!(err("a @ b"), (1, 3, "unexpected character '@'".into()));
        assert_eq!(err("a - b").2, "unexpected character '-'");
    }

    #[test]
    fn comments_and_positions() {
        let src = "// line comment\n/* block\n comment */ class\r\n\tX /**/ { }";
        let t = tokenize(src).unwrap();
        assert_eq!(t[0], Token { tok: Tok::Ident("class".into()), pos: Pos::new(3, 13) });
        assert_eq!(t[1], Token { tok: Tok::Ident("X".into()), pos: Pos::new(4, 2) });
        assert_eq!(t[2].pos, Pos::new(4, 9));
        assert_eq!(t.last().unwrap().tok, Tok::Eof);
        assert_eq!(err("a /* never closed\n\n"), (1, 3, "unterminated comment: '/*' without '*/'".into()));
        assert_eq!(toks("\u{feff}x"), vec![Tok::Ident("x".into())]);
    }
}
