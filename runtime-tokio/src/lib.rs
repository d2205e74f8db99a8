//! Drives the natrium engine with tokio.
//!
//! One task owns the [`Server`] and is the only one that touches it. Each client
//! connection has a reader task (socket -> engine, through one bounded event
//! channel, so a fast publisher is slowed down rather than buffered without limit)
//! and a writer task (engine -> socket). The engine coalesces everything queued for
//! a connection while it handles a batch of events into one `Transmit`, so a writer
//! makes one `write` per batch, never one per message. The engine's outbound
//! accounting (max_pending, write_deadline) bounds what a writer can hold, and its
//! `PauseRead`/`ResumeRead` outputs hold back a publisher whose subscribers lag.

pub mod disk;

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
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
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
/// A read this small suggests a quiet connection: its buffer is given back.
const SMALL_READ: usize = 4096;
/// Input bytes handled before the engine task hands output to the writers.
const BATCH_BYTES: usize = 256 * 1024;
/// A writer reports progress at least this often while writing one large transmit.
const PROGRESS_REPORT: usize = 256 * 1024;
/// How long a shutting-down server waits for clients' final bytes.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

enum Event {
    Accepted(TcpStream, SocketAddr),
    Storage(StorageId, StorageResult),
    Read(ConnId, Bytes),
    Written(ConnId, usize),
    Closed(ConnId),
}

enum WriterMsg {
    Data(Bytes),
    /// Finish what was sent before, then close (bounded by the given time).
    Close(Duration),
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

struct ConnHandle {
    tx: mpsc::UnboundedSender<WriterMsg>,
    gate: Arc<ReadGate>,
    reader: AbortHandle,
    writer: AbortHandle,
}

/// Channels into the engine task.
#[derive(Clone)]
struct Inbox {
    /// Accepts, reads and closes: bounded, so readers wait when the engine lags.
    events: mpsc::Sender<Event>,
    /// Write progress and write failures. Kept apart from reads so the engine's
    /// pending-bytes accounting sees drains promptly; each writer has at most a
    /// few reports outstanding, so this is bounded by the number of connections.
    progress: mpsc::UnboundedSender<Event>,
}

/// Serve clients accepted on `listener` until `shutdown` completes; then close every
/// client (flushing what it was sent) and return. `store_dir` is where the disk
/// executor performs the engine's storage operations (JetStream's file store).
pub async fn serve(
    mut server: Server,
    listener: TcpListener,
    store_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let origin = tokio::time::Instant::now();
    let now = move || Instant(origin.elapsed().as_nanos() as u64);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    server.set_wall_clock(now(), unix);
    let write_deadline = server.config().write_deadline;
    let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_QUEUE);
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<Event>();
    let disk = match store_dir {
        Some(dir) => {
            let done = progress_tx.clone();
            Some(DiskExecutor::start(dir, move |id, r| {
                let _ = done.send(Event::Storage(id, r));
            })?)
        }
        None => None,
    };
    let inbox = Inbox {
        events: events_tx,
        progress: progress_tx,
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

    let mut conns: hashbrown::HashMap<ConnId, ConnHandle> = hashbrown::HashMap::new();
    // Recovery's storage operations, queued by the engine at start.
    drain(&mut server, &mut conns, &io, write_deadline);
    tokio::pin!(shutdown);
    loop {
        let deadline = server.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => {
                    tokio::time::sleep_until(origin + Duration::from_nanos(at.as_nanos())).await
                }
                None => std::future::pending().await,
            }
        };
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
            _ = sleep => server.handle_timeout(now()),
        }
        drain(&mut server, &mut conns, &io, write_deadline);
    }

    acceptor.abort();
    tracing::info!("Initiating Shutdown...");
    server.handle_shutdown(now());
    drain(&mut server, &mut conns, &io, SHUTDOWN_FLUSH);
    let writers: Vec<AbortHandle> = conns.drain().map(|(_, h)| h.writer).collect();
    let flushed = async {
        while !writers.iter().all(AbortHandle::is_finished) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_FLUSH, flushed).await;
    tracing::info!("Server Exiting..");
    Ok(())
}

