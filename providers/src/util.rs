//! Conversions between the model's values and CIM values: times, programmatic units, the
//! properties of instances that clients send, and the model's errors in words.

use std::time::Duration;

use wbem::cim::{CimDateTime, CimError, CimValue, Instance, Interval, Timestamp};
use xenapi::datamodel::{class, vm, ClassId};
use xenapi::db::Data;
use xenapi::error::ApiError;

/// A Xen-API datetime (`20240131T12:00:00Z`) as a CIM timestamp; the epoch and empty values, which
/// the model uses for "never", are NULL.
pub fn timestamp(xapi: &str) -> Option<CimDateTime> {
    let dt = parse_xapi_time(xapi)?;
    Timestamp::from_datetime(&dt).map(CimDateTime::Timestamp)
}

pub fn parse_xapi_time(xapi: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let naive = chrono::NaiveDateTime::parse_from_str(xapi, "%Y%m%dT%H:%M:%SZ").ok()?;
    let dt = naive.and_utc();
    (dt.timestamp() > 0).then_some(dt)
}

/// Time since a Xen-API datetime, or zero.
pub fn since(xapi: &str) -> Duration {
    parse_xapi_time(xapi).and_then(|t| (chrono::Utc::now() - t).to_std().ok()).unwrap_or_default()
}

pub fn interval(d: Duration) -> CimDateTime {
    CimDateTime::Interval(Interval::from_duration(d).unwrap_or_else(|| Interval::new(99_999_999, 23, 59, 59, 999_999).unwrap()))
}

