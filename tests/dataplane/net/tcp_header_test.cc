#include "dataplane/net/tcp_header.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_ip.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/net/checksum.h"
#include "packet_builder.h"

namespace mtlsgw::testing {
namespace {

namespace tcp = net::tcp;

const uint32_t kSrc = ip(198, 18, 0, 1);
const uint32_t kDst = ip(198, 18, 0, 2);

// ---- An independent segment builder: checksum through internet_checksum over
// a pseudo-header laid out byte by byte, options as raw bytes. ----

struct Fields {
  uint16_t src_port = 40000;
  uint16_t dst_port = 443;
  uint32_t seq = 0x01020304;
  uint32_t ack = 0xa0b0c0d0;
  uint8_t flags = tcp::kFlagAck;
  uint16_t window = 0xfaf0;
  uint16_t urgent = 0;
  int data_offset = -1;     // -1: 5 + options / 4
  uint8_t reserved = 0;     // low nibble of byte 12
};

Bytes pseudo_header(uint32_t src, uint32_t dst, size_t tcp_len) {
  Bytes out;
  put32(out, src);
  put32(out, dst);
  out.push_back(0);
  out.push_back(6);
  put16(out, static_cast<uint16_t>(tcp_len));
  return out;
}

// The checksum a segment must carry (its checksum field taken as zero).
uint16_t reference_checksum(Bytes segment, uint32_t src = kSrc, uint32_t dst = kDst) {
  segment[16] = 0;
  segment[17] = 0;
  Bytes all = pseudo_header(src, dst, segment.size());
  all.insert(all.end(), segment.begin(), segment.end());
  return internet_checksum(all.data(), all.size());
}

void set_checksum(Bytes& segment, uint16_t value) {
  segment[16] = static_cast<uint8_t>(value >> 8);
  segment[17] = static_cast<uint8_t>(value);
}

Bytes segment(const Fields& f, const Bytes& options = {}, const Bytes& payload = {},
              uint32_t src = kSrc, uint32_t dst = kDst) {
  EXPECT_EQ(options.size() % 4, 0u) << "test bug: options must be padded";
  Bytes out;
  put16(out, f.src_port);
  put16(out, f.dst_port);
  put32(out, f.seq);
  put32(out, f.ack);
  const uint8_t data_offset = f.data_offset >= 0 ? static_cast<uint8_t>(f.data_offset)
                                                 : static_cast<uint8_t>((20 + options.size()) / 4);
  out.push_back(static_cast<uint8_t>(data_offset << 4 | f.reserved));
  out.push_back(f.flags);
  put16(out, f.window);
  put16(out, 0);
  put16(out, f.urgent);
  out.insert(out.end(), options.begin(), options.end());
  out.insert(out.end(), payload.begin(), payload.end());
  set_checksum(out, reference_checksum(out, src, dst));
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
// Pads with EOL to a multiple of 4, as a sender must (RFC 9293 3.1).
Bytes padded(Bytes options) {
  while (options.size() % 4 != 0) options.push_back(0);
  return options;
}
Bytes nops(size_t n) { return Bytes(n, 1); }
Bytes opt_mss(uint16_t mss) { return {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss)}; }
Bytes opt_ws(uint8_t shift) { return {3, 3, shift}; }
Bytes opt_sack_permitted() { return {4, 2}; }
Bytes opt_ts(uint32_t value, uint32_t echo) {
  Bytes out{8, 10};
  put32(out, value);
  put32(out, echo);
  return out;
}
Bytes opt_sack(const std::vector<std::pair<uint32_t, uint32_t>>& blocks) {
  Bytes out{5, static_cast<uint8_t>(2 + 8 * blocks.size())};
  for (const auto& [left, right] : blocks) {
    put32(out, left);
    put32(out, right);
  }
  return out;
}

Bytes pattern(size_t n, uint8_t seed = 0x5a) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 37);
  return out;
}

std::string verdict(net::Rejection r) { return r ? std::string(net::name_of(*r)) : "accepted"; }

void expect_options_eq(const tcp::Options& got, const tcp::Options& want, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(got.mss, want.mss);
  EXPECT_EQ(got.has_window_scale, want.has_window_scale);
  EXPECT_EQ(got.window_scale, want.window_scale);
  EXPECT_EQ(got.sack_permitted, want.sack_permitted);
  EXPECT_EQ(got.has_timestamps, want.has_timestamps);
  EXPECT_EQ(got.ts_value, want.ts_value);
  EXPECT_EQ(got.ts_echo, want.ts_echo);
  ASSERT_EQ(got.sack_count, want.sack_count);
  for (uint8_t i = 0; i < want.sack_count; ++i) {
    EXPECT_EQ(got.sack[i].left, want.sack[i].left) << "block " << int{i};
    EXPECT_EQ(got.sack[i].right, want.sack[i].right) << "block " << int{i};
  }
}

struct Combination {
  bool mss, ws, sack_permitted, ts, sack;
};

