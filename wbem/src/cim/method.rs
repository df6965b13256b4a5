//! Methods and their parameters.

use super::qualifier::find_qualifier;
use super::{names_equal, CimType, EmbeddedKind, Qualifier};

#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub cim_type: CimType,
    pub is_array: bool,
    pub array_size: Option<u32>,
    pub reference_class: Option<String>,
    pub qualifiers: Vec<Qualifier>,
}

impl Parameter {
    pub fn new(name: impl Into<String>, cim_type: CimType, is_array: bool) -> Parameter {
        Parameter { name: name.into(), cim_type, is_array, array_size: None, reference_class: None, qualifiers: Vec::new() }
    }

    pub fn with_qualifier(mut self, q: Qualifier) -> Parameter {
        self.qualifiers.push(q);
        self
    }

    pub fn qualifier(&self, name: &str) -> Option<&Qualifier> {
        find_qualifier(&self.qualifiers, name)
    }

    /// `In` defaults to true in DSP0004.
    pub fn is_in(&self) -> bool {
        self.qualifier("In").is_none_or(|q| q.value.is_none() || q.is_true())
    }

    /// `Out` defaults to false.
    pub fn is_out(&self) -> bool {
        self.qualifier("Out").is_some_and(Qualifier::is_true)
    }

    pub fn embedded_kind(&self) -> Option<EmbeddedKind> {
        if self.qualifier("EmbeddedInstance").is_some_and(|q| q.value.is_some()) {
            Some(EmbeddedKind::Instance)
        } else if self.qualifier("EmbeddedObject").is_some_and(Qualifier::is_true) {
            Some(EmbeddedKind::Object)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub name: String,
    pub return_type: CimType,
    pub parameters: Vec<Parameter>,
    pub qualifiers: Vec<Qualifier>,
    pub class_origin: Option<String>,
    pub propagated: bool,
}

impl Method {
    pub fn new(name: impl Into<String>, return_type: CimType) -> Method {
        Method { name: name.into(), return_type, parameters: Vec::new(), qualifiers: Vec::new(), class_origin: None, propagated: false }
    }

    pub fn with_parameter(mut self, p: Parameter) -> Method {
        self.parameters.push(p);
        self
    }

    pub fn qualifier(&self, name: &str) -> Option<&Qualifier> {
        find_qualifier(&self.qualifiers, name)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| names_equal(&p.name, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_out_defaults() {
        let p = Parameter::new("RequestedState", CimType::UInt16, false);
        assert!(p.is_in() && !p.is_out());
        let out = Parameter::new("Job", CimType::Reference, false)
            .with_qualifier(Qualifier::new("IN", false))
            .with_qualifier(Qualifier::new("Out", true));
        assert!(!out.is_in() && out.is_out());
        let m = Method::new("RequestStateChange", CimType::UInt32).with_parameter(out);
        assert!(m.parameter("job").is_some());
        assert!(m.parameter("Timeout").is_none());
    }
}
