//! CIM-XML responses read back: what a client (the tests, the indication sender reading a
//! listener's answer) sees. Every element the writer produces decodes to what was written.

use super::decode::{CimObject, DResult, Decoder};
use super::error::{DecodeError, ProtocolError};
use super::request::{decode_paramvalue, decode_typed_param, envelope, MethodParam, ParamValue};
use super::tree::{self, Element, ParseLimits};
use crate::cim::{CimError, CimType, Class, EmbeddedKind, Instance, ObjectPath, QualifierDecl};

/// One item of an `IRETURNVALUE`, named after its element.
#[derive(Debug, Clone, PartialEq)]
pub enum ReturnItem {
    ClassName(String),
    InstanceName(ObjectPath),
    InstancePath(ObjectPath),
    ObjectPath(ObjectPath),
    Class(Class),
    Instance(Instance),
    /// `VALUE.NAMEDINSTANCE`: `path` holds the `INSTANCENAME`.
    NamedInstance(Instance),
    /// `VALUE.INSTANCEWITHPATH`: `path` holds the `INSTANCEPATH`.
    InstanceWithPath(Instance),
    ObjectWithPath(CimObject),
    ObjectWithLocalPath(CimObject),
    Object(CimObject),
    QualifierDecl(QualifierDecl),
    Value(String),
    ValueArray(Vec<Option<String>>),
    ValueReference(ObjectPath),
}

