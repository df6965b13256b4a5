//! Element tree → CIM objects, for every DSP0201 element the operations use. Structure errors are
//! `Invalid` (the DTD is broken); bad value text is `Value` (the caller answers INVALID_PARAMETER).

use super::error::{DecodeError, DecodeKind};
use super::tree::{self, Element, ParseLimits};
use crate::cim::{
    names_equal, CimError, CimStatus, CimType, CimValue, Class, EmbeddedKind, Flavors, Instance, KeyValue, Method, ObjectPath, Parameter,
    Property, Qualifier, QualifierDecl, Scopes,
};

pub(crate) type DResult<T> = Result<T, DecodeError>;

/// A class or an instance, with the path it came with (`VALUE.OBJECT*` elements, embedded objects).
#[derive(Debug, Clone, PartialEq)]
pub enum CimObject {
    Class { path: Option<ObjectPath>, class: Class },
    Instance(Instance),
}

fn expect(el: &Element, name: &str) -> DResult<()> {
    if el.name == name {
        Ok(())
    } else {
        Err(DecodeError::invalid(format!("expected element {name}, found {}", el.name)))
    }
}

fn no_text(el: &Element) -> DResult<()> {
    if el.text.trim().is_empty() {
        Ok(())
    } else {
        Err(DecodeError::invalid(format!("element {} has unexpected text content", el.name)))
    }
}

fn no_children(el: &Element) -> DResult<()> {
    match el.children.first() {
        None => Ok(()),
        Some(c) => Err(DecodeError::invalid(format!("element {} may not contain element {}", el.name, c.name))),
    }
}

fn only_children(el: &Element, allowed: &[&str]) -> DResult<()> {
    no_text(el)?;
    match el.children.iter().find(|c| !allowed.contains(&c.name.as_str())) {
        None => Ok(()),
        Some(c) => Err(DecodeError::invalid(format!(
            "element {} may not contain element {} (allowed: {})",
            el.name,
            c.name,
            if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
        ))),
    }
}

fn exactly_one_child<'e>(el: &'e Element, allowed: &[&str]) -> DResult<&'e Element> {
    only_children(el, allowed)?;
    match el.children.as_slice() {
        [one] => Ok(one),
        [] => Err(DecodeError::invalid(format!("element {} needs one of: {}", el.name, allowed.join(", ")))),
        _ => Err(DecodeError::invalid(format!("element {} has more than one child element", el.name))),
    }
}

fn optional_child<'e>(el: &'e Element, allowed: &[&str]) -> DResult<Option<&'e Element>> {
    only_children(el, allowed)?;
    match el.children.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(DecodeError::invalid(format!("element {} has more than one child element", el.name))),
    }
}

fn two_children<'e>(el: &'e Element, first: &[&str], second: &[&str]) -> DResult<(&'e Element, &'e Element)> {
    no_text(el)?;
    match el.children.as_slice() {
        [a, b] if first.contains(&a.name.as_str()) && second.contains(&b.name.as_str()) => Ok((a, b)),
        _ => Err(DecodeError::invalid(format!("element {} must contain ({}) then ({})", el.name, first.join(" | "), second.join(" | ")))),
    }
}

pub(crate) fn req_attr<'e>(el: &'e Element, attr: &str) -> DResult<&'e str> {
    el.attr(attr).ok_or_else(|| DecodeError::invalid(format!("element {} lacks the {attr} attribute", el.name)))
}

fn bool_attr(el: &Element, attr: &str, default: bool) -> DResult<bool> {
    match el.attr(attr) {
        None => Ok(default),
        Some(v) if v.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(DecodeError::invalid(format!("attribute {attr} of {} must be true or false, not '{v}'", el.name))),
    }
}

fn u32_attr(el: &Element, attr: &str) -> DResult<Option<u32>> {
    el.attr(attr)
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| DecodeError::invalid(format!("attribute {attr} of {} must be an unsigned integer, not '{v}'", el.name)))
        })
        .transpose()
}

pub(crate) fn parse_type(el: &Element, text: &str) -> DResult<CimType> {
    CimType::from_name(text.trim()).ok_or_else(|| DecodeError::invalid(format!("element {} has unknown type '{text}'", el.name)))
}

fn type_attr(el: &Element) -> DResult<CimType> {
    let ty = parse_type(el, req_attr(el, "TYPE")?)?;
    if ty == CimType::Reference {
        return Err(DecodeError::invalid(format!("element {} cannot have TYPE reference", el.name)));
    }
    Ok(ty)
}

