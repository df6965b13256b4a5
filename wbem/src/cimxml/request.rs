//! CIM-XML requests: intrinsic (`IMETHODCALL`), extrinsic (`METHODCALL`) and export
//! (`EXPMETHODCALL`) calls, decoded into typed parameters. What each intrinsic parameter means, and
//! its default when absent, is the dispatcher's business; the accessors here only type the values.

use super::decode::{embedded_attr, parse_type, req_attr, DResult, Decoder};
use super::error::{CallKind, DecodeError, DecodeKind, ProtocolError, ProtocolErrorKind, RequestError};
use super::tree::{self, Element, ParseLimits};
use crate::cim::{names_equal, CimError, CimType, CimValue, Class, EmbeddedKind, Instance, ObjectPath, QualifierDecl};

/// The value of an `IPARAMVALUE` or `PARAMVALUE`, as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// The element was present and empty.
    Null,
    /// An untyped `VALUE` (typed by the operation, or by the method's declaration).
    Text(String),
    /// An untyped `VALUE.ARRAY`; `None` is `VALUE.NULL`.
    TextArray(Vec<Option<String>>),
    /// A value typed by the `PARAMTYPE` attribute.
    Value(CimValue),
    Reference(ObjectPath),
    RefArray(Vec<Option<ObjectPath>>),
    ClassName(String),
    InstanceName(ObjectPath),
    QualifierDecl(Box<QualifierDecl>),
    Class(Box<Class>),
    /// `INSTANCE`, or `VALUE.NAMEDINSTANCE` (then `path` is set).
    Instance(Box<Instance>),
}

impl ParamValue {
    /// The value for a parameter declared with `ty` / `is_array`: untyped text is parsed, typed values
    /// are converted (a `uint16` sent for a `uint32`), names become references. `Ok(None)` is NULL.
    pub fn to_value(&self, ty: CimType, is_array: bool) -> Result<Option<CimValue>, String> {
        let mismatch = |what: &str| {
            Err(format!(
                "{what} was given where {} {ty}{} is expected",
                if is_array { "an array of" } else { "a" },
                if is_array { "" } else { " value" }
            ))
        };
        match self {
            ParamValue::Null => Ok(None),
            ParamValue::Text(t) if !is_array && ty != CimType::Reference => CimValue::parse_scalar(ty, t).map(Some).map_err(|e| e.0),
            ParamValue::TextArray(items) if is_array && ty != CimType::Reference => {
                CimValue::parse_array(ty, items).map(Some).map_err(|e| e.0)
            }
            ParamValue::Value(v) => v.convert(ty, is_array).map(Some).map_err(|e| e.0),
            ParamValue::Reference(p) | ParamValue::InstanceName(p) if ty == CimType::Reference && !is_array => {
                Ok(Some(CimValue::Reference(p.clone())))
            }
            ParamValue::RefArray(items) if ty == CimType::Reference && is_array => {
                let elements = items.iter().map(|p| p.clone().map(CimValue::Reference)).collect();
                crate::cim::CimArray::new(CimType::Reference, elements).map(|a| Some(CimValue::Array(a))).map_err(|e| e.0)
            }
            ParamValue::Instance(i) if ty == CimType::String && !is_array => Ok(Some(CimValue::Instance(i.clone()))),
            ParamValue::Class(c) if ty == CimType::String && !is_array => Ok(Some(CimValue::Class(c.clone()))),
            ParamValue::Text(_) => mismatch("a single value"),
            ParamValue::TextArray(_) => mismatch("an array"),
            ParamValue::Reference(_) | ParamValue::InstanceName(_) => mismatch("a reference"),
            ParamValue::RefArray(_) => mismatch("an array of references"),
            ParamValue::ClassName(_) => mismatch("a class name"),
            ParamValue::QualifierDecl(_) => mismatch("a qualifier declaration"),
            ParamValue::Class(_) => mismatch("a class"),
            ParamValue::Instance(_) => mismatch("an instance"),
        }
    }
}

/// `ObjectName` of the association operations: a class or an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectName {
    Class(String),
    Instance(ObjectPath),
}

/// An `IMETHODCALL`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntrinsicCall {
    pub name: String,
    /// `root/virt` for `<NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/>`.
    pub namespace: String,
    /// In the order sent; names are unique (case-insensitively).
    pub params: Vec<(String, ParamValue)>,
}

