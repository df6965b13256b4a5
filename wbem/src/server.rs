//! The WBEM door on HTTP(S): DSP0200 headers, HTTP Basic authentication through the shared
//! [`Authenticator`], CIM-XML decoding, the operation on tokio's blocking pool, and the response
//! — whole with `Content-Length` when small, streamed in chunks when large, with the
//! `CIMStatusCode` / `CIMStatusCodeDescription` trailers for clients that sent `TE: trailers`.
//!
//! Every POST path is accepted (`/cimom` is the usual one), and `M-POST` with the `Man:`
//! extension-header prefixes of DSP0200.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use httpd::auth::{AuthError, Authenticator, Principal};
use httpd::http::{HeaderMap, HeaderValue};
use httpd::{Body, BodySender, ConnInfo, Handler, Request, Response, StatusCode};
use parking_lot::Mutex;

use crate::cim::{CimError, CimStatus, ObjectPath};
use crate::cimxml::{error_response, parse_request_with, Call, ParseLimits, RequestError};
use crate::ops::{canonical_namespace, CallError, ChunkSink, Cimom, ClientGone};

/// Responses up to this size go out whole, with `Content-Length`; larger ones are streamed.
const STREAM_AFTER: usize = 256 * 1024;
/// Chunks queued towards a slow client before the operation waits.
const CHANNEL_CHUNKS: usize = 8;
/// How long a verified user name and password are trusted without asking the authenticator
/// again. Every CIM-XML request carries Basic credentials; verifying an argon2 hash each time
/// would cost more than most operations.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
const CREDENTIAL_CACHE_MAX: usize = 1024;

/// The WBEM door; [`handler`] wraps it for [`httpd::serve`].
pub struct WbemHandler {
    cimom: Cimom,
    auth: Arc<dyn Authenticator>,
    limits: ParseLimits,
    cache: Mutex<CredentialCache>,
    /// Where changing operations and method calls are recorded.
    audit: Option<Arc<dyn httpd::AuditSink>>,
}

/// Intrinsic operations that change the repository or the managed system; every extrinsic
/// method call is recorded too, as methods are how CIM changes things.
const CHANGING_OPERATIONS: &[&str] = &[
    "CreateInstance",
    "ModifyInstance",
    "DeleteInstance",
    "SetProperty",
    "CreateClass",
    "ModifyClass",
    "DeleteClass",
    "SetQualifier",
    "DeleteQualifier",
];

/// What proves a login.
#[derive(Clone)]
enum Proof {
    Password(String),
    /// The user a verified client certificate names.
    Cert(Arc<str>),
}

#[derive(Default)]
struct CredentialCache {
    /// Random per process, so that the digests mean nothing outside it.
    salt: [u8; 16],
    entries: HashMap<(String, [u8; 32]), (Principal, Instant)>,
}

impl CredentialCache {
    fn new() -> CredentialCache {
        let mut salt = [0u8; 16];
        let _ = openssl::rand::rand_bytes(&mut salt);
        CredentialCache { salt, entries: HashMap::new() }
    }

    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = openssl::sha::Sha256::new();
        h.update(&self.salt);
        h.update(password.as_bytes());
        h.finish()
    }

    /// A login by client certificate is keyed by the certificate's user behind a 0xff byte,
    /// which no password (UTF-8) contains, so neither can stand for the other.
    fn key(&self, user: &str, proof: &Proof) -> (String, [u8; 32]) {
        let digest = match proof {
            Proof::Password(p) => self.digest(p),
            Proof::Cert(cert_user) => {
                let mut h = openssl::sha::Sha256::new();
                h.update(&self.salt);
                h.update(b"\xff");
                h.update(cert_user.as_bytes());
                h.finish()
            }
        };
        (user.to_string(), digest)
    }

    fn get(&mut self, user: &str, proof: &Proof) -> Option<Principal> {
        let key = self.key(user, proof);
        match self.entries.get(&key) {
            Some((p, at)) if at.elapsed() < CREDENTIAL_CACHE_TTL => Some(p.clone()),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, user: &str, proof: &Proof, principal: Principal) {
        if self.entries.len() >= CREDENTIAL_CACHE_MAX {
            self.entries.retain(|_, (_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL);
            if self.entries.len() >= CREDENTIAL_CACHE_MAX {
                self.entries.clear();
            }
        }
        let key = self.key(user, proof);
        self.entries.insert(key, (principal, Instant::now()));
    }
}

fn cim_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(httpd::header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=\"utf-8\""));
    h.insert("CIMOperation", HeaderValue::from_static("MethodResponse"));
}

