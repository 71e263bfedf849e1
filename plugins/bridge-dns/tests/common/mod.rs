//! Helpers shared by the integration tests: a background tokio runtime, a fake upstream
//! and a blocking DNS client over loopback.
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket},
    str::FromStr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{rdata::A, Name, RData, Record, RecordType},
    serialize::binary::BinDecodable,
};
use tokio::{runtime::Handle, sync::oneshot};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A current-thread runtime driven by its own thread; tasks are spawned through `handle`.
pub struct Bg {
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bg {
    pub fn new() -> Bg {
        let (htx, hrx) = mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            htx.send(rt.handle().clone()).unwrap();
            rt.block_on(async {
                let _ = stop_rx.await;
            });
        });
        Bg {
            handle: hrx.recv_timeout(TIMEOUT).unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `fut` on the runtime and waits for its result.
    pub fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(TIMEOUT * 2)
            .expect("background task timed out")
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How the fake upstream behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers `A 192.0.2.<n>` for any name (n = 1..=count), NXDOMAIN for names
    /// starting with `nx`.
    Answer { count: u8 },
    /// Over UDP: an empty answer with TC set; over TCP: the full answer.
    TruncateUdp { count: u8 },
    /// SERVFAIL for everything.
    ServFail,
    /// Never answers.
    Silent,
}

/// A fake upstream resolver on 127.0.0.1 (UDP and TCP on the same port).
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub udp_queries: Arc<AtomicUsize>,
    pub tcp_queries: Arc<AtomicUsize>,
}

fn fake_answer(req: &Message, mode: Mode, tcp: bool) -> Option<Vec<u8>> {
    let q = req.queries.first()?.clone();
    let mut resp = Message::response(req.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());
    match mode {
        Mode::Silent => return None,
        Mode::ServFail => resp.metadata.response_code = ResponseCode::ServFail,
        Mode::TruncateUdp { .. } if !tcp => resp.metadata.truncation = true,
        Mode::Answer { count } | Mode::TruncateUdp { count } => {
            if q.name().to_ascii().starts_with("nx") {
                resp.metadata.response_code = ResponseCode::NXDomain;
            } else if q.query_type() == RecordType::A {
                for i in 1..=count {
                    resp.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
                    ));
                }
            }
        }
    }
    resp.to_vec().ok()
}

/// A loopback address of this test alone (127.78.<pid>.<n>) with `port`, free for UDP
/// and TCP at the time of the call.
pub fn unique_loopback(port: u16) -> SocketAddr {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let pid = std::process::id();
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let ip = Ipv4Addr::new(
            127,
            78,
            (pid % 251) as u8,
            (n % 250) as u8 + 1 + ((pid / 251) % 3) as u8,
        );
        let addr = SocketAddr::from((ip, port));
        if UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback address for port {port}");
}

impl FakeUpstream {
    pub fn start(bg: &Bg, mode: Mode) -> FakeUpstream {
        Self::start_on(bg, mode, "127.0.0.1:0".parse().unwrap())
    }

    pub fn start_on(bg: &Bg, mode: Mode, bind: SocketAddr) -> FakeUpstream {
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let (uq, tq) = (udp_queries.clone(), tcp_queries.clone());
        let addr = bg.run(async move {
            let udp = tokio::net::UdpSocket::bind(bind).await.unwrap();
            let addr = udp.local_addr().unwrap();
            let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                        continue;
                    };
                    uq.fetch_add(1, Ordering::SeqCst);
                    let Ok(req) = Message::from_bytes(&buf[..n]) else {
                        continue;
                    };
                    if let Some(resp) = fake_answer(&req, mode, false) {
                        let _ = udp.send_to(&resp, peer).await;
                    }
                }
            });
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                loop {
                    let Ok((mut s, _)) = tcp.accept().await else {
                        continue;
                    };
                    let tq = tq.clone();
                    tokio::spawn(async move {
                        let mut len = [0u8; 2];
                        s.read_exact(&mut len).await?;
                        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                        s.read_exact(&mut msg).await?;
                        tq.fetch_add(1, Ordering::SeqCst);
                        let req = Message::from_bytes(&msg).map_err(std::io::Error::other)?;
                        if let Some(resp) = fake_answer(&req, mode, true) {
                            let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&resp);
                            s.write_all(&out).await?;
                        }
                        Ok::<_, std::io::Error>(())
                    });
                }
            });
            addr
        });
        FakeUpstream {
            addr,
            udp_queries,
            tcp_queries,
        }
    }
}

/// A loopback UDP port nobody listens on (queries to it are refused at once).
pub fn dead_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

pub fn query_msg(name: &str, t: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), t));
    m
}

/// One query over UDP; panics on timeout.
pub fn udp_query(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let m = query_msg(name, t);
    let resp = udp_exchange(server, &m.to_vec().unwrap()).expect("no answer over UDP");
    let resp = Message::from_bytes(&resp).unwrap();
    assert_eq!(resp.metadata.id, m.metadata.id);
    assert_eq!(resp.metadata.message_type, MessageType::Response);
    resp
}

/// Sends raw bytes over UDP; None on timeout.
pub fn udp_exchange(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_exchange_timeout(server, bytes, TIMEOUT)
}

pub fn udp_exchange_timeout(server: SocketAddr, bytes: &[u8], t: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(t)).unwrap();
    sock.connect(server).unwrap();
    sock.send(bytes).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// One query over TCP.
pub fn tcp_query(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let m = query_msg(name, t);
    let mut s = TcpStream::connect_timeout(&server, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let bytes = m.to_vec().unwrap();
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    s.write_all(&out).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    let resp = Message::from_bytes(&buf).unwrap();
    assert_eq!(resp.metadata.id, m.metadata.id);
    resp
}

/// The answers' data as strings.
pub fn answers(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}
