//! Object paths (instance and class names) and their WBEM URI form (DSP0207).
//!
//! Names compare case-insensitively and keybindings compare as a set, so two paths that a client
//! spelled differently (`name` vs `Name`, keys in another order) are equal. The original spelling is
//! kept for output.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::value::{parse_integer_text, parse_real_text};
use super::{compare_names, fold_name, is_valid_name, names_equal, CimError, CimType, CimValue, ValueError};

/// How deep references may nest inside the string keys of a WBEM URI.
const MAX_URI_NESTING: usize = 16;

/// The value of a keybinding, as CIM-XML `KEYVALUE` / `VALUE.REFERENCE` carries it.
#[derive(Debug, Clone)]
pub enum KeyValue {
    /// `VALUETYPE="string"`; char16 and datetime keys travel this way too.
    String(String),
    Boolean(bool),
    /// `VALUETYPE="numeric"`: the text as sent, and the `TYPE` attribute when given.
    Numeric {
        text: String,
        cim_type: Option<CimType>,
    },
    Reference(Box<ObjectPath>),
}

/// A class path (no keybindings) or an instance path.
#[derive(Debug, Clone)]
pub struct ObjectPath {
    pub host: Option<String>,
    pub namespace: Option<String>,
    pub class_name: String,
    /// Name and value pairs in the order given. A single binding with an empty name stands for the
    /// unnamed `KEYVALUE` / `VALUE.REFERENCE` child that DSP0201 allows in `INSTANCENAME`.
    pub keybindings: Vec<(String, KeyValue)>,
}

/// A number in a form where equal values compare equal (`0x10` and `16`).
#[derive(PartialEq, Eq, Hash)]
enum NumberKey<'a> {
    Integer(i128),
    Real(u64),
    Text(&'a str),
}

fn number_key(text: &str) -> NumberKey<'_> {
    if let Some(n) = parse_integer_text(text) {
        NumberKey::Integer(n)
    } else if let Some(r) = parse_real_text(text) {
        // 0.0 and -0.0 are the same key.
        NumberKey::Real(if r == 0.0 { 0 } else { r.to_bits() })
    } else {
        NumberKey::Text(text)
    }
}

impl KeyValue {
    pub fn numeric(text: impl Into<String>, cim_type: Option<CimType>) -> KeyValue {
        KeyValue::Numeric { text: text.into(), cim_type }
    }

    /// The keybinding form of a property value; `None` for values that cannot be keys (arrays,
    /// embedded objects).
    pub fn from_value(value: &CimValue) -> Option<KeyValue> {
        Some(match value {
            CimValue::String(s) => KeyValue::String(s.clone()),
            CimValue::Char16(c) => KeyValue::String(c.to_string()),
            CimValue::DateTime(d) => KeyValue::String(d.to_string()),
            CimValue::Boolean(b) => KeyValue::Boolean(*b),
            CimValue::Reference(p) => KeyValue::Reference(Box::new(p.clone())),
            CimValue::Array(_) | CimValue::Instance(_) | CimValue::Class(_) => return None,
            v => KeyValue::Numeric { text: v.scalar_text()?, cim_type: Some(v.cim_type()) },
        })
    }

    /// The typed value for a key property declared as `ty`.
    pub fn to_value(&self, ty: CimType) -> Result<CimValue, ValueError> {
        match (self, ty) {
            (KeyValue::Reference(p), CimType::Reference) => Ok(CimValue::Reference((**p).clone())),
            (KeyValue::Reference(_), _) => Err(ValueError(format!("a reference was given where a {ty} is expected"))),
            (_, CimType::Reference) => Err(ValueError("a reference is expected".into())),
            (KeyValue::String(s), t) => CimValue::parse_scalar(t, s),
            (KeyValue::Boolean(b), t) => CimValue::Boolean(*b).convert(t, false),
            (KeyValue::Numeric { text, .. }, t) => CimValue::parse_scalar(t, text),
        }
    }

    /// Re-expresses the value in the form a key declared as `ty` has, so that a client's `"12"` and
    /// `12` find the same instance. `None` when the value does not fit the type.
    pub fn coerce(&self, ty: CimType) -> Option<KeyValue> {
        KeyValue::from_value(&self.to_value(ty).ok()?)
    }

