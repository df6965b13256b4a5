//! CIM values: scalars, arrays (with NULL elements), references and embedded objects, and their
//! CIM-XML text forms (DSP0201 5.2 "VALUE").

use std::fmt;

use super::{CimDateTime, CimType, Class, EmbeddedKind, Instance, ObjectPath};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

/// A non-NULL CIM value. NULL is `Option::None` wherever a value may be absent.
#[derive(Debug, Clone, PartialEq)]
pub enum CimValue {
    Boolean(bool),
    String(String),
    Char16(char),
    UInt8(u8),
    SInt8(i8),
    UInt16(u16),
    SInt16(i16),
    UInt32(u32),
    SInt32(i32),
    UInt64(u64),
    SInt64(i64),
    Real32(f32),
    Real64(f64),
    DateTime(CimDateTime),
    Reference(ObjectPath),
    /// An embedded instance: a `string` value carrying an instance.
    Instance(Box<Instance>),
    /// An embedded class: a `string` value carrying a class (`EmbeddedObject`).
    Class(Box<Class>),
    Array(CimArray),
}

/// A typed array whose elements may be NULL (DSP0201 `VALUE.NULL` inside `VALUE.ARRAY`).
#[derive(Debug, Clone, PartialEq)]
pub struct CimArray {
    element_type: CimType,
    elements: Vec<Option<CimValue>>,
}

impl CimArray {
    /// Checks that every element is a scalar of `element_type` (embedded objects count as `string`).
    pub fn new(element_type: CimType, elements: Vec<Option<CimValue>>) -> Result<CimArray, ValueError> {
        for (i, element) in elements.iter().enumerate() {
            if let Some(v) = element {
                if v.is_array() || v.cim_type() != element_type {
                    return Err(ValueError(format!("array element {i} is a {} where a {element_type} is expected", v.type_description())));
                }
            }
        }
        Ok(CimArray { element_type, elements })
    }

    pub fn from_values(element_type: CimType, values: Vec<CimValue>) -> Result<CimArray, ValueError> {
        CimArray::new(element_type, values.into_iter().map(Some).collect())
    }

    pub fn empty(element_type: CimType) -> CimArray {
        CimArray { element_type, elements: Vec::new() }
    }

    pub fn element_type(&self) -> CimType {
        self.element_type
    }

    pub fn elements(&self) -> &[Option<CimValue>] {
        &self.elements
    }

    pub fn into_elements(self) -> Vec<Option<CimValue>> {
        self.elements
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The non-NULL elements.
    pub fn values(&self) -> impl Iterator<Item = &CimValue> {
        self.elements.iter().flatten()
    }
}

/// Parses a CIM-XML integer: optional sign, decimal or `0x` hexadecimal, surrounding whitespace allowed.
pub(crate) fn parse_integer_text(text: &str) -> Option<i128> {
    let t = text.trim();
    let (negative, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let magnitude = if let Some(hex) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(hex, 16).ok()?
    } else {
        if rest.is_empty() || !rest.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        rest.parse::<u128>().ok()?
    };
    let magnitude = i128::try_from(magnitude).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Parses a CIM-XML real: decimal with optional exponent, or `INF`, `-INF`, `NaN` (DSP0201 2.4).
pub(crate) fn parse_real_text(text: &str) -> Option<f64> {
    let t = text.trim();
    let body = t.trim_start_matches(['+', '-']);
    let plain = !body.is_empty()
        && body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'.');
    let special = ["inf", "infinity", "nan"].iter().any(|s| body.eq_ignore_ascii_case(s));
    if !(plain || special) || t.len() - body.len() > 1 {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Formats a real so that it parses back to the same value and matches DSP0201's grammar (a digit on
/// each side of the decimal point).
fn format_real(v: f64, shortest: String) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "INF".into() } else { "-INF".into() };
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-5..1e16).contains(&magnitude) {
        if shortest.contains('.') {
            shortest
        } else {
            format!("{shortest}.0")
        }
    } else {
        // Scientific notation keeps huge and tiny values short.
        let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exponent}")
    }
}