std::vector<Combination> all_combinations() {
  std::vector<Combination> out;
  for (int mask = 0; mask < 32; ++mask) {
    out.push_back({(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0, (mask & 8) != 0,
                   (mask & 16) != 0});
  }
  return out;
}

std::string describe(const Combination& c, uint8_t flags) {
  std::string s = "flags=" + std::to_string(flags);
  if (c.mss) s += " mss";
  if (c.ws) s += " ws";
  if (c.sack_permitted) s += " sack_permitted";
  if (c.ts) s += " ts";
  if (c.sack) s += " sack";
  return s;
}

class TcpHeaderTest : public ::testing::Test {
 protected:
  // Parses a copy in a buffer of exactly the segment's size, so that a read
  // past len is a heap overflow under AddressSanitizer.
  net::Rejection parse(const Bytes& bytes, uint32_t src = kSrc, uint32_t dst = kDst) {
    buffer_ = std::make_unique<uint8_t[]>(bytes.size() == 0 ? 1 : bytes.size());
    std::copy(bytes.begin(), bytes.end(), buffer_.get());
    seg = tcp::Segment{};
    return tcp::parse(buffer_.get(), static_cast<uint16_t>(bytes.size()), src, dst, seg);
  }
  std::string verdict_of(const Bytes& bytes) { return verdict(parse(bytes)); }
  const uint8_t* buffer() const { return buffer_.get(); }
  void check_combination(const Combination& c, uint8_t flags);

  tcp::Segment seg;

 private:
  std::unique_ptr<uint8_t[]> buffer_;
};

// ---- Fixed header ----

TEST_F(TcpHeaderTest, DecodesTheFixedHeader) {
  Fields f;
  f.src_port = 0xc001;
  f.dst_port = 0x01bb;
  f.seq = 0xfffffff0;
  f.ack = 0x80000001;
  f.flags = tcp::kFlagAck | tcp::kFlagPsh | tcp::kFlagUrg;
  f.window = 0x1234;
  f.urgent = 0xbeef;
  const Bytes payload = pattern(5);
  ASSERT_EQ(verdict_of(segment(f, {}, payload)), "accepted");
  EXPECT_EQ(seg.src_port, 0xc001);
  EXPECT_EQ(seg.dst_port, 0x01bb);
  EXPECT_EQ(seg.seq, 0xfffffff0u);
  EXPECT_EQ(seg.ack, 0x80000001u);
  EXPECT_EQ(seg.flags, f.flags);
  EXPECT_EQ(seg.window, 0x1234);
  EXPECT_EQ(seg.urgent, 0xbeef);
  EXPECT_EQ(seg.header_len, 20);
  EXPECT_EQ(seg.payload, buffer() + 20);
  ASSERT_EQ(seg.payload_len, 5);
  EXPECT_EQ(Bytes(seg.payload, seg.payload + seg.payload_len), payload);
  expect_options_eq(seg.options, tcp::Options{}, "no options");
}

TEST_F(TcpHeaderTest, ResetsOptionsLeftFromAnEarlierSegment) {
  Fields f;
  f.flags = tcp::kFlagSyn;
  ASSERT_EQ(verdict_of(segment(f, cat({opt_mss(1460), opt_ts(1, 2), nops(2)}))), "accepted");
  ASSERT_EQ(seg.options.mss, 1460);
  // The same Segment reused (the caller's stack variable in a loop).
  Bytes plain = segment(Fields{});
  const uint8_t* data = plain.data();
  ASSERT_FALSE(tcp::parse(data, static_cast<uint16_t>(plain.size()), kSrc, kDst, seg));
  expect_options_eq(seg.options, tcp::Options{}, "after a segment without options");
}

TEST_F(TcpHeaderTest, PassesEveryFlagBitAndIgnoresReservedBits) {
  Fields f;
  f.flags = 0xff;
  f.reserved = 0x0f;  // RFC 9293 3.1: ignored on receipt
  ASSERT_EQ(verdict_of(segment(f, padded(opt_ts(7, 8)))), "accepted");
  EXPECT_EQ(seg.flags, 0xff);
  EXPECT_EQ(seg.header_len, 32);
  EXPECT_TRUE(seg.options.has_timestamps);
  const uint8_t all[] = {tcp::kFlagFin, tcp::kFlagSyn, tcp::kFlagRst, tcp::kFlagPsh,
                         tcp::kFlagAck, tcp::kFlagUrg, tcp::kFlagEce, tcp::kFlagCwr};
  uint8_t seen = 0;
  for (uint8_t flag : all) {
    EXPECT_TRUE(seg.has(flag));
    seen = static_cast<uint8_t>(seen | flag);
  }
  EXPECT_EQ(seen, 0xff);  // the eight constants are the eight distinct bits
}

TEST_F(TcpHeaderTest, HasTestsOneFlag) {
  tcp::Segment s{};
  s.flags = tcp::kFlagSyn | tcp::kFlagAck;
  EXPECT_TRUE(s.has(tcp::kFlagSyn));
  EXPECT_TRUE(s.has(tcp::kFlagAck));
  EXPECT_FALSE(s.has(tcp::kFlagFin));
  EXPECT_FALSE(s.has(tcp::kFlagRst));
  EXPECT_FALSE(s.has(tcp::kFlagEce));
}

TEST_F(TcpHeaderTest, SegLenCountsSynAndFin) {
  struct Case {
    uint8_t flags;
    uint16_t payload;
    uint32_t want;
  };
  const Case cases[] = {
      {tcp::kFlagAck, 0, 0},
      {tcp::kFlagAck, 1460, 1460},
      {tcp::kFlagSyn, 0, 1},
      {tcp::kFlagSyn | tcp::kFlagAck, 0, 1},
      {tcp::kFlagFin | tcp::kFlagAck, 0, 1},
      {tcp::kFlagFin | tcp::kFlagAck, 100, 101},
      {tcp::kFlagSyn | tcp::kFlagFin, 0, 2},
      {tcp::kFlagSyn | tcp::kFlagFin, 10, 12},
      {tcp::kFlagRst | tcp::kFlagPsh | tcp::kFlagUrg | tcp::kFlagEce | tcp::kFlagCwr, 0, 0},
      {0xff, 65535, 65537},  // wider than the payload field
  };
  for (const Case& c : cases) {
    tcp::Segment s{};
    s.flags = c.flags;
    s.payload_len = c.payload;
    EXPECT_EQ(s.seg_len(), c.want) << "flags " << int{c.flags} << " payload " << c.payload;
  }
  // And on a parsed segment.
  Fields f;
  f.flags = tcp::kFlagSyn | tcp::kFlagFin;
  ASSERT_EQ(verdict_of(segment(f, {}, pattern(3))), "accepted");
  EXPECT_EQ(seg.seg_len(), 5u);
}

// ---- Lengths ----

TEST_F(TcpHeaderTest, RejectsSegmentsShorterThanTheFixedHeader) {
  const Bytes full = segment(Fields{}, {}, pattern(10));
  for (size_t len = 0; len < 20; ++len) {
    EXPECT_EQ(verdict_of(Bytes(full.begin(), full.begin() + len)), "tcp_truncated") << len;
  }
  EXPECT_EQ(verdict_of(Bytes(full.begin(), full.begin() + 20)), "tcp_bad_checksum");
}

TEST_F(TcpHeaderTest, RejectsDataOffsetsBelowFive) {
  for (int data_offset = 0; data_offset < 5; ++data_offset) {
    Fields f;
    f.data_offset = data_offset;
    EXPECT_EQ(verdict_of(segment(f, {}, pattern(40))), "tcp_bad_header_length") << data_offset;
  }
}

TEST_F(TcpHeaderTest, RejectsDataOffsetsBeyondTheSegment) {
  Fields f;
  f.data_offset = 6;  // 24 bytes of header in a 20-byte segment
  EXPECT_EQ(verdict_of(segment(f)), "tcp_bad_header_length");
  f.data_offset = 15;  // 60 bytes in 59
  EXPECT_EQ(verdict_of(segment(f, {}, nops(39))), "tcp_bad_header_length");
  // Exactly the whole segment is a header with no payload.
  EXPECT_EQ(verdict_of(segment(f, {}, nops(40))), "accepted");
  EXPECT_EQ(seg.header_len, 60);
  EXPECT_EQ(seg.payload_len, 0);
  EXPECT_EQ(seg.payload, buffer() + 60);
}

TEST_F(TcpHeaderTest, PayloadStartsAfterTheLongestHeader) {
  const Bytes options = cat({opt_sack({{1, 2}, {3, 4}, {5, 6}, {7, 8}}), nops(2), {0, 0, 0, 0}});
  ASSERT_EQ(options.size(), 40u);
  const Bytes payload = pattern(1, 0x77);
  ASSERT_EQ(verdict_of(segment(Fields{}, options, payload)), "accepted");
  EXPECT_EQ(seg.header_len, 60);
  EXPECT_EQ(seg.payload, buffer() + 60);
  ASSERT_EQ(seg.payload_len, 1);
  EXPECT_EQ(seg.payload[0], 0x77);
  EXPECT_EQ(seg.options.sack_count, 4);
}

// ---- Checksum and ports ----

TEST_F(TcpHeaderTest, EverySingleBitFlipFailsTheChecksum) {
  const Bytes good = segment(Fields{}, cat({nops(2), opt_ts(0x11223344, 0x55667788)}), pattern(7));
  ASSERT_EQ(verdict_of(good), "accepted");
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = good;
      bad[i] = static_cast<uint8_t>(bad[i] ^ (1 << bit));
      const std::string v = verdict_of(bad);
      // Bits of the data offset may first fail the length checks instead.
      if (i == 12 && bit >= 4) {
        EXPECT_NE(v, "accepted") << "byte " << i << " bit " << bit;
      } else {
        EXPECT_EQ(v, "tcp_bad_checksum") << "byte " << i << " bit " << bit;
      }
    }
  }
}

