#include "common/utc_time.h"

#include <gtest/gtest.h>

#include <ctime>
#include <random>
#include <string>

namespace mtlsgw {
namespace {

std::string rfc3339(int64_t t) {
  char out[20];
  const size_t n = write_rfc3339(t, out);
  return std::string(out, n);
}
std::string imf(int64_t t) {
  char out[29];
  const size_t n = write_imf_fixdate(t, out);
  return std::string(out, n);
}

TEST(UtcTime, KnownInstants) {
  EXPECT_EQ(imf(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 5.6.7
  EXPECT_EQ(imf(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(951782400), "2000-02-29T00:00:00Z");  // leap day of a century leap year
  EXPECT_EQ(rfc3339(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(rfc3339(253402300799), "9999-12-31T23:59:59Z");
  EXPECT_EQ(rfc3339(-62167219200), "0000-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(253402300800), "");  // year 10000 has no 4-digit form
  EXPECT_EQ(rfc3339(-62167219201), "");
}

// Against the C library's own calendar (used here only, off the worker path).
TEST(UtcTime, AgreesWithGmtimeAndStrftime) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    const int64_t t = static_cast<int64_t>(rng() % 253402300800ull) - (i % 2 ? 2208988800 : 0);
    const time_t tt = static_cast<time_t>(t);
    std::tm tm{};
    ASSERT_NE(gmtime_r(&tt, &tm), nullptr);
    char expected[64];
    strftime(expected, sizeof expected, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ASSERT_EQ(rfc3339(t), expected) << t;
    strftime(expected, sizeof expected, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ASSERT_EQ(imf(t), expected) << t;
  }
}

}  // namespace
}  // namespace mtlsgw
