#include "dataplane/net/tcp_congestion.h"

#include <algorithm>

namespace mtlsgw::net::tcp {

namespace {

// RFC 9438 4.6: beta_cubic = 0.7; 4.7: fast convergence keeps (1 + beta) / 2
// of cwnd as W_max; 4.3: alpha_cubic = 3 (1 - beta) / (1 + beta) = 9/17.
constexpr uint64_t kBetaNum = 7;
constexpr uint64_t kBetaDen = 10;
constexpr uint64_t kFastConvergenceNum = 17;
constexpr uint64_t kFastConvergenceDen = 20;
constexpr uint32_t kAlphaNum = 9;
constexpr uint32_t kAlphaDen = 17;

// W_cubic(t) - W_max = C * SMSS * (t - K)^3 with C = 0.4 segments/s^3 and
// t in microseconds is C * SMSS * d^3 / 10^18 bytes. cubic_coef_ holds
// C * SMSS * 2^80 / 10^18, so the per-ACK evaluation is two multiplications
// and a shift: no division, no floating point. 2^80 leaves coef above 10^7
// even at the smallest SMSS (relative error under 10^-7) while d^3 * coef
// stays below 2^125 for |d| <= 2^30 us.
constexpr unsigned kCubicShift = 80;
constexpr uint64_t kMaxCubicOffsetUs = uint64_t{1} << 30;  // ~18 minutes
// 1 / C in segments * s^3 scaled to us^3: 10^18 / 0.4.
constexpr uint64_t kInverseCUs3 = 2'500'000'000'000'000'000;

uint64_t cubic_coef(uint32_t smss) noexcept {
  const CubicUint128 numerator = static_cast<CubicUint128>(smss) << kCubicShift;
  return static_cast<uint64_t>((numerator + kInverseCUs3 / 2) / kInverseCUs3);
}

uint32_t saturate(uint64_t bytes) noexcept {
  return static_cast<uint32_t>(std::min<uint64_t>(bytes, CongestionControl::kMaxCwnd));
}

}  // namespace

// K (RFC 9438 eq. 2) needs a cube root once per congestion avoidance epoch,
// and that happens on an ACK, inside the packet path. It is done in integers:
// the house rule keeps floating point off the per-ACK path, and exact integer
// results make a seeded loss simulation replay bit for bit on any machine and
// compiler. Binary search over the 32 result bits, most significant first:
// 32 multiply-compare steps, exact floor, no division.
uint64_t cube_root_floor(CubicUint128 x) noexcept {
  uint64_t root = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint64_t candidate = root | (uint64_t{1} << bit);
    const CubicUint128 cube = static_cast<CubicUint128>(candidate * candidate) * candidate;
    if (cube <= x) root = candidate;
  }
  return root;
}

CongestionControl::CongestionControl(CongestionAlgorithm algorithm, uint32_t smss) noexcept
    : smss_(std::clamp(smss, kMinSmss, kMaxSmss)), algorithm_(algorithm) {
  cwnd_ = initial_window(smss_);
  cubic_coef_ = cubic_coef(smss_);
}

