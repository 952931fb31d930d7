#include "dataplane/net/tcp_syn_cookie.h"

#include <gtest/gtest.h>

#include <bit>
#include <random>
#include <set>

#include "dataplane/net/tcp_seq.h"

namespace mtlsgw::net::tcp {
namespace {

constexpr SipKey kKey{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
constexpr SipKey kOtherKey{0x243f6a8885a308d3ULL, 0x13198a2e03707345ULL};
constexpr uint64_t kPeriod = SynCookies::kPeriodUs;

const FourTuple kTuple{0xc6120002, 443, 0xc6120001, 51234};

class SynCookieTest : public ::testing::Test {
 protected:
  SynCookies cookies{kKey};
  const uint32_t peer_isn = 0x9abcdef0;
  // Somewhere in period 1000 (18 hours of uptime), 10 s in.
  const uint64_t now = 1000 * kPeriod + 10'000'000;
};

TEST_F(SynCookieTest, MssIndexPicksTheLargestEntryNotAbove) {
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(0)], 536);  // no option: RFC 9293 default
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(1460)], 1460);
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(65535)], 1460);
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(8960)], 1460);
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(1459)], 1440);
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(1380)], 1360);
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(535)], 64);
  // Below the smallest entry: rounded up to it (documented).
  EXPECT_EQ(SynCookies::kMssTable[SynCookies::mss_index(1)], 64);
  for (uint32_t i = 0; i < SynCookies::kMssTable.size(); ++i) {
    const uint16_t mss = SynCookies::kMssTable[i];
    EXPECT_EQ(SynCookies::mss_index(mss), i);
    if (i > 0) {
      EXPECT_LT(SynCookies::kMssTable[i - 1], mss) << "table must ascend";
      EXPECT_EQ(SynCookies::mss_index(static_cast<uint16_t>(mss - 1)), i - 1);
    }
  }
  // Never more than the peer offered, for every offer at or above 64.
  for (uint32_t offer = 64; offer <= 65535; ++offer) {
    const uint16_t encoded = SynCookies::kMssTable[SynCookies::mss_index(static_cast<uint16_t>(offer))];
    ASSERT_LE(encoded, offer);
  }
}

TEST_F(SynCookieTest, RoundTripsEveryMss) {
  for (uint32_t i = 0; i < SynCookies::kMssTable.size(); ++i) {
    for (uint16_t offered : {SynCookies::kMssTable[i],
                             static_cast<uint16_t>(i + 1 < SynCookies::kMssTable.size()
                                                       ? SynCookies::kMssTable[i + 1] - 1
                                                       : 9000)}) {
      const uint32_t cookie = cookies.make(kTuple, peer_isn, offered, now);
      EXPECT_EQ((cookie >> 24) & 7, i);
      const auto mss = cookies.check(kTuple, peer_isn, cookie, now);
      ASSERT_TRUE(mss.has_value()) << offered;
      EXPECT_EQ(*mss, SynCookies::kMssTable[i]);
    }
  }
  EXPECT_EQ(cookies.check(kTuple, peer_isn, cookies.make(kTuple, peer_isn, 0, now), now), 536);
}

TEST_F(SynCookieTest, RoundTripsForManyTuplesAndIsns) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const FourTuple t{static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()),
                      static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng())};
    const auto isn = static_cast<uint32_t>(rng());
    const auto mss = static_cast<uint16_t>(rng());
    const uint64_t when = rng() >> 8;
    const uint32_t cookie = cookies.make(t, isn, mss, when);
    const auto got = cookies.check(t, isn, cookie, when + rng() % kPeriod);
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(*got, SynCookies::kMssTable[SynCookies::mss_index(mss)]);
  }
}