fn protocol_error(status: u16, cim_error: &'static str, text: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = httpd::text_response(status, text);
    resp.headers_mut().insert("CIMError", HeaderValue::from_static(cim_error));
    resp
}

fn unauthorized(text: &str) -> Response {
    let mut resp = httpd::text_response(StatusCode::UNAUTHORIZED, text);
    resp.headers_mut().insert(httpd::header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"xencim\""));
    resp
}

fn full_xml(bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::full(bytes));
    cim_headers(&mut resp);
    resp
}

/// A DSP0200 header, directly or with the `NN-` prefix an M-POST request declares in `Man:`.
fn cim_header<'h>(headers: &'h HeaderMap, name: &str, mpost: bool) -> Option<&'h str> {
    if let Some(v) = headers.get(name) {
        return v.to_str().ok();
    }
    if mpost {
        for (k, v) in headers {
            let k = k.as_str();
            if k.len() > name.len() + 1 && k.ends_with(&name.to_ascii_lowercase()) && k.as_bytes()[k.len() - name.len() - 1] == b'-' {
                return v.to_str().ok();
            }
        }
    }
    None
}

/// `%XX` escapes, as wbemcli writes `CIMObject: root%2Fvirt`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the `CIMObject` header names what the body does: the namespace of an intrinsic call,
/// the target of an extrinsic one.
fn cim_object_matches(header: &str, call: &Call) -> bool {
    let decoded = percent_decode(header.trim());
    match call {
        Call::Intrinsic(c) => canonical_namespace(&decoded) == canonical_namespace(&c.namespace),
        Call::Extrinsic(c) => {
            let target = c.target.path();
            match ObjectPath::parse(&decoded) {
                Ok(p) => {
                    let ns_ok = match (&p.namespace, &target.namespace) {
                        (Some(a), Some(b)) => canonical_namespace(a) == canonical_namespace(b),
                        _ => true,
                    };
                    ns_ok && crate::cim::names_equal(&p.class_name, &target.class_name)
                }
                Err(_) => false,
            }
        }
        Call::Export(_) => true,
    }
}

/// Where the operation's bytes go: gathered until [`STREAM_AFTER`], then streamed.
struct StreamingSink {
    buffer: Vec<u8>,
    reply: Option<tokio::sync::oneshot::Sender<Response>>,
    sender: Option<BodySender>,
    trailers: bool,
    handle: tokio::runtime::Handle,
}

impl StreamingSink {
    fn streaming(&self) -> bool {
        self.sender.is_some()
    }

    fn start_stream(&mut self) -> Result<(), ClientGone> {
        let (sender, body) = Body::channel(CHANNEL_CHUNKS);
        let mut resp = Response::new(body);
        cim_headers(&mut resp);
        if self.trailers {
            resp.headers_mut().insert(httpd::header::TRAILER, HeaderValue::from_static("CIMStatusCode, CIMStatusCodeDescription"));
        }
        let reply = self.reply.take().ok_or(ClientGone)?;
        reply.send(resp).map_err(|_| ClientGone)?;
        self.sender = Some(sender);
        let first = std::mem::take(&mut self.buffer);
        self.push(first)
    }

