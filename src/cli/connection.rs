//! The wire: one blocking HTTP/1.1 POST per Xen-API call (plain TCP or TLS through openssl),
//! the project's own XML-RPC codec, a logged-in session, and `Async.` calls followed to their
//! end through their task.

use super::errors::{Failure, Names, Result};
use super::output::Progress;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};
use xenapi::rpc::xmlrpc::{call_bytes, parse_response, parse_value};
use xenapi::value::Value;

/// A server address: `http://host:9363/`, `https://host:9364/`, or just `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// A missing port is the daemon's: 9363 for http, 9364 for https.
    pub fn parse(url: &str) -> std::result::Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if url.contains("://") {
            return Err(format!("{url}: only http:// and https:// servers are supported"));
        } else {
            (false, url)
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if tls { 9364 } else { 9363 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("{url}: expected ']' after an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{url}: unexpected '{after}' after the address")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url}: '{p}' is not a port number"))?,
            None => default_port,
        };
        if host.is_empty() {
            return Err(format!("{url}: expected a host name"));
        }
        Ok(Endpoint { tls, host, port, path: path.to_owned() })
    }

    /// Whether the server is this machine, where its state directory may be read.
    pub fn is_local(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "::1") || self.host.starts_with("127.")
    }

    pub fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{host}:{}{}", if self.tls { "https" } else { "http" }, self.port, self.path)
    }
}

/// How HTTPS certificates are checked.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub insecure: bool,
    /// Trusted in addition to the system's roots (the daemon's self-signed certificate).
    pub ca_files: Vec<std::path::PathBuf>,
}

pub struct Transport {
    pub endpoint: Endpoint,
    tls: Option<SslConnector>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Calls that block server-side (a clean shutdown) run as tasks, so a reply is quick or lost.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

fn unreachable(endpoint: &Endpoint, what: impl std::fmt::Display) -> Failure {
    Failure::Unreachable(format!("cannot reach the Xen-API server at {}: {what}", endpoint.url()))
}

impl Transport {
    pub fn new(endpoint: Endpoint, opts: &TlsOptions) -> Result<Transport> {
        let tls = if endpoint.tls {
            let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| unreachable(&endpoint, e))?;
            if opts.insecure {
                b.set_verify(SslVerifyMode::NONE);
            } else {
                for ca in &opts.ca_files {
                    b.set_ca_file(ca).map_err(|e| Failure::Unreachable(format!("cannot load the CA certificate {}: {e}", ca.display())))?;
                }
            }
            Some(b.build())
        } else {
            None
        };
        Ok(Transport { endpoint, tls })
    }

    fn connect(&self) -> Result<TcpStream> {
        let e = &self.endpoint;
        let addrs: Vec<_> = (e.host.as_str(), e.port).to_socket_addrs().map_err(|err| unreachable(e, err))?.collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(READ_TIMEOUT)).ok();
                    s.set_write_timeout(Some(READ_TIMEOUT)).ok();
                    return Ok(s);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(unreachable(e, last.map(|x| x.to_string()).unwrap_or_else(|| "no address".into())))
    }

    /// POSTs one XML-RPC document and returns the response body.
    pub fn post(&self, body: &[u8]) -> Result<Vec<u8>> {
        let e = &self.endpoint;
        let tcp = self.connect()?;
        let host = if e.host.contains(':') { format!("[{}]", e.host) } else { e.host.clone() };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: xencim/{}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            e.path,
            e.port,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        let mut response = Vec::new();
        let io = |r: std::io::Result<()>| r.map_err(|err| unreachable(e, err));
        match &self.tls {
            Some(connector) => {
                let mut s = connector.connect(&e.host, tcp).map_err(|err| {
                    let hint = if err.to_string().contains("certificate verify failed") {
                        " (trust the daemon's certificate with --ca-file <state-dir>/tls/server.pem, or skip the check with --insecure)"
                    } else {
                        ""
                    };
                    unreachable(e, format!("TLS: {err}{hint}"))
                })?;
                io(s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)))?;
                read_all(&mut s, &mut response).map_err(|err| unreachable(e, err))?;
            }
            None => {
                let mut s = tcp;
                io(s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)))?;
                read_all(&mut s, &mut response).map_err(|err| unreachable(e, err))?;
            }
        }
        parse_http(&response).map_err(|err| unreachable(e, err))
    }
}

