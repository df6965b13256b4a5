//! Whole CIM-XML messages: streamed responses, error responses, and the requests this server sends
//! (indication export) or that tests send.
//!
//! [`ResponseWriter`] writes the envelope when created, then one object at a time into its buffer;
//! [`ResponseWriter::take_chunk`] hands out what has accumulated (e.g. as an HTTP chunk), so a
//! response of 10,000 instances never has to exist whole in memory.

use super::decode::CimObject;
use super::error::CallKind;
use super::request::{MethodParam, MethodTarget, ParamValue};
use super::write::{self, ObjectOptions};
use crate::cim::{CimError, CimType, CimValue, Class, Instance, ObjectPath, QualifierDecl};

pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n";

fn message_head(out: &mut Vec<u8>, message_id: &str, simple: &str) {
    out.extend_from_slice(XML_DECLARATION.as_bytes());
    out.extend_from_slice(b"<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"><MESSAGE ID=\"");
    super::escape::attr(out, message_id);
    out.extend_from_slice(b"\" PROTOCOLVERSION=\"1.0\"><");
    out.extend_from_slice(simple.as_bytes());
    out.push(b'>');
}

fn message_tail(out: &mut Vec<u8>, simple: &str) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(simple.as_bytes());
    out.extend_from_slice(b"></MESSAGE></CIM>\n");
}

