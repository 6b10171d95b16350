//! STUN messages built by hand: requests signed with long-term credentials (RFC 8489 §9.2), and
//! reading one frame off a stream.

use std::time::Duration;

use switchback::proto::stun::{Class, IntegrityKey, MessageType, MessageWriter, Method, TransactionId};
pub use switchback::testing::{Signer, signed};

/// The realm of [`super::TurnFixture`] servers.
pub const TURN_REALM: &str = "test.realm";
/// The REST shared secret of [`super::TurnFixture`] servers.
pub const TURN_SECRET: &str = "secret";
/// The static user of [`super::TurnFixture`] servers, and its password.
pub const TURN_USER: (&str, &str) = ("alice", "pw");

/// A request with transaction ID `[tid; 12]`, signed as [`TURN_USER`] in [`TURN_REALM`] with
/// `auth = (nonce, key)` when given.
pub fn turn_request(
    method: Method,
    tid: u8,
    auth: Option<(&str, &IntegrityKey)>,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let signer = auth.map(|(nonce, key)| Signer { username: TURN_USER.0, realm: TURN_REALM, nonce, key: key.clone() });
    signed(method, tid, signer.as_ref(), body)
}

/// A Send indication of `data` to `peer` (RFC 8656 §11.1), unsigned as indications are.
pub fn send_indication(peer: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    use switchback::proto::stun::{Data, XorPeerAddress};
    let mut buf = vec![0u8; data.len() + 64];
    let ty = MessageType::new(Method::SEND, Class::Indication);
    let mut w = MessageWriter::new(&mut buf, ty, TransactionId([0x77; 12])).expect("an indication fits");
    w.add(&XorPeerAddress(peer)).unwrap();
    w.add(&Data(data)).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// Reads one frame (STUN, or ChannelData with its padding) from a stream; `buf` keeps what was read
/// past it. Fails the test after 5 s or when the server closes the stream.
#[cfg(feature = "runtime")]
pub async fn read_stream_frame<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Vec<u8> {
    use switchback::proto::demux::{Frame, stream_frame};
    use tokio::io::AsyncReadExt;
    loop {
        if let Frame::Complete(n) = stream_frame(buf, false) {
            return buf.drain(..n).collect();
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("read timeout")
            .expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}
