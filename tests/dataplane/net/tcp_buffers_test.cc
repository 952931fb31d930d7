#include "dataplane/net/tcp_buffers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <map>
#include <random>
#include <vector>

namespace mtlsgw::testing {
namespace {

using net::tcp::ByteSpans;
using net::tcp::ReceiveBuffer;
using net::tcp::SendBuffer;
using Bytes = std::vector<uint8_t>;

Bytes pattern(uint32_t n, uint8_t seed) {
  Bytes b(n);
  for (uint32_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return b;
}

Bytes filled(uint32_t n, uint8_t value) { return Bytes(n, value); }

Bytes slice(const Bytes& b, uint32_t from, uint32_t to) {
  return Bytes(b.begin() + from, b.begin() + to);
}

Bytes flatten(const ByteSpans& s) {
  Bytes out(s.data[0], s.data[0] + s.len[0]);
  if (s.len[1] != 0) out.insert(out.end(), s.data[1], s.data[1] + s.len[1]);
  return out;
}

// Storage with guard bytes on both sides: a ring that writes outside its slot
// would corrupt a neighbour in the worker's slab.
class Guarded {
 public:
  static constexpr uint32_t kGuard = 64;
  static constexpr uint8_t kGuardByte = 0xA5;
  explicit Guarded(uint32_t capacity)
      : capacity_(capacity), bytes_(capacity + 2 * kGuard, kGuardByte) {}
  uint8_t* storage() { return bytes_.data() + kGuard; }
  uint8_t at(uint32_t ring_index) const { return bytes_[kGuard + ring_index]; }
  bool guards_intact() const {
    for (uint32_t i = 0; i < kGuard; ++i) {
      if (bytes_[i] != kGuardByte || bytes_[kGuard + capacity_ + i] != kGuardByte) return false;
    }
    return true;
  }

 private:
  uint32_t capacity_;
  Bytes bytes_;
};

Bytes read_all(ReceiveBuffer& rb) {
  Bytes out(rb.readable());
  EXPECT_EQ(rb.read(out.data(), static_cast<uint32_t>(out.size())), out.size());
  return out;
}

using Block = std::pair<uint32_t, uint32_t>;

std::vector<Block> sack_of(const ReceiveBuffer& rb, uint8_t max = ReceiveBuffer::kMaxRanges) {
  uint32_t out[ReceiveBuffer::kMaxRanges][2];
  const uint8_t n = rb.sack_ranges(out, max);
  std::vector<Block> blocks;
  for (uint8_t i = 0; i < n; ++i) blocks.emplace_back(out[i][0], out[i][1]);
  return blocks;
}

// ---------------------------------------------------------------- SendBuffer

TEST(SendBufferTest, AttachRoundsCapacityDownToAPowerOfTwo) {
  Guarded g(1024);
  SendBuffer sb;
  sb.attach(g.storage(), 1000);
  EXPECT_EQ(sb.capacity(), 512u);
  EXPECT_EQ(sb.free_space(), 512u);
  sb.attach(g.storage(), 1024);
  EXPECT_EQ(sb.capacity(), 1024u);
  sb.attach(g.storage(), 0x8000'0000u + 5);  // never written: only the arithmetic is checked
  EXPECT_EQ(sb.capacity(), 0x8000'0000u);
  sb.attach(g.storage(), 0xFFFF'FFFFu);
  EXPECT_EQ(sb.capacity(), 0x8000'0000u);
  sb.attach(nullptr, 64);
  EXPECT_EQ(sb.capacity(), 0u);
  const Bytes data = pattern(8, 1);
  EXPECT_EQ(sb.write(data.data(), 8), 0u);
  sb.attach(g.storage(), 0);
  EXPECT_EQ(sb.write(data.data(), 8), 0u);
  EXPECT_TRUE(g.guards_intact());
}

TEST(SendBufferTest, WriteAcceptsUpToFreeSpace) {
  Guarded g(16);
  SendBuffer sb;
  sb.attach(g.storage(), 16);
  const Bytes data = pattern(32, 3);
  EXPECT_EQ(sb.write(data.data(), 10), 10u);
  EXPECT_EQ(sb.size(), 10u);
  EXPECT_EQ(sb.free_space(), 6u);
  EXPECT_EQ(sb.write(data.data() + 10, 10), 6u);
  EXPECT_EQ(sb.size(), 16u);
  EXPECT_EQ(sb.free_space(), 0u);
  EXPECT_EQ(sb.write(data.data() + 16, 1), 0u);
  Bytes out(16);
  EXPECT_EQ(sb.copy_out(0, out.data(), 16), 16u);
  EXPECT_EQ(out, slice(data, 0, 16));
  EXPECT_TRUE(g.guards_intact());
}

TEST(SendBufferTest, CopyOutFromAnyOffsetIsCutAtTheEnd) {
  Guarded g(64);
  SendBuffer sb;
  sb.attach(g.storage(), 64);
  const Bytes data = pattern(40, 9);
  ASSERT_EQ(sb.write(data.data(), 40), 40u);
  Bytes out(64, 0);
  EXPECT_EQ(sb.copy_out(5, out.data(), 10), 10u);
  EXPECT_EQ(slice(out, 0, 10), slice(data, 5, 15));
  EXPECT_EQ(sb.copy_out(30, out.data(), 20), 10u);  // only 10 held past offset 30
  EXPECT_EQ(slice(out, 0, 10), slice(data, 30, 40));
  EXPECT_EQ(sb.copy_out(40, out.data(), 1), 0u);
  EXPECT_EQ(sb.copy_out(1000, out.data(), 1), 0u);
  EXPECT_EQ(sb.copy_out(0, out.data(), 0), 0u);
}

TEST(SendBufferTest, RingWrapInWriteCopyOutViewAndAcknowledge) {
  Guarded g(16);
  SendBuffer sb;
  sb.attach(g.storage(), 16);
  const Bytes first = pattern(12, 1);
  ASSERT_EQ(sb.write(first.data(), 12), 12u);
  sb.acknowledge(10);  // SND.UNA at ring index 10
  EXPECT_EQ(sb.size(), 2u);
  const Bytes second = pattern(14, 50);
  ASSERT_EQ(sb.write(second.data(), 14), 14u);  // ring indexes 12..15 then 0..9
  Bytes expected = slice(first, 10, 12);
  expected.insert(expected.end(), second.begin(), second.end());
  ASSERT_EQ(sb.size(), 16u);

  Bytes out(16);
  EXPECT_EQ(sb.copy_out(0, out.data(), 16), 16u);
  EXPECT_EQ(out, expected);
  // An offset range that starts before the wrap and ends after it.
  Bytes part(8);
  EXPECT_EQ(sb.copy_out(3, part.data(), 8), 8u);
  EXPECT_EQ(part, slice(expected, 3, 11));
  // Entirely after the wrap.
  EXPECT_EQ(sb.copy_out(7, part.data(), 8), 8u);
  EXPECT_EQ(part, slice(expected, 7, 15));

  const ByteSpans v = sb.view(3, 8);
  EXPECT_EQ(v.len[0], 3u);  // ring indexes 13..15
  EXPECT_EQ(v.len[1], 5u);  // ring indexes 0..4
  EXPECT_EQ(flatten(v), slice(expected, 3, 11));
  const ByteSpans tail = sb.view(10, 100);
  EXPECT_EQ(tail.len[1], 0u);
  EXPECT_EQ(flatten(tail), slice(expected, 10, 16));
  EXPECT_EQ(sb.view(16, 1).len[0], 0u);

  sb.acknowledge(9);  // across the wrap
  EXPECT_EQ(sb.size(), 7u);
  Bytes rest(7);
  EXPECT_EQ(sb.copy_out(0, rest.data(), 7), 7u);
  EXPECT_EQ(rest, slice(expected, 9, 16));
  EXPECT_TRUE(g.guards_intact());
}

// RFC 1071 over the bytes as the stack reads them (native 16-bit words,
// an odd last byte padded with zero), end-around carry.
uint16_t reference_sum(const Bytes& b) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += uint64_t{b[i]} | uint64_t{b[i + 1]} << 8;
  if (b.size() % 2 != 0) sum += b.back();
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The summing copy_out copies what copy_out copies and sums it, also when
// the range wraps around the ring at an odd offset of the copy (the second
// piece's bytes then sit in the other half of each 16-bit word).
TEST(SendBufferTest, CopyOutWithSumAcrossTheWrapAtEveryParity) {
  constexpr uint32_t kCapacity = 256;
  Guarded g(kCapacity);
  SendBuffer sb;
  sb.attach(g.storage(), kCapacity);
  std::mt19937 rng(1624);
  uint32_t wraps_at_odd_offset = 0;
  uint32_t una_index = 0;  // ring index of SND.UNA
  for (int round = 0; round < 2000; ++round) {
    // Move SND.UNA to a random ring position (acknowledging a whole ring
    // leaves it where it was), then fill the ring.
    sb.acknowledge(sb.size());
    const Bytes skip = pattern(rng() % kCapacity, static_cast<uint8_t>(round));
    sb.write(skip.data(), static_cast<uint32_t>(skip.size()));
    sb.acknowledge(sb.size());
    una_index = static_cast<uint32_t>((una_index + skip.size()) % kCapacity);
    const Bytes data = pattern(kCapacity, static_cast<uint8_t>(round * 3 + 1));
    ASSERT_EQ(sb.write(data.data(), kCapacity), kCapacity);
    const uint32_t offset = rng() % (kCapacity + 8);
    const uint32_t len = rng() % (kCapacity + 8);
    Bytes plain(len + 1, 0), summed(len + 1, 0);
    uint16_t sum = 0xabcd;
    const uint32_t n = sb.copy_out(offset, plain.data(), len);
    ASSERT_EQ(sb.copy_out(offset, summed.data(), len, sum), n);
    ASSERT_EQ(plain, summed);
    EXPECT_EQ(sum, reference_sum(slice(summed, 0, n))) << "round " << round;
    const uint32_t room = kCapacity - (una_index + offset) % kCapacity;
    if (n > room && room % 2 == 1) ++wraps_at_odd_offset;
  }
  EXPECT_GT(wraps_at_odd_offset, 100u);
  EXPECT_TRUE(g.guards_intact());
}

TEST(SendBufferTest, AcknowledgeIsClampedAndClearEmpties) {
  Guarded g(16);
  SendBuffer sb;
  sb.attach(g.storage(), 16);
  const Bytes data = pattern(10, 4);
  sb.write(data.data(), 10);
  sb.acknowledge(1000);
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.free_space(), 16u);
  // Still consistent afterwards: new data comes out intact.
  sb.write(data.data(), 10);
  Bytes out(10);
  EXPECT_EQ(sb.copy_out(0, out.data(), 10), 10u);
  EXPECT_EQ(out, data);
  sb.clear();
  EXPECT_EQ(sb.size(), 0u);
  EXPECT_EQ(sb.copy_out(0, out.data(), 10), 0u);
}

TEST(SendBufferTest, RandomOperationsMatchADequeModel) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    const uint32_t capacity = 1u << std::uniform_int_distribution<uint32_t>(0, 10)(rng);
    Guarded g(capacity);
    SendBuffer sb;
    sb.attach(g.storage(), capacity);
    std::deque<uint8_t> model;
    uint8_t next = 0;
    auto rand_upto = [&](uint32_t hi) {
      return std::uniform_int_distribution<uint32_t>(0, hi)(rng);
    };
    for (int step = 0; step < 3000; ++step) {
      switch (rand_upto(3)) {
        case 0: {
          Bytes data(rand_upto(capacity + 3));
          for (auto& b : data) b = next++;
          const uint32_t took = sb.write(data.data(), static_cast<uint32_t>(data.size()));
          const uint32_t expect = std::min<uint32_t>(
              static_cast<uint32_t>(data.size()), capacity - static_cast<uint32_t>(model.size()));
          ASSERT_EQ(took, expect) << "seed " << seed << " step " << step;
          model.insert(model.end(), data.begin(), data.begin() + took);
          next = static_cast<uint8_t>(next - (data.size() - took));
          break;
        }
        case 1: {
          const uint32_t n = rand_upto(static_cast<uint32_t>(model.size()) + 2);
          sb.acknowledge(n);
          model.erase(model.begin(), model.begin() + std::min<size_t>(n, model.size()));
          break;
        }
        case 2: {
          const uint32_t off = rand_upto(static_cast<uint32_t>(model.size()) + 2);
          const uint32_t len = rand_upto(capacity + 2);
          Bytes out(len + 1, 0xEE);
          const uint32_t got = sb.copy_out(off, out.data(), len);
          const uint32_t expect =
              off >= model.size()
                  ? 0
                  : std::min<uint32_t>(len, static_cast<uint32_t>(model.size()) - off);
          ASSERT_EQ(got, expect) << "seed " << seed << " step " << step;
          ASSERT_TRUE(std::equal(out.begin(), out.begin() + got,
                                 model.begin() + std::min<size_t>(off, model.size())));
          ASSERT_EQ(out[got], 0xEE);  // nothing written past what it returned
          break;
        }
        case 3: {
          const uint32_t off = rand_upto(static_cast<uint32_t>(model.size()) + 2);
          const uint32_t len = rand_upto(capacity + 2);
          const Bytes got = flatten(sb.view(off, len));
          const uint32_t expect =
              off >= model.size()
                  ? 0
                  : std::min<uint32_t>(len, static_cast<uint32_t>(model.size()) - off);
          ASSERT_EQ(got.size(), expect);
          ASSERT_TRUE(std::equal(got.begin(), got.end(),
                                 model.begin() + std::min<size_t>(off, model.size())));
          break;
        }
      }
      ASSERT_EQ(sb.size(), model.size());
      ASSERT_EQ(sb.free_space(), capacity - model.size());
    }
    EXPECT_TRUE(g.guards_intact()) << "seed " << seed;
  }
}

// ------------------------------------------------------------- ReceiveBuffer

class ReceiveBufferTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kCapacity = 64;
  void SetUp() override { rb.attach(g.storage(), kCapacity); }
  ReceiveBuffer::InsertResult put(uint32_t offset, const Bytes& data) {
    return rb.insert(offset, data.data(), static_cast<uint32_t>(data.size()));
  }
  // Moves RCV.NXT and the reader to ring index `at`, so that what follows
  // starts there.
  void advance_ring_to(uint32_t at) {
    const Bytes filler = pattern(at, 200);
    ASSERT_EQ(put(0, filler).in_order, at);
    ASSERT_EQ(read_all(rb), filler);
  }
  Guarded g{kCapacity};
  ReceiveBuffer rb;
};

TEST_F(ReceiveBufferTest, AttachRoundsCapacityAndEmpties) {
  EXPECT_EQ(rb.capacity(), kCapacity);
  EXPECT_EQ(rb.free_space(), kCapacity);
  EXPECT_EQ(rb.readable(), 0u);
  put(0, pattern(5, 1));
  put(10, pattern(5, 1));
  rb.attach(g.storage(), 100);
  EXPECT_EQ(rb.capacity(), 64u);
  EXPECT_EQ(rb.readable(), 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 0u);
  EXPECT_EQ(rb.range_count(), 0u);
  ReceiveBuffer none;
  none.attach(nullptr, 64);
  const Bytes data = pattern(4, 1);
  EXPECT_EQ(none.insert(0, data.data(), 4).in_order, 0u);
  EXPECT_EQ(none.free_space(), 0u);
}

TEST_F(ReceiveBufferTest, InOrderAppendReadAndPeekAcrossTheWrap) {
  advance_ring_to(54);
  const Bytes data = pattern(20, 7);  // ring indexes 54..63 then 0..9
  const auto r = put(0, data);
  EXPECT_EQ(r.in_order, 20u);
  EXPECT_FALSE(r.out_of_order || r.duplicate || r.trimmed || r.dropped_no_range || r.filled_gap);
  EXPECT_EQ(rb.readable(), 20u);
  EXPECT_EQ(rb.free_space(), 44u);
  ByteSpans s = rb.peek();
  EXPECT_EQ(s.len[0], 10u);
  EXPECT_EQ(s.len[1], 10u);
  EXPECT_EQ(flatten(s), data);
  rb.consume(3);
  EXPECT_EQ(flatten(rb.peek()), slice(data, 3, 20));
  Bytes out(9);
  EXPECT_EQ(rb.read(out.data(), 9), 9u);  // across the wrap
  EXPECT_EQ(out, slice(data, 3, 12));
  s = rb.peek();
  EXPECT_EQ(s.len[1], 0u);
  EXPECT_EQ(flatten(s), slice(data, 12, 20));
  rb.consume(1000);  // clamped
  EXPECT_EQ(rb.readable(), 0u);
  EXPECT_EQ(rb.read(out.data(), 9), 0u);
  EXPECT_EQ(rb.peek().len[0], 0u);
  EXPECT_TRUE(g.guards_intact());
}

TEST_F(ReceiveBufferTest, InOrderDataIsTrimmedAtTheWindow) {
  const Bytes data = pattern(80, 1);
  auto r = put(0, data);
  EXPECT_EQ(r.in_order, 64u);
  EXPECT_TRUE(r.trimmed);
  EXPECT_EQ(rb.free_space(), 0u);
  r = rb.insert(0, data.data() + 64, 16);  // zero window
  EXPECT_EQ(r.in_order, 0u);
  EXPECT_TRUE(r.trimmed);
  Bytes out(10);
  rb.read(out.data(), 10);
  r = rb.insert(0, data.data() + 64, 16);
  EXPECT_EQ(r.in_order, 10u);
  EXPECT_TRUE(r.trimmed);
  Bytes all = out;
  const Bytes rest = read_all(rb);
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(all, slice(data, 0, 74));
  EXPECT_TRUE(g.guards_intact());
}

TEST_F(ReceiveBufferTest, ZeroLengthInsertChangesNothing) {
  const Bytes data = pattern(4, 1);
  EXPECT_EQ(rb.insert(0, data.data(), 0).in_order, 0u);
  put(8, data);
  const auto r = rb.insert(2, data.data(), 0);
  EXPECT_FALSE(r.out_of_order || r.duplicate || r.trimmed || r.dropped_no_range);
  EXPECT_EQ(rb.insert(0, data.data(), 0).in_order, 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 4u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{8, 12}}));
}

TEST_F(ReceiveBufferTest, OutOfOrderDataWaitsForTheHole) {
  const Bytes data = pattern(12, 3);
  auto r = put(4, slice(data, 4, 12));
  EXPECT_EQ(r.in_order, 0u);
  EXPECT_TRUE(r.out_of_order);
  EXPECT_FALSE(r.duplicate || r.trimmed || r.dropped_no_range || r.filled_gap);
  EXPECT_EQ(rb.readable(), 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  EXPECT_EQ(rb.free_space(), 64u);  // islands lie inside the window
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{4, 12}}));
  r = put(0, slice(data, 0, 4));
  EXPECT_EQ(r.in_order, 12u);
  EXPECT_TRUE(r.filled_gap);
  EXPECT_FALSE(r.out_of_order || r.duplicate);
  EXPECT_EQ(rb.out_of_order_bytes(), 0u);
  EXPECT_EQ(rb.range_count(), 0u);
  EXPECT_TRUE(sack_of(rb).empty());
  EXPECT_EQ(read_all(rb), data);
}

