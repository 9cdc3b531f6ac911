//! Connections the emulator can reset on purpose: the `resetRequest` and
//! `resetResponse` faults break the TCP connection with an RST (zero linger, then
//! close) after so many bytes, as a peer that crashes or a middlebox that drops
//! the flow does. A handler cannot reach its socket through hyper, so the
//! listener wraps each stream with a [`Reset`] switch that the request carries
//! as its `ConnectInfo`.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The switch that resets one connection.
#[derive(Clone, Default, Debug)]
pub struct Reset(Arc<ResetState>);

#[derive(Default, Debug)]
struct ResetState {
    pulled: AtomicBool,
    waker: AtomicWaker,
}

impl Reset {
    /// Reset the connection: its next read or write fails, the socket is closed
    /// with zero linger, and the kernel sends an RST.
    pub fn pull(&self) {
        self.0.pulled.store(true, Ordering::SeqCst);
        self.0.waker.wake();
    }

    fn pulled(&self, cx: &mut Context<'_>) -> bool {
        self.0.waker.register(cx.waker());
        self.0.pulled.load(Ordering::SeqCst)
    }
}

/// A TCP stream with a [`Reset`] switch.
pub struct Conn {
    inner: TcpStream,
    reset: Reset,
}

impl Conn {
    fn broken(&self) -> io::Error {
        // Zero linger turns the close that follows this error into an RST.
        let _ = self.inner.set_zero_linger();
        io::Error::new(io::ErrorKind::ConnectionReset, "injected connection reset")
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.reset.pulled(cx) {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.reset.pulled(cx) {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.pulled(cx) {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.pulled(cx) {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections carry a [`Reset`] switch.
pub struct ResettableListener(pub TcpListener);

impl Listener for ResettableListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => return (Conn { inner, reset: Reset::default() }, addr),
                // Out of descriptors and the like: wait and go on, as axum's own listener does.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for Reset {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Reset {
        stream.io().reset.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_pulled_switch_resets_the_peer() {
        let mut listener = ResettableListener(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 16];
            // The server resets: the read fails with ECONNRESET rather than a clean EOF.
            c.read(&mut buf).await
        });
        let (mut conn, _) = listener.accept().await;
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).await.unwrap();
        conn.reset.pull();
        let err = conn.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        drop(conn);
        let read = client.await.unwrap();
        assert_eq!(read.map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionReset));
    }
}
