//! turmoil's sockets behind runtime-tokio's [`Listener`] and [`Stream`], so the
//! server host runs the production driver. Every byte the engine reads or
//! writes goes into the run's trace.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use natrium_runtime_tokio::{Listener, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use turmoil::net::{TcpListener, TcpStream};

use crate::trace::Trace;

/// Bytes taken from turmoil per poll.
const READ_SLICE: usize = 16 * 1024;

pub struct SimListener {
    inner: TcpListener,
    trace: Trace,
}

impl SimListener {
    pub async fn bind(port: u16, trace: Trace) -> io::Result<SimListener> {
        let inner = TcpListener::bind(("0.0.0.0", port)).await?;
        Ok(SimListener { inner, trace })
    }
}

impl Listener for SimListener {
    type Stream = SimStream;

    #[allow(clippy::manual_async_fn)] // the trait asks for a Send future
    fn accept(&self) -> impl Future<Output = io::Result<(SimStream, SocketAddr)>> + Send {
        async move {
            let (tcp, peer) = self.inner.accept().await?;
            self.trace.log(|| format!("server accepted {peer}"));
            let stream = SimStream {
                inner: Mutex::new(Inner {
                    tcp,
                    stash: BytesMut::new(),
                    eof: false,
                    err: None,
                }),
                tag_in: format!("in {peer}"),
                tag_out: format!("out {peer}"),
                trace: self.trace.clone(),
            };
            Ok((stream, peer))
        }
    }
}

/// One accepted connection. turmoil's reads need `&mut`, so the stream sits in
/// a mutex that is never held across an await.
pub struct SimStream {
    inner: Mutex<Inner>,
    tag_in: String,
    tag_out: String,
    trace: Trace,
}

struct Inner {
    tcp: TcpStream,
    /// Bytes read from turmoil, not yet taken by the driver.
    stash: BytesMut,
    eof: bool,
    err: Option<io::ErrorKind>,
}

impl Inner {
    /// Whether something is ready for `try_read_buf` (polling turmoil once).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.stash.is_empty() || self.eof || self.err.is_some() {
            return Poll::Ready(());
        }
        let mut tmp = [0u8; READ_SLICE];
        let mut rb = ReadBuf::new(&mut tmp);
        match Pin::new(&mut self.tcp).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                if rb.filled().is_empty() {
                    self.eof = true;
                } else {
                    self.stash.extend_from_slice(rb.filled());
                }
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) => {
                self.err = Some(e.kind());
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl SimStream {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Stream for SimStream {
    fn set_nodelay(&self) {}

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(|cx| self.lock().poll_fill(cx).map(Ok))
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut g = self.lock();
        let _ = g.poll_fill(&mut Context::from_waker(Waker::noop()));
        if !g.stash.is_empty() {
            let n = g.stash.len().min(64 * 1024);
            let data = g.stash.split_to(n);
            self.trace.bytes(&self.tag_in, &data);
            buf.extend_from_slice(&data);
            return Ok(n);
        }
        if let Some(kind) = g.err {
            return Err(kind.into());
        }
        if g.eof {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(|cx| {
            let g = self.lock();
            let fut = pin!(g.tcp.writable());
            fut.poll(cx)
        })
    }

    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let g = self.lock();
        let n = g.tcp.try_write(data)?;
        self.trace.bytes(&self.tag_out, &data[..n]);
        Ok(n)
    }

    fn shutdown_write(&self) {
        let mut g = self.lock();
        let _ = Pin::new(&mut g.tcp).poll_shutdown(&mut Context::from_waker(Waker::noop()));
    }
}
