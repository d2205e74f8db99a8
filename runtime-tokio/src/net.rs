//! What the driver needs of a network and a disk, so the same driver code runs
//! on tokio's sockets in production and on turmoil's simulated ones in `sim/`.
//!
//! The driver shares each stream between a reader task, the engine task (which
//! writes without waiting) and, when a socket is full, a writer task; so every
//! method takes `&self`, and none of them may block.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use natrium_engine::storage::{StorageId, StorageOp};

/// Accepts connections.
pub trait Listener: Send + 'static {
    /// The connections it accepts.
    type Stream: Stream;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

/// One accepted connection.
pub trait Stream: Send + Sync + 'static {
    /// Turn off Nagle's algorithm (output is already batched).
    fn set_nodelay(&self);

    /// Wait until a read may find something (data, end of stream or an error).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Append what has arrived to `buf` without waiting: `Ok(0)` at end of
    /// stream, `WouldBlock` when nothing has.
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;

    /// Wait until a write may take some bytes.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Write what the socket takes now, or `WouldBlock`.
    fn try_write(&self, data: &[u8]) -> io::Result<usize>;

    /// Half-close: the peer reads what was sent, then end of stream.
    fn shutdown_write(&self);
}

/// Performs the engine's storage operations. Each completion goes to the
/// [`Completions`](crate::Completions) the driver handed to the backend's
/// constructor, exactly once.
pub trait Storage: Send + 'static {
    /// Queue one operation (they are performed in the order submitted).
    fn submit(&self, id: StorageId, op: StorageOp);
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }
}

impl Stream for tokio::net::TcpStream {
    fn set_nodelay(&self) {
        let _ = tokio::net::TcpStream::set_nodelay(self, true);
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::readable(self)
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        tokio::net::TcpStream::try_read_buf(self, buf)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::writable(self)
    }

    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write(self, data)
    }

    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
}

impl Storage for crate::disk::DiskExecutor {
    fn submit(&self, id: StorageId, op: StorageOp) {
        crate::disk::DiskExecutor::submit(self, id, op)
    }
}
