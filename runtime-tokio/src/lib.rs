//! Drives the natrium engine with tokio.
//!
//! One task owns the [`Server`] and is the only one that touches it. Each client
//! connection has a reader task (socket -> engine, through one bounded event
//! channel, so a fast publisher is slowed down rather than buffered without limit).
//! The engine coalesces everything queued for a connection while it handles a
//! batch of events into one `Transmit`, which the engine task writes to the socket
//! at once (one `write` per batch, never one per message). Only when the socket
//! will not take it all does the rest go to a writer task, spawned for that
//! connection the first time it is needed; while the writer holds bytes, later
//! output queues behind them. The engine's outbound accounting (max_pending,
//! write_deadline) bounds what a writer can hold, and its `PauseRead`/`ResumeRead`
//! outputs hold back a publisher whose subscribers lag.

/// The disk executor (shared with runtime-mio).
pub use natrium_runtime_disk as disk;
pub mod net;

pub use net::{Listener, Storage, Stream};

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use natrium_engine::storage::{StorageId, StorageResult};
use natrium_engine::{CloseReason, ConnId, Instant, Output, Server};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::disk::DiskExecutor;

/// Size of each socket read handed to the engine.
const READ_CHUNK: usize = 64 * 1024;
/// Reads that may wait for the engine task before readers are held back
/// (at most this many chunks of READ_CHUNK bytes, plus one per reader).
const EVENT_QUEUE: usize = 128;
/// Events the engine task handles before it writes out what they produced.
const EVENT_BATCH: usize = 256;
/// Read buffers kept for reuse (see [`BufferPool`]).
const POOLED_BUFFERS: usize = 32;
/// A read this small suggests a quiet connection: its buffer is given back.
const SMALL_READ: usize = 4096;
/// Input bytes handled before the engine task hands output to the writers.
const BATCH_BYTES: usize = 256 * 1024;
/// A writer reports progress at least this often while writing one large transmit.
const PROGRESS_REPORT: usize = 256 * 1024;
/// How long a shutting-down server waits for clients' final bytes.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

enum Event<S> {
    Accepted(S, SocketAddr),
    Storage(StorageId, StorageResult),
    Read(ConnId, Bytes),
    Written(ConnId, usize),
    Closed(ConnId),
}

enum WriterMsg {
    Data(Bytes),
    /// Finish what was sent before, then half-close.
    Close,
}

/// Lets the engine pause a connection's reader (fast-producer stall).
#[derive(Default)]
struct ReadGate {
    paused: AtomicBool,
    resumed: Notify,
}

impl ReadGate {
    async fn wait_open(&self) {
        loop {
            let resumed = self.resumed.notified();
            if !self.paused.load(Ordering::Acquire) {
                return;
            }
            resumed.await;
        }
    }

    fn set(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.resumed.notify_waiters();
        }
    }
}

struct ConnHandle<S> {
    stream: Arc<S>,
    gate: Arc<ReadGate>,
    reader: AbortHandle,
    /// Spawned the first time a write would block.
    writer: Option<Writer>,
    /// Bytes handed to the writer that it has not reported written. While any
    /// are, new output goes to the writer too, so bytes keep their order.
    backlog: usize,
}

struct Writer {
    tx: mpsc::UnboundedSender<WriterMsg>,
    task: AbortHandle,
}

impl<S> ConnHandle<S> {
    fn abort(self) {
        self.reader.abort();
        if let Some(w) = self.writer {
            w.task.abort();
        }
    }
}

/// Channels into the engine task.
struct Inbox<S> {
    /// Accepts, reads and closes: bounded, so readers wait when the engine lags.
    events: mpsc::Sender<Event<S>>,
    /// Write progress and write failures. Kept apart from reads so the engine's
    /// pending-bytes accounting sees drains promptly; each writer has at most a
    /// few reports outstanding, so this is bounded by the number of connections.
    progress: mpsc::UnboundedSender<Event<S>>,
    /// Read buffers the engine is done with, for readers to reuse.
    buffers: Arc<BufferPool>,
}

impl<S> Clone for Inbox<S> {
    fn clone(&self) -> Self {
        Inbox {
            events: self.events.clone(),
            progress: self.progress.clone(),
            buffers: self.buffers.clone(),
        }
    }
}

