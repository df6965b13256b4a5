//! Where an operation writes its response: a [`ResponseWriter`] whose bytes are handed to a
//! [`ChunkSink`] whenever enough have accumulated, so that a large enumeration never sits whole
//! in memory.

use crate::cimxml::ResponseWriter;

/// The client went away: stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientGone;

/// Receives the response body in pieces, in order.
pub trait ChunkSink {
    fn send(&mut self, chunk: Vec<u8>) -> Result<(), ClientGone>;
}

/// A sink that keeps everything (tests, small responses).
#[derive(Debug, Default)]
pub struct VecSink(pub Vec<u8>);

impl ChunkSink for VecSink {
    fn send(&mut self, chunk: Vec<u8>) -> Result<(), ClientGone> {
        self.0.extend_from_slice(&chunk);
        Ok(())
    }
}

/// Bytes gathered before a piece goes to the sink.
const FLUSH_AT: usize = 64 * 1024;

pub(crate) struct Out<'s> {
    pub writer: ResponseWriter,
    sink: &'s mut dyn ChunkSink,
}

impl<'s> Out<'s> {
    pub fn new(writer: ResponseWriter, sink: &'s mut dyn ChunkSink) -> Out<'s> {
        Out { writer, sink }
    }

    /// Hands over what has accumulated once it is large enough.
    pub fn maybe_flush(&mut self) -> Result<(), ClientGone> {
        if self.writer.buffered_len() >= FLUSH_AT {
            let chunk = self.writer.take_chunk();
            self.sink.send(chunk)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), ClientGone> {
        let rest = self.writer.finish();
        self.sink.send(rest)
    }
}
