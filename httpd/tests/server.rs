//! The server over real sockets on 127.0.0.1, driven by a raw HTTP/1.1 client so every byte and
//! every close is visible.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httpd::{
    ensure_self_signed, serve, text_response, Body, ConnInfo, Handler, HeaderMap, Limits, Request, Response, Shutdown, StatusCode,
    TlsAcceptor,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

async fn start(handler: impl Handler, limits: Limits, tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(serve(listener, tls, Arc::new(handler), limits, shutdown.clone()));
    Server { addr, shutdown, task }
}

/// Answers `<method> <path> <body length>`; `/slow` first sleeps 500 ms.
fn echo() -> impl Handler {
    |req: Request, _conn: ConnInfo| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        text_response(StatusCode::OK, format!("{} {} {}", req.method(), req.uri().path(), req.body().len()))
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn read_fields<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(r).await?;
        if line.is_empty() {
            return Ok(fields);
        }
        let (k, v) = line.split_once(':').expect("header line");
        fields.push((k.trim().to_owned(), v.trim().to_owned()));
    }
}

/// Reads one response (Content-Length or chunked).
async fn read_reply<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Reply> {
    let status_line = read_line(r).await?;
    let status = status_line.split(' ').nth(1).expect("status").parse().unwrap();
    let headers = read_fields(r).await?;
    let mut reply = Reply { status, headers, body: Vec::new(), trailers: Vec::new() };
    if let Some(len) = reply.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        r.read_exact(&mut body).await?;
        reply.body = body;
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&read_line(r).await?, 16).unwrap();
            if size == 0 {
                reply.trailers = read_fields(r).await?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await?;
            reply.body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(reply)
}

async fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

async fn get(conn: &mut BufReader<TcpStream>, path: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await.unwrap();
    read_reply(conn).await.unwrap()
}

/// Whether the server closes the connection within `within` (EOF or reset).
async fn closed_within<R: AsyncRead + Unpin>(r: &mut R, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), r.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let srv = start(echo(), Limits::default(), None).await;
    let mut c = connect(srv.addr).await;
    let a = get(&mut c, "/one").await;
    let b = get(&mut c, "/two").await;
    assert_eq!((a.status, a.text().as_str()), (200, "GET /one 0\n"));
    assert_eq!((b.status, b.text().as_str()), (200, "GET /two 0\n"));
    assert_eq!(a.header("connection"), None);
    // A POST body arrives whole.
    c.get_mut().write_all(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
    assert_eq!(read_reply(&mut c).await.unwrap().text(), "POST /p 5\n");
}

#[tokio::test]
async fn connections_are_served_concurrently() {
    // The first request only completes once the second, on another connection, has arrived.
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let handler = move |req: Request, _: ConnInfo| {
        let g = g.clone();
        async move {
            if req.uri().path() == "/wait" {
                g.notified().await;
            } else {
                g.notify_one();
            }
            text_response(StatusCode::OK, req.uri().path())
        }
    };
    let srv = start(handler, Limits::default(), None).await;
    let mut first = connect(srv.addr).await;
    first.get_mut().write_all(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = connect(srv.addr).await;
    let r2 = tokio::time::timeout(Duration::from_secs(5), get(&mut second, "/go")).await.unwrap();
    let r1 = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut first)).await.unwrap().unwrap();
    assert_eq!((r1.text().as_str(), r2.text().as_str()), ("/wait\n", "/go\n"));
}

#[tokio::test]
async fn too_big_content_length_is_refused_before_the_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let handler = move |_: Request, _: ConnInfo| {
        c2.fetch_add(1, Ordering::SeqCst);
        async { text_response(StatusCode::OK, "called") }
    };
    let limits = Limits { max_body_bytes: 1024, ..Limits::default() };
    let srv = start(handler, limits, None).await;
    let mut c = connect(srv.addr).await;
    // Declares 100 MB and sends none of it: the answer must not wait for the body.
    c.get_mut().write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n").await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut c)).await.unwrap().unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Exactly at the limit is fine.
    let mut c = connect(srv.addr).await;
    let mut req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n".to_vec();
    req.extend(vec![b'x'; 1024]);
    c.get_mut().write_all(&req).await.unwrap();
    assert_eq!(read_reply(&mut c).await.unwrap().status, 200);
}

