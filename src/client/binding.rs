//! The Binding transaction, RFC 8489 §6.2 (client side): send a request, match the answer by
//! transaction ID, return the reflexive address the server saw.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::{ClientError, ClientTransport, new_transaction_id};
use crate::proto::demux::{self, Frame, MAX_FRAME_LEN};
use crate::proto::stun::{
    Class, ErrorCode, MappedAddress, Message, MessageType, MessageWriter, Method, TransactionId, XorMappedAddress,
};

/// Initial retransmission timeout, RFC 8489 §6.2.1 (RTO).
pub const INITIAL_RTO: Duration = Duration::from_millis(500);
/// Transmissions of one request over UDP, RFC 8489 §6.2.1 (Rc).
pub const MAX_TRANSMISSIONS: u32 = 7;
/// After the last transmission wait this many initial RTOs, RFC 8489 §6.2.1 (Rm).
pub const LAST_WAIT_RTOS: u32 = 16;

/// Largest response we read over UDP.
const MAX_DATAGRAM: usize = 65535;

/// Asks `server` for our reflexive transport address with a Binding request over `transport`.
///
/// Over UDP the request is retransmitted (500 ms, doubling, up to 7 transmissions, RFC 8489
/// §6.2.1); over TCP it is sent once on a new connection. Either way the whole exchange is bounded by
/// `timeout`. Returns XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from a server that only sends that.
pub async fn binding(
    server: SocketAddr,
    transport: ClientTransport,
    timeout: Duration,
) -> Result<SocketAddr, ClientError> {
    match transport {
        ClientTransport::Udp => {
            let any = match server {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
            binding_udp(&socket, server, timeout).await
        }
        ClientTransport::Tcp => {
            let deadline = Instant::now() + timeout;
            let mut stream = tokio::time::timeout_at(deadline, TcpStream::connect(server))
                .await
                .map_err(|_| ClientError::Timeout(timeout))??;
            let left = deadline.saturating_duration_since(Instant::now());
            binding_stream(&mut stream, left).await
        }
    }
}

/// A Binding transaction over an existing UDP socket (so the caller knows the local address).
/// Datagrams that are not the answer (other sources, other transaction IDs) are ignored.
pub async fn binding_udp(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<SocketAddr, ClientError> {
    let tid = new_transaction_id()?;
    let mut request = [0u8; 64];
    let len = encode_request(tid, &mut request)?;
    let request = request.get(..len).unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut rto = INITIAL_RTO;
    for transmission in 1..=MAX_TRANSMISSIONS {
        socket.send_to(request, server).await?;
        let wait = if transmission == MAX_TRANSMISSIONS { INITIAL_RTO * LAST_WAIT_RTOS } else { rto };
        let until = (Instant::now() + wait).min(deadline);
        loop {
            let Ok(received) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await else {
                break;
            };
            let (n, from) = received?;
            if from != server {
                continue;
            }
            if let Some(answer) = buf.get(..n).and_then(|d| parse_response(d, tid)) {
                return answer;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        rto *= 2;
    }
    Err(ClientError::Timeout(timeout))
}

/// A Binding transaction over an open stream (TCP or TLS). Frames that are not the answer
/// are skipped.
pub async fn binding_stream<S>(stream: &mut S, timeout: Duration) -> Result<SocketAddr, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        let tid = new_transaction_id()?;
        let mut request = [0u8; 64];
        let len = encode_request(tid, &mut request)?;
        stream.write_all(request.get(..len).unwrap_or_default()).await?;
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let mut filled = 0;
        loop {
            let available = buf.get(..filled).unwrap_or_default();
            match demux::stream_frame(available, false) {
                Frame::Invalid => return Err(ClientError::BadFrame),
                Frame::Complete(n) => {
                    if let Some(answer) = available.get(..n).and_then(|d| parse_response(d, tid)) {
                        return answer;
                    }
                    buf.copy_within(n.min(filled)..filled, 0);
                    filled -= n.min(filled);
                    continue;
                }
                Frame::Incomplete => {}
            }
            let space = buf.get_mut(filled..).filter(|s| !s.is_empty()).ok_or(ClientError::BadFrame)?;
            match stream.read(space).await? {
                0 => return Err(ClientError::Closed),
                n => filled += n,
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::Timeout(timeout))?
}

/// Writes a Binding request with transaction ID `tid` and FINGERPRINT into `buf`; returns its length.
pub fn encode_request(tid: TransactionId, buf: &mut [u8]) -> Result<usize, ClientError> {
    let mut w = MessageWriter::new(buf, MessageType::new(Method::BINDING, Class::Request), tid)?;
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// Reads a Binding response to transaction `tid`. `None` when `data` is not that response (not STUN,
/// another transaction, not a Binding response) — the caller keeps waiting.
pub fn parse_response(data: &[u8], tid: TransactionId) -> Option<Result<SocketAddr, ClientError>> {
    let msg = Message::parse(data).ok()?;
    let ty = msg.message_type();
    if msg.transaction_id() != tid || ty.method != Method::BINDING {
        return None;
    }
    match ty.class {
        Class::SuccessResponse => Some(
            msg.get::<XorMappedAddress>()
                .map(|a| a.0)
                .or_else(|_| msg.get::<MappedAddress>().map(|a| a.0))
                .map_err(|_| ClientError::NoMappedAddress),
        ),
        Class::ErrorResponse => {
            let (code, reason) = msg.get::<ErrorCode>().map_or((0, String::new()), |e| (e.code, e.reason.to_owned()));
            Some(Err(ClientError::ErrorResponse { code, reason }))
        }
        Class::Request | Class::Indication => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let tid = TransactionId([7; 12]);
        let mut buf = [0u8; 64];
        let n = encode_request(tid, &mut buf).unwrap();
        let msg = Message::parse(&buf[..n]).unwrap();
        assert_eq!(msg.transaction_id(), tid);
        assert_eq!(msg.message_type(), MessageType::new(Method::BINDING, Class::Request));
        assert!(msg.verify_fingerprint().is_ok());
        // A request is not a response.
        assert!(parse_response(&buf[..n], tid).is_none());
    }

    #[test]
    fn responses() {
        let tid = TransactionId([9; 12]);
        let addr: SocketAddr = "192.0.2.1:4242".parse().unwrap();
        let mut buf = [0u8; 128];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::SuccessResponse), tid).unwrap();
        w.add(&XorMappedAddress(addr)).unwrap();
        let n = w.finish();
        assert_eq!(parse_response(&buf[..n], tid).unwrap().unwrap(), addr);
        assert!(parse_response(&buf[..n], TransactionId([1; 12])).is_none());

        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::SuccessResponse), tid).unwrap();
        w.add(&MappedAddress(addr)).unwrap();
        let n = w.finish();
        assert_eq!(parse_response(&buf[..n], tid).unwrap().unwrap(), addr);

        let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::ErrorResponse), tid).unwrap();
        w.add(&ErrorCode::new(400)).unwrap();
        let n = w.finish();
        match parse_response(&buf[..n], tid).unwrap() {
            Err(ClientError::ErrorResponse { code: 400, .. }) => {}
            other => panic!("{other:?}"),
        }

        let w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::SuccessResponse), tid).unwrap();
        let n = w.finish();
        assert!(matches!(parse_response(&buf[..n], tid), Some(Err(ClientError::NoMappedAddress))));
        assert!(parse_response(b"garbage", tid).is_none());
    }
}
