//! Response bodies: either one buffer known up front (sent with `Content-Length`) or a stream of
//! chunks fed through a channel (sent chunked, optionally ending with HTTP trailers).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::HeaderMap;
use tokio::sync::mpsc;

/// The body of a [`Response`](crate::Response).
///
/// A [`Body::full`] body is sent with `Content-Length`. A [`Body::channel`] body has no length
/// up front, so it goes out with `Transfer-Encoding: chunked` (close-delimited to HTTP/1.0
/// clients) and may end with trailers.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Channel { rx: mpsc::Receiver<Msg>, done: bool },
}

enum Msg {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
}

/// The error a streamed body yields when its [`BodySender`] was dropped without
/// [`BodySender::finish`]. Hyper then cuts the connection instead of writing the final
/// zero-length chunk, so the client sees a truncated response rather than a short one that
/// looks complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyAborted;

impl fmt::Display for BodyAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response body aborted by the handler")
    }
}

impl std::error::Error for BodyAborted {}

/// The receiving side of a streamed body went away (the client disconnected); stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyClosed;

impl fmt::Display for BodyClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response body receiver closed")
    }
}

impl std::error::Error for BodyClosed {}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Body {
        Body { kind: Kind::Full(None) }
    }

    /// A body whose bytes are all known now.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)) }
    }

    /// A streamed body and the sender that feeds it. `capacity` chunks may be queued before
    /// [`BodySender::send`] waits, which is what applies back-pressure from a slow client to the
    /// producer.
    ///
    /// Trailers reach the client only if the request carried `TE: trailers` and the response
    /// declares them in a `Trailer` header (e.g. `Trailer: CIMStatusCode`); hyper drops them
    /// silently otherwise.
    pub fn channel(capacity: usize) -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (BodySender { tx }, Body { kind: Kind::Channel { rx, done: false } })
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(b) => write!(f, "Body::Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Kind::Channel { .. } => f.write_str("Body::Channel"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::full(b)
    }
}
impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Channel { rx, done } => {
                if *done {
                    return Poll::Ready(None);
                }
                match rx.poll_recv(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Msg::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                    Poll::Ready(Some(Msg::Trailers(t))) => {
                        *done = true;
                        Poll::Ready(Some(Ok(Frame::trailers(t))))
                    }
                    Poll::Ready(Some(Msg::End)) => {
                        *done = true;
                        Poll::Ready(None)
                    }
                    Poll::Ready(None) => {
                        *done = true;
                        Poll::Ready(Some(Err(BodyAborted)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Channel { done, .. } => *done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Channel { .. } => SizeHint::default(),
        }
    }
}

/// Feeds a [`Body::channel`] body. Call [`finish`](BodySender::finish) at the end: dropping the
/// sender without it aborts the response (see [`BodyAborted`]).
pub struct BodySender {
    tx: mpsc::Sender<Msg>,
}

impl BodySender {
    /// Queues one chunk; waits while the queue is full. Empty chunks are skipped because an
    /// empty chunk is the end marker of the chunked encoding.
    pub async fn send(&self, chunk: impl Into<Bytes>) -> Result<(), BodyClosed> {
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Ok(());
        }
        self.tx.send(Msg::Data(chunk)).await.map_err(|_| BodyClosed)
    }

    /// Ends the body, with trailers if given.
    pub async fn finish(self, trailers: Option<HeaderMap>) -> Result<(), BodyClosed> {
        let msg = match trailers {
            Some(t) => Msg::Trailers(t),
            None => Msg::End,
        };
        self.tx.send(msg).await.map_err(|_| BodyClosed)
    }

    /// Whether the response is still wanted (false once the client has gone).
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodySender")
    }
}
