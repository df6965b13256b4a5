//! The HTTP/1.1 server both front doors run on: one task per connection, keep-alive, bounded
//! bodies and connection counts, slowloris-proof header reading, optional TLS and graceful
//! shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::Body;
use crate::tls::TlsAcceptor;

/// A request as handlers see it: the body has already been read in full (within
/// [`Limits::max_body_bytes`]).
pub type Request = hyper::Request<Bytes>;

/// A response: a full or streamed [`Body`].
pub type Response = hyper::Response<Body>;

/// The future a [`Handler`] returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a request came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The user named by the client certificate the peer presented in the TLS handshake,
    /// verified against the listener's client CA (see [`TlsAcceptor::with_client_certs`]);
    /// `None` without one. The name comes from the certificate only: whether such a user
    /// exists, and its role, are for the authenticator to say.
    pub cert_user: Option<Arc<str>>,
}

/// Answers requests. One handler serves every connection of a listener, concurrently.
///
/// Closures `Fn(Request, ConnInfo) -> impl Future<Output = Response>` implement it.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request, conn: ConnInfo) -> BoxFuture<Response>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request, ConnInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    fn handle(&self, req: Request, conn: ConnInfo) -> BoxFuture<Response> {
        Box::pin(self(req, conn))
    }
}

/// Resource limits of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted; larger ones get 413 without being read in full.
    pub max_body_bytes: usize,
    /// Open connections across all peers; more are refused.
    pub max_connections: usize,
    /// Open connections from one IP address; more are refused.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a complete request head once it has started one (and to
    /// finish the TLS handshake, and to send the first request on a new connection).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may sit between requests, and the longest pause
    /// tolerated while a request body is arriving.
    pub idle_timeout: Duration,
    /// After [`Shutdown::trigger`], how long in-flight requests get before their connections
    /// are cut.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_connections: 1024,
            max_connections_per_ip: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A cloneable stop signal. [`trigger`](Shutdown::trigger) makes every [`serve`] holding a
/// clone stop accepting and drain its connections.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown { tx: Arc::new(watch::channel(false).0) }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// A short `text/plain` response, for errors and simple answers.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Serves HTTP/1.1 (over TLS when `tls` is given) on `listener` until `shutdown` is triggered
/// and every connection has finished (or [`Limits::shutdown_grace`] has passed).
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Arc<dyn Handler>, limits: Limits, shutdown: Shutdown) {
    let local = listener.local_addr().ok();
    let limits = Arc::new(limits);
    let tracker = Arc::new(ConnTracker::new(limits.max_connections, limits.max_connections_per_ip));
    let refusals = Arc::new(RefusalLog::default());
    let mut conns = JoinSet::new();
    tracing::debug!(?local, tls = tls.is_some(), "listening");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!(?local, "a connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match tracker.try_acquire(peer.ip()) {
                    Ok(guard) => {
                        conns.spawn(serve_conn(
                            stream,
                            peer,
                            tls.clone(),
                            handler.clone(),
                            limits.clone(),
                            shutdown.clone(),
                            guard,
                        ));
                    }
                    Err(why) => refusals.refuse(stream, peer, why, tls.is_none()),
                },
                Err(e) => {
                    // EMFILE and friends: the error repeats until a descriptor frees up,
                    // so back off rather than spin.
                    tracing::warn!(?local, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    if !conns.is_empty() {
        tracing::info!(?local, open = conns.len(), "shutting down: draining connections");
    }
    let grace = tokio::time::sleep(limits.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            done = conns.join_next() => if done.is_none() { break },
            _ = &mut grace => {
                tracing::warn!(?local, open = conns.len(), "shutdown grace period over: cutting connections");
                conns.shutdown().await;
                break;
            }
        }
    }
    tracing::debug!(?local, "stopped");
}

async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    handler: Arc<dyn Handler>,
    limits: Arc<Limits>,
    shutdown: Shutdown,
    _guard: ConnGuard,
) {
    // Responses are written whole; Nagle would only delay the last segment of each.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(AtomicU64::new(0));
    let io = CountingIo { inner: stream, activity: activity.clone() };
    match tls {
        None => {
            let conn = ConnInfo { peer, tls: false, cert_user: None };
            run_http(io, conn, handler, limits, shutdown, activity).await
        }
        Some(acceptor) => {
            let mut stream = match acceptor.stream(io) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot set up TLS");
                    return;
                }
            };
            let handshake = tokio::time::timeout(limits.header_read_timeout, Pin::new(&mut stream).accept());
            tokio::select! {
                r = handshake => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        // The alert saying why (an untrusted or expired client certificate)
                        // must reach the client.
                        linger_close(stream.get_mut()).await;
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                _ = shutdown.wait() => return,
            }
            let cert_user = acceptor.peer_user(stream.ssl()).map(Arc::from);
            if let Some(user) = &cert_user {
                tracing::debug!(%peer, user = %user, "TLS client certificate");
            }
            let conn = ConnInfo { peer, tls: true, cert_user };
            run_http(stream, conn, handler, limits, shutdown, activity).await
        }
    }
}

