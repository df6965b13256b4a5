//! Qualifiers and qualifier declarations (DSP0004 5.6).

use super::{names_equal, CimType, CimValue};

/// Qualifier flavors. The defaults are those of DSP0004 and of the DSP0201 attribute defaults:
/// overridable, propagated to subclasses, not to instances, not translatable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flavors {
    pub overridable: bool,
    pub tosubclass: bool,
    /// Deprecated in DSP0004 but still part of the CIM-XML DTD.
    pub toinstance: bool,
    pub translatable: bool,
}

impl Default for Flavors {
    fn default() -> Self {
        Flavors { overridable: true, tosubclass: true, toinstance: false, translatable: false }
    }
}

/// A qualifier applied to a class, property, method or parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Qualifier {
    pub name: String,
    /// Kept next to the value because a NULL value has no type of its own.
    pub cim_type: CimType,
    pub is_array: bool,
    pub value: Option<CimValue>,
    /// True when inherited from a superclass rather than specified on this element.
    pub propagated: bool,
    pub flavors: Flavors,
}

impl Qualifier {
    /// A qualifier whose type follows its value, with default flavors.
    pub fn new(name: impl Into<String>, value: impl Into<CimValue>) -> Qualifier {
        let value = value.into();
        Qualifier {
            name: name.into(),
            cim_type: value.cim_type(),
            is_array: value.is_array(),
            value: Some(value),
            propagated: false,
            flavors: Flavors::default(),
        }
    }

    pub fn null(name: impl Into<String>, cim_type: CimType, is_array: bool) -> Qualifier {
        Qualifier { name: name.into(), cim_type, is_array, value: None, propagated: false, flavors: Flavors::default() }
    }

    pub fn with_flavors(mut self, flavors: Flavors) -> Qualifier {
        self.flavors = flavors;
        self
    }

    /// True for a boolean qualifier whose value is TRUE (`Key`, `Association`, `Abstract`...).
    pub fn is_true(&self) -> bool {
        matches!(self.value, Some(CimValue::Boolean(true)))
    }
}

/// The scopes a qualifier declaration allows (DSP0201 `SCOPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes {
    pub class: bool,
    pub association: bool,
    pub reference: bool,
    pub property: bool,
    pub method: bool,
    pub parameter: bool,
    pub indication: bool,
}

impl Scopes {
    /// `Scope(any)`.
    pub fn any() -> Scopes {
        Scopes { class: true, association: true, reference: true, property: true, method: true, parameter: true, indication: true }
    }

    pub fn is_any(&self) -> bool {
        *self == Scopes::any()
    }
}

/// A qualifier type declaration (`Qualifier Key : boolean = false, Scope(property, reference)`).
#[derive(Debug, Clone, PartialEq)]
pub struct QualifierDecl {
    pub name: String,
    pub cim_type: CimType,
    pub is_array: bool,
    pub array_size: Option<u32>,
    pub value: Option<CimValue>,
    pub scopes: Scopes,
    pub flavors: Flavors,
}

impl QualifierDecl {
    pub fn new(name: impl Into<String>, cim_type: CimType, is_array: bool) -> QualifierDecl {
        QualifierDecl {
            name: name.into(),
            cim_type,
            is_array,
            array_size: None,
            value: None,
            scopes: Scopes::default(),
            flavors: Flavors::default(),
        }
    }
}

/// Finds a qualifier by case-insensitive name.
pub fn find_qualifier<'a>(qualifiers: &'a [Qualifier], name: &str) -> Option<&'a Qualifier> {
    qualifiers.iter().find(|q| names_equal(&q.name, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifier_helpers() {
        let q = Qualifier::new("Key", true);
        assert!(q.is_true());
        assert_eq!(q.cim_type, CimType::Boolean);
        assert!(!Qualifier::new("Key", false).is_true());
        let list = vec![q, Qualifier::new("Description", "x")];
        assert!(find_qualifier(&list, "KEY").is_some());
        assert!(find_qualifier(&list, "Override").is_none());
        assert!(Scopes::any().is_any());
        assert!(!Scopes::default().is_any());
        assert!(Flavors::default().overridable && !Flavors::default().translatable);
    }
}
