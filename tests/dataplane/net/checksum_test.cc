#include "dataplane/net/checksum.h"

#include <gtest/gtest.h>
#include <rte_ip.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace mtlsgw::net {
namespace {

// RFC 1071 as written: 16-bit words (native order, as the stack reads them:
// the first byte of a pair is the low half on this host), an odd last byte
// padded with zero, end-around carry until it fits.
uint16_t reference_sum(const uint8_t* p, size_t len) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint64_t{p[i]} | uint64_t{p[i + 1]} << 8;
  if (len % 2 != 0) sum += p[len - 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t len) {
  std::vector<uint8_t> out(len);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

std::string describe(const ChecksumImpl& impl, size_t len, size_t align) {
  return std::string(impl.name) + " len " + std::to_string(len) + " align " +
         std::to_string(align);
}

// Sums and copies `len` bytes placed at `src_align` (and copied to
// `dst_align`) inside larger buffers, with every implementation; the copy
// must be exact and touch nothing outside [dst, dst + len).
void expect_all_agree(const std::vector<uint8_t>& data, size_t src_align, size_t dst_align) {
  const size_t len = data.size();
  std::vector<uint8_t> src(len + 128, 0xa5);
  std::copy(data.begin(), data.end(), src.begin() + static_cast<std::ptrdiff_t>(src_align));
  const uint16_t want = reference_sum(data.data(), len);
  for (const ChecksumImpl& impl : checksum_impls()) {
    const std::string what = describe(impl, len, src_align);
    EXPECT_EQ(impl.sum(src.data() + src_align, len), want) << what;
    std::vector<uint8_t> dst(len + 128, 0x5a);
    EXPECT_EQ(impl.copy(dst.data() + dst_align, src.data() + src_align, len), want) << what;
    EXPECT_TRUE(std::equal(data.begin(), data.end(), dst.begin() + static_cast<std::ptrdiff_t>(dst_align)))
        << what;
    EXPECT_TRUE(std::all_of(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(dst_align),
                            [](uint8_t b) { return b == 0x5a; }))
        << what << ": wrote before dst";
    EXPECT_TRUE(std::all_of(dst.begin() + static_cast<std::ptrdiff_t>(dst_align + len), dst.end(),
                            [](uint8_t b) { return b == 0x5a; }))
        << what << ": wrote past dst + len";
  }
  EXPECT_EQ(checksum(src.data() + src_align, len), want) << "checksum() len " << len;
}

TEST(Checksum, PortableAndBestImplementationsAreListed) {
  const auto impls = checksum_impls();
  ASSERT_GE(impls.size(), 2u);
  EXPECT_STREQ(impls[0].name, "scalar");
  EXPECT_STREQ(impls[1].name, "sse2");
  // The dispatcher takes the widest the CPU has, the last one listed, but
  // for AVX-512 on a core without AVX512-VBMI2 (one whose clock drops).
  const bool skip_avx512 = impls.size() == 4 && !__builtin_cpu_supports("avx512vbmi2");
  EXPECT_EQ(&checksum_impl(), &impls[impls.size() - (skip_avx512 ? 2 : 1)]);
}

TEST(Checksum, AgreesWithTheReferenceForEveryShortLengthAndAlignment) {
  std::mt19937_64 rng(1);
  for (size_t len = 0; len <= 300; ++len) {
    const auto data = random_bytes(rng, len);
    for (size_t align = 0; align < 64; align += (len < 140 ? 1 : 7)) {
      expect_all_agree(data, align, (align * 5 + 3) % 64);
    }
  }
}

TEST(Checksum, AgreesWithTheReferenceForRandomLengthsAndAlignments) {
  std::mt19937_64 rng(2);
  for (int round = 0; round < 400; ++round) {
    const size_t len = rng() % 9000;
    expect_all_agree(random_bytes(rng, len), rng() % 64, rng() % 64);
  }
}

TEST(Checksum, AgreesWithDpdkOnSegmentSizes) {
  std::mt19937_64 rng(3);
  for (const size_t len : {20u, 32u, 40u, 52u, 60u, 64u, 65u, 1448u, 1460u, 1480u, 1500u}) {
    const auto data = random_bytes(rng, len);
    EXPECT_EQ(checksum(data.data(), len), rte_raw_cksum(data.data(), len)) << len;
    for (const ChecksumImpl& impl : checksum_impls()) {
      EXPECT_EQ(impl.sum(data.data(), len), rte_raw_cksum(data.data(), len)) << impl.name << len;
    }
  }
}

// The extremes of the vector variants' biased 32-bit lanes: words of
// 0xffff (largest sum, every lane at its maximum), 0x0000 and 0x8000 (the
// bias's own extremes), over more than one 64 KiB block.
TEST(Checksum, ExtremeWordsOverSeveralBlocks) {
  for (const uint8_t fill : {0xff, 0x00, 0x80, 0x7f, 0x01}) {
    for (const size_t len : {size_t{64}, size_t{65'535}, size_t{65'536}, size_t{65'537},
                             size_t{200'001}}) {
      std::vector<uint8_t> data(len, fill);
      if (fill == 0x80 || fill == 0x7f) {
        for (size_t i = 1; i < len; i += 2) data[i] = static_cast<uint8_t>(fill ^ 0x80);
      }
      expect_all_agree(data, 1, 3);
    }
  }
}

// 0xffff and 0x0000 are different results: data that sums to a multiple
// of 0xffff is 0xffff, only all-zero data is 0.
TEST(Checksum, ZeroOnlyForAllZeroBytesAndFfffForMultiplesOfFfff) {
  for (const size_t len : {size_t{2}, size_t{100}, size_t{1480}}) {
    std::vector<uint8_t> data(len, 0);
    for (const ChecksumImpl& impl : checksum_impls()) EXPECT_EQ(impl.sum(data.data(), len), 0) << impl.name;
    EXPECT_EQ(checksum(data.data(), len), 0);
    data[0] = 0xff;
    data[1] = 0xff;
    for (const ChecksumImpl& impl : checksum_impls()) {
      EXPECT_EQ(impl.sum(data.data(), len), 0xffff) << impl.name;
    }
    // 0x0001 + 0xfffe = 0xffff
    data[0] = 0x01;
    data[1] = 0x00;
    data[len - 2] = 0xfe;
    data[len - 1] = 0xff;
    if (len > 2) {
      for (const ChecksumImpl& impl : checksum_impls()) {
        EXPECT_EQ(impl.sum(data.data(), len), 0xffff) << impl.name;
      }
    }
  }
}

TEST(Checksum, Fold) {
  EXPECT_EQ(checksum_fold(0), 0);
  EXPECT_EQ(checksum_fold(0xffff), 0xffff);
  EXPECT_EQ(checksum_fold(0x10000), 1);
  EXPECT_EQ(checksum_fold(0x1fffe), 0xffff);
  EXPECT_EQ(checksum_fold(0xffff'ffffull), 0xffff);
  EXPECT_EQ(checksum_fold(0x1'0000'0000ull), 1);
  EXPECT_EQ(checksum_fold(UINT64_MAX), 0xffff);
  EXPECT_EQ(checksum_fold(0xffff'ffff'0000'0001ull), 1);
  EXPECT_EQ(checksum_add(0xffff, 0xffff), 0xffff);
  EXPECT_EQ(checksum_add(0x8000, 0x8000), 1);
}

TEST(Checksum, TwentyBytes) {
  std::mt19937_64 rng(4);
  for (int round = 0; round < 100; ++round) {
    const auto data = random_bytes(rng, 21);
    EXPECT_EQ(checksum20(data.data() + round % 2), reference_sum(data.data() + round % 2, 20));
  }
}

// A sum built from parts (a ring that wraps, a header and its payload)
// equals the sum of the whole, parts at odd offsets byte-swapped.
TEST(Checksum, PartsAtAnyOffsetCombine) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 300; ++round) {
    const size_t len = 1 + rng() % 3000;
    const auto data = random_bytes(rng, len);
    const size_t cut = rng() % (len + 1);
    const uint16_t first = checksum(data.data(), cut);
    const uint16_t second = checksum(data.data() + cut, len - cut);
    EXPECT_EQ(checksum_add(first, checksum_at_offset(second, cut)), reference_sum(data.data(), len))
        << "len " << len << " cut " << cut;
  }
}

// --- RFC 1624 -------------------------------------------------------------

// A 20-byte IPv4-like header: its checksum field at 10, complement of the sum.
uint16_t header_checksum(std::vector<uint8_t> header) {
  header[10] = header[11] = 0;
  return static_cast<uint16_t>(~reference_sum(header.data(), header.size()));
}

uint16_t load16(const std::vector<uint8_t>& h, size_t at) {
  uint16_t v;
  std::memcpy(&v, h.data() + at, 2);
  return v;
}

void store16(std::vector<uint8_t>& h, size_t at, uint16_t v) { std::memcpy(h.data() + at, &v, 2); }

// RFC 1624 4: m = 0x5555 becomes m' = 0x3285 under HC = 0xDD2F (the other
// words sum to 0xCD7A). Eqn. 3 gives 0x0000, what a full recomputation gives;
// eqn. 2 would give 0xFFFF.
TEST(ChecksumUpdate, Rfc1624Example) {
  EXPECT_EQ(checksum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
  // And back: from 0x0000 the old value's checksum returns.
  EXPECT_EQ(checksum_update16(0x0000, 0x3285, 0x5555), 0xdd2f);
  // The same as a 32-bit field whose other half does not change.
  EXPECT_EQ(checksum_update32(0xdd2f, 0x1234'5555, 0x1234'3285), 0x0000);
  // Build it: words summing to 0xCD7A plus m, then recompute with m'.
  std::vector<uint8_t> h(20, 0);
  store16(h, 0, 0xcd7a);
  store16(h, 2, 0x5555);
  store16(h, 10, header_checksum(h));
  EXPECT_EQ(load16(h, 10), 0xdd2f);
  store16(h, 2, 0x3285);
  EXPECT_EQ(header_checksum(h), 0x0000);
}

TEST(ChecksumUpdate, MatchesRecomputationForRandomChanges) {
  std::mt19937_64 rng(6);
  int from_zero = 0;
  int to_zero = 0;
  for (int round = 0; round < 20'000; ++round) {
    auto h = random_bytes(rng, 20);
    // Every fourth header has the checksum 0x0000 before the change (word 4
    // chosen so that the rest sums to 0xffff): RFC 1624 3's edge case as input.
    if (round % 4 == 0) {
      store16(h, 4, 0);
      store16(h, 10, 0);
      store16(h, 4, static_cast<uint16_t>(~reference_sum(h.data(), 20)));
    }
    store16(h, 10, header_checksum(h));
    ASSERT_EQ(reference_sum(h.data(), 20), 0xffff);
    from_zero += load16(h, 10) == 0;
    if (round % 2 == 0) {
      const uint16_t old_word = load16(h, 4);
      uint16_t new_word = static_cast<uint16_t>(rng());
      // Every sixth: the new word makes the checksum 0x0000 (the edge case
      // as output, where eqn. 2 gives 0xffff).
      if (round % 3 == 0) {
        auto rest = h;
        store16(rest, 4, 0);
        store16(rest, 10, 0);
        new_word = static_cast<uint16_t>(~reference_sum(rest.data(), 20));
      }
      store16(h, 4, new_word);
      const uint16_t updated = checksum_update16(load16(h, 10), old_word, new_word);
      ASSERT_EQ(updated, header_checksum(h)) << "round " << round;
      to_zero += updated == 0;
    } else {
      uint32_t old_value;
      std::memcpy(&old_value, h.data() + 12, 4);
      const auto new_value = static_cast<uint32_t>(rng());
      std::memcpy(h.data() + 12, &new_value, 4);
      ASSERT_EQ(checksum_update32(load16(h, 10), old_value, new_value), header_checksum(h))
          << "round " << round;
    }
  }
  EXPECT_GT(from_zero, 1000);
  EXPECT_GT(to_zero, 1000);
}

}  // namespace
}  // namespace mtlsgw::net
