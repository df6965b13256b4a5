//! The Xen-API front door: XML-RPC on `POST /` and `POST /RPC2`, JSON-RPC on `POST /jsonrpc`,
//! over the shared [`httpd`] server. The wire codecs are [`xmlrpc`] and [`jsonrpc`]; what a call
//! does is up to a [`Dispatch`], which the model implements.
//!
//! ```no_run
//! # async fn run(dispatch: std::sync::Arc<dyn xenapi::rpc::Dispatch>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9363").await?;
//! let handler = xenapi::rpc::handler(dispatch);
//! httpd::serve(listener, None, handler, httpd::Limits::default(), httpd::Shutdown::new()).await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use crate::value::Value;

pub mod jsonrpc;
mod server;
pub mod xmlrpc;

pub use server::handler;

/// Which codec a call arrived through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    XmlRpc,
    JsonRpc,
}

/// Where a call came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallContext {
    pub peer: SocketAddr,
    pub tls: bool,
    pub protocol: Protocol,
    /// The user the connection's verified TLS client certificate names, if it has one.
    pub cert_user: Option<std::sync::Arc<str>>,
}

/// The result of one call, before encoding.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `Status=Success`, `Value=...` (void is [`Value::void`]).
    Success(Value),
    /// `Status=Failure`, `ErrorDescription=[CODE, args...]`.
    Failure(Vec<String>),
    /// `system.listMethods` answers a bare value without the envelope.
    Bare(Value),
}

/// Carries out calls. Implemented by the model's dispatcher; tests use fakes.
pub trait Dispatch: Send + Sync + 'static {
    /// May block (event.from long-polls, VM operations wait for the hypervisor): the server
    /// calls it on tokio's blocking pool.
    fn call(&self, method: &str, params: Vec<Value>, ctx: &CallContext) -> Outcome;
}
