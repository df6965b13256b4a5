//! Delivery to CIM-XML listeners: one ordered, bounded queue and one worker thread per
//! destination. An indication gets its destination's next SequenceNumber when it is queued, so
//! one dropped for overflow leaves a gap the listener can see. A delivery that fails is retried
//! DeliveryRetryAttempts times, DeliveryRetryInterval apart; after that the failure is fatal and
//! the subscription's OnFatalErrorPolicy decides (the caller's `on_fatal`).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use wbem::cim::Instance;
use wbem::cimxml::export_indication_request;

/// What the indication service's retry settings are now (they can change at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    pub attempts: u16,
    pub interval: Duration,
}

/// What to do with a subscription whose delivery failed fatally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalAction {
    /// Drop the indication, keep the subscription.
    Ignore,
    /// The subscription no longer receives indications: drop what it has queued.
    Stop,
}

pub type OnFatal = Arc<dyn Fn(&str, &str, &str) -> FatalAction + Send + Sync>;

struct Item {
    subscription: String,
    sequence: i64,
    body: Vec<u8>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Item>,
    next_sequence: i64,
    overflow: u64,
    closed: bool,
}

struct Queue {
    key: String,
    url: String,
    context: String,
    state: Mutex<QueueState>,
    wake: Condvar,
}

/// Counters of one destination's queue (tests, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub queued: usize,
    pub overflow: u64,
    pub next_sequence: i64,
}

pub struct Delivery {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    retry: Arc<RwLock<RetrySettings>>,
    limit: usize,
    tls_verify: bool,
    boot_id: String,
    on_fatal: OnFatal,
    /// Off in unit tests of the queue itself.
    spawn_workers: bool,
}

impl Delivery {
    pub fn new(retry: Arc<RwLock<RetrySettings>>, limit: usize, tls_verify: bool, on_fatal: OnFatal) -> Delivery {
        Delivery {
            queues: Mutex::new(HashMap::new()),
            retry,
            limit: limit.max(1),
            tls_verify,
            boot_id: uuid::Uuid::new_v4().simple().to_string(),
            on_fatal,
            spawn_workers: true,
        }
    }

    #[cfg(test)]
    fn without_workers(limit: usize) -> Delivery {
        let retry = Arc::new(RwLock::new(RetrySettings { attempts: 0, interval: Duration::from_millis(1) }));
        let mut d = Delivery::new(retry, limit, false, Arc::new(|_: &str, _: &str, _: &str| FatalAction::Ignore));
        d.spawn_workers = false;
        d
    }

    fn queue(&self, key: &str, url: &str) -> Arc<Queue> {
        let mut queues = self.queues.lock();
        if let Some(q) = queues.get(key) {
            if q.url == url {
                return q.clone();
            }
        }
        // A destination seen for the first time, or whose URL changed: a new sequence.
        if let Some(old) = queues.remove(key) {
            old.close();
        }
        let q = Arc::new(Queue {
            key: key.to_string(),
            url: url.to_string(),
            context: format!("xencim:{}:{}", self.boot_id, key),
            state: Mutex::new(QueueState::default()),
            wake: Condvar::new(),
        });
        queues.insert(key.to_string(), q.clone());
        if self.spawn_workers {
            let (q2, retry, verify, on_fatal) = (q.clone(), self.retry.clone(), self.tls_verify, self.on_fatal.clone());
            let spawned = std::thread::Builder::new().name("indication-delivery".into()).spawn(move || worker(q2, retry, verify, on_fatal));
            if let Err(e) = spawned {
                tracing::error!(destination = key, error = %e, "cannot start the delivery thread");
            }
        }
        q
    }

