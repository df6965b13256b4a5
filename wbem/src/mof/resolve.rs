//! Inheritance: merges a class's own declaration with its resolved superclass.
//!
//! The rules (DSP0004 5.1.2.*, 5.6.1.*): every property and method of the superclass is inherited
//! unless the subclass overrides it by name; an inherited element keeps its `class_origin` and is
//! marked `propagated`; an overriding element takes the subclass as its origin. Qualifiers with the
//! ToSubclass flavor flow down to the subclass and to overriding elements, marked `propagated`, unless
//! the subclass gives them again; Restricted ones (Abstract, Override, Version...) stay where they
//! were written. Validity checks (Override naming nothing, DisableOverride) happen before this, where
//! the source positions are known.

use crate::cim::{names_equal, Class, Method, Parameter, Property, Qualifier};

/// Qualifiers an element ends up with: inherited ToSubclass ones in their order (replaced by the local
/// value where the element gives one), then the element's own new ones.
pub fn merge_qualifiers(inherited: &[Qualifier], local: &[Qualifier]) -> Vec<Qualifier> {
    let mut out: Vec<Qualifier> = inherited
        .iter()
        .filter(|q| q.flavors.tosubclass)
        .map(|q| match local.iter().find(|l| names_equal(&l.name, &q.name)) {
            Some(l) => l.clone(),
            None => Qualifier { propagated: true, ..q.clone() },
        })
        .collect();
    for l in local {
        if !out.iter().any(|o| names_equal(&o.name, &l.name)) {
            out.push(l.clone());
        }
    }
    out
}

fn inherited_property(p: &Property) -> Property {
    Property { propagated: true, qualifiers: merge_qualifiers(&p.qualifiers, &[]), ..p.clone() }
}

fn overriding_property(parent: &Property, local: &Property) -> Property {
    Property { qualifiers: merge_qualifiers(&parent.qualifiers, &local.qualifiers), ..local.clone() }
}

fn inherited_method(m: &Method) -> Method {
    Method {
        propagated: true,
        qualifiers: merge_qualifiers(&m.qualifiers, &[]),
        parameters: m.parameters.iter().map(|p| Parameter { qualifiers: merge_qualifiers(&p.qualifiers, &[]), ..p.clone() }).collect(),
        ..m.clone()
    }
}

fn overriding_method(parent: &Method, local: &Method) -> Method {
    let parameters = local
        .parameters
        .iter()
        .map(|p| match parent.parameter(&p.name) {
            Some(pp) => Parameter { qualifiers: merge_qualifiers(&pp.qualifiers, &p.qualifiers), ..p.clone() },
            None => p.clone(),
        })
        .collect();
    Method { qualifiers: merge_qualifiers(&parent.qualifiers, &local.qualifiers), parameters, ..local.clone() }
}

/// The resolved form of `local` (whose elements already carry `class_origin`) given its resolved
/// superclass. Inherited elements come first, in the superclass's order, overridden ones in place.
pub fn resolve(local: &Class, superclass: Option<&Class>) -> Class {
    let Some(sup) = superclass else { return local.clone() };
    let mut properties: Vec<Property> = sup
        .properties
        .iter()
        .map(|p| match local.property(&p.name) {
            Some(l) => overriding_property(p, l),
            None => inherited_property(p),
        })
        .collect();
    properties.extend(local.properties.iter().filter(|l| sup.property(&l.name).is_none()).cloned());
    let mut methods: Vec<Method> = sup
        .methods
        .iter()
        .map(|m| match local.method(&m.name) {
            Some(l) => overriding_method(m, l),
            None => inherited_method(m),
        })
        .collect();
    methods.extend(local.methods.iter().filter(|l| sup.method(&l.name).is_none()).cloned());
    Class {
        name: local.name.clone(),
        superclass: local.superclass.clone(),
        qualifiers: merge_qualifiers(&sup.qualifiers, &local.qualifiers),
        properties,
        methods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cim::{CimType, Flavors};

    fn restricted(q: Qualifier) -> Qualifier {
        q.with_flavors(Flavors { tosubclass: false, ..Flavors::default() })
    }

    fn prop(name: &str, origin: &str) -> Property {
        let mut p = Property::null(name, CimType::String, false);
        p.class_origin = Some(origin.into());
        p
    }

    #[test]
    fn inheritance_merges_elements_and_flavors() {
        let base = Class::new("CIM_A", None)
            .with_qualifier(Qualifier::new("Description", "base"))
            .with_qualifier(restricted(Qualifier::new("Abstract", true)))
            .with_property(
                prop("Name", "CIM_A").with_qualifier(Qualifier::new("Key", true)).with_qualifier(Qualifier::new("MaxLen", 256u32)),
            )
            .with_property(prop("Caption", "CIM_A").with_qualifier(restricted(Qualifier::new("Deprecated", vec!["x"]))))
            .with_method(
                Method::new("Go", CimType::UInt32)
                    .with_parameter(Parameter::new("How", CimType::UInt16, false).with_qualifier(Qualifier::new("In", true))),
            );
        let local = Class::new("Xen_B", Some("CIM_A".into()))
            .with_qualifier(Qualifier::new("Version", "1"))
            .with_property(
                prop("Name", "Xen_B")
                    .with_qualifier(restricted(Qualifier::new("Override", "Name")))
                    .with_qualifier(Qualifier::new("MaxLen", 64u32)),
            )
            .with_property(prop("UUID", "Xen_B"))
            .with_method(Method::new("Go", CimType::UInt32).with_parameter(Parameter::new("How", CimType::UInt16, false)));
        let r = resolve(&local, Some(&base));

        let names: Vec<_> = r.qualifiers.iter().map(|q| (q.name.as_str(), q.propagated)).collect();
        assert_eq!(names, [("Description", true), ("Version", false)]);
        let props: Vec<_> = r.properties.iter().map(|p| (p.name.as_str(), p.class_origin.as_deref().unwrap(), p.propagated)).collect();
        assert_eq!(props, [("Name", "Xen_B", false), ("Caption", "CIM_A", true), ("UUID", "Xen_B", false)]);

        let name = r.property("Name").unwrap();
        assert!(name.is_key());
        assert!(name.qualifier("Key").unwrap().propagated);
        assert_eq!(name.qualifier("MaxLen").unwrap().value, Some(64u32.into()));
        assert!(!name.qualifier("MaxLen").unwrap().propagated);
        assert!(name.qualifier("Override").is_some());
        assert!(r.property("Caption").unwrap().qualifiers.is_empty(), "restricted qualifiers stay in the superclass");

        let go = r.method("Go").unwrap();
        assert!(!go.propagated);
        assert!(go.parameter("How").unwrap().qualifier("In").unwrap().propagated);

        // One level further down everything is inherited, and the restricted Override is gone.
        let leaf = resolve(&Class::new("Xen_C", Some("Xen_B".into())), Some(&r));
        assert!(leaf.properties.iter().all(|p| p.propagated));
        assert!(leaf.property("Name").unwrap().qualifier("Override").is_none());
        assert_eq!(leaf.property("Name").unwrap().class_origin.as_deref(), Some("Xen_B"));
        assert!(leaf.method("Go").unwrap().propagated);
        assert!(leaf.qualifier("Version").is_some(), "Version is ToSubclass unless its declaration says Restricted");
    }
}