TEST_F(ReceiveBufferTest, IslandAcrossTheRingWrapJoinsWhenTheHoleFills) {
  advance_ring_to(60);
  const Bytes data = pattern(20, 9);
  // Island at offsets 2..12: ring indexes 62, 63, 0..7.
  auto r = put(2, slice(data, 2, 12));
  EXPECT_TRUE(r.out_of_order);
  // Another island entirely after the wrap.
  r = put(14, slice(data, 14, 20));
  EXPECT_EQ(rb.range_count(), 2u);
  r = put(12, slice(data, 12, 14));  // joins the two islands
  EXPECT_EQ(r.in_order, 0u);
  EXPECT_EQ(rb.range_count(), 1u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{2, 20}}));
  r = put(0, slice(data, 0, 2));
  EXPECT_EQ(r.in_order, 20u);
  EXPECT_EQ(read_all(rb), data);
  EXPECT_TRUE(g.guards_intact());
}

TEST_F(ReceiveBufferTest, OverlapOnTheLeftOfAnIslandKeepsTheHeldBytes) {
  put(4, filled(4, 0x11));                 // [4, 8)
  const auto r = put(2, filled(4, 0x22));  // [2, 6): only [2, 4) is new
  EXPECT_TRUE(r.out_of_order);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(rb.out_of_order_bytes(), 6u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{2, 8}}));
  put(0, filled(2, 0x33));
  EXPECT_EQ(read_all(rb), (Bytes{0x33, 0x33, 0x22, 0x22, 0x11, 0x11, 0x11, 0x11}));
}