fn response_tags(kind: CallKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        CallKind::Intrinsic => ("SIMPLERSP", "IMETHODRESPONSE", "IRETURNVALUE"),
        CallKind::Extrinsic => ("SIMPLERSP", "METHODRESPONSE", "RETURNVALUE"),
        CallKind::Export => ("SIMPLEEXPRSP", "EXPMETHODRESPONSE", "IRETURNVALUE"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing after the response element's start tag yet.
    Open,
    /// Inside `IRETURNVALUE`.
    InReturnValue,
    /// Past the return value: only output parameters may follow.
    Params,
}

/// A streamed success response. Items go into `IRETURNVALUE` (opened on the first one); output
/// parameters follow it; [`ResponseWriter::finish`] closes the document.
#[derive(Debug)]
pub struct ResponseWriter {
    buf: Vec<u8>,
    kind: CallKind,
    state: State,
}

impl ResponseWriter {
    pub fn new(message_id: &str, kind: CallKind, method: &str) -> ResponseWriter {
        let (simple, response, _) = response_tags(kind);
        let mut buf = Vec::with_capacity(4096);
        message_head(&mut buf, message_id, simple);
        write::open_with_name(&mut buf, response, method);
        write::close_start(&mut buf);
        ResponseWriter { buf, kind, state: State::Open }
    }

    /// `IMETHODRESPONSE`.
    pub fn intrinsic(message_id: &str, method: &str) -> ResponseWriter {
        ResponseWriter::new(message_id, CallKind::Intrinsic, method)
    }

    /// `METHODRESPONSE`.
    pub fn extrinsic(message_id: &str, method: &str) -> ResponseWriter {
        ResponseWriter::new(message_id, CallKind::Extrinsic, method)
    }

    /// `EXPMETHODRESPONSE`.
    pub fn export(message_id: &str, method: &str) -> ResponseWriter {
        ResponseWriter::new(message_id, CallKind::Export, method)
    }

    fn item(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.state != State::Params, "return value items must come before output parameters");
        if self.state == State::Open && self.kind != CallKind::Extrinsic {
            self.buf.extend_from_slice(b"<IRETURNVALUE>");
            self.state = State::InReturnValue;
        }
        &mut self.buf
    }

    fn end_return_value(&mut self) {
        if self.state == State::InReturnValue {
            self.buf.extend_from_slice(b"</IRETURNVALUE>");
        }
        self.state = State::Params;
    }

    /// Opens `IRETURNVALUE` even if no item follows (an empty enumeration).
    pub fn begin_return_value(&mut self) {
        self.item();
    }

    pub fn class_name(&mut self, name: &str) {
        write::class_name(self.item(), name);
    }

    /// `INSTANCENAME` (EnumerateInstanceNames, CreateInstance).
    pub fn instance_name(&mut self, path: &ObjectPath) {
        write::instance_name(self.item(), path);
    }

    /// `INSTANCEPATH` (OpenEnumerateInstancePaths, PullInstancePaths...).
    pub fn instance_path(&mut self, path: &ObjectPath) {
        write::instance_path(self.item(), path);
    }

    /// `OBJECTPATH` (AssociatorNames, ReferenceNames).
    pub fn object_path(&mut self, path: &ObjectPath, is_class: bool) {
        write::object_path(self.item(), path, is_class);
    }

    pub fn class(&mut self, class: &Class, opts: &ObjectOptions) {
        write::class(self.item(), class, opts);
    }

    /// `INSTANCE` (GetInstance, PullInstances).
    pub fn instance(&mut self, instance: &Instance, opts: &ObjectOptions) {
        write::instance(self.item(), instance, opts);
    }

    /// `VALUE.NAMEDINSTANCE` (EnumerateInstances, ExecQuery).
    pub fn named_instance(&mut self, instance: &Instance, opts: &ObjectOptions) {
        write::value_named_instance(self.item(), instance, opts);
    }

    /// `VALUE.INSTANCEWITHPATH` (Open*/Pull* instance operations).
    pub fn instance_with_path(&mut self, instance: &Instance, opts: &ObjectOptions) {
        write::value_instance_with_path(self.item(), instance, opts);
    }

    /// `VALUE.OBJECTWITHPATH` (Associators, References).
    pub fn object_with_path(&mut self, object: &CimObject, opts: &ObjectOptions) {
        write::value_object_with_path(self.item(), object, opts);
    }

    /// `VALUE.OBJECTWITHPATH` for an instance, without wrapping it in a [`CimObject`].
    pub fn instance_object_with_path(&mut self, instance: &Instance, opts: &ObjectOptions) {
        let out = self.item();
        out.extend_from_slice(b"<VALUE.OBJECTWITHPATH>");
        match &instance.path {
            Some(p) => write::instance_path(out, p),
            None => write::instance_path(out, &ObjectPath::new(None, &instance.class_name)),
        }
        write::instance(out, instance, opts);
        out.extend_from_slice(b"</VALUE.OBJECTWITHPATH>");
    }

    /// Any other element inside `IRETURNVALUE`, written with the [`write`] functions.
    pub fn write_item(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(self.item());
    }

    pub fn qualifier_declaration(&mut self, decl: &QualifierDecl) {
        write::qualifier_declaration(self.item(), decl);
    }

    /// A value (GetProperty, EnumerationCount). NULL is an empty `IRETURNVALUE`.
    pub fn value(&mut self, value: Option<&CimValue>) {
        let out = self.item();
        if let Some(v) = value {
            write::value(out, v);
        }
    }

    /// `RETURNVALUE` of a method response.
    pub fn return_value(&mut self, value: Option<&CimValue>, return_type: CimType) {
        self.end_return_value();
        let out = &mut self.buf;
        out.extend_from_slice(b"<RETURNVALUE");
        write::typed_param_attrs(out, Some(return_type), value.and_then(CimValue::embedded_kind));
        out.push(b'>');
        if let Some(v) = value {
            write::value(out, v);
        }
        out.extend_from_slice(b"</RETURNVALUE>");
    }

    /// An output `PARAMVALUE` (after the return value).
    pub fn output_param(&mut self, param: &MethodParam) {
        self.end_return_value();
        paramvalue(&mut self.buf, param);
    }

    /// The output parameters of the pull operations (DSP0200 1.3): `EnumerationContext` (empty when
    /// there is none) and `EndOfSequence`, after the objects.
    pub fn pull_result(&mut self, enumeration_context: Option<&str>, end_of_sequence: bool) {
        if self.state == State::Open {
            self.begin_return_value();
        }
        let context = MethodParam {
            name: "EnumerationContext".into(),
            param_type: Some(CimType::String),
            embedded_object: None,
            value: enumeration_context.map_or(ParamValue::Null, |c| ParamValue::Value(CimValue::String(c.into()))),
        };
        self.output_param(&context);
        self.output_param(&MethodParam::typed("EndOfSequence", CimValue::Boolean(end_of_sequence)));
    }

    /// Bytes written since the last [`ResponseWriter::take_chunk`].
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Hands out the bytes written so far, keeping the writer going.
    pub fn take_chunk(&mut self) -> Vec<u8> {
        let capacity = self.buf.capacity().max(4096);
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }

    /// Closes the document; returns the bytes not yet taken.
    pub fn finish(mut self) -> Vec<u8> {
        self.end_return_value();
        let (simple, response, _) = response_tags(self.kind);
        write::close(&mut self.buf, response);
        message_tail(&mut self.buf, simple);
        self.buf
    }
}

