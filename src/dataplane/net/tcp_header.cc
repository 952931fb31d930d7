#include "dataplane/net/tcp_header.h"

#include <rte_ip.h>

#include <cstring>

#include "dataplane/net/ipv4.h"
#include "dataplane/net/wire.h"

namespace mtlsgw::net::tcp {
namespace {

static_assert((kMaxOptionsLen - kOptSackBaseLen) / kSackBlockLen == kMaxSackBlocks,
              "a SACK option that fits in the header always fits in Options::sack");
static_assert((kMaxOptionsLen - 2 - kOptSackBaseLen) / kSackBlockLen == kMaxSackBlocks,
              "with NOP,NOP in front, the writer never has room for more than Options::sack");

// Byte offsets in the fixed header (RFC 9293 3.1).
constexpr uint8_t kOffSeq = 4;
constexpr uint8_t kOffAck = 8;
constexpr uint8_t kOffDataOffset = 12;
constexpr uint8_t kOffFlags = 13;
constexpr uint8_t kOffWindow = 14;
constexpr uint8_t kOffChecksum = 16;
constexpr uint8_t kOffUrgent = 18;

// NOP,NOP,TS as one big-endian word: the layout RFC 7323 Appendix A
// recommends and every mainstream stack sends on established connections.
constexpr uint32_t kAlignedTimestampsWord = uint32_t{kOptNop} << 24 | uint32_t{kOptNop} << 16 |
                                            uint32_t{kOptTimestamps} << 8 | kOptTimestampsLen;
constexpr uint16_t kAlignedTimestampsHeaderLen = kMinHeaderLen + 2 + kOptTimestampsLen;

constexpr uint32_t fold(uint32_t sum) noexcept {
  sum = (sum & 0xffff) + (sum >> 16);
  return (sum & 0xffff) + (sum >> 16);
}

void read_timestamps(const uint8_t* value, Options& o) noexcept {
  o.has_timestamps = true;
  o.ts_value = load_be32(value);
  o.ts_echo = load_be32(value + 4);
}

// The general option walk (RFC 9293 3.1 "Options"). False on a syntax error:
// a kind other than EOL/NOP without room for its length byte, a length
// below 2 (RFC 9293 3.2 MUST-7: a zero length must not hang the walk), or a
// length running past the header.
bool parse_options(const uint8_t* p, uint8_t len, bool syn, Options& o) noexcept {
  uint8_t at = 0;
  while (at < len) {
    const uint8_t kind = p[at];
    if (kind == kOptEnd) break;  // the rest is padding
    if (kind == kOptNop) {
      ++at;
      continue;
    }
    const uint8_t room = static_cast<uint8_t>(len - at);
    if (room < 2) return false;
    const uint8_t opt_len = p[at + 1];
    if (opt_len < 2 || opt_len > room) return false;
    const uint8_t* value = p + at + 2;
    switch (kind) {
      case kOptMss:
        if (syn && opt_len == kOptMssLen) o.mss = load_be16(value);
        break;
      case kOptWindowScale:
        if (syn && opt_len == kOptWindowScaleLen) {
          o.has_window_scale = true;
          o.window_scale = value[0] < kMaxWindowScale ? value[0] : kMaxWindowScale;
        }
        break;
      case kOptSackPermitted:
        if (syn && opt_len == kOptSackPermittedLen) o.sack_permitted = true;
        break;
      case kOptTimestamps:
        if (opt_len == kOptTimestampsLen) read_timestamps(value, o);
        break;
      case kOptSack:
        // RFC 2018 3: 2 + 8n bytes, n >= 1; at most 4 fit in 40 bytes.
        if (opt_len >= kOptSackBaseLen + kSackBlockLen &&
            (opt_len - kOptSackBaseLen) % kSackBlockLen == 0) {
          const uint8_t n = static_cast<uint8_t>((opt_len - kOptSackBaseLen) / kSackBlockLen);
          for (uint8_t b = 0; b < n; ++b) {
            o.sack[b].left = load_be32(value + b * kSackBlockLen);
            o.sack[b].right = load_be32(value + b * kSackBlockLen + 4);
          }
          o.sack_count = n;
        }
        break;
      default:
        break;  // RFC 9293 3.2 MUST-6: skip unknown kinds by their length
    }
    at = static_cast<uint8_t>(at + opt_len);
  }
  return true;
}

uint8_t fixed_options_length(const Options& o) noexcept {
  // MSS; SACK-permitted+TS or NOP,NOP+TS; NOP+WS; NOP,NOP+SACK-permitted.
  return static_cast<uint8_t>((o.mss != 0 ? 4 : 0) + (o.has_timestamps ? 12 : 0) +
                              (o.has_window_scale ? 4 : 0) +
                              (o.sack_permitted && !o.has_timestamps ? 4 : 0));
}

}  // namespace

Rejection parse(const uint8_t* data, uint16_t len, Ipv4Address src, Ipv4Address dst,
                Segment& out) noexcept {
  if (len < kMinHeaderLen) return DropReason::tcp_truncated;
  // The low four bits of byte 12 are reserved (RFC 9293 3.1: ignored on
  // receipt; AccECN's AE bit lives there).
  const uint16_t header_len = static_cast<uint16_t>((data[kOffDataOffset] >> 4) * 4);
  if (header_len < kMinHeaderLen || header_len > len) return DropReason::tcp_bad_header_length;
  // Checksum before anything else is believed: a corrupted segment is
  // counted as corrupted, not as whatever its garbled fields look like.
  // A correct segment sums to 0xffff with its checksum field (RFC 1071).
  if (fold(pseudo_header_sum(src, dst, len) + rte_raw_cksum(data, len)) != 0xffff) {
    return DropReason::tcp_bad_checksum;
  }
  out.src_port = load_be16(data);
  out.dst_port = load_be16(data + 2);
  // Port 0 is reserved (RFC 6335 6): no endpoint can own it.
  if ((out.src_port == 0) | (out.dst_port == 0)) return DropReason::tcp_bad_port;
  out.seq = load_be32(data + kOffSeq);
  out.ack = load_be32(data + kOffAck);
  out.flags = data[kOffFlags];
  out.window = load_be16(data + kOffWindow);
  out.urgent = load_be16(data + kOffUrgent);
  out.header_len = header_len;
  out.payload = data + header_len;
  out.payload_len = static_cast<uint16_t>(len - header_len);

  Options& o = out.options;
  o = Options{};
  const uint8_t* const opt = data + kMinHeaderLen;
  // Most segments of an established connection carry no options or exactly
  // NOP,NOP,TS: those two skip the walk (RFC 7323 Appendix A's point).
  if (header_len == kAlignedTimestampsHeaderLen && load_be32(opt) == kAlignedTimestampsWord) {
    read_timestamps(opt + 2 + 2, o);
  } else if (header_len != kMinHeaderLen &&
             !parse_options(opt, static_cast<uint8_t>(header_len - kMinHeaderLen),
                            (out.flags & kFlagSyn) != 0, o)) {
    return DropReason::tcp_bad_options;
  }
  // RFC 7323 3.2: TSecr is meaningful only when ACK is set.
  if ((out.flags & kFlagAck) == 0) o.ts_echo = 0;
  return std::nullopt;
}

uint8_t sack_blocks_written(const Options& o) noexcept {
  if (o.sack_count == 0) return 0;
  // The fixed options take at most 20 bytes, so room is at least 20 and
  // NOP,NOP + kind/length + 2 blocks always fit.
  const uint8_t room = static_cast<uint8_t>(kMaxOptionsLen - fixed_options_length(o));
  const uint8_t n = static_cast<uint8_t>((room - 2 - kOptSackBaseLen) / kSackBlockLen);
  return o.sack_count < n ? o.sack_count : n;
}

uint8_t options_length(const Options& o) noexcept {
  const uint8_t blocks = sack_blocks_written(o);
  return static_cast<uint8_t>(fixed_options_length(o) +
                              (blocks != 0 ? 2 + kOptSackBaseLen + blocks * kSackBlockLen : 0));
}

uint16_t write_header(uint8_t* at, const HeaderFields& h, const Options& o) noexcept {
  store_be16(at, h.src_port);
  store_be16(at + 2, h.dst_port);
  store_be32(at + kOffSeq, h.seq);
  store_be32(at + kOffAck, h.ack);
  uint8_t* p = at + kMinHeaderLen;
  if (o.mss != 0) {
    p[0] = kOptMss;
    p[1] = kOptMssLen;
    store_be16(p + 2, o.mss);
    p += 4;
  }
  if (o.has_timestamps) {
    // RFC 7323 Appendix A: on a SYN, SACK-permitted fills the two bytes
    // that would otherwise be NOP padding in front of TS.
    if (o.sack_permitted) {
      p[0] = kOptSackPermitted;
      p[1] = kOptSackPermittedLen;
    } else {
      p[0] = kOptNop;
      p[1] = kOptNop;
    }
    p[2] = kOptTimestamps;
    p[3] = kOptTimestampsLen;
    store_be32(p + 4, o.ts_value);
    store_be32(p + 8, o.ts_echo);
    p += 12;
  }
  if (o.has_window_scale) {
    p[0] = kOptNop;
    p[1] = kOptWindowScale;
    p[2] = kOptWindowScaleLen;
    // RFC 7323 2.3: a shift above 14 is an error; never put one on the wire.
    p[3] = o.window_scale < kMaxWindowScale ? o.window_scale : kMaxWindowScale;
    p += 4;
  }
  if (o.sack_permitted && !o.has_timestamps) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSackPermitted;
    p[3] = kOptSackPermittedLen;
    p += 4;
  }
  const uint8_t blocks = sack_blocks_written(o);
  if (blocks != 0) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSack;
    p[3] = static_cast<uint8_t>(kOptSackBaseLen + blocks * kSackBlockLen);
    p += 4;
    for (uint8_t b = 0; b < blocks; ++b) {
      store_be32(p, o.sack[b].left);
      store_be32(p + 4, o.sack[b].right);
      p += kSackBlockLen;
    }
  }
  const uint16_t header_len = static_cast<uint16_t>(p - at);
  // Reserved bits zero (RFC 9293 3.1); no urgent data is ever sent.
  at[kOffDataOffset] = static_cast<uint8_t>((header_len / 4) << 4);
  at[kOffFlags] = h.flags;
  store_be16(at + kOffWindow, h.window);
  store_be16(at + kOffChecksum, 0);
  store_be16(at + kOffUrgent, 0);
  return header_len;
}

void write_checksum(uint8_t* segment, uint16_t tcp_len, Ipv4Address src,
                    Ipv4Address dst) noexcept {
  store_be16(segment + kOffChecksum, 0);
  const uint16_t checksum = static_cast<uint16_t>(
      ~fold(pseudo_header_sum(src, dst, tcp_len) + rte_raw_cksum(segment, tcp_len)));
  // Summed in wire order (see pseudo_header_sum), so stored as-is.
  std::memcpy(segment + kOffChecksum, &checksum, sizeof checksum);
}

uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, uint16_t tcp_len) noexcept {
  // Summed as big-endian words, then swapped into rte_raw_cksum's order:
  // a one's-complement sum commutes with byte swapping (RFC 1071 2(B)).
  const uint32_t sum = fold((src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
                            ipv4::kProtocolTcp + tcp_len);
  return __builtin_bswap16(static_cast<uint16_t>(sum));
}

}  // namespace mtlsgw::net::tcp