    fn push(&mut self, chunk: Vec<u8>) -> Result<(), ClientGone> {
        let sender = self.sender.as_ref().ok_or(ClientGone)?;
        self.handle.block_on(sender.send(chunk)).map_err(|_| ClientGone)
    }

    fn finish(mut self, error: Option<&CimError>) {
        if let Some(sender) = self.sender.take() {
            let trailers = if self.trailers {
                let mut t = HeaderMap::new();
                let (code, description) = match error {
                    None => (0, String::new()),
                    Some(e) => (e.status.code(), e.to_string()),
                };
                t.insert("CIMStatusCode", HeaderValue::from(code));
                if !description.is_empty() {
                    let clean: String = description.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
                    if let Ok(v) = HeaderValue::from_str(&clean) {
                        t.insert("CIMStatusCodeDescription", v);
                    }
                }
                Some(t)
            } else {
                None
            };
            if error.is_some() && trailers.is_none() {
                // Without trailers the only honest signal is a cut connection: dropping the
                // sender aborts the chunked body.
                return;
            }
            let _ = self.handle.block_on(sender.finish(trailers));
        }
    }
}

impl ChunkSink for StreamingSink {
    fn send(&mut self, chunk: Vec<u8>) -> Result<(), ClientGone> {
        if self.streaming() {
            return self.push(chunk);
        }
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() > STREAM_AFTER {
            self.start_stream()?;
        }
        Ok(())
    }
}

impl WbemHandler {
    pub fn new(cimom: Cimom, auth: Arc<dyn Authenticator>) -> WbemHandler {
        WbemHandler { cimom, auth, limits: ParseLimits::default(), cache: Mutex::new(CredentialCache::new()), audit: None }
    }

    pub fn with_audit(mut self, audit: Option<Arc<dyn httpd::AuditSink>>) -> WbemHandler {
        self.audit = audit;
        self
    }

    /// The bounds on request documents (the defaults unless set).
    pub fn with_limits(mut self, limits: ParseLimits) -> WbemHandler {
        self.limits = limits;
        self
    }

    fn audit_call(
        &self,
        principal: &Principal,
        peer: std::net::IpAddr,
        object: &str,
        request: &crate::cimxml::Request,
        result: &Result<(), CallError>,
    ) {
        let Some(audit) = &self.audit else { return };
        let changing = match &request.call {
            Call::Intrinsic(c) => CHANGING_OPERATIONS.iter().any(|op| crate::cim::names_equal(op, &c.name)),
            Call::Extrinsic(_) => true,
            Call::Export(_) => false,
        };
        if !changing {
            return;
        }
        audit.record(&httpd::AuditEvent {
            door: "wbem",
            user: &principal.user,
            peer,
            action: request.method_name(),
            method: None,
            target: Some(object),
            result: match result {
                Ok(()) => Ok(()),
                Err(CallError::Cim(e)) => Err(e.status.name().to_owned()),
                Err(CallError::ClientGone) => Err("client gone".into()),
            },
        });
    }

