//! A QMP client over a unix socket.
//!
//! QMP interleaves two streams on one connection: replies to our commands (matched by the
//! `id` we put on each) and asynchronous events. One reader thread per connection takes every
//! line: replies go to the caller waiting for that id, events to a handler that the backend
//! supplies. The handler runs on the reader thread, so it must never wait for a reply itself
//! (nothing else would read it); it may [`Qmp::send_detached`] a command whose reply it does
//! not need.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// A reply or an event longer than this ends the connection rather than the daemon's memory.
const MAX_LINE: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QmpError {
    /// QEMU refused the command; `class` is QMP's error class (`GenericError`, ...).
    #[error("{command}: {desc} ({class})")]
    Command { command: String, class: String, desc: String },
    #[error("the QMP connection is closed")]
    Closed,
    #[error("{0}: no reply from QEMU in time")]
    Timeout(String),
    #[error("QMP: {0}")]
    Protocol(String),
    #[error("QMP socket: {0}")]
    Io(String),
}

/// What the reader thread hands to the event handler.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Event {
        name: String,
        data: Value,
    },
    /// The connection ended: QEMU exited, was killed, or closed the monitor.
    Closed,
}

/// The `version` member of QEMU's greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub micro: u64,
}

type Pending = Mutex<HashMap<u64, SyncSender<Result<Value, QmpError>>>>;

struct Shared {
    pending: Pending,
    closed: AtomicBool,
}

impl Shared {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Dropping the senders wakes every waiter with a disconnect, which it reports as Closed.
        self.pending.lock().clear();
    }
}

/// A connection that has finished the greeting and capabilities negotiation but has no
/// reader yet, so that the caller can build the handler's context first.
pub struct Negotiated {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    pub version: Version,
}

pub struct Qmp {
    writer: Mutex<UnixStream>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    timeout: Duration,
}

fn io(e: std::io::Error) -> QmpError {
    QmpError::Io(e.to_string())
}

/// Reads one line, refusing lines longer than [`MAX_LINE`]. `Ok(None)` is end of stream.
fn read_line(reader: &mut BufReader<UnixStream>) -> Result<Option<Value>, QmpError> {
    let mut line = Vec::new();
    loop {
        let n = reader.by_ref().take((MAX_LINE + 1 - line.len()) as u64).read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            return if line.is_empty() { Ok(None) } else { Err(QmpError::Protocol("connection ended inside a message".into())) };
        }
        if line.ends_with(b"\n") {
            break;
        }
        if line.len() > MAX_LINE {
            return Err(QmpError::Protocol(format!("a message longer than {MAX_LINE} bytes")));
        }
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Value::Null));
    }
    serde_json::from_slice(&line).map(Some).map_err(|e| QmpError::Protocol(format!("not JSON: {e}")))
}

fn command_line(command: &str, arguments: Option<Value>, id: Option<u64>) -> Vec<u8> {
    let mut msg = Map::new();
    msg.insert("execute".into(), Value::String(command.into()));
    if let Some(arguments) = arguments {
        msg.insert("arguments".into(), arguments);
    }
    if let Some(id) = id {
        msg.insert("id".into(), json!(id));
    }
    let mut line = serde_json::to_vec(&Value::Object(msg)).expect("a JSON object serializes");
    line.push(b'\n');
    line
}

fn reply(command: &str, msg: &Value) -> Result<Value, QmpError> {
    if let Some(ret) = msg.get("return") {
        return Ok(ret.clone());
    }
    if let Some(err) = msg.get("error") {
        let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        return Err(QmpError::Command { command: command.into(), class: field("class"), desc: field("desc") });
    }
    Err(QmpError::Protocol(format!("a reply with neither return nor error: {msg}")))
}