    /// The text of a string, boolean or numeric key; the WBEM URI of a reference.
    pub fn text(&self) -> String {
        match self {
            KeyValue::String(s) => s.clone(),
            KeyValue::Boolean(true) => "TRUE".into(),
            KeyValue::Boolean(false) => "FALSE".into(),
            KeyValue::Numeric { text, .. } => text.clone(),
            KeyValue::Reference(p) => p.to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            KeyValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_reference(&self) -> Option<&ObjectPath> {
        match self {
            KeyValue::Reference(p) => Some(p),
            _ => None,
        }
    }
}

impl PartialEq for KeyValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (KeyValue::String(a), KeyValue::String(b)) => a == b,
            (KeyValue::Boolean(a), KeyValue::Boolean(b)) => a == b,
            (KeyValue::Numeric { text: a, .. }, KeyValue::Numeric { text: b, .. }) => number_key(a) == number_key(b),
            (KeyValue::Reference(a), KeyValue::Reference(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for KeyValue {}

impl Hash for KeyValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            KeyValue::String(s) => s.hash(state),
            KeyValue::Boolean(b) => b.hash(state),
            KeyValue::Numeric { text, .. } => number_key(text).hash(state),
            KeyValue::Reference(p) => p.hash(state),
        }
    }
}

impl From<&str> for KeyValue {
    fn from(v: &str) -> Self {
        KeyValue::String(v.to_string())
    }
}

impl From<String> for KeyValue {
    fn from(v: String) -> Self {
        KeyValue::String(v)
    }
}

impl From<bool> for KeyValue {
    fn from(v: bool) -> Self {
        KeyValue::Boolean(v)
    }
}

impl From<ObjectPath> for KeyValue {
    fn from(v: ObjectPath) -> Self {
        KeyValue::Reference(Box::new(v))
    }
}

macro_rules! numeric_key_from {
    ($($t:ty => $ty:ident),*) => {
        $(impl From<$t> for KeyValue {
            fn from(v: $t) -> Self {
                KeyValue::Numeric { text: v.to_string(), cim_type: Some(CimType::$ty) }
            }
        })*
    };
}

numeric_key_from!(u8 => UInt8, i8 => SInt8, u16 => UInt16, i16 => SInt16, u32 => UInt32, i32 => SInt32, u64 => UInt64, i64 => SInt64);

fn normalized_namespace(ns: &Option<String>) -> Option<String> {
    ns.as_deref().map(|n| fold_name(n.trim_matches('/'))).filter(|n| !n.is_empty())
}

impl ObjectPath {
    pub fn new(namespace: Option<&str>, class_name: impl Into<String>) -> ObjectPath {
        ObjectPath { host: None, namespace: namespace.map(str::to_string), class_name: class_name.into(), keybindings: Vec::new() }
    }

    pub fn with_key(mut self, name: impl Into<String>, value: impl Into<KeyValue>) -> ObjectPath {
        self.keybindings.push((name.into(), value.into()));
        self
    }

    pub fn with_host(mut self, host: Option<String>) -> ObjectPath {
        self.host = host;
        self
    }

    pub fn with_namespace(mut self, namespace: Option<&str>) -> ObjectPath {
        self.namespace = namespace.map(str::to_string);
        self
    }

    /// The value bound to a key name (case-insensitive).
    pub fn key(&self, name: &str) -> Option<&KeyValue> {
        self.keybindings.iter().find(|(n, _)| names_equal(n, name)).map(|(_, v)| v)
    }

    /// The same path without host and namespace (the `INSTANCENAME` part).
    pub fn local(&self) -> ObjectPath {
        ObjectPath { host: None, namespace: None, class_name: self.class_name.clone(), keybindings: self.keybindings.clone() }
    }

    /// Keybindings sorted by folded name: the canonical order used for comparison.
    pub fn canonical_keybindings(&self) -> Vec<(&str, &KeyValue)> {
        let mut keys: Vec<(&str, &KeyValue)> = self.keybindings.iter().map(|(n, v)| (n.as_str(), v)).collect();
        keys.sort_by(|a, b| compare_names(a.0, b.0));
        keys
    }