    /// HTTP Basic credentials, or on a connection with a verified client certificate the
    /// certificate's user: a request without `Authorization` acts as that user, and one with
    /// Basic credentials must name that user (the password is then not checked); see
    /// docs/tls.md.
    async fn authenticate(self: &Arc<Self>, req: &Request, conn: &ConnInfo) -> Result<Principal, Response> {
        let basic = httpd::parse_basic_auth(req.headers());
        // The user asked for, and what proves it.
        let (user, proof) = match (&conn.cert_user, basic) {
            (None, Some((user, password))) => (user, Proof::Password(password)),
            (None, None) => return Err(unauthorized("credentials required (HTTP Basic)")),
            (Some(cert_user), Some((user, _))) => (user, Proof::Cert(cert_user.clone())),
            (Some(_), None) if req.headers().contains_key(httpd::header::AUTHORIZATION) => {
                return Err(unauthorized("the Authorization header is not HTTP Basic"));
            }
            (Some(cert_user), None) => (cert_user.to_string(), Proof::Cert(cert_user.clone())),
        };
        if let Some(p) = self.cache.lock().get(&user, &proof) {
            return Ok(p);
        }
        let auth = self.auth.clone();
        let peer = conn.peer.ip();
        let (u, pr) = (user.clone(), proof.clone());
        let verdict = tokio::task::spawn_blocking(move || match &pr {
            Proof::Cert(cert_user) => auth.authenticate_certificate(&u, cert_user, peer),
            Proof::Password(password) => auth.authenticate(&u, password, peer),
        })
        .await;
        match verdict {
            Ok(Ok(principal)) => {
                self.cache.lock().put(&user, &proof, principal.clone());
                Ok(principal)
            }
            Ok(Err(e @ AuthError::RateLimited { .. })) => {
                tracing::warn!(%user, peer = %conn.peer, "WBEM: login refused by the rate limit");
                Err(httpd::text_response(StatusCode::FORBIDDEN, e.to_string()))
            }
            Ok(Err(AuthError::Unavailable(why))) => {
                tracing::error!(%user, peer = %conn.peer, error = %why, "WBEM: cannot check credentials");
                Err(httpd::text_response(StatusCode::SERVICE_UNAVAILABLE, "authentication service unavailable"))
            }
            Ok(Err(e)) => {
                tracing::warn!(%user, peer = %conn.peer, reason = %e, "WBEM: authentication failed");
                Err(unauthorized("authentication failed"))
            }
            Err(_) => Err(httpd::text_response(StatusCode::INTERNAL_SERVER_ERROR, "authentication failed unexpectedly")),
        }
    }