TEST_F(ReceiveBufferTest, OverlapOnTheRightOfAnIslandKeepsTheHeldBytes) {
  put(4, filled(4, 0x11));                 // [4, 8)
  const auto r = put(6, filled(6, 0x22));  // [6, 12): only [8, 12) is new
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{4, 12}}));
  put(0, filled(4, 0x33));
  Bytes expected = filled(4, 0x33);
  for (int i = 0; i < 4; ++i) expected.push_back(0x11);
  for (int i = 0; i < 4; ++i) expected.push_back(0x22);
  EXPECT_EQ(read_all(rb), expected);
}

TEST_F(ReceiveBufferTest, ASegmentSpanningSeveralIslandsFillsOnlyTheGaps) {
  put(4, filled(2, 0x11));   // [4, 6)
  put(8, filled(2, 0x12));   // [8, 10)
  put(12, filled(2, 0x13));  // [12, 14)
  put(30, filled(2, 0x14));  // [30, 32): untouched
  ASSERT_EQ(rb.range_count(), 4u);
  const auto r = put(3, filled(12, 0x22));  // [3, 15)
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(rb.range_count(), 2u);
  EXPECT_EQ(rb.out_of_order_bytes(), 12u + 2u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{3, 15}, {30, 32}}));
  const auto joined = put(0, filled(3, 0x33));
  EXPECT_EQ(joined.in_order, 15u);
  EXPECT_EQ(read_all(rb), (Bytes{0x33, 0x33, 0x33, 0x22, 0x11, 0x11, 0x22, 0x22, 0x12, 0x12, 0x22,
                                 0x22, 0x13, 0x13, 0x22}));
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{15, 17}}));  // offsets follow RCV.NXT
}

