//! The PROXY protocol version 2 header (HAProxy, "The PROXY protocol", §2.2) that a load balancer
//! puts in front of a TCP connection to say whose it is.
//!
//! Pure and bounded: [`parse_v2`] looks at the bytes it has, says how many it needs
//! ([`ProxyParse::Incomplete`]) or where the header ends, and never reads past that, so the bytes
//! after it (a STUN message, a TLS ClientHello) stay untouched. The I/O side is `io/proxy.rs`.
//!
//! ```
//! use switchback::proto::proxy::{ProxyHeader, ProxyParse, SIGNATURE, parse_v2};
//!
//! let mut h = SIGNATURE.to_vec();
//! h.extend_from_slice(&[0x21, 0x11, 0, 12]); // v2 PROXY, TCP over IPv4, 12 address bytes
//! h.extend_from_slice(&[203, 0, 113, 7, 192, 0, 2, 1, 0x10, 0x92, 0x0d, 0x96]);
//! let ProxyParse::Complete { header: ProxyHeader::Proxy { source, .. }, len } = parse_v2(&h)? else {
//!     panic!("complete")
//! };
//! assert_eq!((source.to_string().as_str(), len), ("203.0.113.7:4242", 28));
//! # Ok::<(), switchback::proto::proxy::ProxyError>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes every v2 header starts with (§2.2).
pub const SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// Signature, version/command, family/protocol and the 2-byte length.
pub const FIXED_LEN: usize = 16;

/// The longest header accepted: the fixed part plus this many address and TLV bytes. The spec lets
/// the length field reach 65535; load balancers send the addresses (at most 216 bytes, for UNIX
/// sockets) and a few TLVs (AWS: the VPC endpoint ID; GCP: the PSC connection ID), far below this.
pub const MAX_ADDRESS_AND_TLV_LEN: usize = 2048;

/// What the header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `PROXY` over IPv4 or IPv6: the client's address and the address it connected to.
    Proxy {
        /// The original client (what the server must see as the connection's source).
        source: SocketAddr,
        /// The address the client connected to (the load balancer's).
        destination: SocketAddr,
    },
    /// `LOCAL` (the proxy's own health check), or an address family with no IP addresses
    /// (`AF_UNSPEC`, `AF_UNIX`): the receiver uses the connection's real addresses (§2.2).
    Local,
}

/// The result of [`parse_v2`] on the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyParse {
    /// Not enough bytes: the header is at least this long in all (read exactly up to it).
    Incomplete(usize),
    /// The header, and its total length (the bytes after it belong to the connection).
    Complete {
        /// What it says.
        header: ProxyHeader,
        /// Its length in bytes, TLVs included.
        len: usize,
    },
}

/// Why bytes are not a v2 header. Small and `Copy`: a bad header costs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The first 12 bytes are not the v2 signature (a client that spoke first, or PROXY v1 text).
    #[error("not a PROXY protocol v2 header (bad signature)")]
    Signature,
    /// The version nibble is not 2.
    #[error("PROXY protocol version {0} (only 2 is supported)")]
    Version(u8),
    /// The command nibble is neither LOCAL (0) nor PROXY (1).
    #[error("unknown PROXY protocol command {0}")]
    Command(u8),
    /// The address family nibble is not 0–3.
    #[error("unknown PROXY protocol address family {0}")]
    Family(u8),
    /// The length is shorter than the family's addresses.
    #[error("PROXY protocol header too short for its address family")]
    Truncated,
    /// The length is above [`MAX_ADDRESS_AND_TLV_LEN`].
    #[error("PROXY protocol header longer than {MAX_ADDRESS_AND_TLV_LEN} bytes after the fixed part")]
    TooLong,
}

/// Parses a v2 header at the front of `buf`. §2.2.
pub fn parse_v2(buf: &[u8]) -> Result<ProxyParse, ProxyError> {
    // The signature is checked on the bytes there are: garbage is refused before 16 bytes arrive.
    let have = buf.len().min(SIGNATURE.len());
    if buf.get(..have) != SIGNATURE.get(..have) {
        return Err(ProxyError::Signature);
    }
    let Some(fixed) = buf.get(..FIXED_LEN) else {
        return Ok(ProxyParse::Incomplete(FIXED_LEN));
    };
    let [.., ver_cmd, fam, len_hi, len_lo] = fixed else {
        return Ok(ProxyParse::Incomplete(FIXED_LEN));
    };
    let (version, command) = (ver_cmd >> 4, ver_cmd & 0x0F);
    if version != 2 {
        return Err(ProxyError::Version(version));
    }
    if command > 1 {
        return Err(ProxyError::Command(command));
    }
    let family = fam >> 4;
    let rest_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    if rest_len > MAX_ADDRESS_AND_TLV_LEN {
        return Err(ProxyError::TooLong);
    }
    let addr_len = match family {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        other => return Err(ProxyError::Family(other)),
    };
    if rest_len < addr_len {
        return Err(ProxyError::Truncated);
    }
    let len = FIXED_LEN + rest_len;
    let Some(addrs) = buf.get(FIXED_LEN..FIXED_LEN + addr_len).filter(|_| buf.len() >= len) else {
        return Ok(ProxyParse::Incomplete(len));
    };
    // LOCAL: "the receiver must accept this connection as valid and must use the real connection
    // endpoints and discard the protocol block including the family".
    let header = match (command, family) {
        (1, 1) => ipv4(addrs).ok_or(ProxyError::Truncated)?,
        (1, 2) => ipv6(addrs).ok_or(ProxyError::Truncated)?,
        _ => ProxyHeader::Local,
    };
    Ok(ProxyParse::Complete { header, len })
}