fn read_len(ev: &Event) -> usize {
    match ev {
        Event::Read(_, data) => data.len(),
        _ => 0,
    }
}

fn handle_event(
    server: &mut Server,
    conns: &mut hashbrown::HashMap<ConnId, ConnHandle>,
    inbox: &Inbox,
    now: Instant,
    ev: Event,
) {
    match ev {
        Event::Accepted(stream, peer) => {
            let _ = stream.set_nodelay(true);
            let id = server.handle_accept(now, peer);
            tracing::debug!("{peer} - {id} - Client connection created");
            let (rd, wr) = stream.into_split();
            let (tx, rx) = mpsc::unbounded_channel();
            let gate = Arc::new(ReadGate::default());
            let reader =
                tokio::spawn(read_loop(id, rd, gate.clone(), inbox.events.clone())).abort_handle();
            let writer =
                tokio::spawn(write_loop(id, wr, rx, inbox.progress.clone())).abort_handle();
            conns.insert(
                id,
                ConnHandle {
                    tx,
                    gate,
                    reader,
                    writer,
                },
            );
        }
        Event::Read(id, data) => server.handle_read(now, id, &data),
        Event::Storage(id, result) => server.handle_storage(now, id, result),
        Event::Written(id, n) => server.handle_written(now, id, n),
        Event::Closed(id) => {
            server.handle_closed(now, id);
            if let Some(h) = conns.remove(&id) {
                tracing::debug!(
                    "{id} - Client connection closed: {}",
                    CloseReason::ClientClosed
                );
                h.reader.abort();
                h.writer.abort();
            }
        }
    }
}

/// What carries out the engine's non-socket outputs.
struct Io {
    disk: Option<DiskExecutor>,
    inbox: Inbox,
}

/// Carry out everything the engine has asked for.
fn drain(
    server: &mut Server,
    conns: &mut hashbrown::HashMap<ConnId, ConnHandle>,
    io: &Io,
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
                if let Some(h) = conns.get(&conn) {
                    let _ = h.tx.send(WriterMsg::Data(data));
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
                if let Some(h) = conns.remove(&conn) {
                    tracing::debug!("{conn} - Client connection closed: {reason}");
                    h.reader.abort();
                    if reason.flush_first() {
                        let _ = h.tx.send(WriterMsg::Close(flush_limit));
                    } else {
                        h.writer.abort();
                    }
                }
            }
        }
    }
}

async fn read_loop(
    id: ConnId,
    rd: OwnedReadHalf,
    gate: Arc<ReadGate>,
    events: mpsc::Sender<Event>,
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
            buf.reserve(READ_CHUNK);
        }
        match rd.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = buf.split().freeze();
                if n < SMALL_READ {
                    buf = BytesMut::new();
                }
                if events.send(Event::Read(id, chunk)).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    let _ = events.send(Event::Closed(id)).await;
}

async fn write_loop(
    id: ConnId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    progress: mpsc::UnboundedSender<Event>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Data(data) => {
                // Report progress as it happens, so a large transmit to a slow but
                // live reader does not look like a stalled one (write_deadline).
                let mut off = 0;
                let mut reported = 0;
                while off < data.len() {
                    match wr.write(&data[off..]).await {
                        Ok(0) | Err(_) => {
                            let _ = progress.send(Event::Closed(id));
                            return;
                        }
                        Ok(n) => off += n,
                    }
                    if off == data.len() || off - reported >= PROGRESS_REPORT {
                        if progress.send(Event::Written(id, off - reported)).is_err() {
                            return;
                        }
                        reported = off;
                    }
                }
            }
            WriterMsg::Close(limit) => {
                let _ = tokio::time::timeout(limit, wr.shutdown()).await;
                return;
            }
        }
    }
}
