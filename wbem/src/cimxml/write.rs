//! Writers for the DSP0201 elements, straight into a byte buffer (no DOM).
//!
//! Nothing is ever written as a self-closing tag: sblim wbemcli cannot read `<VALUE/>` (nor, by the
//! same code path, empty-element forms of PROPERTY, PARAMETER or KEYVALUE), so empty elements are
//! always `<X ...></X>`.

use super::decode::CimObject;
use super::escape;
use crate::cim::{
    CimError, CimType, CimValue, Class, Flavors, Instance, KeyValue, Method, ObjectPath, Parameter, Property, Qualifier, QualifierDecl,
};

/// What class and instance elements include, following the IncludeQualifiers, IncludeClassOrigin and
/// LocalOnly parameters. PropertyList filtering is the caller's (see `Instance::retain_properties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectOptions {
    pub include_qualifiers: bool,
    pub include_class_origin: bool,
    /// Leave out propagated (inherited) properties and methods of a class.
    pub local_only: bool,
}

impl ObjectOptions {
    /// Everything the object carries.
    pub const FULL: ObjectOptions = ObjectOptions { include_qualifiers: true, include_class_origin: true, local_only: false };
}

/// The host written in `INSTANCEPATH` / `CLASSPATH` when a path has none (the element requires one).
pub const DEFAULT_HOST: &str = "localhost";

fn start(out: &mut Vec<u8>, name: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
}

fn attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape::attr(out, value);
    out.push(b'"');
}

fn gt(out: &mut Vec<u8>) {
    out.push(b'>');
}

fn end(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

/// `<NAME attr="v"...></NAME>` with nothing inside.
fn empty(out: &mut Vec<u8>, name: &str, attrs: &[(&str, &str)]) {
    start(out, name);
    for (k, v) in attrs {
        attr(out, k, v);
    }
    gt(out);
    end(out, name);
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The escaped CIM-XML of an embedded instance or class, as the text of a string value.
pub fn embedded_text(value: &CimValue) -> Option<String> {
    let mut inner = Vec::new();
    match value {
        CimValue::Instance(i) => instance(&mut inner, i, &ObjectOptions::FULL),
        CimValue::Class(c) => class(&mut inner, c, &ObjectOptions::FULL),
        _ => return None,
    }
    // The writer only produces UTF-8.
    Some(String::from_utf8(inner).unwrap_or_default())
}

fn scalar_value(out: &mut Vec<u8>, v: &CimValue) {
    out.extend_from_slice(b"<VALUE>");
    match v {
        // The common case, without a copy of the string.
        CimValue::String(s) => escape::text(out, s),
        v => {
            if let Some(text) = embedded_text(v).or_else(|| v.scalar_text()) {
                escape::text(out, &text);
            }
        }
    }
    out.extend_from_slice(b"</VALUE>");
}

/// `VALUE`, `VALUE.ARRAY`, `VALUE.REFERENCE` or `VALUE.REFARRAY`, whichever the value needs.
pub fn value(out: &mut Vec<u8>, v: &CimValue) {
    match v {
        CimValue::Reference(p) => value_reference(out, p),
        CimValue::Array(a) if a.element_type() == CimType::Reference => {
            out.extend_from_slice(b"<VALUE.REFARRAY>");
            for e in a.elements() {
                match e {
                    Some(CimValue::Reference(p)) => value_reference(out, p),
                    _ => empty(out, "VALUE.NULL", &[]),
                }
            }
            out.extend_from_slice(b"</VALUE.REFARRAY>");
        }
        CimValue::Array(a) => {
            out.extend_from_slice(b"<VALUE.ARRAY>");
            for e in a.elements() {
                match e {
                    Some(v) => scalar_value(out, v),
                    None => empty(out, "VALUE.NULL", &[]),
                }
            }
            out.extend_from_slice(b"</VALUE.ARRAY>");
        }
        v => scalar_value(out, v),
    }
}

/// An untyped `VALUE` with the given text.
pub fn value_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"<VALUE>");
    escape::text(out, text);
    out.extend_from_slice(b"</VALUE>");
}