TEST_F(TcpHeaderTest, ChecksumCoversThePseudoHeader) {
  const Bytes good = segment(Fields{}, {}, pattern(33));
  EXPECT_EQ(verdict(parse(good, kSrc, kDst)), "accepted");
  EXPECT_EQ(verdict(parse(good, kSrc ^ 0x100, kDst)), "tcp_bad_checksum");
  EXPECT_EQ(verdict(parse(good, kSrc, kDst + 1)), "tcp_bad_checksum");
  EXPECT_EQ(verdict(parse(good, kSrc ^ 0x80000000, kDst)), "tcp_bad_checksum");
  // The pseudo-header carries the segment's length: a trailing zero byte
  // adds nothing to the sum of the bytes, yet must fail.
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(verdict_of(longer), "tcp_bad_checksum");
}

TEST_F(TcpHeaderTest, BothRepresentationsOfZeroChecksumAreAccepted) {
  // Choose two payload bytes so that the correct checksum is 0x0000; its
  // one's-complement twin 0xffff must pass too (RFC 1071: -0 == +0).
  Bytes s = segment(Fields{}, {}, Bytes(6, 0));
  s[20] = 0;
  s[21] = 0;
  const uint16_t with_zero_word = reference_checksum(s);
  // Adding w to the sum lowers the checksum by w; w = checksum makes it 0.
  s[20] = static_cast<uint8_t>(with_zero_word >> 8);
  s[21] = static_cast<uint8_t>(with_zero_word);
  const uint16_t want = reference_checksum(s);
  ASSERT_TRUE(want == 0x0000 || want == 0xffff) << want;
  set_checksum(s, 0x0000);
  EXPECT_EQ(verdict_of(s), "accepted");
  set_checksum(s, 0xffff);
  EXPECT_EQ(verdict_of(s), "accepted");
  set_checksum(s, 0x0001);
  EXPECT_EQ(verdict_of(s), "tcp_bad_checksum");
}

TEST_F(TcpHeaderTest, RejectsPortZero) {
  Fields f;
  f.src_port = 0;
  EXPECT_EQ(verdict_of(segment(f)), "tcp_bad_port");
  f = Fields{};
  f.dst_port = 0;
  EXPECT_EQ(verdict_of(segment(f)), "tcp_bad_port");
  f.src_port = 0;
  EXPECT_EQ(verdict_of(segment(f)), "tcp_bad_port");
  f = Fields{};
  f.src_port = 1;
  f.dst_port = 0xffff;
  EXPECT_EQ(verdict_of(segment(f)), "accepted");
}

TEST_F(TcpHeaderTest, ChecksumIsJudgedBeforePortsAndOptions) {
  Fields f;
  f.src_port = 0;
  Bytes s = segment(f);
  s[19] ^= 1;
  EXPECT_EQ(verdict_of(s), "tcp_bad_checksum");
  Bytes bad_options = segment(Fields{}, {0xfe, 0x00, 0x01, 0x01});
  ASSERT_EQ(verdict_of(bad_options), "tcp_bad_options");
  bad_options[4] ^= 1;
  EXPECT_EQ(verdict_of(bad_options), "tcp_bad_checksum");
}

// ---- Options: decoding ----

// Builds c in three layouts: packed with EOL padding, in reverse order with
// NOPs, and with unknown options in between; each must decode to the same.
void TcpHeaderTest::check_combination(const Combination& c, uint8_t flags) {
  const bool syn = (flags & tcp::kFlagSyn) != 0;
  const bool ack = (flags & tcp::kFlagAck) != 0;
  const size_t fixed = (c.mss ? 4 : 0) + (c.ws ? 3 : 0) + (c.sack_permitted ? 2 : 0) + (c.ts ? 10 : 0);
  const size_t blocks = c.sack ? std::min<size_t>(4, (40 - fixed - 2) / 8) : 0;
  std::vector<std::pair<uint32_t, uint32_t>> sack;
  for (size_t b = 0; b < blocks; ++b) {
    sack.emplace_back(0xfffffff0u + 1000 * static_cast<uint32_t>(b),
                      0x10 + 1000 * static_cast<uint32_t>(b));
  }
  tcp::Options want;
  if (syn) {
    want.mss = c.mss ? 1400 : 0;
    want.has_window_scale = c.ws;
    want.window_scale = c.ws ? 9 : 0;
    want.sack_permitted = c.sack_permitted;
  }
  want.has_timestamps = c.ts;
  want.ts_value = c.ts ? 0xdeadbeef : 0;
  want.ts_echo = c.ts && ack ? 0xcafef00d : 0;
  want.sack_count = static_cast<uint8_t>(blocks);
  for (size_t b = 0; b < blocks; ++b) want.sack[b] = {sack[b].first, sack[b].second};

  std::vector<Bytes> parts;
  if (c.mss) parts.push_back(opt_mss(1400));
  if (c.ws) parts.push_back(opt_ws(9));
  if (c.sack_permitted) parts.push_back(opt_sack_permitted());
  if (c.ts) parts.push_back(opt_ts(0xdeadbeef, 0xcafef00d));
  if (c.sack) parts.push_back(opt_sack(sack));

  Bytes packed;
  for (const Bytes& p : parts) packed.insert(packed.end(), p.begin(), p.end());
  Bytes spaced;
  size_t budget = 40 - packed.size();
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (budget >= 1) {
      spaced.push_back(1);
      --budget;
    }
    spaced.insert(spaced.end(), it->begin(), it->end());
  }
  Bytes with_unknown;
  budget = 40 - packed.size();
  for (const Bytes& p : parts) {
    // An experimental option (RFC 6994, kind 254) wherever one still fits.
    if (budget >= 4) {
      with_unknown.insert(with_unknown.end(), {254, 4, 0xab, 0xcd});
      budget -= 4;
    }
    with_unknown.insert(with_unknown.end(), p.begin(), p.end());
  }

  Fields f;
  f.flags = flags;
  const std::pair<const char*, Bytes> layouts[] = {
      {"packed", padded(packed)}, {"spaced", padded(spaced)}, {"with unknown", padded(with_unknown)}};
  for (const auto& [name, options] : layouts) {
    ASSERT_LE(options.size(), 40u) << name;
    const std::string where = describe(c, flags) + " " + name;
    ASSERT_EQ(verdict_of(segment(f, options, pattern(3))), "accepted") << where;
    EXPECT_EQ(seg.header_len, 20 + options.size()) << where;
    EXPECT_EQ(seg.payload_len, 3) << where;
    expect_options_eq(seg.options, want, where);
  }
}

