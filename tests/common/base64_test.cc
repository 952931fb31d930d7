#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace mtlsgw {
namespace {

std::string encode(std::string_view in) {
  std::string out(base64_encoded_length(in.size()), '?');
  EXPECT_EQ(base64_encode(in, out.data(), out.size()), out.size());
  return out;
}

// RFC 4648 section 10.
TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg==");
  EXPECT_EQ(encode("fo"), "Zm8=");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("foob"), "Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, EveryByteValueAndTheLastTwoSymbols) {
  EXPECT_EQ(encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
  EXPECT_EQ(encode(std::string("\x00\x00\x00", 3)), "AAAA");
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  const std::string out = encode(all);
  EXPECT_EQ(out.size(), 344u);
  EXPECT_EQ(out.substr(0, 8), "AAECAwQF");
  EXPECT_EQ(out.substr(out.size() - 8), "/P3+/w==");
}

TEST(Base64, RefusesASmallBufferWithoutWriting) {
  char out[4] = {'x', 'x', 'x', 'x'};
  EXPECT_EQ(base64_encode("foob", out, sizeof out), 0u);
  EXPECT_EQ(std::string(out, 4), "xxxx");
}

}  // namespace
}  // namespace mtlsgw