/// An untyped `VALUE.ARRAY`.
pub fn value_array_text(out: &mut Vec<u8>, items: &[Option<String>]) {
    out.extend_from_slice(b"<VALUE.ARRAY>");
    for item in items {
        match item {
            Some(t) => value_text(out, t),
            None => empty(out, "VALUE.NULL", &[]),
        }
    }
    out.extend_from_slice(b"</VALUE.ARRAY>");
}

pub fn local_namespace_path(out: &mut Vec<u8>, namespace: &str) {
    out.extend_from_slice(b"<LOCALNAMESPACEPATH>");
    for part in namespace.split('/').filter(|p| !p.is_empty()) {
        empty(out, "NAMESPACE", &[("NAME", part)]);
    }
    out.extend_from_slice(b"</LOCALNAMESPACEPATH>");
}

pub fn namespace_path(out: &mut Vec<u8>, host: Option<&str>, namespace: &str) {
    out.extend_from_slice(b"<NAMESPACEPATH><HOST>");
    escape::text(out, host.unwrap_or(DEFAULT_HOST));
    out.extend_from_slice(b"</HOST>");
    local_namespace_path(out, namespace);
    out.extend_from_slice(b"</NAMESPACEPATH>");
}

pub fn class_name(out: &mut Vec<u8>, name: &str) {
    empty(out, "CLASSNAME", &[("NAME", name)]);
}

pub fn class_path(out: &mut Vec<u8>, path: &ObjectPath) {
    out.extend_from_slice(b"<CLASSPATH>");
    namespace_path(out, path.host.as_deref(), path.namespace.as_deref().unwrap_or_default());
    class_name(out, &path.class_name);
    out.extend_from_slice(b"</CLASSPATH>");
}

pub fn local_class_path(out: &mut Vec<u8>, path: &ObjectPath) {
    out.extend_from_slice(b"<LOCALCLASSPATH>");
    local_namespace_path(out, path.namespace.as_deref().unwrap_or_default());
    class_name(out, &path.class_name);
    out.extend_from_slice(b"</LOCALCLASSPATH>");
}

pub fn key_value(out: &mut Vec<u8>, kv: &KeyValue) {
    match kv {
        KeyValue::Reference(p) => value_reference(out, p),
        KeyValue::String(s) => {
            start(out, "KEYVALUE");
            attr(out, "VALUETYPE", "string");
            attr(out, "TYPE", "string");
            gt(out);
            escape::text(out, s);
            end(out, "KEYVALUE");
        }
        KeyValue::Boolean(b) => {
            start(out, "KEYVALUE");
            attr(out, "VALUETYPE", "boolean");
            attr(out, "TYPE", "boolean");
            gt(out);
            out.extend_from_slice(if *b { b"TRUE" } else { b"FALSE" });
            end(out, "KEYVALUE");
        }
        KeyValue::Numeric { text, cim_type } => {
            start(out, "KEYVALUE");
            attr(out, "VALUETYPE", "numeric");
            if let Some(t) = cim_type {
                attr(out, "TYPE", t.name());
            }
            gt(out);
            escape::text(out, text);
            end(out, "KEYVALUE");
        }
    }
}

pub fn instance_name(out: &mut Vec<u8>, path: &ObjectPath) {
    start(out, "INSTANCENAME");
    attr(out, "CLASSNAME", &path.class_name);
    gt(out);
    match path.keybindings.as_slice() {
        // The unnamed single key of DSP0201's INSTANCENAME (KEYVALUE? | VALUE.REFERENCE?) form.
        [(name, kv)] if name.is_empty() => key_value(out, kv),
        keys => {
            for (name, kv) in keys {
                start(out, "KEYBINDING");
                attr(out, "NAME", name);
                gt(out);
                key_value(out, kv);
                end(out, "KEYBINDING");
            }
        }
    }
    end(out, "INSTANCENAME");
}

pub fn instance_path(out: &mut Vec<u8>, path: &ObjectPath) {
    out.extend_from_slice(b"<INSTANCEPATH>");
    namespace_path(out, path.host.as_deref(), path.namespace.as_deref().unwrap_or_default());
    instance_name(out, path);
    out.extend_from_slice(b"</INSTANCEPATH>");
}