fn ipv4(b: &[u8]) -> Option<ProxyHeader> {
    let src: [u8; 4] = b.get(0..4)?.try_into().ok()?;
    let dst: [u8; 4] = b.get(4..8)?.try_into().ok()?;
    let ports: [u8; 4] = b.get(8..12)?.try_into().ok()?;
    let [sp0, sp1, dp0, dp1] = ports;
    Some(ProxyHeader::Proxy {
        source: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(src)), u16::from_be_bytes([sp0, sp1])),
        destination: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(dst)), u16::from_be_bytes([dp0, dp1])),
    })
}

fn ipv6(b: &[u8]) -> Option<ProxyHeader> {
    let src: [u8; 16] = b.get(0..16)?.try_into().ok()?;
    let dst: [u8; 16] = b.get(16..32)?.try_into().ok()?;
    let ports: [u8; 4] = b.get(32..36)?.try_into().ok()?;
    let [sp0, sp1, dp0, dp1] = ports;
    Some(ProxyHeader::Proxy {
        source: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(src)), u16::from_be_bytes([sp0, sp1])),
        destination: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(dst)), u16::from_be_bytes([dp0, dp1])),
    })
}

/// Writes a v2 `PROXY` header for a TCP connection from `source` to `destination` (both of one
/// family), followed by `tlv` bytes as they are: for tests, benchmarks and fuzz seeds. §2.2.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, tlv: &[u8]) -> Vec<u8> {
    let mut addrs = Vec::with_capacity(36);
    let fam = match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
            0x11
        }
        (s, d) => {
            addrs.extend_from_slice(&to_v6(s.ip()).octets());
            addrs.extend_from_slice(&to_v6(d.ip()).octets());
            0x21
        }
    };
    addrs.extend_from_slice(&source.port().to_be_bytes());
    addrs.extend_from_slice(&destination.port().to_be_bytes());
    let len = u16::try_from(addrs.len() + tlv.len()).unwrap_or(u16::MAX);
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&[0x21, fam]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&addrs);
    out.extend_from_slice(tlv);
    out
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_and_ipv6_with_tlvs() {
        let h = encode_v2(sa("203.0.113.7:4242"), sa("192.0.2.1:3478"), &[0x04, 0, 1, 0xAA]);
        let header = ProxyHeader::Proxy { source: sa("203.0.113.7:4242"), destination: sa("192.0.2.1:3478") };
        assert_eq!(parse_v2(&h), Ok(ProxyParse::Complete { header, len: 16 + 12 + 4 }));
        let mut with_data = h.clone();
        with_data.extend_from_slice(b"\x00\x01stun");
        assert_eq!(parse_v2(&with_data), Ok(ProxyParse::Complete { header, len: h.len() }));

        let h = encode_v2(sa("[2001:db8::7]:4242"), sa("[2001:db8::1]:3478"), &[]);
        let header = ProxyHeader::Proxy { source: sa("[2001:db8::7]:4242"), destination: sa("[2001:db8::1]:3478") };
        assert_eq!(parse_v2(&h), Ok(ProxyParse::Complete { header, len: 52 }));
    }

    #[test]
    fn every_prefix_is_incomplete_with_the_right_length() {
        let h = encode_v2(sa("203.0.113.7:4242"), sa("192.0.2.1:3478"), &[]);
        for n in 0..h.len() {
            let want = if n < FIXED_LEN { FIXED_LEN } else { h.len() };
            assert_eq!(parse_v2(&h[..n]), Ok(ProxyParse::Incomplete(want)), "prefix {n}");
        }
    }

    #[test]
    fn local_and_unspec_use_the_real_addresses() {
        let mut local = SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse_v2(&local), Ok(ProxyParse::Complete { header: ProxyHeader::Local, len: 16 }));
        // LOCAL with addresses: they are skipped.
        let mut h = encode_v2(sa("203.0.113.7:1"), sa("192.0.2.1:2"), &[]);
        h[12] = 0x20;
        assert_eq!(parse_v2(&h), Ok(ProxyParse::Complete { header: ProxyHeader::Local, len: 28 }));
        let mut unix = SIGNATURE.to_vec();
        unix.extend_from_slice(&[0x21, 0x31, 0, 216]);
        unix.resize(16 + 216, 0);
        assert_eq!(parse_v2(&unix), Ok(ProxyParse::Complete { header: ProxyHeader::Local, len: 232 }));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_v2(b"\x00\x01\x00\x00"), Err(ProxyError::Signature));
        assert_eq!(parse_v2(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), Err(ProxyError::Signature));
        let good = encode_v2(sa("203.0.113.7:4242"), sa("192.0.2.1:3478"), &[]);
        let mut h = good.clone();
        h[12] = 0x11;
        assert_eq!(parse_v2(&h), Err(ProxyError::Version(1)));
        h[12] = 0x22;
        assert_eq!(parse_v2(&h), Err(ProxyError::Command(2)));
        let mut h = good.clone();
        h[13] = 0x41;
        assert_eq!(parse_v2(&h), Err(ProxyError::Family(4)));
        let mut h = good.clone();
        h[15] = 11;
        assert_eq!(parse_v2(&h), Err(ProxyError::Truncated));
        let mut h = good;
        h[14] = 0xFF;
        assert_eq!(parse_v2(&h), Err(ProxyError::TooLong));
    }
}