/// A complete error response.
pub fn error_response(message_id: &str, kind: CallKind, method: &str, error: &CimError) -> Vec<u8> {
    let (simple, response, _) = response_tags(kind);
    let mut out = Vec::with_capacity(512);
    message_head(&mut out, message_id, simple);
    write::open_with_name(&mut out, response, method);
    write::close_start(&mut out);
    write::error(&mut out, error);
    write::close(&mut out, response);
    message_tail(&mut out, simple);
    out
}

fn param_value(out: &mut Vec<u8>, v: &ParamValue) {
    match v {
        ParamValue::Null => {}
        ParamValue::Text(t) => write::value_text(out, t),
        ParamValue::TextArray(items) => write::value_array_text(out, items),
        ParamValue::Value(v) => write::value(out, v),
        ParamValue::Reference(p) => write::value_reference(out, p),
        ParamValue::RefArray(items) => {
            out.extend_from_slice(b"<VALUE.REFARRAY>");
            for item in items {
                match item {
                    Some(p) => write::value_reference(out, p),
                    None => out.extend_from_slice(b"<VALUE.NULL></VALUE.NULL>"),
                }
            }
            out.extend_from_slice(b"</VALUE.REFARRAY>");
        }
        ParamValue::ClassName(c) => write::class_name(out, c),
        ParamValue::InstanceName(p) => write::instance_name(out, p),
        ParamValue::QualifierDecl(d) => write::qualifier_declaration(out, d),
        ParamValue::Class(c) => write::class(out, c, &ObjectOptions::FULL),
        ParamValue::Instance(i) if i.path.is_some() => write::value_named_instance(out, i, &ObjectOptions::FULL),
        ParamValue::Instance(i) => write::instance(out, i, &ObjectOptions::FULL),
    }
}

fn paramvalue(out: &mut Vec<u8>, p: &MethodParam) {
    write::open_with_name(out, "PARAMVALUE", &p.name);
    write::typed_param_attrs(out, p.param_type, p.embedded_object);
    write::close_start(out);
    param_value(out, &p.value);
    write::close(out, "PARAMVALUE");
}

/// An `IMETHODCALL` request.
pub fn intrinsic_request(message_id: &str, method: &str, namespace: &str, params: &[(String, ParamValue)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    message_head(&mut out, message_id, "SIMPLEREQ");
    write::open_with_name(&mut out, "IMETHODCALL", method);
    write::close_start(&mut out);
    write::local_namespace_path(&mut out, namespace);
    for (name, value) in params {
        write::open_with_name(&mut out, "IPARAMVALUE", name);
        write::close_start(&mut out);
        param_value(&mut out, value);
        write::close(&mut out, "IPARAMVALUE");
    }
    write::close(&mut out, "IMETHODCALL");
    message_tail(&mut out, "SIMPLEREQ");
    out
}

/// A `METHODCALL` request.
pub fn extrinsic_request(message_id: &str, method: &str, target: &MethodTarget, params: &[MethodParam]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    message_head(&mut out, message_id, "SIMPLEREQ");
    write::open_with_name(&mut out, "METHODCALL", method);
    write::close_start(&mut out);
    match target {
        MethodTarget::Class(p) => write::local_class_path(&mut out, p),
        MethodTarget::Instance(p) => write::local_instance_path(&mut out, p),
    }
    for p in params {
        paramvalue(&mut out, p);
    }
    write::close(&mut out, "METHODCALL");
    message_tail(&mut out, "SIMPLEREQ");
    out
}

/// An `EXPMETHODCALL` request.
pub fn export_request(message_id: &str, method: &str, params: &[(&str, Option<&Instance>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    message_head(&mut out, message_id, "SIMPLEEXPREQ");
    write::open_with_name(&mut out, "EXPMETHODCALL", method);
    write::close_start(&mut out);
    for (name, instance) in params {
        write::open_with_name(&mut out, "EXPPARAMVALUE", name);
        write::close_start(&mut out);
        if let Some(i) = instance {
            write::instance(&mut out, i, &ObjectOptions::FULL);
        }
        write::close(&mut out, "EXPPARAMVALUE");
    }
    write::close(&mut out, "EXPMETHODCALL");
    message_tail(&mut out, "SIMPLEEXPREQ");
    out
}

/// The indication delivery a listener receives: `ExportIndication` with `NewIndication`.
pub fn export_indication_request(message_id: &str, indication: &Instance) -> Vec<u8> {
    export_request(message_id, "ExportIndication", &[("NewIndication", Some(indication))])
}