#[tokio::test]
async fn too_big_chunked_body_is_refused_while_reading() {
    let limits = Limits { max_body_bytes: 1024, ..Limits::default() };
    let srv = start(echo(), limits, None).await;
    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
    let chunk = format!("200\r\n{}\r\n", "y".repeat(0x200));
    // 3 x 512 bytes goes over 1024; the terminating chunk is never sent.
    for _ in 0..3 {
        c.get_mut().write_all(chunk.as_bytes()).await.unwrap();
    }
    let r = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut c)).await.unwrap().unwrap();
    assert_eq!(r.status, 413);

    // A chunked body within the limit is assembled.
    let mut c = connect(srv.addr).await;
    c.get_mut()
        .write_all(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_reply(&mut c).await.unwrap().text(), "POST /c 5\n");
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_refused() {
    let limits = Limits { max_connections_per_ip: 2, ..Limits::default() };
    let srv = start(echo(), limits, None).await;
    let mut a = connect(srv.addr).await;
    let mut b = connect(srv.addr).await;
    // A completed request proves each connection was accepted and counted.
    assert_eq!(get(&mut a, "/a").await.status, 200);
    assert_eq!(get(&mut b, "/b").await.status, 200);

    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut c)).await.unwrap().unwrap();
    assert_eq!(r.status, 503);
    assert!(closed_within(&mut c, Duration::from_secs(2)).await);

    // Closing one frees its slot.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = connect(srv.addr).await;
        d.get_mut().write_all(b"GET /d HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let r = read_reply(&mut d).await.unwrap();
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&mut b, "/b").await.status, 200);
}

