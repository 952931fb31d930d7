#include "dataplane/net/tcp_rtt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace mtlsgw::testing {
namespace {

using net::tcp::RttEstimator;

TEST(RttEstimatorTest, BeforeAnySampleTheInitialRtoApplies) {
  RttEstimator rtt;
  EXPECT_FALSE(rtt.has_sample());
  EXPECT_EQ(rtt.rto_us(), 1'000'000u);
  EXPECT_EQ(rtt.base_rto_us(), 1'000'000u);
  EXPECT_EQ(rtt.srtt_us(), 0u);
  EXPECT_EQ(rtt.rttvar_us(), 0u);
  EXPECT_EQ(rtt.backoffs(), 0u);
  EXPECT_EQ(rtt.min_rto_us(), 200'000u);
  EXPECT_EQ(rtt.max_rto_us(), 60'000'000u);
}

// RFC 6298 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4 RTTVAR).
TEST(RttEstimatorTest, FirstSample) {
  RttEstimator rtt;
  rtt.sample(100'000);
  EXPECT_TRUE(rtt.has_sample());
  EXPECT_EQ(rtt.srtt_us(), 100'000u);
  EXPECT_EQ(rtt.rttvar_us(), 50'000u);
  EXPECT_EQ(rtt.rto_us(), 300'000u);
}

// RFC 6298 2.3 by hand: RTTVAR = 3/4 * 50000 + 1/4 * |100000 - 200000|
// = 62500 (with the SRTT from before the sample: the new one would give
// 59375), SRTT = 7/8 * 100000 + 1/8 * 200000 = 112500, RTO = 112500 + 250000.
TEST(RttEstimatorTest, SecondSampleUsesTheGainsAndTheOldSrtt) {
  RttEstimator rtt;
  rtt.sample(100'000);
  rtt.sample(200'000);
  EXPECT_EQ(rtt.rttvar_us(), 62'500u);
  EXPECT_EQ(rtt.srtt_us(), 112'500u);
  EXPECT_EQ(rtt.rto_us(), 362'500u);
  // Third: RTTVAR = 3/4 * 62500 + 1/4 * |112500 - 80000| = 55000,
  // SRTT = 7/8 * 112500 + 1/8 * 80000 = 108437.5, RTO = 108437.5 + 220000
  // rounded up.
  rtt.sample(80'000);
  EXPECT_EQ(rtt.rttvar_us(), 55'000u);
  EXPECT_EQ(rtt.srtt_us(), 108'438u);
  EXPECT_EQ(rtt.rto_us(), 328'438u);
}

TEST(RttEstimatorTest, SmallSamplesAreClampedToTheMinimum) {
  RttEstimator rtt;
  rtt.sample(1'000);  // 1 ms path: 1 + 2 = 3 ms
  EXPECT_EQ(rtt.base_rto_us(), 200'000u);
  EXPECT_EQ(rtt.rto_us(), 200'000u);
  EXPECT_EQ(rtt.srtt_us(), 1'000u);  // the estimate itself is not clamped
}

TEST(RttEstimatorTest, MinimumIsAParameter) {
  RttEstimator rtt(1'000'000);  // RFC 6298 2.4's 1 s
  rtt.sample(100'000);
  EXPECT_EQ(rtt.rto_us(), 1'000'000u);
}

TEST(RttEstimatorTest, LargeSamplesAreClampedToTheMaximum) {
  RttEstimator rtt;
  rtt.sample(40'000'000);  // 40 s + 80 s
  EXPECT_EQ(rtt.rto_us(), 60'000'000u);
  RttEstimator huge;
  huge.sample(UINT32_MAX);
  EXPECT_EQ(huge.rto_us(), 60'000'000u);
  EXPECT_EQ(huge.srtt_us(), UINT32_MAX);
}

// With a steady RTT, RTTVAR decays towards zero and the clock granularity G
// is what keeps RTO above SRTT.
TEST(RttEstimatorTest, GranularityFloorsTheVarianceTerm) {
  RttEstimator rtt(1, 60'000'000, 1'000'000);
  for (int i = 0; i < 200; ++i) rtt.sample(50'000);
  EXPECT_EQ(rtt.srtt_us(), 50'000u);
  EXPECT_EQ(rtt.rttvar_us(), 0u);
  EXPECT_EQ(rtt.rto_us(), 50'000u + RttEstimator::kGranularityUs);
}

TEST(RttEstimatorTest, ZeroSampleIsAccepted) {
  RttEstimator rtt(1, 60'000'000, 1'000'000);
  rtt.sample(0);
  EXPECT_TRUE(rtt.has_sample());
  EXPECT_EQ(rtt.rto_us(), RttEstimator::kGranularityUs);
}

// RFC 6298 5.5: double per expiry, capped at the maximum, and the count keeps
// going for the TCB's retry limit.
TEST(RttEstimatorTest, BackoffDoublesUpToTheCap) {
  RttEstimator rtt;
  rtt.sample(100'000);  // RTO 300 ms
  const uint32_t expected[] = {600'000,    1'200'000,  2'400'000,  4'800'000,
                               9'600'000,  19'200'000, 38'400'000, 60'000'000,
                               60'000'000, 60'000'000};
  for (uint32_t i = 0; i < std::size(expected); ++i) {
    rtt.backoff();
    EXPECT_EQ(rtt.backoffs(), i + 1);
    EXPECT_EQ(rtt.rto_us(), expected[i]) << "backoff " << i + 1;
    EXPECT_EQ(rtt.base_rto_us(), 300'000u);
  }
}

TEST(RttEstimatorTest, ManyBackoffsDoNotOverflow) {
  RttEstimator rtt(200'000, UINT32_MAX, 1'000'000);
  for (int i = 0; i < 100; ++i) {
    rtt.backoff();
    ASSERT_GE(rtt.rto_us(), 1'000'000u) << i;
  }
  EXPECT_EQ(rtt.rto_us(), UINT32_MAX);
  EXPECT_EQ(rtt.backoffs(), 100u);
}

TEST(RttEstimatorTest, BackoffBeforeAnySampleStartsFromTheInitialRto) {
  RttEstimator rtt;
  rtt.backoff();
  rtt.backoff();
  EXPECT_EQ(rtt.rto_us(), 4'000'000u);
}

TEST(RttEstimatorTest, ClearBackoffRestoresTheComputedRto) {
  RttEstimator rtt;
  rtt.sample(100'000);
  rtt.backoff();
  rtt.backoff();
  ASSERT_EQ(rtt.rto_us(), 1'200'000u);
  rtt.clear_backoff();
  EXPECT_EQ(rtt.backoffs(), 0u);
  EXPECT_EQ(rtt.rto_us(), 300'000u);
}

// The note after RFC 6298 5.7: a new measurement recomputes RTO and so
// collapses the backoff (Karn: until then the backed-off value stays).
TEST(RttEstimatorTest, ASampleCollapsesTheBackoff) {
  RttEstimator rtt;
  rtt.sample(100'000);
  rtt.backoff();
  rtt.backoff();
  rtt.backoff();
  rtt.sample(100'000);
  EXPECT_EQ(rtt.backoffs(), 0u);
  // RTTVAR = 3/4 * 50000, SRTT unchanged.
  EXPECT_EQ(rtt.rto_us(), 100'000u + 4 * 37'500u);
}

TEST(RttEstimatorTest, ConstructorSanitizesItsArguments) {
  RttEstimator low_initial(200'000, 60'000'000, 10);
  EXPECT_EQ(low_initial.rto_us(), 200'000u);
  RttEstimator high_initial(200'000, 60'000'000, 100'000'000);
  EXPECT_EQ(high_initial.rto_us(), 60'000'000u);
  RttEstimator inverted(500'000, 100'000, 1'000'000);
  EXPECT_EQ(inverted.max_rto_us(), 500'000u);
  EXPECT_EQ(inverted.rto_us(), 500'000u);
  RttEstimator zero_min(0, 60'000'000, 1'000'000);
  EXPECT_EQ(zero_min.min_rto_us(), 1u);
}

// RFC 6298 5.7.
TEST(RttEstimatorTest, SynTimeoutWithoutSampleFallsBackToThreeSeconds) {
  RttEstimator rtt;
  rtt.backoff();  // the SYN was retransmitted
  rtt.restart_after_syn_timeout();
  EXPECT_EQ(rtt.backoffs(), 0u);
  EXPECT_EQ(rtt.rto_us(), RttEstimator::kSynFallbackRtoUs);
  // A later sample takes over as usual.
  rtt.sample(100'000);
  EXPECT_EQ(rtt.rto_us(), 300'000u);
}

TEST(RttEstimatorTest, SynTimeoutKeepsATimestampSample) {
  RttEstimator rtt;
  rtt.sample(100'000);
  rtt.backoff();
  rtt.restart_after_syn_timeout();
  EXPECT_EQ(rtt.rto_us(), 300'000u);
}

TEST(RttEstimatorTest, SynTimeoutFallbackRespectsTheMaximum) {
  RttEstimator rtt(200'000, 2'000'000, 1'000'000);
  rtt.restart_after_syn_timeout();
  EXPECT_EQ(rtt.rto_us(), 2'000'000u);
  RttEstimator slow(200'000, 60'000'000, 5'000'000);
  slow.restart_after_syn_timeout();
  EXPECT_EQ(slow.rto_us(), 5'000'000u);
}

// Random samples against the RFC 6298 formulas in exact (double) arithmetic:
// fixed point in eighths of a microsecond stays within a microsecond.
TEST(RttEstimatorTest, MatchesTheExactFormulasOverManySamples) {
  std::mt19937 rng(6298);
  for (int run = 0; run < 20; ++run) {
    RttEstimator rtt(1, UINT32_MAX, 1'000'000);
    double srtt = 0;
    double rttvar = 0;
    const uint32_t base = 100 + rng() % 500'000;
    for (int i = 0; i < 2'000; ++i) {
      // Mostly near a base RTT, sometimes a spike, sometimes a new base.
      uint32_t r = base + rng() % (base / 4 + 1);
      if (rng() % 50 == 0) r = base * (2 + rng() % 8);
      rtt.sample(r);
      if (i == 0) {
        srtt = r;
        rttvar = r / 2.0;
      } else {
        rttvar = 0.75 * rttvar + 0.25 * std::fabs(srtt - r);
        srtt = 0.875 * srtt + 0.125 * r;
      }
      const double rto =
          srtt + std::max<double>(RttEstimator::kGranularityUs, 4 * rttvar);
      ASSERT_NEAR(rtt.srtt_us(), srtt, 1.0) << "run " << run << " sample " << i;
      ASSERT_NEAR(rtt.rttvar_us(), rttvar, 1.0) << "run " << run << " sample " << i;
      ASSERT_NEAR(rtt.rto_us(), rto, 5.0) << "run " << run << " sample " << i;
      ASSERT_GE(rtt.rto_us() + 5.0, rto);  // never meaningfully early
    }
  }
}

// A path whose RTT jumps: RTO must cover the new RTT within a few samples
// (4 RTTVAR absorbs the step), and settle back when the path is steady.
TEST(RttEstimatorTest, FollowsAStepInTheRtt) {
  RttEstimator rtt;
  for (int i = 0; i < 50; ++i) rtt.sample(20'000);
  EXPECT_EQ(rtt.rto_us(), 200'000u);
  rtt.sample(400'000);
  EXPECT_GT(rtt.rto_us(), 400'000u);  // 67500 + 4 * 95000
  for (int i = 0; i < 100; ++i) rtt.sample(400'000);
  EXPECT_NEAR(rtt.srtt_us(), 400'000.0, 1.0);
  EXPECT_LT(rtt.rto_us(), 410'000u);
  EXPECT_GE(rtt.rto_us(), 401'000u);
}

}  // namespace
}  // namespace mtlsgw::testing
