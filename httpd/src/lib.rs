//! Plumbing shared by both front doors.

pub mod auth;

pub use auth::{AuthError, Authenticator, Principal, Role};