TEST_F(ReceiveBufferTest, AdjacentSegmentsMergeIntoOneIsland) {
  put(4, filled(4, 1));  // [4, 8)
  put(8, filled(2, 2));  // touches on the right
  EXPECT_EQ(rb.range_count(), 1u);
  put(2, filled(2, 3));  // touches on the left
  EXPECT_EQ(rb.range_count(), 1u);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{2, 10}}));
}

TEST_F(ReceiveBufferTest, DuplicateInsideAnIslandWritesNothing) {
  put(4, filled(8, 0x11));  // [4, 12)
  auto r = put(6, filled(2, 0x99));
  EXPECT_TRUE(r.duplicate);
  EXPECT_TRUE(r.out_of_order);
  EXPECT_EQ(r.in_order, 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  r = put(4, filled(8, 0x99));  // exactly the island
  EXPECT_TRUE(r.duplicate);
  // A segment over two islands and the gap between them is not a duplicate.
  put(14, filled(2, 0x12));  // [14, 16)
  r = put(10, filled(6, 0x55));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(rb.out_of_order_bytes(), 12u);
  put(0, filled(4, 0x33));
  Bytes expected = filled(4, 0x33);
  for (int i = 0; i < 8; ++i) expected.push_back(0x11);
  expected.push_back(0x55);
  expected.push_back(0x55);
  expected.push_back(0x12);
  expected.push_back(0x12);
  EXPECT_EQ(read_all(rb), expected);
}

TEST_F(ReceiveBufferTest, InOrderSegmentAbsorbsTouchingIslandsAndStopsAtAGap) {
  const Bytes data = pattern(40, 5);
  put(4, slice(data, 4, 8));     // [4, 8)
  put(10, slice(data, 10, 12));  // [10, 12): touches the segment's end
  put(20, slice(data, 20, 24));  // [20, 24): beyond the next gap
  const auto r = put(0, slice(data, 0, 10));
  EXPECT_EQ(r.in_order, 12u);
  EXPECT_TRUE(r.filled_gap);
  EXPECT_EQ(rb.range_count(), 1u);
  EXPECT_EQ(rb.out_of_order_bytes(), 4u);
  EXPECT_EQ(rb.free_space(), 64u - 12u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{8, 12}}));
  EXPECT_EQ(read_all(rb), slice(data, 0, 12));
  // A segment that only partly fills the next gap: in order, island stays.
  auto partial = put(0, slice(data, 12, 15));
  EXPECT_EQ(partial.in_order, 3u);
  EXPECT_TRUE(partial.filled_gap);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{5, 9}}));
  partial = put(0, slice(data, 15, 22));  // overlaps the island's start
  EXPECT_EQ(partial.in_order, 9u);
  EXPECT_EQ(rb.range_count(), 0u);
  EXPECT_EQ(read_all(rb), slice(data, 12, 24));
}

