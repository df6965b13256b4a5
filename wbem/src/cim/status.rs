//! CIM status codes of DSP0200 (table 6 of version 1.4) and the error type that carries them.

use std::fmt;

use super::Instance;

/// A DSP0200 status code other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CimStatus {
    Failed,
    AccessDenied,
    InvalidNamespace,
    InvalidParameter,
    InvalidClass,
    NotFound,
    NotSupported,
    ClassHasChildren,
    ClassHasInstances,
    InvalidSuperclass,
    AlreadyExists,
    NoSuchProperty,
    TypeMismatch,
    QueryLanguageNotSupported,
    InvalidQuery,
    MethodNotAvailable,
    MethodNotFound,
    NamespaceNotEmpty,
    InvalidEnumerationContext,
    InvalidOperationTimeout,
    PullHasBeenAbandoned,
    PullCannotBeAbandoned,
    FilteredEnumerationNotSupported,
    ContinuationOnErrorNotSupported,
    ServerLimitsExceeded,
    ServerIsShuttingDown,
}

const TABLE: [(CimStatus, u32, &str); 26] = [
    (CimStatus::Failed, 1, "CIM_ERR_FAILED"),
    (CimStatus::AccessDenied, 2, "CIM_ERR_ACCESS_DENIED"),
    (CimStatus::InvalidNamespace, 3, "CIM_ERR_INVALID_NAMESPACE"),
    (CimStatus::InvalidParameter, 4, "CIM_ERR_INVALID_PARAMETER"),
    (CimStatus::InvalidClass, 5, "CIM_ERR_INVALID_CLASS"),
    (CimStatus::NotFound, 6, "CIM_ERR_NOT_FOUND"),
    (CimStatus::NotSupported, 7, "CIM_ERR_NOT_SUPPORTED"),
    (CimStatus::ClassHasChildren, 8, "CIM_ERR_CLASS_HAS_CHILDREN"),
    (CimStatus::ClassHasInstances, 9, "CIM_ERR_CLASS_HAS_INSTANCES"),
    (CimStatus::InvalidSuperclass, 10, "CIM_ERR_INVALID_SUPERCLASS"),
    (CimStatus::AlreadyExists, 11, "CIM_ERR_ALREADY_EXISTS"),
    (CimStatus::NoSuchProperty, 12, "CIM_ERR_NO_SUCH_PROPERTY"),
    (CimStatus::TypeMismatch, 13, "CIM_ERR_TYPE_MISMATCH"),
    (CimStatus::QueryLanguageNotSupported, 14, "CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED"),
    (CimStatus::InvalidQuery, 15, "CIM_ERR_INVALID_QUERY"),
    (CimStatus::MethodNotAvailable, 16, "CIM_ERR_METHOD_NOT_AVAILABLE"),
    (CimStatus::MethodNotFound, 17, "CIM_ERR_METHOD_NOT_FOUND"),
    (CimStatus::NamespaceNotEmpty, 20, "CIM_ERR_NAMESPACE_NOT_EMPTY"),
    (CimStatus::InvalidEnumerationContext, 21, "CIM_ERR_INVALID_ENUMERATION_CONTEXT"),
    (CimStatus::InvalidOperationTimeout, 22, "CIM_ERR_INVALID_OPERATION_TIMEOUT"),
    (CimStatus::PullHasBeenAbandoned, 23, "CIM_ERR_PULL_HAS_BEEN_ABANDONED"),
    (CimStatus::PullCannotBeAbandoned, 24, "CIM_ERR_PULL_CANNOT_BE_ABANDONED"),
    (CimStatus::FilteredEnumerationNotSupported, 25, "CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED"),
    (CimStatus::ContinuationOnErrorNotSupported, 26, "CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED"),
    (CimStatus::ServerLimitsExceeded, 27, "CIM_ERR_SERVER_LIMITS_EXCEEDED"),
    (CimStatus::ServerIsShuttingDown, 28, "CIM_ERR_SERVER_IS_SHUTTING_DOWN"),
];

impl CimStatus {
    fn entry(self) -> &'static (CimStatus, u32, &'static str) {
        // The table is exhaustive over the enum, checked by a test.
        TABLE.iter().find(|e| e.0 == self).unwrap_or(&TABLE[0])
    }

    /// The numeric code (`CODE` attribute of `ERROR`, `CIMStatusCode` trailer).
    pub fn code(self) -> u32 {
        self.entry().1
    }

    /// The DSP0200 symbolic name, e.g. `CIM_ERR_NOT_FOUND`.
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    pub fn from_code(code: u32) -> Option<CimStatus> {
        TABLE.iter().find(|e| e.1 == code).map(|e| e.0)
    }

    pub fn all() -> impl Iterator<Item = CimStatus> {
        TABLE.iter().map(|e| e.0)
    }
}

