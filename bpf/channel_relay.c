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
// swapped). The IPv4 header checksum is recomputed; the UDP checksum is updated incrementally
// (RFC 1624), and a datagram sent without one (0) keeps none.
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

static __always_inline __u32 csum_add(__u32 sum, __u16 v) { return sum + v; }
static __always_inline __u32 csum_sub(__u32 sum, __u16 v) { return sum + (__u16)~v; }
static __always_inline __u32 csum_add32(__u32 sum, __u32 v) { return csum_add(csum_add(sum, v >> 16), v & 0xffff); }
static __always_inline __u32 csum_sub32(__u32 sum, __u32 v) { return csum_sub(csum_sub(sum, v >> 16), v & 0xffff); }
static __always_inline __u16 csum_fold(__u32 sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)sum;
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
// and finishes the checksums; `csum` is the UDP checksum sum so far (0xffff-complemented old one
// with the removed/added payload words accounted), `old_len` the old UDP length (host order).
static __always_inline void rewrite(struct iphdr *ip, struct udphdr *udp, struct value *v, __u16 new_udp_len,
                                    __u32 sum, int had_csum) {
    __u16 old_len = udp->len;
    __u16 new_len = bpf_htons(new_udp_len);
    // Pseudo-header addresses and length, UDP ports and length.
    sum = csum_sub32(sum, ip->saddr);
    sum = csum_sub32(sum, ip->daddr);
    sum = csum_add32(sum, v->src_ip);
    sum = csum_add32(sum, v->dst_ip);
    sum = csum_sub(sum, udp->source);
    sum = csum_sub(sum, udp->dest);
    sum = csum_add(sum, v->src_port);
    sum = csum_add(sum, v->dst_port);
    sum = csum_sub(sum, old_len);
    sum = csum_sub(sum, old_len);
    sum = csum_add(sum, new_len);
    sum = csum_add(sum, new_len);

    ip->saddr = v->src_ip;
    ip->daddr = v->dst_ip;
    ip->tot_len = bpf_htons(new_udp_len + sizeof(struct iphdr));
    ip->ttl = 64;
    ip_checksum(ip);
    udp->source = v->src_port;
    udp->dest = v->dst_port;
    udp->len = new_len;
    if (had_csum) {
        __u16 c = ~csum_fold(sum);
        udp->check = c ? c : 0xffff;
    } else {
        udp->check = 0;
    }
}

// IPv6, as channel_relay does IPv4: no extension headers; the UDP checksum is mandatory (RFC 8200
// §8.1), so a datagram without one goes to user space.
static __always_inline void rewrite6(struct ipv6hdr *ip6, struct udphdr *udp, struct value6 *v, __u16 new_udp_len,
                                     __u32 sum) {
    __u16 old_len = udp->len;
    __u16 new_len = bpf_htons(new_udp_len);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        sum = csum_sub32(sum, ip6->saddr.in6_u.u6_addr32[i]);
        sum = csum_sub32(sum, ip6->daddr.in6_u.u6_addr32[i]);
        sum = csum_add32(sum, v->src_ip[i]);
        sum = csum_add32(sum, v->dst_ip[i]);
    }
    sum = csum_sub(sum, udp->source);
    sum = csum_sub(sum, udp->dest);
    sum = csum_add(sum, v->src_port);
    sum = csum_add(sum, v->dst_port);
    sum = csum_sub(sum, old_len);
    sum = csum_sub(sum, old_len);
    sum = csum_add(sum, new_len);
    sum = csum_add(sum, new_len);
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
    __u16 c = ~csum_fold(sum);
    udp->check = c ? c : 0xffff;
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
            __u32 sum = (__u16)~udp->check;
            sum = csum_sub(sum, *(__u16 *)payload);
            sum = csum_sub(sum, *(__u16 *)(payload + 2));
#pragma unroll
            for (int i = 0; i < 3; i++) {
                if (i < pad) {
                    __u32 off = 4 + (__u32)chlen + i;
                    if (off > 0x3fff)
                        return XDP_PASS;
                    __u8 *b = payload + (off & 0x3fff);
                    if ((void *)(b + 1) > data_end)
                        return XDP_PASS;
                    __u16 w = (off & 1) ? (__u16)(*b) << 8 : (__u16)(*b);
                    sum = csum_sub(sum, w);
                }
            }
            struct value6 nv = *v;
            __u16 new_udp_len = sizeof(*udp) + chlen;
            rewrite6(ip6, udp, &nv, new_udp_len, sum);
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
    __u32 sum = (__u16)~udp->check;
    __u16 chlen_be = bpf_htons(payload_len);
    sum = csum_add(sum, nv.channel);
    sum = csum_add(sum, chlen_be);
    rewrite6(ip6, udp, &nv, udp_len + 4, sum);
    long extra = (long)(data_end - data) - (long)(HDRS6 + payload_len);
    if (extra < 0)
        return XDP_DROP;
    if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
        return XDP_DROP;
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
            int had_csum = udp->check != 0;
            __u32 sum = (__u16)~udp->check;
            sum = csum_sub(sum, *(__u16 *)payload);
            sum = csum_sub(sum, *(__u16 *)(payload + 2));
            // Padding bytes: at UDP offset 8 + 4 + chlen + i; even offsets are a word's high byte.
            // (Checksum words are in network order in memory, read as host __u16: the byte at an
            // even offset is the low byte of the little-endian load.)
#pragma unroll
            for (int i = 0; i < 3; i++) {
                if (i < pad) {
                    __u32 off = 4 + (__u32)chlen + i;
                    if (off > 0x3fff)
                        return XDP_PASS;
                    __u8 *b = payload + (off & 0x3fff);
                    if ((void *)(b + 1) > data_end)
                        return XDP_PASS;
                    __u16 w = (off & 1) ? (__u16)(*b) << 8 : (__u16)(*b);
                    sum = csum_sub(sum, w);
                }
            }
            struct value nv = *v;
            __u16 new_udp_len = sizeof(*udp) + chlen;
            rewrite(ip, udp, &nv, new_udp_len, sum, had_csum);
            if (move_headers(ctx, 4))
                return XDP_DROP;
            // Trim the padding and anything past the IP packet.
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
    int had_csum = udp->check != 0;
    __u32 sum = (__u16)~udp->check;
    __u16 chlen_be = bpf_htons(payload_len);
    sum = csum_add(sum, nv.channel);
    sum = csum_add(sum, chlen_be);
    __u16 new_udp_len = udp_len + 4;
    rewrite(ip, udp, &nv, new_udp_len, sum, had_csum);
    // Anything past the IP packet (Ethernet padding) would end up inside the payload: drop it first.
    long extra = (long)(data_end - data) - (long)(sizeof(struct ethhdr) + sizeof(struct iphdr) + udp_len);
    if (extra < 0)
        return XDP_DROP;
    if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
        return XDP_DROP;
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
