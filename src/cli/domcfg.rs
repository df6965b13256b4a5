//! The xm/xl domain config file: Python-like assignments (`name = "vm1"`, `memory = 512`,
//! `disk = [ 'file:/img,xvda,w' ]`) with comments, line continuations and the string forms of
//! Python. Parsing keeps every value's position so that both syntax errors and bad values are
//! reported as `file:line:column: expected ...`.

use super::devspec::{self, DiskSpec, VifSpec};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// `None` for problems of the file as a whole (a missing `name`).
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.col, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Item>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub val: Val,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub key: String,
    pub pos: Pos,
    pub value: Item,
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) | Val::Float(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::List(_) => "a list",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Eq,
    Comma,
    LBracket,
    RBracket,
    /// A newline or `;`: the end of an assignment (ignored inside brackets).
    End,
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(_) => "a string".into(),
        Tok::Int(_) | Tok::Float(_) => "a number".into(),
        Tok::Eq => "'='".into(),
        Tok::Comma => "','".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::End => "the end of the line".into(),
        Tok::Eof => "the end of the file".into(),
    }
}

struct Lexer<'a> {
    file: &'a str,
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    /// Bracket nesting: newlines inside a list continue it, as in Python.
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(file: &'a str, text: &str) -> Self {
        Lexer { file, chars: text.chars().collect(), i: 0, line: 1, col: 1, depth: 0 }
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.to_owned(), pos: Some(pos), message: message.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
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

    fn next(&mut self) -> Result<(Tok, Pos), ConfigError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\x0c') => {
                    self.bump();
                }
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                Some('\\') => {
                    let pos = self.pos();
                    self.bump();
                    while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
                        self.bump();
                    }
                    if self.peek() != Some('\n') {
                        return Err(self.err(pos, "expected the end of the line after a line-continuation backslash"));
                    }
                    self.bump();
                }
                Some('\n') if self.depth > 0 => {
                    self.bump();
                }
                _ => break,
            }
        }
        let pos = self.pos();
        let Some(c) = self.peek() else { return Ok((Tok::Eof, pos)) };
        let tok = match c {
            '\n' | ';' => {
                self.bump();
                Tok::End
            }
            '=' => {
                self.bump();
                Tok::Eq
            }
            ',' => {
                self.bump();
                Tok::Comma
            }
            '[' | '(' => {
                self.bump();
                self.depth += 1;
                Tok::LBracket
            }
            ']' | ')' => {
                self.bump();
                self.depth = self.depth.saturating_sub(1);
                Tok::RBracket
            }
            '"' | '\'' => Tok::Str(self.string(pos, false)?),
            'r' | 'R' if matches!(self.peek_at(1), Some('"' | '\'')) => {
                self.bump();
                Tok::Str(self.string(pos, true)?)
            }
            c if c.is_ascii_digit() || ((c == '-' || c == '+') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit() || d == '.')) => {
                self.number(pos)?
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
                    s.push(c);
                    self.bump();
                }
                Tok::Ident(s)
            }
            other => return Err(self.err(pos, format!("unexpected character '{other}'"))),
        };
        Ok((tok, pos))
    }

    fn number(&mut self, pos: Pos) -> Result<Tok, ConfigError> {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')) {
            // A sign only leads or follows an exponent.
            if matches!(c, '-' | '+') && !s.is_empty() && !s.ends_with(['e', 'E']) {
                break;
            }
            s.push(c);
            self.bump();
        }
        let clean = s.replace('_', "");
        let (negative, digits) = match clean.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        let radix = [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)]
            .iter()
            .find_map(|(p, r)| digits.strip_prefix(p).map(|d| (d, *r)));
        let int = match radix {
            Some((d, r)) => i64::from_str_radix(d, r).ok(),
            None => digits.parse::<i64>().ok(),
        };
        if let Some(n) = int {
            return Ok(Tok::Int(if negative { -n } else { n }));
        }
        if radix.is_none() {
            if let Ok(f) = clean.parse::<f64>() {
                if f.is_finite() {
                    return Ok(Tok::Float(f));
                }
            }
        }
        Err(self.err(pos, format!("expected a number, found '{s}'")))
    }

    /// A Python string literal after its optional `r` prefix: single, double or triple quoted.
    fn string(&mut self, pos: Pos, raw: bool) -> Result<String, ConfigError> {
        let quote = self.bump().expect("caller saw a quote");
        let triple = self.peek() == Some(quote) && self.peek_at(1) == Some(quote);
        if triple {
            self.bump();
            self.bump();
        }
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self
                    .err(pos, format!("expected a closing {} for the string opened here", if triple { "triple quote" } else { "quote" })));
            };
            if c == quote {
                if !triple {
                    return Ok(s);
                }
                if self.peek() == Some(quote) && self.peek_at(1) == Some(quote) {
                    self.bump();
                    self.bump();
                    return Ok(s);
                }
                s.push(c);
            } else if c == '\n' && !triple {
                return Err(self.err(pos, "expected a closing quote before the end of the line (use triple quotes for several lines)"));
            } else if c == '\\' && !raw {
                let Some(e) = self.bump() else { continue };
                match e {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    '0' => s.push('\0'),
                    '\\' | '\'' | '"' => s.push(e),
                    '\n' => {}
                    other => {
                        // Python keeps unknown escapes as they are.
                        s.push('\\');
                        s.push(other);
                    }
                }
            } else {
                s.push(c);
            }
        }
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Tok,
    pos: Pos,
}