TEST_F(TcpHeaderTest, DecodesEveryOptionCombinationOnSyn) {
  for (const Combination& c : all_combinations()) {
    check_combination(c, tcp::kFlagSyn);
    check_combination(c, tcp::kFlagSyn | tcp::kFlagAck);
  }
}

TEST_F(TcpHeaderTest, IgnoresSynOnlyOptionsOnOtherSegments) {
  // RFC 9293 3.2 MUST-65, RFC 7323 2.2, RFC 2018 2: MSS, WS and
  // SACK-permitted mean nothing outside a SYN; TS and SACK still count.
  for (const Combination& c : all_combinations()) {
    check_combination(c, tcp::kFlagAck);
    check_combination(c, tcp::kFlagAck | tcp::kFlagFin | tcp::kFlagPsh);
    check_combination(c, tcp::kFlagRst);
  }
}

TEST_F(TcpHeaderTest, TimestampEchoCountsOnlyWithAck) {
  // Both the aligned layout (parsed without the option walk) and another.
  const Bytes layouts[] = {cat({nops(2), opt_ts(100, 200)}), cat({opt_ts(100, 200), nops(2)}),
                           padded(cat({opt_mss(1460), opt_ts(100, 200)}))};
  for (const Bytes& options : layouts) {
    for (uint8_t flags : {uint8_t{tcp::kFlagSyn}, uint8_t{tcp::kFlagRst}, uint8_t{0},
                          uint8_t{tcp::kFlagAck}, uint8_t{tcp::kFlagSyn | tcp::kFlagAck}}) {
      Fields f;
      f.flags = flags;
      ASSERT_EQ(verdict_of(segment(f, options)), "accepted");
      EXPECT_TRUE(seg.options.has_timestamps);
      EXPECT_EQ(seg.options.ts_value, 100u);
      EXPECT_EQ(seg.options.ts_echo, (flags & tcp::kFlagAck) != 0 ? 200u : 0u)
          << "flags " << int{flags} << " layout of " << options.size();
    }
  }
}

TEST_F(TcpHeaderTest, AlignedTimestampsAndOtherLayoutsAgree) {
  const Bytes layouts[] = {
      cat({nops(2), opt_ts(0x01020304, 0xf1f2f3f4)}),          // RFC 7323 Appendix A
      cat({opt_ts(0x01020304, 0xf1f2f3f4), {0, 0}}),           // EOL padding after
      cat({{1}, opt_ts(0x01020304, 0xf1f2f3f4), {1}}),         // one NOP each side
      cat({nops(2), opt_ts(0x01020304, 0xf1f2f3f4), nops(4)}), // aligned prefix, longer header
      cat({nops(2), opt_ts(0x01020304, 0xf1f2f3f4), nops(1), opt_ws(3)}),
  };
  for (const Bytes& options : layouts) {
    ASSERT_EQ(verdict_of(segment(Fields{}, options, pattern(100))), "accepted");
    EXPECT_TRUE(seg.options.has_timestamps);
    EXPECT_EQ(seg.options.ts_value, 0x01020304u);
    EXPECT_EQ(seg.options.ts_echo, 0xf1f2f3f4u);
    EXPECT_EQ(seg.options.sack_count, 0);
    EXPECT_FALSE(seg.options.has_window_scale);  // not a SYN
    EXPECT_EQ(seg.payload_len, 100);
  }
}

TEST_F(TcpHeaderTest, ClampsWindowScaleTo14) {
  // RFC 7323 2.3: use 14 instead of anything larger.
  const std::pair<uint8_t, uint8_t> cases[] = {{0, 0},   {1, 1},   {7, 7},    {13, 13},
                                               {14, 14}, {15, 14}, {100, 14}, {255, 14}};
  for (const auto& [sent, want] : cases) {
    Fields f;
    f.flags = tcp::kFlagSyn;
    ASSERT_EQ(verdict_of(segment(f, cat({{1}, opt_ws(sent)}))), "accepted");
    EXPECT_TRUE(seg.options.has_window_scale) << int{sent};
    EXPECT_EQ(seg.options.window_scale, want) << int{sent};
  }
}

TEST_F(TcpHeaderTest, DecodesOneToFourSackBlocks) {
  const std::vector<std::pair<uint32_t, uint32_t>> blocks = {
      {0x00001000, 0x00002000}, {0xfffff000, 0x00000800}, {0x7fffffff, 0x80000000},
      {0xdead0000, 0xdead05b4}};
  for (size_t n = 1; n <= 4; ++n) {
    const std::vector<std::pair<uint32_t, uint32_t>> first(blocks.begin(), blocks.begin() + n);
    for (bool with_ts : {false, true}) {
      if (with_ts && n == 4) continue;  // 12 + 36 > 40
      const Bytes options = with_ts ? cat({nops(2), opt_ts(5, 6), nops(2), opt_sack(first)})
                                    : cat({nops(2), opt_sack(first)});
      ASSERT_EQ(verdict_of(segment(Fields{}, options)), "accepted") << n;
      ASSERT_EQ(seg.options.sack_count, n);
      for (size_t b = 0; b < n; ++b) {
        EXPECT_EQ(seg.options.sack[b].left, blocks[b].first) << n << "/" << b;
        EXPECT_EQ(seg.options.sack[b].right, blocks[b].second) << n << "/" << b;
      }
      EXPECT_EQ(seg.options.has_timestamps, with_ts);
    }
  }
}

TEST_F(TcpHeaderTest, SkipsUnknownOptionsByTheirLength) {
  Fields f;
  f.flags = tcp::kFlagSyn;
  // MD5 signature (19, 18 bytes), a TFO cookie request (34, 2), an MPTCP
  // capable (30, 12 bytes of which some look like option kinds).
  const Bytes options = cat({{19, 18},
                             Bytes(16, 0x02),
                             {34, 2},
                             {30, 12, 0x02, 0x04, 0x00, 0x01, 0x03, 0x03, 0x0e, 0x08, 0x0a, 0x00},
                             opt_mss(536),
                             {0, 0, 0, 0}});
  ASSERT_EQ(options.size(), 40u);
  ASSERT_EQ(verdict_of(segment(f, options)), "accepted");
  tcp::Options want;
  want.mss = 536;
  expect_options_eq(seg.options, want, "after unknown options");
}

