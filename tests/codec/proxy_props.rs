//! Property tests of the PROXY protocol v2 parser (`switchback::proto::proxy`): what is encoded
//! parses back to the same addresses whatever TLVs follow, the bytes after the header are never
//! claimed, and arbitrary bytes never panic nor claim more than they hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use switchback::proto::proxy::{
    FIXED_LEN, MAX_ADDRESS_AND_TLV_LEN, ProxyHeader, ProxyParse, SIGNATURE, encode_v2, parse_v2,
};

fn v4() -> impl Strategy<Value = SocketAddr> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
}

fn v6() -> impl Strategy<Value = SocketAddr> {
    (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
}

fn pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![(v4(), v4()), (v6(), v6())]
}

proptest! {
    #[test]
    fn round_trip((source, destination) in pair(), tlv in vec(any::<u8>(), 0..300), after in vec(any::<u8>(), 0..64)) {
        let header = encode_v2(source, destination, &tlv);
        let mut bytes = header.clone();
        bytes.extend_from_slice(&after);
        let want = ProxyParse::Complete { header: ProxyHeader::Proxy { source, destination }, len: header.len() };
        prop_assert_eq!(parse_v2(&bytes), Ok(want));
        // Short of the whole header, it asks for exactly the rest.
        for n in FIXED_LEN..header.len() {
            prop_assert_eq!(parse_v2(&bytes[..n]), Ok(ProxyParse::Incomplete(header.len())));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..400)) {
        if let Ok(ProxyParse::Complete { len, .. }) = parse_v2(&data) {
            prop_assert!(len <= data.len());
        }
        switchback::fuzzing::proxy_header(&data);
    }

    #[test]
    fn arbitrary_after_the_signature(rest in vec(any::<u8>(), 0..400)) {
        let mut data = SIGNATURE.to_vec();
        data.extend_from_slice(&rest);
        match parse_v2(&data) {
            Ok(ProxyParse::Complete { len, .. }) => prop_assert!(len <= data.len() && len <= FIXED_LEN + MAX_ADDRESS_AND_TLV_LEN),
            Ok(ProxyParse::Incomplete(need)) => prop_assert!(need > data.len() && need <= FIXED_LEN + MAX_ADDRESS_AND_TLV_LEN),
            Err(_) => {}
        }
        switchback::fuzzing::proxy_header(&data);
    }
}