impl<'a> Parser<'a> {
    fn advance(&mut self) -> Result<(), ConfigError> {
        let (tok, pos) = self.lexer.next()?;
        self.tok = tok;
        self.pos = pos;
        Ok(())
    }

    fn expected(&self, what: &str) -> ConfigError {
        self.lexer.err(self.pos, format!("expected {what}, found {}", describe(&self.tok)))
    }

    fn value(&mut self) -> Result<Item, ConfigError> {
        let pos = self.pos;
        let val = match self.tok.clone() {
            Tok::Str(mut s) => {
                self.advance()?;
                // Adjacent literals concatenate, as in Python; long kernel command lines use it.
                while let Tok::Str(more) = &self.tok {
                    s.push_str(more);
                    self.advance()?;
                }
                return Ok(Item { val: Val::Str(s), pos });
            }
            Tok::Int(n) => Val::Int(n),
            Tok::Float(f) => Val::Float(f),
            Tok::Ident(id) => match id.as_str() {
                "True" | "true" => Val::Bool(true),
                "False" | "false" => Val::Bool(false),
                _ => return Err(self.expected("a value (a string, a number, a list, True or False)")),
            },
            Tok::LBracket => {
                // The parser recurses per list level: bound it so that a hostile file cannot
                // overflow the stack (real files nest two levels at most).
                if self.lexer.depth > MAX_LIST_DEPTH {
                    return Err(self.lexer.err(pos, format!("lists nested deeper than {MAX_LIST_DEPTH}")));
                }
                self.advance()?;
                let mut items = Vec::new();
                loop {
                    if self.tok == Tok::RBracket {
                        break;
                    }
                    items.push(self.value()?);
                    match self.tok {
                        Tok::Comma => self.advance()?,
                        Tok::RBracket => break,
                        _ => return Err(self.expected("',' or ']' in the list")),
                    }
                }
                Val::List(items)
            }
            _ => return Err(self.expected("a value (a string, a number, a list, True or False)")),
        };
        self.advance()?;
        Ok(Item { val, pos })
    }
}

/// Parses the assignments of a config file, in order (a key may appear more than once).
pub fn parse(file: &str, text: &str) -> Result<Vec<Assignment>, ConfigError> {
    let mut p = Parser { lexer: Lexer::new(file, text), tok: Tok::Eof, pos: Pos { line: 1, col: 1 } };
    p.advance()?;
    let mut out = Vec::new();
    loop {
        match p.tok.clone() {
            Tok::Eof => return Ok(out),
            Tok::End => p.advance()?,
            Tok::Ident(key) => {
                let pos = p.pos;
                p.advance()?;
                if p.tok != Tok::Eq {
                    return Err(p.expected(&format!("'=' after '{key}'")));
                }
                p.advance()?;
                let value = p.value()?;
                if !matches!(p.tok, Tok::End | Tok::Eof) {
                    return Err(p.expected("the end of the line after the value"));
                }
                out.push(Assignment { key, pos, value });
            }
            _ => return Err(p.expected("a setting name such as 'name' or 'memory'")),
        }
    }
}

