//! Errors of CIM-XML decoding, split the way DSP0200 answers them: protocol errors become an HTTP
//! error status with a `CIMError` header; errors in an otherwise valid call become a CIM-XML `ERROR`.

use std::fmt;

use crate::cim::CimError;

/// The `CIMError` header values of DSP0200 (section 7.3) that request decoding can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolErrorKind {
    /// Not XML at all, or XML this server refuses to process (DTDs, entities, invalid UTF-8).
    RequestNotWellFormed,
    /// Well-formed XML that breaks the CIM-XML DTD (unknown element, missing attribute, bad nesting,
    /// or beyond the size limits that no valid message reaches).
    RequestNotValid,
    UnsupportedProtocolVersion,
    UnsupportedCimVersion,
    UnsupportedDtdVersion,
    /// `MULTIREQ` / `MULTIEXPREQ`.
    MultipleRequestsUnsupported,
}

impl ProtocolErrorKind {
    /// The `CIMError` header value.
    pub fn header_value(self) -> &'static str {
        match self {
            ProtocolErrorKind::RequestNotWellFormed => "request-not-well-formed",
            ProtocolErrorKind::RequestNotValid => "request-not-valid",
            ProtocolErrorKind::UnsupportedProtocolVersion => "unsupported-protocol-version",
            ProtocolErrorKind::UnsupportedCimVersion => "unsupported-cim-version",
            ProtocolErrorKind::UnsupportedDtdVersion => "unsupported-dtd-version",
            ProtocolErrorKind::MultipleRequestsUnsupported => "multiple-requests-unsupported",
        }
    }

    /// The HTTP status DSP0200 pairs with the header: 400 for bad requests, 501 for what the server
    /// does not implement.
    pub fn http_status(self) -> u16 {
        match self {
            ProtocolErrorKind::RequestNotWellFormed | ProtocolErrorKind::RequestNotValid => 400,
            _ => 501,
        }
    }
}

/// A request that cannot be answered with CIM-XML: HTTP status + `CIMError` header + description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub kind: ProtocolErrorKind,
    pub description: String,
}

impl ProtocolError {
    pub fn new(kind: ProtocolErrorKind, description: impl Into<String>) -> ProtocolError {
        ProtocolError { kind, description: description.into() }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.header_value(), self.description)
    }
}

impl std::error::Error for ProtocolError {}

/// Which response element answers a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `IMETHODCALL` → `IMETHODRESPONSE`.
    Intrinsic,
    /// `METHODCALL` → `METHODRESPONSE`.
    Extrinsic,
    /// `EXPMETHODCALL` → `EXPMETHODRESPONSE`.
    Export,
}

/// Why a request could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Answer with an HTTP error and the `CIMError` header.
    Protocol(ProtocolError),
    /// The envelope is fine but a parameter is not (e.g. `<VALUE>abc</VALUE>` for a uint32): answer
    /// HTTP 200 with a CIM-XML `ERROR` for this message and method.
    Cim { message_id: String, kind: CallKind, method: String, error: CimError },
}

impl RequestError {
    /// HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            RequestError::Protocol(p) => p.kind.http_status(),
            RequestError::Cim { .. } => 200,
        }
    }

    /// `CIMError` header value, for protocol errors.
    pub fn cim_error_header(&self) -> Option<&'static str> {
        match self {
            RequestError::Protocol(p) => Some(p.kind.header_value()),
            RequestError::Cim { .. } => None,
        }
    }

    /// The CIM-XML error response document, for errors that have one.
    pub fn to_response(&self) -> Option<Vec<u8>> {
        match self {
            RequestError::Protocol(_) => None,
            RequestError::Cim { message_id, kind, method, error } => {
                Some(super::response_writer::error_response(message_id, *kind, method, error))
            }
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Protocol(p) => p.fmt(f),
            RequestError::Cim { method, error, .. } => write!(f, "{method}: {error}"),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<ProtocolError> for RequestError {
    fn from(p: ProtocolError) -> Self {
        RequestError::Protocol(p)
    }
}

/// An error found while decoding elements, before it is known how the caller answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub kind: DecodeKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeKind {
    /// Against the DTD.
    Invalid,
    /// Valid structure, bad value text.
    Value,
}

impl DecodeError {
    pub fn invalid(message: impl Into<String>) -> DecodeError {
        DecodeError { kind: DecodeKind::Invalid, message: message.into() }
    }

    pub fn value(message: impl Into<String>) -> DecodeError {
        DecodeError { kind: DecodeKind::Value, message: message.into() }
    }

    /// Prefixes the location, outermost first: `IPARAMVALUE "NewInstance" > PROPERTY "Count": ...`.
    pub fn within(mut self, location: impl fmt::Display) -> DecodeError {
        self.message = format!("{location} > {}", self.message);
        self
    }

    pub fn into_protocol(self) -> ProtocolError {
        ProtocolError::new(ProtocolErrorKind::RequestNotValid, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_and_statuses() {
        let table = [
            (ProtocolErrorKind::RequestNotWellFormed, "request-not-well-formed", 400),
            (ProtocolErrorKind::RequestNotValid, "request-not-valid", 400),
            (ProtocolErrorKind::UnsupportedProtocolVersion, "unsupported-protocol-version", 501),
            (ProtocolErrorKind::UnsupportedCimVersion, "unsupported-cim-version", 501),
            (ProtocolErrorKind::UnsupportedDtdVersion, "unsupported-dtd-version", 501),
            (ProtocolErrorKind::MultipleRequestsUnsupported, "multiple-requests-unsupported", 501),
        ];
        for (kind, header, status) in table {
            assert_eq!(kind.header_value(), header);
            assert_eq!(kind.http_status(), status);
        }
        let e = DecodeError::value("bad").within("PROPERTY \"X\"").within("INSTANCE \"C\"");
        assert_eq!(e.message, "INSTANCE \"C\" > PROPERTY \"X\" > bad");
    }
}
