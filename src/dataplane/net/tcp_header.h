#pragma once
// The TCP header (RFC 9293 3.1) and its options: validation and decoding of
// received segments, construction of the header and checksum of sent ones.
//
// The parser applies the options' own "ignore" rules so that the state
// machine acts only on what the RFCs let it act on:
// - MSS, Window Scale and SACK-permitted count only on segments with SYN
//   (RFC 9293 3.2 MUST-65, RFC 7323 2.2, RFC 2018 2);
// - TSecr counts only when ACK is set (RFC 7323 3.2): ts_echo reads 0 otherwise;
// - a known option whose length is not its defined length is skipped by that
//   length as if unknown (Linux and FreeBSD do the same; RFC 1122 1.2.2);
// - the window scale shift is clamped to 14 (RFC 7323 2.3).
// What makes a segment unusable (lengths, checksum, option syntax, port 0)
// is a Rejection; whether it earns a RST is the caller's decision.

#include <cstdint>

#include "dataplane/net/checksum.h"
#include "dataplane/net/drop_reason.h"
#include "dataplane/net/ipv4.h"
#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::net::tcp {

constexpr uint16_t kMinHeaderLen = 20;
constexpr uint16_t kMaxHeaderLen = 60;
constexpr uint8_t kMaxOptionsLen = kMaxHeaderLen - kMinHeaderLen;

constexpr uint8_t kFlagFin = 0x01;
constexpr uint8_t kFlagSyn = 0x02;
constexpr uint8_t kFlagRst = 0x04;
constexpr uint8_t kFlagPsh = 0x08;
constexpr uint8_t kFlagAck = 0x10;
constexpr uint8_t kFlagUrg = 0x20;
constexpr uint8_t kFlagEce = 0x40;
constexpr uint8_t kFlagCwr = 0x80;

// Option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
constexpr uint8_t kOptEnd = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptMss = 2;
constexpr uint8_t kOptWindowScale = 3;
constexpr uint8_t kOptSackPermitted = 4;
constexpr uint8_t kOptSack = 5;
constexpr uint8_t kOptTimestamps = 8;

constexpr uint8_t kOptMssLen = 4;
constexpr uint8_t kOptWindowScaleLen = 3;
constexpr uint8_t kOptSackPermittedLen = 2;
constexpr uint8_t kOptTimestampsLen = 10;
constexpr uint8_t kOptSackBaseLen = 2;
constexpr uint8_t kSackBlockLen = 8;

// RFC 7323 2.3: a larger shift would let the window exceed 2^30 and break
// the sequence-space comparisons of RFC 9293 3.4.
constexpr uint8_t kMaxWindowScale = 14;

// 40 option bytes hold at most 4 SACK blocks: (40 - 2) / 8.
constexpr uint8_t kMaxSackBlocks = 4;

struct SackBlock {
  uint32_t left;   // first sequence number of the block
  uint32_t right;  // sequence number after the block: [left, right)
};

struct Options {
  uint16_t mss = 0;  // 0: absent
  bool has_window_scale = false;
  uint8_t window_scale = 0;  // parser clamps to kMaxWindowScale
  bool sack_permitted = false;
  bool has_timestamps = false;
  uint32_t ts_value = 0;
  uint32_t ts_echo = 0;
  uint8_t sack_count = 0;  // blocks in sack[], in the order they appeared
  SackBlock sack[kMaxSackBlocks];
};

// A received segment. Host byte order; payload points into the parsed buffer.
struct Segment {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // raw SEG.WND, not scaled
  uint16_t urgent = 0;
  uint16_t header_len = 0;  // bytes, options included
  const uint8_t* payload = nullptr;
  uint16_t payload_len = 0;
  Options options;

  bool has(uint8_t flag) const noexcept { return (flags & flag) != 0; }
  // RFC 9293 3.3.1: SYN and FIN each occupy one sequence number.
  uint32_t seg_len() const noexcept {
    return uint32_t{payload_len} + ((flags & kFlagSyn) != 0) + ((flags & kFlagFin) != 0);
  }
};

// data/len: the IP payload, i.e. the whole TCP segment. src/dst: the IPv4
// addresses of the datagram, for the pseudo-header. On a rejection the
// contents of out are unspecified.
Rejection parse(const uint8_t* data, uint16_t len, Ipv4Address src, Ipv4Address dst,
                Segment& out) noexcept;

