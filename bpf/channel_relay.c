// SPDX-License-Identifier: GPL-2.0 OR MIT
// switchback's kernel fast path for ChannelData (issue #19): an XDP program on the server's
// interface that relays bound channels without waking user space. User space (src/io/fastpath/)
// keeps every decision: it fills the two maps when a channel is bound (RFC 8656 §12.2) and removes
// the entries when the channel, its permission (§9) or the allocation (§8) ends; `expiry_ns`
// guards the kernel side too. Everything the maps do not name goes to user space (XDP_PASS).
//
// IPv4 and IPv6 (no extension headers), one family end to end. client → peer: ChannelData (§12.4) from the client's 5-tuple is stripped of its
// 4-byte header (and, over UDP, any trailing padding, §12.5) and sent from the relayed address to
// the peer. peer → client: a datagram from the peer to the relayed address gets a ChannelData
// header and goes to the client from the server's address. Both leave through XDP_TX (MACs
// swapped). The IPv4 header checksum is recomputed, and so is the UDP checksum, over the whole new
// datagram (see "The UDP checksum" below).
//
// The UDP checksum. The field of an arriving datagram is not always a checksum: a sender on the
// same host (a container behind a veth or bridge) with TX checksum offload hands on
// CHECKSUM_PARTIAL, whose field holds only the pseudo-header's sum, for a NIC to complete — and a
// veth never completes it. XDP sees no skb and so no ip_summed: updating the field incrementally
// (RFC 1624) turns such a datagram's into a wrong checksum, and the receiver drops it. So the
// program sums the datagram itself (RFC 1071; `sum_to_end`, one pass, at most CSUM_MAX bytes) and
// builds the new checksum from that sum and the new headers, never from the old field; the old
// field only decides whether to relay at all (`udp_csum_ok`): a complete checksum that verifies,
// the pseudo-header's sum alone (the partial case: it never crossed a wire), or for IPv4 none (0)
// are relayed; anything else goes to user space (XDP_PASS), where the kernel's UDP layer drops it
// as it would without the program — the fast path relays nothing that the user-space path would
// not. The new datagram always carries a checksum: IPv6 requires one (RFC 8200 §8.1), and for
// IPv4, where 0 would be legal (RFC 768), the sum is at hand anyway and the user-space path sends
// one too.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// The IPv4 maps: the packet's 4-tuple (network order) and, client → peer, the channel number.
struct key {
    __u32 src_ip;
    __u32 dst_ip;
    __u16 src_port;
    __u16 dst_port;
    __u16 channel; // network order; 0 in the peer → client map
    __u16 pad;
};

// The rewritten packet's 4-tuple (network order), the channel, its counter slot, the deadline.
struct value {
    __u32 src_ip;
    __u32 dst_ip;
    __u16 src_port;
    __u16 dst_port;
    __u16 channel; // network order
    __u16 pad;
    __u32 slot;    // index into `counters`
    __u32 pad2;
    __u64 expiry_ns; // CLOCK_MONOTONIC (bpf_ktime_get_ns); past it the packet goes to user space
};

struct counter {
    __u64 packets;
    __u64 bytes; // application bytes (ChannelData payload), TURN framing not included
};

#define MAX_CHANNELS 32768

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key);
    __type(value, struct value);
    __uint(max_entries, MAX_CHANNELS);
} to_peer SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key);
    __type(value, struct value);
    __uint(max_entries, MAX_CHANNELS);
} to_client SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct counter);
    __uint(max_entries, 2 * MAX_CHANNELS);
} counters SEC(".maps");

// The same for IPv6: 16-byte addresses (network order, as 4 words).
struct key6 {
    __u32 src_ip[4];
    __u32 dst_ip[4];
    __u16 src_port;
    __u16 dst_port;
    __u16 channel;
    __u16 pad;
};

struct value6 {
    __u32 src_ip[4];
    __u32 dst_ip[4];
    __u16 src_port;
    __u16 dst_port;
    __u16 channel;
    __u16 pad;
    __u32 slot;
    __u32 pad2;
    __u64 expiry_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key6);
    __type(value, struct value6);
    __uint(max_entries, MAX_CHANNELS);
} to_peer6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key6);
    __type(value, struct value6);
    __uint(max_entries, MAX_CHANNELS);
} to_client6 SEC(".maps");

#define HDRS (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))
#define HDRS6 (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct udphdr))

