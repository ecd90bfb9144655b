//! Bounds on connections, as an axum-server acceptor that runs before TLS and hyper: at most
//! `--max-connections` at once (both listeners share one count), and an idle timeout that
//! closes a connection that moved no byte either way for `--idle-timeout-secs`. Header-read and
//! TLS-handshake timeouts are hyper's and axum-server's own settings (`app::App::serve`).
//! No HTTP here: a refused connection is closed, not answered.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The shared connection count and idle timeout of both listeners; a cheap clone.
#[derive(Clone)]
pub struct Bounded {
    permits: Arc<Semaphore>,
    max_connections: usize,
    idle_timeout: Duration,
    /// Whether the last connection was refused, so the warning is logged once per episode of
    /// being full, not once per refused connection (1,200 of them in the slowloris finding).
    full: Arc<AtomicBool>,
}

impl Bounded {
    /// At most `max_connections` at once, each closed after `idle_timeout` without traffic.
    pub fn new(max_connections: usize, idle_timeout: Duration) -> Self {
        Bounded {
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            idle_timeout,
            full: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<I, S> Accept<I, S> for Bounded
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = BoundedStream<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // Refused rather than queued: hyper has no accept backlog of its own, and a waiting
        // connection would hold its socket just as a served one does. The kernel completed the
        // handshake, so the client sees the connection closed before any answer.
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = self.max_connections,
                    "connection limit reached: closing new connections until one ends \
                     (--max-connections)"
                );
            }
            return std::future::ready(Err(io::Error::other("connection limit reached")));
        };
        if self.full.swap(false, Ordering::Relaxed) {
            tracing::info!("below the connection limit again");
        }
        let stream = BoundedStream {
            inner: stream,
            _permit: permit,
            idle_timeout: self.idle_timeout,
            idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
        };
        std::future::ready(Ok((stream, service)))
    }
}

/// A connection holding its place in the count (released on drop) and its idle deadline.
pub struct BoundedStream<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl<I> BoundedStream<I> {
    fn moved_bytes(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
    }

    /// While the connection waits, whether its idle deadline has passed (then it is closed).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("closing a connection idle for {:?}", self.idle_timeout);
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for BoundedStream<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for BoundedStream<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved_bytes();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A client that stops reading our answer is idle too.
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved_bytes();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