TEST_F(ReceiveBufferTest, OutOfOrderDataIsTrimmedAtTheWindow) {
  advance_ring_to(40);
  put(0, pattern(16, 1));  // readable 16: window 48
  ASSERT_EQ(rb.free_space(), 48u);
  auto r = put(40, filled(12, 0x44));  // [40, 52): [48, 52) is outside
  EXPECT_TRUE(r.trimmed);
  EXPECT_TRUE(r.out_of_order);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{40, 48}}));
  r = put(48, filled(4, 0x45));  // entirely outside
  EXPECT_TRUE(r.trimmed);
  EXPECT_FALSE(r.out_of_order || r.duplicate || r.dropped_no_range);
  r = put(1000, filled(4, 0x45));
  EXPECT_TRUE(r.trimmed);
  EXPECT_EQ(rb.out_of_order_bytes(), 8u);
  r = rb.insert(0xFFFF'FFF0u, filled(32, 0).data(), 32);  // offset + len overflows 32 bits
  EXPECT_TRUE(r.trimmed);
  EXPECT_EQ(rb.range_count(), 1u);
  // The unread 16 bytes sit right below the island's ring slots: the island
  // must not have touched them.
  EXPECT_EQ(read_all(rb), pattern(16, 1));
  EXPECT_EQ(rb.free_space(), 64u);
  r = put(48, filled(4, 0x46));  // inside the window now that it was read
  EXPECT_FALSE(r.trimmed);
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{40, 52}}));
  EXPECT_TRUE(g.guards_intact());
}

TEST_F(ReceiveBufferTest, SegmentThatFillsTheWholeWindowOverIslandsIsTrimmedOnce) {
  const Bytes data = pattern(70, 8);
  put(10, slice(data, 10, 20));
  put(30, slice(data, 30, 40));
  const auto r = put(0, data);
  EXPECT_EQ(r.in_order, 64u);
  EXPECT_TRUE(r.trimmed);
  EXPECT_EQ(rb.range_count(), 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 0u);
  EXPECT_EQ(read_all(rb), slice(data, 0, 64));
}

TEST_F(ReceiveBufferTest, NinthDisjointIslandIsDroppedButTouchingOnesAreTaken) {
  // Islands [2k+... ]: offsets 2, 6, 10, ..., 30, each 2 bytes long.
  for (uint32_t k = 0; k < ReceiveBuffer::kMaxRanges; ++k) {
    ASSERT_FALSE(put(2 + 4 * k, filled(2, static_cast<uint8_t>(k + 1))).dropped_no_range);
  }
  ASSERT_EQ(rb.range_count(), ReceiveBuffer::kMaxRanges);
  ASSERT_EQ(rb.out_of_order_bytes(), 16u);
  const auto sack_before = sack_of(rb);

  auto r = put(40, filled(4, 0xDD));
  EXPECT_TRUE(r.dropped_no_range);
  EXPECT_TRUE(r.out_of_order);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.in_order, 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 16u);
  EXPECT_EQ(sack_of(rb), sack_before);  // a dropped segment touches no island's recency
  for (uint32_t i = 40; i < 44; ++i) EXPECT_NE(g.at(i), 0xDD) << i;  // nothing written

  r = put(32, filled(2, 0xEE));  // touches the last island [30, 32)
  EXPECT_FALSE(r.dropped_no_range);
  EXPECT_EQ(rb.range_count(), ReceiveBuffer::kMaxRanges);
  r = put(4, filled(2, 0xEE));  // bridges [2, 4) and [6, 8): frees a range
  EXPECT_FALSE(r.dropped_no_range);
  EXPECT_EQ(rb.range_count(), ReceiveBuffer::kMaxRanges - 1);
  r = put(40, filled(4, 0xDD));  // now there is room
  EXPECT_FALSE(r.dropped_no_range);
  EXPECT_EQ(rb.range_count(), ReceiveBuffer::kMaxRanges);
  r = put(50, filled(1, 0xDD));
  EXPECT_TRUE(r.dropped_no_range);
  // In-order data is never refused for lack of a range, and frees them.
  r = put(0, filled(2, 0));
  EXPECT_EQ(r.in_order, 8u);
  EXPECT_EQ(rb.range_count(), ReceiveBuffer::kMaxRanges - 1);
  EXPECT_FALSE(put(42, filled(8, 0xDD)).dropped_no_range);  // offsets now from the new RCV.NXT
}

