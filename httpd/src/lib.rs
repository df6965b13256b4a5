//! Plumbing shared by both front doors: an HTTP/1.1 server on hyper with keep-alive, limits,
//! TLS and graceful shutdown ([`serve`]), response bodies that can stream with trailers
//! ([`Body`]), HTTP Basic credentials ([`parse_basic_auth`]), and who may do what ([`auth`]).
//!
//! A front door implements [`Handler`] and runs it with [`serve`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use httpd::{serve, text_response, ConnInfo, Limits, Request, Shutdown, StatusCode};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let handler = |req: Request, conn: ConnInfo| async move {
//!     text_response(StatusCode::OK, format!("{} {} from {}", req.method(), req.uri().path(), conn.peer))
//! };
//! let shutdown = Shutdown::new();
//! serve(listener, None, Arc::new(handler), Limits::default(), shutdown.clone()).await;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod auth;
mod basic;
mod body;
pub mod login_limit;
pub mod pam;
mod server;
mod tls;

pub use audit::{AuditEvent, AuditLog, AuditSink};
pub use auth::{AuthError, Authenticator, Principal, Role};
pub use basic::parse_basic_auth;
pub use body::{Body, BodyAborted, BodyClosed, BodySender};
pub use login_limit::{Guarded, LoginLimiter, LoginLimits};
pub use server::{serve, text_response, BoxFuture, ConnInfo, Handler, Limits, Request, Response, Shutdown};
pub use tls::{cert_user, ensure_self_signed, CertUserField, ClientCertConfig, TlsAcceptor};

/// The byte buffer request bodies arrive in.
pub use bytes::Bytes;
/// The `http` crate, as used in [`Request`] and [`Response`].
pub use hyper::http;
pub use hyper::{header, HeaderMap, Method, StatusCode};