/// The target of a `METHODCALL`.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodTarget {
    /// `LOCALCLASSPATH`: a static method.
    Class(ObjectPath),
    /// `LOCALINSTANCEPATH`.
    Instance(ObjectPath),
}

impl MethodTarget {
    pub fn path(&self) -> &ObjectPath {
        match self {
            MethodTarget::Class(p) | MethodTarget::Instance(p) => p,
        }
    }
}

/// A `PARAMVALUE` of a method call or method response.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodParam {
    pub name: String,
    /// The `PARAMTYPE` attribute (clients such as wbemcli leave it out).
    pub param_type: Option<CimType>,
    /// The `EmbeddedObject` attribute. The value then stays the raw text that was sent (escaped
    /// CIM-XML or MOF) for the layer that knows the parameter's class to decode.
    pub embedded_object: Option<EmbeddedKind>,
    pub value: ParamValue,
}

impl MethodParam {
    pub fn new(name: impl Into<String>, value: ParamValue) -> MethodParam {
        MethodParam { name: name.into(), param_type: None, embedded_object: None, value }
    }

    /// A typed output parameter (`PARAMTYPE` follows the value).
    pub fn typed(name: impl Into<String>, value: CimValue) -> MethodParam {
        MethodParam {
            name: name.into(),
            param_type: Some(value.cim_type()),
            embedded_object: value.embedded_kind(),
            value: ParamValue::Value(value),
        }
    }
}

/// A `METHODCALL`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtrinsicCall {
    pub name: String,
    pub target: MethodTarget,
    pub params: Vec<MethodParam>,
}

impl ExtrinsicCall {
    pub fn param(&self, name: &str) -> Option<&MethodParam> {
        self.params.iter().find(|p| names_equal(&p.name, name))
    }
}

/// An `EXPMETHODCALL` (indication delivery).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportCall {
    pub name: String,
    pub params: Vec<(String, Option<Instance>)>,
}

impl ExportCall {
    /// The `NewIndication` of an `ExportIndication`.
    pub fn indication(&self) -> Option<&Instance> {
        self.params.iter().find(|(n, _)| names_equal(n, "NewIndication")).and_then(|(_, i)| i.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Intrinsic(IntrinsicCall),
    Extrinsic(ExtrinsicCall),
    Export(ExportCall),
}

/// A decoded `SIMPLEREQ` or `SIMPLEEXPREQ` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub message_id: String,
    pub protocol_version: String,
    pub call: Call,
}

impl Request {
    pub fn kind(&self) -> CallKind {
        match self.call {
            Call::Intrinsic(_) => CallKind::Intrinsic,
            Call::Extrinsic(_) => CallKind::Extrinsic,
            Call::Export(_) => CallKind::Export,
        }
    }

    /// The operation or method name.
    pub fn method_name(&self) -> &str {
        match &self.call {
            Call::Intrinsic(c) => &c.name,
            Call::Extrinsic(c) => &c.name,
            Call::Export(c) => &c.name,
        }
    }
}

fn bad_param(name: &str, why: impl std::fmt::Display) -> CimError {
    CimError::invalid_parameter(format!("IPARAMVALUE \"{name}\": {why}"))
}

impl IntrinsicCall {
    /// The parameter as sent; `None` when absent.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(n, _)| names_equal(n, name)).map(|(_, v)| v)
    }

    /// Absent and NULL both read as `None`.
    fn present(&self, name: &str) -> Option<&ParamValue> {
        self.param(name).filter(|v| **v != ParamValue::Null)
    }