TEST_F(TcpHeaderTest, StopsAtEndOfOptionList) {
  Fields f;
  f.flags = tcp::kFlagSyn;
  // After EOL the bytes are padding (RFC 9293 3.1), even if they look like
  // options, valid or not.
  ASSERT_EQ(verdict_of(segment(f, padded(cat({opt_mss(1000), {0}, opt_ws(5), {2, 4, 1, 0}, {0xfe, 0}})))),
            "accepted");
  EXPECT_EQ(seg.options.mss, 1000);
  EXPECT_FALSE(seg.options.has_window_scale);
  ASSERT_EQ(verdict_of(segment(f, {0, 0xfe, 0x00, 0x01})), "accepted");
  expect_options_eq(seg.options, tcp::Options{}, "EOL first");
}

// ---- Options: syntax errors and wrong lengths ----

TEST_F(TcpHeaderTest, RejectsOptionsThatRunPastTheHeader) {
  struct Case {
    const char* name;
    Bytes options;
  };
  const Case cases[] = {
      {"kind without length byte (MSS)", {1, 1, 1, 2}},
      {"kind without length byte (unknown)", {1, 1, 1, 0xfe}},
      {"kind without length byte (TS)", cat({nops(2), opt_ts(1, 2), {1, 8}})},
      {"MSS one byte short", {1, 2, 4, 5}},
      {"TS in 8 bytes", {8, 10, 0, 0, 0, 0, 0, 0}},
      {"TS at the end, cut", cat({nops(6), {8, 10}})},
      {"unknown longer than the rest", {0xfe, 8, 0, 0}},
      {"SACK of 4 blocks in 32 bytes", cat({opt_sack({{1, 2}, {3, 4}, {5, 6}}), {5, 34, 0, 0, 0, 0}})},
      {"length 255", cat({nops(4), {0xfe, 255, 0, 0}})},
      {"valid options then one too long", cat({opt_mss(1460), {1, 3, 3, 0}, {0xfe, 9, 0, 0}})},
  };
  for (const Case& c : cases) {
    for (uint8_t flags : {uint8_t{tcp::kFlagSyn}, uint8_t{tcp::kFlagAck}}) {
      // Without payload, a read past the options is a read past the buffer.
      for (size_t payload : {0, 8}) {
        Fields f;
        f.flags = flags;
        EXPECT_EQ(verdict_of(segment(f, padded(c.options), pattern(payload))), "tcp_bad_options")
            << c.name << " flags " << int{flags} << " payload " << payload;
      }
    }
  }
}

TEST_F(TcpHeaderTest, RejectsZeroAndOneByteOptionLengths) {
  // RFC 9293 3.2 MUST-7: an illegal length must not hang or crash the walk.
  for (uint8_t kind : {uint8_t{2}, uint8_t{3}, uint8_t{4}, uint8_t{5}, uint8_t{8}, uint8_t{0xfe}}) {
    for (uint8_t len : {uint8_t{0}, uint8_t{1}}) {
      EXPECT_EQ(verdict_of(segment(Fields{}, {kind, len, 1, 1})), "tcp_bad_options")
          << "kind " << int{kind} << " len " << int{len};
      EXPECT_EQ(verdict_of(segment(Fields{}, cat({nops(2), opt_ts(1, 2), {kind, len, 0, 0}}))),
                "tcp_bad_options")
          << "after TS, kind " << int{kind} << " len " << int{len};
    }
  }
}

TEST_F(TcpHeaderTest, AcceptsAnOptionEndingExactlyAtTheHeader) {
  Fields f;
  f.flags = tcp::kFlagSyn;
  EXPECT_EQ(verdict_of(segment(f, cat({{0xfe, 34}, Bytes(32, 0xff), {1, 1}, opt_mss(1200)}))),
            "accepted");
  EXPECT_EQ(seg.options.mss, 1200);
  EXPECT_EQ(verdict_of(segment(f, cat({{0xfe, 40}, Bytes(38, 0)}))), "accepted");
}

TEST_F(TcpHeaderTest, SkipsKnownOptionsOfTheWrongLength) {
  // Treated as unknown (as Linux and FreeBSD do): skipped by the length
  // they state, not decoded. The well-formed WS after each proves the walk
  // resumed at the right byte.
  struct Case {
    const char* name;
    Bytes bad;
  };
  const Case cases[] = {
      {"MSS len 2", {2, 2}},
      {"MSS len 3", {2, 3, 5}},
      {"MSS len 6", {2, 6, 5, 0xb4, 0, 0}},
      {"WS len 2", {3, 2}},
      {"WS len 4", {3, 4, 7, 0}},
      {"SACK-permitted len 3", {4, 3, 0}},
      {"SACK-permitted len 4", {4, 4, 0, 0}},
      {"TS len 2", {8, 2}},
      {"TS len 8", {8, 8, 0, 0, 0, 1, 0, 0}},
      {"TS len 12", cat({{8, 12}, Bytes(10, 3)})},
      {"SACK len 2", {5, 2}},
      {"SACK len 9", cat({{5, 9}, Bytes(7, 4)})},
      {"SACK len 12", cat({{5, 12}, Bytes(10, 5)})},
      {"SACK len 17", cat({{5, 17}, Bytes(15, 6)})},
  };
  for (const Case& c : cases) {
    Fields f;
    f.flags = tcp::kFlagSyn | tcp::kFlagAck;
    ASSERT_EQ(verdict_of(segment(f, padded(cat({c.bad, opt_ws(6)})))), "accepted") << c.name;
    tcp::Options want;
    want.has_window_scale = true;
    want.window_scale = 6;
    expect_options_eq(seg.options, want, c.name);
  }
}

TEST_F(TcpHeaderTest, MssZeroReadsAsAbsent) {
  Fields f;
  f.flags = tcp::kFlagSyn;
  ASSERT_EQ(verdict_of(segment(f, opt_mss(0))), "accepted");
  EXPECT_EQ(seg.options.mss, 0);
  ASSERT_EQ(verdict_of(segment(f, opt_mss(0xffff))), "accepted");
  EXPECT_EQ(seg.options.mss, 0xffff);
}

// ---- A reference option walk, written as plainly as possible, against the
// parser on random option bytes. ----

struct Expected {
  bool ok = true;
  tcp::Options options;
};

Expected reference_options(const Bytes& opts, uint8_t flags) {
  Expected e;
  const bool syn = (flags & tcp::kFlagSyn) != 0;
  size_t i = 0;
  while (i < opts.size()) {
    const uint8_t kind = opts[i];
    if (kind == 0) break;
    if (kind == 1) {
      i += 1;
      continue;
    }
    if (i + 1 >= opts.size()) return {false, {}};
    const size_t len = opts[i + 1];
    if (len < 2 || i + len > opts.size()) return {false, {}};
    const Bytes v(opts.begin() + static_cast<long>(i) + 2, opts.begin() + static_cast<long>(i + len));
    if (kind == 2 && len == 4 && syn) e.options.mss = get16(v, 0);
    if (kind == 3 && len == 3 && syn) {
      e.options.has_window_scale = true;
      e.options.window_scale = std::min<uint8_t>(v[0], 14);
    }
    if (kind == 4 && len == 2 && syn) e.options.sack_permitted = true;
    if (kind == 8 && len == 10) {
      e.options.has_timestamps = true;
      e.options.ts_value = get32(v, 0);
      e.options.ts_echo = (flags & tcp::kFlagAck) != 0 ? get32(v, 4) : 0;
    }
    if (kind == 5 && len > 2 && (len - 2) % 8 == 0) {
      e.options.sack_count = static_cast<uint8_t>((len - 2) / 8);
      for (size_t b = 0; b < e.options.sack_count; ++b) {
        e.options.sack[b] = {get32(v, b * 8), get32(v, b * 8 + 4)};
      }
    }
    i += len;
  }
  return e;
}

