#include "dataplane/idle.h"

#include <gtest/gtest.h>

namespace mtlsgw::dataplane {
namespace {

using Action = IdleBackoff::Action;

TEST(IdleBackoff, PollsThenPausesThenSleepsLonger) {
  IdleBackoff backoff(false, 100);
  for (uint32_t i = 0; i < IdleBackoff::kSpinPolls; ++i) EXPECT_EQ(backoff.after_poll(false), Action::poll);
  for (uint32_t i = 0; i < IdleBackoff::kPausePolls; ++i) EXPECT_EQ(backoff.after_poll(false), Action::pause);
  EXPECT_EQ(backoff.after_poll(false), Action::sleep);
  std::vector<uint32_t> sleeps;
  for (int i = 0; i < 10; ++i) sleeps.push_back(backoff.next_sleep_us());
  EXPECT_EQ(sleeps, (std::vector<uint32_t>{1, 2, 4, 8, 16, 32, 64, 100, 100, 100}));
}

TEST(IdleBackoff, WorkResetsToFullSpeed) {
  IdleBackoff backoff(false, 50);
  for (int i = 0; i < 5000; ++i) backoff.after_poll(false);
  backoff.next_sleep_us();
  backoff.next_sleep_us();
  EXPECT_EQ(backoff.after_poll(true), Action::poll);
  EXPECT_EQ(backoff.after_poll(false), Action::poll);
  for (int i = 0; i < 5000; ++i) backoff.after_poll(false);
  EXPECT_EQ(backoff.next_sleep_us(), IdleBackoff::kFirstSleepUs);
}

TEST(IdleBackoff, BusyPollNeverSleeps) {
  IdleBackoff backoff(true, 50);
  for (int i = 0; i < 100'000; ++i) ASSERT_EQ(backoff.after_poll(false), Action::poll);
}

}  // namespace
}  // namespace mtlsgw::dataplane
