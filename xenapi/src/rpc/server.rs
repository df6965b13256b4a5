//! HTTP routing for the Xen-API door.
//!
//! - `POST /` and `POST /RPC2`: XML-RPC; `POST /jsonrpc`: JSON-RPC; any other path 404.
//! - Other methods on those paths: 405 with a one-line hint, except `OPTIONS`, which answers
//!   the CORS preflight browsers send before a cross-origin JSON `POST`.
//! - Every API-level result, success or failure, is HTTP 200 (`text/xml` or `application/json`)
//!   with `Access-Control-Allow-Origin: *`, as xapi does.
//! - An XML-RPC body that does not parse, or goes beyond the [`Limits`], gets HTTP 500 with a short `text/plain` reason, as
//!   xapi answers one (`reference/xenapi-anchors.md` §2.3, §8.1): an API-level `Failure` would
//!   claim the call was understood, and the SDK turns a 500 into a `ProtocolError`. JSON-RPC
//!   carries its own parse errors (see [`jsonrpc`](super::jsonrpc)).
//! - Decoding, the call and encoding all run on tokio's blocking pool: calls may block, and
//!   encoding a large `get_all_records` takes long enough to stall an async worker.
//! - A panicking [`Dispatch`] becomes `Failure ["INTERNAL_ERROR", "panic: ..."]` instead of a
//!   dropped connection.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use httpd::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CONTENT_TYPE};
use httpd::{text_response, BoxFuture, Bytes, ConnInfo, Method, Request, Response, StatusCode};

use super::{jsonrpc, xmlrpc, CallContext, Dispatch, Limits, Outcome, Protocol};
use crate::value::Value;

/// The HTTP handler of the Xen-API door, for [`httpd::serve`], with the default [`Limits`].
pub fn handler(dispatch: Arc<dyn Dispatch>) -> Arc<dyn httpd::Handler> {
    handler_with_limits(dispatch, Limits::default())
}

/// [`handler`], holding requests to `limits`.
pub fn handler_with_limits(dispatch: Arc<dyn Dispatch>, limits: Limits) -> Arc<dyn httpd::Handler> {
    Arc::new(RpcHandler { dispatch, limits })
}

struct RpcHandler {
    dispatch: Arc<dyn Dispatch>,
    limits: Limits,
}

impl httpd::Handler for RpcHandler {
    fn handle(&self, req: Request, conn: ConnInfo) -> BoxFuture<Response> {
        let dispatch = self.dispatch.clone();
        Box::pin(route(dispatch, self.limits, req, conn))
    }
}

const USAGE: &str = "Xen-API: POST XML-RPC to / or /RPC2, JSON-RPC to /jsonrpc";

async fn route(dispatch: Arc<dyn Dispatch>, limits: Limits, req: Request, conn: ConnInfo) -> Response {
    let protocol = match req.uri().path() {
        "/" | "/RPC2" => Protocol::XmlRpc,
        "/jsonrpc" => Protocol::JsonRpc,
        _ => return text_response(StatusCode::NOT_FOUND, "not found"),
    };
    if req.method() == Method::OPTIONS {
        return preflight();
    }
    if req.method() != Method::POST {
        let mut resp = text_response(StatusCode::METHOD_NOT_ALLOWED, USAGE);
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        return resp;
    }
    let ctx = CallContext { peer: conn.peer, tls: conn.tls, protocol, cert_user: conn.cert_user };
    let body = req.into_body();
    let reply = tokio::task::spawn_blocking(move || answer(&*dispatch, &limits, &body, &ctx)).await;
    let reply = reply.unwrap_or_else(|e| {
        // Only reachable if the runtime shuts down under us: `answer` catches panics itself.
        tracing::error!(error = %e, "Xen-API call task failed");
        Reply { status: StatusCode::INTERNAL_SERVER_ERROR, content_type: "text/plain", body: b"internal error\n".to_vec() }
    });
    let mut resp = Response::new(httpd::Body::from(reply.body));
    *resp.status_mut() = reply.status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    resp
}

fn preflight() -> Response {
    let mut resp = Response::new(httpd::Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("content-type, authorization, originator"));
    h.insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    resp
}

struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