// One's-complement sums (RFC 1071) in a 64-bit accumulator, folded at the end. Words are taken as
// they lie in the packet (network order) loaded as host integers; the folded sum is then the memory
// image of the checksum on either byte order, so constants go in network order (bpf_htons) too,
// and a 32-bit load counts as its two 16-bit words (2^16 = 1 modulo 2^16 - 1).
static __always_inline __u64 csum_add(__u64 sum, __u16 v) { return sum + v; }
static __always_inline __u64 csum_sub(__u64 sum, __u16 v) { return sum + (__u16)~v; }
static __always_inline __u64 csum_add32(__u64 sum, __u32 v) { return sum + v; }
static __always_inline __u16 csum_fold(__u64 sum) {
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffffffff) + (sum >> 32); // at most 2^32
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)sum;
}

// The most bytes `sum_to_end` covers: a frame XDP sees in one buffer is at most a page, and a
// longer datagram goes to user space.
#define CSUM_MAX 4096

// The RFC 1071 sum of the bytes from `p` to the end of the packet, an odd last byte padded with
// zero; -1 when there are more than CSUM_MAX. `p` must be an even offset from the checksummed
// data's start (the UDP header). A loop bounded for the verifier, 8 bytes a round; the end is the
// packet's, so trim anything past the datagram first.
static __always_inline int sum_to_end(__u8 *p, void *data_end, __u64 *out) {
    __u64 sum = 0;
    for (int i = 0; i < CSUM_MAX / 8; i++) {
        if ((void *)(p + 8) > data_end)
            break;
        sum += *(__u32 *)p;
        sum += *(__u32 *)(p + 4);
        p += 8;
    }
    if ((void *)(p + 8) <= data_end)
        return -1;
    if ((void *)(p + 4) <= data_end) {
        sum += *(__u32 *)p;
        p += 4;
    }
    if ((void *)(p + 2) <= data_end) {
        sum += *(__u16 *)p;
        p += 2;
    }
    if ((void *)(p + 1) <= data_end)
        sum += bpf_htons((__u16)*p << 8);
    *out = sum;
    return 0;
}

// After `sum_to_end`: every exit of its loop leaves the packet pointers of the same origin with a
// different proven range, which keeps the verifier from merging the exits' states and makes it walk
// the rest of the program once per exit (past its limit). So the caller forgets them: a compiler
// barrier forces fresh loads of ctx->data and ctx->data_end, whose bounds it checks anew, and every
// header pointer is derived again from them.
#define FORGET_LOOP_BOUNDS() asm volatile("" ::: "memory")

// The UDP pseudo-header's sum (RFC 768; RFC 8200 §8.1 for IPv6, whose 32-bit length's upper half
// is 0 here): the addresses, the protocol and the UDP length (network order).
static __always_inline __u64 pseudo4(__u32 saddr, __u32 daddr, __u16 len) {
    return csum_add(csum_add(csum_add32(csum_add32(0, saddr), daddr), bpf_htons(IPPROTO_UDP)), len);
}

static __always_inline __u64 pseudo6(const __u32 *saddr, const __u32 *daddr, __u16 len) {
    __u64 sum = csum_add(csum_add(0, bpf_htons(IPPROTO_UDP)), len);
#pragma unroll
    for (int i = 0; i < 4; i++)
        sum = csum_add32(csum_add32(sum, saddr[i]), daddr[i]);
    return sum;
}

// Whether a datagram whose bytes (UDP header included) sum to `all` and whose pseudo-header sums to
// `pseudo` may be relayed, by its checksum field `check`: a complete checksum that verifies (the
// sums add up to -0), the pseudo-header's sum alone (CHECKSUM_PARTIAL from a sender on this host:
// the kernel puts ~csum_tcpudp_magic / ~csum_ipv6_magic there, the folded pseudo-header sum), or,
// when `zero_ok` (IPv4), no checksum (0). Anything else is a corrupt datagram, for user space's
// kernel to drop.
static __always_inline int udp_csum_ok(__u64 all, __u64 pseudo, __u16 check, int zero_ok) {
    if (check == 0)
        return zero_ok;
    if (csum_fold(all + pseudo) == 0xffff)
        return 1;
    return check == csum_fold(pseudo);
}

// The sum `all` of a UDP datagram less its header's four words: the payload's sum.
static __always_inline __u64 less_udp_header(__u64 all, struct udphdr *udp) {
    all = csum_sub(all, udp->source);
    all = csum_sub(all, udp->dest);
    all = csum_sub(all, udp->len);
    return csum_sub(all, udp->check);
}

