//! The maps' keys and values, byte for byte as `bpf/channel_relay.c` declares them (`struct key`,
//! `struct value`, their IPv6 forms `key6` and `value6`, `struct counter`). Addresses, ports and the channel number are in network order
//! as in the packet; the slot, the deadline and the counters in the host's order, as the program
//! reads and adds them. Byte arrays, because aya reads and writes only `Pod` types and this crate
//! cannot implement that `unsafe` trait for a struct of its own.

use std::net::{SocketAddrV4, SocketAddrV6};

/// `struct key`: source IP, destination IP, source port, destination port, channel (0 in the
/// peer → client map), padding.
pub type Key = [u8; 16];
/// `struct value`: the rewritten packet's source IP, destination IP, source port, destination
/// port, the channel, padding, the counter slot, padding, `expiry_ns`.
pub type Value = [u8; 32];
/// `struct key6`: [`Key`] with 16-byte addresses.
pub type Key6 = [u8; 40];
/// `struct value6`: [`Value`] with 16-byte addresses.
pub type Value6 = [u8; 56];
/// `struct counter`: packets, application bytes.
pub type Counter = [u8; 16];

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn get<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn four_tuple(buf: &mut [u8], src: SocketAddrV4, dst: SocketAddrV4) {
    put(buf, 0, &src.ip().octets());
    put(buf, 4, &dst.ip().octets());
    put(buf, 8, &src.port().to_be_bytes());
    put(buf, 10, &dst.port().to_be_bytes());
}

/// The client → peer key: ChannelData on `channel` from `client` to the server's `listener`.
pub fn to_peer_key(client: SocketAddrV4, listener: SocketAddrV4, channel: u16) -> Key {
    let mut k = [0u8; 16];
    four_tuple(&mut k, client, listener);
    put(&mut k, 12, &channel.to_be_bytes());
    k
}

/// The peer → client key: a datagram from `peer` to the relayed address `relay`.
pub fn to_client_key(peer: SocketAddrV4, relay: SocketAddrV4) -> Key {
    let mut k = [0u8; 16];
    four_tuple(&mut k, peer, relay);
    k
}

/// A value: rewrite to `src` → `dst`, `channel`, count in `slot`, relay until `expiry_ns`.
pub fn value(src: SocketAddrV4, dst: SocketAddrV4, channel: u16, slot: u32, expiry_ns: u64) -> Value {
    let mut v = [0u8; 32];
    four_tuple(&mut v, src, dst);
    put(&mut v, 12, &channel.to_be_bytes());
    put(&mut v, 16, &slot.to_ne_bytes());
    put(&mut v, 24, &expiry_ns.to_ne_bytes());
    v
}

fn four_tuple6(buf: &mut [u8], src: SocketAddrV6, dst: SocketAddrV6) {
    put(buf, 0, &src.ip().octets());
    put(buf, 16, &dst.ip().octets());
    put(buf, 32, &src.port().to_be_bytes());
    put(buf, 34, &dst.port().to_be_bytes());
}

/// [`to_peer_key`] for IPv6.
pub fn to_peer_key6(client: SocketAddrV6, listener: SocketAddrV6, channel: u16) -> Key6 {
    let mut k = [0u8; 40];
    four_tuple6(&mut k, client, listener);
    put(&mut k, 36, &channel.to_be_bytes());
    k
}

/// [`to_client_key`] for IPv6.
pub fn to_client_key6(peer: SocketAddrV6, relay: SocketAddrV6) -> Key6 {
    let mut k = [0u8; 40];
    four_tuple6(&mut k, peer, relay);
    k
}

/// [`value`] for IPv6.
pub fn value6(src: SocketAddrV6, dst: SocketAddrV6, channel: u16, slot: u32, expiry_ns: u64) -> Value6 {
    let mut v = [0u8; 56];
    four_tuple6(&mut v, src, dst);
    put(&mut v, 36, &channel.to_be_bytes());
    put(&mut v, 40, &slot.to_ne_bytes());
    put(&mut v, 48, &expiry_ns.to_ne_bytes());
    v
}

/// A value's deadline (CLOCK_MONOTONIC nanoseconds).
pub fn expiry_ns(v: &Value) -> u64 {
    u64::from_ne_bytes(get(v, 24))
}

/// A value's destination (the peer, or the client).
pub fn destination(v: &Value) -> SocketAddrV4 {
    SocketAddrV4::new(get::<4>(v, 4).into(), u16::from_be_bytes(get(v, 10)))
}

/// A counter's packets and bytes.
pub fn totals(c: &Counter) -> [u64; 2] {
    [u64::from_ne_bytes(get(c, 0)), u64::from_ne_bytes(get(c, 8))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_program() {
        let client = "198.18.0.2:5000".parse().unwrap();
        let listener = "198.18.0.1:3478".parse().unwrap();
        let k = to_peer_key(client, listener, 0x4001);
        assert_eq!(k, [198, 18, 0, 2, 198, 18, 0, 1, 0x13, 0x88, 0x0d, 0x96, 0x40, 0x01, 0, 0]);
        let peer = "198.18.0.3:7".parse().unwrap();
        assert_eq!(to_client_key(peer, listener).get(12..), Some(&[0u8, 0, 0, 0][..]));
        let v = value(listener, peer, 0x4001, 5, 99);
        assert_eq!(expiry_ns(&v), 99);
        assert_eq!(destination(&v), peer);
        assert_eq!(v.get(16..20), Some(&5u32.to_ne_bytes()[..]));
        let v6 = value6("[2001:2::1]:3478".parse().unwrap(), "[2001:2::3]:9".parse().unwrap(), 0x4002, 7, 11);
        assert_eq!(v6.get(32..38), Some(&[0x0d, 0x96, 0, 9, 0x40, 0x02][..]));
        assert_eq!(v6.get(40..44), Some(&7u32.to_ne_bytes()[..]));
        assert_eq!(v6.get(48..56), Some(&11u64.to_ne_bytes()[..]));
        let k6 = to_peer_key6("[2001:2::2]:5000".parse().unwrap(), "[2001:2::1]:3478".parse().unwrap(), 0x4001);
        assert_eq!(k6.get(15), Some(&2));
        assert_eq!(k6.get(36..40), Some(&[0x40, 0x01, 0, 0][..]));
        let mut c = [0u8; 16];
        put(&mut c, 0, &3u64.to_ne_bytes());
        put(&mut c, 8, &300u64.to_ne_bytes());
        assert_eq!(totals(&c), [3, 300]);
    }
}