TEST_F(TcpHeaderTest, AgreesWithAReferenceWalkOnRandomOptions) {
  std::mt19937 rng(20240603);
  const uint8_t kinds[] = {0, 1, 1, 2, 3, 4, 5, 8, 8, 19, 30, 34, 254};
  int accepted = 0;
  int rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    const size_t words = rng() % 11;
    Bytes opts;
    while (opts.size() < words * 4) {
      const uint8_t kind = kinds[rng() % std::size(kinds)];
      opts.push_back(kind);
      if (kind <= 1) continue;
      // Mostly the right length, sometimes anything.
      uint8_t len;
      switch (rng() % 4) {
        case 0: len = static_cast<uint8_t>(rng() % 44); break;
        default:
          len = kind == 2 ? 4 : kind == 3 ? 3 : kind == 4 ? 2 : kind == 8 ? 10
              : kind == 5 ? static_cast<uint8_t>(2 + 8 * (1 + rng() % 4)) : static_cast<uint8_t>(2 + rng() % 8);
      }
      opts.push_back(len);
      for (int k = 2; k < len && opts.size() < 48; ++k) opts.push_back(static_cast<uint8_t>(rng()));
    }
    opts.resize(words * 4);
    // The aligned-TS prefix now and then, so both paths of the parser run.
    if (words == 3 && rng() % 2 == 0) {
      const auto value = static_cast<uint32_t>(rng());
      const auto echo = static_cast<uint32_t>(rng());
      opts = cat({nops(2), opt_ts(value, echo)});
    }
    Fields f;
    f.flags = static_cast<uint8_t>(rng());
    const Expected want = reference_options(opts, f.flags);
    const std::string where = "iteration " + std::to_string(iteration);
    const std::string v = verdict_of(segment(f, opts, pattern(rng() % 5)));
    if (!want.ok) {
      EXPECT_EQ(v, "tcp_bad_options") << where;
      ++rejected;
      continue;
    }
    ASSERT_EQ(v, "accepted") << where;
    ++accepted;
    expect_options_eq(seg.options, want.options, where);
    if (HasFailure()) break;
  }
  // The generator must exercise both outcomes substantially.
  EXPECT_GT(accepted, 5000);
  EXPECT_GT(rejected, 2000);
}

// ---- Writing ----

TEST_F(TcpHeaderTest, OptionsLengthFollowsTheAlignedLayouts) {
  struct Case {
    const char* name;
    tcp::Options o;
    uint8_t want_len;
    uint8_t want_blocks;
  };
  auto opts = [](uint16_t mss, bool ws, bool sp, bool ts, uint8_t sack) {
    tcp::Options o;
    o.mss = mss;
    o.has_window_scale = ws;
    o.window_scale = ws ? 7 : 0;
    o.sack_permitted = sp;
    o.has_timestamps = ts;
    o.sack_count = sack;
    return o;
  };
  const Case cases[] = {
      {"none", opts(0, false, false, false, 0), 0, 0},
      {"MSS", opts(1460, false, false, false, 0), 4, 0},
      {"WS", opts(0, true, false, false, 0), 4, 0},
      {"SACK-permitted", opts(0, false, true, false, 0), 4, 0},
      {"TS", opts(0, false, false, true, 0), 12, 0},
      {"SACK-permitted + TS share a word", opts(0, false, true, true, 0), 12, 0},
      {"Linux SYN", opts(1460, true, true, true, 0), 20, 0},
      {"SYN without TS", opts(1460, true, true, false, 0), 12, 0},
      {"1 block", opts(0, false, false, false, 1), 12, 1},
      {"4 blocks", opts(0, false, false, false, 4), 36, 4},
      {"TS + 1 block", opts(0, false, false, true, 1), 24, 1},
      {"TS + 2 blocks", opts(0, false, false, true, 2), 32, 2},
      {"TS + 3 blocks", opts(0, false, false, true, 3), 40, 3},
      {"TS + 4 blocks: 3 fit", opts(0, false, false, true, 4), 40, 3},
      {"everything: 2 blocks fit", opts(1460, true, true, true, 4), 40, 2},
      {"bogus count: 4 at most", opts(0, false, false, false, 200), 36, 4},
      {"bogus count with TS", opts(0, false, false, true, 5), 40, 3},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(tcp::options_length(c.o), c.want_len) << c.name;
    EXPECT_EQ(tcp::sack_blocks_written(c.o), c.want_blocks) << c.name;
  }
  // Every combination: a multiple of 4 within 40, and what write_header writes.
  for (int mask = 0; mask < 16; ++mask) {
    for (uint8_t sack = 0; sack <= 6; ++sack) {
      const tcp::Options o = opts((mask & 1) ? 1460 : 0, (mask & 2) != 0, (mask & 4) != 0,
                                  (mask & 8) != 0, sack);
      const uint8_t len = tcp::options_length(o);
      EXPECT_EQ(len % 4, 0) << mask << "/" << int{sack};
      EXPECT_LE(len, 40) << mask << "/" << int{sack};
      uint8_t buf[80];
      EXPECT_EQ(tcp::write_header(buf, {1, 2, 3, 4, 5, 6}, o), 20 + len) << mask << "/" << int{sack};
      EXPECT_EQ(buf[12] >> 4, (20 + len) / 4);
    }
  }
}

TEST_F(TcpHeaderTest, WritesTheFixedHeader) {
  uint8_t buf[64];
  std::fill(std::begin(buf), std::end(buf), 0xee);
  const tcp::HeaderFields h{0xc350, 0x01bb, 0x89abcdef, 0x01234567,
                            tcp::kFlagAck | tcp::kFlagPsh | tcp::kFlagCwr, 0x7210};
  ASSERT_EQ(tcp::write_header(buf, h, tcp::Options{}), 20);
  const Bytes want = {0xc3, 0x50, 0x01, 0xbb, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23,
                      0x45, 0x67, 0x50, 0x98, 0x72, 0x10, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Bytes(buf, buf + 20), want);
  for (size_t i = 20; i < sizeof buf; ++i) EXPECT_EQ(buf[i], 0xee) << "wrote past the header at " << i;
}