/// Closes our side, then reads what the peer still sends until it closes too (for at most a
/// second). Closing a socket with unread data makes the kernel send a reset, which can destroy
/// what was just written (a TLS alert, an error answer) before the peer reads it: a TLS 1.3
/// client sends its first request before it learns that its certificate was refused.
async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.shutdown().await?;
        let mut sink = [0u8; 4096];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

async fn run_http<I>(io: I, conn: ConnInfo, handler: Arc<dyn Handler>, limits: Arc<Limits>, shutdown: Shutdown, activity: Arc<AtomicU64>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_limits = limits.clone();
    let peer = conn.peer;
    let service = service_fn(move |req| {
        let handler = handler.clone();
        let limits = svc_limits.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(answer(req, handler, conn, &limits).await) }
    });
    let timer = HeadTimer { activity, idle: limits.idle_timeout, first: AtomicBool::new(true) };
    let http = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    let mut draining = false;
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.wait(), if !draining => {
                draining = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

enum BodyError {
    TooLarge,
    Stalled,
    Broken(hyper::Error),
}

/// Reads the body within the limits, then hands the request to the handler.
async fn answer(req: hyper::Request<Incoming>, handler: Arc<dyn Handler>, conn: ConnInfo, limits: &Limits) -> hyper::Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match collect(body, limits.max_body_bytes, limits.idle_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            tracing::warn!(peer = %conn.peer, limit = limits.max_body_bytes, "request body too large");
            return closing(text_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"));
        }
        Err(BodyError::Stalled) => {
            tracing::debug!(peer = %conn.peer, "request body stalled");
            return closing(text_response(StatusCode::REQUEST_TIMEOUT, "request body timed out"));
        }
        Err(BodyError::Broken(e)) => {
            tracing::debug!(peer = %conn.peer, error = %e, "bad request body");
            return closing(text_response(StatusCode::BAD_REQUEST, "bad request body"));
        }
    };
    handler.handle(Request::from_parts(parts, body), conn).await
}

/// After an unread or broken body the connection cannot be reused, so say so.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

async fn collect(mut body: Incoming, max: usize, stall: Duration) -> Result<Bytes, BodyError> {
    // A declared length over the limit is refused before a single body byte is read.
    if body.size_hint().lower() > max as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::with_capacity(body.size_hint().lower() as usize);
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

// ---------------------------------------------------------------------------------------------
// Header and idle timeouts.
//
// Hyper starts its header-read timer as soon as a connection waits for a request head, idle
// keep-alive time included, so on its own `header_read_timeout` would also be the keep-alive
// timeout. The timer below tells the two apart: between requests it waits `idle` for the first
// byte, and only from that byte on does the header deadline run. The first request of a
// connection gets the header deadline at once: a client that connects has no reason to wait.
// Hyper's HTTP/1 server uses its timer for nothing but the header read, which this relies on.

struct HeadTimer {
    activity: Arc<AtomicU64>,
    idle: Duration,
    first: AtomicBool,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let header = deadline.saturating_duration_since(Instant::now());
        let waiting = !self.first.swap(false, Ordering::Relaxed);
        let first_deadline = if waiting { Instant::now() + self.idle.max(header) } else { deadline };
        Box::pin(HeadSleep {
            activity: self.activity.clone(),
            seen: self.activity.load(Ordering::Relaxed),
            header,
            waiting,
            sleep: Box::pin(tokio::time::sleep_until(first_deadline.into())),
        })
    }
}