TEST_F(ReceiveBufferTest, SackBlocksComeMostRecentlyTouchedFirst) {
  put(10, filled(2, 1));  // A
  put(20, filled(2, 2));  // B
  put(30, filled(2, 3));  // C
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{30, 32}, {20, 22}, {10, 12}}));
  put(10, filled(1, 1));  // duplicate inside A: A holds the latest segment
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{10, 12}, {30, 32}, {20, 22}}));
  put(22, filled(2, 2));  // extends B
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{20, 24}, {10, 12}, {30, 32}}));
  put(24, filled(6, 4));  // bridges B and C
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{20, 32}, {10, 12}}));
  put(40, filled(2, 5));  // D
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{40, 42}, {20, 32}, {10, 12}}));
  EXPECT_EQ(sack_of(rb, 2), (std::vector<Block>{{40, 42}, {20, 32}}));
  EXPECT_EQ(sack_of(rb, 0), (std::vector<Block>{}));
  // Filling the first hole removes A from the list; the order of the rest holds.
  put(0, filled(10, 0));
  EXPECT_EQ(sack_of(rb), (std::vector<Block>{{28, 30}, {8, 20}}));
}

TEST_F(ReceiveBufferTest, ClearForgetsEverything) {
  put(0, filled(5, 1));
  put(10, filled(5, 1));
  rb.clear();
  EXPECT_EQ(rb.readable(), 0u);
  EXPECT_EQ(rb.out_of_order_bytes(), 0u);
  EXPECT_EQ(rb.range_count(), 0u);
  EXPECT_EQ(rb.free_space(), kCapacity);
  const Bytes data = pattern(8, 2);
  EXPECT_EQ(put(0, data).in_order, 8u);
  EXPECT_EQ(read_all(rb), data);
}

// --------------------------------------- place(): copy before the checksum

TEST_F(ReceiveBufferTest, PlacedBytesAreSummedAndOnlyInsertMakesThemReadable) {
  advance_ring_to(kCapacity - 7);  // an odd number of bytes before the wrap
  const Bytes data = pattern(20, 5);
  uint16_t sum = 0;
  ASSERT_TRUE(rb.place(0, data.data(), 20, sum));
  EXPECT_EQ(sum, reference_sum(data));
  EXPECT_EQ(rb.readable(), 0u);
  EXPECT_EQ(rb.free_space(), kCapacity);
  // insert() of the same bytes does not copy them again: a source changed
  // after place() still yields what place() copied.
  Bytes source = data;
  rb.place(0, source.data(), 20, sum);
  std::fill(source.begin(), source.end(), 0xEE);
  const auto r = rb.insert(0, source.data(), 20);
  EXPECT_EQ(r.in_order, 20u);
  EXPECT_EQ(read_all(rb), data);
  EXPECT_TRUE(g.guards_intact());
}

TEST_F(ReceiveBufferTest, PlaceTakesOnlyInOrderBytesThatFitWithNoIslands) {
  const Bytes data = pattern(16, 9);
  uint16_t sum = 0;
  EXPECT_FALSE(rb.place(1, data.data(), 16, sum));  // not at RCV.NXT
  EXPECT_FALSE(rb.place(0, data.data(), 0, sum));   // nothing to place
  const Bytes big = pattern(kCapacity + 1, 1);
  EXPECT_FALSE(rb.place(0, big.data(), kCapacity + 1, sum));  // beyond the window
  ASSERT_TRUE(put(20, data).out_of_order);  // an island
  EXPECT_FALSE(rb.place(0, data.data(), 16, sum));
  EXPECT_EQ(rb.readable(), 0u);
}

// A placed segment that is never inserted (dropped after its checksum, say)
// must not be taken for a later segment at the same address of the same
// frame buffer: every place() forgets the previous one, even when it refuses.
TEST_F(ReceiveBufferTest, AnUninsertedPlacementIsNotTakenForALaterSegment) {
  Bytes frame = pattern(16, 1);
  uint16_t sum = 0;
  ASSERT_TRUE(rb.place(0, frame.data(), 16, sum));
  // The next segment arrives in the same buffer but is not placed.
  frame = pattern(16, 77);
  EXPECT_FALSE(rb.place(3, frame.data(), 16, sum));
  EXPECT_EQ(rb.insert(0, frame.data(), 16).in_order, 16u);
  EXPECT_EQ(read_all(rb), pattern(16, 77));
  // Likewise after clear() and attach().
  ASSERT_TRUE(rb.place(0, frame.data(), 16, sum));
  rb.clear();
  frame = pattern(16, 33);
  EXPECT_EQ(rb.insert(0, frame.data(), 16).in_order, 16u);
  EXPECT_EQ(read_all(rb), pattern(16, 33));
  ASSERT_TRUE(rb.place(0, frame.data(), 16, sum));
  rb.attach(g.storage(), kCapacity);
  frame = pattern(16, 44);
  EXPECT_EQ(rb.insert(0, frame.data(), 16).in_order, 16u);
  EXPECT_EQ(read_all(rb), pattern(16, 44));
}