    /// Queues an indication for a destination, with the destination's next sequence number.
    pub fn enqueue(&self, destination: &str, url: &str, subscription: &str, mut indication: Instance) {
        let q = self.queue(destination, url);
        let mut st = q.state.lock();
        let sequence = st.next_sequence;
        st.next_sequence = if sequence == i64::MAX { 0 } else { sequence + 1 };
        if st.items.len() >= self.limit {
            st.overflow += 1;
            // Logged at powers of two so that a dead listener under load does not flood the log.
            if st.overflow.is_power_of_two() {
                tracing::warn!(
                    destination,
                    dropped = st.overflow,
                    limit = self.limit,
                    "indication queue full: indication dropped (the listener sees a gap in SequenceNumber)"
                );
            }
            return;
        }
        indication.set("SequenceContext", q.context.as_str());
        indication.set("SequenceNumber", sequence);
        let body = export_indication_request(&format!("{sequence}"), &indication);
        st.items.push_back(Item { subscription: subscription.to_string(), sequence, body });
        drop(st);
        q.wake.notify_all();
    }

    /// Stops delivering to a destination and forgets its queue.
    pub fn remove_destination(&self, destination: &str) {
        if let Some(q) = self.queues.lock().remove(destination) {
            q.close();
        }
    }

    /// Drops what a subscription has queued.
    pub fn purge_subscription(&self, subscription: &str) {
        for q in self.queues.lock().values() {
            q.state.lock().items.retain(|i| i.subscription != subscription);
        }
    }

    pub fn stats(&self, destination: &str) -> Option<QueueStats> {
        let q = self.queues.lock().get(destination).cloned()?;
        let st = q.state.lock();
        Some(QueueStats { queued: st.items.len(), overflow: st.overflow, next_sequence: st.next_sequence })
    }

    #[cfg(test)]
    fn queued_sequences(&self, destination: &str) -> Vec<i64> {
        let q = self.queues.lock().get(destination).cloned().unwrap();
        let st = q.state.lock();
        st.items.iter().map(|i| i.sequence).collect()
    }
}

impl Queue {
    fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        st.items.clear();
        drop(st);
        self.wake.notify_all();
    }
}