    fn typed(&self, name: &str, ty: CimType) -> Result<Option<CimValue>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(v) => v.to_value(ty, false).map_err(|e| bad_param(name, e)),
        }
    }

    /// A `boolean` parameter (`DeepInheritance`, `LocalOnly`, `IncludeQualifiers`, ...).
    pub fn bool_param(&self, name: &str) -> Result<Option<bool>, CimError> {
        Ok(self.typed(name, CimType::Boolean)?.and_then(|v| v.as_bool()))
    }

    /// A `string` parameter (`FilterQuery`, `Role`, `EnumerationContext`, ...).
    pub fn string_param(&self, name: &str) -> Result<Option<String>, CimError> {
        match self.typed(name, CimType::String)? {
            Some(CimValue::String(s)) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// A `uint32` parameter (`MaxObjectCount`, `OperationTimeout`).
    pub fn u32_param(&self, name: &str) -> Result<Option<u32>, CimError> {
        match self.typed(name, CimType::UInt32)? {
            Some(CimValue::UInt32(n)) => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    /// A value typed by the caller (`NewValue` of SetProperty, typed by the property's declaration).
    pub fn value_param(&self, name: &str, ty: CimType, is_array: bool) -> Result<Option<CimValue>, CimError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => v.to_value(ty, is_array).map_err(|e| bad_param(name, e)),
        }
    }

    /// A `CLASSNAME` parameter (`ClassName`, `AssocClass`, `ResultClass`).
    pub fn class_name_param(&self, name: &str) -> Result<Option<String>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::ClassName(c)) => Ok(Some(c.clone())),
            Some(_) => Err(bad_param(name, "a CLASSNAME is expected")),
        }
    }

    /// An `INSTANCENAME` parameter (`InstanceName`).
    pub fn instance_name_param(&self, name: &str) -> Result<Option<ObjectPath>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::InstanceName(p)) => Ok(Some(p.clone())),
            Some(_) => Err(bad_param(name, "an INSTANCENAME is expected")),
        }
    }

    /// `ObjectName` of Associators and friends: a `CLASSNAME` or an `INSTANCENAME`.
    pub fn object_name_param(&self, name: &str) -> Result<Option<ObjectName>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::ClassName(c)) => Ok(Some(ObjectName::Class(c.clone()))),
            Some(ParamValue::InstanceName(p)) => Ok(Some(ObjectName::Instance(p.clone()))),
            Some(_) => Err(bad_param(name, "a CLASSNAME or an INSTANCENAME is expected")),
        }
    }

    /// A `CLASS` parameter (`NewClass`, `ModifiedClass`).
    pub fn class_param(&self, name: &str) -> Result<Option<Class>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::Class(c)) => Ok(Some((**c).clone())),
            Some(_) => Err(bad_param(name, "a CLASS is expected")),
        }
    }

    /// An `INSTANCE` or `VALUE.NAMEDINSTANCE` parameter (`NewInstance`, `ModifiedInstance`); the
    /// instance's `path` tells which one was sent.
    pub fn instance_param(&self, name: &str) -> Result<Option<Instance>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::Instance(i)) => Ok(Some((**i).clone())),
            Some(_) => Err(bad_param(name, "an INSTANCE is expected")),
        }
    }

    /// A `QUALIFIER.DECLARATION` parameter (`QualifierDeclaration` of SetQualifier).
    pub fn qualifier_decl_param(&self, name: &str) -> Result<Option<QualifierDecl>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::QualifierDecl(d)) => Ok(Some((**d).clone())),
            Some(_) => Err(bad_param(name, "a QUALIFIER.DECLARATION is expected")),
        }
    }

    /// `PropertyList`: `None` when absent or NULL (all properties), `Some(empty)` for an empty
    /// `VALUE.ARRAY` (no properties). NULL array elements are dropped.
    pub fn property_list_param(&self, name: &str) -> Result<Option<Vec<String>>, CimError> {
        match self.present(name) {
            None => Ok(None),
            Some(ParamValue::TextArray(items)) => Ok(Some(items.iter().flatten().map(|s| s.trim().to_string()).collect())),
            // One property sent as a plain VALUE: accepted, as several CIMOMs do.
            Some(ParamValue::Text(s)) => Ok(Some(vec![s.trim().to_string()])),
            Some(_) => Err(bad_param(name, "a VALUE.ARRAY of property names is expected")),
        }
    }
}

fn decode_iparam_value(dec: &Decoder, el: &Element) -> DResult<ParamValue> {
    Ok(match el.name.as_str() {
        "VALUE" => ParamValue::Text(dec.value_text(el)?),
        "VALUE.ARRAY" => ParamValue::TextArray(dec.value_array_texts(el)?),
        "VALUE.REFERENCE" => ParamValue::Reference(dec.value_reference(el)?),
        "VALUE.REFARRAY" => ParamValue::RefArray(dec.value_refarray(el)?),
        "INSTANCENAME" => ParamValue::InstanceName(dec.instance_name(el)?),
        "CLASSNAME" => ParamValue::ClassName(dec.class_name(el)?),
        "QUALIFIER.DECLARATION" => ParamValue::QualifierDecl(Box::new(dec.qualifier_declaration(el)?)),
        "CLASS" => ParamValue::Class(Box::new(dec.class(el)?)),
        "INSTANCE" => ParamValue::Instance(Box::new(dec.instance(el)?)),
        "VALUE.NAMEDINSTANCE" => ParamValue::Instance(Box::new(dec.value_named_instance(el)?)),
        other => return Err(DecodeError::invalid(format!("element {other} cannot be a parameter value"))),
    })
}

