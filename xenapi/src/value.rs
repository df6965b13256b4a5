//! The one value type that crosses every layer of the Xen-API door: wire codecs decode into it,
//! the dispatcher unmarshals parameters from it, and records are built from it.

/// A Xen-API value as it travels on the wire (XML-RPC or JSON-RPC).
///
/// Xen-API ints travel as decimal strings in XML-RPC, so a decoded `Int` may arrive as `Str`;
/// the dispatcher converts according to the parameter's declared type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `YYYYMMDDTHH:MM:SSZ`, as xapi writes it.
    DateTime(String),
    Array(Vec<Value>),
    /// Struct members in order (records keep datamodel field order).
    Struct(Vec<(String, Value)>),
    /// XML-RPC `<nil/>` / JSON `null` (Python sends it as the session before login).
    Nil,
    /// An object's record, shared with the registry instead of copied: encoders write it as a
    /// struct whose member names come from the datamodel.
    Record(Record),
}

/// A snapshot of an object's fields, in datamodel order. Cloning it is O(1).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub class: crate::datamodel::ClassId,
    pub fields: std::sync::Arc<Vec<Value>>,
}

impl Record {
    /// Field names and values, in datamodel order.
    pub fn members(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.class.def().fields.iter().map(|f| f.name).zip(self.fields.iter())
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::DateTime(s) => Some(s),
            _ => None,
        }
    }

    /// A struct member by name.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            Value::Record(r) => r.members().find(|(k, _)| *k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The empty string is the wire form of `void`.
    pub fn void() -> Value {
        Value::Str(String::new())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