pub fn local_instance_path(out: &mut Vec<u8>, path: &ObjectPath) {
    out.extend_from_slice(b"<LOCALINSTANCEPATH>");
    local_namespace_path(out, path.namespace.as_deref().unwrap_or_default());
    instance_name(out, path);
    out.extend_from_slice(b"</LOCALINSTANCEPATH>");
}

/// `VALUE.REFERENCE` with the most complete form the path allows: `INSTANCEPATH` with a host and
/// namespace, `LOCALINSTANCEPATH` with a namespace, `INSTANCENAME` otherwise.
pub fn value_reference(out: &mut Vec<u8>, path: &ObjectPath) {
    out.extend_from_slice(b"<VALUE.REFERENCE>");
    match (&path.host, &path.namespace) {
        (Some(_), Some(_)) => instance_path(out, path),
        (None, Some(_)) => local_instance_path(out, path),
        _ => instance_name(out, path),
    }
    out.extend_from_slice(b"</VALUE.REFERENCE>");
}

/// `OBJECTPATH` around an `INSTANCEPATH`, or a `CLASSPATH` for class-level association results.
pub fn object_path(out: &mut Vec<u8>, path: &ObjectPath, is_class: bool) {
    out.extend_from_slice(b"<OBJECTPATH>");
    if is_class {
        class_path(out, path);
    } else {
        instance_path(out, path);
    }
    out.extend_from_slice(b"</OBJECTPATH>");
}

fn flavor_attrs(out: &mut Vec<u8>, f: &Flavors) {
    let d = Flavors::default();
    if f.overridable != d.overridable {
        attr(out, "OVERRIDABLE", bool_text(f.overridable));
    }
    if f.tosubclass != d.tosubclass {
        attr(out, "TOSUBCLASS", bool_text(f.tosubclass));
    }
    if f.toinstance != d.toinstance {
        attr(out, "TOINSTANCE", bool_text(f.toinstance));
    }
    if f.translatable != d.translatable {
        attr(out, "TRANSLATABLE", bool_text(f.translatable));
    }
}

pub fn qualifier(out: &mut Vec<u8>, q: &Qualifier) {
    start(out, "QUALIFIER");
    attr(out, "NAME", &q.name);
    attr(out, "TYPE", q.cim_type.name());
    if q.propagated {
        attr(out, "PROPAGATED", "true");
    }
    flavor_attrs(out, &q.flavors);
    gt(out);
    if let Some(v) = &q.value {
        value(out, v);
    }
    end(out, "QUALIFIER");
}

pub fn qualifier_declaration(out: &mut Vec<u8>, d: &QualifierDecl) {
    start(out, "QUALIFIER.DECLARATION");
    attr(out, "NAME", &d.name);
    attr(out, "TYPE", d.cim_type.name());
    attr(out, "ISARRAY", bool_text(d.is_array));
    if let Some(n) = d.array_size {
        attr(out, "ARRAYSIZE", &n.to_string());
    }
    flavor_attrs(out, &d.flavors);
    gt(out);
    let s = &d.scopes;
    let scopes = [
        ("CLASS", s.class),
        ("ASSOCIATION", s.association),
        ("REFERENCE", s.reference),
        ("PROPERTY", s.property),
        ("METHOD", s.method),
        ("PARAMETER", s.parameter),
        ("INDICATION", s.indication),
    ];
    let set: Vec<(&str, &str)> = scopes.iter().filter(|(_, on)| *on).map(|(n, _)| (*n, "true")).collect();
    if !set.is_empty() {
        empty(out, "SCOPE", &set);
    }
    if let Some(v) = &d.value {
        value(out, v);
    }
    end(out, "QUALIFIER.DECLARATION");
}

fn qualifiers(out: &mut Vec<u8>, list: &[Qualifier], opts: &ObjectOptions) {
    if opts.include_qualifiers {
        for q in list {
            qualifier(out, q);
        }
    }
}

