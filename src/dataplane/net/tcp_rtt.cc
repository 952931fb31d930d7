#include "dataplane/net/tcp_rtt.h"

#include <algorithm>

namespace mtlsgw::net::tcp {

RttEstimator::RttEstimator(uint32_t min_rto_us, uint32_t max_rto_us,
                           uint32_t initial_rto_us) noexcept
    : min_rto_us_(std::max<uint32_t>(min_rto_us, 1)),
      max_rto_us_(std::max(max_rto_us, min_rto_us_)),
      base_rto_us_(clamp_rto(initial_rto_us)),
      rto_us_(base_rto_us_) {}

uint32_t RttEstimator::clamp_rto(uint64_t us) const noexcept {
  return static_cast<uint32_t>(std::clamp<uint64_t>(us, min_rto_us_, max_rto_us_));
}

void RttEstimator::sample(uint32_t rtt_us) noexcept {
  const uint64_t r_x8 = static_cast<uint64_t>(rtt_us) << 3;
  if (!has_sample_) {
    // RFC 6298 2.2.
    srtt_x8_ = r_x8;
    rttvar_x8_ = r_x8 / 2;
    has_sample_ = true;
  } else {
    // RFC 6298 2.3, beta = 1/4 then alpha = 1/8; RTTVAR must see the SRTT
    // from before this sample.
    const uint64_t err_x8 = srtt_x8_ > r_x8 ? srtt_x8_ - r_x8 : r_x8 - srtt_x8_;
    rttvar_x8_ = (3 * rttvar_x8_ + err_x8 + 2) / 4;
    srtt_x8_ = (7 * srtt_x8_ + r_x8 + 4) / 8;
  }
  const uint64_t spread_x8 = std::max<uint64_t>(uint64_t{kGranularityUs} << 3, 4 * rttvar_x8_);
  // Round up: a timeout a fraction of a microsecond early is the wrong side.
  base_rto_us_ = clamp_rto((srtt_x8_ + spread_x8 + 7) >> 3);
  backoffs_ = 0;
  rto_us_ = base_rto_us_;
}

void RttEstimator::update_rto() noexcept {
  // base_rto_us_ < 2^32, so any shift up to 32 fits in 64 bits; beyond that
  // the cap has long been reached.
  const uint32_t shift = std::min<uint32_t>(backoffs_, 32);
  rto_us_ = clamp_rto(static_cast<uint64_t>(base_rto_us_) << shift);
}

void RttEstimator::backoff() noexcept {
  if (backoffs_ != UINT32_MAX) ++backoffs_;
  update_rto();
}

void RttEstimator::clear_backoff() noexcept {
  backoffs_ = 0;
  rto_us_ = base_rto_us_;
}

void RttEstimator::restart_after_syn_timeout() noexcept {
  if (!has_sample_) base_rto_us_ = clamp_rto(std::max(base_rto_us_, kSynFallbackRtoUs));
  clear_backoff();
}

}  // namespace mtlsgw::net::tcp