struct HeadSleep {
    activity: Arc<AtomicU64>,
    seen: u64,
    header: Duration,
    /// Still waiting for the first byte of the next request.
    waiting: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Hyper polls this right after each read that left the head incomplete, so a byte
        // arriving is noticed here without a waker of our own.
        if self.waiting && self.activity.load(Ordering::Relaxed) != self.seen {
            self.waiting = false;
            let deadline = tokio::time::Instant::now() + self.header;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// Counts bytes read so [`HeadSleep`] can tell an idle connection from a slow one.
struct CountingIo<T> {
    inner: T,
    activity: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.activity.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// ---------------------------------------------------------------------------------------------
// Connection limits.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TooManyTotal,
    TooManyFromPeer,
}

struct ConnTracker {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl ConnTracker {
    fn new(max_total: usize, max_per_ip: usize) -> ConnTracker {
        ConnTracker { max_total, max_per_ip, open: Mutex::new((0, HashMap::new())) }
    }

    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refusal> {
        // An IPv4 client reaching a dual-stack socket shows up as ::ffff:a.b.c.d; count it as
        // the same peer as over plain IPv4.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.max_total {
            return Err(Refusal::TooManyTotal);
        }
        let per_ip = open.1.entry(ip).or_insert(0);
        if *per_ip >= self.max_per_ip {
            return Err(Refusal::TooManyFromPeer);
        }
        *per_ip += 1;
        open.0 += 1;
        Ok(ConnGuard { tracker: self.clone(), ip })
    }
}

struct ConnGuard {
    tracker: Arc<ConnTracker>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// Refuses over-limit connections and logs them, at most once a second so that a flood does
/// not become a log flood too.
#[derive(Default)]
struct RefusalLog {
    last_report: Mutex<Option<Instant>>,
    unreported: AtomicU64,
    answering: Arc<AtomicUsize>,
}

/// Refused plain connections in the middle of being told so; beyond this they are just closed.
const MAX_ANSWERING: usize = 64;

impl RefusalLog {
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, why: Refusal, plain: bool) {
        let reason = match why {
            Refusal::TooManyTotal => "too many connections",
            Refusal::TooManyFromPeer => "too many connections from this address",
        };
        {
            let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if !matches!(*last, Some(t) if now.duration_since(t) < Duration::from_secs(1)) {
                let more = self.unreported.swap(0, Ordering::Relaxed);
                tracing::warn!(%peer, reason, refused_since_last_report = more, "connection refused");
                *last = Some(now);
            } else {
                self.unreported.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Over TLS a readable answer would need a handshake first, which is the work being
        // refused; those connections are just closed.
        if !plain || self.answering.fetch_add(1, Ordering::Relaxed) >= MAX_ANSWERING {
            if plain {
                self.answering.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        let answering = self.answering.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), answer_503(stream, reason)).await;
            answering.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn answer_503(mut stream: TcpStream, reason: &str) -> io::Result<()> {
    let body = format!("{reason}\n");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    // Read what the client sent before closing: closing with unread data makes the kernel send
    // a reset, which can destroy the answer before the client reads it.
    let mut sink = [0u8; 4096];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_per_ip_and_total() {
        let t = Arc::new(ConnTracker::new(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let g1 = t.try_acquire(a).unwrap();
        let _g2 = t.try_acquire(mapped).unwrap();
        assert_eq!(t.try_acquire(a).err(), Some(Refusal::TooManyFromPeer));
        let _g3 = t.try_acquire(b).unwrap();
        assert_eq!(t.try_acquire(b).err(), Some(Refusal::TooManyTotal));
        drop(g1);
        let _g4 = t.try_acquire(a).unwrap();
        drop(_g4);
        drop(_g2);
        assert!(!t.open.lock().unwrap().1.contains_key(&a));
    }

    #[tokio::test]
    async fn shutdown_wait_returns_after_trigger() {
        let s = Shutdown::new();
        let s2 = s.clone();
        assert!(!s.is_triggered());
        let waiter = tokio::spawn(async move { s2.wait().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.trigger();
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        // Already triggered: resolves at once.
        tokio::time::timeout(Duration::from_millis(100), s.wait()).await.unwrap();
    }
}