pub fn property(out: &mut Vec<u8>, p: &Property, opts: &ObjectOptions) {
    let tag = match (p.cim_type, p.is_array) {
        (CimType::Reference, _) => "PROPERTY.REFERENCE",
        (_, true) => "PROPERTY.ARRAY",
        _ => "PROPERTY",
    };
    start(out, tag);
    attr(out, "NAME", &p.name);
    if p.cim_type == CimType::Reference {
        if let Some(rc) = &p.reference_class {
            attr(out, "REFERENCECLASS", rc);
        }
    } else {
        attr(out, "TYPE", p.cim_type.name());
        if p.is_array {
            if let Some(n) = p.array_size {
                attr(out, "ARRAYSIZE", &n.to_string());
            }
        }
    }
    if opts.include_class_origin {
        if let Some(origin) = &p.class_origin {
            attr(out, "CLASSORIGIN", origin);
        }
    }
    if p.propagated {
        attr(out, "PROPAGATED", "true");
    }
    if p.cim_type == CimType::String {
        if let Some(kind) = p.embedded_kind() {
            attr(out, "EmbeddedObject", kind.name());
        }
    }
    gt(out);
    qualifiers(out, &p.qualifiers, opts);
    if let Some(v) = &p.value {
        value(out, v);
    }
    end(out, tag);
}

pub fn parameter(out: &mut Vec<u8>, p: &Parameter, opts: &ObjectOptions) {
    let tag = match (p.cim_type, p.is_array) {
        (CimType::Reference, false) => "PARAMETER.REFERENCE",
        (CimType::Reference, true) => "PARAMETER.REFARRAY",
        (_, true) => "PARAMETER.ARRAY",
        _ => "PARAMETER",
    };
    start(out, tag);
    attr(out, "NAME", &p.name);
    if p.cim_type == CimType::Reference {
        if let Some(rc) = &p.reference_class {
            attr(out, "REFERENCECLASS", rc);
        }
    } else {
        attr(out, "TYPE", p.cim_type.name());
    }
    if p.is_array {
        if let Some(n) = p.array_size {
            attr(out, "ARRAYSIZE", &n.to_string());
        }
    }
    gt(out);
    qualifiers(out, &p.qualifiers, opts);
    end(out, tag);
}

pub fn method(out: &mut Vec<u8>, m: &Method, opts: &ObjectOptions) {
    start(out, "METHOD");
    attr(out, "NAME", &m.name);
    attr(out, "TYPE", m.return_type.name());
    if opts.include_class_origin {
        if let Some(origin) = &m.class_origin {
            attr(out, "CLASSORIGIN", origin);
        }
    }
    if m.propagated {
        attr(out, "PROPAGATED", "true");
    }
    gt(out);
    qualifiers(out, &m.qualifiers, opts);
    for p in &m.parameters {
        parameter(out, p, opts);
    }
    end(out, "METHOD");
}

pub fn class(out: &mut Vec<u8>, c: &Class, opts: &ObjectOptions) {
    start(out, "CLASS");
    attr(out, "NAME", &c.name);
    if let Some(sc) = &c.superclass {
        attr(out, "SUPERCLASS", sc);
    }
    gt(out);
    qualifiers(out, &c.qualifiers, opts);
    for p in c.properties.iter().filter(|p| !(opts.local_only && p.propagated)) {
        property(out, p, opts);
    }
    for m in c.methods.iter().filter(|m| !(opts.local_only && m.propagated)) {
        method(out, m, opts);
    }
    end(out, "CLASS");
}

pub fn instance(out: &mut Vec<u8>, i: &Instance, opts: &ObjectOptions) {
    start(out, "INSTANCE");
    attr(out, "CLASSNAME", &i.class_name);
    gt(out);
    qualifiers(out, &i.qualifiers, opts);
    for p in &i.properties {
        property(out, p, opts);
    }
    end(out, "INSTANCE");
}

/// The instance's path, or a keyless path of its class when the caller set none.
fn with_path(i: &Instance, f: impl FnOnce(&ObjectPath)) {
    match &i.path {
        Some(p) => f(p),
        None => f(&ObjectPath::new(None, &i.class_name)),
    }
}