TEST_F(TcpHeaderTest, WritesTheLinuxSynLayout) {
  tcp::Options o;
  o.mss = 1460;
  o.sack_permitted = true;
  o.has_timestamps = true;
  o.ts_value = 0x0a0b0c0d;
  o.ts_echo = 0;
  o.has_window_scale = true;
  o.window_scale = 7;
  uint8_t buf[64];
  std::fill(std::begin(buf), std::end(buf), 0xee);
  ASSERT_EQ(tcp::write_header(buf, {1, 2, 3, 0, tcp::kFlagSyn, 64240}, o), 40);
  const Bytes want = {2, 4, 0x05, 0xb4,                          // MSS 1460
                      4, 2, 8, 10, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0,  // SACK-permitted, TS
                      1, 3, 3, 7};                               // NOP, WS 7
  EXPECT_EQ(Bytes(buf + 20, buf + 40), want);
  EXPECT_EQ(buf[12], 0xa0);
  EXPECT_EQ(buf[13], tcp::kFlagSyn);
  EXPECT_EQ(buf[40], 0xee);
}

TEST_F(TcpHeaderTest, WritesSynAckWithoutTimestamps) {
  tcp::Options o;
  o.mss = 1400;
  o.sack_permitted = true;
  o.has_window_scale = true;
  o.window_scale = 9;
  uint8_t buf[64];
  ASSERT_EQ(tcp::write_header(buf, {1, 2, 3, 4, tcp::kFlagSyn | tcp::kFlagAck, 1}, o), 32);
  const Bytes want = {2, 4, 0x05, 0x78, 1, 3, 3, 9, 1, 1, 4, 2};
  EXPECT_EQ(Bytes(buf + 20, buf + 32), want);
}

TEST_F(TcpHeaderTest, WritesTimestampsAndSackBlocksAligned) {
  tcp::Options o;
  o.has_timestamps = true;
  o.ts_value = 0x11111111;
  o.ts_echo = 0x22222222;
  o.sack_count = 4;  // only 3 fit beside TS; the first 3 go out
  o.sack[0] = {0xa0000000, 0xa0000100};
  o.sack[1] = {0xb0000000, 0xb0000100};
  o.sack[2] = {0xc0000000, 0xc0000100};
  o.sack[3] = {0xd0000000, 0xd0000100};
  uint8_t buf[64];
  ASSERT_EQ(tcp::write_header(buf, {1, 2, 3, 4, tcp::kFlagAck, 1}, o), 60);
  Bytes want = {1, 1, 8, 10, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 1, 1, 5, 26};
  for (int b = 0; b < 3; ++b) {
    put32(want, o.sack[b].left);
    put32(want, o.sack[b].right);
  }
  EXPECT_EQ(Bytes(buf + 20, buf + 60), want);
  EXPECT_EQ(buf[12], 0xf0);
}

TEST_F(TcpHeaderTest, NeverWritesAWindowScaleAbove14) {
  tcp::Options o;
  o.has_window_scale = true;
  o.window_scale = 15;
  uint8_t buf[64];
  ASSERT_EQ(tcp::write_header(buf, {1, 2, 3, 4, tcp::kFlagSyn, 1}, o), 24);
  EXPECT_EQ(Bytes(buf + 20, buf + 24), (Bytes{1, 3, 3, 14}));
}

TEST_F(TcpHeaderTest, WriteChecksumMatchesAnIndependentSum) {
  for (size_t payload_len : {0, 1, 2, 3, 7, 536, 1459, 1460, 1461, 8999, 65515 - 32}) {
    tcp::Options o;
    o.has_timestamps = true;
    o.ts_value = static_cast<uint32_t>(payload_len) * 7919u;
    o.ts_echo = 12345;
    Bytes buf(tcp::kMaxHeaderLen + payload_len);
    const uint16_t header_len = tcp::write_header(buf.data(), {7, 9, 1, 2, tcp::kFlagAck, 3}, o);
    ASSERT_EQ(header_len, 32);
    const Bytes payload = pattern(payload_len, static_cast<uint8_t>(payload_len));
    std::copy(payload.begin(), payload.end(), buf.begin() + header_len);
    buf.resize(header_len + payload_len);
    buf[16] = 0x12;  // leftovers in the field must not matter
    buf[17] = 0x34;
    tcp::write_checksum(buf.data(), static_cast<uint16_t>(buf.size()), kSrc, kDst);
    EXPECT_EQ(get16(buf, 16), reference_checksum(buf)) << payload_len;
    ASSERT_EQ(verdict_of(buf), "accepted") << payload_len;
    EXPECT_EQ(seg.payload_len, payload_len);
    EXPECT_EQ(Bytes(seg.payload, seg.payload + seg.payload_len), payload);
  }
}

// The send path's variant: the payload is copied in place first and summed
// on the way (checksum_copy); write_header sums the header from the values it
// writes. Every option layout, SACK blocks included, any payload length.
TEST_F(TcpHeaderTest, WriteHeaderWithThePayloadsSumMatchesAnIndependentChecksum) {
  std::mt19937 rng(1071);
  for (int round = 0; round < 600; ++round) {
    tcp::Options o;
    const bool syn = round % 5 == 0;
    if (syn) {
      o.mss = static_cast<uint16_t>(rng());
      o.has_window_scale = (round & 2) != 0;
      o.window_scale = static_cast<uint8_t>(rng() % 16);
      o.sack_permitted = (round & 4) != 0;
    }
    o.has_timestamps = round % 3 != 0;
    o.ts_value = static_cast<uint32_t>(rng());
    o.ts_echo = static_cast<uint32_t>(rng());
    o.sack_count = syn ? 0 : static_cast<uint8_t>(round % 5);
    for (uint8_t b = 0; b < o.sack_count; ++b) {
      o.sack[b] = tcp::SackBlock{static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng())};
    }
    const size_t payload_len = round < 10 ? static_cast<size_t>(round) : rng() % 1461;
    const Bytes payload = pattern(payload_len, static_cast<uint8_t>(round));
    const uint16_t header_len = static_cast<uint16_t>(tcp::kMinHeaderLen + tcp::options_length(o));
    Bytes buf(header_len + payload_len, 0xee);  // leftovers in every field must not matter
    const uint16_t payload_sum =
        net::checksum_copy(buf.data() + header_len, payload.data(), payload_len);
    const tcp::HeaderFields h{static_cast<uint16_t>(rng() | 1), 443, static_cast<uint32_t>(rng()),
                              static_cast<uint32_t>(rng()),
                              static_cast<uint8_t>(syn ? tcp::kFlagSyn : tcp::kFlagAck),
                              static_cast<uint16_t>(rng())};
    ASSERT_EQ(tcp::write_header(buf.data(), h, o, static_cast<uint16_t>(payload_len), payload_sum,
                                kSrc, kDst),
              header_len);
    EXPECT_EQ(get16(buf, 16), reference_checksum(buf)) << "round " << round;
    // The same bytes as the plain writer, but for the checksum field.
    Bytes plain(header_len);
    ASSERT_EQ(tcp::write_header(plain.data(), h, o), header_len);
    plain[16] = buf[16];
    plain[17] = buf[17];
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + header_len), plain) << "round " << round;
    ASSERT_EQ(verdict_of(buf), "accepted") << "round " << round;
    EXPECT_EQ(Bytes(seg.payload, seg.payload + seg.payload_len), payload);
  }
}

