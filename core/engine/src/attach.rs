//! Attaching to a container's stdio through its monitor.
//!
//! The monitor of a detached container (`berth-monitor`) owns the container's stdio: the
//! stdout/stderr pipes (or the pty master) and, with `-i`, the write end of its stdin. It
//! listens on `containers/<id>/attach.sock` (a unix stream socket, reached through
//! `/proc/self/fd/N/attach.sock` so a long root path does not hit the 108-byte limit of
//! socket addresses). Both directions carry frames: a kind byte, a big-endian `u32`
//! length, the payload.
//!
//! * client → monitor: `HELLO` (one flags byte: which streams, close stdin at EOF),
//!   `STDIN` data, `STDIN_EOF`, `RESIZE` (rows, cols as two `u16`).
//! * monitor → client: `STDOUT` / `STDERR` data, `EXIT` (the exit code as `i32`), sent
//!   when the process has exited and its output was drained.
//!
//! Detach keys are the client's business ([`DetachKeys`]): the client stops forwarding
//! and closes its connection; the container runs on.

use std::{
    io::{self, Read, Write},
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
        unix::net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::{logs::LogOptions, Engine, EngineError};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

const HELLO: u8 = 0;
const STDIN: u8 = 1;
const STDIN_EOF: u8 = 2;
const RESIZE: u8 = 3;
const OUT_STDOUT: u8 = 1;
const OUT_STDERR: u8 = 2;
const OUT_EXIT: u8 = 3;

const WANT_STDIN: u8 = 1;
const WANT_STDOUT: u8 = 2;
const WANT_STDERR: u8 = 4;
const CLOSE_STDIN: u8 = 8;

/// Frames larger than this are a protocol error (data frames are at most 64 KiB).
const MAX_FRAME: usize = 1 << 20;

/// How long the monitor waits on a client that does not read its output before it
/// drops that client (the container's output must not stall on one slow reader).
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(kind);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Reads one frame; `None` at a clean end of stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Splits complete frames off the front of `buf` (the monitor reads without blocking).
fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, ()> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 5 {
            return Ok(out);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(());
        }
        if buf.len() < 5 + len {
            return Ok(out);
        }
        let kind = buf[0];
        let payload = buf[5..5 + len].to_vec();
        buf.drain(..5 + len);
        out.push((kind, payload));
    }
}

/// A directory handle and the short `/proc/self/fd/N/NAME` path of a socket in it.
fn short_path(dir: &Path) -> io::Result<(OwnedFd, PathBuf)> {
    let d = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let p = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd()));
    Ok((d, p))
}

fn connect(dir: &Path) -> io::Result<UnixStream> {
    let (_d, p) = short_path(dir)?;
    UnixStream::connect(p)
}

/// Writes all of `data` to a non-blocking socket, waiting for room up to `timeout`.
fn write_all_wait(s: &mut UnixStream, mut data: &[u8], timeout: Duration) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !data.is_empty() {
        match s.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
                let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, ms) {
                    Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets a terminal's size (the pty master of a container with `-t`).
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own; the descriptor is borrowed live.
    unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

/// Where the container's stdin goes (monitor side).
pub(crate) enum StdinSink {
    /// No `-i`: input from clients is dropped.
    None,
    /// The write end of the container's stdin pipe (dropped at a client's EOF when the
    /// client asked for it: Docker's `StdinOnce`).
    Pipe(Option<OwnedFd>),
    /// The pty master (`-t`): input is typed into the terminal; EOF is `^D`.
    Pty(OwnedFd),
}

struct Client {
    stream: UnixStream,
    /// `None` until the client's `HELLO`.
    flags: Option<u8>,
    inbuf: Vec<u8>,
}

/// The monitor's end: the listening socket and the attached clients. The socket file is
/// removed on drop.
pub(crate) struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
}

