//! Drives the natrium engine with one thread and one mio [`Poll`].
//!
//! Everything happens on the calling thread: accepting, reading, writing, timers
//! (the `Poll` timeout is the engine's next deadline) and the engine itself. The
//! only other thread is the disk executor (shared with runtime-tokio), whose
//! completions come back through a [`Waker`].
//!
//! Sockets are non-blocking and registered edge-triggered, so each connection
//! remembers the readiness it has not used up. One turn of the loop: poll; read
//! from every readable connection (at most [`READS_PER_TURN`] reads each, so one
//! busy publisher cannot starve the rest); fire due timers; then carry out the
//! engine's outputs. Everything the turn queued for a connection leaves in one
//! `writev` of its pending frames; what the socket does not take waits for its
//! next writable edge. The engine's outbound accounting (max_pending,
//! write_deadline) bounds those pending frames, and its `PauseRead`/`ResumeRead`
//! outputs stop and restart reading from a publisher whose subscribers lag.
//!
//! Reads go through one buffer shared by all connections: an idle connection
//! costs its socket and a few words of state.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use natrium_engine::storage::{StorageId, StorageResult};
use natrium_engine::{CloseReason, ConnId, Instant, Output, Server};
use natrium_runtime_disk::DiskExecutor;
use slab::Slab;

/// Size of the shared read buffer (one read's worth of input for the engine).
pub const READ_BUF: usize = 64 * 1024;
/// Reads from one connection per turn before the others get theirs.
pub const READS_PER_TURN: usize = 4;
/// Frames gathered into one `writev`.
const MAX_IOV: usize = 64;
/// How long a shutting-down server, or a connection closed with a final
/// message, waits for the peer to take its last bytes.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);
/// Readiness events taken per poll.
const EVENTS: usize = 1024;
/// Back-off before accepting again after an accept error (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

type Completions = Arc<Mutex<Vec<(StorageId, StorageResult)>>>;

/// Asks a running [`Runtime::serve`] to shut down, from any thread (a signal
/// handler's, say).
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// The event loop: create it, hand out a [`Stopper`], then [`Runtime::serve`].
pub struct Runtime {
    poll: Poll,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    completions: Completions,
}

struct Conn {
    id: ConnId,
    stream: TcpStream,
    /// Frames not yet written, oldest first.
    out: VecDeque<Bytes>,
    /// Bytes of the front frame already written.
    front_written: usize,
    /// Readiness seen and not used up (edge-triggered).
    readable: bool,
    writable: bool,
    /// The engine stalled this producer (`PauseRead`).
    paused: bool,
    /// In the list of connections to serve this turn.
    queued: bool,
    /// Closed by the engine, kept only to flush `out`, until this time.
    closing: Option<std::time::Instant>,
}

/// Everything the loop owns besides the `Poll`.
struct State {
    server: Server,
    conns: Slab<Conn>,
    by_id: hashbrown::HashMap<ConnId, usize>,
    /// Connections with readiness (or resumed reading) to act on.
    ready: Vec<usize>,
    /// Connections closed by the engine that are still flushing.
    closing: Vec<usize>,
    disk: Option<DiskExecutor>,
    completions: Completions,
    origin: std::time::Instant,
}

