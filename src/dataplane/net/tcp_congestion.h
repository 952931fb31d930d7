#pragma once
// Congestion control of one connection's sender: the window arithmetic of
// RFC 5681 (slow start, congestion avoidance, fast retransmit/fast
// recovery), RFC 6582 (NewReno), RFC 6675 (with SACK), RFC 3465 (byte
// counting) and RFC 9438 (CUBIC). The TCB decides what an ACK is (new,
// duplicate, partial, full) and when the retransmission timer fires; this
// class only moves cwnd and ssthresh in response.
//
// Windows are in bytes. cwnd never exceeds kMaxCwnd, the largest window a
// peer can advertise (RFC 7323 2.3), so sums of windows fit in 32 bits.
//
// One instance per connection, owned by its worker: no locks, no
// allocation, no floating point. The algorithm is a tag rather than a
// virtual interface so that a TCB holds its controller by value.
//
// Deliberate choices, each explained where it is implemented:
// - Loss recovery mechanics are shared: CUBIC only changes how much the
//   window shrinks and how it grows back (RFC 9438 4.2 "does not make any
//   changes to ... Fast Recovery and Fast Retransmit").
// - Without SACK, fast recovery inflates and deflates cwnd (RFC 6582 3.2).
//   With SACK (set_sack(true)) cwnd is ssthresh for the whole recovery and
//   the TCB's pipe estimate (RFC 6675 4) does the accounting, so duplicate
//   and partial ACKs leave cwnd alone.
// - ssthresh after a loss comes from the FlightSize the caller passes (RFC
//   5681 eq. 4, RFC 9438 4.6), capped by cwnd; CUBIC's W_max and cwnd_prior
//   come from cwnd. Growth only happens while cwnd-limited, which keeps the
//   two close.
// - CUBIC time t excludes periods during which the flow was not
//   cwnd-limited (RFC 9438 4.2: "MUST NOT include periods during which cwnd
//   has not been updated due to application-limited behavior").
// - No HyStart++ (RFC 9406) yet: slow start is RFC 5681's with byte counting.

#include <cstdint>

namespace mtlsgw::net::tcp {

enum class CongestionAlgorithm : uint8_t { newreno, cubic };

// Integer cube root, rounded down, of values below 2^96 (larger inputs
// saturate to 2^32 - 1). Exposed for tests.
__extension__ typedef unsigned __int128 CubicUint128;
uint64_t cube_root_floor(CubicUint128 x) noexcept;

class CongestionControl {
 public:
  static constexpr uint32_t kMaxCwnd = 1u << 30;
  // "Arbitrarily high" initial ssthresh (RFC 5681 3.1).
  static constexpr uint32_t kInfiniteSsthresh = UINT32_MAX;
  // Smaller SMSS values are raised to this, Linux's floor for a peer's MSS
  // (tcp_min_snd_mss), so that no window can shrink to zero.
  static constexpr uint32_t kMinSmss = 48;
  static constexpr uint32_t kMaxSmss = UINT16_MAX;  // the MSS option is 16 bits
  // RFC 3465 2.2: L, the most cwnd grows per ACK in slow start, in SMSS.
  static constexpr uint32_t kAbcLimitSegments = 2;

  CongestionControl(CongestionAlgorithm algorithm, uint32_t smss) noexcept;

  // RFC 6928: min(10*SMSS, max(2*SMSS, 14600)).
  static uint32_t initial_window(uint32_t smss) noexcept;

  CongestionAlgorithm algorithm() const noexcept { return algorithm_; }
  uint32_t cwnd() const noexcept { return cwnd_; }
  uint32_t ssthresh() const noexcept { return ssthresh_; }
  uint32_t smss() const noexcept { return smss_; }
  bool in_slow_start() const noexcept { return cwnd_ < ssthresh_; }
  bool in_recovery() const noexcept { return in_recovery_; }

  // After MSS negotiation (and on a path MTU change). Before any data was
  // acknowledged or lost, cwnd becomes the initial window for the new SMSS;
  // afterwards cwnd keeps its byte count (at least one SMSS).
  void set_smss(uint32_t smss) noexcept;
  // SACK was negotiated (RFC 2018): recovery follows RFC 6675.
  void set_sack(bool enabled) noexcept { sack_ = enabled; }
  bool sack() const noexcept { return sack_; }
  // RFC 9438 4.7 says SHOULD, but SHOULD be disabled for a flow known to be
  // alone on its path. On by default, as in Linux.
  void set_fast_convergence(bool enabled) noexcept { fast_convergence_ = enabled; }

