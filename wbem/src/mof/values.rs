//! Gives parsed MOF values their declared CIM type.

use std::collections::HashMap;

use crate::cim::{fold_name, CimArray, CimDateTime, CimType, CimValue, ObjectPath};

use super::ast::{Value, ValueKind};
use super::diag::SyntaxError;

/// Instance aliases (`as $Name`) by folded name: the path each one stands for.
pub type Aliases = HashMap<String, ObjectPath>;

/// How a scalar written where an array is declared is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarForArray {
    /// Qualifiers: `MappingStrings ("x")` is the one-element array, as DSP0004's `qualifierParameter`
    /// allows.
    Wrap,
    Refuse,
}

/// Converts `value` to the declared type; `Ok(None)` is NULL.
pub fn typed(
    value: &Value,
    ty: CimType,
    is_array: bool,
    aliases: &Aliases,
    scalar_for_array: ScalarForArray,
) -> Result<Option<CimValue>, SyntaxError> {
    match (&value.kind, is_array) {
        (ValueKind::Null, _) => Ok(None),
        (ValueKind::Array(items), true) => {
            let mut elements = Vec::with_capacity(items.len());
            for item in items {
                elements.push(match item.kind {
                    ValueKind::Null => None,
                    _ => Some(scalar(item, ty, aliases)?),
                });
            }
            let array = CimArray::new(ty, elements).map_err(|e| SyntaxError::new(value.pos, e.0))?;
            Ok(Some(CimValue::Array(array)))
        }
        (ValueKind::Array(_), false) => Err(SyntaxError::new(value.pos, format!("expected a single {ty} value, found an array"))),
        (_, true) if scalar_for_array == ScalarForArray::Wrap => {
            let one = scalar(value, ty, aliases)?;
            let array = CimArray::new(ty, vec![Some(one)]).map_err(|e| SyntaxError::new(value.pos, e.0))?;
            Ok(Some(CimValue::Array(array)))
        }
        (kind, true) => Err(SyntaxError::new(value.pos, format!("expected an array of {ty} ('{{...}}'), found {}", describe(kind)))),
        (_, false) => scalar(value, ty, aliases).map(Some),
    }
}

fn describe(kind: &ValueKind) -> &'static str {
    match kind {
        ValueKind::Null => "NULL",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::Integer(_) => "an integer",
        ValueKind::Real(_) => "a real",
        ValueKind::String(_) => "a string",
        ValueKind::Char16(_) => "a char16",
        ValueKind::Alias(_) => "an alias",
        ValueKind::Array(_) => "an array",
    }
}

fn scalar(value: &Value, ty: CimType, aliases: &Aliases) -> Result<CimValue, SyntaxError> {
    let err = |message: String| SyntaxError::new(value.pos, message);
    Ok(match (&value.kind, ty) {
        (ValueKind::Boolean(b), CimType::Boolean) => CimValue::Boolean(*b),
        (ValueKind::String(s), CimType::String) => CimValue::String(s.clone()),
        (ValueKind::Char16(c), CimType::Char16) => CimValue::Char16(*c),
        (ValueKind::Integer(n), t) if t.is_integer() => integer(*n, t).map_err(err)?,
        (ValueKind::Integer(n), CimType::Real32) => CimValue::Real32(*n as f32),
        (ValueKind::Integer(n), CimType::Real64) => CimValue::Real64(*n as f64),
        (ValueKind::Real(r), CimType::Real32) => {
            let narrow = *r as f32;
            if r.is_finite() && !narrow.is_finite() {
                return Err(err(format!("real {r:e} is out of range for real32")));
            }
            CimValue::Real32(narrow)
        }
        (ValueKind::Real(r), CimType::Real64) => CimValue::Real64(*r),
        (ValueKind::String(s), CimType::DateTime) => CimValue::DateTime(CimDateTime::parse(s).map_err(|e| err(e.0))?),
        (ValueKind::String(s), CimType::Reference) => CimValue::Reference(ObjectPath::parse(s).map_err(|e| err(e.description))?),
        (ValueKind::Alias(a), CimType::Reference) => {
            CimValue::Reference(aliases.get(&fold_name(a)).cloned().ok_or_else(|| err(format!("undefined alias '${a}'")))?)
        }
        (ValueKind::Alias(a), t) => return Err(err(format!("alias '${a}' can only be the value of a reference, not of a {t}"))),
        (kind, t) => return Err(err(format!("expected a {t} value, found {}", describe(kind)))),
    })
}