fn single_child(el: &Element) -> DResult<Option<&Element>> {
    if !el.text.trim().is_empty() {
        return Err(DecodeError::invalid(format!("element {} has unexpected text content", el.name)));
    }
    match el.children.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(DecodeError::invalid(format!("element {} has more than one child element", el.name))),
    }
}

fn param_name(el: &Element) -> DResult<&str> {
    let name = req_attr(el, "NAME")?;
    if name.is_empty() {
        return Err(DecodeError::invalid(format!("element {} has an empty NAME", el.name)));
    }
    Ok(name)
}

pub(crate) fn decode_iparamvalue(dec: &Decoder, el: &Element) -> DResult<(String, ParamValue)> {
    let name = param_name(el)?;
    let value = match single_child(el)? {
        None => ParamValue::Null,
        Some(child) => decode_iparam_value(dec, child).map_err(|e| e.within(format!("IPARAMVALUE \"{name}\"")))?,
    };
    Ok((name.to_string(), value))
}

/// `PARAMVALUE` (method calls and responses) and `RETURNVALUE` share this: an optional `PARAMTYPE`
/// (VMAX sends `TYPE`), `EmbeddedObject`, and one optional value element.
pub(crate) fn decode_typed_param(
    dec: &Decoder,
    el: &Element,
    allowed: &[&str],
) -> DResult<(Option<CimType>, Option<EmbeddedKind>, ParamValue)> {
    let param_type = match el.attr("PARAMTYPE").or_else(|| el.attr("TYPE")) {
        None | Some("") => None,
        Some(t) => Some(parse_type(el, t)?),
    };
    let embedded = embedded_attr(el)?;
    let value = match single_child(el)? {
        None => ParamValue::Null,
        Some(child) if !allowed.contains(&child.name.as_str()) => {
            return Err(DecodeError::invalid(format!("element {} may not contain element {}", el.name, child.name)))
        }
        Some(child) => match (child.name.as_str(), param_type) {
            // Embedded objects stay text: the method's class says how to read them (CIM-XML or MOF).
            ("VALUE" | "VALUE.ARRAY", _) if embedded.is_some() => decode_iparam_value(dec, child)?,
            ("VALUE" | "VALUE.ARRAY", Some(ty)) if ty != CimType::Reference => ParamValue::Value(dec.typed_value(child, ty, None)?),
            ("VALUE" | "VALUE.ARRAY", Some(_)) => return Err(DecodeError::value("a reference is sent as VALUE.REFERENCE")),
            ("VALUE.REFERENCE" | "VALUE.REFARRAY", Some(ty)) if ty != CimType::Reference => {
                return Err(DecodeError::value(format!("a reference was sent for PARAMTYPE {ty}")))
            }
            // With PARAMTYPE="reference" the value is as typed as any other.
            ("VALUE.REFERENCE", Some(_)) => ParamValue::Value(CimValue::Reference(dec.value_reference(child)?)),
            ("VALUE.REFARRAY", Some(_)) => {
                let elements = dec.value_refarray(child)?.into_iter().map(|p| p.map(CimValue::Reference)).collect();
                let array = crate::cim::CimArray::new(CimType::Reference, elements).map_err(|e| DecodeError::value(e.0))?;
                ParamValue::Value(CimValue::Array(array))
            }
            _ => decode_iparam_value(dec, child)?,
        },
    };
    Ok((param_type, embedded, value))
}

const PARAMVALUE_CHILDREN: [&str; 9] =
    ["VALUE", "VALUE.REFERENCE", "VALUE.ARRAY", "VALUE.REFARRAY", "CLASSNAME", "INSTANCENAME", "CLASS", "INSTANCE", "VALUE.NAMEDINSTANCE"];

pub(crate) fn decode_paramvalue(dec: &Decoder, el: &Element) -> DResult<MethodParam> {
    if el.name != "PARAMVALUE" {
        return Err(DecodeError::invalid(format!("expected PARAMVALUE, found {}", el.name)));
    }
    let name = param_name(el)?;
    let (param_type, embedded_object, value) =
        decode_typed_param(dec, el, &PARAMVALUE_CHILDREN).map_err(|e| e.within(format!("PARAMVALUE \"{name}\"")))?;
    Ok(MethodParam { name: name.to_string(), param_type, embedded_object, value })
}

