//! Connections a handler can cut: a listener whose connections each carry a
//! [`ConnHandle`] (reachable from handlers as `ConnectInfo<ConnHandle>`).
//! Killing the handle makes every further read or write on the socket fail,
//! waking the connection's task even while it waits for a client that
//! stopped reading, so the server drops the connection and its buffers.
//! That is how a streaming endpoint disconnects a client too slow to keep up.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The kill switch of one connection.
#[derive(Debug, Default)]
struct Switch {
    killed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// A cheap handle on one connection's kill switch.
#[derive(Debug, Clone, Default)]
pub struct ConnHandle(Arc<Switch>);

impl ConnHandle {
    /// Cuts the connection: its pending and future I/O fails.
    pub fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        self.0.reader.wake();
        self.0.writer.wake();
    }

    pub fn is_killed(&self) -> bool {
        self.0.killed.load(Ordering::SeqCst)
    }
}

/// A TCP listener handing out [`KillableStream`]s (with `TCP_NODELAY`).
#[derive(Debug)]
pub struct KillableListener {
    pub listener: TcpListener,
    /// `SO_SNDBUF` of every connection, if set: how much the kernel may hold
    /// for a client that stops reading (Linux doubles it, and otherwise
    /// grows it up to megabytes).
    pub send_buffer: Option<usize>,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.listener).await;
        // Streamed events are small writes: without this, Nagle's algorithm
        // holds one back until the client's delayed ACK (~40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        if let Some(size) = self.send_buffer {
            if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(size) {
                tracing::debug!("cannot set SO_SNDBUF: {e}");
            }
        }
        let stream = KillableStream {
            inner: stream,
            handle: ConnHandle::default(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.io().handle.clone()
    }
}

/// A TCP stream that fails once its handle is killed.
#[derive(Debug)]
pub struct KillableStream {
    inner: TcpStream,
    handle: ConnHandle,
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut by the server")
}

impl KillableStream {
    /// Fails if killed; otherwise registers `cx` to be woken by a kill.
    fn check(&self, cx: &Context<'_>, write: bool) -> io::Result<()> {
        let switch = &self.handle.0;
        let waker = if write { &switch.writer } else { &switch.reader };
        waker.register(cx.waker());
        if switch.killed.load(Ordering::SeqCst) {
            Err(killed())
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx, false)?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx, true)?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx, true)?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx, true)?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_kill_wakes_a_blocked_reader() {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let Ok(addr) = listener.local_addr() else { return };
        let mut listener = KillableListener {
            listener,
            send_buffer: Some(4096),
        };
        let client = tokio::spawn(TcpStream::connect(addr));
        let (mut stream, _) = Listener::accept(&mut listener).await;
        let handle = stream.handle.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0_u8; 8];
            stream.read(&mut buf).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        handle.kill();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
        let kind = read.ok().and_then(Result::ok).and_then(Result::err).map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::ConnectionAborted));
        if let Ok(Ok(mut client)) = client.await {
            let _ = client.shutdown().await;
        }
    }
}