impl Runtime {
    pub fn new() -> io::Result<Runtime> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Runtime {
            poll,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            completions: Arc::default(),
        })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper {
            flag: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Serve clients accepted on `listener` until stopped; then close every
    /// client (flushing what it was sent) and return. `store_dir` is where the
    /// disk executor performs the engine's storage operations.
    pub fn serve(
        mut self,
        mut server: Server,
        listener: std::net::TcpListener,
        store_dir: Option<PathBuf>,
    ) -> io::Result<()> {
        let origin = std::time::Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        server.set_wall_clock(Instant(0), unix);
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        self.poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let disk = match store_dir {
            Some(dir) => {
                let done = self.completions.clone();
                let waker = self.waker.clone();
                Some(DiskExecutor::start(dir, move |id, r| {
                    if let Ok(mut q) = done.lock() {
                        q.push((id, r));
                    }
                    let _ = waker.wake();
                })?)
            }
            None => None,
        };
        let mut st = State {
            server,
            conns: Slab::new(),
            by_id: hashbrown::HashMap::new(),
            ready: Vec::new(),
            closing: Vec::new(),
            disk,
            completions: self.completions.clone(),
            origin,
        };
        let mut buf = vec![0u8; READ_BUF];
        let mut events = Events::with_capacity(EVENTS);
        let mut accept_at: Option<std::time::Instant> = None;
        // Recovery's storage operations, queued by the engine at start.
        st.drain(&self.poll);
        while !self.stop.load(Ordering::Acquire) {
            let timeout = st.timeout(accept_at);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut accept = accept_at.is_some_and(|at| at <= std::time::Instant::now());
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => accept = true,
                    WAKER => {}
                    Token(k) => {
                        let Some(c) = st.conns.get_mut(k) else {
                            continue;
                        };
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            c.readable = true;
                        }
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            c.writable = true;
                        }
                        if !c.queued {
                            c.queued = true;
                            st.ready.push(k);
                        }
                    }
                }
            }
            if accept {
                accept_at = st.accept(&self.poll, &mut listener);
            }
            st.storage_done();
            st.serve_ready(&self.poll, &mut buf);
            st.timers();
            st.drain(&self.poll);
            st.expire_closing(&self.poll);
        }

        tracing::info!("Initiating Shutdown...");
        let _ = self.poll.registry().deregister(&mut listener);
        drop(listener);
        let now = st.now();
        st.server.handle_shutdown(now);
        st.drain(&self.poll);
        // Give clients their last bytes, for a bounded time.
        let until = std::time::Instant::now() + FLUSH_LIMIT;
        while !st.conns.is_empty() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(left));
            for ev in events.iter() {
                if let Some(c) = st.conns.get_mut(ev.token().0) {
                    c.writable = true;
                }
            }
            let keys: Vec<usize> = st.conns.iter().map(|(k, _)| k).collect();
            for k in keys {
                st.flush(&self.poll, k);
            }
        }
        tracing::info!("Server Exiting..");
        Ok(())
    }
}

impl State {
    fn now(&self) -> Instant {
        Instant(self.origin.elapsed().as_nanos() as u64)
    }

    /// How long the next poll may wait: not at all with work left over, else
    /// until the engine's next deadline, a closing connection's, or an accept retry.
    fn timeout(&self, accept_at: Option<std::time::Instant>) -> Option<Duration> {
        let completed = self.completions.lock().is_ok_and(|q| !q.is_empty());
        if !self.ready.is_empty() || completed {
            return Some(Duration::ZERO);
        }
        let now = self.now();
        let mut wait = self
            .server
            .poll_timeout()
            .map(|at| Duration::from_nanos(at.as_nanos().saturating_sub(now.as_nanos())));
        let real_now = std::time::Instant::now();
        let closing = self
            .closing
            .iter()
            .filter_map(|&k| self.conns.get(k).and_then(|c| c.closing))
            .min();
        for at in [closing, accept_at].into_iter().flatten() {
            let d = at.saturating_duration_since(real_now);
            wait = Some(wait.map_or(d, |w| w.min(d)));
        }
        wait
    }

