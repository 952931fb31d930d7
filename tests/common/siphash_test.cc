#include "common/siphash.h"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cstdint>
#include <set>
#include <vector>

namespace mtlsgw {
namespace {

// SipHash-2-4 of the messages 00, 00 01, ..., 00 .. 3e (lengths 0 to 63) under
// the key 00 01 .. 0f: the reference vectors published with the paper (its
// appendix shows length 15, a129ca6149be45e5), written as the 64-bit result,
// that is the output bytes read little-endian. Checked against OpenSSL 3.0's
// SIPHASH MAC (`openssl mac -macopt hexkey:0001..0f -macopt size:8 SIPHASH`).
constexpr std::array<uint64_t, 64> kReferenceVectors = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
    0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
    0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL,
    0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL, 0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL,
    0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
    0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL,
    0xf935451de4f21df2ULL, 0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL, 0xa192d576b245165aULL,
    0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL,
    0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

constexpr SipKey kPaperKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::vector<unsigned char> counting_message(size_t len) {
  std::vector<unsigned char> m(len);
  for (size_t i = 0; i < len; ++i) m[i] = static_cast<unsigned char>(i);
  return m;
}

TEST(SipHash, KeyBytesReadLittleEndian) {
  unsigned char bytes[16];
  for (unsigned i = 0; i < 16; ++i) bytes[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(sip_key_from_bytes(bytes), kPaperKey);
}

TEST(SipHash, PaperAppendixVector) {
  // The worked example of the paper's appendix: 15 bytes, one whole block and
  // a 7-byte tail.
  const auto m = counting_message(15);
  EXPECT_EQ(siphash24(kPaperKey, m.data(), m.size()), 0xa129ca6149be45e5ULL);
}

TEST(SipHash, EveryReferenceVector) {
  // Lengths 0 to 63 cover the empty message, every tail length 1-7 with 0 to
  // 7 whole blocks before it, and exact multiples of the block size.
  for (size_t len = 0; len < kReferenceVectors.size(); ++len) {
    const auto m = counting_message(len);
    EXPECT_EQ(siphash24(kPaperKey, m.data(), len), kReferenceVectors[len]) << "length " << len;
  }
}

TEST(SipHash, NamedLengths) {
  for (size_t len : {0u, 1u, 7u, 8u, 15u, 63u}) {
    const auto m = counting_message(len);
    EXPECT_EQ(siphash24(kPaperKey, m.data(), len), kReferenceVectors[len]) << "length " << len;
  }
}

TEST(SipHash, UnalignedInput) {
  // The packet path hashes fields straight out of headers, at any alignment.
  for (size_t shift = 1; shift < 8; ++shift) {
    std::vector<unsigned char> buf(64 + shift);
    for (size_t i = 0; i < 63; ++i) buf[shift + i] = static_cast<unsigned char>(i);
    for (size_t len : {8u, 15u, 24u, 63u}) {
      EXPECT_EQ(siphash24(kPaperKey, buf.data() + shift, len), kReferenceVectors[len])
          << "shift " << shift << " length " << len;
    }
  }
}

TEST(SipHash, DependsOnEveryKeyBit) {
  const auto m = counting_message(12);
  const uint64_t base = siphash24(kPaperKey, m.data(), m.size());
  std::set<uint64_t> seen{base};
  for (int bit = 0; bit < 128; ++bit) {
    SipKey k = kPaperKey;
    if (bit < 64) {
      k.k0 ^= uint64_t{1} << bit;
    } else {
      k.k1 ^= uint64_t{1} << (bit - 64);
    }
    const uint64_t h = siphash24(k, m.data(), m.size());
    EXPECT_TRUE(seen.insert(h).second) << "key bit " << bit;
    // A PRF flips about half the output bits; 12 of 64 is a generous floor.
    EXPECT_GE(std::popcount(h ^ base), 12) << "key bit " << bit;
  }
}

TEST(SipHash, TrailingZerosChangeTheHash) {
  // The length byte in the last block tells "ab" from "ab\0".
  const unsigned char zeros[16] = {};
  std::set<uint64_t> seen;
  for (size_t len = 0; len <= sizeof zeros; ++len) {
    EXPECT_TRUE(seen.insert(siphash24(kPaperKey, zeros, len)).second) << "length " << len;
  }
}

TEST(SipHash, DerivedKeysAreDeterministicAndSeparate) {
  const SipKey a = derive_sip_key(kPaperKey, "tcp isn");
  EXPECT_EQ(a, derive_sip_key(kPaperKey, "tcp isn"));
  EXPECT_NE(a, derive_sip_key(kPaperKey, "tcp syn cookie"));
  EXPECT_NE(a, derive_sip_key(SipKey{kPaperKey.k0 ^ 1, kPaperKey.k1}, "tcp isn"));
  EXPECT_NE(a, kPaperKey);
  EXPECT_NE(a.k0, a.k1);
  // A label and the same label with a trailing NUL must not collide: the
  // derivation appends its own counter byte after the label.
  EXPECT_NE(derive_sip_key(kPaperKey, std::string_view("x", 1)),
            derive_sip_key(kPaperKey, std::string_view("x\0", 2)));
}

TEST(SipHash, RandomKeysDiffer) {
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (int i = 0; i < 64; ++i) {
    const SipKey k = random_sip_key();
    EXPECT_TRUE(seen.emplace(k.k0, k.k1).second);
    EXPECT_FALSE(k.k0 == 0 && k.k1 == 0);
  }
}

}  // namespace
}  // namespace mtlsgw
