//! Intrinsic parameters with their DSP0200 defaults, and the checks every instance operation
//! shares: a path's class and keys, and the shaping of returned instances.

use crate::cim::{names_equal, CimError, CimValue, Class, Instance, KeyValue, ObjectPath, Property};
use crate::cimxml::IntrinsicCall;

use super::Inner;

/// Refuses parameters the operation does not define (DSP0200: CIM_ERR_INVALID_PARAMETER).
pub fn check_known(call: &IntrinsicCall, allowed: &[&str]) -> Result<(), CimError> {
    for (name, _) in &call.params {
        if !allowed.iter().any(|a| names_equal(a, name)) {
            return Err(CimError::invalid_parameter(format!("{} has no parameter {name}", call.name)));
        }
    }
    Ok(())
}

pub fn flag(call: &IntrinsicCall, name: &str, default: bool) -> Result<bool, CimError> {
    Ok(call.bool_param(name)?.unwrap_or(default))
}

pub fn required_class(call: &IntrinsicCall, name: &str) -> Result<String, CimError> {
    call.class_name_param(name)?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs the {name} parameter", call.name)))
}

pub fn required_instance_name(call: &IntrinsicCall, name: &str) -> Result<ObjectPath, CimError> {
    call.instance_name_param(name)?.ok_or_else(|| CimError::invalid_parameter(format!("{} needs the {name} parameter", call.name)))
}

/// How instances are shaped for the client.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    pub local_only: bool,
    pub include_qualifiers: bool,
    pub include_class_origin: bool,
    /// False: only the properties of the requested class (`requested_class`), even for
    /// instances of subclasses.
    pub deep_inheritance: bool,
    pub requested_class: Option<String>,
    pub property_list: Option<Vec<String>>,
}

impl InstanceOptions {
    /// The options of GetInstance / EnumerateInstances / Associators / Open*: LocalOnly reads as
    /// FALSE when omitted (see the module documentation of `ops`).
    pub fn from_call(call: &IntrinsicCall, deep_default: bool) -> Result<InstanceOptions, CimError> {
        Ok(InstanceOptions {
            local_only: flag(call, "LocalOnly", false)?,
            include_qualifiers: flag(call, "IncludeQualifiers", false)?,
            include_class_origin: flag(call, "IncludeClassOrigin", false)?,
            deep_inheritance: flag(call, "DeepInheritance", deep_default)?,
            requested_class: None,
            property_list: call.property_list_param("PropertyList")?,
        })
    }
}

impl Inner {
    /// The class of `name` in `ns`, or CIM_ERR_INVALID_CLASS.
    pub fn class(&self, ns: &str, name: &str) -> Result<&Class, CimError> {
        self.repo.get_class(ns, name).ok_or_else(|| CimError::invalid_class(format!("class {name} does not exist in namespace {ns}")))
    }

    /// Checks a client's instance path against its class (which must exist: CIM_ERR_INVALID_CLASS)
    /// and returns it in canonical form: the class's spelling of class and key names, key values
    /// in the key's type, the request's namespace. Missing, unknown or ill-typed keys are
    /// CIM_ERR_INVALID_PARAMETER.
    pub fn check_path(&self, ns: &str, path: &ObjectPath) -> Result<ObjectPath, CimError> {
        let class = self.class(ns, &path.class_name)?;
        let keys: Vec<&Property> = class.key_properties().collect();
        let mut out = ObjectPath::new(Some(ns), class.name.clone());
        let bindings: Vec<(String, KeyValue)> = match path.keybindings.as_slice() {
            [(name, v)] if name.is_empty() => match keys.as_slice() {
                [k] => vec![(k.name.clone(), v.clone())],
                _ => {
                    return Err(CimError::invalid_parameter(format!("an unnamed key value cannot identify an instance of {}", class.name)))
                }
            },
            other => other.to_vec(),
        };
        for (name, value) in &bindings {
            let Some(k) = keys.iter().find(|k| names_equal(&k.name, name)) else {
                return Err(CimError::invalid_parameter(format!("{name} is not a key property of {}", class.name)));
            };
            let coerced = if k.cim_type == crate::cim::CimType::Reference {
                match value {
                    KeyValue::Reference(_) => Some(value.clone()),
                    // Some clients send a reference key as its WBEM URI text.
                    KeyValue::String(s) => ObjectPath::parse(s).ok().map(|p| KeyValue::Reference(Box::new(p))),
                    _ => None,
                }
            } else {
                value.coerce(k.cim_type)
            };
            let Some(coerced) = coerced else {
                return Err(CimError::invalid_parameter(format!(
                    "key {} of {} must be a {}, not '{}'",
                    k.name,
                    class.name,
                    k.cim_type,
                    value.text()
                )));
            };
            out.keybindings.push((k.name.clone(), coerced));
        }
        for k in &keys {
            if out.key(&k.name).is_none() {
                return Err(CimError::invalid_parameter(format!("the path of a {} needs the key {}", class.name, k.name)));
            }
        }
        if keys.is_empty() && !bindings.is_empty() {
            return Err(CimError::invalid_parameter(format!("class {} has no key properties", class.name)));
        }
        Ok(out)
    }