/// What a domain config file asks for, in the terms of the Xen-API.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainConfig {
    pub name: String,
    pub uuid: Option<String>,
    pub description: String,
    pub memory_mib: i64,
    pub maxmem_mib: i64,
    pub vcpus: i64,
    pub maxvcpus: i64,
    pub kernel: String,
    pub ramdisk: String,
    pub cmdline: String,
    pub bootloader: String,
    /// `pv`, `hvm` or `pvh` (Xen-API `domain_type`).
    pub domain_type: String,
    /// HVM boot order (xl's `boot`), when HVM.
    pub boot: String,
    pub on_poweroff: String,
    pub on_reboot: String,
    pub on_crash: String,
    pub disks: Vec<(DiskSpec, Pos)>,
    pub vifs: Vec<(VifSpec, Pos)>,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig {
            name: String::new(),
            uuid: None,
            description: String::new(),
            memory_mib: 128,
            maxmem_mib: 128,
            vcpus: 1,
            maxvcpus: 1,
            kernel: String::new(),
            ramdisk: String::new(),
            cmdline: String::new(),
            bootloader: String::new(),
            domain_type: "pv".into(),
            boot: String::new(),
            on_poweroff: "destroy".into(),
            on_reboot: "restart".into(),
            on_crash: "restart".into(),
            disks: Vec::new(),
            vifs: Vec::new(),
        }
    }
}

/// A config and what was accepted without effect (unknown keys, ignored parameters).
#[derive(Debug)]
pub struct Loaded {
    pub config: DomainConfig,
    pub warnings: Vec<String>,
}

/// Keys of xm/xl that change nothing here: accepted quietly, since real configs carry them.
/// The deepest list nesting a config file may use.
const MAX_LIST_DEPTH: usize = 32;

const QUIET_KEYS: &[&str] =
    &["pae", "acpi", "apic", "localtime", "serial", "vnc", "vncunused", "sdl", "stdvga", "usb", "usbdevice", "keymap"];

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.to_owned(), pos: Some(pos), message: message.into() }
    }

    fn string(&self, key: &str, item: &Item) -> Result<String, ConfigError> {
        match &item.val {
            Val::Str(s) => Ok(s.clone()),
            other => Err(self.err(item.pos, format!("expected a string for '{key}', found {}", other.kind()))),
        }
    }

    fn int(&self, key: &str, item: &Item, min: i64, unit: &str) -> Result<i64, ConfigError> {
        let n = match &item.val {
            Val::Int(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        };
        match n {
            Some(n) if n >= min => Ok(n),
            Some(n) => Err(self.err(item.pos, format!("expected at least {min}{unit} for '{key}', found {n}"))),
            None => Err(self.err(item.pos, format!("expected a whole number{unit} for '{key}', found {}", item.val.kind()))),
        }
    }

    /// A list of strings; a lone string counts as a list of one, as xm allowed.
    fn strings<'i>(&self, key: &str, item: &'i Item) -> Result<Vec<(&'i str, Pos)>, ConfigError> {
        match &item.val {
            Val::Str(s) => Ok(vec![(s.as_str(), item.pos)]),
            Val::List(items) => items
                .iter()
                .map(|i| match &i.val {
                    Val::Str(s) => Ok((s.as_str(), i.pos)),
                    other => Err(self.err(i.pos, format!("expected a string in the '{key}' list, found {}", other.kind()))),
                })
                .collect(),
            other => Err(self.err(item.pos, format!("expected a list of strings for '{key}', found {}", other.kind()))),
        }
    }

    fn action(&self, key: &str, item: &Item, warnings: &mut Vec<String>) -> Result<String, ConfigError> {
        let value = self.string(key, item)?;
        let mapped = match value.as_str() {
            "destroy" => "destroy",
            "restart" => "restart",
            "preserve" => "preserve",
            "rename-restart" => "rename_restart",
            "coredump-destroy" => "coredump_and_destroy",
            "coredump-restart" => "coredump_and_restart",
            "soft-reset" => "restart",
            _ => {
                return Err(self.err(
                    item.pos,
                    format!("expected destroy, restart, preserve, rename-restart, coredump-destroy or coredump-restart for '{key}', found '{value}'"),
                ))
            }
        };
        // After a power-off or a reboot the Xen-API knows only destroy and restart.
        if key != "on_crash" && !matches!(mapped, "destroy" | "restart") {
            let fallback = if mapped.ends_with("restart") { "restart" } else { "destroy" };
            warnings.push(format!(
                "{}:{}:{}: {key} = '{value}' is not available here; using '{fallback}'",
                self.file, item.pos.line, item.pos.col
            ));
            return Ok(fallback.into());
        }
        Ok(mapped.into())
    }
}

