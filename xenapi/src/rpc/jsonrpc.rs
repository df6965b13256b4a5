//! JSON-RPC codec for the Xen-API door (`reference/xenapi-anchors.md` §2.8), as the Go, C#,
//! Java and PowerShell SDKs speak it.
//!
//! - A request with `"jsonrpc": "2.0"` is answered in 2.0 form, anything else in 1.0 form.
//! - Params are a positional array (absent = none). Integers become [`Value::Int`], other
//!   numbers [`Value::Float`]; object member order is kept.
//! - Requests without an id are still answered (with `"id": null`): xapi has no notifications,
//!   and a client that sends one expects an answer anyway.
//! - A body that is not JSON gets the 2.0 error `-32700` (parse error); a JSON body that is not
//!   a request object gets `-32600` (invalid request), and non-array params `-32602`. These go
//!   out with HTTP 200, like other JSON-RPC servers, since the protocol carries the error.
//! - A request beyond the [`Limits`] (nesting, string length, array length) is refused while
//!   it is read, as `-32700` with the config key and its value in `data`, as serde_json's own
//!   nesting bound always did.
//! - Out: ints as JSON numbers, datetimes as strings, [`Value::Nil`] as `null`, NaN and the
//!   infinities (not representable in JSON) as `null`. Written straight into a buffer so that
//!   struct member order (datamodel field order) is kept.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Limits, Outcome};
use crate::value::Value;

/// JSON-RPC version of a request, which decides the shape of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub version: Version,
    pub method: String,
    pub params: Vec<Value>,
    /// Echoed verbatim in the answer.
    pub id: serde_json::Value,
}

/// A request the server answers with a protocol-level error instead of calling anything.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    pub version: Version,
    pub code: i64,
    pub message: String,
    pub detail: String,
    pub id: serde_json::Value,
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// The JSON-RPC 2.0 error code carried by Xen-API failures; clients look at `message`.
pub const API_ERROR: i64 = 1;

#[derive(Default)]
struct Raw {
    jsonrpc: Option<String>,
    method: Option<String>,
    params: Option<Value>,
    id: Option<serde_json::Value>,
}

/// Decodes a request body within the default [`Limits`].
pub fn parse_request(body: &[u8]) -> Result<Request, Box<RequestError>> {
    parse_request_with(body, &Limits::default())
}

/// Decodes a request body within `limits`.
pub fn parse_request_with(body: &[u8], limits: &Limits) -> Result<Request, Box<RequestError>> {
    // serde would also read a struct from a JSON array (`["2.0","m",[],1]`); only objects are
    // requests. Batches (arrays of requests) are not supported.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let (code, message, detail) = match serde_json::from_slice::<de::IgnoredAny>(body) {
            Ok(_) => (INVALID_REQUEST, "Invalid Request", "a request must be a JSON object".to_owned()),
            Err(e) => (PARSE_ERROR, "Parse error", e.to_string()),
        };
        return Err(Box::new(RequestError { version: Version::V2, code, message: message.into(), detail, id: serde_json::Value::Null }));
    }
    // Above the ceiling serde_json's own bound would answer first, without naming the key.
    let limits = Limits { json_max_depth: limits.json_max_depth.min(Limits::JSON_DEPTH_CEILING), ..*limits };
    let breached = Cell::new(false);
    let ctx = Ctx { limits: &limits, breached: &breached };
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = RequestSeed(ctx).deserialize(&mut de).and_then(|raw| de.end().map(|()| raw));
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            let (code, message) = match e.classify() {
                _ if breached.get() => (PARSE_ERROR, "Parse error"),
                serde_json::error::Category::Data => (INVALID_REQUEST, "Invalid Request"),
                _ => (PARSE_ERROR, "Parse error"),
            };
            return Err(Box::new(RequestError {
                version: Version::V2,
                code,
                message: message.into(),
                detail: e.to_string(),
                id: serde_json::Value::Null,
            }));
        }
    };
    let version = if raw.jsonrpc.as_deref() == Some("2.0") { Version::V2 } else { Version::V1 };
    let id = raw.id.unwrap_or(serde_json::Value::Null);
    let fail = |code, message: &str, detail: &str| {
        Err(Box::new(RequestError { version, code, message: message.into(), detail: detail.into(), id: id.clone() }))
    };
    let method = match raw.method {
        Some(m) if !m.is_empty() => m,
        _ => return fail(INVALID_REQUEST, "Invalid Request", "missing method"),
    };
    let params = match raw.params {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return fail(INVALID_PARAMS, "Invalid params", "params must be an array"),
    };
    Ok(Request { version, method, params, id })
}