fn integer(n: i128, ty: CimType) -> Result<CimValue, String> {
    let (min, max) = ty.integer_range().expect("integer type");
    if n < min || n > max {
        return Err(format!("integer {n} is out of range for {ty} ({min} to {max})"));
    }
    // The range check makes each narrowing below lossless.
    Ok(match ty {
        CimType::UInt8 => CimValue::UInt8(n as u8),
        CimType::SInt8 => CimValue::SInt8(n as i8),
        CimType::UInt16 => CimValue::UInt16(n as u16),
        CimType::SInt16 => CimValue::SInt16(n as i16),
        CimType::UInt32 => CimValue::UInt32(n as u32),
        CimType::SInt32 => CimValue::SInt32(n as i32),
        CimType::UInt64 => CimValue::UInt64(n as u64),
        _ => CimValue::SInt64(n as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::super::diag::Pos;
    use super::*;

    fn v(kind: ValueKind) -> Value {
        Value { kind, pos: Pos::new(3, 7) }
    }

    fn ok(kind: ValueKind, ty: CimType) -> CimValue {
        typed(&v(kind), ty, false, &Aliases::new(), ScalarForArray::Refuse).unwrap().unwrap()
    }

    fn bad(kind: ValueKind, ty: CimType, is_array: bool) -> String {
        let e = typed(&v(kind), ty, is_array, &Aliases::new(), ScalarForArray::Refuse).unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 7));
        e.message
    }

    #[test]
    fn scalars_take_their_declared_type() {
        assert_eq!(ok(ValueKind::Integer(255), CimType::UInt8), CimValue::UInt8(255));
        assert_eq!(ok(ValueKind::Integer(-128), CimType::SInt8), CimValue::SInt8(-128));
        assert_eq!(ok(ValueKind::Integer(4096), CimType::UInt32), CimValue::UInt32(4096));
        assert_eq!(ok(ValueKind::Integer(u64::MAX as i128), CimType::UInt64), CimValue::UInt64(u64::MAX));
        assert_eq!(ok(ValueKind::Integer(3), CimType::Real64), CimValue::Real64(3.0));
        assert_eq!(ok(ValueKind::Real(1.5), CimType::Real32), CimValue::Real32(1.5));
        assert_eq!(ok(ValueKind::Char16('x'), CimType::Char16), CimValue::Char16('x'));
        assert_eq!(ok(ValueKind::Boolean(true), CimType::Boolean), CimValue::Boolean(true));
        assert!(matches!(ok(ValueKind::String("20240101120000.000000+000".into()), CimType::DateTime), CimValue::DateTime(_)));
        let CimValue::Reference(p) = ok(ValueKind::String("root/virt:Xen_X.Name=\"a\"".into()), CimType::Reference) else { panic!() };
        assert_eq!(p.class_name, "Xen_X");
        assert_eq!(typed(&v(ValueKind::Null), CimType::UInt8, true, &Aliases::new(), ScalarForArray::Refuse), Ok(None));
    }

    #[test]
    fn arrays_and_aliases() {
        let arr = v(ValueKind::Array(vec![v(ValueKind::Integer(2)), v(ValueKind::Null), v(ValueKind::Integer(3))]));
        let got = typed(&arr, CimType::UInt16, true, &Aliases::new(), ScalarForArray::Refuse).unwrap().unwrap();
        let CimValue::Array(a) = got else { panic!() };
        assert_eq!(a.elements(), &[Some(CimValue::UInt16(2)), None, Some(CimValue::UInt16(3))]);
        let wrapped =
            typed(&v(ValueKind::String("x".into())), CimType::String, true, &Aliases::new(), ScalarForArray::Wrap).unwrap().unwrap();
        assert_eq!(wrapped.as_array().unwrap().len(), 1);
        let mut aliases = Aliases::new();
        aliases.insert("host".into(), ObjectPath::new(Some("root/virt"), "Xen_HostSystem").with_key("Name", "h"));
        let got = typed(&v(ValueKind::Alias("Host".into())), CimType::Reference, false, &aliases, ScalarForArray::Refuse).unwrap();
        assert_eq!(got.unwrap().as_reference().unwrap().class_name, "Xen_HostSystem");
    }

    #[test]
    fn mismatches_are_errors() {
        assert_eq!(bad(ValueKind::Integer(256), CimType::UInt8, false), "integer 256 is out of range for uint8 (0 to 255)");
        assert_eq!(
            bad(ValueKind::Integer(-1), CimType::UInt64, false),
            "integer -1 is out of range for uint64 (0 to 18446744073709551615)"
        );
        assert_eq!(bad(ValueKind::String("1".into()), CimType::UInt16, false), "expected a uint16 value, found a string");
        assert_eq!(bad(ValueKind::Integer(1), CimType::String, false), "expected a string value, found an integer");
        assert_eq!(bad(ValueKind::Real(1.0), CimType::SInt32, false), "expected a sint32 value, found a real");
        assert_eq!(bad(ValueKind::Integer(1), CimType::Boolean, false), "expected a boolean value, found an integer");
        assert_eq!(bad(ValueKind::Real(1e300), CimType::Real32, false), "real 1e300 is out of range for real32");
        assert_eq!(bad(ValueKind::Alias("x".into()), CimType::Reference, false), "undefined alias '$x'");
        assert_eq!(
            bad(ValueKind::Alias("x".into()), CimType::String, false),
            "alias '$x' can only be the value of a reference, not of a string"
        );
        assert_eq!(bad(ValueKind::Integer(1), CimType::UInt8, true), "expected an array of uint8 ('{...}'), found an integer");
        assert_eq!(bad(ValueKind::Array(vec![]), CimType::UInt8, false), "expected a single uint8 value, found an array");
        assert!(bad(ValueKind::String("yesterday".into()), CimType::DateTime, false).contains("yesterday"));
        assert!(bad(ValueKind::String("not a path".into()), CimType::Reference, false).contains("not a path"));
    }
}
