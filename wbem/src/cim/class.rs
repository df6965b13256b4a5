//! Class definitions.

use super::qualifier::find_qualifier;
use super::{names_equal, Method, Property, Qualifier};

#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub name: String,
    pub superclass: Option<String>,
    pub qualifiers: Vec<Qualifier>,
    /// In declaration order, which CIM-XML output keeps.
    pub properties: Vec<Property>,
    pub methods: Vec<Method>,
}

impl Class {
    pub fn new(name: impl Into<String>, superclass: Option<String>) -> Class {
        Class { name: name.into(), superclass, qualifiers: Vec::new(), properties: Vec::new(), methods: Vec::new() }
    }

    pub fn with_qualifier(mut self, q: Qualifier) -> Class {
        self.qualifiers.push(q);
        self
    }

    pub fn with_property(mut self, p: Property) -> Class {
        self.properties.push(p);
        self
    }

    pub fn with_method(mut self, m: Method) -> Class {
        self.methods.push(m);
        self
    }

    pub fn qualifier(&self, name: &str) -> Option<&Qualifier> {
        find_qualifier(&self.qualifiers, name)
    }

    fn flag(&self, name: &str) -> bool {
        self.qualifier(name).is_some_and(Qualifier::is_true)
    }

    pub fn is_association(&self) -> bool {
        self.flag("Association")
    }

    pub fn is_indication(&self) -> bool {
        self.flag("Indication")
    }

    pub fn is_abstract(&self) -> bool {
        self.flag("Abstract")
    }

    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| names_equal(&p.name, name))
    }

    pub fn property_mut(&mut self, name: &str) -> Option<&mut Property> {
        self.properties.iter_mut().find(|p| names_equal(&p.name, name))
    }

    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| names_equal(&m.name, name))
    }

    /// Properties qualified `Key`, in declaration order.
    pub fn key_properties(&self) -> impl Iterator<Item = &Property> {
        self.properties.iter().filter(|p| p.is_key())
    }

    /// Reference properties (the roles of an association).
    pub fn reference_properties(&self) -> impl Iterator<Item = &Property> {
        self.properties.iter().filter(|p| p.cim_type == super::CimType::Reference)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CimType, Qualifier};
    use super::*;

    #[test]
    fn helpers() {
        let c = Class::new("Xen_HostedDependency", Some("CIM_HostedDependency".into()))
            .with_qualifier(Qualifier::new("Association", true))
            .with_property(
                Property::reference("Antecedent", Some("CIM_ComputerSystem".into()), None).with_qualifier(Qualifier::new("Key", true)),
            )
            .with_property(Property::null("Note", CimType::String, false));
        assert!(c.is_association());
        assert!(!c.is_indication() && !c.is_abstract());
        assert_eq!(c.key_properties().count(), 1);
        assert_eq!(c.reference_properties().count(), 1);
        assert!(c.property("antecedent").is_some());
        assert!(c.method("x").is_none());
    }
}
