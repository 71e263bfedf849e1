//! Streamed answers: a channel that a blocking engine call writes into and the response
//! body reads from. When the client goes away the body is dropped, the next send fails,
//! and the blocking side stops.

use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, StreamExt};

/// The writing end (used from a blocking thread).
#[derive(Clone)]
pub(crate) struct Sink {
    tx: mpsc::Sender<Bytes>,
}

impl Sink {
    /// Sends a chunk; `false` once the client is gone.
    pub fn send(&self, b: impl Into<Bytes>) -> bool {
        self.tx.blocking_send(b.into()).is_ok()
    }

    /// One JSON document and a newline (Docker's progress streams).
    pub fn json(&self, v: &serde_json::Value) -> bool {
        let mut s = v.to_string();
        s.push('\n');
        self.send(s)
    }

    pub fn closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A body fed by a [`Sink`].
pub(crate) fn channel() -> (Sink, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    (Sink { tx }, body)
}

/// The raw receiving end, for hijacked connections.
pub(crate) fn raw_channel() -> (Sink, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    (Sink { tx }, rx)
}

/// One frame of Docker's multiplexed stream: stream id (1 stdout, 2 stderr), three zero
/// bytes, the big-endian length, the data.
pub(crate) fn mux_frame(stream: u8, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_docker_headers() {
        let f = mux_frame(2, b"hi\n");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
    }
}
