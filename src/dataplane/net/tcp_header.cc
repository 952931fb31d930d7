#include "dataplane/net/tcp_header.h"

#include <cstring>

#include "dataplane/net/checksum.h"
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

void read_timestamps(const uint8_t* value, Options& o) noexcept {
  o.has_timestamps = true;
  o.ts_value = load_be32(value);
  o.ts_echo = load_be32(value + 4);
}

// The general option walk (RFC 9293 3.1 "Options"). False on a syntax error:
// a kind other than EOL/NOP without room for its length byte, a length
// below 2 (RFC 9293 3.2 MUST-7: a zero length must not hang the walk), or a
// length running past the header. Out of line: inlined, its registers made
// every parse save and restore six of them, also on the NOP,NOP,TS path.
[[gnu::noinline]] bool parse_options(const uint8_t* p, uint8_t len, bool syn, Options& o) noexcept {
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
  UnverifiedSegment raw;
  if (Rejection r = parse_lengths(data, len, src, dst, raw)) return r;
  // Checksum before anything else is believed: a corrupted segment is
  // counted as corrupted, not as whatever its garbled fields look like.
  if (!checksum_ok(raw, checksum(raw.payload, raw.payload_len))) return DropReason::tcp_bad_checksum;
  return parse_verified(raw, out);
}

Rejection parse_lengths(const uint8_t* data, uint16_t len, Ipv4Address src, Ipv4Address dst,
                        UnverifiedSegment& out) noexcept {
  if (len < kMinHeaderLen) return DropReason::tcp_truncated;
  // The low four bits of byte 12 are reserved (RFC 9293 3.1: ignored on
  // receipt; AccECN's AE bit lives there).
  const uint16_t header_len = static_cast<uint16_t>((data[kOffDataOffset] >> 4) * 4);
  if (header_len < kMinHeaderLen || header_len > len) return DropReason::tcp_bad_header_length;
  out.data = data;
  out.src_port = load_be16(data);
  out.dst_port = load_be16(data + 2);
  out.seq = load_be32(data + kOffSeq);
  out.header_len = header_len;
  out.payload = data + header_len;
  out.payload_len = static_cast<uint16_t>(len - header_len);
  // The pseudo-header's words as the checksum reads them (wire bytes as
  // native words: a byte-swapped 32-bit address is its two words), then the
  // header, into one accumulator folded once. header_len is a multiple of 4:
  // the payload's sum adds to this one as it is.
  const uint64_t pseudo = uint64_t{__builtin_bswap32(src)} + __builtin_bswap32(dst) +
                          (uint32_t{ipv4::kProtocolTcp} << 8) + __builtin_bswap16(len);
  out.header_sum = checksum_fold(checksum_detail::add_bytes(pseudo, data, header_len));
  return std::nullopt;
}