TEST_F(SynCookieTest, LayoutFollowsRfc4987) {
  // Top 5 bits: t mod 32, t = now / 64 s; next 3: the MSS index.
  for (uint64_t period : {0ULL, 1ULL, 31ULL, 32ULL, 1000ULL, 123456789ULL}) {
    const uint32_t cookie = cookies.make(kTuple, peer_isn, 1440, period * kPeriod + 5);
    EXPECT_EQ(cookie >> 27, period % 32) << period;
    EXPECT_EQ((cookie >> 24) & 7, SynCookies::mss_index(1440));
  }
}

TEST_F(SynCookieTest, DeterministicForOneKeyAndDifferentAcrossKeys) {
  const SynCookies same(kKey);
  const SynCookies other(kOtherKey);
  int equal_mac = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    const uint32_t c = cookies.make(kTuple, peer_isn + i, 1460, now);
    EXPECT_EQ(c, same.make(kTuple, peer_isn + i, 1460, now));
    const uint32_t o = other.make(kTuple, peer_isn + i, 1460, now);
    equal_mac += (c & 0xffffff) == (o & 0xffffff);
    EXPECT_FALSE(other.check(kTuple, peer_isn + i, c, now).has_value());
  }
  EXPECT_LE(equal_mac, 1);
}

TEST_F(SynCookieTest, BoundToTheTuple) {
  const uint32_t cookie = cookies.make(kTuple, peer_isn, 1460, now);
  ASSERT_TRUE(cookies.check(kTuple, peer_isn, cookie, now));
  FourTuple t = kTuple;
  t.local_ip ^= 0x100;
  EXPECT_FALSE(cookies.check(t, peer_isn, cookie, now));
  t = kTuple;
  t.remote_ip ^= 1;
  EXPECT_FALSE(cookies.check(t, peer_isn, cookie, now));
  t = kTuple;
  t.local_port = 8443;
  EXPECT_FALSE(cookies.check(t, peer_isn, cookie, now));
  t = kTuple;
  ++t.remote_port;
  EXPECT_FALSE(cookies.check(t, peer_isn, cookie, now));
  t = kTuple;
  std::swap(t.local_port, t.remote_port);
  EXPECT_FALSE(cookies.check(t, peer_isn, cookie, now));
}

TEST_F(SynCookieTest, BoundToThePeerIsn) {
  const uint32_t cookie = cookies.make(kTuple, peer_isn, 1460, now);
  for (uint32_t delta : {1u, 2u, 0x100u, 0x80000000u, 0xffffffffu}) {
    EXPECT_FALSE(cookies.check(kTuple, peer_isn + delta, cookie, now)) << delta;
  }
}

TEST_F(SynCookieTest, EveryFlippedBitFails) {
  // Each of the 32 bits: MAC bits break the MAC; MSS bits claim another
  // index, which the MAC covers; counter bits claim another period.
  for (uint32_t i = 0; i < 200; ++i) {
    const uint32_t isn = peer_isn + i * 7919;
    const uint32_t cookie = cookies.make(kTuple, isn, 1400, now);
    ASSERT_TRUE(cookies.check(kTuple, isn, cookie, now));
    for (int bit = 0; bit < 32; ++bit) {
      EXPECT_FALSE(cookies.check(kTuple, isn, cookie ^ (1u << bit), now))
          << "isn " << isn << " bit " << bit;
    }
  }
}

TEST_F(SynCookieTest, ValidForTheCurrentAndThePreviousPeriod) {
  const uint64_t start = 500 * kPeriod;
  // Made at the first microsecond of period 500: valid to the end of 501.
  uint32_t cookie = cookies.make(kTuple, peer_isn, 1460, start);
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, start));
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, start + kPeriod - 1));
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, start + kPeriod));
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, start + 2 * kPeriod - 1));
  EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, start + 2 * kPeriod));
  EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, start + 3 * kPeriod));
  // Made at the last microsecond of period 500: still at least 64 s of life.
  cookie = cookies.make(kTuple, peer_isn, 1460, start + kPeriod - 1);
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, start + 2 * kPeriod - 1));
  EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, start + 2 * kPeriod));
}