#[tokio::test]
async fn connections_over_the_total_limit_are_refused() {
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let srv = start(echo(), limits, None).await;
    let mut a = connect(srv.addr).await;
    assert_eq!(get(&mut a, "/a").await.status, 200);
    let mut b = connect(srv.addr).await;
    b.get_mut().write_all(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    assert_eq!(read_reply(&mut b).await.unwrap().status, 503);
}

#[tokio::test]
async fn header_timeout_closes_a_connection_that_never_finishes_its_head() {
    let limits = Limits { header_read_timeout: Duration::from_millis(300), ..Limits::default() };
    let srv = start(echo(), limits, None).await;

    // Never completes the head.
    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(3)).await);
    assert!(t0.elapsed() >= Duration::from_millis(200), "closed too early: {:?}", t0.elapsed());

    // Slowloris: a byte every 50 ms keeps the socket busy but does not reset the deadline.
    let mut c = connect(srv.addr).await;
    let t0 = Instant::now();
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if c.get_mut().write_all(&[*b]).await.is_err() || closed_within(&mut c, Duration::from_millis(50)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "slowloris connection survived");
    assert!(t0.elapsed() < Duration::from_secs(2));

    // A silent new connection gets the header deadline too.
    let mut c = connect(srv.addr).await;
    assert!(closed_within(&mut c, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn idle_keep_alive_is_bounded_by_idle_timeout_not_header_timeout() {
    let limits = Limits { header_read_timeout: Duration::from_millis(200), idle_timeout: Duration::from_millis(1200), ..Limits::default() };
    let srv = start(echo(), limits, None).await;
    let mut c = connect(srv.addr).await;
    assert_eq!(get(&mut c, "/1").await.status, 200);
    // Idle for longer than the header timeout: still open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(&mut c, "/2").await.status, 200);
    // Idle past the idle timeout: closed.
    let t0 = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(4)).await);
    assert!(t0.elapsed() >= Duration::from_millis(900), "closed after {:?}", t0.elapsed());
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let srv = start(echo(), Limits::default(), None).await;
    let mut idle = connect(srv.addr).await;
    assert_eq!(get(&mut idle, "/x").await.status, 200);
    let mut busy = connect(srv.addr).await;
    busy.get_mut().write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    srv.shutdown.trigger();

    // The idle connection is closed at once, the busy one after its answer.
    assert!(closed_within(&mut idle, Duration::from_secs(1)).await);
    let r = read_reply(&mut busy).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "GET /slow 0\n"));
    assert!(closed_within(&mut busy, Duration::from_secs(1)).await);
    tokio::time::timeout(Duration::from_secs(2), srv.task).await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    // No longer listening.
    assert!(TcpStream::connect(srv.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_grace_caps_a_request_that_never_ends() {
    let handler = |_: Request, _: ConnInfo| async {
        std::future::pending::<()>().await;
        text_response(StatusCode::OK, "never")
    };
    let limits = Limits { shutdown_grace: Duration::from_millis(300), ..Limits::default() };
    let srv = start(handler, limits, None).await;
    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(2), srv.task).await.unwrap().unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn streamed_body_with_trailers() {
    let handler = |req: Request, _: ConnInfo| async move {
        let (tx, body) = Body::channel(2);
        let abort = req.uri().path() == "/abort";
        tokio::spawn(async move {
            for i in 0..5 {
                tx.send(format!("part{i};")).await.unwrap();
            }
            if abort {
                drop(tx);
                return;
            }
            let mut t = HeaderMap::new();
            t.insert("CIMStatusCode", "0".parse().unwrap());
            tx.finish(Some(t)).await.unwrap();
        });
        let mut resp = Response::new(body);
        resp.headers_mut().insert("Trailer", "CIMStatusCode".parse().unwrap());
        resp
    };
    let srv = start(handler, Limits::default(), None).await;
    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n").await.unwrap();
    let r = read_reply(&mut c).await.unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "part0;part1;part2;part3;part4;");
    assert_eq!(r.trailers, [("cimstatuscode".to_owned(), "0".to_owned())]);

    // Keep-alive survives a streamed response.
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n").await.unwrap();
    assert_eq!(read_reply(&mut c).await.unwrap().trailers.len(), 1);

    // An aborted stream cuts the connection instead of ending the chunked body.
    let mut c = connect(srv.addr).await;
    c.get_mut().write_all(b"GET /abort HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let r = read_reply(&mut c).await;
    assert!(r.is_err(), "a truncated body must not look complete: {r:?}");
}

fn tls_client(ca: Option<&std::path::Path>, tls11_only: bool) -> openssl::ssl::SslConnector {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    if tls11_only {
        b.set_min_proto_version(Some(SslVersion::TLS1_1)).unwrap();
        b.set_max_proto_version(Some(SslVersion::TLS1_1)).unwrap();
        // OpenSSL 3 will not even offer TLS 1.1 at the default security level; lower it so the
        // refusal really is the server's.
        b.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    }
    match ca {
        Some(ca) => b.set_ca_file(ca).unwrap(),
        None => b.set_verify(SslVerifyMode::NONE),
    }
    b.build()
}

#[tokio::test]
async fn tls_with_a_self_signed_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ensure_self_signed(dir.path(), "xencim.test").unwrap();
    let acceptor = TlsAcceptor::from_pem_files(&cert, &key).unwrap();
    let handler = |_: Request, conn: ConnInfo| async move { text_response(StatusCode::OK, format!("tls={}", conn.tls)) };
    let srv = start(handler, Limits::default(), Some(acceptor)).await;
    let addr = srv.addr;

    let cert2 = cert.clone();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut answers = Vec::new();
        // Verified against the certificate itself, by each name in its SAN.
        for name in ["localhost", "xencim.test"] {
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let mut s = tls_client(Some(&cert2), false).connect(name, tcp).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            answers.push(out);
        }
        answers
    })
    .await
    .unwrap();
    for a in &answer {
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        assert!(a.ends_with("tls=true\n"), "{a}");
    }

    let refused = tokio::task::spawn_blocking(move || {
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tls_client(None, true).connect("localhost", tcp).map(|_| ()).map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    let err = refused.expect_err("a TLS 1.1-only client must be refused");
    // The server itself answers with a protocol_version alert.
    assert!(err.contains("alert protocol version"), "{err}");

    // Plain HTTP to the TLS port gets nowhere.
    let mut c = connect(addr).await;
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut buf)).await.unwrap();
    assert!(!String::from_utf8_lossy(&buf).contains("200"));
}

