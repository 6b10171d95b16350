//! The input format: a configuration byte, then operations. [`encode`] writes what [`Op::decode`]
//! reads, so seeds are built from typed operations.

/// Reads the fuzz input; past its end every read is zero.
pub(super) struct Input<'a>(pub(super) &'a [u8]);

impl<'a> Input<'a> {
    pub(super) fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub(super) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub(super) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub(super) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The configuration byte: which server the operations run against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScenarioConfig {
    /// `allow_loopback_peers`.
    pub allow_loopback: bool,
    /// `strict_rfc8656` (channels 0x4000–0x4FFF only).
    pub strict: bool,
    /// Relay addresses configured (11.0.0.3 and 2600::3) instead of the listener's address.
    pub relay_addresses: bool,
    /// `user_quota`, 0–3.
    pub user_quota: u8,
    /// `total_quota`, 0–3.
    pub total_quota: u8,
    /// A SOFTWARE attribute in answers.
    pub software: bool,
}

impl ScenarioConfig {
    pub(super) fn decode(b: u8) -> Self {
        ScenarioConfig {
            allow_loopback: b & 1 != 0,
            strict: b & 2 != 0,
            relay_addresses: b & 4 != 0,
            user_quota: (b >> 3) & 3,
            total_quota: (b >> 5) & 3,
            software: b & 0x80 != 0,
        }
    }

    pub(super) fn encode(&self) -> u8 {
        u8::from(self.allow_loopback)
            | u8::from(self.strict) << 1
            | u8::from(self.relay_addresses) << 2
            | (self.user_quota & 3) << 3
            | (self.total_quota & 3) << 5
            | u8::from(self.software) << 7
    }
}

/// Flags of a signed request ([`Op::Allocate`] and the other methods).
pub mod flags {
    /// Sign with a wrong password (401).
    pub const WRONG_PASSWORD: u8 = 1;
    /// No FINGERPRINT.
    pub const NO_FINGERPRINT: u8 = 2;
    /// An unknown comprehension-required attribute (420).
    pub const UNKNOWN_REQUIRED: u8 = 4;
    /// Another REALM (401).
    pub const WRONG_REALM: u8 = 8;
    /// A SOFTWARE attribute.
    pub const SOFTWARE: u8 = 16;
    /// A nonce that is not ours (438, and the harness follows it).
    pub const BAD_NONCE: u8 = 32;
    /// An unknown comprehension-optional attribute (ignored).
    pub const UNKNOWN_OPTIONAL: u8 = 64;
    /// No MESSAGE-INTEGRITY (401 with a nonce).
    pub const UNSIGNED: u8 = 128;
}

/// Options of an Allocate ([`Op::Allocate`]).
pub mod allocate {
    /// REQUESTED-TRANSPORT present.
    pub const TRANSPORT: u8 = 1;
    /// ... and TCP instead of UDP (442).
    pub const TCP: u8 = 2;
    /// LIFETIME present.
    pub const LIFETIME: u8 = 4;
    /// EVEN-PORT present.
    pub const EVEN_PORT: u8 = 8;
    /// ... with the R bit.
    pub const RESERVE: u8 = 16;
    /// RESERVATION-TOKEN present.
    pub const TOKEN: u8 = 32;
    /// REQUESTED-ADDRESS-FAMILY present.
    pub const FAMILY: u8 = 64;
    /// DONT-FRAGMENT present.
    pub const DONT_FRAGMENT: u8 = 128;
}

/// One operation. Clients, peers and channels are small indices into the harness's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Fake time moves on: `amount` × (10 ms, 1 s, 1 min, 1 h) by `unit`.
    Advance { unit: u8, amount: u8 },
    /// Raw bytes from a client.
    Raw { client: u8, bytes: Vec<u8> },
    /// A signed Allocate. `opts` are [`allocate`] bits; `family` 0 IPv4, 1 IPv6, else invalid;
    /// `token` picks a reservation the model knows, or (≥ 0x80) an unknown one.
    Allocate { client: u8, user: u8, flags: u8, opts: u8, lifetime: u32, family: u8, token: u8 },
    /// A signed Refresh: LIFETIME absent (`sel` 0), 0 (1) or `lifetime` (2).
    Refresh { client: u8, user: u8, flags: u8, sel: u8, lifetime: u32 },
    /// A signed CreatePermission for up to 4 peers (none: 400).
    CreatePermission { client: u8, user: u8, flags: u8, peers: Vec<u8> },
    /// A signed ChannelBind; `omit` 1 drops CHANNEL-NUMBER, 2 drops XOR-PEER-ADDRESS.
    ChannelBind { client: u8, user: u8, flags: u8, channel: u8, peer: u8, omit: u8 },
    /// A Send indication of `len` bytes (a pattern from `fill`).
    Send { client: u8, peer: u8, len: u16, fill: u8 },
    /// ChannelData of `len` bytes.
    ChannelData { client: u8, channel: u8, len: u16, fill: u8 },
    /// A peer datagram of `len` bytes into the client's allocation.
    Peer { client: u8, peer: u8, len: u16, fill: u8 },
    /// `Server::sweep`.
    Sweep,
    /// Relay-socket trouble: ports held by others, failing binds, failing sends.
    Knobs { busy: u8, fail_binds: u8, fail_sends: bool },
    /// The client's last signed request again, byte for byte.
    Retransmit { client: u8 },
    /// A peer datagram into a deleted allocation the harness still holds (the driver's race).
    Ghost { index: u8, peer: u8, len: u16, fill: u8 },
    /// `Server::close_all` (shutdown).
    CloseAll,
    /// The last signed request of client `from`, sent by `client` with byte `at` XORed with `xor`:
    /// replays from another address, and requests that share a transaction ID but differ.
    Mutate { client: u8, from: u8, at: u16, xor: u8 },
    /// A signed RFC 6062 Connect to `peer` as `user`; the driver's connection succeeds at once.
    Connect { client: u8, user: u8, flags: u8, peer: u8 },
    /// A signed ConnectionBind as `user` from `client` (a fresh TCP connection) for the `conn`th
    /// connection the model knows (≥ 0x80: an ID nobody was given).
    ConnectionBind { client: u8, user: u8, flags: u8, conn: u8 },
}