impl AttachServer {
    /// Listens on `dir/attach.sock` (a stale socket of an earlier start is replaced).
    pub(crate) fn bind(dir: &Path) -> Result<AttachServer, EngineError> {
        let path = dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let err = |e| EngineError::io(format!("creating the attach socket {}", path.display()), e);
        let (_d, short) = short_path(dir).map_err(err)?;
        let listener = UnixListener::bind(&short).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(AttachServer {
            listener,
            path,
            clients: Vec::new(),
        })
    }

    pub(crate) fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub(crate) fn client_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.clients.iter().map(|c| c.stream.as_fd()).collect()
    }

    /// Accepts the clients waiting to connect.
    pub(crate) fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    flags: None,
                    inbuf: Vec::new(),
                });
            }
        }
    }

    /// Blocks until a first client has connected and said which streams it wants, or
    /// `timeout` passed (`start -a`: the output of a short-lived process must not be
    /// produced before its client listens).
    pub(crate) fn wait_first(&mut self, timeout: Duration, stdin: &mut StdinSink) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = std::time::Instant::now() + timeout;
        // (A connection that wants no stream, such as a resize, does not count.)
        while !self.clients.iter().any(|c| c.flags.is_some_and(|f| f != 0)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!("no attach client came within {timeout:?}; starting anyway");
                return;
            }
            {
                let mut fds = vec![PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                for c in &self.clients {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                }
                let t = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, t) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
            self.accept();
            for i in (0..self.clients.len()).rev() {
                self.on_readable(i, stdin);
            }
        }
    }

    /// Reads what client `i` sent and acts on it; drops the client at its end.
    pub(crate) fn on_readable(&mut self, i: usize, stdin: &mut StdinSink) {
        let mut buf = [0u8; 16 * 1024];
        let mut gone = false;
        loop {
            match self.clients[i].stream.read(&mut buf) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => self.clients[i].inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        let frames = match take_frames(&mut self.clients[i].inbuf) {
            Ok(f) => f,
            Err(()) => {
                gone = true;
                Vec::new()
            }
        };
        for (kind, payload) in frames {
            let flags = self.clients[i].flags;
            match kind {
                HELLO => self.clients[i].flags = Some(payload.first().copied().unwrap_or(0)),
                STDIN if flags.is_some_and(|f| f & WANT_STDIN != 0) => match stdin {
                    StdinSink::Pipe(Some(fd)) | StdinSink::Pty(fd) => {
                        write_fd_all(fd.as_fd(), &payload);
                    }
                    _ => {}
                },
                STDIN_EOF if flags.is_some_and(|f| f & WANT_STDIN != 0 && f & CLOSE_STDIN != 0) => {
                    match stdin {
                        StdinSink::Pipe(p) => *p = None,
                        StdinSink::Pty(fd) => write_fd_all(fd.as_fd(), &[4]),
                        StdinSink::None => {}
                    }
                }
                RESIZE if payload.len() == 4 => {
                    if let StdinSink::Pty(fd) = stdin {
                        let rows = u16::from_be_bytes([payload[0], payload[1]]);
                        let cols = u16::from_be_bytes([payload[2], payload[3]]);
                        set_winsize(fd.as_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
        if gone {
            self.clients.remove(i);
        }
    }

    /// Sends a chunk of output (`stream` 0 = stdout, 1 = stderr) to the clients that
    /// want it; a client that does not take it within the timeout is dropped.
    pub(crate) fn broadcast(&mut self, stream: usize, data: &[u8]) {
        let (kind, want) = if stream == 0 {
            (OUT_STDOUT, WANT_STDOUT)
        } else {
            (OUT_STDERR, WANT_STDERR)
        };
        let f = frame(kind, data);
        self.clients.retain_mut(|c| {
            if c.flags.is_none_or(|fl| fl & want == 0) {
                return true;
            }
            write_all_wait(&mut c.stream, &f, CLIENT_WRITE_TIMEOUT).is_ok()
        });
    }

    /// Tells the clients the exit code and lets them go.
    pub(crate) fn finish(&mut self, code: i32) {
        let _ = std::fs::remove_file(&self.path);
        let f = frame(OUT_EXIT, &code.to_be_bytes());
        for mut c in self.clients.drain(..) {
            let _ = write_all_wait(&mut c.stream, &f, CLIENT_WRITE_TIMEOUT);
        }
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn write_fd_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Docker's detach keys: a comma-separated list of `ctrl-<x>` (x one of `a`–`z`, `@`,
/// `[`, `\`, `]`, `^`, `_`) and single characters; `ctrl-p,ctrl-q` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl DetachKeys {
    pub const DEFAULT: &str = "ctrl-p,ctrl-q";

    /// Parses `--detach-keys` (an empty string turns detaching off).
    pub fn parse(spec: &str) -> Result<DetachKeys, EngineError> {
        let mut out = Vec::new();
        if spec.is_empty() {
            return Ok(DetachKeys(out));
        }
        for key in spec.split(',') {
            let lower = key.to_ascii_lowercase();
            let b = if let Some(c) = lower.strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b @ b'a'..=b'z'] => b - b'a' + 1,
                    [b'@'] => 0,
                    [b'['] => 27,
                    [b'\\'] => 28,
                    [b']'] => 29,
                    [b'^'] => 30,
                    [b'_'] => 31,
                    _ => {
                        return Err(EngineError::Invalid(format!(
                            "--detach-keys {spec:?}: unknown key {key:?} (use ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or a single character)"
                        )))
                    }
                }
            } else if key.len() == 1 {
                key.as_bytes()[0]
            } else {
                return Err(EngineError::Invalid(format!(
                    "--detach-keys {spec:?}: unknown key {key:?} (use ctrl-<x> or a single character, comma-separated)"
                )));
            };
            out.push(b);
        }
        Ok(DetachKeys(out))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Default for DetachKeys {
    fn default() -> Self {
        DetachKeys(vec![16, 17])
    }
}

/// Finds the detach sequence in a byte stream: bytes that may start it are held back
/// until it is complete (detach: they are never forwarded) or broken (forwarded).
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachScanner {
    pub fn new(keys: &DetachKeys) -> DetachScanner {
        DetachScanner {
            keys: keys.0.clone(),
            held: Vec::new(),
        }
    }

    /// The bytes to forward now, and whether the sequence was completed.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (data.to_vec(), false);
        }
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            self.held.push(b);
            if self.keys.starts_with(&self.held) {
                if self.held.len() == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            // Broken: forward the first held byte and look for the sequence again in the
            // rest (the broken prefix may itself start a new match).
            let mut pending = std::mem::take(&mut self.held);
            while !pending.is_empty() {
                out.push(pending.remove(0));
                if self.keys.starts_with(&pending) {
                    break;
                }
            }
            self.held = pending;
        }
        (out, false)
    }
}

/// Which of the container's streams a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

/// Receives the container's output during [`Engine::attach`], chunk by chunk with its
/// stream (a server multiplexes them into Docker's 8-byte-header frames).
pub trait AttachOutput: Send {
    fn write(&mut self, stream: StreamKind, data: &[u8]) -> io::Result<()>;
}

/// Output into two writers (a terminal's stdout and stderr).
pub struct SplitOutput {
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

impl AttachOutput for SplitOutput {
    fn write(&mut self, stream: StreamKind, data: &[u8]) -> io::Result<()> {
        let w = match stream {
            StreamKind::Stdout => &mut self.stdout,
            StreamKind::Stderr => &mut self.stderr,
        };
        w.write_all(data)?;
        w.flush()
    }
}

/// `Engine::attach` options (Docker's `POST /containers/{id}/attach` parameters).
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the container's log first.
    pub logs: bool,
    /// Stream live output (and input) after the log.
    pub stream: bool,
    /// Docker's `--detach-keys` syntax; `None` is `ctrl-p,ctrl-q`, `Some("")` disables.
    pub detach_keys: Option<String>,
    /// Close the container's stdin when the caller's stdin ends (Docker's `StdinOnce`,
    /// which `run -i` and `start -ai` use).
    pub close_stdin: bool,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            logs: false,
            stream: true,
            detach_keys: None,
            close_stdin: false,
        }
    }
}

/// The caller's ends of an attach.
pub struct AttachStreams {
    /// Read for the container's stdin when `AttachOptions::stdin` (read on a thread of
    /// its own, which may outlive the attach while it waits for input).
    pub stdin: Option<Box<dyn Read + Send>>,
    pub output: Box<dyn AttachOutput>,
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The process exited with this code (Docker's convention: 128+N for signal N).
    Exited(i32),
    /// The caller typed the detach keys; the container runs on.
    Detached,
    /// The stream ended without an exit code (the monitor went away, or only the log
    /// was asked for).
    Closed,
}

/// An attach connection that was opened before the container started
/// (`Engine::start_attached`), so no output is missed.
pub(crate) struct Pending {
    pub(crate) stream: UnixStream,
}

impl Engine {
    /// `berth attach`, `start -a`: streams the container's output to `streams.output`
    /// and feeds `streams.stdin` to it, through its monitor's attach socket. Returns when
    /// the process exits, the detach keys are typed, or the monitor goes away. The engine
    /// never touches the process's own stdio.
    pub fn attach(
        &self,
        id: &str,
        opts: &AttachOptions,
        streams: AttachStreams,
    ) -> Result<AttachEnd, EngineError> {
        let rec = self.db()?.resolve(id)?;
        let keys = match &opts.detach_keys {
            Some(k) => DetachKeys::parse(k)?,
            None => DetachKeys::default(),
        };
        let dir = self.container_dir(&rec.id);
        let conn = if opts.stream && rec.state.is_live() {
            match connect(&dir) {
                Ok(s) => Some(s),
                Err(e) => {
                    return Err(EngineError::Conflict(format!(
                        "cannot attach to {}: its monitor does not listen on {} ({e}); it was started in the foreground by another berth",
                        rec.name,
                        dir.join(SOCKET).display()
                    )))
                }
            }
        } else {
            None
        };
        if opts.stream && conn.is_none() && !opts.logs {
            return Err(EngineError::Conflict(format!(
                "you cannot attach to a stopped container, start it first ({} is {})",
                rec.name,
                rec.state.as_str()
            )));
        }
        let mut streams = streams;
        // Connected first, so nothing written between the log and the stream is lost.
        if let Some(c) = &conn {
            hello(c, opts)?;
        }
        if opts.logs {
            let (entries, _) =
                crate::logs::read_log(&dir.join("container.log"), &LogOptions::default())?;
            for e in entries {
                let kind = if e.stream == "stderr" {
                    StreamKind::Stderr
                } else {
                    StreamKind::Stdout
                };
                if (kind == StreamKind::Stdout && opts.stdout)
                    || (kind == StreamKind::Stderr && opts.stderr)
                {
                    streams
                        .output
                        .write(kind, e.log.as_bytes())
                        .map_err(|e| EngineError::io("writing the container's log", e))?;
                }
            }
        }
        match conn {
            Some(c) => self.stream_attached(Pending { stream: c }, opts, &keys, streams),
            None => Ok(AttachEnd::Closed),
        }
    }

    /// Copies frames between an attach connection and the caller until the end.
    pub(crate) fn stream_attached(
        &self,
        pending: Pending,
        opts: &AttachOptions,
        keys: &DetachKeys,
        streams: AttachStreams,
    ) -> Result<AttachEnd, EngineError> {
        // (The HELLO frame was sent when the connection was made.)
        let conn = pending.stream;
        let detached = Arc::new(AtomicBool::new(false));
        let AttachStreams { stdin, mut output } = streams;
        if let (true, Some(mut input)) = (opts.stdin, stdin) {
            let mut w = conn
                .try_clone()
                .map_err(|e| EngineError::io("cloning the attach connection", e))?;
            let detached = detached.clone();
            let mut scanner = DetachScanner::new(keys);
            // Not joined: it may sit in a read of the caller's stdin after we are done.
            std::thread::spawn(move || {
                let mut buf = [0u8; 32 * 1024];
                loop {
                    let n = match input.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            let _ = w.write_all(&frame(STDIN_EOF, &[]));
                            return;
                        }
                        Ok(n) => n,
                    };
                    let (fwd, detach) = scanner.feed(&buf[..n]);
                    if !fwd.is_empty() && w.write_all(&frame(STDIN, &fwd)).is_err() {
                        return;
                    }
                    if detach {
                        detached.store(true, Ordering::SeqCst);
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
        }
        let mut r = io::BufReader::with_capacity(64 * 1024, &conn);
        loop {
            let f = match read_frame(&mut r) {
                Ok(Some(f)) => f,
                Ok(None) | Err(_) => {
                    return Ok(if detached.load(Ordering::SeqCst) {
                        AttachEnd::Detached
                    } else {
                        AttachEnd::Closed
                    })
                }
            };
            if detached.load(Ordering::SeqCst) {
                return Ok(AttachEnd::Detached);
            }
            match f {
                (OUT_STDOUT, data) => output.write(StreamKind::Stdout, &data),
                (OUT_STDERR, data) => output.write(StreamKind::Stderr, &data),
                (OUT_EXIT, data) if data.len() == 4 => {
                    return Ok(AttachEnd::Exited(i32::from_be_bytes([
                        data[0], data[1], data[2], data[3],
                    ])))
                }
                _ => Ok(()),
            }
            .map_err(|e| EngineError::io("writing the container's output", e))?;
        }
    }

    /// Resizes the terminal of a container started with `-t` (Docker's
    /// `POST /containers/{id}/resize`).
    pub fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let rec = self.db()?.resolve(id)?;
        if !rec.state.is_live() {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                rec.name
            )));
        }
        let mut s = connect(&self.container_dir(&rec.id))
            .map_err(|e| EngineError::io(format!("reaching the monitor of {}", rec.name), e))?;
        let mut size = rows.to_be_bytes().to_vec();
        size.extend_from_slice(&cols.to_be_bytes());
        let mut msg = frame(HELLO, &[0]);
        msg.extend_from_slice(&frame(RESIZE, &size));
        s.write_all(&msg)
            .map_err(|e| EngineError::io(format!("resizing the terminal of {}", rec.name), e))
    }
}