fn answer(dispatch: &dyn Dispatch, limits: &Limits, body: &Bytes, ctx: &CallContext) -> Reply {
    match ctx.protocol {
        Protocol::XmlRpc => match xmlrpc::parse_call_with(body, limits) {
            Err(e) => {
                tracing::debug!(peer = %ctx.peer, error = %e, "malformed XML-RPC request");
                Reply {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    content_type: "text/plain; charset=utf-8",
                    body: format!("{e}\n").into_bytes(),
                }
            }
            Ok(call) => {
                let outcome = call_guarded(dispatch, &call.method, call.params, ctx);
                Reply { status: StatusCode::OK, content_type: "text/xml", body: xmlrpc::response_bytes(&outcome) }
            }
        },
        Protocol::JsonRpc => {
            let body = match jsonrpc::parse_request_with(body, limits) {
                Err(e) => {
                    tracing::debug!(peer = %ctx.peer, code = e.code, detail = %e.detail, "bad JSON-RPC request");
                    jsonrpc::error_bytes(&e)
                }
                Ok(req) => {
                    let outcome = call_guarded(dispatch, &req.method, req.params, ctx);
                    jsonrpc::response_bytes(req.version, &req.id, &outcome)
                }
            };
            Reply { status: StatusCode::OK, content_type: "application/json", body }
        }
    }
}