fn unique(params: impl Iterator<Item = String>) -> DResult<()> {
    let mut seen: Vec<String> = Vec::new();
    for n in params {
        if seen.iter().any(|s| names_equal(s, &n)) {
            return Err(DecodeError::value(format!("parameter \"{n}\" is given twice")));
        }
        seen.push(n);
    }
    Ok(())
}

fn version_major(v: &str) -> Option<&str> {
    v.trim().split('.').next()
}

fn invalid(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ProtocolErrorKind::RequestNotValid, why)
}

fn envelope_attr<'e>(el: &'e Element, attr: &str) -> Result<&'e str, ProtocolError> {
    el.attr(attr).ok_or_else(|| invalid(format!("element {} lacks the {attr} attribute", el.name)))
}

/// Checks `CIM` and `MESSAGE` and returns the message element.
pub(crate) fn envelope<'e>(root: &'e Element, protocol_major: &str) -> Result<&'e Element, ProtocolError> {
    if root.name != "CIM" {
        return Err(invalid(format!("the root element is {}, not CIM", root.name)));
    }
    let cim_version = envelope_attr(root, "CIMVERSION")?;
    if version_major(cim_version) != Some("2") {
        return Err(ProtocolError::new(ProtocolErrorKind::UnsupportedCimVersion, format!("CIMVERSION {cim_version} (2.x is supported)")));
    }
    let dtd_version = envelope_attr(root, "DTDVERSION")?;
    if version_major(dtd_version) != Some("2") {
        return Err(ProtocolError::new(ProtocolErrorKind::UnsupportedDtdVersion, format!("DTDVERSION {dtd_version} (2.x is supported)")));
    }
    let message = match root.children.as_slice() {
        [m] if m.name == "MESSAGE" && root.text.trim().is_empty() => m,
        [d] if d.name == "DECLARATION" => return Err(invalid("DECLARATION documents are not requests")),
        _ => return Err(invalid("element CIM must contain exactly one MESSAGE")),
    };
    envelope_attr(message, "ID")?;
    let protocol = envelope_attr(message, "PROTOCOLVERSION")?;
    if version_major(protocol) != Some(protocol_major) {
        return Err(ProtocolError::new(
            ProtocolErrorKind::UnsupportedProtocolVersion,
            format!("PROTOCOLVERSION {protocol} ({protocol_major}.x is supported)"),
        ));
    }
    Ok(message)
}

/// Decodes a request body with the default limits.
pub fn parse_request(body: &[u8]) -> Result<Request, RequestError> {
    parse_request_with(body, &ParseLimits::default())
}

pub fn parse_request_with(body: &[u8], limits: &ParseLimits) -> Result<Request, RequestError> {
    let text = tree::utf8(body)?;
    let root = tree::parse(text, limits)?;
    let message = envelope(&root, "1")?;
    let message_id = message.attr("ID").unwrap_or_default().to_string();
    let protocol_version = message.attr("PROTOCOLVERSION").unwrap_or_default().to_string();
    let simple = match message.children.as_slice() {
        [one] if message.text.trim().is_empty() => one,
        _ => return Err(invalid("element MESSAGE must contain exactly one request").into()),
    };
    let (call_el, kind) = match simple.name.as_str() {
        "SIMPLEREQ" | "SIMPLEEXPREQ" => {
            // DSP0201 2.4 allows CORRELATOR elements before the call; they carry nothing we use.
            let calls: Vec<&Element> = simple.children.iter().filter(|c| c.name != "CORRELATOR").collect();
            let call = match calls.as_slice() {
                [c] if simple.text.trim().is_empty() => *c,
                _ => return Err(invalid(format!("element {} must contain exactly one call", simple.name)).into()),
            };
            let kind = match (simple.name.as_str(), call.name.as_str()) {
                ("SIMPLEREQ", "IMETHODCALL") => CallKind::Intrinsic,
                ("SIMPLEREQ", "METHODCALL") => CallKind::Extrinsic,
                ("SIMPLEEXPREQ", "EXPMETHODCALL") => CallKind::Export,
                (outer, inner) => return Err(invalid(format!("element {outer} cannot contain {inner}")).into()),
            };
            (call, kind)
        }
        "MULTIREQ" | "MULTIEXPREQ" => {
            return Err(ProtocolError::new(ProtocolErrorKind::MultipleRequestsUnsupported, "multiple requests are not supported").into())
        }
        other => return Err(invalid(format!("element MESSAGE cannot contain {other} in a request")).into()),
    };
    let method = param_name(call_el).map_err(|e| RequestError::Protocol(e.into_protocol()))?.to_string();
    let dec = Decoder::new(limits);
    let decoded = match kind {
        CallKind::Intrinsic => decode_imethodcall(&dec, call_el, &method).map(Call::Intrinsic),
        CallKind::Extrinsic => decode_methodcall(&dec, call_el, &method).map(Call::Extrinsic),
        CallKind::Export => decode_expmethodcall(&dec, call_el, &method).map(Call::Export),
    };
    match decoded {
        Ok(call) => Ok(Request { message_id, protocol_version, call }),
        Err(e) if e.kind == DecodeKind::Invalid => Err(RequestError::Protocol(e.into_protocol())),
        Err(e) => Err(RequestError::Cim { message_id, kind, method, error: CimError::invalid_parameter(e.message) }),
    }
}

