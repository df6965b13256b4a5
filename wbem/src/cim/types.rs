//! CIM data types (DSP0004 section 5.2) as they appear in CIM-XML `TYPE` attributes.

use std::fmt;
use std::str::FromStr;

/// The intrinsic CIM data types.
///
/// Embedded objects and instances are not a type of their own: DSP0004 models them as `string` properties
/// carrying an `EmbeddedObject` or `EmbeddedInstance` qualifier (see [`EmbeddedKind`]). The class a
/// reference points to lives next to the type (`reference_class` on properties and parameters), so that
/// this enum stays `Copy` and comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CimType {
    Boolean,
    String,
    Char16,
    UInt8,
    SInt8,
    UInt16,
    SInt16,
    UInt32,
    SInt32,
    UInt64,
    SInt64,
    Real32,
    Real64,
    DateTime,
    Reference,
}

impl CimType {
    pub const ALL: [CimType; 15] = [
        CimType::Boolean,
        CimType::String,
        CimType::Char16,
        CimType::UInt8,
        CimType::SInt8,
        CimType::UInt16,
        CimType::SInt16,
        CimType::UInt32,
        CimType::SInt32,
        CimType::UInt64,
        CimType::SInt64,
        CimType::Real32,
        CimType::Real64,
        CimType::DateTime,
        CimType::Reference,
    ];

    /// The lower-case spelling used by CIM-XML and MOF (`uint32`, `datetime`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CimType::Boolean => "boolean",
            CimType::String => "string",
            CimType::Char16 => "char16",
            CimType::UInt8 => "uint8",
            CimType::SInt8 => "sint8",
            CimType::UInt16 => "uint16",
            CimType::SInt16 => "sint16",
            CimType::UInt32 => "uint32",
            CimType::SInt32 => "sint32",
            CimType::UInt64 => "uint64",
            CimType::SInt64 => "sint64",
            CimType::Real32 => "real32",
            CimType::Real64 => "real64",
            CimType::DateTime => "datetime",
            CimType::Reference => "reference",
        }
    }

    /// Parses a type name; MOF keywords are case-insensitive, so this is too.
    pub fn from_name(name: &str) -> Option<CimType> {
        CimType::ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            CimType::UInt8
                | CimType::SInt8
                | CimType::UInt16
                | CimType::SInt16
                | CimType::UInt32
                | CimType::SInt32
                | CimType::UInt64
                | CimType::SInt64
        )
    }

    pub fn is_real(self) -> bool {
        matches!(self, CimType::Real32 | CimType::Real64)
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer() || self.is_real()
    }

    /// Inclusive value range of an integer type, `None` for the other types.
    pub fn integer_range(self) -> Option<(i128, i128)> {
        Some(match self {
            CimType::UInt8 => (0, u8::MAX as i128),
            CimType::SInt8 => (i8::MIN as i128, i8::MAX as i128),
            CimType::UInt16 => (0, u16::MAX as i128),
            CimType::SInt16 => (i16::MIN as i128, i16::MAX as i128),
            CimType::UInt32 => (0, u32::MAX as i128),
            CimType::SInt32 => (i32::MIN as i128, i32::MAX as i128),
            CimType::UInt64 => (0, u64::MAX as i128),
            CimType::SInt64 => (i64::MIN as i128, i64::MAX as i128),
            _ => return None,
        })
    }
}

impl fmt::Display for CimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CimType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CimType::from_name(s).ok_or_else(|| format!("unknown CIM type '{s}'"))
    }
}

/// What a string-typed element embeds (DSP0004 `EmbeddedObject` / `EmbeddedInstance` qualifiers;
/// DSP0201 `EmbeddedObject="object|instance"` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddedKind {
    /// A class or an instance (`EmbeddedObject` qualifier).
    Object,
    /// An instance (`EmbeddedInstance("ClassName")` qualifier).
    Instance,
}

impl EmbeddedKind {
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedKind::Object => "object",
            EmbeddedKind::Instance => "instance",
        }
    }

    pub fn from_name(s: &str) -> Option<EmbeddedKind> {
        if s.eq_ignore_ascii_case("object") {
            Some(EmbeddedKind::Object)
        } else if s.eq_ignore_ascii_case("instance") {
            Some(EmbeddedKind::Instance)
        } else {
            None
        }
    }
}

impl fmt::Display for EmbeddedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for t in CimType::ALL {
            assert_eq!(CimType::from_name(t.name()), Some(t));
            assert_eq!(CimType::from_name(&t.name().to_uppercase()), Some(t));
        }
        assert_eq!(CimType::from_name("uint128"), None);
        assert_eq!("DateTime".parse::<CimType>(), Ok(CimType::DateTime));
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(CimType::SInt8.integer_range(), Some((-128, 127)));
        assert_eq!(CimType::UInt64.integer_range(), Some((0, u64::MAX as i128)));
        assert_eq!(CimType::Real32.integer_range(), None);
        assert!(CimType::Real64.is_numeric() && !CimType::Real64.is_integer());
    }
}