/// Where a [`Storage`] backend reports each operation's result.
pub struct Completions(Box<dyn Fn(StorageId, StorageResult) + Send + Sync>);

impl Completions {
    /// Operation `id` ended with `result`.
    pub fn complete(&self, id: StorageId, result: StorageResult) {
        (self.0)(id, result)
    }
}

type Conns<S> = hashbrown::HashMap<ConnId, ConnHandle<S>, foldhash::fast::FixedState>;

/// Read buffers handed back after the engine has parsed them: a busy reader
/// reuses warm memory instead of allocating 64 KiB per read. Holds at most
/// [`POOLED_BUFFERS`]; more are freed.
#[derive(Default)]
struct BufferPool(std::sync::Mutex<Vec<BytesMut>>);

impl BufferPool {
    fn take(&self) -> BytesMut {
        self.0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
    }

    fn give(&self, chunk: Bytes) {
        // Only a buffer nothing else refers to, whole, comes back.
        if let Ok(mut b) = chunk.try_into_mut() {
            b.clear();
            if b.capacity() >= READ_CHUNK {
                if let Ok(mut p) = self.0.lock() {
                    if p.len() < POOLED_BUFFERS {
                        p.push(b);
                    }
                }
            }
        }
    }
}

/// Serve clients accepted on `listener` until `shutdown` completes; then close every
/// client (flushing what it was sent) and return. `store_dir` is where the disk
/// executor performs the engine's storage operations (JetStream's file store).
pub async fn serve(
    server: Server,
    listener: TcpListener,
    store_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let disk = |done: Completions| match store_dir {
        Some(dir) => DiskExecutor::start(dir, move |id, r| done.complete(id, r)).map(Some),
        None => Ok(None),
    };
    drive(server, listener, unix, disk, |_| {}, shutdown).await
}