TEST_F(SynCookieTest, CookiesFromTheFutureFail) {
  // A clock that went backwards, or a cookie forged for the next period.
  const uint32_t cookie = cookies.make(kTuple, peer_isn, 1460, now + kPeriod);
  EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, now));
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, cookie, now + kPeriod));
}

TEST_F(SynCookieTest, VisibleCounterWrapsAt32Periods) {
  // Periods 31 -> 32 and 63 -> 64: the 5 visible bits wrap to 0 while the
  // cookie is still within its window.
  for (uint64_t made : {31ULL, 63ULL, 1023ULL, (1ULL << 37) - 1}) {
    const uint32_t cookie = cookies.make(kTuple, peer_isn, 536, made * kPeriod + 123);
    EXPECT_EQ(cookie >> 27, made % 32);
    EXPECT_EQ(cookies.check(kTuple, peer_isn, cookie, (made + 1) * kPeriod + 5), 536) << made;
    EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, (made + 2) * kPeriod)) << made;
  }
}

TEST_F(SynCookieTest, OldCookieWithTheSameVisibleBitsFails) {
  // 32 periods later (34 minutes) the visible counter bits are the same
  // again; only the full counter inside the MAC rejects the cookie.
  const uint32_t cookie = cookies.make(kTuple, peer_isn, 1460, now);
  for (uint64_t later : {32ULL, 33ULL, 64ULL, 3200ULL}) {
    EXPECT_FALSE(cookies.check(kTuple, peer_isn, cookie, now + later * kPeriod)) << later;
  }
}

TEST_F(SynCookieTest, EarliestPeriodsAndTheEndOfTime) {
  // Period 0 has no previous period: a cookie claiming period 31 (visible
  // bits of "-1") must not check by wrapping the counter.
  const uint32_t at_zero = cookies.make(kTuple, peer_isn, 1460, 0);
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, at_zero, 0));
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, at_zero, kPeriod));
  const uint32_t claims_previous = (at_zero & 0x07ffffff) | (31u << 27);
  EXPECT_FALSE(cookies.check(kTuple, peer_isn, claims_previous, 0));
  // The last microseconds of a 64-bit clock.
  const uint64_t end = ~0ULL;
  const uint32_t late = cookies.make(kTuple, peer_isn, 1460, end - kPeriod);
  EXPECT_TRUE(cookies.check(kTuple, peer_isn, late, end));
}

TEST_F(SynCookieTest, MacBitsLookRandom) {
  // Consecutive peer ISNs (what a client's successive SYNs look like) give
  // unrelated MACs: about 12 of 24 bits change, and none repeat often.
  std::set<uint32_t> macs;
  uint64_t distance = 0;
  uint32_t prev = cookies.make(kTuple, peer_isn, 1460, now) & 0xffffff;
  constexpr int kSamples = 20000;
  for (int i = 1; i <= kSamples; ++i) {
    const uint32_t mac = cookies.make(kTuple, peer_isn + static_cast<uint32_t>(i), 1460, now) & 0xffffff;
    macs.insert(mac);
    distance += std::popcount(mac ^ prev);
    prev = mac;
  }
  const double mean = static_cast<double>(distance) / kSamples;
  EXPECT_GT(mean, 11.5);
  EXPECT_LT(mean, 12.5);
  // Birthday bound: 20000 draws from 2^24 collide about 12 times.
  EXPECT_GT(macs.size(), static_cast<size_t>(kSamples - 60));
}