    /// Accept every waiting connection. Returns when to try again after an
    /// error (out of file descriptors, say), if one stopped it.
    fn accept(&mut self, poll: &Poll, listener: &mut TcpListener) -> Option<std::time::Instant> {
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!("Error accepting client connection: {e}");
                    return Some(std::time::Instant::now() + ACCEPT_BACKOFF);
                }
            };
            let _ = stream.set_nodelay(true);
            let now = self.now();
            let entry = self.conns.vacant_entry();
            let k = entry.key();
            if let Err(e) = poll.registry().register(
                &mut stream,
                Token(k),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::error!("Error registering client connection: {e}");
                continue;
            }
            let id = self.server.handle_accept(now, peer);
            tracing::debug!("{peer} - {id} - Client connection created");
            self.by_id.insert(id, k);
            entry.insert(Conn {
                id,
                stream,
                out: VecDeque::new(),
                front_written: 0,
                readable: false,
                writable: true,
                paused: false,
                queued: false,
                closing: None,
            });
        }
    }

    fn storage_done(&mut self) {
        let done = match self.completions.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        let now = self.now();
        for (id, result) in done {
            self.server.handle_storage(now, id, result);
        }
    }

    /// Write and read what each ready connection allows.
    fn serve_ready(&mut self, poll: &Poll, buf: &mut [u8]) {
        let ready = std::mem::take(&mut self.ready);
        for k in ready {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            c.queued = false;
            if c.writable && !c.out.is_empty() {
                self.flush(poll, k);
            }
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            if !c.readable || c.paused || c.closing.is_some() {
                continue;
            }
            let id = c.id;
            let mut gone = false;
            for _ in 0..READS_PER_TURN {
                let Some(c) = self.conns.get_mut(k) else {
                    return;
                };
                match c.stream.read(buf) {
                    Ok(0) => {
                        gone = true;
                        break;
                    }
                    Ok(n) => {
                        // A short read emptied the socket; new data brings a new edge.
                        if n < buf.len() {
                            c.readable = false;
                        }
                        self.server.handle_read(self.now(), id, &buf[..n]);
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.readable = false;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                self.server.handle_closed(self.now(), id);
                tracing::debug!(
                    "{id} - Client connection closed: {}",
                    CloseReason::ClientClosed
                );
                self.remove(poll, k);
            } else if let Some(c) = self.conns.get_mut(k) {
                // Read its fill this turn: the rest waits for the next one.
                if c.readable && !c.queued {
                    c.queued = true;
                    self.ready.push(k);
                }
            }
        }
    }

    fn timers(&mut self) {
        let now = self.now();
        if self.server.poll_timeout().is_some_and(|at| at <= now) {
            self.server.handle_timeout(now);
        }
    }

    /// Carry out everything the engine has asked for.
    fn drain(&mut self, poll: &Poll) {
        let mut touched: Vec<usize> = Vec::new();
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Storage { id, op } => match &self.disk {
                    Some(disk) => disk.submit(id, op),
                    None => {
                        let err = StorageResult::Error("no store directory configured".into());
                        if let Ok(mut q) = self.completions.lock() {
                            q.push((id, err));
                        }
                    }
                },
                Output::Transmit { conn, data } => {
                    if let Some(&k) = self.by_id.get(&conn) {
                        let c = &mut self.conns[k];
                        if c.out.is_empty() {
                            touched.push(k);
                        }
                        c.out.push_back(data);
                    }
                }
                Output::PauseRead { conn } => {
                    if let Some(&k) = self.by_id.get(&conn) {
                        self.conns[k].paused = true;
                    }
                }
                Output::ResumeRead { conn } => {
                    if let Some(&k) = self.by_id.get(&conn) {
                        let c = &mut self.conns[k];
                        c.paused = false;
                        if c.readable && !c.queued {
                            c.queued = true;
                            self.ready.push(k);
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    let Some(k) = self.by_id.remove(&conn) else {
                        continue;
                    };
                    tracing::debug!("{conn} - Client connection closed: {reason}");
                    let c = &mut self.conns[k];
                    if reason.flush_first() && !c.out.is_empty() {
                        c.closing = Some(std::time::Instant::now() + FLUSH_LIMIT);
                        self.closing.push(k);
                        touched.push(k);
                    } else {
                        if reason.flush_first() {
                            let _ = c.stream.shutdown(Shutdown::Write);
                        }
                        self.remove(poll, k);
                    }
                }
            }
        }
        // One writev per connection for everything this turn produced.
        // (Storage failures queued above are handled next turn: the poll
        // timeout is zero while completions wait.)
        for k in touched {
            self.flush(poll, k);
        }
    }

    /// Write what the socket takes of a connection's pending frames, report it
    /// to the engine, and finish a closing connection once it is all out.
    fn flush(&mut self, poll: &Poll, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let mut written = 0;
        let mut failed = false;
        while c.writable && !c.out.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, frame) in c.out.iter().take(MAX_IOV).enumerate() {
                let from = if i == 0 { c.front_written } else { 0 };
                iov[n] = IoSlice::new(&frame[from..]);
                n += 1;
            }
            match c.stream.write_vectored(&iov[..n]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(mut m) => {
                    written += m;
                    while m > 0 {
                        let left = c.out[0].len() - c.front_written;
                        if m >= left {
                            m -= left;
                            c.out.pop_front();
                            c.front_written = 0;
                        } else {
                            c.front_written += m;
                            m = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let id = c.id;
        let closing = c.closing.is_some();
        let done = c.out.is_empty();
        if written > 0 && !closing {
            self.server.handle_written(self.now(), id, written);
        }
        if failed {
            if !closing {
                self.server.handle_closed(self.now(), id);
                self.by_id.remove(&id);
            }
            self.remove(poll, k);
        } else if closing && done {
            let _ = self.conns[k].stream.shutdown(Shutdown::Write);
            self.remove(poll, k);
        }
    }

    /// Drop closing connections whose peer did not take their last bytes in time.
    fn expire_closing(&mut self, poll: &Poll) {
        if self.closing.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut list = std::mem::take(&mut self.closing);
        list.retain(|&k| match self.conns.get(k) {
            Some(c) => match c.closing {
                Some(at) if at <= now => {
                    self.remove(poll, k);
                    false
                }
                Some(_) => true,
                None => false,
            },
            None => false,
        });
        self.closing = list;
    }

    fn remove(&mut self, poll: &Poll, k: usize) {
        if let Some(mut c) = self.conns.try_remove(k) {
            let _ = poll.registry().deregister(&mut c.stream);
            if self.by_id.get(&c.id) == Some(&k) {
                self.by_id.remove(&c.id);
            }
        }
    }
}
