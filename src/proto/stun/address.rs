//! Address attribute values: MAPPED-ADDRESS (RFC 8489 §14.1) and the XOR form (§14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::bytes::{Reader, Writer};
use super::{AttrError, EncodeError, MAGIC_COOKIE, TransactionId};

const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// Value length of an address attribute for this address.
pub(crate) fn value_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

/// RFC 8489 §14.1: reserved (8), family (8), port (16), address (32 or 128 bits).
pub(crate) fn decode(value: &[u8]) -> Result<SocketAddr, AttrError> {
    let mut r = Reader::new(value);
    let _reserved = r.u8()?;
    let family = r.u8()?;
    let port = r.u16()?;
    let ip = match family {
        FAMILY_IPV4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
        FAMILY_IPV6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
        _ => return Err(AttrError::BadFamily),
    };
    r.finish()?;
    Ok(SocketAddr::new(ip, port))
}

pub(crate) fn encode(addr: &SocketAddr, out: &mut [u8]) -> Result<(), EncodeError> {
    let mut w = Writer::new(out);
    w.u8(0)?;
    match addr.ip() {
        IpAddr::V4(ip) => {
            w.u8(FAMILY_IPV4)?;
            w.u16(addr.port())?;
            w.put(&ip.octets())
        }
        IpAddr::V6(ip) => {
            w.u8(FAMILY_IPV6)?;
            w.u16(addr.port())?;
            w.put(&ip.octets())
        }
    }
}

/// RFC 8489 §14.2: X-Port is the port XOR the cookie's top 16 bits; X-Address is the address XOR the
/// cookie (IPv4) or the cookie followed by the transaction ID (IPv6). The operation is its own inverse.
pub(crate) fn xor(addr: SocketAddr, tid: &TransactionId) -> SocketAddr {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match addr.ip() {
        IpAddr::V4(ip) => {
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::from(x)), port)
        }
        IpAddr::V6(ip) => {
            let mut mask = [0u8; 16];
            let (head, tail) = mask.split_at_mut(4);
            head.copy_from_slice(&cookie);
            tail.copy_from_slice(tid.as_bytes());
            let x = u128::from(ip) ^ u128::from_be_bytes(mask);
            SocketAddr::new(IpAddr::V6(Ipv6Addr::from(x)), port)
        }
    }
}
