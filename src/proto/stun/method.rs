//! Message type: method and class, RFC 8489 §5 (Figure 3).

/// A STUN method (12 bits). The constants are those of RFC 8489, RFC 8656 and RFC 6062.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Method(pub u16);

impl Method {
    /// Binding, RFC 8489 §18.2.
    pub const BINDING: Method = Method(0x001);
    /// Allocate, RFC 8656 §17.
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh, RFC 8656 §17.
    pub const REFRESH: Method = Method(0x004);
    /// Send (indication only), RFC 8656 §17.
    pub const SEND: Method = Method(0x006);
    /// Data (indication only), RFC 8656 §17.
    pub const DATA: Method = Method(0x007);
    /// CreatePermission, RFC 8656 §17.
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind, RFC 8656 §17.
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect, RFC 6062 §6.1.
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind, RFC 6062 §6.1.
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt, RFC 6062 §6.1.
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// The method's name in the RFCs, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Method::BINDING => "Binding",
            Method::ALLOCATE => "Allocate",
            Method::REFRESH => "Refresh",
            Method::SEND => "Send",
            Method::DATA => "Data",
            Method::CREATE_PERMISSION => "CreatePermission",
            Method::CHANNEL_BIND => "ChannelBind",
            Method::CONNECT => "Connect",
            Method::CONNECTION_BIND => "ConnectionBind",
            Method::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => "unknown",
        }
    }
}

/// A STUN message class, RFC 8489 §5.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    /// C1C0 = 0b00.
    Request,
    /// C1C0 = 0b01.
    Indication,
    /// C1C0 = 0b10.
    SuccessResponse,
    /// C1C0 = 0b11.
    ErrorResponse,
}

/// The 14-bit message type: a method and a class interleaved, RFC 8489 §5.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageType {
    /// The method.
    pub method: Method,
    /// The class.
    pub class: Class,
}

impl MessageType {
    /// A message type from its parts.
    pub const fn new(method: Method, class: Class) -> Self {
        MessageType { method, class }
    }

    /// Decodes the 16-bit type field (the two leading zero bits already checked).
    pub const fn from_bits(v: u16) -> Self {
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = match ((v >> 4) & 1) | ((v >> 7) & 2) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        };
        MessageType { method: Method(method), class }
    }

    /// Encodes the 16-bit type field. Method bits above 12 are dropped.
    pub const fn to_bits(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c: u16 = match self.class {
            Class::Request => 0,
            Class::Indication => 1,
            Class::SuccessResponse => 2,
            Class::ErrorResponse => 3,
        };
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_type_values() {
        // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111; RFC 8656 Allocate 0x0003.
        assert_eq!(MessageType::new(Method::BINDING, Class::Request).to_bits(), 0x0001);
        assert_eq!(MessageType::new(Method::BINDING, Class::SuccessResponse).to_bits(), 0x0101);
        assert_eq!(MessageType::new(Method::BINDING, Class::ErrorResponse).to_bits(), 0x0111);
        assert_eq!(MessageType::new(Method::SEND, Class::Indication).to_bits(), 0x0016);
        assert_eq!(MessageType::new(Method::DATA, Class::Indication).to_bits(), 0x0017);
        assert_eq!(MessageType::new(Method::ALLOCATE, Class::ErrorResponse).to_bits(), 0x0113);
    }

    #[test]
    fn every_type_round_trips() {
        for v in 0u16..0x4000 {
            assert_eq!(MessageType::from_bits(v).to_bits(), v);
        }
    }
}
