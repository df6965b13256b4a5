//! Instance declarations (`instance of Class as $Alias { Prop = value; };`).

use std::collections::HashSet;

use crate::cim::{fold_name, Instance, KeyValue, ObjectPath, Property};

use super::ast::InstanceDecl;
use super::diag::SyntaxError;
use super::qualifiers::{lower_list, Element};
use super::repository::Namespace;
use super::values::{typed, Aliases, ScalarForArray};

/// What an instance declaration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Part of a schema: a complete instance of a concrete class, every key given; properties the
    /// MOF leaves out take the class default (or NULL).
    Static,
    /// A method parameter sent as MOF: only the properties given, keys optional.
    Embedded,
}

/// Compiles an instance declaration; the errors list every problem found.
pub fn compile_instance(decl: &InstanceDecl, ns: &Namespace, aliases: &Aliases, mode: Mode) -> Result<Instance, Vec<SyntaxError>> {
    let class_name = &decl.class_name;
    let Some(entry) = ns.class(&class_name.name) else {
        return Err(vec![SyntaxError::new(
            class_name.pos,
            format!("instance of undeclared class '{}' in namespace '{}'", class_name.name, ns.name),
        )]);
    };
    let class = &entry.resolved;
    let mut errors = Vec::new();
    if mode == Mode::Static && entry.local.is_abstract() {
        errors.push(SyntaxError::new(class_name.pos, format!("cannot declare an instance of abstract class '{}'", class.name)));
    }
    let decl_of = |n: &str| ns.qualifier(n).map(|(d, _)| d);
    let (qualifiers, qualifier_errors) = lower_list(&decl.qualifiers, Element::Instance, decl_of, &ns.name);
    errors.extend(qualifier_errors);

    let mut given: Vec<Property> = Vec::new();
    let mut seen = HashSet::new();
    for init in &decl.properties {
        let Some(cp) = class.property(&init.name.name) else {
            errors.push(SyntaxError::new(init.name.pos, format!("class '{}' has no property '{}'", class.name, init.name.name)));
            continue;
        };
        if !seen.insert(fold_name(&cp.name)) {
            errors.push(SyntaxError::new(init.name.pos, format!("property '{}' is given twice", init.name.name)));
            continue;
        }
        let value = match typed(&init.value, cp.cim_type, cp.is_array, aliases, ScalarForArray::Refuse) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (qualifiers, qualifier_errors) = lower_list(&init.qualifiers, Element::Instance, decl_of, &ns.name);
        errors.extend(qualifier_errors);
        given.push(Property { value, qualifiers, ..instance_property(cp) });
    }

    // Class order, so that the same instance always comes out the same way.
    let mut instance = Instance::new(class.name.clone());
    instance.qualifiers = qualifiers;
    for cp in &class.properties {
        if let Some(i) = given.iter().position(|g| fold_name(&g.name) == fold_name(&cp.name)) {
            instance.properties.push(given.swap_remove(i));
        } else if mode == Mode::Static {
            instance.properties.push(Property { value: cp.value.clone(), ..instance_property(cp) });
        }
    }

    let keys: Vec<&Property> = class.key_properties().collect();
    let missing: Vec<&str> = keys.iter().filter(|k| instance.value(&k.name).is_none()).map(|k| k.name.as_str()).collect();
    if mode == Mode::Static && !missing.is_empty() {
        errors.push(SyntaxError::new(
            decl.pos,
            format!(
                "instance of '{}' has no value for key propert{} {}",
                class.name,
                if missing.len() == 1 { "y" } else { "ies" },
                quoted(&missing)
            ),
        ));
    }
    if !keys.is_empty() && missing.is_empty() {
        let mut path = ObjectPath::new(Some(&ns.name), class.name.clone());
        for k in &keys {
            match instance.value(&k.name).and_then(KeyValue::from_value) {
                Some(kv) => path.keybindings.push((k.name.clone(), kv)),
                None => errors.push(SyntaxError::new(decl.pos, format!("key property '{}' has a value that cannot be a key", k.name))),
            }
        }
        instance.path = Some(path);
    }
    if errors.is_empty() {
        Ok(instance)
    } else {
        Err(errors)
    }
}

/// The path an alias on this instance stands for: its instance path, or the class path of a keyless
/// instance.
pub fn alias_target(instance: &Instance, namespace: &str) -> ObjectPath {
    instance.path.clone().unwrap_or_else(|| ObjectPath::new(Some(namespace), instance.class_name.clone()))
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

/// An instance property shaped after the class's declaration, without the class-level qualifiers.
fn instance_property(cp: &Property) -> Property {
    let mut p = Property::null(cp.name.clone(), cp.cim_type, cp.is_array);
    p.array_size = cp.array_size;
    p.reference_class = cp.reference_class.clone();
    p.embedded_object = cp.embedded_kind();
    p
}
