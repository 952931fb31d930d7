#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mtlsgw {
namespace {

// The CRC-32C check value (the CRC of the nine ASCII digits) listed for
// Castagnoli's polynomial in every CRC catalogue, and RFC 3720 B.4's vectors.
TEST(Crc32c, CheckValue) { EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u); }

TEST(Crc32c, Rfc3720Vectors) {
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
}

TEST(Crc32c, EmptyIsZero) { EXPECT_EQ(crc32c("", 0), 0u); }

TEST(Crc32c, ExtendEqualsOneShot) {
  const std::string s = "The quick brown fox jumps over the lazy dog";
  const uint32_t whole = crc32c(s.data(), s.size());
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(crc32c_extend(crc32c_extend(0, s.data(), cut), s.data() + cut, s.size() - cut),
              whole)
        << "cut at " << cut;
  }
}

TEST(Crc32c, HardwareAndTableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string s(300, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  EXPECT_EQ(crc32c_extend_portable(0, "123456789", 9), 0xE3069283u);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len + offset <= s.size(); ++len) {
      ASSERT_EQ(crc32c_extend(0x12345678, s.data() + offset, len),
                crc32c_extend_portable(0x12345678, s.data() + offset, len))
          << offset << " " << len;
    }
  }
}

}  // namespace
}  // namespace mtlsgw