    /// Shapes an instance from a provider for the client: the class's properties in the class's
    /// order and types (NULL where the provider gave none), filtered by the options, with a full
    /// path in `ns`.
    pub fn shape(&self, ns: &str, mut instance: Instance, opts: &InstanceOptions) -> Result<Instance, CimError> {
        let Some(class) = self.repo.get_class(ns, &instance.class_name) else {
            // Nothing to shape against; the provider's instance goes out as it is.
            instance.retain_properties(opts.property_list.as_deref());
            return Ok(instance);
        };
        let mut path = match instance.path.take() {
            Some(p) => p,
            None => instance.path_for(class, Some(ns))?,
        };
        if path.namespace.is_none() {
            path.namespace = Some(ns.to_string());
        }
        let requested = match (&opts.requested_class, opts.deep_inheritance) {
            (Some(r), false) if !names_equal(r, &class.name) => self.repo.get_class(ns, r),
            _ => None,
        };
        let mut given = std::mem::take(&mut instance.properties);
        let mut properties = Vec::with_capacity(class.properties.len());
        for decl in &class.properties {
            if let Some(r) = requested {
                if r.property(&decl.name).is_none() {
                    continue;
                }
            }
            if opts.local_only && decl.propagated {
                continue;
            }
            if let Some(list) = &opts.property_list {
                if !list.iter().any(|n| names_equal(n, &decl.name)) {
                    continue;
                }
            }
            let value = match given.iter().position(|p| names_equal(&p.name, &decl.name)) {
                Some(i) => given.swap_remove(i).value,
                None => None,
            };
            let value = match value {
                Some(v) if v.cim_type() != decl.cim_type || v.is_array() != decl.is_array => {
                    match v.convert(decl.cim_type, decl.is_array) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            tracing::debug!(class = %class.name, property = %decl.name, error = %e, "provider value does not fit the declared type");
                            Some(v)
                        }
                    }
                }
                v => v,
            };
            let mut p = Property::null(decl.name.clone(), decl.cim_type, decl.is_array);
            p.reference_class = decl.reference_class.clone();
            p.embedded_object = match &value {
                Some(CimValue::Instance(_)) | Some(CimValue::Class(_)) => value.as_ref().and_then(CimValue::embedded_kind),
                Some(CimValue::Array(a)) if a.values().any(|v| v.embedded_kind().is_some()) => {
                    value.as_ref().and_then(CimValue::embedded_kind)
                }
                _ => None,
            };
            p.value = value;
            if opts.include_class_origin {
                p.class_origin = decl.class_origin.clone();
            }
            if opts.include_qualifiers {
                p.qualifiers = decl.qualifiers.clone();
            }
            properties.push(p);
        }
        instance.properties = properties;
        instance.class_name = class.name.clone();
        if opts.include_qualifiers {
            instance.qualifiers = class.qualifiers.iter().filter(|q| q.flavors.toinstance).cloned().collect();
        } else {
            instance.qualifiers.clear();
        }
        instance.path = Some(path);
        Ok(instance)
    }
}
