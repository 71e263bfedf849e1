//! The responder: UDP and TCP listeners answering from one records file and forwarding
//! the rest upstream (feature `server`).
//!
//! * Every query stats the records file and re-reads it when it changed (inode, size,
//!   mtime, ctime), so an attach is visible to the very next query; a poller does the same
//!   every [`Config::poll_interval`] and stops the server when the file is gone
//!   ([`Exit::RecordsRemoved`]).
//! * Names in the records are answered authoritatively, bare (`web`) and under the search
//!   domain (`web.dns.berth`); unknown names under the domain are NXDOMAIN; PTR queries
//!   for recorded addresses name the primary name under the domain. Everything else goes
//!   to the upstreams (NXDOMAIN when there are none, SERVFAIL when they all fail).

pub mod forward;
pub mod resolvconf;
pub mod watch;
pub mod zone;

use std::{
    future::Future,
    io,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Header, Message, MessageType, OpCode, ResponseCode},
    serialize::binary::BinDecodable,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::{watch as tokio_watch, Semaphore},
    task::JoinSet,
};
use tracing::{debug, info, warn};

use crate::records::Records;
use watch::{Change, Watched};
use zone::{Resolution, Zone};

/// Queries handled at once (beyond this, UDP queries are dropped and clients retry).
const MAX_IN_FLIGHT: usize = 512;
/// TCP connections served at once.
const MAX_TCP_CONNECTIONS: usize = 128;
/// The EDNS payload size we advertise.
const OUR_EDNS_PAYLOAD: u16 = 1232;

/// Where upstream resolvers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstreams {
    /// No forwarding: names not in the records are NXDOMAIN.
    None,
    /// These servers, in order.
    Fixed(Vec<SocketAddr>),
    /// The `nameserver` lines of this resolv.conf (port 53), re-read when it changes.
    /// Loopback servers (127.0.0.53) are kept: the responder runs in the host's namespace.
    ResolvConf(PathBuf),
}