/// DSP0201 2.2 spells the attribute `EmbeddedObject`; older senders used `EMBEDDEDOBJECT`.
pub(crate) fn embedded_attr(el: &Element) -> DResult<Option<EmbeddedKind>> {
    match el.attr("EmbeddedObject").or_else(|| el.attr("EMBEDDEDOBJECT")) {
        None => Ok(None),
        Some(v) => EmbeddedKind::from_name(v.trim())
            .map(Some)
            .ok_or_else(|| DecodeError::invalid(format!("EmbeddedObject of {} must be object or instance, not '{v}'", el.name))),
    }
}

fn named(el: &Element) -> DResult<&str> {
    let name = req_attr(el, "NAME")?;
    if name.is_empty() {
        return Err(DecodeError::invalid(format!("element {} has an empty NAME", el.name)));
    }
    Ok(name)
}

fn flavors(el: &Element) -> DResult<Flavors> {
    let d = Flavors::default();
    Ok(Flavors {
        overridable: bool_attr(el, "OVERRIDABLE", d.overridable)?,
        tosubclass: bool_attr(el, "TOSUBCLASS", d.tosubclass)?,
        toinstance: bool_attr(el, "TOINSTANCE", d.toinstance)?,
        translatable: bool_attr(el, "TRANSLATABLE", d.translatable)?,
    })
}

fn unique_names<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> DResult<()> {
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        if seen.iter().any(|s| names_equal(s, n)) {
            return Err(DecodeError::value(format!("{what} '{n}' appears twice")));
        }
        seen.push(n);
    }
    Ok(())
}

/// Decodes elements; carries the limits so that embedded objects can be parsed with the same ones.
pub(crate) struct Decoder<'l> {
    pub limits: &'l ParseLimits,
    pub embed_level: usize,
}