/// The answer to a call.
pub fn response_bytes(version: Version, id: &serde_json::Value, outcome: &Outcome) -> Vec<u8> {
    let hint = match outcome {
        Outcome::Success(v) | Outcome::Bare(v) => estimate(v),
        Outcome::Failure(d) => d.iter().map(|s| s.len() + 3).sum(),
    };
    let mut out = Vec::with_capacity(hint + 128);
    super::xmlrpc::prefer_huge_pages(&mut out);
    match (version, outcome) {
        (Version::V1, Outcome::Success(v) | Outcome::Bare(v)) => {
            out.extend_from_slice(b"{\"result\":");
            write_value(&mut out, v);
            out.extend_from_slice(b",\"error\":null,\"id\":");
        }
        (Version::V1, Outcome::Failure(desc)) => {
            out.extend_from_slice(b"{\"result\":null,\"error\":[");
            for (i, d) in desc.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(&mut out, d);
            }
            out.extend_from_slice(b"],\"id\":");
        }
        (Version::V2, Outcome::Success(v) | Outcome::Bare(v)) => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
            write_value(&mut out, v);
            out.extend_from_slice(b",\"id\":");
        }
        (Version::V2, Outcome::Failure(desc)) => {
            let (code, args) = desc.split_first().map_or(("INTERNAL_ERROR", &[][..]), |(c, a)| (c.as_str(), a));
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
            super::xmlrpc::write_i64(&mut out, API_ERROR);
            out.extend_from_slice(b",\"message\":");
            write_str(&mut out, code);
            out.extend_from_slice(b",\"data\":[");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(&mut out, a);
            }
            out.extend_from_slice(b"]},\"id\":");
        }
    }
    write_id(&mut out, id);
    out.push(b'}');
    out
}

/// The answer to a request that could not be decoded: always a 2.0-style error object inside
/// the envelope of the request's version (2.0 when even that is unknown).
pub fn error_bytes(err: &RequestError) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    match err.version {
        Version::V2 => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
            super::xmlrpc::write_i64(&mut out, err.code);
            out.extend_from_slice(b",\"message\":");
            write_str(&mut out, &err.message);
            out.extend_from_slice(b",\"data\":[");
            write_str(&mut out, &err.detail);
            out.extend_from_slice(b"]},\"id\":");
        }
        Version::V1 => {
            // A 1.0 client expects the Xen-API error list.
            out.extend_from_slice(b"{\"result\":null,\"error\":[");
            write_str(&mut out, &err.message);
            out.push(b',');
            write_str(&mut out, &err.detail);
            out.extend_from_slice(b"],\"id\":");
        }
    }
    write_id(&mut out, &err.id);
    out.push(b'}');
    out
}

fn write_id(out: &mut Vec<u8>, id: &serde_json::Value) {
    // Serialising a serde_json::Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, id);
}

/// Appends `v` as JSON.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) | Value::DateTime(s) => write_str(out, s),
        Value::Int(i) => super::xmlrpc::write_i64(out, *i),
        Value::Float(f) if f.is_finite() => {
            use std::io::Write;
            let _ = write!(out, "{f:?}");
        }
        Value::Float(_) | Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Struct(members) => write_object(out, members.iter().map(|(k, v)| (k.as_str(), v))),
        Value::Record(r) => write_object(out, r.members()),
    }
}