/// The driver itself, on any [`Listener`] and [`Storage`]: `serve` runs it on
/// tokio's sockets and the disk executor, the simulator on turmoil's sockets and
/// a simulated disk. `unix_nanos` is the wall clock at start (later wall-clock
/// readings follow tokio's clock, so a simulation controls them); `storage`
/// builds the backend, given where its completions go (`None`: no store, every
/// storage operation fails); `observe` sees the server after every turn (the
/// simulator checks its bounds there).
pub async fn drive<L: Listener, D: Storage>(
    mut server: Server,
    listener: L,
    unix_nanos: i64,
    storage: impl FnOnce(Completions) -> io::Result<Option<D>>,
    mut observe: impl FnMut(&Server),
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let origin = tokio::time::Instant::now();
    let now = move || Instant(origin.elapsed().as_nanos() as u64);
    server.set_wall_clock(now(), unix_nanos);
    let write_deadline = server.config().write_deadline;
    let (events_tx, mut events) = mpsc::channel::<Event<L::Stream>>(EVENT_QUEUE);
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<Event<L::Stream>>();
    let disk = {
        let done = progress_tx.clone();
        storage(Completions(Box::new(move |id, r| {
            let _ = done.send(Event::Storage(id, r));
        })))?
    };
    let inbox = Inbox {
        events: events_tx,
        progress: progress_tx,
        buffers: Arc::default(),
    };
    let io = Io {
        disk,
        inbox: inbox.clone(),
    };

    let acceptor = {
        let events_tx = inbox.events.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        if events_tx.send(Event::Accepted(stream, peer)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!("Error accepting client connection: {e}");
                        // Out of file descriptors and the like: back off briefly.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };

    let mut conns: Conns<L::Stream> = Conns::default();
    // Recovery's storage operations, queued by the engine at start.
    drain(&mut server, &mut conns, &io, now(), write_deadline);
    tokio::pin!(shutdown);
    // One timer, moved when the engine's deadline changes.
    let sleep = tokio::time::sleep_until(origin);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        let deadline = server.poll_timeout();
        if deadline != armed {
            if let Some(at) = deadline {
                sleep
                    .as_mut()
                    .reset(origin + Duration::from_nanos(at.as_nanos()));
            }
            armed = deadline;
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(ev) = progress.recv() => {
                handle_event(&mut server, &mut conns, &inbox, now(), ev);
                while let Ok(ev) = progress.try_recv() {
                    handle_event(&mut server, &mut conns, &inbox, now(), ev);
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                // Batch events, but hand output to the writers after about
                // BATCH_BYTES of input: what a batch queues for each subscriber
                // is memory held until the writers drain it.
                let mut input = read_len(&ev);
                handle_event(&mut server, &mut conns, &inbox, now(), ev);
                for _ in 0..EVENT_BATCH {
                    if input >= BATCH_BYTES {
                        break;
                    }
                    match events.try_recv() {
                        Ok(ev) => {
                            input += read_len(&ev);
                            handle_event(&mut server, &mut conns, &inbox, now(), ev)
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = &mut sleep, if armed.is_some() => {
                armed = None;
                server.handle_timeout(now());
            }
        }
        drain(&mut server, &mut conns, &io, now(), write_deadline);
        observe(&server);
    }

    acceptor.abort();
    tracing::info!("Initiating Shutdown...");
    server.handle_shutdown(now());
    drain(&mut server, &mut conns, &io, now(), SHUTDOWN_FLUSH);
    let writers: Vec<AbortHandle> = conns
        .drain()
        .filter_map(|(_, h)| h.writer.map(|w| w.task))
        .collect();
    let flushed = async {
        while !writers.iter().all(AbortHandle::is_finished) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_FLUSH, flushed).await;
    tracing::info!("Server Exiting..");
    Ok(())
}

fn read_len<S>(ev: &Event<S>) -> usize {
    match ev {
        Event::Read(_, data) => data.len(),
        _ => 0,
    }
}

fn handle_event<S: Stream>(
    server: &mut Server,
    conns: &mut Conns<S>,
    inbox: &Inbox<S>,
    now: Instant,
    ev: Event<S>,
) {
    match ev {
        Event::Accepted(stream, peer) => {
            stream.set_nodelay();
            let id = server.handle_accept(now, peer);
            tracing::debug!("{peer} - {id} - Client connection created");
            let stream = Arc::new(stream);
            let gate = Arc::new(ReadGate::default());
            let reader = tokio::spawn(read_loop(
                id,
                stream.clone(),
                gate.clone(),
                inbox.events.clone(),
                inbox.buffers.clone(),
            ))
            .abort_handle();
            conns.insert(
                id,
                ConnHandle {
                    stream,
                    gate,
                    reader,
                    writer: None,
                    backlog: 0,
                },
            );
        }
        Event::Read(id, data) => {
            server.handle_read(now, id, &data);
            inbox.buffers.give(data);
        }
        Event::Storage(id, result) => server.handle_storage(now, id, result),
        Event::Written(id, n) => {
            if let Some(h) = conns.get_mut(&id) {
                h.backlog = h.backlog.saturating_sub(n);
            }
            server.handle_written(now, id, n)
        }
        Event::Closed(id) => {
            server.handle_closed(now, id);
            if let Some(h) = conns.remove(&id) {
                tracing::debug!(
                    "{id} - Client connection closed: {}",
                    CloseReason::ClientClosed
                );
                h.abort();
            }
        }
    }
}

/// What carries out the engine's non-socket outputs.
struct Io<S, D> {
    disk: Option<D>,
    inbox: Inbox<S>,
}

/// Carry out everything the engine has asked for.
fn drain<S: Stream, D: Storage>(
    server: &mut Server,
    conns: &mut Conns<S>,
    io: &Io<S, D>,
    now: Instant,
    flush_limit: Duration,
) {
    while let Some(out) = server.poll_output() {
        match out {
            Output::Storage { id, op } => match &io.disk {
                Some(disk) => disk.submit(id, op),
                None => {
                    let err = StorageResult::Error("no store directory configured".into());
                    let _ = io.inbox.progress.send(Event::Storage(id, err));
                }
            },
            Output::Transmit { conn, data } => {
                let Some(h) = conns.get_mut(&conn) else {
                    continue;
                };
                let sent = if h.backlog == 0 {
                    write_now(&*h.stream, &data)
                } else {
                    Ok(0)
                };
                match sent {
                    Ok(n) => {
                        if n < data.len() {
                            h.backlog += data.len() - n;
                            let progress = &io.inbox.progress;
                            let w = h
                                .writer
                                .get_or_insert_with(|| spawn_writer(conn, &h.stream, progress));
                            let _ = w.tx.send(WriterMsg::Data(data.slice(n..)));
                        }
                        if n > 0 {
                            server.handle_written(now, conn, n);
                        }
                    }
                    // Seen by the engine as the client going away, as a
                    // writer's failure would be.
                    Err(_) => {
                        let _ = io.inbox.progress.send(Event::Closed(conn));
                    }
                }
            }
            Output::PauseRead { conn } => {
                if let Some(h) = conns.get(&conn) {
                    h.gate.set(true);
                }
            }
            Output::ResumeRead { conn } => {
                if let Some(h) = conns.get(&conn) {
                    h.gate.set(false);
                }
            }
            Output::Close { conn, reason } => {
                if let Some(mut h) = conns.remove(&conn) {
                    tracing::debug!("{conn} - Client connection closed: {reason}");
                    h.reader.abort();
                    match h.writer.take() {
                        Some(w) if reason.flush_first() => {
                            // The writer gets flush_limit to finish, then goes.
                            let _ = w.tx.send(WriterMsg::Close);
                            tokio::spawn(async move {
                                tokio::time::sleep(flush_limit).await;
                                w.task.abort();
                            });
                        }
                        Some(w) => w.task.abort(),
                        // Everything was written: say so to the peer now.
                        None if reason.flush_first() => h.stream.shutdown_write(),
                        None => {}
                    }
                }
            }
        }
    }
}

/// Write what the socket takes now, without waiting: the bytes written, or the
/// error that ends the connection.
fn write_now<S: Stream>(stream: &S, data: &[u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < data.len() {
        match stream.try_write(&data[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

fn spawn_writer<S: Stream>(
    id: ConnId,
    stream: &Arc<S>,
    progress: &mpsc::UnboundedSender<Event<S>>,
) -> Writer {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(write_loop(id, stream.clone(), rx, progress.clone())).abort_handle();
    Writer { tx, task }
}

async fn read_loop<S: Stream>(
    id: ConnId,
    rd: Arc<S>,
    gate: Arc<ReadGate>,
    events: mpsc::Sender<Event<S>>,
    pool: Arc<BufferPool>,
) {
    // No buffer is held while a connection is idle: it is allocated when the
    // socket becomes readable and given up after a small read, so ten thousand
    // quiet clients cost no read buffers.
    let mut buf = BytesMut::new();
    loop {
        gate.wait_open().await;
        if rd.readable().await.is_err() {
            break;
        }
        if buf.capacity() < READ_CHUNK / 4 {
            buf = pool.take();
        }
        match rd.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Whole buffers go to the engine (and come back to the pool);
                // a large one's tail stays here for the next read.
                let chunk = if n < SMALL_READ || buf.capacity() - n < READ_CHUNK / 4 {
                    std::mem::take(&mut buf).freeze()
                } else {
                    buf.split().freeze()
                };
                if events.send(Event::Read(id, chunk)).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Readiness was stale: wait without holding an empty buffer.
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
            }
            Err(_) => break,
        }
    }
    let _ = events.send(Event::Closed(id)).await;
}

/// Writes what the engine task could not, in order, reporting progress.
async fn write_loop<S: Stream>(
    id: ConnId,
    wr: Arc<S>,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    progress: mpsc::UnboundedSender<Event<S>>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Data(data) => {
                // Report progress as it happens, so a large transmit to a slow but
                // live reader does not look like a stalled one (write_deadline).
                let mut off = 0;
                let mut reported = 0;
                while off < data.len() {
                    if wr.writable().await.is_err() {
                        let _ = progress.send(Event::Closed(id));
                        return;
                    }
                    match write_now(&*wr, &data[off..]) {
                        Ok(n) => off += n,
                        Err(_) => {
                            let _ = progress.send(Event::Closed(id));
                            return;
                        }
                    }
                    if off > reported && (off == data.len() || off - reported >= PROGRESS_REPORT) {
                        if progress.send(Event::Written(id, off - reported)).is_err() {
                            return;
                        }
                        reported = off;
                    }
                }
            }
            WriterMsg::Close => {
                wr.shutdown_write();
                return;
            }
        }
    }
}