impl fmt::Display for CimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CIM error: the status, a human-readable description, and optionally `CIM_Error` instances that
/// travel inside the CIM-XML `ERROR` element.
#[derive(Debug, Clone, PartialEq)]
pub struct CimError {
    pub status: CimStatus,
    pub description: String,
    pub instances: Vec<Instance>,
}

impl CimError {
    pub fn new(status: CimStatus, description: impl Into<String>) -> CimError {
        CimError { status, description: description.into(), instances: Vec::new() }
    }

    pub fn failed(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::Failed, description)
    }

    pub fn invalid_parameter(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::InvalidParameter, description)
    }

    pub fn not_found(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::NotFound, description)
    }

    pub fn not_supported(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::NotSupported, description)
    }

    pub fn invalid_class(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::InvalidClass, description)
    }

    pub fn invalid_namespace(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::InvalidNamespace, description)
    }

    pub fn access_denied(description: impl Into<String>) -> CimError {
        CimError::new(CimStatus::AccessDenied, description)
    }
}

impl fmt::Display for CimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.description.is_empty() {
            f.write_str(self.status.name())
        } else {
            write!(f, "{}: {}", self.status.name(), self.description)
        }
    }
}

impl std::error::Error for CimError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_match_dsp0200() {
        let expected = [
            (1, "CIM_ERR_FAILED"),
            (2, "CIM_ERR_ACCESS_DENIED"),
            (3, "CIM_ERR_INVALID_NAMESPACE"),
            (4, "CIM_ERR_INVALID_PARAMETER"),
            (5, "CIM_ERR_INVALID_CLASS"),
            (6, "CIM_ERR_NOT_FOUND"),
            (7, "CIM_ERR_NOT_SUPPORTED"),
            (8, "CIM_ERR_CLASS_HAS_CHILDREN"),
            (9, "CIM_ERR_CLASS_HAS_INSTANCES"),
            (10, "CIM_ERR_INVALID_SUPERCLASS"),
            (11, "CIM_ERR_ALREADY_EXISTS"),
            (12, "CIM_ERR_NO_SUCH_PROPERTY"),
            (13, "CIM_ERR_TYPE_MISMATCH"),
            (14, "CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED"),
            (15, "CIM_ERR_INVALID_QUERY"),
            (16, "CIM_ERR_METHOD_NOT_AVAILABLE"),
            (17, "CIM_ERR_METHOD_NOT_FOUND"),
            (20, "CIM_ERR_NAMESPACE_NOT_EMPTY"),
            (21, "CIM_ERR_INVALID_ENUMERATION_CONTEXT"),
            (22, "CIM_ERR_INVALID_OPERATION_TIMEOUT"),
            (23, "CIM_ERR_PULL_HAS_BEEN_ABANDONED"),
            (24, "CIM_ERR_PULL_CANNOT_BE_ABANDONED"),
            (25, "CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED"),
            (26, "CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED"),
            (27, "CIM_ERR_SERVER_LIMITS_EXCEEDED"),
            (28, "CIM_ERR_SERVER_IS_SHUTTING_DOWN"),
        ];
        assert_eq!(CimStatus::all().count(), expected.len());
        for (code, name) in expected {
            let status = CimStatus::from_code(code).unwrap();
            assert_eq!(status.code(), code);
            assert_eq!(status.name(), name);
        }
        // Every variant has its own row (entry() would silently fall back to row 0 otherwise).
        let mut codes: Vec<u32> = CimStatus::all().map(CimStatus::code).collect();
        codes.dedup();
        assert_eq!(codes.len(), expected.len());
        assert_eq!(CimStatus::ServerIsShuttingDown.code(), 28);
        assert_eq!(CimStatus::from_code(18), None);
        assert_eq!(CimStatus::from_code(0), None);
    }

    #[test]
    fn display() {
        assert_eq!(CimError::not_found("no VM").to_string(), "CIM_ERR_NOT_FOUND: no VM");
        assert_eq!(CimError::failed("").to_string(), "CIM_ERR_FAILED");
    }
}