/// Sends the `HELLO` frame for `opts`.
pub(crate) fn hello(mut s: &UnixStream, opts: &AttachOptions) -> Result<(), EngineError> {
    let mut flags = 0u8;
    if opts.stdin {
        flags |= WANT_STDIN;
    }
    if opts.stdout {
        flags |= WANT_STDOUT;
    }
    if opts.stderr {
        flags |= WANT_STDERR;
    }
    if opts.close_stdin {
        flags |= CLOSE_STDIN;
    }
    s.write_all(&frame(HELLO, &[flags]))
        .map_err(|e| EngineError::io("talking to the container's monitor", e))
}

/// Connects to a monitor that waits for its first client (see `Engine::start_attached`).
pub(crate) fn connect_pending(dir: &Path, opts: &AttachOptions) -> Result<Pending, EngineError> {
    let s = connect(dir)
        .map_err(|e| EngineError::io(format!("connecting to {}", dir.join(SOCKET).display()), e))?;
    hello(&s, opts)?;
    Ok(Pending { stream: s })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_docker_syntax() {
        assert_eq!(
            DetachKeys::parse(DetachKeys::DEFAULT).unwrap(),
            DetachKeys::default()
        );
        assert_eq!(DetachKeys::parse("ctrl-a,x").unwrap().bytes(), &[1, b'x']);
        assert_eq!(
            DetachKeys::parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_")
                .unwrap()
                .bytes(),
            &[0, 27, 28, 29, 30, 31]
        );
        assert_eq!(DetachKeys::parse("").unwrap().bytes(), &[] as &[u8]);
        for bad in ["ctrl-1", "ctrl-", "ab", "ctrl-p,,ctrl-q"] {
            let e = DetachKeys::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--detach-keys"), "{bad}: {e}");
        }
    }

    #[test]
    fn scanner_holds_back_a_prefix_and_detaches() {
        let mut s = DetachScanner::new(&DetachKeys::default());
        assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
        // ^P alone is held back …
        assert_eq!(s.feed(&[16]), (vec![], false));
        // … and forwarded when the next byte breaks the sequence.
        assert_eq!(s.feed(b"x"), (vec![16, b'x'], false));
        // Split across reads.
        assert_eq!(s.feed(&[b'y', 16]), (vec![b'y'], false));
        assert_eq!(s.feed(&[17, b'z']), (vec![], true));
        // ^P ^P ^Q: the second ^P starts the real sequence.
        let mut s = DetachScanner::new(&DetachKeys::default());
        assert_eq!(s.feed(&[16, 16, 17]), (vec![16], true));
        // No keys: everything passes.
        let mut s = DetachScanner::new(&DetachKeys::parse("").unwrap());
        assert_eq!(s.feed(&[16, 17]), (vec![16, 17], false));
    }

    #[test]
    fn frames_round_trip_and_split() {
        let mut all = frame(STDIN, b"hello");
        all.extend(frame(RESIZE, &[0, 24, 0, 80]));
        let mut partial = all[..7].to_vec();
        assert_eq!(take_frames(&mut partial).unwrap(), vec![]);
        partial.extend_from_slice(&all[7..]);
        let got = take_frames(&mut partial).unwrap();
        assert_eq!(
            got,
            vec![(STDIN, b"hello".to_vec()), (RESIZE, vec![0, 24, 0, 80])]
        );
        assert!(partial.is_empty());
        let mut r = &all[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDIN, b"hello".to_vec()))
        );
        assert!(read_frame(&mut r).unwrap().is_some());
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut huge = vec![STDIN];
        huge.extend_from_slice(&(u32::MAX).to_be_bytes());
        assert!(take_frames(&mut huge).is_err());
    }

    #[test]
    fn server_and_client_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = AttachServer::bind(dir.path()).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut sink = StdinSink::Pipe(Some(w));
        let opts = AttachOptions {
            stdin: true,
            close_stdin: true,
            ..AttachOptions::default()
        };
        let client = connect_pending(dir.path(), &opts).unwrap();
        server.wait_first(Duration::from_secs(30), &mut sink);
        // Input reaches the container's stdin; EOF closes it.
        let mut c = client.stream.try_clone().unwrap();
        c.write_all(&frame(STDIN, b"typed")).unwrap();
        c.write_all(&frame(STDIN_EOF, &[])).unwrap();
        while matches!(sink, StdinSink::Pipe(Some(_))) {
            server.on_readable(0, &mut sink);
        }
        let mut got = Vec::new();
        std::fs::File::from(r).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"typed");
        server.broadcast(0, b"out");
        server.broadcast(1, b"err");
        server.finish(7);
        assert!(!dir.path().join(SOCKET).exists());
        let mut rd = io::BufReader::new(&client.stream);
        assert_eq!(
            read_frame(&mut rd).unwrap(),
            Some((OUT_STDOUT, b"out".to_vec()))
        );
        assert_eq!(
            read_frame(&mut rd).unwrap(),
            Some((OUT_STDERR, b"err".to_vec()))
        );
        assert_eq!(
            read_frame(&mut rd).unwrap(),
            Some((OUT_EXIT, 7i32.to_be_bytes().to_vec()))
        );
    }
}