TEST_F(SynCookieTest, RandomCookiesAlmostNeverValidate) {
  // A blind attacker completing handshakes with guessed ACKs. Fully random
  // guesses pass with probability 2/32 * 2^-24 (about 4e-9); guesses that
  // get the visible counter and MSS bits right, 2^-24 (about 6e-8). Most
  // blind guesses fail on the visible counter bits before any hashing, which
  // keeps the 14 million checks near half a second in a release build.
  std::mt19937 rng(20240601);
  constexpr uint32_t kBlind = 10'000'000;
  uint32_t accepted = 0;
  for (uint32_t i = 0; i < kBlind; ++i) {
    accepted += cookies.check(kTuple, peer_isn, rng(), now).has_value();
  }
  EXPECT_LE(accepted, kBlind / 1'000'000) << "more than 1e-6 of random cookies validated";

  const uint32_t genuine = cookies.make(kTuple, peer_isn, 1460, now);
  const uint32_t visible = genuine & 0xff000000;
  constexpr uint32_t kInformed = 4'000'000;
  accepted = 0;
  for (uint32_t i = 0; i < kInformed; ++i) {
    const uint32_t guess = visible | (rng() & 0xffffff);
    if (guess == genuine) continue;
    accepted += cookies.check(kTuple, peer_isn, guess, now).has_value();
  }
  EXPECT_LE(accepted, kInformed / 1'000'000);
}

// ---------------------------------------------------------- timestamps

TEST_F(SynCookieTest, TimestampBitsRoundTrip) {
  for (uint8_t ws = 0; ws <= SynCookies::kNoWindowScale; ++ws) {
    for (bool sack : {false, true}) {
      for (uint32_t clock : {0u, 1u, 31u, 32u, 0x12345678u, 0xffffffe0u, 0xffffffffu}) {
        const uint32_t ts = cookies.encode_ts(clock, ws, sack);
        const auto opts = cookies.decode_ts(ts);
        EXPECT_EQ(opts.window_scale, ws) << int{ws} << " " << clock;
        EXPECT_EQ(opts.sack_permitted, sack) << int{ws} << " " << clock;
      }
    }
  }
}

TEST_F(SynCookieTest, OutOfRangeWindowScaleBecomes14) {
  // RFC 7323 2.3: a shift above 14 is used as 14. 15 means "none" here.
  for (uint8_t ws : {16, 20, 255}) {
    EXPECT_EQ(cookies.decode_ts(cookies.encode_ts(1000, ws, false)).window_scale, 14) << int{ws};
  }
  EXPECT_EQ(cookies.decode_ts(cookies.encode_ts(1000, SynCookies::kNoWindowScale, true)).window_scale,
            SynCookies::kNoWindowScale);
}

TEST_F(SynCookieTest, EncodedTimestampNeverRunsAheadOfTheClock) {
  // The connection's later TSvals come from the same clock; if the SYN-ACK's
  // were ahead, the peer's PAWS check (RFC 7323 5) would see time go back.
  std::mt19937 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t clock = rng();
    const auto ws = static_cast<uint8_t>(rng() % 16);
    const bool sack = rng() & 1;
    const uint32_t ts = cookies.encode_ts(clock, ws, sack);
    ASSERT_TRUE(seq_le(ts, clock)) << clock;
    ASSERT_LT(clock - ts, 32u) << clock;
  }
  // Across the 2^32 wrap.
  for (uint32_t clock : {0u, 5u, 31u}) {
    const uint32_t ts = cookies.encode_ts(clock, 14, true);
    EXPECT_TRUE(seq_le(ts, clock));
    EXPECT_LT(clock - ts, 32u);
  }
}

TEST_F(SynCookieTest, TimestampKeepsTheClockAboveTheLowBits) {
  // Only the 5 low bits carry options: the rest is the clock, so the TSval
  // still advances with time for RTT measurement.
  // Bits 0-3 the window scale, bit 4 SACK-permitted.
  EXPECT_EQ(cookies.encode_ts(0x12345660u, 0, false), 0x12345660u);
  EXPECT_EQ(cookies.encode_ts(0x1234567fu, 7, true), 0x12345677u);
  // 0x...73 would be ahead of the clock (0x...65): one 32-step back.
  EXPECT_EQ(cookies.encode_ts(0x12345665u, 3, true), 0x12345653u);
  EXPECT_EQ(cookies.encode_ts(0x12345665u, 3, false), 0x12345663u);
}

}  // namespace
}  // namespace mtlsgw::net::tcp