    /// Parses a WBEM URI (DSP0207): `http://host:5988/root/virt:Class.Key="v",N=3`, the local
    /// `/root/virt:Class.Key="v"`, or `root/virt:Class.Key="v"` as pywbem writes in `CIMObject`.
    pub fn parse(uri: &str) -> Result<ObjectPath, CimError> {
        parse_uri(uri, 0).map_err(|why| CimError::invalid_parameter(format!("invalid object path '{uri}': {why}")))
    }

    /// The WBEM URI: `//host/namespace:Class.key="value"`, leaving out the parts that are unset.
    pub fn to_wbem_uri(&self) -> String {
        self.to_string()
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if let Some(host) = &self.host {
            out.push_str("//");
            out.push_str(host);
        }
        if self.host.is_some() || self.namespace.is_some() {
            out.push('/');
            if let Some(ns) = &self.namespace {
                out.push_str(ns.trim_matches('/'));
            }
            out.push(':');
        }
        out.push_str(&self.class_name);
        for (i, (name, value)) in self.keybindings.iter().enumerate() {
            out.push(if i == 0 { '.' } else { ',' });
            out.push_str(name);
            out.push('=');
            match value {
                KeyValue::String(s) => quote(&mut out, s),
                KeyValue::Reference(p) => quote(&mut out, &p.to_string()),
                other => out.push_str(&other.text()),
            }
        }
        f.write_str(&out)
    }
}

impl FromStr for ObjectPath {
    type Err = CimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectPath::parse(s)
    }
}

impl PartialEq for ObjectPath {
    fn eq(&self, other: &Self) -> bool {
        let hosts_equal = match (&self.host, &other.host) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        hosts_equal
            && normalized_namespace(&self.namespace) == normalized_namespace(&other.namespace)
            && names_equal(&self.class_name, &other.class_name)
            && self.keybindings.len() == other.keybindings.len()
            && self
                .canonical_keybindings()
                .into_iter()
                .zip(other.canonical_keybindings())
                .all(|((na, va), (nb, vb))| compare_names(na, nb) == Ordering::Equal && va == vb)
    }
}

impl Eq for ObjectPath {}

impl Hash for ObjectPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.host.as_ref().map(|h| h.to_ascii_lowercase()).hash(state);
        normalized_namespace(&self.namespace).hash(state);
        fold_name(&self.class_name).hash(state);
        for (name, value) in self.canonical_keybindings() {
            fold_name(name).hash(state);
            value.hash(state);
        }
    }
}

/// Reads one key value from the start of `rest`; returns it and the text after the `,` that follows
/// it (`None` at the end).
fn parse_key_value(rest: &str, depth: usize) -> Result<(KeyValue, Option<&str>), String> {
    let mut chars = rest.char_indices();
    match rest.chars().next() {
        Some('"') => {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string value".into()),
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated string value".into()),
                    },
                    Some((i, '"')) => {
                        let remainder = after_value(&rest[i + 1..])?;
                        return Ok((string_or_reference(value, depth), remainder));
                    }
                    Some((_, c)) => value.push(c),
                }
            }
        }
        Some('\'') => {
            let end = rest[1..].find('\'').ok_or("unterminated char16 value")? + 1;
            let value = rest[1..end].to_string();
            Ok((KeyValue::String(value), after_value(&rest[end + 1..])?))
        }
        _ => {
            let (token, remainder) = match rest.split_once(',') {
                Some((t, r)) => (t, Some(r)),
                None => (rest, None),
            };
            let token = token.trim();
            if token.is_empty() {
                return Err("empty key value".into());
            }
            let value = if token.eq_ignore_ascii_case("true") {
                KeyValue::Boolean(true)
            } else if token.eq_ignore_ascii_case("false") {
                KeyValue::Boolean(false)
            } else if parse_integer_text(token).is_some() || parse_real_text(token).is_some() {
                KeyValue::numeric(token, None)
            } else {
                // Unquoted strings are not DSP0207, but command-line tools write them.
                KeyValue::String(token.to_string())
            };
            Ok((value, remainder))
        }
    }
}

fn after_value(after: &str) -> Result<Option<&str>, String> {
    match after.trim_start().strip_prefix(',') {
        Some(r) => Ok(Some(r)),
        None if after.trim().is_empty() => Ok(None),
        None => Err(format!("unexpected text after a quoted value: '{after}'")),
    }
}