/// The programmatic units (DSP0004 annex C) of a byte quantity, as a multiplier; also the
/// legacy names older clients send (`KiloBytes`, `MB`, ...). `None` when not a byte unit.
pub fn byte_units(units: &str) -> Option<u64> {
    let u: String = units.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let simple = match u.as_str() {
        "byte" | "bytes" | "b" => Some(1),
        "kilobyte" | "kilobytes" | "kb" | "kib" => Some(1 << 10),
        "megabyte" | "megabytes" | "mb" | "mib" => Some(1 << 20),
        "gigabyte" | "gigabytes" | "gb" | "gib" => Some(1 << 30),
        "terabyte" | "terabytes" | "tb" | "tib" => Some(1 << 40),
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    let rest = u.strip_prefix("bytes*").or_else(|| u.strip_prefix("byte*"))?;
    let (base, exp) = rest.split_once('^')?;
    let base: u64 = match base {
        "2" => 2,
        "10" => 10,
        _ => return None,
    };
    let exp: u32 = exp.parse().ok()?;
    base.checked_pow(exp)
}

/// Whether a property was given a value (NULL counts as not given).
pub fn has(i: &Instance, name: &str) -> bool {
    i.value(name).is_some()
}

/// The text of a scalar property.
pub fn text(i: &Instance, name: &str) -> Option<String> {
    match i.value(name)? {
        CimValue::String(s) => Some(s.clone()),
        CimValue::Array(a) => a.values().next().and_then(CimValue::scalar_text),
        v => v.scalar_text(),
    }
}

/// The strings of a property that may be an array or a scalar.
pub fn texts(i: &Instance, name: &str) -> Vec<String> {
    match i.value(name) {
        Some(CimValue::Array(a)) => a.values().filter_map(CimValue::scalar_text).collect(),
        Some(v) => v.scalar_text().into_iter().collect(),
        None => Vec::new(),
    }
}

/// An unsigned integer property; numbers sent as strings are accepted (MOF and old clients).
pub fn uint(i: &Instance, name: &str, context: &str) -> Result<Option<u64>, CimError> {
    let Some(v) = i.value(name) else { return Ok(None) };
    let n = match v {
        CimValue::String(s) => s.trim().parse::<i128>().ok(),
        v => v.as_integer(),
    };
    match n {
        Some(n) if n >= 0 && n <= i128::from(u64::MAX) => Ok(Some(n as u64)),
        _ => Err(CimError::invalid_parameter(format!("{context}: {name} must be an unsigned integer, not {}", describe(v)))),
    }
}

pub fn boolean(i: &Instance, name: &str, context: &str) -> Result<Option<bool>, CimError> {
    match i.value(name) {
        None => Ok(None),
        Some(CimValue::Boolean(b)) => Ok(Some(*b)),
        Some(CimValue::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(CimValue::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(CimError::invalid_parameter(format!("{context}: {name} must be a boolean, not {}", describe(v)))),
    }
}

fn describe(v: &CimValue) -> String {
    v.scalar_text().map(|t| format!("'{t}'")).unwrap_or_else(|| format!("a {}", v.cim_type()))
}

/// A human reading of a model error, with the refs of VMs replaced by their uuid and name so
/// that a CIM client can tell which object it is about: `VM_BAD_POWER_STATE: vm=VM 6f1c...
/// (web1), expected=running, actual=halted`.
pub fn describe_error(data: &Data, e: &ApiError) -> String {
    let names = xenapi::error::declared_args(&e.code).unwrap_or(&[]);
    let args: Vec<String> = e
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let value = describe_ref(data, a).unwrap_or_else(|| a.clone());
            match names.get(i) {
                Some(n) => format!("{n}={value}"),
                None => value,
            }
        })
        .collect();
    if args.is_empty() {
        e.code.clone()
    } else {
        format!("{}: {}", e.code, args.join(", "))
    }
}

fn describe_ref(data: &Data, r: &str) -> Option<String> {
    if !r.starts_with("OpaqueRef:") {
        return None;
    }
    let classes: [(ClassId, &str); 5] =
        [(class::VM, "VM"), (class::VBD, "VBD"), (class::VIF, "VIF"), (class::VDI, "VDI"), (class::task, "task")];
    for (c, label) in classes {
        if let Some(row) = data.row(c, r) {
            let uuid = row.str(xenapi::datamodel::FieldId(0));
            return Some(if c == class::VM { format!("{label} {uuid} ({})", row.str(vm::NAME_LABEL)) } else { format!("{label} {uuid}") });
        }
    }
    None
}

/// CIM_ERR_INVALID_PARAMETER naming where the bad value is.
pub fn invalid(context: &str, property: &str, why: impl std::fmt::Display) -> CimError {
    CimError::invalid_parameter(format!("{context}: {property} {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programmatic_units() {
        for (u, m) in [
            ("byte", 1),
            ("byte*2^20", 1 << 20),
            ("byte * 2^30", 1 << 30),
            ("Bytes*2^10", 1 << 10),
            ("byte*10^6", 1_000_000),
            ("KiloBytes", 1024),
            ("MegaBytes", 1 << 20),
            ("GB", 1 << 30),
        ] {
            assert_eq!(byte_units(u), Some(m), "{u}");
        }
        for u in ["count", "percent", "byte*3^2", "byte*2^x", "hertz*10^6", "byte*2^99"] {
            assert_eq!(byte_units(u), None, "{u}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(timestamp("19700101T00:00:00Z"), None);
        assert_eq!(timestamp(""), None);
        assert_eq!(timestamp("20240131T12:34:56Z").unwrap().to_string(), "20240131123456.000000+000");
        assert_eq!(interval(Duration::from_secs(90061)).to_string(), "00000001010101.000000:000");
    }

    #[test]
    fn integers_from_any_encoding() {
        let i = Instance::new("X").with("A", 5u16).with("B", "7").with("C", -1i32).with("D", "x");
        assert_eq!(uint(&i, "A", "t").unwrap(), Some(5));
        assert_eq!(uint(&i, "B", "t").unwrap(), Some(7));
        assert_eq!(uint(&i, "E", "t").unwrap(), None);
        assert!(uint(&i, "C", "t").unwrap_err().description.contains("C must be an unsigned integer"));
        assert!(uint(&i, "D", "t").is_err());
    }
}