/// A certificate for `cn`, signed by `ca` (self-signed when `None`, and then a CA), valid from
/// `from` to `to` days from now.
fn issue(
    ca: Option<&(openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>)>,
    cn: &str,
    from: i64,
    to: i64,
) -> (openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>) {
    use openssl::asn1::Asn1Time;
    use openssl::x509::extension::BasicConstraints;
    use openssl::x509::{X509NameBuilder, X509};
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(&openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&openssl::bn::BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.map_or(&*name, |(c, _)| c.subject_name())).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from * 86400).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to * 86400).unwrap()).unwrap();
    if ca.is_none() {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    }
    b.sign(ca.map_or(&key, |(_, k)| k), openssl::hash::MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn rand_serial() -> u32 {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) as u32
}

#[tokio::test]
async fn tls_client_certificates_name_the_user() {
    use httpd::{CertUserField, ClientCertConfig};
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ensure_self_signed(dir.path(), "xencim.test").unwrap();
    let ca = issue(None, "Test CA", -1, 30);
    let other_ca = issue(None, "Other CA", -1, 30);
    let ca_file = dir.path().join("clients.pem");
    std::fs::write(&ca_file, ca.0.to_pem().unwrap()).unwrap();
    let handler = |_: Request, conn: ConnInfo| async move { text_response(StatusCode::OK, format!("user={:?}", conn.cert_user)) };
    let mut servers = Vec::new();
    for required in [false, true] {
        let clients = ClientCertConfig { ca_file: ca_file.clone(), required, user_field: CertUserField::Cn };
        let acceptor = TlsAcceptor::with_client_certs(&cert, &key, Some(&clients)).unwrap();
        servers.push(start(handler, Limits::default(), Some(acceptor)).await);
    }
    let (optional, required) = (servers[0].addr, servers[1].addr);

    let alice = issue(Some(&ca), "alice", -1, 30);
    let from_other = issue(Some(&other_ca), "alice", -1, 30);
    let expired = issue(Some(&ca), "alice", -10, -1);
    let results = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let get = |addr: SocketAddr, client: Option<&(openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>)>| {
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.set_verify(SslVerifyMode::NONE);
            if let Some((c, k)) = client {
                b.set_certificate(c).unwrap();
                b.set_private_key(k).unwrap();
            }
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            // TLS 1.3 clients finish their side before the server has checked the
            // certificate: a refusal shows as an alert on the first read.
            let mut s = b.build().connect("localhost", tcp).map_err(|e| e.to_string())?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok::<_, String>(out)
        };
        [
            get(optional, Some(&alice)),
            get(optional, None),
            get(optional, Some(&from_other)),
            get(optional, Some(&expired)),
            get(required, Some(&alice)),
            get(required, None),
        ]
    })
    .await
    .unwrap();
    let [alice, anonymous, other, expired, required_alice, required_none] = results;
    assert!(alice.as_deref().unwrap().ends_with("user=Some(\"alice\")\n"), "{alice:?}");
    assert!(anonymous.as_deref().unwrap().ends_with("user=None\n"), "{anonymous:?}");
    assert!(other.as_ref().unwrap_err().contains("unknown ca"), "{other:?}");
    assert!(expired.as_ref().unwrap_err().contains("certificate expired"), "{expired:?}");
    assert!(required_alice.as_deref().unwrap().ends_with("user=Some(\"alice\")\n"), "{required_alice:?}");
    assert!(required_none.as_ref().unwrap_err().contains("certificate required"), "{required_none:?}");
}