  // New data acknowledged outside recovery. cwnd_limited: the flow was
  // limited by cwnd rather than by the application or the receive window
  // when this data was sent (RFC 7661's idea); otherwise cwnd does not grow.
  // srtt_us feeds CUBIC's target W_cubic(t + RTT). Ignored during recovery.
  void on_ack(uint32_t acked_bytes, bool cwnd_limited, uint64_t now_us,
              uint32_t srtt_us) noexcept;

  // DupThresh duplicate ACKs or SACK loss detection (RFC 5681 3.2 step 2,
  // RFC 6582 3.2 step 2, RFC 6675 5; CUBIC: RFC 9438 4.6 and 4.7). Ignored
  // while already in recovery: one reduction per window of data.
  void on_enter_recovery(uint32_t flight_size, uint64_t now_us) noexcept;
  // Without SACK: each further duplicate ACK inflates cwnd by SMSS (RFC
  // 5681 3.2 step 4); a partial ACK deflates it (RFC 6582 3.2 step 5).
  void on_dup_ack_in_recovery() noexcept;
  void on_partial_ack(uint32_t acked_bytes) noexcept;
  // The full ACK: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS), RFC
  // 6582 3.2 step 3 option 1, which avoids a burst when little is in flight.
  void on_exit_recovery(uint32_t flight_size) noexcept;

  // Retransmission timer expired (RFC 5681 3.1 eq. 4 and LW = 1 SMSS; CUBIC
  // RFC 9438 4.8). Call on every expiry: ssthresh is only reduced on the
  // first one of a run (RFC 5681 3.1: "has not yet been resent by way of the
  // retransmission timer"), and a run ends with the next new ACK.
  void on_rto(uint32_t flight_size, uint64_t now_us) noexcept;

  // Before sending after an idle period (RFC 5681 4.1): when nothing was
  // sent for longer than one RTO, cwnd restarts from min(IW, cwnd).
  void on_idle_restart(uint64_t idle_us, uint32_t rto_us) noexcept;

  // CUBIC state, for telemetry and tests. Bytes and microseconds.
  uint32_t w_max() const noexcept { return w_max_; }
  uint32_t w_est() const noexcept { return w_est_; }
  uint32_t cwnd_prior() const noexcept { return cwnd_prior_; }
  uint64_t k_us() const noexcept { return k_us_; }
  bool epoch_started() const noexcept { return epoch_started_; }
  uint64_t epoch_start_us() const noexcept { return epoch_start_us_; }
  // W_cubic(t) of RFC 9438 eq. 1 for the current epoch, t since its start.
  uint32_t cubic_window(uint64_t t_us) const noexcept;

 private:
  static constexpr uint64_t kNoTime = UINT64_MAX;

  uint32_t slow_start(uint32_t acked) noexcept;
  void reno_avoidance(uint32_t acked) noexcept;
  void cubic_avoidance(uint32_t acked, uint64_t now_us, uint32_t srtt_us) noexcept;
  void start_epoch(uint64_t now_us) noexcept;
  uint32_t reduced_ssthresh(uint32_t flight_size) const noexcept;
  void forget_growth() noexcept;

  uint32_t cwnd_;
  uint32_t ssthresh_ = kInfiniteSsthresh;
  uint32_t smss_;
  uint64_t bytes_acked_ = 0;  // RFC 3465 2.1 congestion avoidance counter

  // CUBIC (RFC 9438 4.1.2).
  uint32_t w_max_ = 0;
  uint32_t w_est_ = 0;
  uint32_t cwnd_prior_ = 0;
  uint32_t alpha_num_ = 0;  // alpha_cubic = alpha_num_ / kAlphaDen
  uint64_t k_us_ = 0;
  uint64_t epoch_start_us_ = 0;
  uint64_t app_limited_since_us_ = kNoTime;
  uint64_t cubic_coef_ = 0;   // C * SMSS, scaled: see cubic_window()
  uint64_t est_credit_ = 0;   // W_est growth not yet a whole byte
  uint64_t cubic_credit_ = 0; // cwnd growth not yet a whole byte

  CongestionAlgorithm algorithm_;
  bool sack_ = false;
  bool fast_convergence_ = true;
  bool in_recovery_ = false;
  bool rto_run_ = false;           // on_rto since the last new ACK
  bool slow_start_after_rto_ = false;
  bool epoch_started_ = false;
  bool after_timeout_ = false;     // next epoch: K = 0 (RFC 9438 4.8)
  bool untouched_ = true;          // nothing acked or lost yet
};

}  // namespace mtlsgw::net::tcp