// An insert trimmed by the window after a placement, and one of fewer
// bytes, commit only what they insert.
TEST_F(ReceiveBufferTest, InsertAfterPlaceCommitsOnlyWhatItInserts) {
  const Bytes data = pattern(30, 3);
  uint16_t sum = 0;
  ASSERT_TRUE(rb.place(0, data.data(), 30, sum));
  EXPECT_EQ(rb.insert(0, data.data(), 10).in_order, 10u);
  EXPECT_EQ(read_all(rb), slice(data, 0, 10));
  EXPECT_EQ(rb.insert(0, data.data() + 10, 20).in_order, 20u);
  EXPECT_EQ(read_all(rb), slice(data, 10, 30));
}

// ------------------------------------------------- randomized reassembly

// An independent model of the receive buffer: islands in a std::map keyed by
// absolute stream position, and the exact InsertResult each segment must give.
struct ReassemblyModel {
  struct Island {
    uint64_t right;
    uint32_t stamp;
  };
  explicit ReassemblyModel(uint32_t cap) : capacity(cap) {}
  uint32_t capacity;
  uint64_t rcv_nxt = 0;
  uint64_t read_pos = 0;
  uint32_t clock = 0;
  std::map<uint64_t, Island> islands;

  uint32_t window() const { return capacity - static_cast<uint32_t>(rcv_nxt - read_pos); }
  uint32_t ooo_bytes() const {
    uint64_t n = 0;
    for (const auto& [l, i] : islands) n += i.right - l;
    return static_cast<uint32_t>(n);
  }

  ReceiveBuffer::InsertResult insert(uint32_t offset, uint32_t len) {
    ReceiveBuffer::InsertResult r{};
    if (len == 0) return r;
    if (offset >= window()) {
      r.trimmed = true;
      return r;
    }
    const uint32_t n = std::min(len, window() - offset);
    r.trimmed = n < len;
    const uint64_t begin = rcv_nxt + offset;
    const uint64_t end = begin + n;
    std::vector<uint64_t> touching;
    for (const auto& [l, i] : islands) {
      if (l <= end && i.right >= begin) touching.push_back(l);
    }
    if (offset != 0) {
      r.out_of_order = true;
      if (touching.empty() && islands.size() == ReceiveBuffer::kMaxRanges) {
        r.dropped_no_range = true;
        return r;
      }
    }
    uint64_t already = 0;
    uint64_t lo = begin, hi = end;
    for (uint64_t l : touching) {
      const uint64_t right = islands[l].right;
      const uint64_t overlap_lo = std::max(l, begin);
      const uint64_t overlap_hi = std::min(right, end);
      if (overlap_hi > overlap_lo) already += overlap_hi - overlap_lo;
      lo = std::min(lo, l);
      hi = std::max(hi, right);
      islands.erase(l);
    }
    r.duplicate = already == n;
    if (offset == 0) {
      r.filled_gap = !islands.empty() || !touching.empty();
      r.in_order = static_cast<uint32_t>(hi - rcv_nxt);
      rcv_nxt = hi;
    } else {
      islands[lo] = Island{hi, ++clock};
    }
    return r;
  }

  std::vector<Block> sack() const {
    std::vector<std::pair<uint32_t, Block>> by_age;
    for (const auto& [l, i] : islands) {
      by_age.push_back({clock - i.stamp, Block(static_cast<uint32_t>(l - rcv_nxt),
                                               static_cast<uint32_t>(i.right - rcv_nxt))});
    }
    std::sort(by_age.begin(), by_age.end());
    std::vector<Block> out;
    for (const auto& a : by_age) out.push_back(a.second);
    return out;
  }
};

struct Segment {
  uint64_t seq;
  uint32_t len;
};

// How often each outcome came up, so that the test proves it exercised them.
struct ReassemblyStats {
  uint64_t out_of_order = 0, duplicate = 0, trimmed = 0, dropped_no_range = 0, filled_gap = 0,
           joined_islands = 0, wrapped_islands = 0;
};