const OPS: u8 = 17;

impl Op {
    pub(super) fn decode(r: &mut Input<'_>) -> Op {
        match r.u8() % OPS {
            0 => Op::Advance { unit: r.u8(), amount: r.u8() },
            1 => {
                let client = r.u8();
                let len = usize::from(r.u16());
                Op::Raw { client, bytes: r.bytes(len).to_vec() }
            }
            2 => Op::Allocate {
                client: r.u8(),
                user: r.u8(),
                flags: r.u8(),
                opts: r.u8(),
                lifetime: r.u32(),
                family: r.u8(),
                token: r.u8(),
            },
            3 => Op::Refresh { client: r.u8(), user: r.u8(), flags: r.u8(), sel: r.u8(), lifetime: r.u32() },
            4 => {
                let (client, user, flags) = (r.u8(), r.u8(), r.u8());
                let n = usize::from(r.u8() % 5);
                Op::CreatePermission { client, user, flags, peers: (0..n).map(|_| r.u8()).collect() }
            }
            5 => Op::ChannelBind {
                client: r.u8(),
                user: r.u8(),
                flags: r.u8(),
                channel: r.u8(),
                peer: r.u8(),
                omit: r.u8(),
            },
            6 => Op::Send { client: r.u8(), peer: r.u8(), len: r.u16(), fill: r.u8() },
            7 => Op::ChannelData { client: r.u8(), channel: r.u8(), len: r.u16(), fill: r.u8() },
            8 => Op::Peer { client: r.u8(), peer: r.u8(), len: r.u16(), fill: r.u8() },
            9 => Op::Sweep,
            10 => Op::Knobs { busy: r.u8(), fail_binds: r.u8(), fail_sends: r.u8() & 1 != 0 },
            11 => Op::Retransmit { client: r.u8() },
            12 => Op::Ghost { index: r.u8(), peer: r.u8(), len: r.u16(), fill: r.u8() },
            13 => Op::CloseAll,
            14 => Op::Mutate { client: r.u8(), from: r.u8(), at: r.u16(), xor: r.u8() },
            15 => Op::Connect { client: r.u8(), user: r.u8(), flags: r.u8(), peer: r.u8() },
            _ => Op::ConnectionBind { client: r.u8(), user: r.u8(), flags: r.u8(), conn: r.u8() },
        }
    }

    /// The bytes [`Op::decode`] reads back as this operation.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut put = |tag: u8, fields: &[&[u8]]| {
            out.push(tag);
            for f in fields {
                out.extend_from_slice(f);
            }
        };
        match self {
            Op::Advance { unit, amount } => put(0, &[&[*unit, *amount]]),
            Op::Raw { client, bytes } => {
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
                put(1, &[&[*client], &len.to_be_bytes(), bytes.get(..usize::from(len)).unwrap_or(bytes)])
            }
            Op::Allocate { client, user, flags, opts, lifetime, family, token } => {
                put(2, &[&[*client, *user, *flags, *opts], &lifetime.to_be_bytes(), &[*family, *token]])
            }
            Op::Refresh { client, user, flags, sel, lifetime } => {
                put(3, &[&[*client, *user, *flags, *sel], &lifetime.to_be_bytes()])
            }
            Op::CreatePermission { client, user, flags, peers } => {
                let n = peers.len().min(4);
                put(4, &[&[*client, *user, *flags, n as u8], peers.get(..n).unwrap_or(peers)])
            }
            Op::ChannelBind { client, user, flags, channel, peer, omit } => {
                put(5, &[&[*client, *user, *flags, *channel, *peer, *omit]])
            }
            Op::Send { client, peer, len, fill } => put(6, &[&[*client, *peer], &len.to_be_bytes(), &[*fill]]),
            Op::ChannelData { client, channel, len, fill } => {
                put(7, &[&[*client, *channel], &len.to_be_bytes(), &[*fill]])
            }
            Op::Peer { client, peer, len, fill } => put(8, &[&[*client, *peer], &len.to_be_bytes(), &[*fill]]),
            Op::Sweep => put(9, &[]),
            Op::Knobs { busy, fail_binds, fail_sends } => put(10, &[&[*busy, *fail_binds, u8::from(*fail_sends)]]),
            Op::Retransmit { client } => put(11, &[&[*client]]),
            Op::Ghost { index, peer, len, fill } => put(12, &[&[*index, *peer], &len.to_be_bytes(), &[*fill]]),
            Op::CloseAll => put(13, &[]),
            Op::Mutate { client, from, at, xor } => put(14, &[&[*client, *from], &at.to_be_bytes(), &[*xor]]),
            Op::Connect { client, user, flags, peer } => put(15, &[&[*client, *user, *flags, *peer]]),
            Op::ConnectionBind { client, user, flags, conn } => put(16, &[&[*client, *user, *flags, *conn]]),
        }
    }
}

/// The fuzz input for a configuration and a sequence of operations.
pub fn encode(config: ScenarioConfig, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![config.encode()];
    for op in ops {
        op.encode(&mut out);
    }
    out
}