/// Responder configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to serve on (UDP and TCP each). Port 0 picks a free port (the same for
    /// UDP and TCP); see [`Server::local_addrs`].
    pub listen: Vec<SocketAddr>,
    /// The records file (see [`crate::records`]). Must exist at start.
    pub records: PathBuf,
    /// Search domain under which names also resolve (`dns.berth`); empty for none.
    pub domain: String,
    pub upstreams: Upstreams,
    /// Time allowed to one upstream for one exchange (UDP, then TCP if truncated).
    pub upstream_timeout: Duration,
    /// TTL of local answers.
    pub ttl: u32,
    /// How often the records file is checked between queries (for removal).
    pub poll_interval: Duration,
    /// A TCP connection without a complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl Config {
    /// Defaults: domain `dns.berth`, upstreams from /etc/resolv.conf, 2 s upstream
    /// timeout, TTL 1 s, poll every 500 ms, TCP idle 10 s.
    pub fn new(listen: Vec<SocketAddr>, records: impl Into<PathBuf>) -> Config {
        Config {
            listen,
            records: records.into(),
            domain: "dns.berth".into(),
            upstreams: Upstreams::ResolvConf("/etc/resolv.conf".into()),
            upstream_timeout: Duration::from_secs(2),
            ttl: 1,
            poll_interval: Duration::from_millis(500),
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Why [`Server::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown future completed (SIGTERM/SIGINT in the binary).
    Shutdown,
    /// The records file was removed: the network is gone.
    RecordsRemoved,
}

/// Errors starting or running the responder.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("no listen address given")]
    NoListen,
    #[error("bind {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("records file {path} does not exist: the network backend writes it before starting berth-dns")]
    RecordsMissing { path: PathBuf },
    #[error("read records file {path}: {source}")]
    Records {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid search domain {domain:?}: {reason}")]
    Domain {
        domain: String,
        reason: &'static str,
    },
}

struct RecordsState {
    file: Watched,
    zone: Arc<Zone>,
}

struct UpstreamState {
    source: Upstreams,
    file: Option<Watched>,
    current: Arc<Vec<SocketAddr>>,
}

struct Shared {
    domain: String,
    ttl: u32,
    upstream_timeout: Duration,
    tcp_idle_timeout: Duration,
    listen: Vec<SocketAddr>,
    records: Mutex<RecordsState>,
    upstreams: Mutex<UpstreamState>,
    removed: tokio_watch::Sender<bool>,
    in_flight: Arc<Semaphore>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (plain replacements).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The zone as of now (re-reading the file if it changed). A missing file keeps the
    /// last zone and signals removal.
    fn zone(&self) -> Arc<Zone> {
        let mut st = lock(&self.records);
        match st.file.check() {
            Ok((Change::Unchanged, _)) => {}
            Ok((Change::Changed, text)) => {
                let (records, problems) = Records::parse_lenient(text.as_deref().unwrap_or(""));
                for p in &problems {
                    warn!(path = %st.file.path().display(), problem = %p, "skipping a bad line of the records file");
                }
                let zone = Zone::new(&records, &self.domain, self.ttl);
                info!(path = %st.file.path().display(), addresses = records.len(), names = zone.names(), "records loaded");
                st.zone = Arc::new(zone);
            }
            Ok((Change::Missing, _)) => {
                if !*self.removed.borrow() {
                    info!(path = %st.file.path().display(), "records file removed, stopping");
                }
                self.removed.send_replace(true);
            }
            Err(e) => {
                warn!(path = %st.file.path().display(), error = %e, "cannot read the records file, keeping the last records")
            }
        }
        st.zone.clone()
    }

    fn upstreams(&self) -> Arc<Vec<SocketAddr>> {
        let mut st = lock(&self.upstreams);
        let UpstreamState {
            source,
            file,
            current,
        } = &mut *st;
        if let (Upstreams::ResolvConf(path), Some(file)) = (&*source, file.as_mut()) {
            match file.check() {
                Ok((Change::Changed, text)) => {
                    let servers =
                        resolvconf::nameservers(text.as_deref().unwrap_or(""), &self.listen);
                    info!(path = %path.display(), upstreams = ?servers, "upstreams loaded");
                    *current = Arc::new(servers);
                }
                Ok((Change::Missing, _)) => {
                    if !current.is_empty() {
                        warn!(path = %path.display(), "resolv.conf is gone: no upstreams");
                    }
                    *current = Arc::new(Vec::new());
                }
                Ok((Change::Unchanged, _)) => {}
                Err(e) => warn!(path = %path.display(), error = %e, "cannot read resolv.conf"),
            }
        }
        current.clone()
    }

    /// Answers one message. `udp_limit` is Some for UDP (answers are truncated to the
    /// client's payload size). None means "send nothing".
    async fn handle(&self, packet: &[u8], udp: bool) -> Option<Vec<u8>> {
        let header = Header::from_bytes(packet).ok()?;
        if header.metadata.message_type != MessageType::Query {
            return None;
        }
        let id = header.metadata.id;
        if header.metadata.op_code != OpCode::Query {
            return encode(&Message::error_msg(
                id,
                header.metadata.op_code,
                ResponseCode::NotImp,
            ));
        }
        let req = match Message::from_bytes(packet) {
            Ok(m) if m.queries.len() == 1 => m,
            _ => {
                return encode(&Message::error_msg(
                    id,
                    OpCode::Query,
                    ResponseCode::FormErr,
                ))
            }
        };
        let q = &req.queries[0];
        let limit = if udp {
            req.edns
                .as_ref()
                .map_or(512, |e| usize::from(e.max_payload().clamp(512, 4096)))
        } else {
            usize::from(u16::MAX)
        };
        let mut resp = Message::response(id, OpCode::Query);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.add_query(q.clone());
        if req.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(OUR_EDNS_PAYLOAD);
            resp.set_edns(edns);
        }
        let zone = self.zone();
        let upstreams = self.upstreams();
        resp.metadata.recursion_available = !upstreams.is_empty();
        match zone.resolve(q) {
            Resolution::Local { rcode, answers } => {
                debug!(name = %q.name(), qtype = %q.query_type(), %rcode, answers = answers.len(), "local answer");
                resp.metadata.authoritative = true;
                resp.metadata.response_code = rcode;
                resp.add_answers(answers);
            }
            Resolution::NotLocal if upstreams.is_empty() => {
                debug!(name = %q.name(), qtype = %q.query_type(), "not local, no upstream: NXDOMAIN");
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            Resolution::NotLocal => {
                match forward::forward(&upstreams, self.upstream_timeout, packet, q).await {
                    Some(bytes) => {
                        debug!(name = %q.name(), qtype = %q.query_type(), len = bytes.len(), "forwarded");
                        if bytes.len() <= limit {
                            return Some(bytes);
                        }
                        // Larger than the client's UDP size (fetched over TCP upstream):
                        // tell it to come back over TCP.
                        let mut big = Message::from_bytes(&bytes).ok()?;
                        big.metadata.id = id;
                        return encode(&big.truncate());
                    }
                    None => {
                        warn!(name = %q.name(), qtype = %q.query_type(), upstreams = ?upstreams, "no upstream answered: SERVFAIL");
                        resp.metadata.response_code = ResponseCode::ServFail;
                    }
                }
            }
        }
        let bytes = encode(&resp)?;
        if bytes.len() > limit {
            return encode(&resp.truncate());
        }
        Some(bytes)
    }
}

fn encode(msg: &Message) -> Option<Vec<u8>> {
    match msg.to_vec() {
        Ok(b) => Some(b),
        Err(e) => {
            warn!(error = %e, "cannot encode an answer");
            None
        }
    }
}

/// A bound responder, ready to [`Server::run`].
pub struct Server {
    shared: Arc<Shared>,
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    poll_interval: Duration,
    removed: tokio_watch::Receiver<bool>,
}

impl Server {
    /// Loads the records and binds every listen address (UDP, then TCP on the same port).
    pub async fn bind(cfg: Config) -> Result<Server, ServerError> {
        if cfg.listen.is_empty() {
            return Err(ServerError::NoListen);
        }
        if !cfg.domain.is_empty() {
            crate::records::validate_name(cfg.domain.trim_matches('.')).map_err(|reason| {
                ServerError::Domain {
                    domain: cfg.domain.clone(),
                    reason,
                }
            })?;
        }
        let mut file = Watched::new(&cfg.records);
        let text = match file.check() {
            Ok((Change::Missing, _)) => {
                return Err(ServerError::RecordsMissing {
                    path: cfg.records.clone(),
                })
            }
            Ok((_, text)) => text.unwrap_or_default(),
            Err(source) => {
                return Err(ServerError::Records {
                    path: cfg.records.clone(),
                    source,
                })
            }
        };
        let (records, problems) = Records::parse_lenient(&text);
        for p in &problems {
            warn!(path = %cfg.records.display(), problem = %p, "skipping a bad line of the records file");
        }
        let zone = Zone::new(&records, &cfg.domain, cfg.ttl);

        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut bound = Vec::new();
        for &addr in &cfg.listen {
            let u = UdpSocket::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    proto: "udp",
                    addr,
                    source,
                })?;
            let actual = u.local_addr().map_err(|source| ServerError::Bind {
                proto: "udp",
                addr,
                source,
            })?;
            let t = TcpListener::bind(actual)
                .await
                .map_err(|source| ServerError::Bind {
                    proto: "tcp",
                    addr: actual,
                    source,
                })?;
            info!(udp = %actual, tcp = %actual, "listening");
            bound.push(actual);
            udp.push(Arc::new(u));
            tcp.push(t);
        }

        let (upstream_file, current) = match &cfg.upstreams {
            Upstreams::None => (None, Vec::new()),
            Upstreams::Fixed(v) => (
                None,
                v.iter().copied().filter(|u| !bound.contains(u)).collect(),
            ),
            Upstreams::ResolvConf(p) => (Some(Watched::new(p)), Vec::new()),
        };
        let (removed_tx, removed_rx) = tokio_watch::channel(false);
        let shared = Arc::new(Shared {
            domain: cfg.domain.clone(),
            ttl: cfg.ttl,
            upstream_timeout: cfg.upstream_timeout,
            tcp_idle_timeout: cfg.tcp_idle_timeout,
            listen: bound,
            records: Mutex::new(RecordsState {
                file,
                zone: Arc::new(zone),
            }),
            upstreams: Mutex::new(UpstreamState {
                source: cfg.upstreams.clone(),
                file: upstream_file,
                current: Arc::new(current),
            }),
            removed: removed_tx,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        });
        let ups = shared.upstreams();
        info!(records = %cfg.records.display(), addresses = records.len(), domain = %cfg.domain, upstreams = ?ups, "berth-dns ready");
        Ok(Server {
            shared,
            udp,
            tcp,
            poll_interval: cfg.poll_interval,
            removed: removed_rx,
        })
    }

    /// The bound addresses (UDP and TCP share each one), in `listen` order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.listen.clone()
    }

    /// Serves until `shutdown` completes or the records file is removed.
    pub async fn run<F: Future<Output = ()>>(self, shutdown: F) -> Exit {
        let Server {
            shared,
            udp,
            tcp,
            poll_interval,
            mut removed,
        } = self;
        let mut tasks = JoinSet::new();
        for sock in udp {
            tasks.spawn(serve_udp(shared.clone(), sock));
        }
        let conns = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
        for listener in tcp {
            tasks.spawn(serve_tcp(shared.clone(), listener, conns.clone()));
        }
        let poller = shared.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                poller.zone();
            }
        });
        let exit = tokio::select! {
            _ = shutdown => Exit::Shutdown,
            _ = removed.wait_for(|gone| *gone) => Exit::RecordsRemoved,
        };
        tasks.shutdown().await;
        info!(?exit, "berth-dns stopped");
        exit
    }
}

async fn serve_udp(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "UDP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = shared.in_flight.clone().try_acquire_owned() else {
            debug!(%peer, "too many queries in flight, dropping one");
            continue;
        };
        let packet = buf[..n].to_vec();
        let shared = shared.clone();
        let sock = sock.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(resp) = shared.handle(&packet, true).await {
                if let Err(e) = sock.send_to(&resp, peer).await {
                    debug!(%peer, error = %e, "UDP send failed");
                }
            }
        });
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener, conns: Arc<Semaphore>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            debug!(%peer, "too many TCP connections, closing one");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_tcp_conn(&shared, stream).await {
                debug!(%peer, error = %e, "TCP connection ended");
            }
        });
    }
}

async fn serve_tcp_conn(shared: &Shared, mut stream: TcpStream) -> io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(shared.tcp_idle_timeout, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(shared.tcp_idle_timeout, stream.read_exact(&mut msg))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "incomplete query"))??;
        let Some(resp) = shared.handle(&msg, false).await else {
            continue;
        };
        let Ok(rlen) = u16::try_from(resp.len()) else {
            warn!(len = resp.len(), "answer too long for TCP, dropping it");
            continue;
        };
        let mut out = rlen.to_be_bytes().to_vec();
        out.extend_from_slice(&resp);
        stream.write_all(&out).await?;
    }
}
