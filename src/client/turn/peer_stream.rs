//! A data connection bound to a peer (RFC 6062 §4.3): after the ConnectionBind answer the
//! connection carries the peer's raw bytes. Bytes that came in the same read as the answer are
//! yielded first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::transport::BoxedStream;

/// A TCP connection to a peer through a TCP allocation ([`super::TcpAllocation`]): a TCP or TLS
/// data connection to the server, relayed byte for byte to and from the peer. Closing it (or
/// shutting its write side down) closes the peer's connection; the peer closing gives end of file.
pub struct PeerStream {
    stream: BoxedStream,
    /// Bytes read past the ConnectionBind answer, not yet yielded.
    early: Vec<u8>,
    consumed: usize,
    peer: SocketAddr,
    id: u32,
    local: SocketAddr,
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream")
            .field("peer", &self.peer)
            .field("id", &self.id)
            .field("local", &self.local)
            .finish()
    }
}

impl PeerStream {
    pub(super) fn new(stream: BoxedStream, early: Vec<u8>, peer: SocketAddr, id: u32, local: SocketAddr) -> Self {
        PeerStream { stream, early, consumed: 0, peer, id, local }
    }

    /// The peer's address (XOR-PEER-ADDRESS), as the server sees it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The CONNECTION-ID the server gave this connection.
    pub fn connection_id(&self) -> u32 {
        self.id
    }

    /// The local address of the data connection to the server.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.early.get(this.consumed..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.consumed += n;
            if this.consumed >= this.early.len() {
                this.early = Vec::new();
                this.consumed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn early_bytes_come_first_then_the_stream() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut s = PeerStream::new(Box::new(ours), b"abc".to_vec(), addr, 7, addr);
        theirs.write_all(b"de").await.unwrap();
        let mut two = [0u8; 2];
        s.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        let mut rest = [0u8; 3];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"cde");
        s.write_all(b"xyz").await.unwrap();
        let mut got = [0u8; 3];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"xyz");
        assert_eq!((s.peer_addr(), s.connection_id()), (addr, 7));
    }
}