    async fn answer(self: Arc<Self>, req: Request, conn: ConnInfo) -> Response {
        let mpost = req.method().as_str() == "M-POST";
        if req.method() != httpd::Method::POST && !mpost {
            let mut resp = httpd::text_response(StatusCode::METHOD_NOT_ALLOWED, "CIM-XML requests are POSTed");
            resp.headers_mut().insert(httpd::header::ALLOW, HeaderValue::from_static("POST, M-POST"));
            return resp;
        }
        let principal = match self.authenticate(&req, &conn).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let headers = req.headers();
        match cim_header(headers, "CIMOperation", mpost) {
            Some(op) if op.trim().eq_ignore_ascii_case("MethodCall") => {}
            Some(op) if op.trim().eq_ignore_ascii_case("MethodRequest") || cim_header(headers, "CIMExport", mpost).is_some() => {
                return protocol_error(400, "unsupported-operation", "this is a CIM server, not an indication listener".into());
            }
            Some(op) => return protocol_error(400, "unsupported-operation", format!("CIMOperation '{op}' is not MethodCall")),
            None => return protocol_error(400, "unsupported-operation", "the CIMOperation header is missing".into()),
        }
        if let Some(v) = cim_header(headers, "CIMProtocolVersion", mpost) {
            if v.trim().split('.').next() != Some("1") {
                return protocol_error(501, "unsupported-protocol-version", format!("CIMProtocolVersion {v} (1.x is supported)"));
            }
        }
        let Some(method) = cim_header(headers, "CIMMethod", mpost).map(|m| percent_decode(m.trim())) else {
            return protocol_error(400, "header-mismatch", "the CIMMethod header is missing".into());
        };
        let Some(object) = cim_header(headers, "CIMObject", mpost).map(str::to_string) else {
            return protocol_error(400, "header-mismatch", "the CIMObject header is missing".into());
        };
        let trailers = headers
            .get_all(httpd::header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers"))));
        let request = match parse_request_with(req.body(), &self.limits) {
            Ok(r) => r,
            Err(RequestError::Protocol(p)) => {
                tracing::debug!(peer = %conn.peer, error = %p, "WBEM: bad request");
                return protocol_error(p.kind.http_status(), p.kind.header_value(), p.description);
            }
            Err(e @ RequestError::Cim { .. }) => return full_xml(e.to_response().unwrap_or_default()),
        };
        if matches!(request.call, Call::Export(_)) {
            return protocol_error(400, "unsupported-operation", "this is a CIM server, not an indication listener".into());
        }
        if !crate::cim::names_equal(&method, request.method_name()) {
            return protocol_error(400, "header-mismatch", format!("CIMMethod '{method}' but the body calls {}", request.method_name()));
        }
        if !cim_object_matches(&object, &request.call) {
            return protocol_error(400, "header-mismatch", format!("CIMObject '{object}' does not match the body"));
        }
        tracing::debug!(user = %principal.user, peer = %conn.peer, method = %request.method_name(), "WBEM call");

        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        let handle = tokio::runtime::Handle::current();
        let peer = conn.peer.ip();
        let task = tokio::task::spawn_blocking(move || {
            let mut sink = StreamingSink { buffer: Vec::new(), reply: Some(tx), sender: None, trailers, handle };
            let result = this.cimom.call(&principal, &request, &mut sink);
            this.audit_call(&principal, peer, &object, &request, &result);
            if sink.streaming() {
                match &result {
                    Ok(()) => sink.finish(None),
                    Err(CallError::Cim(e)) => {
                        tracing::warn!(method = %request.method_name(), error = %e, "WBEM: operation failed after its response had started");
                        sink.finish(Some(e));
                    }
                    Err(CallError::ClientGone) => {}
                }
                return;
            }
            let body = match result {
                Ok(()) => std::mem::take(&mut sink.buffer),
                Err(CallError::Cim(e)) => {
                    if e.status == CimStatus::Failed {
                        tracing::warn!(method = %request.method_name(), error = %e, "WBEM: operation failed");
                    }
                    error_response(&request.message_id, request.kind(), request.method_name(), &e)
                }
                Err(CallError::ClientGone) => return,
            };
            if let Some(reply) = sink.reply.take() {
                let _ = reply.send(full_xml(body));
            }
        });
        match rx.await {
            Ok(resp) => resp,
            Err(_) => {
                let why = match task.await {
                    Err(e) if e.is_panic() => "the operation panicked",
                    _ => "the operation ended without a response",
                };
                tracing::error!(peer = %conn.peer, "WBEM: {why}");
                httpd::text_response(StatusCode::INTERNAL_SERVER_ERROR, why)
            }
        }
    }
}

/// The [`Handler`] around a shared [`WbemHandler`].
struct ArcHandler(Arc<WbemHandler>);

impl Handler for ArcHandler {
    fn handle(&self, req: Request, conn: ConnInfo) -> httpd::BoxFuture<Response> {
        Box::pin(self.0.clone().answer(req, conn))
    }
}

/// The WBEM door as the [`Handler`] that [`httpd::serve`] takes, for the HTTP and the HTTPS
/// listener alike.
pub fn handler(cimom: Cimom, auth: Arc<dyn Authenticator>) -> Arc<dyn Handler> {
    handler_with_audit(cimom, auth, None)
}

/// [`handler`], recording changing operations and method calls in `audit`.
pub fn handler_with_audit(cimom: Cimom, auth: Arc<dyn Authenticator>, audit: Option<Arc<dyn httpd::AuditSink>>) -> Arc<dyn Handler> {
    Arc::new(ArcHandler(Arc::new(WbemHandler::new(cimom, auth).with_audit(audit))))
}

/// [`handler_with_audit`], holding request documents to `limits`.
pub fn handler_with_limits(
    cimom: Cimom,
    auth: Arc<dyn Authenticator>,
    audit: Option<Arc<dyn httpd::AuditSink>>,
    limits: ParseLimits,
) -> Arc<dyn Handler> {
    Arc::new(ArcHandler(Arc::new(WbemHandler::new(cimom, auth).with_audit(audit).with_limits(limits))))
}
