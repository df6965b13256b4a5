//! The CIM-XML codec (DSP0201 2.x, DTD 2.4; messages of DSP0200 1.3).
//!
//! * [`parse_request`] decodes `SIMPLEREQ` / `SIMPLEEXPREQ` messages into a typed [`Request`];
//!   failures say whether to answer with an HTTP error and `CIMError` header or with a CIM-XML
//!   `ERROR` ([`RequestError`]).
//! * [`ResponseWriter`] streams responses; [`write`] has the writers of the single elements.
//! * [`parse_response`] reads responses back (tests, the indication sender).

mod decode;
mod error;
mod escape;
mod request;
mod response;
mod response_writer;
mod tree;
pub mod write;

#[cfg(test)]
mod tests;

pub use decode::{decode_embedded_object, CimObject};
pub use error::{CallKind, ProtocolError, ProtocolErrorKind, RequestError};
pub use request::{
    parse_request, parse_request_with, Call, ExportCall, ExtrinsicCall, IntrinsicCall, MethodParam, MethodTarget, ObjectName, ParamValue,
    Request,
};
pub use response::{parse_response, IntrinsicResult, MethodResult, Response, ResponseBody, ReturnItem, ReturnValue};
pub use response_writer::{
    error_response, export_indication_request, export_request, extrinsic_request, intrinsic_request, ResponseWriter, XML_DECLARATION,
};
pub use tree::ParseLimits;
pub use write::ObjectOptions;