impl Decoder<'_> {
    pub fn new(limits: &ParseLimits) -> Decoder<'_> {
        Decoder { limits, embed_level: 0 }
    }

    pub fn value_text(&self, el: &Element) -> DResult<String> {
        expect(el, "VALUE")?;
        no_children(el)?;
        Ok(el.text.clone())
    }

    pub fn value_array_texts(&self, el: &Element) -> DResult<Vec<Option<String>>> {
        expect(el, "VALUE.ARRAY")?;
        only_children(el, &["VALUE", "VALUE.NULL"])?;
        el.children
            .iter()
            .map(|c| match c.name.as_str() {
                "VALUE" => self.value_text(c).map(Some),
                _ => no_children(c).and(no_text(c)).map(|_| None),
            })
            .collect()
    }

    /// An embedded object arrives as escaped CIM-XML in a string; MOF text stays a string for a later
    /// layer to read.
    pub fn embedded_value(&self, text: &str) -> DResult<CimValue> {
        if !text.trim_start().starts_with('<') {
            return Ok(CimValue::String(text.to_string()));
        }
        Ok(match self.embedded_object(text)? {
            CimObject::Instance(i) => CimValue::Instance(Box::new(i)),
            CimObject::Class { class, .. } => CimValue::Class(Box::new(class)),
        })
    }

    pub fn embedded_object(&self, text: &str) -> DResult<CimObject> {
        if self.embed_level >= self.limits.max_embedding {
            return Err(DecodeError::value(format!("embedded objects nested deeper than {}", self.limits.max_embedding)));
        }
        let root = tree::parse(text, self.limits).map_err(|e| DecodeError::value(format!("embedded object: {}", e.description)))?;
        let inner = Decoder { limits: self.limits, embed_level: self.embed_level + 1 };
        let object = match root.name.as_str() {
            "INSTANCE" => inner.instance(&root).map(CimObject::Instance),
            "CLASS" => inner.class(&root).map(|class| CimObject::Class { path: None, class }),
            other => Err(DecodeError::invalid(format!("an embedded object is an INSTANCE or a CLASS, not {other}"))),
        };
        // Whatever is wrong inside an embedded object is wrong with the value that carries it.
        object.map_err(|e| DecodeError { kind: DecodeKind::Value, message: format!("embedded object: {}", e.message) })
    }

    fn scalar(&self, text: &str, ty: CimType, embedded: Option<EmbeddedKind>) -> DResult<CimValue> {
        if embedded.is_some() && ty == CimType::String {
            return self.embedded_value(text);
        }
        CimValue::parse_scalar(ty, text).map_err(|e| DecodeError::value(e.0))
    }

    /// A `VALUE` or `VALUE.ARRAY` read as `ty`.
    pub fn typed_value(&self, el: &Element, ty: CimType, embedded: Option<EmbeddedKind>) -> DResult<CimValue> {
        match el.name.as_str() {
            "VALUE" => self.scalar(&self.value_text(el)?, ty, embedded),
            "VALUE.ARRAY" => {
                let mut elements = Vec::new();
                for (i, item) in self.value_array_texts(el)?.into_iter().enumerate() {
                    elements.push(match item {
                        None => None,
                        Some(text) => Some(self.scalar(&text, ty, embedded).map_err(|e| e.within(format!("element {i}")))?),
                    });
                }
                crate::cim::CimArray::new(ty, elements).map(CimValue::Array).map_err(|e| DecodeError::value(e.0))
            }
            other => Err(DecodeError::invalid(format!("expected VALUE or VALUE.ARRAY, found {other}"))),
        }
    }

    pub fn namespace(&self, el: &Element) -> DResult<String> {
        expect(el, "NAMESPACE")?;
        only_children(el, &[])?;
        Ok(named(el)?.to_string())
    }

    pub fn local_namespace_path(&self, el: &Element) -> DResult<String> {
        expect(el, "LOCALNAMESPACEPATH")?;
        only_children(el, &["NAMESPACE"])?;
        if el.children.is_empty() {
            return Err(DecodeError::invalid("LOCALNAMESPACEPATH needs at least one NAMESPACE"));
        }
        let parts = el.children.iter().map(|c| self.namespace(c)).collect::<DResult<Vec<_>>>()?;
        Ok(parts.join("/"))
    }

    pub fn host(&self, el: &Element) -> DResult<String> {
        expect(el, "HOST")?;
        no_children(el)?;
        Ok(el.text.trim().to_string())
    }

    pub fn namespace_path(&self, el: &Element) -> DResult<(Option<String>, String)> {
        expect(el, "NAMESPACEPATH")?;
        let (h, ns) = two_children(el, &["HOST"], &["LOCALNAMESPACEPATH"])?;
        let host = self.host(h)?;
        Ok(((!host.is_empty()).then_some(host), self.local_namespace_path(ns)?))
    }

    pub fn class_name(&self, el: &Element) -> DResult<String> {
        expect(el, "CLASSNAME")?;
        only_children(el, &[])?;
        Ok(named(el)?.to_string())
    }

    pub fn class_path(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "CLASSPATH")?;
        let (nsp, cn) = two_children(el, &["NAMESPACEPATH"], &["CLASSNAME"])?;
        let (host, ns) = self.namespace_path(nsp)?;
        Ok(ObjectPath::new(Some(&ns), self.class_name(cn)?).with_host(host))
    }

    pub fn local_class_path(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "LOCALCLASSPATH")?;
        let (nsp, cn) = two_children(el, &["LOCALNAMESPACEPATH"], &["CLASSNAME"])?;
        let ns = self.local_namespace_path(nsp)?;
        Ok(ObjectPath::new(Some(&ns), self.class_name(cn)?))
    }

    pub fn key_value(&self, el: &Element) -> DResult<KeyValue> {
        expect(el, "KEYVALUE")?;
        no_children(el)?;
        let cim_type = match el.attr("TYPE") {
            None | Some("") => None,
            Some(t) => Some(parse_type(el, t)?),
        };
        let value_type = match el.attr("VALUETYPE") {
            Some(v) => v.trim().to_ascii_lowercase(),
            None => match cim_type {
                Some(CimType::Boolean) => "boolean".into(),
                Some(t) if t.is_numeric() => "numeric".into(),
                _ => "string".into(),
            },
        };
        let text = &el.text;
        match value_type.as_str() {
            "string" => Ok(KeyValue::String(text.clone())),
            "boolean" => match CimValue::parse_scalar(CimType::Boolean, text) {
                Ok(CimValue::Boolean(b)) => Ok(KeyValue::Boolean(b)),
                _ => Err(DecodeError::value(format!("KEYVALUE '{text}' is not a boolean"))),
            },
            "numeric" => {
                let check = cim_type.filter(|t| t.is_numeric()).unwrap_or(CimType::Real64);
                let parsed = CimValue::parse_scalar(check, text)
                    .or_else(|e| if cim_type.is_none() { CimValue::parse_scalar(CimType::SInt64, text) } else { Err(e) })
                    .or_else(|e| if cim_type.is_none() { CimValue::parse_scalar(CimType::UInt64, text) } else { Err(e) });
                match parsed {
                    Ok(_) => Ok(KeyValue::Numeric { text: text.trim().to_string(), cim_type }),
                    Err(e) => Err(DecodeError::value(format!("KEYVALUE: {e}"))),
                }
            }
            other => Err(DecodeError::invalid(format!("KEYVALUE has unknown VALUETYPE '{other}'"))),
        }
    }

    pub fn key_binding(&self, el: &Element) -> DResult<(String, KeyValue)> {
        expect(el, "KEYBINDING")?;
        let name = named(el)?;
        let child = exactly_one_child(el, &["KEYVALUE", "VALUE.REFERENCE"])?;
        let value = match child.name.as_str() {
            "KEYVALUE" => self.key_value(child),
            _ => self.value_reference(child).map(|p| KeyValue::Reference(Box::new(p))),
        }
        .map_err(|e| e.within(format!("KEYBINDING \"{name}\"")))?;
        Ok((name.to_string(), value))
    }

    pub fn instance_name(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "INSTANCENAME")?;
        let class_name = req_attr(el, "CLASSNAME")?;
        let mut path = ObjectPath::new(None, class_name);
        only_children(el, &["KEYBINDING", "KEYVALUE", "VALUE.REFERENCE"])?;
        match el.children.as_slice() {
            [] => {}
            [one] if one.name == "KEYVALUE" => path.keybindings.push((String::new(), self.key_value(one)?)),
            [one] if one.name == "VALUE.REFERENCE" => {
                path.keybindings.push((String::new(), KeyValue::Reference(Box::new(self.value_reference(one)?))))
            }
            many => {
                for c in many {
                    if c.name != "KEYBINDING" {
                        return Err(DecodeError::invalid("INSTANCENAME holds KEYBINDINGs, or one KEYVALUE or VALUE.REFERENCE"));
                    }
                    path.keybindings.push(self.key_binding(c)?);
                }
                unique_names("keybinding", path.keybindings.iter().map(|(n, _)| n.as_str()))?;
            }
        }
        Ok(path)
    }

    pub fn instance_path(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "INSTANCEPATH")?;
        let (nsp, name) = two_children(el, &["NAMESPACEPATH"], &["INSTANCENAME"])?;
        let (host, ns) = self.namespace_path(nsp)?;
        Ok(self.instance_name(name)?.with_namespace(Some(&ns)).with_host(host))
    }

    pub fn local_instance_path(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "LOCALINSTANCEPATH")?;
        let (nsp, name) = two_children(el, &["LOCALNAMESPACEPATH"], &["INSTANCENAME"])?;
        let ns = self.local_namespace_path(nsp)?;
        Ok(self.instance_name(name)?.with_namespace(Some(&ns)))
    }

    pub fn value_reference(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "VALUE.REFERENCE")?;
        let child =
            exactly_one_child(el, &["CLASSPATH", "LOCALCLASSPATH", "CLASSNAME", "INSTANCEPATH", "LOCALINSTANCEPATH", "INSTANCENAME"])?;
        match child.name.as_str() {
            "CLASSPATH" => self.class_path(child),
            "LOCALCLASSPATH" => self.local_class_path(child),
            "CLASSNAME" => self.class_name(child).map(|n| ObjectPath::new(None, n)),
            "INSTANCEPATH" => self.instance_path(child),
            "LOCALINSTANCEPATH" => self.local_instance_path(child),
            _ => self.instance_name(child),
        }
    }

    pub fn value_refarray(&self, el: &Element) -> DResult<Vec<Option<ObjectPath>>> {
        expect(el, "VALUE.REFARRAY")?;
        only_children(el, &["VALUE.REFERENCE", "VALUE.NULL"])?;
        el.children
            .iter()
            .map(|c| match c.name.as_str() {
                "VALUE.REFERENCE" => self.value_reference(c).map(Some),
                _ => no_children(c).map(|_| None),
            })
            .collect()
    }

    pub fn object_path(&self, el: &Element) -> DResult<ObjectPath> {
        expect(el, "OBJECTPATH")?;
        let child = exactly_one_child(el, &["INSTANCEPATH", "CLASSPATH"])?;
        match child.name.as_str() {
            "INSTANCEPATH" => self.instance_path(child),
            _ => self.class_path(child),
        }
    }

    pub fn qualifier(&self, el: &Element) -> DResult<Qualifier> {
        expect(el, "QUALIFIER")?;
        let name = named(el)?;
        let cim_type = type_attr(el)?;
        let value_el = optional_child(el, &["VALUE", "VALUE.ARRAY"])?;
        let value =
            value_el.map(|v| self.typed_value(v, cim_type, None)).transpose().map_err(|e| e.within(format!("QUALIFIER \"{name}\"")))?;
        Ok(Qualifier {
            name: name.to_string(),
            cim_type,
            is_array: value_el.is_some_and(|v| v.name == "VALUE.ARRAY"),
            value,
            propagated: bool_attr(el, "PROPAGATED", false)?,
            flavors: flavors(el)?,
        })
    }

    fn qualifiers(&self, el: &Element) -> DResult<Vec<Qualifier>> {
        let qualifiers = el.children.iter().filter(|c| c.name == "QUALIFIER").map(|c| self.qualifier(c)).collect::<DResult<Vec<_>>>()?;
        unique_names("qualifier", qualifiers.iter().map(|q| q.name.as_str()))?;
        Ok(qualifiers)
    }

    pub fn scope(&self, el: &Element) -> DResult<Scopes> {
        expect(el, "SCOPE")?;
        only_children(el, &[])?;
        Ok(Scopes {
            class: bool_attr(el, "CLASS", false)?,
            association: bool_attr(el, "ASSOCIATION", false)?,
            reference: bool_attr(el, "REFERENCE", false)?,
            property: bool_attr(el, "PROPERTY", false)?,
            method: bool_attr(el, "METHOD", false)?,
            parameter: bool_attr(el, "PARAMETER", false)?,
            indication: bool_attr(el, "INDICATION", false)?,
        })
    }

    pub fn qualifier_declaration(&self, el: &Element) -> DResult<QualifierDecl> {
        expect(el, "QUALIFIER.DECLARATION")?;
        let name = named(el)?;
        let cim_type = type_attr(el)?;
        only_children(el, &["SCOPE", "VALUE", "VALUE.ARRAY"])?;
        let mut decl = QualifierDecl::new(name, cim_type, bool_attr(el, "ISARRAY", false)?);
        decl.array_size = u32_attr(el, "ARRAYSIZE")?;
        decl.flavors = flavors(el)?;
        let mut scope_seen = false;
        for c in &el.children {
            if c.name == "SCOPE" {
                if scope_seen {
                    return Err(DecodeError::invalid("QUALIFIER.DECLARATION has two SCOPE elements"));
                }
                scope_seen = true;
                decl.scopes = self.scope(c)?;
            } else {
                if decl.value.is_some() {
                    return Err(DecodeError::invalid("QUALIFIER.DECLARATION has two values"));
                }
                if (c.name == "VALUE.ARRAY") != decl.is_array {
                    return Err(DecodeError::invalid(format!("QUALIFIER.DECLARATION {name}: ISARRAY does not match its {}", c.name)));
                }
                decl.value = Some(self.typed_value(c, cim_type, None).map_err(|e| e.within(format!("QUALIFIER.DECLARATION \"{name}\"")))?);
            }
        }
        Ok(decl)
    }

    pub fn property(&self, el: &Element) -> DResult<Property> {
        let name = named(el)?;
        self.property_inner(el, name).map_err(|e| e.within(format!("{} \"{name}\"", el.name)))
    }

    fn property_inner(&self, el: &Element, name: &str) -> DResult<Property> {
        let (cim_type, is_array, value_names): (CimType, bool, &[&str]) = match el.name.as_str() {
            "PROPERTY" => (type_attr(el)?, false, &["VALUE"]),
            "PROPERTY.ARRAY" => (type_attr(el)?, true, &["VALUE.ARRAY"]),
            "PROPERTY.REFERENCE" => (CimType::Reference, false, &["VALUE.REFERENCE"]),
            other => return Err(DecodeError::invalid(format!("expected a PROPERTY element, found {other}"))),
        };
        let mut allowed = vec!["QUALIFIER"];
        allowed.extend_from_slice(value_names);
        only_children(el, &allowed)?;
        let values: Vec<&Element> = el.children.iter().filter(|c| c.name != "QUALIFIER").collect();
        if values.len() > 1 {
            return Err(DecodeError::invalid(format!("{} has more than one value", el.name)));
        }
        let embedded_object = if cim_type == CimType::Reference { None } else { embedded_attr(el)? };
        let value = match values.first() {
            None => None,
            Some(v) if cim_type == CimType::Reference => Some(CimValue::Reference(self.value_reference(v)?)),
            Some(v) => Some(self.typed_value(v, cim_type, embedded_object)?),
        };
        Ok(Property {
            name: name.to_string(),
            cim_type,
            is_array,
            array_size: if is_array { u32_attr(el, "ARRAYSIZE")? } else { None },
            value,
            qualifiers: self.qualifiers(el)?,
            class_origin: el.attr("CLASSORIGIN").map(str::to_string),
            propagated: bool_attr(el, "PROPAGATED", false)?,
            reference_class: if cim_type == CimType::Reference { el.attr("REFERENCECLASS").map(str::to_string) } else { None },
            embedded_object,
        })
    }

    fn properties(&self, el: &Element) -> DResult<Vec<Property>> {
        let properties =
            el.children.iter().filter(|c| c.name.starts_with("PROPERTY")).map(|c| self.property(c)).collect::<DResult<Vec<_>>>()?;
        unique_names("property", properties.iter().map(|p| p.name.as_str()))?;
        Ok(properties)
    }

    pub fn parameter(&self, el: &Element) -> DResult<Parameter> {
        let name = named(el)?;
        only_children(el, &["QUALIFIER"])?;
        let (cim_type, is_array) = match el.name.as_str() {
            "PARAMETER" => (type_attr(el)?, false),
            "PARAMETER.ARRAY" => (type_attr(el)?, true),
            "PARAMETER.REFERENCE" => (CimType::Reference, false),
            "PARAMETER.REFARRAY" => (CimType::Reference, true),
            other => return Err(DecodeError::invalid(format!("expected a PARAMETER element, found {other}"))),
        };
        Ok(Parameter {
            name: name.to_string(),
            cim_type,
            is_array,
            array_size: if is_array { u32_attr(el, "ARRAYSIZE")? } else { None },
            reference_class: if cim_type == CimType::Reference { el.attr("REFERENCECLASS").map(str::to_string) } else { None },
            qualifiers: self.qualifiers(el).map_err(|e| e.within(format!("{} \"{name}\"", el.name)))?,
        })
    }

    pub fn method(&self, el: &Element) -> DResult<Method> {
        expect(el, "METHOD")?;
        let name = named(el)?;
        only_children(el, &["QUALIFIER", "PARAMETER", "PARAMETER.REFERENCE", "PARAMETER.ARRAY", "PARAMETER.REFARRAY"])?;
        let inner = || -> DResult<Method> {
            let parameters =
                el.children.iter().filter(|c| c.name.starts_with("PARAMETER")).map(|c| self.parameter(c)).collect::<DResult<Vec<_>>>()?;
            unique_names("parameter", parameters.iter().map(|p| p.name.as_str()))?;
            Ok(Method {
                name: name.to_string(),
                return_type: type_attr(el)?,
                parameters,
                qualifiers: self.qualifiers(el)?,
                class_origin: el.attr("CLASSORIGIN").map(str::to_string),
                propagated: bool_attr(el, "PROPAGATED", false)?,
            })
        };
        inner().map_err(|e| e.within(format!("METHOD \"{name}\"")))
    }

    pub fn class(&self, el: &Element) -> DResult<Class> {
        expect(el, "CLASS")?;
        let name = named(el)?;
        only_children(el, &["QUALIFIER", "PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE", "METHOD"])?;
        let inner = || -> DResult<Class> {
            let methods = el.children.iter().filter(|c| c.name == "METHOD").map(|c| self.method(c)).collect::<DResult<Vec<_>>>()?;
            unique_names("method", methods.iter().map(|m| m.name.as_str()))?;
            Ok(Class {
                name: name.to_string(),
                superclass: el.attr("SUPERCLASS").filter(|s| !s.is_empty()).map(str::to_string),
                qualifiers: self.qualifiers(el)?,
                properties: self.properties(el)?,
                methods,
            })
        };
        inner().map_err(|e| e.within(format!("CLASS \"{name}\"")))
    }

    pub fn instance(&self, el: &Element) -> DResult<Instance> {
        expect(el, "INSTANCE")?;
        let class_name = req_attr(el, "CLASSNAME")?;
        only_children(el, &["QUALIFIER", "PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE"])?;
        let inner = || -> DResult<Instance> {
            Ok(Instance {
                class_name: class_name.to_string(),
                properties: self.properties(el)?,
                qualifiers: self.qualifiers(el)?,
                path: None,
            })
        };
        inner().map_err(|e| e.within(format!("INSTANCE \"{class_name}\"")))
    }

    pub fn value_named_instance(&self, el: &Element) -> DResult<Instance> {
        expect(el, "VALUE.NAMEDINSTANCE")?;
        let (name, inst) = two_children(el, &["INSTANCENAME"], &["INSTANCE"])?;
        Ok(self.instance(inst)?.with_path(self.instance_name(name)?))
    }

    pub fn value_instance_with_path(&self, el: &Element) -> DResult<Instance> {
        expect(el, "VALUE.INSTANCEWITHPATH")?;
        let (path, inst) = two_children(el, &["INSTANCEPATH"], &["INSTANCE"])?;
        Ok(self.instance(inst)?.with_path(self.instance_path(path)?))
    }

    pub fn value_object_with_path(&self, el: &Element) -> DResult<CimObject> {
        expect(el, "VALUE.OBJECTWITHPATH")?;
        let (path, object) = two_children(el, &["CLASSPATH", "INSTANCEPATH"], &["CLASS", "INSTANCE"])?;
        match (path.name.as_str(), object.name.as_str()) {
            ("CLASSPATH", "CLASS") => Ok(CimObject::Class { path: Some(self.class_path(path)?), class: self.class(object)? }),
            ("INSTANCEPATH", "INSTANCE") => Ok(CimObject::Instance(self.instance(object)?.with_path(self.instance_path(path)?))),
            _ => Err(DecodeError::invalid("VALUE.OBJECTWITHPATH pairs CLASSPATH with CLASS or INSTANCEPATH with INSTANCE")),
        }
    }

    pub fn value_object_with_local_path(&self, el: &Element) -> DResult<CimObject> {
        expect(el, "VALUE.OBJECTWITHLOCALPATH")?;
        let (path, object) = two_children(el, &["LOCALCLASSPATH", "LOCALINSTANCEPATH"], &["CLASS", "INSTANCE"])?;
        match (path.name.as_str(), object.name.as_str()) {
            ("LOCALCLASSPATH", "CLASS") => Ok(CimObject::Class { path: Some(self.local_class_path(path)?), class: self.class(object)? }),
            ("LOCALINSTANCEPATH", "INSTANCE") => Ok(CimObject::Instance(self.instance(object)?.with_path(self.local_instance_path(path)?))),
            _ => Err(DecodeError::invalid("VALUE.OBJECTWITHLOCALPATH pairs LOCALCLASSPATH with CLASS or LOCALINSTANCEPATH with INSTANCE")),
        }
    }

    pub fn value_object(&self, el: &Element) -> DResult<CimObject> {
        expect(el, "VALUE.OBJECT")?;
        let child = exactly_one_child(el, &["CLASS", "INSTANCE"])?;
        match child.name.as_str() {
            "CLASS" => Ok(CimObject::Class { path: None, class: self.class(child)? }),
            _ => Ok(CimObject::Instance(self.instance(child)?)),
        }
    }

    pub fn error(&self, el: &Element) -> DResult<CimError> {
        expect(el, "ERROR")?;
        only_children(el, &["INSTANCE"])?;
        let code_text = req_attr(el, "CODE")?;
        let code: u32 = code_text.trim().parse().map_err(|_| DecodeError::invalid(format!("ERROR CODE '{code_text}' is not a number")))?;
        let mut description = el.attr("DESCRIPTION").unwrap_or("").to_string();
        let status = CimStatus::from_code(code).unwrap_or_else(|| {
            description = format!("(status code {code}) {description}");
            CimStatus::Failed
        });
        let instances = el.children.iter().map(|c| self.instance(c)).collect::<DResult<Vec<_>>>()?;
        Ok(CimError { status, description, instances })
    }
}

/// Decodes an embedded object sent as CIM-XML text (`<INSTANCE ...>` or `<CLASS ...>`), for the layer
/// that interprets `EmbeddedInstance` method parameters.
pub fn decode_embedded_object(text: &str) -> Result<CimObject, CimError> {
    let limits = ParseLimits::default();
    Decoder::new(&limits).embedded_object(text).map_err(|e| CimError::invalid_parameter(e.message))
}