fn write_object<'k, 'v>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'k str, &'v Value)>) {
    out.push(b'{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Roughly the encoded size of `v` (exact but for escapes and number widths).
fn estimate(v: &Value) -> usize {
    match v {
        Value::Str(s) | Value::DateTime(s) => s.len() + 2,
        Value::Int(_) => 12,
        Value::Float(_) => 20,
        Value::Bool(_) | Value::Nil => 5,
        Value::Array(items) => 2 + items.iter().map(|i| 1 + estimate(i)).sum::<usize>(),
        Value::Struct(members) => 2 + members.iter().map(|(k, v)| k.len() + 4 + estimate(v)).sum::<usize>(),
        Value::Record(r) => 2 + r.members().map(|(k, v)| k.len() + 4 + estimate(v)).sum::<usize>(),
    }
}

/// Bytes a JSON string cannot hold as they are.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if !NEEDS_ESCAPE[c as usize] {
            continue;
        }
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => &[],
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// The limits while one request is read, and whether one was broken (which makes the error
/// a parse error rather than an invalid request).
#[derive(Clone, Copy)]
struct Ctx<'a> {
    limits: &'a Limits,
    breached: &'a Cell<bool>,
}

impl Ctx<'_> {
    fn refuse<E: de::Error>(&self, why: String) -> E {
        self.breached.set(true);
        E::custom(why)
    }
    fn string<E: de::Error>(&self, len: usize) -> Result<(), E> {
        let max = self.limits.max_string_bytes;
        if len > max {
            return Err(self.refuse(format!("a string longer than {max} bytes (max_string_bytes)")));
        }
        Ok(())
    }
    /// Entering an array or object at `depth` (the request object is 1).
    fn nest<E: de::Error>(&self, depth: usize) -> Result<(), E> {
        let max = self.limits.json_max_depth;
        if depth > max {
            return Err(self.refuse(format!("arrays and objects nested deeper than {max} (json_max_depth)")));
        }
        Ok(())
    }
    /// Before adding item `n + 1` to an array (`what` "items") or object ("members").
    fn another<E: de::Error>(&self, n: usize, container: &str, what: &str) -> Result<(), E> {
        let max = self.limits.max_array_items;
        if n >= max {
            return Err(self.refuse(format!("{container} with more than {max} {what} (max_array_items)")));
        }
        Ok(())
    }
}

/// The request object: its four members, anything else skipped.
struct RequestSeed<'a>(Ctx<'a>);

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Jsonrpc,
    Method,
    Params,
    Id,
    Other,
}

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Field {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, s: &str) -> Result<Field, E> {
        Ok(match s {
            "jsonrpc" => Field::Jsonrpc,
            "method" => Field::Method,
            "params" => Field::Params,
            "id" => Field::Id,
            _ => Field::Other,
        })
    }
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = Raw;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let ctx = self.0;
        ctx.nest(1)?;
        let mut raw = Raw::default();
        let mut seen = Vec::new();
        while let Some(field) = map.next_key_seed(Field::Other)? {
            if field != Field::Other {
                if seen.contains(&field) {
                    let name = ["jsonrpc", "method", "params", "id"][field as usize];
                    return Err(de::Error::duplicate_field(name));
                }
                seen.push(field);
            }
            match field {
                Field::Jsonrpc | Field::Method => {
                    let s: Option<String> = map.next_value()?;
                    ctx.string(s.as_ref().map_or(0, String::len))?;
                    *(if field == Field::Jsonrpc { &mut raw.jsonrpc } else { &mut raw.method }) = s;
                }
                Field::Params => raw.params = Some(map.next_value_seed(WireSeed { ctx, depth: 2 })?),
                Field::Id => raw.id = Some(map.next_value_seed(IdSeed { ctx, depth: 2 })?),
                Field::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// A member name or string, refused before it is copied when it is too long.
struct StrSeed<'a>(Ctx<'a>);

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for StrSeed<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        self.0.string(s.len())?;
        Ok(s.to_owned())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        self.0.string(s.len())?;
        Ok(s)
    }
}

