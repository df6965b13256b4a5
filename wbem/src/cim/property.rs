//! Properties of classes and instances.

use super::qualifier::find_qualifier;
use super::{CimType, CimValue, EmbeddedKind, Qualifier};

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub cim_type: CimType,
    pub is_array: bool,
    pub array_size: Option<u32>,
    pub value: Option<CimValue>,
    pub qualifiers: Vec<Qualifier>,
    /// The class that first declared the property (`CLASSORIGIN`).
    pub class_origin: Option<String>,
    /// True when inherited unchanged from a superclass (`PROPAGATED`).
    pub propagated: bool,
    /// For references: the class the reference points to (`REFERENCECLASS`).
    pub reference_class: Option<String>,
    /// CIM-XML's `EmbeddedObject` attribute; classes usually say it with qualifiers instead, see
    /// [`Property::embedded_kind`].
    pub embedded_object: Option<EmbeddedKind>,
}

impl Property {
    /// A property whose type follows its value.
    pub fn new(name: impl Into<String>, value: impl Into<CimValue>) -> Property {
        let value = value.into();
        Property {
            name: name.into(),
            cim_type: value.cim_type(),
            is_array: value.is_array(),
            array_size: None,
            embedded_object: value.embedded_kind(),
            value: Some(value),
            qualifiers: Vec::new(),
            class_origin: None,
            propagated: false,
            reference_class: None,
        }
    }

    /// A NULL-valued property of the given type.
    pub fn null(name: impl Into<String>, cim_type: CimType, is_array: bool) -> Property {
        Property {
            name: name.into(),
            cim_type,
            is_array,
            array_size: None,
            value: None,
            qualifiers: Vec::new(),
            class_origin: None,
            propagated: false,
            reference_class: None,
            embedded_object: None,
        }
    }

    /// A reference property declaration.
    pub fn reference(name: impl Into<String>, reference_class: Option<String>, value: Option<super::ObjectPath>) -> Property {
        let mut p = Property::null(name, CimType::Reference, false);
        p.reference_class = reference_class;
        p.value = value.map(CimValue::Reference);
        p
    }

    pub fn with_qualifier(mut self, q: Qualifier) -> Property {
        self.qualifiers.push(q);
        self
    }

    pub fn qualifier(&self, name: &str) -> Option<&Qualifier> {
        find_qualifier(&self.qualifiers, name)
    }

    pub fn is_key(&self) -> bool {
        self.qualifier("Key").is_some_and(Qualifier::is_true)
    }

    /// Whether the property embeds objects, from the `EmbeddedObject` attribute or the
    /// `EmbeddedObject` / `EmbeddedInstance` qualifiers.
    pub fn embedded_kind(&self) -> Option<EmbeddedKind> {
        if self.embedded_object.is_some() {
            return self.embedded_object;
        }
        if self.qualifier("EmbeddedInstance").is_some_and(|q| q.value.is_some()) {
            return Some(EmbeddedKind::Instance);
        }
        if self.qualifier("EmbeddedObject").is_some_and(Qualifier::is_true) {
            return Some(EmbeddedKind::Object);
        }
        self.value.as_ref().and_then(CimValue::embedded_kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_kind_sources() {
        let plain = Property::null("P", CimType::String, false);
        assert_eq!(plain.embedded_kind(), None);
        let by_qualifier = plain.clone().with_qualifier(Qualifier::new("EmbeddedInstance", "CIM_X"));
        assert_eq!(by_qualifier.embedded_kind(), Some(EmbeddedKind::Instance));
        let by_object = plain.clone().with_qualifier(Qualifier::new("EmbeddedObject", true));
        assert_eq!(by_object.embedded_kind(), Some(EmbeddedKind::Object));
        let by_value = Property::new("P", super::super::Instance::new("CIM_X"));
        assert_eq!(by_value.embedded_kind(), Some(EmbeddedKind::Instance));
        assert_eq!(by_value.cim_type, CimType::String);
        assert!(Property::null("K", CimType::String, false).with_qualifier(Qualifier::new("key", true)).is_key());
    }
}