/// A quoted key value that is itself an instance path is a reference (as pywbem reads it).
fn string_or_reference(value: String, depth: usize) -> KeyValue {
    let looks_like_path = value.contains(':') && value.contains('=');
    if looks_like_path && depth < MAX_URI_NESTING {
        if let Ok(p) = parse_uri(&value, depth + 1) {
            if !p.keybindings.is_empty() && p.namespace.is_some() {
                return KeyValue::Reference(Box::new(p));
            }
        }
    }
    KeyValue::String(value)
}

fn parse_uri(uri: &str, depth: usize) -> Result<ObjectPath, String> {
    let mut rest = uri.trim();
    if let Some(i) = rest.find("://") {
        let scheme = &rest[..i];
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            rest = &rest[i + 1..];
        }
    }
    let mut host = None;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').ok_or("missing namespace after the host")?;
        if end > 0 {
            host = Some(after[..end].to_string());
        }
        rest = &after[end..];
    }
    let limit = rest.find(['.', '"', '=', '\'']).unwrap_or(rest.len());
    let (namespace, class_and_keys) = match rest[..limit].find(':') {
        Some(colon) => {
            let ns = rest[..colon].trim_matches('/');
            if !ns.is_empty() && !super::is_valid_namespace(ns) {
                return Err(format!("invalid namespace '{ns}'"));
            }
            ((!ns.is_empty()).then(|| ns.to_string()), &rest[colon + 1..])
        }
        None if host.is_some() => return Err("missing ':' between namespace and class".into()),
        None => (None, rest),
    };
    let (class_name, keys) = match class_and_keys.split_once('.') {
        Some((c, k)) => (c.trim(), Some(k)),
        None => (class_and_keys.trim(), None),
    };
    if !is_valid_name(class_name) {
        return Err(format!("invalid class name '{class_name}'"));
    }
    let mut path = ObjectPath { host, namespace, class_name: class_name.to_string(), keybindings: Vec::new() };
    if let Some(mut keys) = keys {
        if keys.trim().is_empty() {
            return Err("no keybindings after '.'".into());
        }
        loop {
            let (name, after) = keys.split_once('=').ok_or_else(|| format!("keybinding without '=' in '{keys}'"))?;
            let name = name.trim();
            if !(is_valid_name(name) || (name.is_empty() && path.keybindings.is_empty())) {
                return Err(format!("invalid key name '{name}'"));
            }
            let (value, remainder) = parse_key_value(after.trim_start(), depth)?;
            if path.keybindings.iter().any(|(n, _)| names_equal(n, name)) {
                return Err(format!("key '{name}' is bound twice"));
            }
            path.keybindings.push((name.to_string(), value));
            match remainder {
                None => break,
                Some(r) if r.trim().is_empty() => return Err("trailing ','".into()),
                Some(r) => keys = r.trim_start(),
            }
        }
        if path.keybindings.len() > 1 && path.keybindings.iter().any(|(n, _)| n.is_empty()) {
            return Err("an unnamed key must be the only key".into());
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn cs(name: &str) -> ObjectPath {
        ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem").with_key("CreationClassName", "Xen_ComputerSystem").with_key("Name", name)
    }

    #[test]
    fn uri_round_trips() {
        let table = [
            r#"//myhost:5988/root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="vm1""#,
            r#"/root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="a \"quoted\" \\ name""#,
            r#"/root/cimv2:CIM_Foo.Id=42,Flag=TRUE,Neg=-0x10"#,
            r#"/root/interop:CIM_RegisteredProfile"#,
            r#"/root/virt:Xen_HostedDependency.Antecedent="/root/virt:Xen_HostSystem.Name=\"h\"",Dependent="/root/virt:Xen_ComputerSystem.Name=\"a\\\"b\"""#,
            r#"CIM_Foo.Name="local""#,
            r#"Singleton"#,
        ];
        for text in table {
            let p = ObjectPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.to_string(), text);
            assert_eq!(ObjectPath::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn uri_forms_from_clients() {
        let expected = cs("vm1");
        let forms = [
            r#"http://myhost:5988/root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="vm1""#,
            r#"https://myhost/root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="vm1""#,
            r#"/root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="vm1""#,
            r#"root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="vm1""#,
            r#"root/virt:xen_computersystem.name="vm1",CREATIONCLASSNAME="Xen_ComputerSystem""#,
        ];
        for text in forms {
            let mut p = ObjectPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            if text.contains("myhost") {
                assert_eq!(p.host.as_deref().unwrap().split(':').next(), Some("myhost"));
                p.host = None;
            }
            assert_eq!(p, expected, "{text}");
        }
        let reference = ObjectPath::parse(r#"/root/virt:A.R="/root/virt:B.K=\"v\"""#).unwrap();
        let r = reference.key("r").unwrap().as_reference().unwrap();
        assert_eq!(r.class_name, "B");
        // A quoted string that merely contains a colon stays a string.
        let id = ObjectPath::parse(r#"/root/virt:Xen_VSSD.InstanceID="Xen:1234-abcd""#).unwrap();
        assert_eq!(id.key("InstanceID"), Some(&KeyValue::String("Xen:1234-abcd".into())));
        let c = ObjectPath::parse("/root/virt:C.Ch='x',Name=vm1").unwrap();
        assert_eq!(c.key("Ch"), Some(&KeyValue::String("x".into())));
        assert_eq!(c.key("Name"), Some(&KeyValue::String("vm1".into())));
    }

    #[test]
    fn invalid_uris() {
        let table = [
            ("", "invalid class name"),
            ("/root/virt:", "invalid class name"),
            ("/root/virt:1Class", "invalid class name"),
            ("/root//virt:C", "invalid namespace"),
            ("//host", "missing namespace"),
            ("//host/root", "missing ':'"),
            ("/root:C.", "no keybindings"),
            (r#"/root:C.A="x","#, "trailing ','"),
            ("/root:C.Name", "without '='"),
            (r#"/root:C.Name="x"#, "unterminated"),
            (r#"/root:C.Name="x"y"#, "unexpected text"),
            (r#"/root:C.Name="x",name="y""#, "bound twice"),
            (r#"/root:C.Na-me="x""#, "invalid key name"),
            (r#"/root:C.Name="#, "empty key value"),
            (r#"/root:C.="a",B="b""#, "unnamed key"),
        ];
        for (text, why) in table {
            let e = ObjectPath::parse(text).expect_err(text);
            assert_eq!(e.status, super::super::CimStatus::InvalidParameter);
            assert!(e.description.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn equality_is_case_insensitive_and_order_independent() {
        let a = cs("vm1");
        let mut b = ObjectPath::new(Some("/ROOT/Virt/"), "XEN_COMPUTERSYSTEM")
            .with_key("name", "vm1")
            .with_key("creationclassname", "Xen_ComputerSystem");
        assert_eq!(a, b);
        let set: HashSet<ObjectPath> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        b.keybindings[0].1 = "VM1".into();
        assert_ne!(a, b, "key values are case-sensitive");
        assert_ne!(a, a.clone().with_host(Some("h".into())));
        assert_ne!(a, a.local());
        assert_ne!(a, cs("vm1").with_key("Extra", "x"));

        let hex = ObjectPath::new(None, "C").with_key("N", KeyValue::numeric("0x10", None));
        let dec = ObjectPath::new(None, "C").with_key("N", 16u32);
        assert_eq!(hex, dec);
        let set: HashSet<ObjectPath> = [hex, dec].into_iter().collect();
        assert_eq!(set.len(), 1);
        let string = ObjectPath::new(None, "C").with_key("N", "16");
        assert_ne!(string, ObjectPath::new(None, "C").with_key("N", 16u32));
    }

    #[test]
    fn key_coercion() {
        assert_eq!(KeyValue::from("12").coerce(CimType::UInt16), Some(12u16.into()));
        assert_eq!(KeyValue::numeric("12", None).coerce(CimType::String), Some("12".into()));
        assert_eq!(KeyValue::from("x").coerce(CimType::UInt16), None);
        assert_eq!(KeyValue::from_value(&CimValue::Char16('a')), Some(KeyValue::String("a".into())));
        assert_eq!(KeyValue::from_value(&CimValue::from(vec![1u8])), None);
        assert_eq!(KeyValue::from(true).text(), "TRUE");
    }
}
