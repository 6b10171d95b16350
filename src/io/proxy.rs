//! `proxy-protocol`: behind a load balancer, TCP and TLS connections start with a PROXY protocol
//! v2 header (parsed by [`crate::proto::proxy`]) that names the real client. The listener reads it
//! before anything else — before the TLS handshake — within [`PROXY_HEADER_TIMEOUT`], and the
//! server sees the header's source as the client address (XOR-MAPPED-ADDRESS, the 5-tuple, the
//! peer policy and rate limits all use it), and the per-source connection cap counts it
//! ([`SourceSlots`](crate::policy::SourceSlots)) instead of the balancer's address.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::policy::PeerRule;
use crate::proto::proxy::{FIXED_LEN, ProxyError, ProxyHeader, ProxyParse, parse_v2};

/// How long a connection has to deliver its whole PROXY header.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The listeners' PROXY protocol setting.
#[derive(Clone, Debug, Default)]
pub(super) struct ProxyProtocol {
    /// Whether a header is required on every TCP and TLS connection.
    pub(super) on: bool,
    /// Where connections may come from (the load balancers); empty: anywhere.
    pub(super) trusted: Vec<PeerRule>,
}

impl ProxyProtocol {
    /// Whether a connection from `peer` may send a header (and so be served at all): only from a
    /// listed balancer; an empty list trusts nobody.
    pub(super) fn trusts(&self, peer: SocketAddr) -> bool {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        self.trusted.iter().any(|r| r.contains(peer))
    }
}

/// Why a connection was closed before its header was read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProxyReadError {
    /// The bytes are not a v2 header.
    #[error(transparent)]
    Header(#[from] ProxyError),
    /// The connection failed or closed early.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads exactly the PROXY v2 header from `stream` (not a byte more: what follows is the client's)
/// and returns the client address: the header's source, or `peer` for a LOCAL header.
pub(super) async fn read_source<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyReadError> {
    let mut buf = vec![0u8; FIXED_LEN];
    let mut filled = 0;
    loop {
        match parse_v2(buf.get(..filled).unwrap_or_default())? {
            ProxyParse::Complete { header: ProxyHeader::Proxy { source, .. }, .. } => {
                return Ok(SocketAddr::new(source.ip().to_canonical(), source.port()));
            }
            ProxyParse::Complete { header: ProxyHeader::Local, .. } => return Ok(peer),
            ProxyParse::Incomplete(need) => {
                // `need` is bounded by the parser (FIXED_LEN + MAX_ADDRESS_AND_TLV_LEN).
                buf.resize(need, 0);
                let Some(space) = buf.get_mut(filled..need) else {
                    return Err(ProxyError::TooLong.into());
                };
                stream.read_exact(space).await?;
                filled = need;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::proxy::encode_v2;

    #[tokio::test]
    async fn reads_exactly_the_header() {
        let header = encode_v2("203.0.113.7:4242".parse().unwrap(), "192.0.2.1:3478".parse().unwrap(), &[1, 0, 0]);
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"after");
        let mut reader = &bytes[..];
        let source = read_source(&mut reader, "10.0.0.1:1".parse().unwrap()).await.unwrap();
        assert_eq!(source, "203.0.113.7:4242".parse().unwrap());
        assert_eq!(reader, b"after");
        let mut garbage = &b"\x00\x01\x00\x00\x21\x12\xa4\x42........"[..];
        assert!(matches!(
            read_source(&mut garbage, "10.0.0.1:1".parse().unwrap()).await,
            Err(ProxyReadError::Header(_))
        ));
        let mut short = &header[..20];
        assert!(matches!(read_source(&mut short, "10.0.0.1:1".parse().unwrap()).await, Err(ProxyReadError::Io(_))));
    }

    #[test]
    fn trusted_sources() {
        // An empty list trusts nobody (it used to trust everyone).
        let none = ProxyProtocol { on: true, trusted: vec![] };
        assert!(!none.trusts("198.51.100.1:5".parse().unwrap()));
        assert!(!none.trusts("127.0.0.1:5".parse().unwrap()));
        let lb = ProxyProtocol { on: true, trusted: vec!["10.0.0.0/8".parse().unwrap()] };
        assert!(lb.trusts("10.1.2.3:5".parse().unwrap()));
        assert!(lb.trusts("[::ffff:10.1.2.3]:5".parse().unwrap()));
        assert!(!lb.trusts("198.51.100.1:5".parse().unwrap()));
    }
}