/// `VALUE.NAMEDINSTANCE` (EnumerateInstances): the instance's `path` as `INSTANCENAME`.
pub fn value_named_instance(out: &mut Vec<u8>, i: &Instance, opts: &ObjectOptions) {
    out.extend_from_slice(b"<VALUE.NAMEDINSTANCE>");
    with_path(i, |p| instance_name(out, p));
    instance(out, i, opts);
    out.extend_from_slice(b"</VALUE.NAMEDINSTANCE>");
}

/// `VALUE.INSTANCEWITHPATH` (pull operations): the instance's `path` as `INSTANCEPATH`.
pub fn value_instance_with_path(out: &mut Vec<u8>, i: &Instance, opts: &ObjectOptions) {
    out.extend_from_slice(b"<VALUE.INSTANCEWITHPATH>");
    with_path(i, |p| instance_path(out, p));
    instance(out, i, opts);
    out.extend_from_slice(b"</VALUE.INSTANCEWITHPATH>");
}

/// `VALUE.OBJECTWITHPATH` (Associators, References).
pub fn value_object_with_path(out: &mut Vec<u8>, object: &CimObject, opts: &ObjectOptions) {
    out.extend_from_slice(b"<VALUE.OBJECTWITHPATH>");
    match object {
        CimObject::Class { path, class: c } => {
            match path {
                Some(p) => class_path(out, p),
                None => class_path(out, &ObjectPath::new(None, &c.name)),
            }
            class(out, c, opts);
        }
        CimObject::Instance(i) => {
            with_path(i, |p| instance_path(out, p));
            instance(out, i, opts);
        }
    }
    out.extend_from_slice(b"</VALUE.OBJECTWITHPATH>");
}

pub fn value_object_with_local_path(out: &mut Vec<u8>, object: &CimObject, opts: &ObjectOptions) {
    out.extend_from_slice(b"<VALUE.OBJECTWITHLOCALPATH>");
    match object {
        CimObject::Class { path, class: c } => {
            match path {
                Some(p) => local_class_path(out, p),
                None => local_class_path(out, &ObjectPath::new(None, &c.name)),
            }
            class(out, c, opts);
        }
        CimObject::Instance(i) => {
            with_path(i, |p| local_instance_path(out, p));
            instance(out, i, opts);
        }
    }
    out.extend_from_slice(b"</VALUE.OBJECTWITHLOCALPATH>");
}

pub fn value_object(out: &mut Vec<u8>, object: &CimObject, opts: &ObjectOptions) {
    out.extend_from_slice(b"<VALUE.OBJECT>");
    match object {
        CimObject::Class { class: c, .. } => class(out, c, opts),
        CimObject::Instance(i) => instance(out, i, opts),
    }
    out.extend_from_slice(b"</VALUE.OBJECT>");
}

pub fn error(out: &mut Vec<u8>, e: &CimError) {
    start(out, "ERROR");
    attr(out, "CODE", &e.status.code().to_string());
    if !e.description.is_empty() {
        attr(out, "DESCRIPTION", &e.description);
    }
    gt(out);
    for i in &e.instances {
        instance(out, i, &ObjectOptions::FULL);
    }
    end(out, "ERROR");
}

/// `PARAMVALUE` / `RETURNVALUE` attributes shared by method calls and responses.
pub(crate) fn typed_param_attrs(out: &mut Vec<u8>, param_type: Option<CimType>, embedded: Option<crate::cim::EmbeddedKind>) {
    if let Some(t) = param_type {
        attr(out, "PARAMTYPE", t.name());
    }
    if let Some(k) = embedded {
        attr(out, "EmbeddedObject", k.name());
    }
}

pub(crate) fn open_with_name(out: &mut Vec<u8>, tag: &str, name: &str) {
    start(out, tag);
    attr(out, "NAME", name);
}

pub(crate) fn close_start(out: &mut Vec<u8>) {
    gt(out);
}

pub(crate) fn close(out: &mut Vec<u8>, tag: &str) {
    end(out, tag);
}