/// A [`Value`] decoded from JSON with object member order kept (serde_json's own map sorts),
/// `depth` being the level an array or object here would be at.
struct WireSeed<'a> {
    ctx: Ctx<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for WireSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WireSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        // Above i64::MAX no Xen-API int can hold it; keep it as the nearest double.
        Ok(i64::try_from(u).map(Value::Int).unwrap_or(Value::Float(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.ctx.string(s.len())?;
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.ctx.string(s.len())?;
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let (ctx, depth) = (self.ctx, self.depth);
        ctx.nest(depth)?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        // Refused at the first item past the limit, so a long array is never held whole.
        while let Some(v) = seq.next_element_seed(WireSeed { ctx, depth: depth + 1 })? {
            ctx.another(items.len(), "an array", "items")?;
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (ctx, depth) = (self.ctx, self.depth);
        ctx.nest(depth)?;
        let mut members = Vec::new();
        while let Some(k) = map.next_key_seed(StrSeed(ctx))? {
            ctx.another(members.len(), "an object", "members")?;
            members.push((k, map.next_value_seed(WireSeed { ctx, depth: depth + 1 })?));
        }
        Ok(Value::Struct(members))
    }
}

/// The request id, echoed verbatim, within the same limits as the params.
struct IdSeed<'a> {
    ctx: Ctx<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for IdSeed<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<serde_json::Value, E> {
        Ok(b.into())
    }
    fn visit_i64<E>(self, i: i64) -> Result<serde_json::Value, E> {
        Ok(i.into())
    }
    fn visit_u64<E>(self, u: u64) -> Result<serde_json::Value, E> {
        Ok(u.into())
    }
    fn visit_f64<E>(self, f: f64) -> Result<serde_json::Value, E> {
        Ok(f.into())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<serde_json::Value, E> {
        self.ctx.string(s.len())?;
        Ok(s.into())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<serde_json::Value, E> {
        self.ctx.string(s.len())?;
        Ok(s.into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<serde_json::Value, A::Error> {
        let (ctx, depth) = (self.ctx, self.depth);
        ctx.nest(depth)?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(IdSeed { ctx, depth: depth + 1 })? {
            ctx.another(items.len(), "an array", "items")?;
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<serde_json::Value, A::Error> {
        let (ctx, depth) = (self.ctx, self.depth);
        ctx.nest(depth)?;
        let mut members = serde_json::Map::new();
        while let Some(k) = map.next_key_seed(StrSeed(ctx))? {
            ctx.another(members.len(), "an object", "members")?;
            let v = map.next_value_seed(IdSeed { ctx, depth: depth + 1 })?;
            members.insert(k, v);
        }
        Ok(serde_json::Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(x: &str) -> Value {
        Value::Str(x.to_owned())
    }

    fn parsed(body: &str) -> Request {
        parse_request(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    fn as_json(bytes: Vec<u8>) -> serde_json::Value {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&bytes)))
    }

    #[test]
    fn requests_of_both_versions() {
        let r = parsed(r#"{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","pw","2.21","go"],"id":7}"#);
        assert_eq!(r.version, Version::V2);
        assert_eq!(r.method, "session.login_with_password");
        assert_eq!(r.params, vec![s("root"), s("pw"), s("2.21"), s("go")]);
        assert_eq!(r.id, json!(7));

        let r = parsed(
            r#"{"method":"VM.set_memory","params":["OpaqueRef:s",{"z":1,"a":[true,null,2.5,-3]}, 18446744073709551615],"id":"abc"}"#,
        );
        assert_eq!(r.version, Version::V1);
        assert_eq!(
            r.params,
            vec![
                s("OpaqueRef:s"),
                Value::Struct(vec![
                    ("z".into(), Value::Int(1)),
                    ("a".into(), Value::Array(vec![Value::Bool(true), Value::Nil, Value::Float(2.5), Value::Int(-3)]))
                ]),
                Value::Float(18446744073709551615.0),
            ]
        );
        assert_eq!(r.id, json!("abc"));

        let r = parsed(r#"{"jsonrpc":"1.0","method":"pool.get_all","id":null}"#);
        assert_eq!((r.version, r.params.len(), r.id.clone()), (Version::V1, 0, serde_json::Value::Null));
        assert_eq!(parsed(r#"{"method":"x","params":null}"#).params, vec![]);
    }

    #[test]
    fn bad_requests() {
        let err = |body: &str| *parse_request(body.as_bytes()).unwrap_err();
        for body in ["", "{", "not json", r#"{"method":"x",}"#, "{\"method\":\"\u{0}\"", r#"{"method":"x"} trailing"#] {
            let e = err(body);
            assert_eq!((e.code, e.version), (PARSE_ERROR, Version::V2), "{body:?}");
        }
        for body in ["[]", "3", r#"{"method":5}"#, r#"[{"method":"x"}]"#, r#"["2.0","m",[],1]"#] {
            assert_eq!(err(body).code, INVALID_REQUEST, "{body}");
        }
        let e = err(r#"{"jsonrpc":"2.0","params":[],"id":4}"#);
        assert_eq!((e.code, e.id.clone()), (INVALID_REQUEST, json!(4)));
        let e = err(r#"{"jsonrpc":"2.0","method":"x","params":{"a":1},"id":4}"#);
        assert_eq!(e.code, INVALID_PARAMS);
        let deep = format!("{{\"method\":\"x\",\"params\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_request(deep.as_bytes()).is_err(), "serde_json's recursion limit applies");

        assert_eq!(
            as_json(error_bytes(&err("nope"))),
            json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error","data":["expected ident at line 1 column 2"]},"id":null})
        );
        let v1 = err(r#"{"params":[],"id":9}"#);
        assert_eq!(as_json(error_bytes(&v1)), json!({"result":null,"error":["Invalid Request","missing method"],"id":9}));
    }

    /// Each limit: a request exactly at it parses, one a step over is a parse error naming the
    /// config key and its value; the default limits take both.
    #[test]
    fn each_limit_is_exact() {
        let d = Limits::default();
        let req = |params: &str| format!(r#"{{"jsonrpc":"2.0","method":"m","params":{params},"id":1}}"#);
        let with_id = |id: &str| format!(r#"{{"jsonrpc":"2.0","method":"m","params":[],"id":{id}}}"#);
        let strings = Limits { max_string_bytes: 10, ..d };
        let items = Limits { max_array_items: 3, ..d };
        let depth = Limits { json_max_depth: 4, ..d };
        #[rustfmt::skip]
        let table: Vec<(&str, Limits, String, String, &str)> = vec![
            // The request object is level 1, params 2.
            ("depth in params", depth, req("[[[1]]]"), req("[[[[1]]]]"), "nested deeper than 4 (json_max_depth)"),
            ("depth in objects", depth, req(r#"[{"a":{"b":1}}]"#), req(r#"[{"a":{"b":{}}}]"#), "nested deeper than 4 (json_max_depth)"),
            ("depth in the id", depth, with_id("[[[1]]]"), with_id("[[[[1]]]]"), "nested deeper than 4 (json_max_depth)"),
            ("string", strings, req(r#"["0123456789"]"#), req(r#"["0123456789a"]"#), "a string longer than 10 bytes (max_string_bytes)"),
            ("escaped string", strings, req(&format!("[\"{}\"]", "\\u00e9".repeat(5))), req(&format!("[\"{}x\"]", "\\u00e9".repeat(5))), "longer than 10 bytes (max_string_bytes)"),
            ("member name", strings, req(r#"[{"0123456789":1}]"#), req(r#"[{"0123456789a":1}]"#), "longer than 10 bytes (max_string_bytes)"),
            ("method", strings, r#"{"method":"0123456789"}"#.into(), r#"{"method":"0123456789a"}"#.into(), "longer than 10 bytes (max_string_bytes)"),
            ("string id", strings, with_id(r#""0123456789""#), with_id(r#""0123456789a""#), "longer than 10 bytes (max_string_bytes)"),
            ("array", items, req("[[1,2,3]]"), req("[[1,2,3,4]]"), "an array with more than 3 items (max_array_items)"),
            ("params", items, req("[1,2,3]"), req("[1,2,3,4]"), "an array with more than 3 items (max_array_items)"),
            ("object", items, req(r#"[{"a":1,"b":2,"c":3}]"#), req(r#"[{"a":1,"b":2,"c":3,"d":4}]"#), "an object with more than 3 members (max_array_items)"),
            ("array id", items, with_id("[1,2,3]"), with_id("[1,2,3,4]"), "an array with more than 3 items (max_array_items)"),
        ];
        for (what, limits, at, over, mention) in table {
            if let Err(e) = parse_request_with(at.as_bytes(), &limits) {
                panic!("{what}: refused at the limit: {e:?}");
            }
            let e = parse_request_with(over.as_bytes(), &limits).expect_err(what);
            assert_eq!((e.code, e.message.as_str(), e.version), (PARSE_ERROR, "Parse error", Version::V2), "{what}: {e:?}");
            assert!(e.detail.contains(mention), "{what}: {e:?}");
            assert!(parse_request(over.as_bytes()).is_ok(), "{what}: only the small limit refuses it");
        }
        // Up to the ceiling the refusal is ours, naming the key, never serde_json's.
        let nest = |n: usize| req(&format!("{}{}", "[".repeat(n - 1), "]".repeat(n - 1)));
        let top = Limits { json_max_depth: usize::MAX, ..d };
        assert!(parse_request_with(nest(Limits::JSON_DEPTH_CEILING).as_bytes(), &top).is_ok());
        let e = parse_request_with(nest(Limits::JSON_DEPTH_CEILING + 1).as_bytes(), &top).unwrap_err();
        assert!(e.detail.contains("deeper than 126 (json_max_depth)"), "{e:?}");
        // Other errors keep their codes.
        let e = parse_request_with(br#"{"method":"m","method":"n"}"#, &d).unwrap_err();
        assert_eq!(e.code, INVALID_REQUEST, "{e:?}");
    }

    #[test]
    fn responses_of_both_versions() {
        let rec = Value::Struct(vec![
            ("uuid".into(), s("u-1")),
            ("memory_static_max".into(), Value::Int(268435456)),
            ("VCPUs_at_startup".into(), Value::Int(-1)),
            ("is_a_template".into(), Value::Bool(false)),
            ("progress".into(), Value::Float(0.25)),
            ("created".into(), Value::DateTime("20240102T03:04:05Z".into())),
            ("nothing".into(), Value::Nil),
            ("nan".into(), Value::Float(f64::NAN)),
            ("tags".into(), Value::Array(vec![s("a\"b\\c\n\u{1}é")])),
        ]);
        let ok = Outcome::Success(rec);
        let want_result = json!({"uuid":"u-1","memory_static_max":268435456,"VCPUs_at_startup":-1,"is_a_template":false,
            "progress":0.25,"created":"20240102T03:04:05Z","nothing":null,"nan":null,"tags":["a\"b\\c\n\u{1}é"]});
        assert_eq!(as_json(response_bytes(Version::V1, &json!(1), &ok)), json!({"result":want_result,"error":null,"id":1}));
        let v2 = response_bytes(Version::V2, &json!("x"), &ok);
        assert_eq!(as_json(v2.clone()), json!({"jsonrpc":"2.0","result":want_result,"id":"x"}));
        // Field order is the record's, not alphabetical.
        let text = String::from_utf8(v2).unwrap();
        assert!(text.find("\"uuid\"").unwrap() < text.find("\"memory_static_max\"").unwrap());

        let fail = Outcome::Failure(vec!["VM_BAD_POWER_STATE".into(), "OpaqueRef:a".into(), "halted".into(), "running".into()]);
        assert_eq!(
            as_json(response_bytes(Version::V1, &json!(2), &fail)),
            json!({"result":null,"error":["VM_BAD_POWER_STATE","OpaqueRef:a","halted","running"],"id":2})
        );
        assert_eq!(
            as_json(response_bytes(Version::V2, &json!(3), &fail)),
            json!({"jsonrpc":"2.0","error":{"code":1,"message":"VM_BAD_POWER_STATE","data":["OpaqueRef:a","halted","running"]},"id":3})
        );
        assert_eq!(
            as_json(response_bytes(Version::V2, &json!(3), &Outcome::Bare(Value::Array(vec![s("VM.start")])))),
            json!({"jsonrpc":"2.0","result":["VM.start"],"id":3})
        );
        assert_eq!(
            as_json(response_bytes(Version::V2, &json!(null), &Outcome::Success(Value::Float(1e300)))),
            json!({"jsonrpc":"2.0","result":1e300,"id":null})
        );
    }

    #[test]
    fn written_values_read_back() {
        let v = Value::Array(vec![
            s(""),
            s("\u{7f}\u{1f}\t"),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Float(0.1),
            Value::Float(-0.0),
            Value::Bool(true),
            Value::Struct(vec![("b".into(), Value::Struct(vec![])), ("a".into(), Value::Array(vec![]))]),
        ]);
        let mut out = b"{\"method\":\"m\",\"params\":".to_vec();
        write_value(&mut out, &v);
        out.push(b'}');
        assert_eq!(
            parse_request(&out).unwrap().params,
            match v {
                Value::Array(a) => a,
                _ => unreachable!(),
            }
        );
    }
}
