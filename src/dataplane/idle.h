#pragma once
// Adaptive idle for a poll-mode worker. A dedicated core polls forever
// (busy_poll); a shared one (CI, laptops, several lcores on 2 CPUs) backs off
// after a run of empty polls: first a pause hint, then sleeps that double up
// to a bound, which is also the worst added wake-up latency. Any work resets
// it to full-speed polling.

#include <algorithm>
#include <cstdint>

namespace mtlsgw::dataplane {

class IdleBackoff {
 public:
  // Empty polls before each stage. 64 polls at ~100 ns cover a burst gap on a
  // loaded port; 1024 more with PAUSE keep latency at a few µs when traffic
  // is merely sparse.
  static constexpr uint32_t kSpinPolls = 64;
  static constexpr uint32_t kPausePolls = 1024;
  static constexpr uint32_t kFirstSleepUs = 1;

  enum class Action : uint8_t { poll, pause, sleep };

  IdleBackoff(bool busy_poll, uint32_t max_sleep_us) noexcept
      : busy_poll_(busy_poll), max_sleep_us_(std::max<uint32_t>(max_sleep_us, kFirstSleepUs)) {}

  // Called after every poll iteration.
  Action after_poll(bool did_work) noexcept {
    if (did_work || busy_poll_) {
      empty_polls_ = 0;
      sleep_us_ = kFirstSleepUs;
      return Action::poll;
    }
    ++empty_polls_;
    if (empty_polls_ <= kSpinPolls) return Action::poll;
    if (empty_polls_ <= kSpinPolls + kPausePolls) return Action::pause;
    return Action::sleep;
  }

  // The sleep to take now, when after_poll said sleep; grows each time.
  uint32_t next_sleep_us() noexcept {
    const uint32_t now = sleep_us_;
    sleep_us_ = std::min(sleep_us_ * 2, max_sleep_us_);
    return now;
  }

  uint32_t max_sleep_us() const noexcept { return max_sleep_us_; }

 private:
  bool busy_poll_;
  uint32_t max_sleep_us_;
  uint32_t empty_polls_ = 0;
  uint32_t sleep_us_ = kFirstSleepUs;
};

}  // namespace mtlsgw::dataplane