// The new UDP checksum: `body` (the new payload's sum) with the new pseudo-header `pseudo` and
// header (ports, `len`; the field itself as 0); a computed 0 is sent as 0xffff (RFC 768).
static __always_inline __u16 udp_csum(__u64 body, __u64 pseudo, __u16 sport, __u16 dport, __u16 len) {
    __u16 c = ~csum_fold(csum_add(csum_add(csum_add(body + pseudo, sport), dport), len));
    return c ? c : 0xffff;
}

// Trims anything past the first `len` bytes of the packet (Ethernet padding, which would be summed
// and relayed). Harmless if the packet then goes to user space: the stack trims it there too.
// Returns 0 on success; packet pointers are invalid after it.
static __always_inline int trim_to(struct xdp_md *ctx, __u32 len) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    long extra = (long)(data_end - data) - (long)len;
    if (extra < 0)
        return -1;
    if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
        return -1;
    return 0;
}

// The sum of the ChannelData padding bytes at payload offsets 4 + chlen .. (`pad` of them, at most
// 3), to take out of the datagram's sum: a byte at an even offset from the UDP header is its
// network-order word's high byte. -1 if the verifier's bounds say no.
static __always_inline int sum_padding(__u8 *payload, void *data_end, __u16 chlen, __u16 pad, __u64 *out) {
    __u64 sum = 0;
#pragma unroll
    for (int i = 0; i < 3; i++) {
        if (i < pad) {
            __u32 off = 4 + (__u32)chlen + i;
            if (off > 0x3fff)
                return -1;
            __u8 *b = payload + (off & 0x3fff);
            if ((void *)(b + 1) > data_end)
                return -1;
            sum += (off & 1) ? bpf_htons((__u16)*b) : bpf_htons((__u16)*b << 8);
        }
    }
    *out = sum;
    return 0;
}

// The IPv4 header checksum from scratch (no options: ihl is 5).
static __always_inline void ip_checksum(struct iphdr *ip) {
    __u16 *w = (__u16 *)ip;
    __u32 sum = 0;
    ip->check = 0;
#pragma unroll
    for (int i = 0; i < 10; i++)
        sum += w[i];
    ip->check = ~csum_fold(sum);
}

// Moves the Ethernet, IPv4 and UDP headers `delta` bytes (4 or -4) and adjusts the head.
// Returns 0 on success.
#define MOVE_HEADERS(name, size)                                                                      \
    static __always_inline int name(struct xdp_md *ctx, int delta) {                                  \
        void *data = (void *)(long)ctx->data;                                                          \
        void *data_end = (void *)(long)ctx->data_end;                                                  \
        __u8 buf[size];                                                                                \
        if (data + size > data_end)                                                                    \
            return -1;                                                                                 \
        __builtin_memcpy(buf, data, size);                                                             \
        if (bpf_xdp_adjust_head(ctx, delta))                                                           \
            return -1;                                                                                 \
        data = (void *)(long)ctx->data;                                                                \
        data_end = (void *)(long)ctx->data_end;                                                        \
        if (data + size > data_end)                                                                    \
            return -1;                                                                                 \
        __builtin_memcpy(data, buf, size);                                                             \
        return 0;                                                                                      \
    }
MOVE_HEADERS(move_headers, HDRS)
MOVE_HEADERS(move_headers6, HDRS6)

