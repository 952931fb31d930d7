#pragma once
// Round-trip time estimation and the retransmission timeout (RFC 6298).
//
// SRTT and RTTVAR are held in eighths of a microsecond: with the 1/8 and 1/4
// gains of RFC 6298 2.3, integer microseconds would drop the low bits of
// every update, and on a short, steady path those truncations bias RTTVAR
// towards zero. Eighths keep each update within 1/16 us of the exact value
// (round to nearest), and the error does not accumulate because the gains
// shrink it geometrically.
//
// Where RFC 6298 leaves a choice:
// - Minimum RTO 200 ms by default rather than 1 s. RFC 6298 2.4 makes 1 s a
//   SHOULD; Linux (200 ms), FreeBSD (30 ms) and Windows (300 ms) all go lower,
//   because with 1 s a lost last segment on a sub-millisecond path costs
//   thousands of round trips. The argument stays a parameter.
// - Maximum RTO 60 s by default, the smallest cap 2.5 allows.
// - Clock granularity G (2.3) is 1 ms. RTT samples are measured in
//   microseconds, but what matters for G is the resolution with which the
//   timer can fire: the TCB arms the RTO on the worker's timer wheel, whose
//   tick must not be coarser than kGranularityUs.
// - A valid sample drops the backoff (the note after 5.7: a new measurement
//   "collapses" the backed-off RTO). Karn's algorithm keeps the backoff until
//   then, so the caller should not clear it merely because new data was
//   acknowledged by an ACK that gave no sample.
//
// One instance per connection, owned by its worker: no locks, no allocation.

#include <cstdint>

namespace mtlsgw::net::tcp {

class RttEstimator {
 public:
  // G of RFC 6298 2.3.
  static constexpr uint32_t kGranularityUs = 1'000;
  // RFC 6298 5.7: the RTO to use once the handshake completes when a SYN
  // was retransmitted by the timer and no RTT was measured.
  static constexpr uint32_t kSynFallbackRtoUs = 3'000'000;

  explicit RttEstimator(uint32_t min_rto_us = 200'000, uint32_t max_rto_us = 60'000'000,
                        uint32_t initial_rto_us = 1'000'000) noexcept;

  // One RTT measurement (RFC 6298 2.2, 2.3). The caller applies Karn's
  // algorithm (RFC 6298 3): no samples from retransmitted segments unless
  // they come from timestamps (RFC 7323 4).
  void sample(uint32_t rtt_us) noexcept;

  // The timeout to arm now, backoff included, within [min, max].
  uint32_t rto_us() const noexcept { return rto_us_; }
  // The timeout without backoff (RFC 6298 2.2-2.5).
  uint32_t base_rto_us() const noexcept { return base_rto_us_; }
  // Rounded to the nearest microsecond; 0 before the first sample.
  uint32_t srtt_us() const noexcept { return to_us(srtt_x8_); }
  uint32_t rttvar_us() const noexcept { return to_us(rttvar_x8_); }
  bool has_sample() const noexcept { return has_sample_; }

  // RFC 6298 5.5: the timer expired; RTO doubles, up to the maximum.
  void backoff() noexcept;
  void clear_backoff() noexcept;
  // Consecutive backoffs since the last clear: the TCB's R1/R2 retry count
  // (RFC 9293 3.8.3). Keeps counting after the RTO has reached the maximum.
  uint32_t backoffs() const noexcept { return backoffs_; }

  // RFC 6298 5.7: call when the three-way handshake completes after the
  // timer retransmitted a SYN (ours or our SYN-ACK). Without an RTT sample
  // the RTO becomes 3 s (or the initial RTO if that is larger); a sample
  // taken from timestamps is kept.
  void restart_after_syn_timeout() noexcept;

  uint32_t min_rto_us() const noexcept { return min_rto_us_; }
  uint32_t max_rto_us() const noexcept { return max_rto_us_; }

 private:
  static uint32_t to_us(uint64_t x8) noexcept {
    const uint64_t us = (x8 + 4) >> 3;
    return us > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(us);
  }
  uint32_t clamp_rto(uint64_t us) const noexcept;
  void update_rto() noexcept;

  uint64_t srtt_x8_ = 0;    // SRTT, 1/8 us
  uint64_t rttvar_x8_ = 0;  // RTTVAR, 1/8 us
  uint32_t min_rto_us_;
  uint32_t max_rto_us_;
  uint32_t base_rto_us_;
  uint32_t rto_us_;
  uint32_t backoffs_ = 0;
  bool has_sample_ = false;
};

}  // namespace mtlsgw::net::tcp
