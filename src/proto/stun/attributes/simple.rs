//! Attributes whose value is one field: an address, a text, opaque bytes, a number or a family
//! (RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2, RFC 5780 §7, RFC 7635 §6, RFC 8016 §3.1).

use std::net::SocketAddr;

use super::super::bytes::{Reader, Writer};
use super::super::{AttrError, EncodeError, TransactionId, address};
use super::{AddressFamily, Attribute, types};

plain_address!(
    /// MAPPED-ADDRESS, RFC 8489 §14.1 (for RFC 3489 clients, §11).
    MappedAddress = types::MAPPED_ADDRESS
);
plain_address!(
    /// ALTERNATE-SERVER, RFC 8489 §14.15.
    AlternateServer = types::ALTERNATE_SERVER
);
plain_address!(
    /// RESPONSE-ORIGIN, RFC 5780 §7.3.
    ResponseOrigin = types::RESPONSE_ORIGIN
);
plain_address!(
    /// OTHER-ADDRESS, RFC 5780 §7.4.
    OtherAddress = types::OTHER_ADDRESS
);
xor_address!(
    /// XOR-MAPPED-ADDRESS, RFC 8489 §14.2.
    XorMappedAddress = types::XOR_MAPPED_ADDRESS
);
xor_address!(
    /// XOR-PEER-ADDRESS, RFC 8656 §18.3.
    XorPeerAddress = types::XOR_PEER_ADDRESS
);
xor_address!(
    /// XOR-RELAYED-ADDRESS, RFC 8656 §18.5.
    XorRelayedAddress = types::XOR_RELAYED_ADDRESS
);
text!(
    /// USERNAME, RFC 8489 §14.3 (UTF-8, under 513 bytes).
    Username = types::USERNAME
);
text!(
    /// REALM, RFC 8489 §14.9.
    Realm = types::REALM
);
text!(
    /// NONCE, RFC 8489 §14.10.
    Nonce = types::NONCE
);
text!(
    /// SOFTWARE, RFC 8489 §14.14.
    Software = types::SOFTWARE
);
text!(
    /// ALTERNATE-DOMAIN, RFC 8489 §14.16.
    AlternateDomain = types::ALTERNATE_DOMAIN
);
text!(
    /// THIRD-PARTY-AUTHORIZATION, RFC 7635 §6.1: the authorization server's name.
    ThirdPartyAuthorization = types::THIRD_PARTY_AUTHORIZATION
);
opaque!(
    /// DATA, RFC 8656 §18.4: the application payload of a Send or Data indication.
    Data = types::DATA
);
opaque!(
    /// ACCESS-TOKEN, RFC 7635 §6.2: the self-contained token (nonce length, nonce, encrypted block),
    /// kept opaque here; the auth layer opens it.
    AccessToken = types::ACCESS_TOKEN
);
opaque!(
    /// MOBILITY-TICKET, RFC 8016 §3.1: an opaque ticket the server issued.
    MobilityTicket = types::MOBILITY_TICKET
);
fixed_u32!(
    /// LIFETIME in seconds, RFC 8656 §18.2.
    Lifetime = types::LIFETIME
);
fixed_u32!(
    /// CONNECTION-ID, RFC 6062 §6.2.1.
    ConnectionId = types::CONNECTION_ID
);
fixed_u32!(
    /// FINGERPRINT, RFC 8489 §14.7: CRC-32 of the message before it, XOR 0x5354554E. Written by
    /// [`crate::proto::stun::MessageWriter::add_fingerprint`] and checked by
    /// [`crate::proto::stun::Message::verify_fingerprint`].
    Fingerprint = types::FINGERPRINT
);
family!(
    /// REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.6.
    RequestedAddressFamily = types::REQUESTED_ADDRESS_FAMILY
);
family!(
    /// ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §18.11 (only IPv6 is meaningful).
    AdditionalAddressFamily = types::ADDITIONAL_ADDRESS_FAMILY
);
family!(
    /// ADDITIONAL-ADDRESS-FAMILY under the draft code point 0x8032 (coturn 4.6.1, `turnutils_uclient -Z`).
    LegacyAdditionalAddressFamily = types::LEGACY_ADDITIONAL_ADDRESS_FAMILY
);

fixed_bytes!(
    /// MESSAGE-INTEGRITY, RFC 8489 §14.5: HMAC-SHA1, 20 bytes.
    MessageIntegrity, 20 = types::MESSAGE_INTEGRITY
);
