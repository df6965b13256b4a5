//! Intrinsic parameters with their DSP0200 defaults, and the checks every instance operation
//! shares: a path's class and keys, and the shaping of returned instances.

use crate::cim::{names_equal, CimError, CimValue, Class, Instance, KeyValue, ObjectPath, Property};
use crate::cimxml::IntrinsicCall;
use crate::mof::Repository;
use std::sync::Arc;

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

/// Classes already looked up during one operation, by the spelling the instances use.
#[derive(Default)]
pub struct ClassCache {
    entries: Vec<(String, String, Option<Arc<Class>>)>,
    last_layout: Option<Layout>,
}

/// A class name, the provider's property names in order, and where each class property is.
type Layout = (String, Vec<String>, Arc<Vec<Option<usize>>>);

impl ClassCache {
    pub fn get(&mut self, repo: &Repository, ns: &str, name: &str) -> Option<Arc<Class>> {
        if let Some((_, _, c)) = self.entries.iter().find(|(n, c, _)| n == ns && c == name) {
            return c.clone();
        }
        let found = repo.get_class(ns, name).map(|c| Arc::new(c.clone()));
        // A handful of classes per operation; the bound only guards against pathological streams.
        if self.entries.len() < 64 {
            self.entries.push((ns.to_string(), name.to_string(), found.clone()));
        }
        found
    }

    /// For each property of `class`, the index of the provider's property of that name in
    /// `given`. Instances of one class from one provider have the same property names in the
    /// same order, so the answer for the previous instance is checked by exact comparison and
    /// reused; only a different layout pays the case-insensitive matching.
    pub fn layout(&mut self, class: &Class, given: &[Property]) -> Arc<Vec<Option<usize>>> {
        if let Some((c, names, map)) = &self.last_layout {
            if *c == class.name && names.len() == given.len() && names.iter().zip(given).all(|(n, p)| *n == p.name) {
                return map.clone();
            }
        }
        let map: Vec<Option<usize>> = class.properties.iter().map(|d| given.iter().position(|p| names_equal(&p.name, &d.name))).collect();
        let map = Arc::new(map);
        self.last_layout = Some((class.name.clone(), given.iter().map(|p| p.name.clone()).collect(), map.clone()));
        map
    }
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
    pub fn shape(&self, ns: &str, instance: Instance, opts: &InstanceOptions) -> Result<Instance, CimError> {
        self.shape_cached(ns, instance, opts, &mut ClassCache::default())
    }

    /// [`Inner::shape`] for a stream of instances: the classes are looked up once.
    pub fn shape_cached(
        &self,
        ns: &str,
        mut instance: Instance,
        opts: &InstanceOptions,
        cache: &mut ClassCache,
    ) -> Result<Instance, CimError> {
        let Some(class) = cache.get(&self.repo, ns, &instance.class_name) else {
            // Nothing to shape against; the provider's instance goes out as it is.
            instance.retain_properties(opts.property_list.as_deref());
            return Ok(instance);
        };
        let mut path = match instance.path.take() {
            Some(p) => p,
            None => instance.path_for(&class, Some(ns))?,
        };
        if path.namespace.is_none() {
            path.namespace = Some(ns.to_string());
        }
        let requested = match (&opts.requested_class, opts.deep_inheritance) {
            (Some(r), false) if !names_equal(r, &class.name) => cache.get(&self.repo, ns, r),
            _ => None,
        };
        let given = std::mem::take(&mut instance.properties);
        let layout = cache.layout(&class, &given);
        let mut slots: Vec<Option<Property>> = given.into_iter().map(Some).collect();
        let mut properties = Vec::with_capacity(class.properties.len());
        for (di, decl) in class.properties.iter().enumerate() {
            if let Some(r) = &requested {
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
            // The provider's property is reused (its name and value allocations with it).
            let mut p = match layout[di].and_then(|gi| slots[gi].take()) {
                Some(mut p) => {
                    if p.name != decl.name {
                        p.name.clone_from(&decl.name);
                    }
                    p.cim_type = decl.cim_type;
                    p.is_array = decl.is_array;
                    p.array_size = None;
                    p.qualifiers.clear();
                    p.class_origin = None;
                    p.propagated = false;
                    p
                }
                None => Property::null(decl.name.clone(), decl.cim_type, decl.is_array),
            };
            let value = p.value.take();
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
            p.reference_class.clone_from(&decl.reference_class);
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