uint32_t CongestionControl::initial_window(uint32_t smss) noexcept {
  const uint64_t s = smss;
  return saturate(std::min<uint64_t>(10 * s, std::max<uint64_t>(2 * s, 14'600)));
}

void CongestionControl::set_smss(uint32_t smss) noexcept {
  const uint32_t clamped = std::clamp(smss, kMinSmss, kMaxSmss);
  if (clamped == smss_) return;
  smss_ = clamped;
  cubic_coef_ = cubic_coef(smss_);
  cwnd_ = untouched_ ? initial_window(smss_) : std::max(cwnd_, smss_);
  // K was computed in segments of the old size: start a new curve from here.
  epoch_started_ = false;
}

uint32_t CongestionControl::reduced_ssthresh(uint32_t flight_size) const noexcept {
  // RFC 5681 eq. 4 (NewReno) or RFC 9438 4.6 (CUBIC); at least 2 SMSS either
  // way. The base is min(FlightSize, cwnd): never more than eq. 4 allows
  // ("no more than"), and not fooled by a FlightSize swollen with data sent
  // under the inflated window of the previous recovery (RFC 5681 3.2 step 4),
  // which the path never carried at once. Linux's cwnd-based rule gives the
  // same result whenever the flow was cwnd-limited.
  const uint64_t base = std::min(flight_size, cwnd_);
  const uint64_t reduced = algorithm_ == CongestionAlgorithm::cubic
                               ? base * kBetaNum / kBetaDen
                               : base / 2;
  return saturate(std::max<uint64_t>(reduced, 2 * uint64_t{smss_}));
}

// A reduction ends the growth bookkeeping of the old window: byte counting
// starts over (RFC 3465 2.1) and CUBIC begins a new epoch at the next ACK in
// congestion avoidance (RFC 9438 4.2).
void CongestionControl::forget_growth() noexcept {
  bytes_acked_ = 0;
  epoch_started_ = false;
  app_limited_since_us_ = kNoTime;
  cubic_credit_ = 0;
  est_credit_ = 0;
}

void CongestionControl::on_ack(uint32_t acked_bytes, bool cwnd_limited, uint64_t now_us,
                               uint32_t srtt_us) noexcept {
  if (acked_bytes == 0) return;
  untouched_ = false;
  rto_run_ = false;
  if (in_recovery_) return;
  if (!cwnd_limited) {
    // RFC 9438 4.2: application-limited time does not count towards t.
    if (epoch_started_ && app_limited_since_us_ == kNoTime) app_limited_since_us_ = now_us;
    return;
  }
  if (app_limited_since_us_ != kNoTime) {
    if (now_us > app_limited_since_us_) epoch_start_us_ += now_us - app_limited_since_us_;
    app_limited_since_us_ = kNoTime;
  }
  uint32_t acked = acked_bytes;
  if (cwnd_ < ssthresh_) {
    acked = slow_start(acked);
    if (acked == 0) return;
  }
  if (algorithm_ == CongestionAlgorithm::cubic) {
    cubic_avoidance(acked, now_us, srtt_us);
  } else {
    reno_avoidance(acked);
  }
}

// Returns the acknowledged bytes left over once cwnd reaches ssthresh, for
// congestion avoidance to use (as Linux does), so that where slow start ends
// within an ACK does not change the result.
uint32_t CongestionControl::slow_start(uint32_t acked) noexcept {
  // RFC 3465 2.2: grow by the bytes acknowledged, at most L = 2 SMSS per ACK.
  // In the slow start that follows an RTO, L = 1 SMSS (RFC 3465 2.3; it is
  // also RFC 5681's own eq. 2): there one ACK may cover segments the receiver
  // already held, and a larger L would turn them into a burst.
  const uint64_t limit =
      uint64_t{smss_} * (slow_start_after_rto_ ? 1 : kAbcLimitSegments);
  const uint64_t grow = std::min<uint64_t>(acked, limit);
  const uint64_t room = ssthresh_ - cwnd_;
  if (grow < room) {
    cwnd_ = saturate(cwnd_ + grow);
    return 0;
  }
  cwnd_ = ssthresh_;
  slow_start_after_rto_ = false;
  return static_cast<uint32_t>(acked - room);
}

void CongestionControl::reno_avoidance(uint32_t acked) noexcept {
  // RFC 5681 3.1 with RFC 3465 2.1 byte counting: one SMSS each time a full
  // cwnd's worth of bytes has been acknowledged, at most one step per ACK.
  bytes_acked_ += acked;
  if (bytes_acked_ >= cwnd_) {
    bytes_acked_ -= cwnd_;
    cwnd_ = saturate(uint64_t{cwnd_} + smss_);
  }
}

void CongestionControl::start_epoch(uint64_t now_us) noexcept {
  epoch_started_ = true;
  epoch_start_us_ = now_us;
  app_limited_since_us_ = kNoTime;
  cubic_credit_ = 0;
  est_credit_ = 0;
  // RFC 9438 4.3: W_est starts at cwnd_epoch; alpha is 1 once W_est has
  // reached cwnd_prior, which after an idle restart it may already have.
  w_est_ = cwnd_;
  alpha_num_ = w_est_ >= cwnd_prior_ ? kAlphaDen : kAlphaNum;
  if (after_timeout_ || w_max_ <= cwnd_) {
    // RFC 9438 4.8 after a timeout: K = 0 and W_max = cwnd_epoch. The same
    // curve serves when cwnd already is at or above W_max (no loss yet, or a
    // W_max lowered by fast convergence): eq. 2 would take the cube root of
    // a negative number, and the flow is probing above its old saturation
    // point, the convex region.
    w_max_ = cwnd_;
    k_us_ = 0;
    after_timeout_ = false;
    return;
  }
  // RFC 9438 eq. 2, in us: K^3 = (W_max - cwnd_epoch) / (C * SMSS) * 10^18.
  const CubicUint128 k_cubed =
      static_cast<CubicUint128>(w_max_ - cwnd_) * kInverseCUs3 / smss_;
  k_us_ = cube_root_floor(k_cubed);
}

uint32_t CongestionControl::cubic_window(uint64_t t_us) const noexcept {
  const bool convex = t_us >= k_us_;
  uint64_t offset = convex ? t_us - k_us_ : k_us_ - t_us;
  if (offset > kMaxCubicOffsetUs) {
    if (convex) return kMaxCwnd;
    offset = kMaxCubicOffsetUs;
  }
  const CubicUint128 cube = static_cast<CubicUint128>(offset * offset) * offset;
  const CubicUint128 delta = (cube * cubic_coef_) >> kCubicShift;
  if (convex) return delta >= kMaxCwnd - w_max_ ? kMaxCwnd : w_max_ + static_cast<uint32_t>(delta);
  return delta >= w_max_ ? 0 : w_max_ - static_cast<uint32_t>(delta);
}

void CongestionControl::cubic_avoidance(uint32_t acked, uint64_t now_us,
                                        uint32_t srtt_us) noexcept {
  if (!epoch_started_) start_epoch(now_us);

  // RFC 9438 eq. 4 in bytes: W_est += alpha * acked * SMSS / cwnd. Remainders
  // carry over so that sub-byte steps on small ACKs are not lost.
  est_credit_ += uint64_t{acked} * smss_ * alpha_num_;
  const uint64_t est_unit = uint64_t{kAlphaDen} * cwnd_;
  if (est_credit_ >= est_unit) {
    const uint64_t grow = est_credit_ / est_unit;
    est_credit_ -= grow * est_unit;
    w_est_ = saturate(w_est_ + grow);
  }
  if (alpha_num_ != kAlphaDen && w_est_ >= cwnd_prior_) alpha_num_ = kAlphaDen;

  const uint64_t t_us = now_us > epoch_start_us_ ? now_us - epoch_start_us_ : 0;
  if (cubic_window(t_us) < w_est_) {
    // RFC 9438 4.3, Reno-friendly region: cwnd = W_est. An ACK never
    // shrinks cwnd, so W_est below cwnd (cwnd ran ahead on the cubic curve
    // towards W_cubic(t + RTT)) leaves it where it is.
    cwnd_ = std::max(cwnd_, w_est_);
    return;
  }
  // RFC 9438 4.4 and 4.5: move towards target = W_cubic(t + RTT), kept
  // within [cwnd, 1.5 cwnd] (4.2). The RFC's (target - cwnd) / cwnd per ACK
  // is applied per SMSS acknowledged, as Linux does, so that delayed ACKs do
  // not halve the growth and cwnd reaches target after about one RTT.
  const uint64_t target = std::clamp<uint64_t>(
      cubic_window(t_us + srtt_us), cwnd_, uint64_t{cwnd_} + cwnd_ / 2);
  if (target == cwnd_) return;
  const uint64_t gap = target - cwnd_;
  cubic_credit_ += gap * acked;
  uint64_t grow = cubic_credit_ / cwnd_;
  if (grow == 0) return;
  if (grow >= gap) {
    grow = gap;
    cubic_credit_ = 0;
  } else {
    cubic_credit_ -= grow * cwnd_;
  }
  cwnd_ = saturate(cwnd_ + grow);
}

void CongestionControl::on_enter_recovery(uint32_t flight_size, uint64_t /*now_us*/) noexcept {
  if (in_recovery_) return;
  untouched_ = false;
  if (algorithm_ == CongestionAlgorithm::cubic) {
    // RFC 9438 4.7: a loss below the previous W_max means the available
    // capacity shrank; releasing more of it lets a newcomer converge faster.
    w_max_ = fast_convergence_ && cwnd_ < w_max_
                 ? saturate(uint64_t{cwnd_} * kFastConvergenceNum / kFastConvergenceDen)
                 : cwnd_;
  }
  cwnd_prior_ = cwnd_;
  ssthresh_ = reduced_ssthresh(flight_size);
  // RFC 5681 3.2 step 3: ssthresh + 3 SMSS accounts for the three segments
  // that the duplicate ACKs say have left the network. With SACK the pipe
  // estimate counts them instead (RFC 6675 5 step 4.2: cwnd = ssthresh).
  cwnd_ = sack_ ? ssthresh_ : saturate(uint64_t{ssthresh_} + 3 * uint64_t{smss_});
  in_recovery_ = true;
  slow_start_after_rto_ = false;
  after_timeout_ = false;
  forget_growth();
}

void CongestionControl::on_dup_ack_in_recovery() noexcept {
  if (!in_recovery_ || sack_) return;
  cwnd_ = saturate(uint64_t{cwnd_} + smss_);
}

void CongestionControl::on_partial_ack(uint32_t acked_bytes) noexcept {
  if (!in_recovery_ || sack_) return;
  // RFC 6582 3.2 step 5: deflate by the newly acknowledged bytes, add back
  // one SMSS when at least one SMSS was acknowledged (the retransmission that
  // follows takes its place). One SMSS stays available for that
  // retransmission in any case.
  uint64_t cwnd = cwnd_ > acked_bytes ? cwnd_ - acked_bytes : 0;
  if (acked_bytes >= smss_) cwnd += smss_;
  cwnd_ = saturate(std::max<uint64_t>(cwnd, smss_));
}

void CongestionControl::on_exit_recovery(uint32_t flight_size) noexcept {
  if (!in_recovery_) return;
  in_recovery_ = false;
  const uint64_t deflated = std::max<uint64_t>(flight_size, smss_) + smss_;
  cwnd_ = saturate(std::min<uint64_t>(ssthresh_, deflated));
  forget_growth();
}

void CongestionControl::on_rto(uint32_t flight_size, uint64_t /*now_us*/) noexcept {
  untouched_ = false;
  if (!rto_run_) {
    const uint32_t reduced = reduced_ssthresh(flight_size);
    if (in_recovery_) {
      // Fast recovery already reduced ssthresh for this loss; the timeout
      // ends that recovery and may lower ssthresh further (RFC 5681 eq. 4
      // asks for "no more than" FlightSize / 2), never raise it.
      ssthresh_ = std::min(ssthresh_, reduced);
    } else {
      cwnd_prior_ = cwnd_;
      ssthresh_ = reduced;
    }
  }
  rto_run_ = true;
  in_recovery_ = false;
  cwnd_ = smss_;  // LW, RFC 5681 3.1
  slow_start_after_rto_ = true;
  after_timeout_ = true;
  forget_growth();
}

void CongestionControl::on_idle_restart(uint64_t idle_us, uint32_t rto_us) noexcept {
  if (idle_us <= rto_us) return;
  const uint32_t restart = std::min(initial_window(smss_), cwnd_);
  if (cwnd_ > restart) {
    // RFC 2861 3 (the rule Linux applies too): remember three quarters of
    // the old window in ssthresh so that slow start climbs back to it.
    ssthresh_ = std::max(ssthresh_, cwnd_ - cwnd_ / 4);
    cwnd_ = restart;
    forget_growth();
    return;
  }
  // cwnd stays: shift the CUBIC epoch so that the idle time does not count
  // as growth time (RFC 9438 4.2). An application-limited interval already
  // being tracked covers the idle period.
  if (epoch_started_ && app_limited_since_us_ == kNoTime) epoch_start_us_ += idle_us;
}

}  // namespace mtlsgw::net::tcp