Rejection parse_verified(const UnverifiedSegment& raw, Segment& out) noexcept {
  const uint8_t* const data = raw.data;
  const uint16_t header_len = raw.header_len;
  out.src_port = raw.src_port;
  out.dst_port = raw.dst_port;
  // Port 0 is reserved (RFC 6335 6): no endpoint can own it.
  if ((out.src_port == 0) | (out.dst_port == 0)) return DropReason::tcp_bad_port;
  out.seq = raw.seq;
  out.ack = load_be32(data + kOffAck);
  out.flags = data[kOffFlags];
  out.window = load_be16(data + kOffWindow);
  out.urgent = load_be16(data + kOffUrgent);
  out.header_len = header_len;
  out.payload = raw.payload;
  out.payload_len = raw.payload_len;

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

namespace {

// Stores big-endian words and keeps their sum (host order, unfolded), so that
// the checksum never reads the header back: a load that spans several
// narrower stores still in the store buffer cannot take its bytes from them
// and waits until they reach the cache.
class SummingWriter {
 public:
  explicit SummingWriter(uint8_t* at) noexcept : p_(at) {}
  void word16(uint16_t v) noexcept {
    store_be16(p_, v);
    p_ += 2;
    sum_ += v;
  }
  void bytes(uint8_t first, uint8_t second) noexcept {
    word16(static_cast<uint16_t>(first << 8 | second));
  }
  void word32(uint32_t v) noexcept {
    store_be32(p_, v);
    p_ += 4;
    sum_ += (v >> 16) + (v & 0xffff);
  }
  void skip(uint8_t n) noexcept { p_ += n; }
  uint8_t* at() const noexcept { return p_; }
  void seek(uint8_t* p) noexcept { p_ = p; }
  uint64_t sum() const noexcept { return sum_; }

 private:
  uint8_t* p_;
  uint64_t sum_ = 0;
};

struct Written {
  uint16_t header_len;
  uint64_t sum;  // of the header's words as big-endian values, checksum field 0
};

Written write_and_sum(uint8_t* at, const HeaderFields& h, const Options& o) noexcept {
  SummingWriter w(at);
  w.word16(h.src_port);
  w.word16(h.dst_port);
  w.word32(h.seq);
  w.word32(h.ack);
  w.skip(kMinHeaderLen - kOffDataOffset);  // data offset to urgent pointer: below
  if (o.mss != 0) {
    w.bytes(kOptMss, kOptMssLen);
    w.word16(o.mss);
  }
  if (o.has_timestamps) {
    // RFC 7323 Appendix A: on a SYN, SACK-permitted fills the two bytes
    // that would otherwise be NOP padding in front of TS.
    if (o.sack_permitted) {
      w.bytes(kOptSackPermitted, kOptSackPermittedLen);
    } else {
      w.bytes(kOptNop, kOptNop);
    }
    w.bytes(kOptTimestamps, kOptTimestampsLen);
    w.word32(o.ts_value);
    w.word32(o.ts_echo);
  }
  if (o.has_window_scale) {
    w.bytes(kOptNop, kOptWindowScale);
    // RFC 7323 2.3: a shift above 14 is an error; never put one on the wire.
    w.bytes(kOptWindowScaleLen, o.window_scale < kMaxWindowScale ? o.window_scale : kMaxWindowScale);
  }
  if (o.sack_permitted && !o.has_timestamps) {
    w.bytes(kOptNop, kOptNop);
    w.bytes(kOptSackPermitted, kOptSackPermittedLen);
  }
  const uint8_t blocks = sack_blocks_written(o);
  if (blocks != 0) {
    w.bytes(kOptNop, kOptNop);
    w.bytes(kOptSack, static_cast<uint8_t>(kOptSackBaseLen + blocks * kSackBlockLen));
    for (uint8_t b = 0; b < blocks; ++b) {
      w.word32(o.sack[b].left);
      w.word32(o.sack[b].right);
    }
  }
  const auto header_len = static_cast<uint16_t>(w.at() - at);
  w.seek(at + kOffDataOffset);
  // Reserved bits zero (RFC 9293 3.1); no urgent data is ever sent.
  w.bytes(static_cast<uint8_t>((header_len / 4) << 4), h.flags);
  w.word16(h.window);
  w.word16(0);  // checksum
  w.word16(0);  // urgent pointer
  return Written{header_len, w.sum()};
}

}  // namespace

uint16_t write_header(uint8_t* at, const HeaderFields& h, const Options& o) noexcept {
  return write_and_sum(at, h, o).header_len;
}

uint16_t write_header(uint8_t* at, const HeaderFields& h, const Options& o, uint16_t payload_len,
                      uint16_t payload_sum, Ipv4Address src, Ipv4Address dst) noexcept {
  const Written written = write_and_sum(at, h, o);
  const auto tcp_len = static_cast<uint16_t>(written.header_len + payload_len);
  // Header and pseudo-header in big-endian words, swapped into the native
  // order of the payload's sum (RFC 1071 2(B)). header_len is a multiple of
  // 4, so the payload's words line up with the header's.
  const uint16_t header_be = checksum_fold(written.sum + (src >> 16) + (src & 0xffff) +
                                           (dst >> 16) + (dst & 0xffff) + ipv4::kProtocolTcp +
                                           tcp_len);
  const auto sum = static_cast<uint16_t>(~checksum_add(__builtin_bswap16(header_be), payload_sum));
  std::memcpy(at + kOffChecksum, &sum, sizeof sum);
  return written.header_len;
}

void write_checksum(uint8_t* segment, uint16_t tcp_len, Ipv4Address src,
                    Ipv4Address dst) noexcept {
  store_be16(segment + kOffChecksum, 0);
  const uint16_t sum =
      static_cast<uint16_t>(~checksum_add(pseudo_header_sum(src, dst, tcp_len), checksum(segment, tcp_len)));
  // Summed in wire order (see pseudo_header_sum), so stored as-is.
  std::memcpy(segment + kOffChecksum, &sum, sizeof sum);
}


}  // namespace mtlsgw::net::tcp