static __always_inline void swap_macs(struct ethhdr *eth) {
    __u8 tmp[ETH_ALEN];
    __builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

static __always_inline void count(__u32 slot, __u64 bytes) {
    struct counter *c = bpf_map_lookup_elem(&counters, &slot);
    if (c) {
        __sync_fetch_and_add(&c->packets, 1);
        __sync_fetch_and_add(&c->bytes, bytes);
    }
}

// Rewrites the addresses, ports and lengths of the packet at `data` (headers already in place)
// and sets both checksums: the IPv4 header's from scratch, the UDP one from `body`, the sum of the
// new datagram's payload (ChannelData header included client-bound), and the new headers.
static __always_inline void rewrite(struct iphdr *ip, struct udphdr *udp, struct value *v, __u16 new_udp_len,
                                    __u64 body) {
    __u16 new_len = bpf_htons(new_udp_len);
    ip->saddr = v->src_ip;
    ip->daddr = v->dst_ip;
    ip->tot_len = bpf_htons(new_udp_len + sizeof(struct iphdr));
    ip->ttl = 64;
    ip_checksum(ip);
    udp->source = v->src_port;
    udp->dest = v->dst_port;
    udp->len = new_len;
    udp->check = udp_csum(body, pseudo4(v->src_ip, v->dst_ip, new_len), v->src_port, v->dst_port, new_len);
}

// IPv6, as channel_relay does IPv4: no extension headers; the UDP checksum is mandatory (RFC 8200
// §8.1), so a datagram without one goes to user space, and the new one always has one.
static __always_inline void rewrite6(struct ipv6hdr *ip6, struct udphdr *udp, struct value6 *v, __u16 new_udp_len,
                                     __u64 body) {
    __u16 new_len = bpf_htons(new_udp_len);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        ip6->saddr.in6_u.u6_addr32[i] = v->src_ip[i];
        ip6->daddr.in6_u.u6_addr32[i] = v->dst_ip[i];
    }
    ip6->payload_len = new_len;
    ip6->hop_limit = 64;
    udp->source = v->src_port;
    udp->dest = v->dst_port;
    udp->len = new_len;
    udp->check = udp_csum(body, pseudo6(v->src_ip, v->dst_ip, new_len), v->src_port, v->dst_port, new_len);
}

static __always_inline int relay6(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (data + HDRS6 > data_end)
        return XDP_PASS;
    struct ethhdr *eth = data;
    struct ipv6hdr *ip6 = data + sizeof(*eth);
    if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
        return XDP_PASS;
    struct udphdr *udp = (void *)(ip6 + 1);
    __u16 udp_len = bpf_ntohs(udp->len);
    if (udp_len < sizeof(*udp) || bpf_ntohs(ip6->payload_len) != udp_len || udp->check == 0)
        return XDP_PASS;
    if ((void *)udp + udp_len > data_end)
        return XDP_PASS;
    __u16 payload_len = udp_len - sizeof(*udp);
    __u64 now = bpf_ktime_get_ns();
    __u8 *payload = (void *)(udp + 1);
    struct key6 k = {};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        k.src_ip[i] = ip6->saddr.in6_u.u6_addr32[i];
        k.dst_ip[i] = ip6->daddr.in6_u.u6_addr32[i];
    }
    k.src_port = udp->source;
    k.dst_port = udp->dest;
    __u64 all;

    if (payload_len >= 4 && (void *)(payload + 4) <= data_end && (payload[0] & 0xc0) == 0x40) {
        k.channel = *(__u16 *)payload;
        struct value6 *v = bpf_map_lookup_elem(&to_peer6, &k);
        if (v) {
            if (now >= v->expiry_ns)
                return XDP_PASS;
            __u16 chlen = bpf_ntohs(*(__u16 *)(payload + 2));
            if (4 + (__u32)chlen > payload_len || payload_len - 4 - chlen > 3)
                return XDP_PASS;
            __u16 pad = payload_len - 4 - chlen;
            if (chlen > 0x3000)
                return XDP_PASS;
            struct value6 nv = *v;
            // Sum the datagram as it came (nothing past it), check its checksum field.
            if (trim_to(ctx, HDRS6 + payload_len))
                return XDP_PASS;
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            if (data + HDRS6 + 4 > data_end)
                return XDP_DROP;
            ip6 = data + sizeof(struct ethhdr);
            udp = (void *)(ip6 + 1);
            payload = (void *)(udp + 1);
            if (sum_to_end((void *)udp, data_end, &all))
                return XDP_PASS;
            FORGET_LOOP_BOUNDS();
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            if (data + HDRS6 + 4 > data_end)
                return XDP_DROP;
            ip6 = data + sizeof(struct ethhdr);
            udp = (void *)(ip6 + 1);
            payload = (void *)(udp + 1);
            __u64 pseudo = pseudo6(ip6->saddr.in6_u.u6_addr32, ip6->daddr.in6_u.u6_addr32, udp->len);
            if (!udp_csum_ok(all, pseudo, udp->check, 0))
                return XDP_PASS;
            // The peer gets the application bytes: less the UDP header, ChannelData header, padding.
            __u64 padding;
            if (sum_padding(payload, data_end, chlen, pad, &padding))
                return XDP_PASS;
            __u64 body = less_udp_header(all, udp);
            body = csum_sub(body, *(__u16 *)payload);
            body = csum_sub(body, *(__u16 *)(payload + 2));
            body = csum_sub(body, csum_fold(padding));
            __u16 new_udp_len = sizeof(*udp) + chlen;
            rewrite6(ip6, udp, &nv, new_udp_len, body);
            if (move_headers6(ctx, 4))
                return XDP_DROP;
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            long extra = (long)(data_end - data) - (long)(HDRS6 + chlen);
            if (extra < 0)
                return XDP_DROP;
            if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
                return XDP_DROP;
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            eth = data;
            if ((void *)(eth + 1) > data_end)
                return XDP_DROP;
            swap_macs(eth);
            count(nv.slot, chlen);
            return XDP_TX;
        }
        k.channel = 0;
    }

    struct value6 *v = bpf_map_lookup_elem(&to_client6, &k);
    if (!v)
        return XDP_PASS;
    if (now >= v->expiry_ns)
        return XDP_PASS;
    struct value6 nv = *v;
    if (trim_to(ctx, HDRS6 + payload_len))
        return XDP_PASS;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS6 > data_end)
        return XDP_DROP;
    ip6 = data + sizeof(struct ethhdr);
    udp = (void *)(ip6 + 1);
    if (sum_to_end((void *)udp, data_end, &all))
        return XDP_PASS;
    FORGET_LOOP_BOUNDS();
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS6 > data_end)
        return XDP_DROP;
    ip6 = data + sizeof(struct ethhdr);
    udp = (void *)(ip6 + 1);
    __u64 pseudo = pseudo6(ip6->saddr.in6_u.u6_addr32, ip6->daddr.in6_u.u6_addr32, udp->len);
    if (!udp_csum_ok(all, pseudo, udp->check, 0))
        return XDP_PASS;
    // The client gets the peer's bytes behind a ChannelData header (same parity: offset 8 → 12).
    __u16 chlen_be = bpf_htons(payload_len);
    __u64 body = csum_add(csum_add(less_udp_header(all, udp), nv.channel), chlen_be);
    rewrite6(ip6, udp, &nv, udp_len + 4, body);
    if (move_headers6(ctx, -4))
        return XDP_DROP;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS6 + 4 > data_end)
        return XDP_DROP;
    __u16 *ch = data + HDRS6;
    ch[0] = nv.channel;
    ch[1] = chlen_be;
    eth = data;
    swap_macs(eth);
    count(nv.slot, payload_len);
    return XDP_TX;
}