fn worker(q: Arc<Queue>, retry: Arc<RwLock<RetrySettings>>, verify: bool, on_fatal: OnFatal) {
    loop {
        let (subscription, sequence, body) = {
            let mut st = q.state.lock();
            loop {
                if st.closed {
                    return;
                }
                if let Some(front) = st.items.front() {
                    break (front.subscription.clone(), front.sequence, front.body.clone());
                }
                q.wake.wait(&mut st);
            }
        };
        let mut failures: u32 = 0;
        loop {
            match post(&q.url, &body, verify) {
                Ok(()) => {
                    let mut st = q.state.lock();
                    if st.items.front().is_some_and(|i| i.sequence == sequence) {
                        st.items.pop_front();
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    let settings = *retry.read();
                    if failures > u32::from(settings.attempts) {
                        tracing::warn!(
                            destination = q.key,
                            url = q.url,
                            sequence,
                            error = e,
                            "indication delivery failed after every retry"
                        );
                        let action = on_fatal(&q.key, &subscription, &e);
                        let mut st = q.state.lock();
                        if st.items.front().is_some_and(|i| i.sequence == sequence) {
                            st.items.pop_front();
                        }
                        if action == FatalAction::Stop {
                            st.items.retain(|i| i.subscription != subscription);
                        }
                        break;
                    }
                    tracing::debug!(
                        destination = q.key,
                        url = q.url,
                        sequence,
                        failures,
                        error = e,
                        "indication delivery failed; will retry"
                    );
                    let deadline = Instant::now() + settings.interval;
                    let mut st = q.state.lock();
                    while !st.closed && Instant::now() < deadline {
                        q.wake.wait_until(&mut st, deadline);
                    }
                    if st.closed {
                        return;
                    }
                    // The subscription may have been removed or disabled meanwhile.
                    if st.items.front().is_none_or(|i| i.sequence != sequence) {
                        break;
                    }
                }
            }
        }
    }
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

/// `http://host:port/path`, `https://...`, or `host:port` (http assumed, as CIM-XML listeners
/// are often given).
fn parse_url(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if url.contains("://") {
        return Err(format!("unsupported scheme in {url} (http and https are)"));
    } else {
        (false, url)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let authority = authority.rsplit_once('@').map(|(_, a)| a).unwrap_or(authority);
    let default_port = if tls { 5991 } else { 5990 };
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let (h, after) = stripped.split_once(']').ok_or_else(|| format!("bad IPv6 address in {url}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port in {url}"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("bad port in {url}"))?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok(Target { tls, host, port, path })
}

/// Checks a destination URL when the destination is created.
pub fn check_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// POSTs one export request; `Ok` when the listener answered HTTP 200.
fn post(url: &str, body: &[u8], verify: bool) -> Result<(), String> {
    let t = parse_url(url)?;
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", t.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", t.host))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut stream: Box<dyn Stream> = if t.tls {
        let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).map_err(|e| e.to_string())?;
        if !verify {
            // Listeners usually run with self-signed certificates; verification is opt-in
            // (`indication_tls_verify`).
            builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
        }
        let config = builder.build().configure().map_err(|e| e.to_string())?.verify_hostname(verify);
        Box::new(config.connect(&t.host, tcp).map_err(|e| format!("TLS with {addr}: {e}"))?)
    } else {
        Box::new(tcp)
    };
    let host_header = if t.host.contains(':') { format!("[{}]:{}", t.host, t.port) } else { format!("{}:{}", t.host, t.port) };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/xml; charset=\"utf-8\"\r\nContent-Length: {}\r\n\
         CIMExport: MethodRequest\r\nCIMExportMethod: ExportIndication\r\nCIMProtocolVersion: 1.0\r\nConnection: close\r\n\r\n",
        t.path,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .and_then(|_| stream.flush())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // The status line is all we need; read until it (and the headers) arrived or the peer closed.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n") || response.len() > 65536 {
                    break;
                }
            }
            Err(e) if response.is_empty() => return Err(format!("receive: {e}")),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| "no HTTP response".to_string())?;
    if status == 200 {
        Ok(())
    } else {
        Err(format!("listener answered HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_and_numbers_every_indication() {
        let d = Delivery::without_workers(3);
        for _ in 0..10 {
            d.enqueue("dest", "http://127.0.0.1:1", "sub", Instance::new("CIM_InstCreation"));
        }
        let s = d.stats("dest").unwrap();
        assert_eq!(s.queued, 3);
        assert_eq!(s.overflow, 7);
        assert_eq!(s.next_sequence, 10);
        // The first three stay queued in order; the dropped ones leave a gap after them.
        assert_eq!(d.queued_sequences("dest"), vec![0, 1, 2]);
    }

    #[test]
    fn purge_drops_only_that_subscription() {
        let d = Delivery::without_workers(10);
        for i in 0..6 {
            d.enqueue("dest", "http://127.0.0.1:1", if i % 2 == 0 { "a" } else { "b" }, Instance::new("CIM_InstCreation"));
        }
        d.purge_subscription("a");
        assert_eq!(d.queued_sequences("dest"), vec![1, 3, 5]);
    }

    #[test]
    fn urls() {
        let t = parse_url("https://[::1]:5999/cimlistener").unwrap();
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 5999, "/cimlistener"));
        let t = parse_url("localhost:5990").unwrap();
        assert!(!t.tls);
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("localhost", 5990, "/"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://:80").is_err());
    }

    #[test]
    fn delivers_in_order_with_sequence_numbers() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::<String>::new()));
        let r2 = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = conn.read(&mut buf).unwrap();
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize =
                            text.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|v| v.trim().parse().ok()).unwrap();
                        if data.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
                r2.lock().push(String::from_utf8_lossy(&data).to_string());
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
            }
        });
        let retry = Arc::new(RwLock::new(RetrySettings { attempts: 1, interval: Duration::from_millis(10) }));
        let d = Delivery::new(retry, 100, false, Arc::new(|_: &str, _: &str, _: &str| FatalAction::Ignore));
        for _ in 0..5 {
            d.enqueue("dest", &format!("http://127.0.0.1:{port}"), "sub", Instance::new("CIM_InstCreation"));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while received.lock().len() < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let got = received.lock().clone();
        assert_eq!(got.len(), 5);
        for (n, req) in got.iter().enumerate() {
            assert!(req.contains("CIMExport: MethodRequest"), "{req}");
            assert!(req.contains("CIMExportMethod: ExportIndication"));
            assert!(req.contains(&format!("<PROPERTY NAME=\"SequenceNumber\" TYPE=\"sint64\"><VALUE>{n}</VALUE>")), "{req}");
        }
    }
}