impl Negotiated {
    /// Reads QEMU's greeting and leaves capabilities negotiation mode. QEMU sends no events
    /// before that, so every line read here belongs to the handshake.
    pub fn handshake(stream: UnixStream, timeout: Duration) -> Result<Negotiated, QmpError> {
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
        let timed_out = |e: QmpError| match e {
            QmpError::Io(ref m) if m.contains("timed out") || m.contains("temporarily unavailable") => {
                QmpError::Timeout("greeting (is another client connected?)".into())
            }
            other => other,
        };
        let greeting = read_line(&mut reader).map_err(timed_out)?.ok_or(QmpError::Closed)?;
        let v = greeting.pointer("/QMP/version/qemu").ok_or_else(|| QmpError::Protocol(format!("not a QMP greeting: {greeting}")))?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let version = Version { major: num("major"), minor: num("minor"), micro: num("micro") };
        (&stream).write_all(&command_line("qmp_capabilities", None, Some(0))).map_err(io)?;
        loop {
            let msg = read_line(&mut reader).map_err(timed_out)?.ok_or(QmpError::Closed)?;
            if msg.get("event").is_some() || msg.is_null() {
                continue;
            }
            reply("qmp_capabilities", &msg)?;
            break;
        }
        stream.set_read_timeout(None).map_err(io)?;
        Ok(Negotiated { stream, reader, version })
    }

    /// Starts the reader thread; `handler` sees every event and, last, [`Incoming::Closed`].
    pub fn start(self, name: &str, timeout: Duration, mut handler: impl FnMut(Incoming) + Send + 'static) -> Qmp {
        let shared = Arc::new(Shared { pending: Mutex::new(HashMap::new()), closed: AtomicBool::new(false) });
        let reader_shared = shared.clone();
        let mut reader = self.reader;
        std::thread::Builder::new()
            .name(format!("qmp-{name}"))
            .spawn(move || {
                loop {
                    match read_line(&mut reader) {
                        Ok(Some(msg)) => {
                            if let Some(name) = msg.get("event").and_then(Value::as_str) {
                                let data = msg.get("data").cloned().unwrap_or(Value::Null);
                                handler(Incoming::Event { name: name.to_owned(), data });
                            } else if let Some(id) = msg.get("id").and_then(Value::as_u64) {
                                if let Some(waiter) = reader_shared.pending.lock().remove(&id) {
                                    let _ = waiter.send(Ok(msg));
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "qemu: QMP connection dropped");
                            break;
                        }
                    }
                }
                reader_shared.close();
                handler(Incoming::Closed);
            })
            .expect("spawn a QMP reader thread");
        Qmp { writer: Mutex::new(self.stream), shared, next_id: AtomicU64::new(1), timeout }
    }
}

impl Qmp {
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Runs a command and waits for its reply, up to the connection's default timeout.
    pub fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, self.timeout)
    }

    pub fn execute_timeout(&self, command: &str, arguments: Option<Value>, timeout: Duration) -> Result<Value, QmpError> {
        let (rx, id) = self.submit(command, arguments)?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(msg)) => reply(command, &msg),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(QmpError::Closed),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.shared.pending.lock().remove(&id);
                Err(QmpError::Timeout(command.into()))
            }
        }
    }

    fn submit(&self, command: &str, arguments: Option<Value>) -> Result<(Receiver<Result<Value, QmpError>>, u64), QmpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        {
            // Registered before the write, so that a reply racing back cannot find no waiter.
            let mut pending = self.shared.pending.lock();
            if self.is_closed() {
                return Err(QmpError::Closed);
            }
            pending.insert(id, tx);
        }
        let line = command_line(command, arguments, Some(id));
        if let Err(e) = self.writer.lock().write_all(&line) {
            self.shared.pending.lock().remove(&id);
            return Err(if self.is_closed() { QmpError::Closed } else { io(e) });
        }
        Ok((rx, id))
    }

    /// Sends a command whose reply nobody waits for; safe to call from the event handler.
    pub fn send_detached(&self, command: &str, arguments: Option<Value>) -> Result<(), QmpError> {
        self.writer.lock().write_all(&command_line(command, arguments, None)).map_err(io)
    }

    /// Ends the connection from our side; the reader thread then reports `Closed`.
    pub fn shutdown(&self) {
        let _ = self.writer.lock().shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.shutdown();
    }
}