SEC("xdp")
int channel_relay(struct xdp_md *ctx) {

    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (data + HDRS > data_end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(ETH_P_IPV6))
        return relay6(ctx);
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = data + sizeof(*eth);
    // No options, no fragments (MF or an offset), UDP.
    if (ip->ihl != 5 || ip->version != 4 || ip->protocol != IPPROTO_UDP)
        return XDP_PASS;
    if (ip->frag_off & bpf_htons(0x3fff))
        return XDP_PASS;
    struct udphdr *udp = (void *)(ip + 1);
    __u16 udp_len = bpf_ntohs(udp->len);
    if (udp_len < sizeof(*udp) || bpf_ntohs(ip->tot_len) != udp_len + sizeof(*ip))
        return XDP_PASS;
    if ((void *)udp + udp_len > data_end)
        return XDP_PASS;
    __u16 payload_len = udp_len - sizeof(*udp);
    __u64 now = bpf_ktime_get_ns();
    __u8 *payload = (void *)(udp + 1);
    __u64 all;

    struct key k = {
        .src_ip = ip->saddr,
        .dst_ip = ip->daddr,
        .src_port = udp->source,
        .dst_port = udp->dest,
    };

    // client → peer: ChannelData, channel numbers 0x4000-0x4FFF (RFC 8656 §12), or up to 0x7FFF
    // (RFC 5766) which the server takes unless `strict-rfc8656`; only bound numbers are in the map.
    if (payload_len >= 4 && (void *)(payload + 4) <= data_end && (payload[0] & 0xc0) == 0x40) {
        k.channel = *(__u16 *)payload;
        struct value *v = bpf_map_lookup_elem(&to_peer, &k);
        if (v) {
            if (now >= v->expiry_ns)
                return XDP_PASS;
            __u16 chlen = bpf_ntohs(*(__u16 *)(payload + 2));
            // Over UDP the datagram may carry up to 3 bytes of padding (RFC 8656 §12.5).
            if (4 + (__u32)chlen > payload_len || payload_len - 4 - chlen > 3)
                return XDP_PASS;
            __u16 pad = payload_len - 4 - chlen;
            // The verifier wants packet offsets well below 64 KiB; XDP frames are one page anyway.
            if (chlen > 0x3000)
                return XDP_PASS;
            struct value nv = *v;
            // Sum the datagram as it came (nothing past it), check its checksum field.
            if (trim_to(ctx, sizeof(struct ethhdr) + sizeof(struct iphdr) + udp_len))
                return XDP_PASS;
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            if (data + HDRS + 4 > data_end)
                return XDP_DROP;
            ip = data + sizeof(struct ethhdr);
            udp = (void *)(ip + 1);
            payload = (void *)(udp + 1);
            if (sum_to_end((void *)udp, data_end, &all))
                return XDP_PASS;
            FORGET_LOOP_BOUNDS();
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            if (data + HDRS + 4 > data_end)
                return XDP_DROP;
            ip = data + sizeof(struct ethhdr);
            udp = (void *)(ip + 1);
            payload = (void *)(udp + 1);
            if (!udp_csum_ok(all, pseudo4(ip->saddr, ip->daddr, udp->len), udp->check, 1))
                return XDP_PASS;
            // The peer gets the application bytes: less the UDP header, ChannelData header, padding
            // (the application bytes start at UDP offset 12 and end up at 8: the same parity).
            __u64 padding;
            if (sum_padding(payload, data_end, chlen, pad, &padding))
                return XDP_PASS;
            __u64 body = less_udp_header(all, udp);
            body = csum_sub(body, *(__u16 *)payload);
            body = csum_sub(body, *(__u16 *)(payload + 2));
            body = csum_sub(body, csum_fold(padding));
            __u16 new_udp_len = sizeof(*udp) + chlen;
            rewrite(ip, udp, &nv, new_udp_len, body);
            if (move_headers(ctx, 4))
                return XDP_DROP;
            // Trim the padding.
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            long extra = (long)(data_end - data) - (long)(sizeof(struct ethhdr) + sizeof(struct iphdr) + new_udp_len);
            if (extra < 0)
                return XDP_DROP;
            if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
                return XDP_DROP;
            data = (void *)(long)ctx->data;
            data_end = (void *)(long)ctx->data_end;
            eth = data;
            if ((void *)(eth + 1) > data_end)
                return XDP_DROP;
            swap_macs(eth);
            count(nv.slot, chlen);
            return XDP_TX;
        }
        // Not ours: fall through to the peer map (a peer datagram may start with 0x4X too).
        k.channel = 0;
    }

    // peer → client: a datagram to a relayed address with a bound channel.
    struct value *v = bpf_map_lookup_elem(&to_client, &k);
    if (!v)
        return XDP_PASS;
    if (now >= v->expiry_ns)
        return XDP_PASS;
    struct value nv = *v;
    // Anything past the IP packet (Ethernet padding) would be summed and end up inside the payload:
    // drop it first.
    if (trim_to(ctx, sizeof(struct ethhdr) + sizeof(struct iphdr) + udp_len))
        return XDP_PASS;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS > data_end)
        return XDP_DROP;
    ip = data + sizeof(struct ethhdr);
    udp = (void *)(ip + 1);
    if (sum_to_end((void *)udp, data_end, &all))
        return XDP_PASS;
    FORGET_LOOP_BOUNDS();
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS > data_end)
        return XDP_DROP;
    ip = data + sizeof(struct ethhdr);
    udp = (void *)(ip + 1);
    if (!udp_csum_ok(all, pseudo4(ip->saddr, ip->daddr, udp->len), udp->check, 1))
        return XDP_PASS;
    // The client gets the peer's bytes behind a ChannelData header (same parity: offset 8 → 12).
    __u16 chlen_be = bpf_htons(payload_len);
    __u64 body = csum_add(csum_add(less_udp_header(all, udp), nv.channel), chlen_be);
    __u16 new_udp_len = udp_len + 4;
    rewrite(ip, udp, &nv, new_udp_len, body);
    if (move_headers(ctx, -4))
        return XDP_DROP;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (data + HDRS + 4 > data_end)
        return XDP_DROP;
    __u16 *ch = data + HDRS;
    ch[0] = nv.channel;
    ch[1] = chlen_be;
    eth = data;
    swap_macs(eth);
    count(nv.slot, payload_len);
    return XDP_TX;
}

// For the other end of a veth pair: XDP_TX/redirect onto a veth needs its peer to run XDP (or GRO).
SEC("xdp")
int pass_all(struct xdp_md *ctx) { return XDP_PASS; }

char _license[] SEC("license") = "Dual MIT/GPL";