fn call_guarded(dispatch: &dyn Dispatch, method: &str, params: Vec<Value>, ctx: &CallContext) -> Outcome {
    let started = Instant::now();
    // Parameters are not logged: login carries a password.
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch.call(method, params, ctx))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        tracing::error!(method, peer = %ctx.peer, panic = %what, "Xen-API call panicked");
        Outcome::Failure(vec!["INTERNAL_ERROR".to_owned(), format!("panic: {what}")])
    });
    tracing::debug!(
        method,
        peer = %ctx.peer,
        protocol = ?ctx.protocol,
        failure = matches!(outcome, Outcome::Failure(_)),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Xen-API call"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// `echo` returns its params; `block` waits (up to 5 s) for a `release` from anyone;
    /// `fail`, `panic`, `whoami` and `system.listMethods` do what they say.
    #[derive(Default)]
    struct Fake {
        released: Mutex<bool>,
        cv: Condvar,
    }

    impl Dispatch for Fake {
        fn call(&self, method: &str, params: Vec<Value>, ctx: &CallContext) -> Outcome {
            match method {
                "echo" | "session.login_with_password" => Outcome::Success(Value::Array(params)),
                "block" => {
                    let guard = self.released.lock().unwrap();
                    let (guard, _) = self.cv.wait_timeout_while(guard, Duration::from_secs(5), |r| !*r).unwrap();
                    if *guard {
                        Outcome::Success(Value::str("released"))
                    } else {
                        Outcome::Failure(vec!["TIMED_OUT".into()])
                    }
                }
                "release" => {
                    *self.released.lock().unwrap() = true;
                    self.cv.notify_all();
                    Outcome::Success(Value::void())
                }
                "fail" => Outcome::Failure(vec!["VM_BAD_POWER_STATE".into(), "OpaqueRef:a".into(), "halted".into(), "running".into()]),
                "panic" => panic!("deliberate test panic"),
                "whoami" => Outcome::Success(Value::Struct(vec![
                    ("protocol".into(), Value::str(format!("{:?}", ctx.protocol))),
                    ("tls".into(), Value::Bool(ctx.tls)),
                    ("loopback".into(), Value::Bool(ctx.peer.ip().is_loopback())),
                ])),
                "system.listMethods" => Outcome::Bare(Value::Array(vec![Value::str("echo"), Value::str("block")])),
                other => Outcome::Failure(vec!["MESSAGE_METHOD_UNKNOWN".into(), other.into()]),
            }
        }
    }

    async fn start(limits: httpd::Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let h = handler(Arc::new(Fake::default()));
        tokio::spawn(httpd::serve(listener, None, h, limits, httpd::Shutdown::new()));
        addr
    }

    struct Http {
        conn: BufReader<TcpStream>,
    }

    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Resp {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
        fn envelope(&self) -> Value {
            assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
            assert_eq!(self.header("content-type"), Some("text/xml"));
            xmlrpc::parse_response(&self.body).unwrap()
        }
        fn json(&self) -> serde_json::Value {
            assert_eq!(self.status, 200);
            assert_eq!(self.header("content-type"), Some("application/json"));
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    impl Http {
        async fn connect(addr: SocketAddr) -> Http {
            Http { conn: BufReader::new(TcpStream::connect(addr).await.unwrap()) }
        }

        async fn send(&mut self, method: &str, path: &str, body: &[u8]) {
            let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n", body.len());
            let s = self.conn.get_mut();
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(body).await.unwrap();
        }

        async fn recv(&mut self) -> Resp {
            let mut line = String::new();
            self.conn.read_line(&mut line).await.unwrap();
            let status = line.split(' ').nth(1).unwrap_or_else(|| panic!("status line {line:?}")).parse().unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                self.conn.read_line(&mut line).await.unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.push((k.to_owned(), v.trim().to_owned()));
            }
            let mut resp = Resp { status, headers, body: Vec::new() };
            // 204 has no Content-Length; every other answer here must have one.
            let len: usize = match resp.header("content-length") {
                Some(l) => l.parse().unwrap(),
                None if status == 204 => 0,
                None => panic!("no content-length"),
            };
            resp.body = vec![0; len];
            self.conn.read_exact(&mut resp.body).await.unwrap();
            resp
        }

        async fn call(&mut self, path: &str, body: &[u8]) -> Resp {
            self.send("POST", path, body).await;
            self.recv().await
        }
    }

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    fn success(v: Value) -> Value {
        Value::Struct(vec![("Status".into(), s("Success")), ("Value".into(), v)])
    }

    const LOGIN: &[u8] = b"<?xml version='1.0'?>\n<methodCall>\n<methodName>session.login_with_password</methodName>\n<params>\n<param>\n<value><string>root</string></value>\n</param>\n<param>\n<value><string>pw</string></value>\n</param>\n<param>\n<value><string>1.0</string></value>\n</param>\n<param>\n<value><string>test</string></value>\n</param>\n</params>\n</methodCall>\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn xml_rpc_with_keep_alive_on_both_paths() {
        let addr = start(httpd::Limits::default()).await;
        let mut c = Http::connect(addr).await;
        let r = c.call("/RPC2", LOGIN).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.envelope(), success(Value::Array(vec![s("root"), s("pw"), s("1.0"), s("test")])));

        let call = xmlrpc::call_bytes("echo", &[Value::Int(5), Value::Bool(true), Value::Nil]);
        let r = c.call("/", &call).await;
        assert_eq!(r.envelope(), success(Value::Array(vec![s("5"), Value::Bool(true), s("")])));

        let r = c.call("/", &xmlrpc::call_bytes("fail", &[])).await;
        assert_eq!(
            r.envelope(),
            Value::Struct(vec![
                ("Status".into(), s("Failure")),
                ("ErrorDescription".into(), Value::Array(vec![s("VM_BAD_POWER_STATE"), s("OpaqueRef:a"), s("halted"), s("running")])),
            ])
        );
        let r = c.call("/", &xmlrpc::call_bytes("system.listMethods", &[])).await;
        assert_eq!(r.envelope(), Value::Array(vec![s("echo"), s("block")]));

        let r = c.call("/", &xmlrpc::call_bytes("whoami", &[])).await;
        assert_eq!(
            r.envelope(),
            success(Value::Struct(vec![
                ("protocol".into(), s("XmlRpc")),
                ("tls".into(), Value::Bool(false)),
                ("loopback".into(), Value::Bool(true)),
            ]))
        );

        // A panic is an API-level failure and the connection lives on.
        let r = c.call("/", &xmlrpc::call_bytes("panic", &[])).await;
        let env = r.envelope();
        assert_eq!(env.member("Status"), Some(&s("Failure")));
        assert_eq!(env.member("ErrorDescription"), Some(&Value::Array(vec![s("INTERNAL_ERROR"), s("panic: deliberate test panic")])));
        let r = c.call("/RPC2", &xmlrpc::call_bytes("echo", &[])).await;
        assert_eq!(r.envelope(), success(Value::Array(vec![])));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_call_does_not_hold_up_other_connections() {
        let addr = start(httpd::Limits::default()).await;
        let mut first = Http::connect(addr).await;
        first.send("POST", "/", &xmlrpc::call_bytes("block", &[])).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = Http::connect(addr).await;
        let r = tokio::time::timeout(Duration::from_secs(3), second.call("/RPC2", &xmlrpc::call_bytes("release", &[])))
            .await
            .expect("second connection served while the first call blocks");
        assert_eq!(r.envelope(), success(s("")));
        let r = tokio::time::timeout(Duration::from_secs(3), first.recv()).await.unwrap();
        assert_eq!(r.envelope(), success(s("released")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routing_and_malformed_bodies() {
        let addr = start(httpd::Limits::default()).await;
        let mut c = Http::connect(addr).await;
        let r = c.call("/other", LOGIN).await;
        assert_eq!(r.status, 404);
        c.send("GET", "/", b"").await;
        let r = c.recv().await;
        assert_eq!((r.status, r.header("allow")), (405, Some("POST, OPTIONS")));
        c.send("OPTIONS", "/jsonrpc", b"").await;
        let r = c.recv().await;
        assert_eq!((r.status, r.header("access-control-allow-origin")), (204, Some("*")));

        for bad in [
            &b"<methodCall><methodName>echo</methodName><params><param><value><int>abc</int></value></param></params></methodCall>"[..],
            b"",
            b"\xff\xfe",
        ] {
            let r = c.call("/", bad).await;
            assert_eq!(r.status, 500);
            assert!(r.header("content-type").unwrap().starts_with("text/plain"));
            let text = String::from_utf8(r.body).unwrap();
            assert!(text.starts_with("malformed XML-RPC") && !text.contains("Success"), "{text}");
        }
        // Still usable after the errors.
        assert_eq!(c.call("/", &xmlrpc::call_bytes("echo", &[])).await.envelope(), success(Value::Array(vec![])));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_rpc_both_versions() {
        let addr = start(httpd::Limits::default()).await;
        let mut c = Http::connect(addr).await;
        let r =
            c.call("/jsonrpc", br#"{"jsonrpc":"2.0","method":"echo","params":["OpaqueRef:s",1,2.5,true,null,{"b":1,"a":2}],"id":1}"#).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let text = String::from_utf8(r.body.clone()).unwrap();
        assert_eq!(text, r#"{"jsonrpc":"2.0","result":["OpaqueRef:s",1,2.5,true,null,{"b":1,"a":2}],"id":1}"#);
        let r = c.call("/jsonrpc", br#"{"method":"fail","params":[],"id":"x"}"#).await;
        assert_eq!(r.json(), serde_json::json!({"result":null,"error":["VM_BAD_POWER_STATE","OpaqueRef:a","halted","running"],"id":"x"}));
        let r = c.call("/jsonrpc", br#"{"jsonrpc":"2.0","method":"fail","params":[],"id":2}"#).await;
        assert_eq!(
            r.json(),
            serde_json::json!({"jsonrpc":"2.0","error":{"code":1,"message":"VM_BAD_POWER_STATE","data":["OpaqueRef:a","halted","running"]},"id":2})
        );
        let r = c.call("/jsonrpc", br#"{"jsonrpc":"2.0","method":"whoami","id":3}"#).await;
        assert_eq!(r.json()["result"]["protocol"], "JsonRpc");
        let r = c.call("/jsonrpc", b"{oops").await;
        assert_eq!(r.json()["error"]["code"], jsonrpc::PARSE_ERROR);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_handler_holds_requests_to_its_limits() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits { max_string_bytes: 8, ..Limits::default() };
        let h = handler_with_limits(Arc::new(Fake::default()), limits);
        tokio::spawn(httpd::serve(listener, None, h, httpd::Limits::default(), httpd::Shutdown::new()));
        let mut c = Http::connect(addr).await;
        let r = c.call("/", &xmlrpc::call_bytes("echo", &[s("123456789")])).await;
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 500);
        assert!(text.starts_with("malformed XML-RPC") && text.contains("longer than 8 bytes (max_string_bytes)"), "{text}");
        let r = c.call("/jsonrpc", br#"{"jsonrpc":"2.0","method":"echo","params":["123456789"],"id":1}"#).await;
        let j = r.json();
        assert_eq!(j["error"]["code"], jsonrpc::PARSE_ERROR);
        assert!(j["error"]["data"][0].as_str().unwrap().contains("longer than 8 bytes (max_string_bytes)"), "{j}");
        // The same connection carries on within the limits.
        assert_eq!(c.call("/", &xmlrpc::call_bytes("echo", &[s("12345678")])).await.envelope(), success(Value::Array(vec![s("12345678")])));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_too_big_body_is_refused() {
        let addr = start(httpd::Limits { max_body_bytes: 4096, ..httpd::Limits::default() }).await;
        let mut c = Http::connect(addr).await;
        let big = xmlrpc::call_bytes("echo", &[Value::str("x".repeat(5000))]);
        let r = c.call("/", &big).await;
        assert_eq!(r.status, 413);
        let mut c = Http::connect(addr).await;
        let small = xmlrpc::call_bytes("echo", &[Value::str("x".repeat(3000))]);
        assert_eq!(c.call("/", &small).await.status, 200);
    }
}
