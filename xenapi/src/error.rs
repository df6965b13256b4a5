//! Xen-API errors: a code from xapi's table and its string arguments, exactly as they travel in
//! `ErrorDescription`.

pub use crate::datamodel::codes;
use crate::datamodel::ERRORS;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub args: Vec<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new<S: Into<String>>(code: &str, args: impl IntoIterator<Item = S>) -> ApiError {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        debug_assert!(
            ERRORS.iter().any(|(c, _)| *c == code) || code.starts_with("SR_BACKEND_FAILURE"),
            "{code} is not a declared Xen-API error code"
        );
        ApiError { code: code.to_owned(), args }
    }

    pub fn internal(message: impl fmt::Display) -> ApiError {
        ApiError::new(codes::INTERNAL_ERROR, [message.to_string()])
    }

    pub fn handle_invalid(class: &str, reference: &str) -> ApiError {
        ApiError::new(codes::HANDLE_INVALID, [class, reference])
    }

    pub fn invalid_value(field: &str, value: impl fmt::Display) -> ApiError {
        ApiError::new(codes::INVALID_VALUE, [field.to_owned(), value.to_string()])
    }

    pub fn not_implemented(function: &str) -> ApiError {
        ApiError::new(codes::NOT_IMPLEMENTED, [function])
    }

    pub fn operation_not_allowed(reason: impl Into<String>) -> ApiError {
        ApiError::new(codes::OPERATION_NOT_ALLOWED, [reason.into()])
    }

    /// `[CODE, args...]`, the wire form.
    pub fn description(&self) -> Vec<String> {
        std::iter::once(self.code.clone()).chain(self.args.iter().cloned()).collect()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.args.is_empty() {
            write!(f, ": {}", self.args.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The declared argument names of an error code (for documentation and human messages).
pub fn declared_args(code: &str) -> Option<&'static [&'static str]> {
    ERRORS.iter().find(|(c, _)| *c == code).map(|(_, a)| *a)
}