/// Parses a config file and maps it onto a [`DomainConfig`].
pub fn load(file: &str, text: &str) -> Result<Loaded, ConfigError> {
    let assignments = parse(file, text)?;
    let ctx = Ctx { file };
    let mut warnings = Vec::new();
    let mut seen: std::collections::HashMap<&str, Pos> = std::collections::HashMap::new();
    // Later assignments win, as in Python; settle that first so each key is mapped once.
    let mut last: Vec<&Assignment> = Vec::new();
    for a in &assignments {
        if let Some(previous) = seen.insert(a.key.as_str(), a.pos) {
            warnings.push(format!(
                "{file}:{}:{}: '{}' is set again (first at line {}); this value wins",
                a.pos.line, a.pos.col, a.key, previous.line
            ));
            last.retain(|b| b.key != a.key);
        }
        last.push(a);
    }
    let get = |k: &str| last.iter().find(|a| a.key == k).map(|a| &a.value);

    let mut c = DomainConfig::default();
    let mut name_seen = false;
    let (mut extra, mut root, mut cmdline) = (None, None, None);
    for a in &last {
        let v = &a.value;
        let k = a.key.as_str();
        match k {
            "name" => {
                c.name = ctx.string(k, v)?;
                if c.name.trim().is_empty() {
                    return Err(ctx.err(v.pos, "expected a non-empty name"));
                }
                name_seen = true;
            }
            "uuid" => {
                let u = ctx.string(k, v)?;
                let parsed = uuid::Uuid::parse_str(&u).map_err(|_| ctx.err(v.pos, format!("expected a UUID for 'uuid', found '{u}'")))?;
                c.uuid = Some(parsed.hyphenated().to_string());
            }
            "description" => c.description = ctx.string(k, v)?,
            "memory" => c.memory_mib = ctx.int(k, v, 1, " MiB")?,
            "maxmem" => c.maxmem_mib = ctx.int(k, v, 1, " MiB")?,
            "vcpus" => c.vcpus = ctx.int(k, v, 1, " vCPUs")?,
            "maxvcpus" => c.maxvcpus = ctx.int(k, v, 1, " vCPUs")?,
            "kernel" => c.kernel = ctx.string(k, v)?,
            "ramdisk" => c.ramdisk = ctx.string(k, v)?,
            "bootloader" => c.bootloader = ctx.string(k, v)?,
            "extra" => extra = Some(ctx.string(k, v)?),
            "root" => root = Some(ctx.string(k, v)?),
            "cmdline" => cmdline = Some((ctx.string(k, v)?, v.pos)),
            "boot" => c.boot = ctx.string(k, v)?,
            "builder" | "type" => {
                let t = ctx.string(k, v)?;
                c.domain_type = match (k, t.as_str()) {
                    ("builder", "linux" | "generic") | ("type", "pv") => "pv".into(),
                    (_, "hvm") => "hvm".into(),
                    ("type", "pvh") => "pvh".into(),
                    ("builder", _) => return Err(ctx.err(v.pos, format!("expected 'linux' or 'hvm' for 'builder', found '{t}'"))),
                    _ => return Err(ctx.err(v.pos, format!("expected 'pv', 'pvh' or 'hvm' for 'type', found '{t}'"))),
                };
            }
            "on_poweroff" => c.on_poweroff = ctx.action(k, v, &mut warnings)?,
            "on_reboot" => c.on_reboot = ctx.action(k, v, &mut warnings)?,
            "on_crash" => c.on_crash = ctx.action(k, v, &mut warnings)?,
            "disk" => {
                for (spec, pos) in ctx.strings(k, v)? {
                    let (disk, notes) = devspec::parse_disk(spec).map_err(|e| ctx.err(pos, format!("disk '{spec}': {e}")))?;
                    if let Some((_, other)) = c.disks.iter().find(|(d, _)| d.index == disk.index) {
                        return Err(ctx.err(pos, format!("disk '{spec}': device {} is already used at line {}", disk.vdev, other.line)));
                    }
                    warnings.extend(notes.into_iter().map(|n| format!("{file}:{}:{}: disk '{spec}': {n}", pos.line, pos.col)));
                    c.disks.push((disk, pos));
                }
            }
            "vif" => {
                for (spec, pos) in ctx.strings(k, v)? {
                    let (vif, notes) = devspec::parse_vif(spec).map_err(|e| ctx.err(pos, format!("vif '{spec}': {e}")))?;
                    warnings.extend(notes.into_iter().map(|n| format!("{file}:{}:{}: vif '{spec}': {n}", pos.line, pos.col)));
                    c.vifs.push((vif, pos));
                }
            }
            k if QUIET_KEYS.contains(&k) => {}
            k => warnings.push(format!("{file}:{}:{}: unknown setting '{k}' is ignored", a.pos.line, a.pos.col)),
        }
    }
    if !name_seen {
        return Err(ConfigError { file: file.to_owned(), pos: None, message: "expected a 'name' setting (name = \"vm1\")".into() });
    }
    if get("maxmem").is_none() {
        c.maxmem_mib = c.memory_mib;
    } else if c.maxmem_mib < c.memory_mib {
        return Err(
            ctx.err(get("maxmem").unwrap().pos, format!("expected maxmem ({}) to be at least memory ({})", c.maxmem_mib, c.memory_mib))
        );
    }
    if get("maxvcpus").is_none() {
        c.maxvcpus = c.vcpus;
    } else if c.maxvcpus < c.vcpus {
        return Err(ctx.err(get("maxvcpus").unwrap().pos, format!("expected maxvcpus ({}) to be at least vcpus ({})", c.maxvcpus, c.vcpus)));
    }
    c.cmdline = match cmdline {
        Some((line, pos)) => {
            if extra.is_some() || root.is_some() {
                warnings.push(format!("{file}:{}:{}: 'cmdline' replaces 'root' and 'extra'", pos.line, pos.col));
            }
            line
        }
        None => {
            let root = root.map(|r| format!("root={r}"));
            [root, extra].into_iter().flatten().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
        }
    };
    if c.domain_type == "hvm" && c.boot.is_empty() {
        c.boot = "cd".into();
    }
    Ok(Loaded { config: c, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::devspec::Backend;

    fn at(line: usize, col: usize) -> Option<Pos> {
        Some(Pos { line, col })
    }

    /// Good files and the records they make.
    #[test]
    fn good_config_files() {
        type Check = Box<dyn Fn(&DomainConfig)>;
        let cases: Vec<(&str, &str, Check)> = vec![
            ("minimal", "name = 'vm1'\n", Box::new(|c| assert_eq!(c, &DomainConfig { name: "vm1".into(), ..DomainConfig::default() }))),
            (
                "the usual xm file",
                r#"# a guest
kernel = "/boot/vmlinuz"
ramdisk = "/boot/initrd.img"
memory = 512
maxmem = 1024
name = "web1"
vcpus = 2
maxvcpus = 4
vif = [ 'mac=00:16:3e:00:00:11, bridge=xenbr0', '' ]
disk = [ 'file:/srv/web1.img,xvda,w',
         'phy:/dev/vg0/web1-data,xvdb,w', ]
root = "/dev/xvda1 ro"
extra = "console=hvc0"
on_poweroff = 'destroy'
on_reboot   = 'restart'
on_crash    = 'preserve'
description = """A web
server"""
"#,
                Box::new(|c| {
                    assert_eq!((c.name.as_str(), c.memory_mib, c.maxmem_mib, c.vcpus, c.maxvcpus), ("web1", 512, 1024, 2, 4));
                    assert_eq!((c.kernel.as_str(), c.ramdisk.as_str()), ("/boot/vmlinuz", "/boot/initrd.img"));
                    assert_eq!(c.cmdline, "root=/dev/xvda1 ro console=hvc0");
                    assert_eq!((c.on_poweroff.as_str(), c.on_reboot.as_str(), c.on_crash.as_str()), ("destroy", "restart", "preserve"));
                    assert_eq!(c.description, "A web\nserver");
                    assert_eq!(c.disks.len(), 2);
                    assert_eq!(c.disks[0].0.target.as_deref(), Some("/srv/web1.img"));
                    assert_eq!(c.disks[1].0.backend, Backend::Phy);
                    assert_eq!(c.disks[1].1, Pos { line: 11, col: 10 });
                    assert_eq!(c.vifs.len(), 2);
                    assert_eq!(c.vifs[0].0.mac.as_deref(), Some("00:16:3e:00:00:11"));
                    assert_eq!(c.vifs[1].0, VifSpec::default());
                }),
            ),
            (
                "continuations, semicolons, numbers as strings, escapes",
                "name = \"a\\tb\" ; memory = '256'\nvcpus = \\\n  3\nextra = 'quiet ' \"loglevel=3\"\n",
                Box::new(|c| {
                    assert_eq!((c.name.as_str(), c.memory_mib, c.vcpus, c.maxvcpus), ("a\tb", 256, 3, 3));
                    assert_eq!(c.cmdline, "quiet loglevel=3");
                }),
            ),
            (
                "xl style: HVM, key=value disks, cmdline wins",
                "name='h'\ntype='hvm'\ndisk=['vdev=hda, access=rw, size=4G, target=/srv/h.img', '/iso/x.iso,,hdc,cdrom']\ncmdline='x'\n",
                Box::new(|c| {
                    assert_eq!((c.domain_type.as_str(), c.boot.as_str(), c.cmdline.as_str()), ("hvm", "cd", "x"));
                    assert_eq!(c.disks[0].0.size, Some(4 << 30));
                    assert!(c.disks[1].0.cdrom && c.disks[1].0.read_only);
                }),
            ),
            (
                "uuid, python booleans, hex and floats, raw strings",
                "name = 'u'\nuuid = '6F1B7E55-4C0B-4F5E-9B7E-3A6B1C2D3E4F'\nacpi = True\npae = 0x1\nmemory = 256.0\nkernel = r'/boot/a\\b'\n",
                Box::new(|c| {
                    assert_eq!(c.uuid.as_deref(), Some("6f1b7e55-4c0b-4f5e-9b7e-3a6b1c2d3e4f"));
                    assert_eq!((c.memory_mib, c.kernel.as_str()), (256, "/boot/a\\b"));
                }),
            ),
            (
                "a lone disk string, empty lists, later values win",
                "name='one'\ndisk = 'file:/a.img,xvda,w'\nvif = []\nmemory = 64\nmemory = 96\n",
                Box::new(|c| {
                    assert_eq!((c.disks.len(), c.vifs.len(), c.memory_mib), (1, 0, 96));
                }),
            ),
            (
                "on_* values that the Xen-API cannot express fall back",
                "name='w'\non_poweroff='preserve'\non_reboot='rename-restart'\non_crash='coredump-restart'\n",
                Box::new(|c| {
                    assert_eq!((c.on_poweroff.as_str(), c.on_reboot.as_str(), c.on_crash.as_str()), ("destroy", "restart", "coredump_and_restart"));
                }),
            ),
        ];
        for (what, text, check) in cases {
            let loaded = load("t.cfg", text).unwrap_or_else(|e| panic!("{what}: {e}"));
            check(&loaded.config);
        }
    }

    #[test]
    fn warnings_name_the_place() {
        let w = load("g.cfg", "name='w'\ncolour = 'red'\nmemory=1\nmemory=2\non_poweroff='preserve'\ndisk=['file:/a,xvda,w,discard']\n")
            .unwrap()
            .warnings;
        assert_eq!(
            w,
            vec![
                "g.cfg:4:1: 'memory' is set again (first at line 3); this value wins".to_owned(),
                "g.cfg:2:1: unknown setting 'colour' is ignored".to_owned(),
                "g.cfg:5:13: on_poweroff = 'preserve' is not available here; using 'destroy'".to_owned(),
                "g.cfg:6:7: disk 'file:/a,xvda,w,discard': disk flag 'discard' is ignored".to_owned(),
            ]
        );
        assert!(load("q.cfg", "name='q'\nacpi=1\nvnc=1\n").unwrap().warnings.is_empty());
    }

    /// Bad files and where their first error is.
    #[test]
    fn bad_config_files() {
        let cases: &[(&str, Option<Pos>, &str)] = &[
            ("name = 'vm1'\nmemory 512\n", at(2, 8), "expected '=' after 'memory', found a number"),
            ("name = 'vm1\n", at(1, 8), "expected a closing quote before the end of the line"),
            ("name = '''vm1\n\n", at(1, 8), "expected a closing triple quote"),
            ("name = 'vm1'\ndisk = [ 'a' 'b', \n  'c' 'd' ,, ]\n", at(3, 12), "expected a value"),
            ("name = 'x'\ndisk = [ 'file:/a,xvda,w'\nvif = []\n", at(3, 1), "expected ',' or ']' in the list, found 'vif'"),
            ("name = 'x' 'y' memory\n", at(1, 16), "expected the end of the line after the value, found 'memory'"),
            ("= 3\n", at(1, 1), "expected a setting name"),
            ("name = 'x'\nmemory = 512 * 2\n", at(2, 14), "unexpected character '*'"),
            ("name = 'x'\nmemory = lots\n", at(2, 10), "expected a value (a string, a number, a list, True or False), found 'lots'"),
            ("name = 'x'\nmemory = 'lots'\n", at(2, 10), "expected a whole number MiB for 'memory', found a string"),
            ("name = 'x'\nvcpus = 0\n", at(2, 9), "expected at least 1 vCPUs for 'vcpus', found 0"),
            ("name = 'x'\nmemory = 12abc\n", at(2, 10), "expected a number, found '12abc'"),
            ("name = 'x' \\ y\n", at(1, 12), "expected the end of the line after a line-continuation backslash"),
            ("name = 3\n", at(1, 8), "expected a string for 'name', found a number"),
            ("name = ''\n", at(1, 8), "expected a non-empty name"),
            ("memory = 3\n", None, "expected a 'name' setting"),
            ("name='x'\nuuid='nope'\n", at(2, 6), "expected a UUID for 'uuid', found 'nope'"),
            ("name='x'\nmemory=512\nmaxmem=256\n", at(3, 8), "expected maxmem (256) to be at least memory (512)"),
            ("name='x'\nvcpus=4\nmaxvcpus=2\n", at(3, 10), "expected maxvcpus (2) to be at least vcpus (4)"),
            ("name='x'\nbuilder='plan9'\n", at(2, 9), "expected 'linux' or 'hvm' for 'builder'"),
            ("name='x'\non_crash='explode'\n", at(2, 10), "expected destroy, restart, preserve"),
            ("name='x'\ndisk=[3]\n", at(2, 7), "expected a string in the 'disk' list, found a number"),
            ("name='x'\ndisk=True\n", at(2, 6), "expected a list of strings for 'disk', found a boolean"),
            (
                "name='x'\ndisk=[\n 'file:/a,xvda,w',\n 'file:/b,vda,w']\n",
                at(4, 2),
                "disk 'file:/b,vda,w': 'vda' is not a virtual device name",
            ),
            ("name='x'\ndisk=['file:/a,xvda,w', 'file:/b,xvda,w']\n", at(2, 25), "device xvda is already used at line 2"),
            ("name='x'\nvif=['bridge=xenbr0', 'mac=zz']\n", at(2, 23), "vif 'mac=zz': 'zz' is not a MAC address"),
        ];
        for (text, pos, fragment) in cases {
            let e = load("bad.cfg", text).expect_err(text);
            assert_eq!(e.pos, *pos, "{text:?}: {e}");
            assert!(e.message.contains(fragment), "{text:?}: {e}");
            assert!(e.to_string().starts_with("bad.cfg:"), "{e}");
        }
        // Found by fuzz/run domcfg: unbounded nesting overflowed the stack.
        let deep = format!("name='x'\nextra = {}\n", "[".repeat(100_000));
        let e = load("deep.cfg", &deep).unwrap_err();
        assert_eq!(e.to_string(), "deep.cfg:2:41: lists nested deeper than 32");
        let fits = format!("name='x'\nextra = {}{}\n", "[".repeat(32), "]".repeat(32));
        assert!(parse("fits.cfg", &fits).is_ok());
        let e = load("f.cfg", "name='x'\nmemory 5\n").unwrap_err();
        assert_eq!(e.to_string(), "f.cfg:2:8: expected '=' after 'memory', found a number");
    }

    #[test]
    fn the_parser_keeps_types_and_positions() {
        let a = parse("p", "a = [1, -2, 3.5, 'x', [True]]\n").unwrap();
        assert_eq!(a.len(), 1);
        let Val::List(items) = &a[0].value.val else { panic!() };
        assert_eq!(items.iter().map(|i| i.pos.col).collect::<Vec<_>>(), vec![6, 9, 13, 18, 23]);
        assert_eq!(items[1].val, Val::Int(-2));
        assert_eq!(items[2].val, Val::Float(3.5));
        assert_eq!(items[4].val, Val::List(vec![Item { val: Val::Bool(true), pos: Pos { line: 1, col: 24 } }]));
    }
}
