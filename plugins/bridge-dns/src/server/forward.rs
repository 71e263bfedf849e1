//! Forwarding to upstream resolvers: UDP from a fresh connected socket with a random id,
//! TCP when the UDP answer is truncated, the next upstream on timeout, error, SERVFAIL or
//! REFUSED.

use std::{io, net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, MessageType, Query, ResponseCode},
    serialize::binary::BinDecodable,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::timeout,
};
use tracing::debug;

/// Largest UDP answer we accept from an upstream.
const MAX_UDP: usize = 65535;

/// Is `resp` the answer to our query (`id`, same question)?
fn matches(resp: &[u8], id: u16, q: &Query) -> Option<Message> {
    let msg = Message::from_bytes(resp).ok()?;
    if msg.metadata.id != id || msg.metadata.message_type != MessageType::Response {
        return None;
    }
    // A truncated answer may come without its question section.
    match msg.queries.first() {
        Some(rq)
            if rq.query_type() == q.query_type()
                && rq.query_class() == q.query_class()
                && rq.name() == q.name() =>
        {
            Some(msg)
        }
        None if msg.metadata.truncation => Some(msg),
        _ => None,
    }
}

fn with_id(query: &[u8], id: u16) -> Vec<u8> {
    let mut out = query.to_vec();
    out[..2].copy_from_slice(&id.to_be_bytes());
    out
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

async fn udp_exchange(
    upstream: SocketAddr,
    query: &[u8],
    q: &Query,
    limit: Duration,
) -> io::Result<(Vec<u8>, Message)> {
    let id: u16 = rand::random();
    let bind: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(upstream).await?;
    sock.send(&with_id(query, id)).await?;
    let mut buf = vec![0u8; MAX_UDP];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| timed_out("UDP query"))??;
        if let Some(msg) = matches(&buf[..n], id, q) {
            return Ok((buf[..n].to_vec(), msg));
        }
        debug!(%upstream, "ignoring a datagram that does not answer our query");
    }
}

async fn tcp_exchange(
    upstream: SocketAddr,
    query: &[u8],
    q: &Query,
    limit: Duration,
) -> io::Result<(Vec<u8>, Message)> {
    let id: u16 = rand::random();
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        let len = u16::try_from(query.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&with_id(query, id));
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await?;
        let msg = matches(&buf, id, q).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "TCP answer does not match the query",
            )
        })?;
        Ok((buf, msg))
    };
    timeout(limit, exchange)
        .await
        .map_err(|_| timed_out("TCP query"))?
}

/// Forwards `query` (the client's message as received, at least 12 bytes) for question
/// `q`. Returns the upstream's answer with the client's id, or None when no upstream gave a
/// usable one (the caller answers SERVFAIL).
pub async fn forward(
    upstreams: &[SocketAddr],
    limit: Duration,
    query: &[u8],
    q: &Query,
) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let client_id = [query[0], query[1]];
    let mut fallback: Option<Vec<u8>> = None;
    for &up in upstreams {
        let mut result = udp_exchange(up, query, q, limit).await;
        if let Ok((_, msg)) = &result {
            if msg.metadata.truncation {
                debug!(upstream = %up, "truncated UDP answer, retrying over TCP");
                result = tcp_exchange(up, query, q, limit).await;
            }
        }
        match result {
            Ok((mut bytes, msg)) => {
                bytes[..2].copy_from_slice(&client_id);
                match msg.metadata.response_code {
                    ResponseCode::ServFail | ResponseCode::Refused => {
                        debug!(upstream = %up, rcode = %msg.metadata.response_code, "trying the next upstream");
                        fallback = Some(bytes);
                    }
                    _ => return Some(bytes),
                }
            }
            Err(e) => debug!(upstream = %up, error = %e, "upstream failed"),
        }
    }
    fallback
}