fn parse_bool_text(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl CimValue {
    /// The CIM type of the value (of its elements for arrays; `string` for embedded objects).
    pub fn cim_type(&self) -> CimType {
        match self {
            CimValue::Boolean(_) => CimType::Boolean,
            CimValue::String(_) | CimValue::Instance(_) | CimValue::Class(_) => CimType::String,
            CimValue::Char16(_) => CimType::Char16,
            CimValue::UInt8(_) => CimType::UInt8,
            CimValue::SInt8(_) => CimType::SInt8,
            CimValue::UInt16(_) => CimType::UInt16,
            CimValue::SInt16(_) => CimType::SInt16,
            CimValue::UInt32(_) => CimType::UInt32,
            CimValue::SInt32(_) => CimType::SInt32,
            CimValue::UInt64(_) => CimType::UInt64,
            CimValue::SInt64(_) => CimType::SInt64,
            CimValue::Real32(_) => CimType::Real32,
            CimValue::Real64(_) => CimType::Real64,
            CimValue::DateTime(_) => CimType::DateTime,
            CimValue::Reference(_) => CimType::Reference,
            CimValue::Array(a) => a.element_type,
        }
    }

    pub fn is_array(&self) -> bool {
        matches!(self, CimValue::Array(_))
    }

    /// What the value embeds, if it is (or is an array of) embedded objects.
    pub fn embedded_kind(&self) -> Option<EmbeddedKind> {
        match self {
            CimValue::Instance(_) => Some(EmbeddedKind::Instance),
            CimValue::Class(_) => Some(EmbeddedKind::Object),
            CimValue::Array(a) => a.values().find_map(CimValue::embedded_kind),
            _ => None,
        }
    }

    fn type_description(&self) -> String {
        match self {
            CimValue::Array(a) => format!("{}[]", a.element_type),
            CimValue::Instance(_) => "embedded instance".into(),
            CimValue::Class(_) => "embedded class".into(),
            v => v.cim_type().to_string(),
        }
    }

    /// Parses the CIM-XML text of a scalar of type `ty`. References and embedded objects have no
    /// plain text form and are rejected.
    pub fn parse_scalar(ty: CimType, text: &str) -> Result<CimValue, ValueError> {
        let bad = || ValueError(format!("'{}' is not a valid {ty} value", shorten(text)));
        if let Some((min, max)) = ty.integer_range() {
            let n = parse_integer_text(text).ok_or_else(bad)?;
            if n < min || n > max {
                return Err(ValueError(format!("{} is out of range for {ty} ({min}..={max})", shorten(text))));
            }
            // The range check above makes every conversion below lossless.
            return Ok(match ty {
                CimType::UInt8 => CimValue::UInt8(n as u8),
                CimType::SInt8 => CimValue::SInt8(n as i8),
                CimType::UInt16 => CimValue::UInt16(n as u16),
                CimType::SInt16 => CimValue::SInt16(n as i16),
                CimType::UInt32 => CimValue::UInt32(n as u32),
                CimType::SInt32 => CimValue::SInt32(n as i32),
                CimType::UInt64 => CimValue::UInt64(n as u64),
                _ => CimValue::SInt64(n as i64),
            });
        }
        match ty {
            CimType::Boolean => parse_bool_text(text).map(CimValue::Boolean).ok_or_else(bad),
            CimType::String => Ok(CimValue::String(text.to_string())),
            CimType::Char16 => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if u32::from(c) <= 0xFFFF => Ok(CimValue::Char16(c)),
                    _ => Err(bad()),
                }
            }
            CimType::Real32 => {
                let v = parse_real_text(text).ok_or_else(bad)?;
                let narrow = text.trim().parse::<f32>().unwrap_or(v as f32);
                if v.is_finite() && !narrow.is_finite() {
                    return Err(ValueError(format!("{} is out of range for real32", shorten(text))));
                }
                Ok(CimValue::Real32(narrow))
            }
            CimType::Real64 => parse_real_text(text).map(CimValue::Real64).ok_or_else(bad),
            CimType::DateTime => CimDateTime::parse(text.trim()).map(CimValue::DateTime).map_err(|e| ValueError(e.0)),
            _ => Err(ValueError(format!("a {ty} value has no text form"))),
        }
    }

    /// Parses array elements (`None` = `VALUE.NULL`).
    pub fn parse_array<S: AsRef<str>>(ty: CimType, items: &[Option<S>]) -> Result<CimValue, ValueError> {
        let mut elements = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            elements.push(match item {
                None => None,
                Some(text) => Some(CimValue::parse_scalar(ty, text.as_ref()).map_err(|e| ValueError(format!("array element {i}: {e}")))?),
            });
        }
        Ok(CimValue::Array(CimArray { element_type: ty, elements }))
    }

    /// The CIM-XML text of a scalar; `None` for references, embedded objects and arrays.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match self {
            CimValue::Boolean(true) => "TRUE".into(),
            CimValue::Boolean(false) => "FALSE".into(),
            CimValue::String(s) => s.clone(),
            CimValue::Char16(c) => c.to_string(),
            CimValue::UInt8(v) => v.to_string(),
            CimValue::SInt8(v) => v.to_string(),
            CimValue::UInt16(v) => v.to_string(),
            CimValue::SInt16(v) => v.to_string(),
            CimValue::UInt32(v) => v.to_string(),
            CimValue::SInt32(v) => v.to_string(),
            CimValue::UInt64(v) => v.to_string(),
            CimValue::SInt64(v) => v.to_string(),
            CimValue::Real32(v) => format_real(f64::from(*v), shortest_f32(*v)),
            CimValue::Real64(v) => format_real(*v, shortest_f64(*v)),
            CimValue::DateTime(d) => d.to_string(),
            CimValue::Reference(_) | CimValue::Instance(_) | CimValue::Class(_) | CimValue::Array(_) => return None,
        })
    }

    /// Converts a value to another type through its text form (e.g. a `uint16` sent by a client for a
    /// `uint32` parameter). Values already of the right type are returned unchanged.
    pub fn convert(&self, ty: CimType, is_array: bool) -> Result<CimValue, ValueError> {
        if self.cim_type() == ty && self.is_array() == is_array {
            return Ok(self.clone());
        }
        match (self, is_array) {
            (CimValue::Array(a), true) => {
                let mut out = Vec::with_capacity(a.len());
                for e in &a.elements {
                    out.push(match e {
                        None => None,
                        Some(v) => Some(v.convert(ty, false)?),
                    });
                }
                Ok(CimValue::Array(CimArray { element_type: ty, elements: out }))
            }
            (CimValue::Array(_), false) => Err(ValueError(format!("an array was given where a {ty} is expected"))),
            (_, true) => Err(ValueError(format!("a {} was given where an array of {ty} is expected", self.type_description()))),
            (v, false) => match v.scalar_text() {
                Some(text) => CimValue::parse_scalar(ty, &text),
                None => Err(ValueError(format!("a {} was given where a {ty} is expected", v.type_description()))),
            },
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            CimValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            CimValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Any integer value that fits an `i128` (all of them).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            CimValue::UInt8(v) => v.into(),
            CimValue::SInt8(v) => v.into(),
            CimValue::UInt16(v) => v.into(),
            CimValue::SInt16(v) => v.into(),
            CimValue::UInt32(v) => v.into(),
            CimValue::SInt32(v) => v.into(),
            CimValue::UInt64(v) => v.into(),
            CimValue::SInt64(v) => v.into(),
            _ => return None,
        })
    }

    pub fn as_reference(&self) -> Option<&ObjectPath> {
        match self {
            CimValue::Reference(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_instance(&self) -> Option<&Instance> {
        match self {
            CimValue::Instance(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&CimArray> {
        match self {
            CimValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The shortest text that parses back to `v` (Rust's `Display`), switching to exponent form for
/// magnitudes where `Display` would print hundreds of digits.
fn shortest_f64(v: f64) -> String {
    let m = v.abs();
    if m == 0.0 || (1e-5..1e16).contains(&m) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

fn shortest_f32(v: f32) -> String {
    let m = v.abs();
    if m == 0.0 || (1e-5..1e16).contains(&m) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

macro_rules! scalar_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$t> for CimValue {
                fn from(v: $t) -> Self {
                    CimValue::$variant(v)
                }
            }
            impl From<Vec<$t>> for CimValue {
                fn from(v: Vec<$t>) -> Self {
                    CimValue::Array(CimArray {
                        element_type: CimValue::$variant(Default::default()).cim_type(),
                        elements: v.into_iter().map(|x| Some(CimValue::$variant(x))).collect(),
                    })
                }
            }
        )*
    };
}

scalar_from!(
    bool => Boolean,
    String => String,
    char => Char16,
    u8 => UInt8,
    i8 => SInt8,
    u16 => UInt16,
    i16 => SInt16,
    u32 => UInt32,
    i32 => SInt32,
    u64 => UInt64,
    i64 => SInt64,
    f32 => Real32,
    f64 => Real64,
);

impl From<&str> for CimValue {
    fn from(v: &str) -> Self {
        CimValue::String(v.to_string())
    }
}

impl From<Vec<&str>> for CimValue {
    fn from(v: Vec<&str>) -> Self {
        v.into_iter().map(str::to_string).collect::<Vec<_>>().into()
    }
}

impl From<CimDateTime> for CimValue {
    fn from(v: CimDateTime) -> Self {
        CimValue::DateTime(v)
    }
}

impl From<ObjectPath> for CimValue {
    fn from(v: ObjectPath) -> Self {
        CimValue::Reference(v)
    }
}

impl From<Instance> for CimValue {
    fn from(v: Instance) -> Self {
        CimValue::Instance(Box::new(v))
    }
}

impl From<Class> for CimValue {
    fn from(v: Class) -> Self {
        CimValue::Class(Box::new(v))
    }
}

impl From<CimArray> for CimValue {
    fn from(v: CimArray) -> Self {
        CimValue::Array(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_with_ranges_and_hex() {
        let table: &[(CimType, &str, Option<CimValue>)] = &[
            (CimType::UInt8, "255", Some(CimValue::UInt8(255))),
            (CimType::UInt8, "256", None),
            (CimType::UInt8, "-1", None),
            (CimType::SInt8, "-128", Some(CimValue::SInt8(-128))),
            (CimType::SInt8, "+127", Some(CimValue::SInt8(127))),
            (CimType::UInt16, " 2 ", Some(CimValue::UInt16(2))),
            (CimType::UInt32, "0x10", Some(CimValue::UInt32(16))),
            (CimType::UInt32, "0XfF", Some(CimValue::UInt32(255))),
            (CimType::SInt32, "-0x10", Some(CimValue::SInt32(-16))),
            (CimType::UInt32, "abc", None),
            (CimType::UInt32, "", None),
            (CimType::UInt32, "1.5", None),
            (CimType::UInt32, "0x", None),
            (CimType::UInt32, "--1", None),
            (CimType::UInt64, "18446744073709551615", Some(CimValue::UInt64(u64::MAX))),
            (CimType::UInt64, "18446744073709551616", None),
            (CimType::SInt64, "-9223372036854775808", Some(CimValue::SInt64(i64::MIN))),
            (CimType::SInt64, "99999999999999999999999999999999999999999", None),
        ];
        for (ty, text, expected) in table {
            let got = CimValue::parse_scalar(*ty, text).ok();
            assert_eq!(&got, expected, "{ty} {text:?}");
        }
    }

    #[test]
    fn other_scalars() {
        assert_eq!(CimValue::parse_scalar(CimType::Boolean, " TRUE ").unwrap(), true.into());
        assert_eq!(CimValue::parse_scalar(CimType::Boolean, "false").unwrap(), false.into());
        assert!(CimValue::parse_scalar(CimType::Boolean, "yes").is_err());
        assert_eq!(CimValue::parse_scalar(CimType::String, " a ").unwrap(), " a ".into());
        assert_eq!(CimValue::parse_scalar(CimType::Char16, "é").unwrap(), 'é'.into());
        assert!(CimValue::parse_scalar(CimType::Char16, "ab").is_err());
        assert!(CimValue::parse_scalar(CimType::Char16, "").is_err());
        assert!(CimValue::parse_scalar(CimType::Char16, "😀").is_err());
        assert_eq!(CimValue::parse_scalar(CimType::Real64, "1.5E3").unwrap(), 1500.0f64.into());
        assert_eq!(CimValue::parse_scalar(CimType::Real64, "-INF").unwrap(), f64::NEG_INFINITY.into());
        assert!(CimValue::parse_scalar(CimType::Real64, "1.5x").is_err());
        assert!(CimValue::parse_scalar(CimType::Real64, "0x10").is_err());
        assert!(CimValue::parse_scalar(CimType::Real64, "--1").is_err());
        assert!(CimValue::parse_scalar(CimType::Real32, "1e300").is_err());
        assert!(CimValue::parse_scalar(CimType::Reference, "x").is_err());
        assert!(CimValue::parse_scalar(CimType::DateTime, "2024").is_err());
    }

    #[test]
    fn texts_round_trip() {
        let values: Vec<CimValue> = vec![
            true.into(),
            "x<y".into(),
            'c'.into(),
            7u8.into(),
            (-7i8).into(),
            65535u16.into(),
            (-3i16).into(),
            4096u32.into(),
            i32::MIN.into(),
            u64::MAX.into(),
            i64::MIN.into(),
            1.25f32.into(),
            0.1f32.into(),
            f32::MAX.into(),
            1.0f64.into(),
            0.1f64.into(),
            1e300f64.into(),
            (-2.5e-300f64).into(),
            f64::INFINITY.into(),
            0.0f64.into(),
            CimDateTime::parse("20240101120000.000000+000").unwrap().into(),
        ];
        for v in values {
            let text = v.scalar_text().unwrap();
            let back = CimValue::parse_scalar(v.cim_type(), &text).unwrap();
            assert_eq!(back, v, "{text}");
            if v.cim_type().is_real() && text != "INF" {
                assert!(text.contains('.'), "{text} needs a decimal point");
            }
        }
        assert!(CimValue::Real64(f64::NAN).scalar_text().unwrap() == "NaN");
        assert_eq!(CimValue::Real64(1e300).scalar_text().unwrap(), "1.0E300");
    }

    #[test]
    fn arrays_check_element_types() {
        let a = CimValue::from(vec![1u16, 2]);
        assert_eq!(a.cim_type(), CimType::UInt16);
        assert!(a.is_array());
        assert!(CimArray::new(CimType::UInt16, vec![Some(1u32.into())]).is_err());
        assert!(CimArray::new(CimType::UInt16, vec![Some(vec![1u16].into())]).is_err());
        let with_null = CimValue::parse_array(CimType::UInt8, &[Some("1"), None]).unwrap();
        assert_eq!(with_null.as_array().unwrap().elements(), &[Some(CimValue::UInt8(1)), None]);
        let e = CimValue::parse_array(CimType::UInt8, &[Some("1"), Some("x")]).unwrap_err();
        assert!(e.0.contains("element 1"), "{e}");
    }

    #[test]
    fn conversions() {
        assert_eq!(CimValue::UInt16(2).convert(CimType::UInt32, false).unwrap(), 2u32.into());
        assert!(CimValue::SInt16(-2).convert(CimType::UInt32, false).is_err());
        assert_eq!(CimValue::from(vec![1u8, 2]).convert(CimType::UInt64, true).unwrap(), vec![1u64, 2].into());
        assert!(CimValue::UInt8(1).convert(CimType::UInt8, true).is_err());
        assert!(CimValue::from(vec![1u8]).convert(CimType::UInt8, false).is_err());
        assert_eq!(CimValue::from("5").convert(CimType::UInt8, false).unwrap(), 5u8.into());
    }
}