// parse() in two steps, for a receive path that sums the payload while it
// copies it into a connection's buffer (ReceiveBuffer::place) instead of
// reading it once to verify and once more to copy. parse_lengths checks the
// lengths and sums the pseudo-header and the header; the caller adds the
// payload's sum (checksum_ok) and only then calls parse_verified for the
// rest. Until the checksum is right, the fields below may be used to find
// the connection and decide where the payload goes, never to act on.
struct UnverifiedSegment {
  const uint8_t* data = nullptr;  // the segment, as passed to parse_lengths
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint16_t header_len = 0;
  const uint8_t* payload = nullptr;
  uint16_t payload_len = 0;
  uint16_t header_sum = 0;  // pseudo-header and header (checksum.h), folded
};

Rejection parse_lengths(const uint8_t* data, uint16_t len, Ipv4Address src, Ipv4Address dst,
                        UnverifiedSegment& out) noexcept;

// Whether the segment's checksum is right, given the sum of its payload. A
// correct segment sums to 0xffff with its checksum field (RFC 1071).
inline bool checksum_ok(const UnverifiedSegment& raw, uint16_t payload_sum) noexcept {
  return checksum_add(raw.header_sum, payload_sum) == 0xffff;
}

// The rest of parse() for a segment whose checksum_ok held.
Rejection parse_verified(const UnverifiedSegment& raw, Segment& out) noexcept;

struct HeaderFields {
  uint16_t src_port;
  uint16_t dst_port;
  uint32_t seq;
  uint32_t ack;
  uint8_t flags;
  uint16_t window;  // already scaled down by the caller
};

// How many of o.sack[0 .. o.sack_count) write_header puts on the wire: the
// first ones, as many as fit beside the other options (4 alone, 3 with
// timestamps). RFC 2018 4: the caller orders them most recent first.
uint8_t sack_blocks_written(const Options& o) noexcept;

// Bytes of options write_header produces for o: a multiple of 4, <= 40.
uint8_t options_length(const Options& o) noexcept;

// Writes the header and o's options at at (kMinHeaderLen + options_length(o)
// bytes; nothing beyond). Urgent pointer, reserved bits and checksum are 0.
// Returns the header length. The layout is that of RFC 7323 Appendix A, the
// one Linux sends, so that 32-bit fields stay aligned and receivers' fast
// paths (NOP,NOP,TS at offset 20) match:
//   MSS | SACK-permitted,TS  or  NOP,NOP,TS | NOP,WS | NOP,NOP,SACK-permitted
//   (without TS) | NOP,NOP,SACK blocks.
uint16_t write_header(uint8_t* at, const HeaderFields& h, const Options& o) noexcept;

// write_header with the checksum filled in, for a segment whose payload_len
// bytes of payload are already in place after the header and were summed
// while they were copied there (checksum_copy: payload_sum). The header's
// share of the sum comes from the values as they are written, so neither
// the header nor the payload is read back.
uint16_t write_header(uint8_t* at, const HeaderFields& h, const Options& o, uint16_t payload_len,
                      uint16_t payload_sum, Ipv4Address src, Ipv4Address dst) noexcept;

// Computes the checksum over the IPv4 pseudo-header and tcp_len bytes of
// header and payload at segment, and stores it in place (the field's old
// value does not matter).
void write_checksum(uint8_t* segment, uint16_t tcp_len, Ipv4Address src,
                    Ipv4Address dst) noexcept;

// The one's-complement sum of the IPv4 pseudo-header (RFC 9293 3.1: source,
// destination, zero, protocol 6, TCP length), folded to 16 bits and not
// complemented, in the byte order of checksum.h and rte_raw_cksum (the wire
// bytes read as native 16-bit words). It can be added to a checksum() result,
// or stored with memcpy into the checksum field as-is for checksum offload
// (RTE_MBUF_F_TX_TCP_CKSUM expects exactly that value there).
inline uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, uint16_t tcp_len) noexcept {
  // Summed as big-endian words, then swapped into the native order: a
  // one's-complement sum commutes with byte swapping (RFC 1071 2(B)).
  const uint16_t sum = checksum_fold(uint64_t{src >> 16} + (src & 0xffff) + (dst >> 16) +
                                     (dst & 0xffff) + ipv4::kProtocolTcp + tcp_len);
  return __builtin_bswap16(sum);
}

}  // namespace mtlsgw::net::tcp