/// Reads until the peer closes; a TLS peer that closes without close_notify is fine here
/// because the body length is checked afterwards.
fn read_all(s: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if !out.is_empty() && matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionAborted) => {
                return Ok(())
            }
            Err(e) if !out.is_empty() && e.to_string().contains("unexpected EOF") => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The body of an HTTP/1.x response (Content-Length, chunked, or up to the close).
pub fn parse_http(response: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the reply is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(format!("the reply is not HTTP: {status:?}"));
    }
    if code != "200" {
        return Err(format!("the server answered {status:?}"));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = &response[split + 4..];
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if body.len() < n => Err(format!("the reply was cut short ({} of {n} bytes)", body.len())),
        Some(n) => Ok(body[..n].to_vec()),
        None => Ok(body.to_vec()),
    }
}

fn dechunk(mut body: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "bad chunk size")?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("the chunked reply was cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// A Xen-API `{Status, Value | ErrorDescription}` envelope as a result.
fn unwrap_envelope(v: Value) -> Result<Value> {
    match v.member("Status").and_then(Value::as_str) {
        Some("Success") => Ok(v.member("Value").cloned().unwrap_or_else(Value::void)),
        Some("Failure") => Err(Failure::api(match v.member("ErrorDescription") {
            Some(Value::Array(items)) => items.iter().map(text).collect(),
            _ => vec!["INTERNAL_ERROR".into(), "a failure without an ErrorDescription".into()],
        })),
        _ => Err(Failure::Unreachable("the server's reply is not a Xen-API envelope (is this a xencim or xapi server?)".into())),
    }
}

/// A value as text: strings as they are, numbers and booleans written out.
pub fn text(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::DateTime(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

pub struct Connection {
    transport: Transport,
    session: String,
    /// Object refs and the names the user gave them, to put errors in the user's words.
    names: RefCell<HashMap<String, String>>,
}

impl Connection {
    fn raw(transport: &Transport, method: &str, params: &[Value]) -> Result<Value> {
        let body = transport.post(&call_bytes(method, params))?;
        let v = parse_response(&body)
            .map_err(|e| Failure::Unreachable(format!("{}: the reply to {method} is not XML-RPC: {e}", transport.endpoint.url())))?;
        unwrap_envelope(v)
    }

    pub fn login(transport: Transport, user: &str, password: &str, source: &str) -> Result<Connection> {
        let params = [Value::str(user), Value::str(password), Value::str("2.21"), Value::str("xencim-cli")];
        match Self::raw(&transport, "session.login_with_password", &params) {
            Ok(s) => Ok(Connection { session: text(&s), transport, names: RefCell::new(HashMap::new()) }),
            Err(Failure::Api { code, .. }) if code == "SESSION_AUTHENTICATION_FAILED" => Err(Failure::Auth(format!(
                "SESSION_AUTHENTICATION_FAILED: {} refused user {user} (credentials from {source}): wrong user name or password",
                transport.endpoint.url()
            ))),
            Err(Failure::Api { code, args }) if code == "SESSION_AUTHORIZATION_FAILED" => Err(Failure::Auth(format!(
                "SESSION_AUTHORIZATION_FAILED: user {user} may not log in: {}",
                args.last().cloned().unwrap_or_default()
            ))),
            Err(e) => Err(e),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.transport.endpoint
    }

    /// Calls `method` with the session first.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value> {
        let mut params = Vec::with_capacity(args.len() + 1);
        params.push(Value::str(self.session.clone()));
        params.extend_from_slice(args);
        Self::raw(&self.transport, method, &params)
    }

    pub fn remember(&self, reference: &str, name: &str) {
        self.names.borrow_mut().insert(reference.to_owned(), name.to_owned());
    }

    pub fn names(&self) -> Names {
        Names(self.names.borrow().clone())
    }

    /// Runs `Async.<method>` and follows its task to the end, showing `label` and the task's
    /// progress on a terminal. Returns the task's result.
    pub fn run_task(&self, method: &str, args: &[Value], label: &str) -> Result<Value> {
        let task = text(&self.call(&format!("Async.{method}"), args)?);
        let progress = Progress::start(label);
        let outcome = self.wait_task(&task, &progress);
        progress.finish();
        let _ = self.call("task.destroy", &[Value::str(task)]);
        outcome
    }

    /// Starts `Async.<method>` and returns its task without waiting.
    pub fn start_task(&self, method: &str, args: &[Value]) -> Result<String> {
        Ok(text(&self.call(&format!("Async.{method}"), args)?))
    }

    fn wait_task(&self, task: &str, progress: &Progress) -> Result<Value> {
        let started = Instant::now();
        loop {
            let record = self.call("task.get_record", &[Value::str(task)])?;
            let status = record.member("status").map(text).unwrap_or_default();
            let fraction = record.member("progress").and_then(|p| text(p).parse::<f64>().ok()).unwrap_or(0.0);
            progress.set(fraction);
            match status.as_str() {
                "pending" | "cancelling" => {}
                "success" => {
                    let result = record.member("result").map(text).unwrap_or_default();
                    if result.trim().is_empty() {
                        return Ok(Value::void());
                    }
                    return parse_value(result.as_bytes())
                        .map_err(|e| Failure::Failed(format!("the task's result is not an XML-RPC value: {e}")));
                }
                _ => {
                    let info = match record.member("error_info") {
                        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(text).collect(),
                        _ => vec!["INTERNAL_ERROR".into(), format!("the task ended {status} without an error")],
                    };
                    return Err(Failure::api(info));
                }
            }
            // Quick operations finish in milliseconds; slow ones need not be polled hard.
            let pause = if started.elapsed() < Duration::from_secs(2) { 50 } else { 250 };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    pub fn logout(&self) {
        let _ = self.call("session.logout", &[]);
    }
}

/// The daemon's own certificate, trusted when the daemon runs here.
pub fn local_certificate(state_dir: &Path) -> Option<std::path::PathBuf> {
    let p = state_dir.join("tls").join("server.pem");
    std::fs::File::open(&p).is_ok().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        let e = Endpoint::parse("http://127.0.0.1:9363/").unwrap();
        assert_eq!(e, Endpoint { tls: false, host: "127.0.0.1".into(), port: 9363, path: "/".into() });
        assert!(e.is_local());
        assert_eq!(Endpoint::parse("https://h.example").unwrap().port, 9364);
        assert_eq!(Endpoint::parse("h.example").unwrap().url(), "http://h.example:9363/");
        assert_eq!(Endpoint::parse("h:80/RPC2").unwrap().path, "/RPC2");
        let v6 = Endpoint::parse("https://[::1]:1234/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port, v6.is_local()), ("::1", 1234, true));
        assert_eq!(v6.url(), "https://[::1]:1234/");
        assert!(!Endpoint::parse("http://10.0.0.1/").unwrap().is_local());
        assert!(Endpoint::parse("ftp://x/").is_err());
        assert!(Endpoint::parse("http://x:port/").is_err());
        assert!(Endpoint::parse("http://:1/").is_err());
    }

    #[test]
    fn http_replies() {
        assert_eq!(parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap(), b"abc");
        assert_eq!(parse_http(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert_eq!(parse_http(b"HTTP/1.0 200 OK\r\n\r\nxyz").unwrap(), b"xyz");
        assert!(parse_http(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err().contains("404"));
        assert!(parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").unwrap_err().contains("cut short"));
        assert!(parse_http(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err().contains("not HTTP"));
    }

    #[test]
    fn envelopes() {
        let ok = Value::Struct(vec![("Status".into(), Value::str("Success")), ("Value".into(), Value::str("x"))]);
        assert_eq!(unwrap_envelope(ok).unwrap(), Value::str("x"));
        let bad = Value::Struct(vec![
            ("Status".into(), Value::str("Failure")),
            ("ErrorDescription".into(), Value::Array(vec![Value::str("UUID_INVALID"), Value::str("VM"), Value::str("u")])),
        ]);
        match unwrap_envelope(bad) {
            Err(Failure::Api { code, args }) => assert_eq!((code.as_str(), args.len()), ("UUID_INVALID", 2)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(unwrap_envelope(Value::str("junk")), Err(Failure::Unreachable(_))));
    }
}