TEST_F(TcpHeaderTest, PseudoHeaderSumMatchesDpdkAndTheWireLayout) {
  const uint32_t addresses[][2] = {{kSrc, kDst},
                                   {ip(198, 19, 255, 254), ip(198, 18, 0, 1)},
                                   {0xffffffff, 0xffffffff},
                                   {0, 0},
                                   {0x0000ffff, 0xffff0000}};
  for (const auto& a : addresses) {
    for (uint16_t len : {uint16_t{20}, uint16_t{21}, uint16_t{1480}, uint16_t{65515}}) {
      const uint32_t sum = tcp::pseudo_header_sum(a[0], a[1], len);
      EXPECT_LE(sum, 0xffffu);
      // As DPDK computes it for checksum offload.
      rte_ipv4_hdr ip_header{};
      ip_header.version_ihl = 0x45;
      ip_header.total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + len));
      ip_header.next_proto_id = 6;
      ip_header.src_addr = rte_cpu_to_be_32(a[0]);
      ip_header.dst_addr = rte_cpu_to_be_32(a[1]);
      const uint16_t dpdk = rte_ipv4_phdr_cksum(&ip_header, 0);
      // Folded sums may differ only as 0x0000 versus 0xffff.
      EXPECT_TRUE(sum == dpdk || (sum == 0xffff && dpdk == 0) || (sum == 0 && dpdk == 0xffff))
          << std::hex << sum << " vs " << dpdk;
      // And from the wire bytes: the complement of RFC 1071 over them,
      // in big-endian, is the byte swap of ours.
      const Bytes ph = pseudo_header(a[0], a[1], len);
      const uint16_t be = static_cast<uint16_t>(~internet_checksum(ph.data(), ph.size()));
      const uint16_t ours_be = static_cast<uint16_t>((sum & 0xff) << 8 | sum >> 8);
      EXPECT_TRUE(ours_be == be || (ours_be == 0xffff && be == 0) || (ours_be == 0 && be == 0xffff))
          << std::hex << ours_be << " vs " << be;
    }
  }
}

TEST_F(TcpHeaderTest, PseudoHeaderSumInTheFieldCompletesLikeOffload) {
  // What a NIC does with RTE_MBUF_F_TX_TCP_CKSUM: it sums the segment with
  // the pseudo-header sum already in the checksum field and stores the
  // complement. The result must be the checksum write_checksum computes.
  Bytes buf(tcp::kMaxHeaderLen + 101);
  const uint16_t header_len = tcp::write_header(buf.data(), {1000, 2000, 5, 6, tcp::kFlagAck, 100}, {});
  buf.resize(header_len + 101);
  const Bytes payload = pattern(101);
  std::copy(payload.begin(), payload.end(), buf.begin() + header_len);
  const uint16_t phdr = static_cast<uint16_t>(tcp::pseudo_header_sum(kSrc, kDst, static_cast<uint16_t>(buf.size())));
  std::memcpy(buf.data() + 16, &phdr, 2);
  const uint16_t nic = static_cast<uint16_t>(~rte_raw_cksum(buf.data(), buf.size()));
  tcp::write_checksum(buf.data(), static_cast<uint16_t>(buf.size()), kSrc, kDst);
  uint16_t ours;
  std::memcpy(&ours, buf.data() + 16, 2);
  EXPECT_EQ(nic, ours);
}

// ---- Round trip ----

TEST_F(TcpHeaderTest, RoundTripsRandomSegments) {
  std::mt19937 rng(7323);
  for (int iteration = 0; iteration < 5000; ++iteration) {
    tcp::HeaderFields h{};
    h.src_port = static_cast<uint16_t>(1 + rng() % 65535);
    h.dst_port = static_cast<uint16_t>(1 + rng() % 65535);
    h.seq = rng();
    h.ack = rng();
    h.flags = static_cast<uint8_t>(rng());
    if (iteration % 3 == 0) h.flags |= tcp::kFlagSyn;
    h.window = static_cast<uint16_t>(rng());
    tcp::Options o;
    if (rng() % 2) o.mss = static_cast<uint16_t>(1 + rng() % 65535);
    o.has_window_scale = rng() % 2;
    if (o.has_window_scale) o.window_scale = static_cast<uint8_t>(rng() % 16);
    o.sack_permitted = rng() % 2;
    o.has_timestamps = rng() % 2;
    if (o.has_timestamps) {
      o.ts_value = rng();
      o.ts_echo = rng();
    }
    o.sack_count = static_cast<uint8_t>(rng() % 5);
    for (uint8_t b = 0; b < o.sack_count; ++b) {
      o.sack[b].left = static_cast<uint32_t>(rng());
      o.sack[b].right = static_cast<uint32_t>(rng());
    }
    const size_t payload_len = rng() % 1500;

    Bytes buf(tcp::kMaxHeaderLen + payload_len, 0xee);
    const uint16_t header_len = tcp::write_header(buf.data(), h, o);
    ASSERT_EQ(header_len, 20 + tcp::options_length(o));
    const Bytes payload = pattern(payload_len, static_cast<uint8_t>(iteration));
    std::copy(payload.begin(), payload.end(), buf.begin() + header_len);
    buf.resize(header_len + payload_len);
    tcp::write_checksum(buf.data(), static_cast<uint16_t>(buf.size()), kSrc, kDst);
    ASSERT_EQ(get16(buf, 16), reference_checksum(buf));

    const std::string where = "iteration " + std::to_string(iteration);
    ASSERT_EQ(verdict_of(buf), "accepted") << where;
    EXPECT_EQ(seg.src_port, h.src_port);
    EXPECT_EQ(seg.dst_port, h.dst_port);
    EXPECT_EQ(seg.seq, h.seq);
    EXPECT_EQ(seg.ack, h.ack);
    EXPECT_EQ(seg.flags, h.flags);
    EXPECT_EQ(seg.window, h.window);
    EXPECT_EQ(seg.urgent, 0);
    EXPECT_EQ(seg.header_len, header_len);
    EXPECT_EQ(seg.payload_len, payload_len);
    EXPECT_EQ(Bytes(seg.payload, seg.payload + seg.payload_len), payload);

    const bool syn = (h.flags & tcp::kFlagSyn) != 0;
    tcp::Options want;
    if (syn) {
      want.mss = o.mss;
      want.has_window_scale = o.has_window_scale;
      want.window_scale = std::min<uint8_t>(o.window_scale, 14);
      want.sack_permitted = o.sack_permitted;
    }
    want.has_timestamps = o.has_timestamps;
    want.ts_value = o.ts_value;
    want.ts_echo = (h.flags & tcp::kFlagAck) != 0 ? o.ts_echo : 0;
    want.sack_count = tcp::sack_blocks_written(o);
    EXPECT_LE(want.sack_count, o.sack_count);
    for (uint8_t b = 0; b < want.sack_count; ++b) want.sack[b] = o.sack[b];
    expect_options_eq(seg.options, want, where);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace mtlsgw::testing