/// `RETURNVALUE` of a method response.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnValue {
    pub param_type: Option<CimType>,
    pub embedded_object: Option<EmbeddedKind>,
    pub value: ParamValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntrinsicResult {
    /// `None` when there was no `IRETURNVALUE` at all.
    pub return_value: Option<Vec<ReturnItem>>,
    /// Output parameters (`EnumerationContext`, `EndOfSequence` of pull operations).
    pub params: Vec<MethodParam>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MethodResult {
    pub return_value: Option<ReturnValue>,
    pub params: Vec<MethodParam>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    Intrinsic { method: String, result: Result<IntrinsicResult, CimError> },
    Extrinsic { method: String, result: Result<MethodResult, CimError> },
    Export { method: String, result: Result<IntrinsicResult, CimError> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub message_id: String,
    pub protocol_version: String,
    pub body: ResponseBody,
}

fn return_item(dec: &Decoder, el: &Element) -> DResult<ReturnItem> {
    Ok(match el.name.as_str() {
        "CLASSNAME" => ReturnItem::ClassName(dec.class_name(el)?),
        "INSTANCENAME" => ReturnItem::InstanceName(dec.instance_name(el)?),
        "INSTANCEPATH" => ReturnItem::InstancePath(dec.instance_path(el)?),
        "OBJECTPATH" => ReturnItem::ObjectPath(dec.object_path(el)?),
        "CLASS" => ReturnItem::Class(dec.class(el)?),
        "INSTANCE" => ReturnItem::Instance(dec.instance(el)?),
        "VALUE.NAMEDINSTANCE" => ReturnItem::NamedInstance(dec.value_named_instance(el)?),
        "VALUE.INSTANCEWITHPATH" => ReturnItem::InstanceWithPath(dec.value_instance_with_path(el)?),
        "VALUE.OBJECTWITHPATH" => ReturnItem::ObjectWithPath(dec.value_object_with_path(el)?),
        "VALUE.OBJECTWITHLOCALPATH" => ReturnItem::ObjectWithLocalPath(dec.value_object_with_local_path(el)?),
        "VALUE.OBJECT" => ReturnItem::Object(dec.value_object(el)?),
        "QUALIFIER.DECLARATION" => ReturnItem::QualifierDecl(dec.qualifier_declaration(el)?),
        "VALUE" => ReturnItem::Value(dec.value_text(el)?),
        "VALUE.ARRAY" => ReturnItem::ValueArray(dec.value_array_texts(el)?),
        "VALUE.REFERENCE" => ReturnItem::ValueReference(dec.value_reference(el)?),
        other => return Err(DecodeError::invalid(format!("element IRETURNVALUE may not contain element {other}"))),
    })
}

fn intrinsic_result(dec: &Decoder, el: &Element) -> DResult<Result<IntrinsicResult, CimError>> {
    if let [e] = el.children.as_slice() {
        if e.name == "ERROR" {
            return Ok(Err(dec.error(e)?));
        }
    }
    let mut result = IntrinsicResult { return_value: None, params: Vec::new() };
    for c in &el.children {
        match c.name.as_str() {
            "IRETURNVALUE" if result.return_value.is_none() && result.params.is_empty() => {
                result.return_value = Some(c.children.iter().map(|i| return_item(dec, i)).collect::<DResult<Vec<_>>>()?);
            }
            "PARAMVALUE" => result.params.push(decode_paramvalue(dec, c)?),
            other => return Err(DecodeError::invalid(format!("unexpected element {other} in {}", el.name))),
        }
    }
    Ok(Ok(result))
}

fn method_result(dec: &Decoder, el: &Element) -> DResult<Result<MethodResult, CimError>> {
    if let [e] = el.children.as_slice() {
        if e.name == "ERROR" {
            return Ok(Err(dec.error(e)?));
        }
    }
    let mut result = MethodResult { return_value: None, params: Vec::new() };
    for c in &el.children {
        match c.name.as_str() {
            "RETURNVALUE" if result.return_value.is_none() && result.params.is_empty() => {
                let (param_type, embedded_object, value) = decode_typed_param(dec, c, &["VALUE", "VALUE.REFERENCE"])?;
                result.return_value = Some(ReturnValue { param_type, embedded_object, value });
            }
            "PARAMVALUE" => result.params.push(decode_paramvalue(dec, c)?),
            other => return Err(DecodeError::invalid(format!("unexpected element {other} in METHODRESPONSE"))),
        }
    }
    Ok(Ok(result))
}

/// Decodes a response body.
pub fn parse_response(body: &[u8]) -> Result<Response, ProtocolError> {
    let limits = ParseLimits::default();
    let text = tree::utf8(body)?;
    let root = tree::parse(text, &limits)?;
    let message = envelope(&root, "1")?;
    let invalid = |why: String| ProtocolError::new(super::error::ProtocolErrorKind::RequestNotValid, why);
    let simple = match message.children.as_slice() {
        [s] if s.name == "SIMPLERSP" || s.name == "SIMPLEEXPRSP" => s,
        _ => return Err(invalid("MESSAGE must contain one SIMPLERSP or SIMPLEEXPRSP".into())),
    };
    let response = match simple.children.as_slice() {
        [r] => r,
        _ => return Err(invalid(format!("{} must contain one response", simple.name))),
    };
    let method = response.attr("NAME").ok_or_else(|| invalid(format!("{} lacks the NAME attribute", response.name)))?.to_string();
    let dec = Decoder::new(&limits);
    let body = match (simple.name.as_str(), response.name.as_str()) {
        ("SIMPLERSP", "IMETHODRESPONSE") => intrinsic_result(&dec, response).map(|result| ResponseBody::Intrinsic { method, result }),
        ("SIMPLERSP", "METHODRESPONSE") => method_result(&dec, response).map(|result| ResponseBody::Extrinsic { method, result }),
        ("SIMPLEEXPRSP", "EXPMETHODRESPONSE") => intrinsic_result(&dec, response).map(|result| ResponseBody::Export { method, result }),
        (outer, inner) => return Err(invalid(format!("{outer} cannot contain {inner}"))),
    }
    .map_err(|e| invalid(e.message))?;
    Ok(Response {
        message_id: message.attr("ID").unwrap_or_default().to_string(),
        protocol_version: message.attr("PROTOCOLVERSION").unwrap_or_default().to_string(),
        body,
    })
}