fn decode_imethodcall(dec: &Decoder, el: &Element, name: &str) -> DResult<IntrinsicCall> {
    if !el.text.trim().is_empty() {
        return Err(DecodeError::invalid("element IMETHODCALL has unexpected text content"));
    }
    let (first, rest) = el.children.split_first().ok_or_else(|| DecodeError::invalid("IMETHODCALL needs a LOCALNAMESPACEPATH"))?;
    let namespace = dec.local_namespace_path(first)?;
    let mut params = Vec::new();
    for c in rest {
        match c.name.as_str() {
            "IPARAMVALUE" => params.push(decode_iparamvalue(dec, c)?),
            // Asynchronous delivery (DSP0201 2.4) is not offered; ignoring the hint answers synchronously.
            "RESPONSEDESTINATION" => {}
            other => return Err(DecodeError::invalid(format!("element IMETHODCALL may not contain element {other}"))),
        }
    }
    unique(params.iter().map(|(n, _)| n.clone()))?;
    Ok(IntrinsicCall { name: name.to_string(), namespace, params })
}

fn decode_methodcall(dec: &Decoder, el: &Element, name: &str) -> DResult<ExtrinsicCall> {
    if !el.text.trim().is_empty() {
        return Err(DecodeError::invalid("element METHODCALL has unexpected text content"));
    }
    let (first, rest) =
        el.children.split_first().ok_or_else(|| DecodeError::invalid("METHODCALL needs a LOCALINSTANCEPATH or LOCALCLASSPATH"))?;
    let target = match first.name.as_str() {
        "LOCALINSTANCEPATH" => MethodTarget::Instance(dec.local_instance_path(first)?),
        "LOCALCLASSPATH" => MethodTarget::Class(dec.local_class_path(first)?),
        other => return Err(DecodeError::invalid(format!("METHODCALL starts with LOCALINSTANCEPATH or LOCALCLASSPATH, not {other}"))),
    };
    let mut params = Vec::new();
    for c in rest {
        match c.name.as_str() {
            "PARAMVALUE" => params.push(decode_paramvalue(dec, c)?),
            "RESPONSEDESTINATION" => {}
            other => return Err(DecodeError::invalid(format!("element METHODCALL may not contain element {other}"))),
        }
    }
    unique(params.iter().map(|p| p.name.clone()))?;
    Ok(ExtrinsicCall { name: name.to_string(), target, params })
}

fn decode_expmethodcall(dec: &Decoder, el: &Element, name: &str) -> DResult<ExportCall> {
    let mut params = Vec::new();
    if !el.text.trim().is_empty() {
        return Err(DecodeError::invalid("element EXPMETHODCALL has unexpected text content"));
    }
    for c in &el.children {
        if c.name != "EXPPARAMVALUE" {
            return Err(DecodeError::invalid(format!("element EXPMETHODCALL may not contain element {}", c.name)));
        }
        let pname = param_name(c)?;
        let instance = match single_child(c)? {
            None => None,
            Some(i) if i.name == "INSTANCE" => Some(dec.instance(i).map_err(|e| e.within(format!("EXPPARAMVALUE \"{pname}\"")))?),
            Some(other) => return Err(DecodeError::invalid(format!("element EXPPARAMVALUE may not contain element {}", other.name))),
        };
        params.push((pname.to_string(), instance));
    }
    unique(params.iter().map(|(n, _)| n.clone()))?;
    Ok(ExportCall { name: name.to_string(), params })
}
