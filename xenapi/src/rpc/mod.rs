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

pub use server::{handler, handler_with_limits};

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

/// Bounds on one request, for both codecs of the door. The daemon sets them from its config;
/// a request beyond one is refused as malformed (XML-RPC: HTTP 500 with the reason as text;
/// JSON-RPC: error -32700), with the config key and its value in the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting of an XML-RPC document (`xml_max_depth`); each level of
    /// array or struct in a value takes three (`<value><array><data>`).
    pub xml_max_depth: usize,
    /// Most elements in one XML-RPC document (`xml_max_elements`).
    pub xml_max_elements: usize,
    /// Most attributes on one XML-RPC element (`xml_max_attributes`; XML-RPC uses none).
    pub xml_max_attributes: usize,
    /// Deepest nesting of JSON arrays and objects, the request object being level 1
    /// (`json_max_depth`).
    pub json_max_depth: usize,
    /// Longest string, in bytes once unescaped: the text of one XML-RPC element (a string,
    /// a member name, the method name), a JSON string or member name (`max_string_bytes`).
    pub max_string_bytes: usize,
    /// Most items of one array, and members of one struct (JSON object) (`max_array_items`).
    pub max_array_items: usize,
}

impl Limits {
    /// The highest `xml_max_depth` accepted: the XML-RPC decoder recurses once per value level
    /// (three elements), and 100 levels stay well inside a 2 MiB thread stack even unoptimised.
    pub const XML_DEPTH_CEILING: usize = 300;
    /// The highest `json_max_depth` accepted: serde_json refuses deeper documents itself,
    /// without naming the key.
    pub const JSON_DEPTH_CEILING: usize = 126;

    /// For documents the server wrote itself (responses, stored task results): only the
    /// nesting is bounded, so that a hostile server cannot overflow a client's stack.
    pub const UNBOUNDED: Limits = Limits {
        xml_max_depth: Limits::XML_DEPTH_CEILING,
        xml_max_elements: usize::MAX,
        xml_max_attributes: usize::MAX,
        json_max_depth: Limits::JSON_DEPTH_CEILING,
        max_string_bytes: usize::MAX,
        max_array_items: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            xml_max_depth: 100,
            xml_max_elements: 250_000,
            xml_max_attributes: 32,
            json_max_depth: 64,
            max_string_bytes: 1 << 20,
            max_array_items: 100_000,
        }
    }
}