void run_reassembly(uint32_t seed, ReassemblyStats& stats) {
  std::mt19937 rng(seed);
  auto rand_in = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  const uint32_t capacity = 1u << rand_in(4, 12);
  const uint32_t stream_len = rand_in(capacity * 4, capacity * 24);
  const uint32_t mss = rand_in(1, std::max<uint32_t>(1, capacity / 3));
  const uint32_t reorder_depth = rand_in(1, 40);
  const uint32_t duplicate_percent = rand_in(0, 40);
  const uint32_t forge_percent = rand_in(0, 10);

  Bytes source(stream_len);
  for (auto& b : source) b = static_cast<uint8_t>(rng());

  // The sender's segmentation, plus retransmissions of arbitrary spans that
  // overlap the original boundaries.
  std::deque<Segment> net;
  for (uint64_t s = 0; s < stream_len;) {
    const uint32_t len = std::min<uint32_t>(rand_in(1, mss), static_cast<uint32_t>(stream_len - s));
    net.push_back({s, len});
    if (rand_in(0, 99) < duplicate_percent) {
      const uint64_t from = s > mss ? s - rand_in(0, mss) : 0;
      net.push_back({from, std::min<uint32_t>(rand_in(1, 2 * mss),
                                              static_cast<uint32_t>(stream_len - from))});
    }
    s += len;
  }

  Guarded g(capacity);
  ReceiveBuffer rb;
  rb.attach(g.storage(), capacity);
  ReassemblyModel model(capacity);
  Bytes delivered;
  delivered.reserve(stream_len);
  Bytes garbage(capacity, 0);

  uint64_t steps = 0;
  const uint64_t max_steps = 5'000'000;
  while (delivered.size() < stream_len) {
    ASSERT_LT(++steps, max_steps) << "no progress, seed " << seed;
    if (net.empty()) {
      // Everything outstanding got lost: the sender retransmits from RCV.NXT.
      net.push_back({model.rcv_nxt,
                     std::min<uint32_t>(mss, static_cast<uint32_t>(stream_len - model.rcv_nxt))});
    }
    const size_t pick =
        rand_in(0, static_cast<uint32_t>(std::min<size_t>(net.size(), reorder_depth) - 1));
    Segment seg = net[pick];
    net.erase(net.begin() + static_cast<std::ptrdiff_t>(pick));

    // The TCB trims what lies below RCV.NXT before handing data over.
    if (seg.seq + seg.len > model.rcv_nxt) {
      uint64_t seq = seg.seq;
      uint32_t len = seg.len;
      if (seq < model.rcv_nxt) {
        len -= static_cast<uint32_t>(model.rcv_nxt - seq);
        seq = model.rcv_nxt;
      }
      const uint32_t offset = static_cast<uint32_t>(seq - model.rcv_nxt);
      const auto expect = model.insert(offset, len);
      const auto got = rb.insert(offset, source.data() + seq, len);
      ASSERT_EQ(got.in_order, expect.in_order) << "seed " << seed << " step " << steps;
      ASSERT_EQ(got.out_of_order, expect.out_of_order) << "seed " << seed << " step " << steps;
      ASSERT_EQ(got.duplicate, expect.duplicate) << "seed " << seed << " step " << steps;
      ASSERT_EQ(got.trimmed, expect.trimmed) << "seed " << seed << " step " << steps;
      ASSERT_EQ(got.dropped_no_range, expect.dropped_no_range)
          << "seed " << seed << " step " << steps;
      ASSERT_EQ(got.filled_gap, expect.filled_gap) << "seed " << seed << " step " << steps;
      stats.out_of_order += got.out_of_order;
      stats.duplicate += got.duplicate;
      stats.trimmed += got.trimmed;
      stats.dropped_no_range += got.dropped_no_range;
      stats.filled_gap += got.filled_gap;
      stats.joined_islands += got.in_order > len;
      // Whatever was not kept comes again later, as a retransmission would.
      if (got.trimmed || got.dropped_no_range) net.push_back(seg);
      if (rand_in(0, 99) < duplicate_percent / 2) net.push_back(seg);
    }

    // A forged segment over bytes already held in an island must not change
    // them (the retransmission never rewrites accepted data).
    if (!model.islands.empty() && rand_in(0, 99) < forge_percent) {
      auto it = model.islands.begin();
      std::advance(it, rand_in(0, static_cast<uint32_t>(model.islands.size() - 1)));
      const uint32_t island_len = static_cast<uint32_t>(it->second.right - it->first);
      const uint32_t from = rand_in(0, island_len - 1);
      const uint32_t len = rand_in(1, island_len - from);
      const uint32_t offset = static_cast<uint32_t>(it->first - model.rcv_nxt) + from;
      std::fill(garbage.begin(), garbage.begin() + len, static_cast<uint8_t>(rng()));
      const auto expect = model.insert(offset, len);
      ASSERT_TRUE(expect.duplicate);
      const auto got = rb.insert(offset, garbage.data(), len);
      ASSERT_TRUE(got.duplicate) << "seed " << seed;
      ASSERT_TRUE(got.out_of_order);
      ASSERT_EQ(got.in_order, 0u);
    }

    ASSERT_EQ(rb.readable(), model.rcv_nxt - model.read_pos) << "seed " << seed;
    ASSERT_EQ(rb.free_space(), model.window());
    ASSERT_EQ(rb.out_of_order_bytes(), model.ooo_bytes()) << "seed " << seed << " step " << steps;
    ASSERT_EQ(rb.range_count(), model.islands.size());
    ASSERT_EQ(sack_of(rb), model.sack()) << "seed " << seed << " step " << steps;
    for (const auto& [l, island] : model.islands) {
      stats.wrapped_islands += (l % capacity) > ((island.right - 1) % capacity);
    }

    // The application reads at its own pace, by copy or in place.
    if (rb.readable() != 0 && rand_in(0, 2) != 0) {
      const uint32_t want = rand_in(1, rb.readable());
      if (rand_in(0, 1) == 0) {
        Bytes out(want);
        ASSERT_EQ(rb.read(out.data(), want), want);
        delivered.insert(delivered.end(), out.begin(), out.end());
      } else {
        const Bytes view = flatten(rb.peek());
        ASSERT_EQ(view.size(), rb.readable());
        delivered.insert(delivered.end(), view.begin(), view.begin() + want);
        rb.consume(want);
      }
      model.read_pos += want;
      ASSERT_TRUE(std::equal(delivered.end() - want, delivered.end(),
                             source.begin() + static_cast<std::ptrdiff_t>(delivered.size() - want)))
          << "corrupted stream, seed " << seed << " at byte " << delivered.size() - want;
    }
  }
  EXPECT_EQ(delivered, source) << "seed " << seed;
  EXPECT_EQ(rb.out_of_order_bytes(), 0u);
  EXPECT_TRUE(g.guards_intact()) << "seed " << seed;
}

TEST(ReceiveBufferRandomTest, ShuffledDuplicatedSegmentsReassembleByteExact) {
  ReassemblyStats stats;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    run_reassembly(seed, stats);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(stats.out_of_order, 1000u);
  EXPECT_GT(stats.duplicate, 1000u);
  EXPECT_GT(stats.trimmed, 100u);
  EXPECT_GT(stats.dropped_no_range, 100u);
  EXPECT_GT(stats.filled_gap, 1000u);
  EXPECT_GT(stats.joined_islands, 1000u);
  EXPECT_GT(stats.wrapped_islands, 100u);
}

}  // namespace
}  // namespace mtlsgw::testing
