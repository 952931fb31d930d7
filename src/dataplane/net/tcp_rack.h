#pragma once
// Time-based loss detection for one connection's sender: RACK-TLP (RFC 8985)
// over a log of the segments in flight.
//
// Why RACK rather than RFC 6675's DupThresh alone (measured against Linux
// through the TAP at 3 % loss + 3 % reordering + 1 % duplication each way:
// 272 RTO expiries on 20 MiB before this): a lost retransmission is never
// found by counting SACKed bytes above it, and a lost tail brings no SACK at
// all; both waited for the retransmission timer (200 ms minimum against a
// path RTT under 1 ms). RACK calls a segment lost once a segment sent after
// it has been delivered and a reordering window has passed (RFC 8985 6.2),
// which works for retransmissions exactly as for originals; TLP (RFC 8985 7)
// sends one probe after about two round trips of silence so that a tail loss
// turns into SACK information.
//
// The log: one record per transmitted segment, in sequence order, covering
// [start, SND.MAX) without gaps: the end of each segment, the time it was
// last (re)transmitted and whether it is SACKed, deemed lost or was ever
// retransmitted. Records are 16 bytes in storage the caller hands in (slots
// of the worker's pool, taken with the send buffer), so the packet path
// never allocates and an idle connection carries no log. The log is the
// per-segment form of RFC 6675's scoreboard: pipe (RFC 6675 4) is the bytes
// in flight less those SACKed or deemed lost and not yet retransmitted.
//
// Bounded: when every record is in use, a new transmission extends the
// newest record (its time becomes the newer one: detection can only get
// later, never spuriously earlier); a retransmission that would need a
// record split counts as covering the whole record. Either only costs
// precision.
//
// Sequence numbers are compared modulo 2^32 (tcp_seq.h); times are
// microseconds of the worker's clock.
//
// One instance per connection, owned by its worker: no locks, no allocation.

#include <cstdint>

namespace mtlsgw::net::tcp {

struct SentSegment {
  // The latest transmission: microseconds << kOrderBits, plus its place
  // among the transmissions of that microsecond (Rack::stamp()).
  uint64_t stamp;
  uint32_t end;   // sequence number after it (a FIN counts one)
  uint8_t flags;  // Rack::kSacked, kLost, kRetransmitted
};

class Rack {
 public:
  static constexpr uint8_t kSacked = 1;          // covered by a SACK block
  static constexpr uint8_t kLost = 2;            // deemed lost, not retransmitted since
  static constexpr uint8_t kRetransmitted = 4;   // sent more than once
  static constexpr uint32_t kDupThresh = 3;      // RFC 6675 2 / RFC 8985 6.2 step 4
  // RFC 8985 6.2 step 4: a window widened by D-SACKs lasts 16 recoveries.
  static constexpr uint8_t kReoWndPersist = 16;
  // RACK orders transmissions by time (RACK_sent_after). A worker's clock
  // is read once per poll loop, so a burst, and in the unit tests' simulated
  // link a whole exchange, shares one microsecond; the low bits of a stamp
  // keep the order of sending within it, so that a retransmission is never
  // taken for older than the originals sent in the same microsecond. Up to
  // 2^12 per microsecond; 2^52 us is 142 years.
  static constexpr unsigned kOrderBits = 12;

  // storage holds capacity records (a power of two; 0 detaches). Forgets
  // the log but keeps what RACK learnt about the path (RTT, reordering).
  void attach(SentSegment* storage, uint32_t capacity) noexcept;
  void detach() noexcept { attach(nullptr, 0); }
  bool attached() const noexcept { return capacity_ != 0; }

  // --- the log ---------------------------------------------------------

  // A transmission of [seq, seq + len) (len counts a FIN; SYNs are not
  // logged). snd_max: SND.MAX before it, which tells new data (seq ==
  // snd_max) from a retransmission.
  void on_transmit(uint32_t seq, uint32_t len, uint64_t now_us, uint32_t snd_max) noexcept;
  // False while a new segment could not be logged without merging it into a
  // SACKed record (full log): new data then waits for ACKs.
  bool can_log_new() const noexcept {
    return count_ < capacity_ || (count_ != 0 && (at(count_ - 1).flags & kSacked) == 0);
  }

  // RFC 6675 4 "pipe" over [snd_una, snd_max).
  uint32_t pipe(uint32_t snd_una, uint32_t snd_max) const noexcept {
    const uint32_t flight = snd_max - snd_una;
    const uint32_t out = sacked_bytes_ + lost_bytes_;
    return flight > out ? flight - out : 0;
  }
  uint32_t sacked_bytes() const noexcept { return sacked_bytes_; }
  uint32_t lost_bytes() const noexcept { return lost_bytes_; }
  uint32_t segments() const noexcept { return count_; }
  uint32_t capacity() const noexcept { return capacity_; }

  // The lowest segment deemed lost: its range (seq, len). False when none.
  bool first_lost(uint32_t* seq, uint32_t* len) const noexcept;
  // The highest segment not SACKed, what a tail loss probe resends (RFC
  // 8985 7.3). False when none.
  bool last_unsacked(uint32_t* seq, uint32_t* len) const noexcept;

  // --- one ACK (RFC 8985 6.2) ----------------------------------------------

  // SND.UNA advanced to ack: records below it leave the log; those not
  // SACKed before were delivered now (steps 2 and 3).
  void on_cumulative_ack(uint32_t ack, uint64_t now_us) noexcept;
  // A SACK block (not a D-SACK) already cut to (SND.UNA, SND.MAX]: every
  // record it covers whole is SACKed (steps 2 and 3).
  void on_sack_block(uint32_t left, uint32_t right, uint64_t now_us) noexcept;
  // Step 4, once per ACK after the blocks: dsack says whether the ACK carried
  // a D-SACK (RFC 2883). A D-SACK means a retransmission was spurious, so
  // the path reorders (or duplicates): the window grows by min_RTT / 4 once
  // per round trip.
  void on_ack_end(bool dsack, uint32_t snd_una, uint32_t snd_max) noexcept;
  // RACK.reo_wnd (RFC 8985 6.2 step 4).
  uint32_t reo_wnd_us(bool in_recovery, uint32_t srtt_us) const noexcept;
  // Step 5, RACK_detect_loss: marks the segments sent before the most
  // recently delivered one whose time is up. Returns the microseconds until
  // the next one would be (the reordering timer), 0 when none waits;
  // *newly_lost counts those marked now.
  uint64_t detect_loss(uint64_t now_us, uint32_t reo_wnd_us, uint32_t* newly_lost) noexcept;
  // Whether detect_loss could find anything: with nothing SACKed and nothing
  // retransmitted, every segment in flight was sent after the delivered
  // ones, so the per-ACK fast path skips the walk.
  bool may_detect_loss() const noexcept {
    return count_ != 0 && delivered_ && (sacked_segments_ != 0 || retransmitted_segments_ != 0);
  }

  // RFC 2018 8 / RFC 8985 6.3 at a retransmission timeout: the SACK
  // information may be stale (a reneging receiver), so it is forgotten and
  // every segment in flight is deemed lost; the recovery that follows
  // retransmits them in order as cwnd allows. Returns the segments marked.
  uint32_t on_rto() noexcept;
  // A fast or timeout recovery ended (step 4: reo_wnd_persist).
  void on_recovery_end() noexcept;

  // --- tail loss probe (RFC 8985 7) ----------------------------------------

  // Probes per episode: RFC 8985 7.3 sends one, then leaves it to the RTO.
  // A second one, a retransmission, follows after twice the probe timeout
  // if the first brought no ACK: measured against Linux, a receiver whose
  // own data is blocked (our window full) delays its ACKs up to 200 ms, new
  // data included, and only a duplicate segment makes it ACK at once (RFC
  // 5681 4.2 / RFC 2883). QUIC probes twice per timeout (RFC 9002 6.2.4).
  static constexpr uint8_t kMaxProbes = 2;
  bool probe_outstanding() const noexcept { return tlp_outstanding_; }
  uint8_t probes_sent() const noexcept { return tlp_probes_; }
  // A probe went out; end_seq: SND.MAX after it, retransmission: it resent
  // the tail rather than new data.
  void on_probe_sent(uint32_t start_seq, uint32_t end_seq, bool retransmission) noexcept {
    tlp_outstanding_ = true;
    if (tlp_probes_ != UINT8_MAX) ++tlp_probes_;
    tlp_start_ = start_seq;
    tlp_end_ = end_seq;
    tlp_retransmission_ = retransmission;
  }
  void cancel_probe() noexcept {
    tlp_outstanding_ = false;
    tlp_probes_ = 0;
  }
  enum class ProbeOutcome : uint8_t { pending, delivered, spurious, repaired_loss };
  // RFC 8985 7.4: what the ACK says about the outstanding probe. dsack_left/
  // dsack_right: the ACK's D-SACK block (equal when none); has_sack: it
  // carried SACK blocks. Ends the episode unless pending.
  ProbeOutcome on_probe_ack(uint32_t ack, uint32_t dsack_left, uint32_t dsack_right,
                            bool has_sack) noexcept;

  // --- what RACK learnt, for telemetry and tests -------------------------
  uint32_t rtt_us() const noexcept { return rtt_us_; }
  uint32_t min_rtt_us() const noexcept { return min_rtt_us_; }
  uint32_t reo_wnd_mult() const noexcept { return reo_wnd_mult_; }
  bool reordering_seen() const noexcept { return reordering_seen_; }

 private:
  static uint64_t microseconds(uint64_t stamp) noexcept { return stamp >> kOrderBits; }
  uint64_t stamp(uint64_t now_us) noexcept;
  SentSegment& at(uint32_t i) noexcept { return slots_[(head_ + i) & mask_]; }
  const SentSegment& at(uint32_t i) const noexcept { return slots_[(head_ + i) & mask_]; }
  uint32_t start_of(uint32_t i) const noexcept { return i == 0 ? start_ : at(i - 1).end; }
  void clear_log() noexcept;
  // Inserts a record boundary at seq, inside record i; false when full.
  bool split(uint32_t i, uint32_t seq) noexcept;
  void set_flags(uint32_t i, uint8_t flags) noexcept;
  // RFC 8985 6.2 steps 2 and 3 for one record delivered by this ACK.
  void delivered(const SentSegment& s, uint64_t now_us) noexcept;

  SentSegment* slots_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t mask_ = 0;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
  uint32_t start_ = 0;  // sequence number where the oldest record begins
  uint32_t sacked_bytes_ = 0;
  uint32_t lost_bytes_ = 0;
  uint32_t sacked_segments_ = 0;
  uint32_t retransmitted_segments_ = 0;

  uint64_t last_stamp_ = 0;

  // RACK (RFC 8985 6.1): the most recently sent of the delivered segments.
  uint64_t xmit_stamp_ = 0;
  uint32_t end_seq_ = 0;
  uint32_t rtt_us_ = 0;
  uint32_t min_rtt_us_ = UINT32_MAX;
  uint32_t fack_ = 0;  // highest sequence number delivered
  uint32_t dsack_round_ = 0;
  uint8_t reo_wnd_mult_ = 1;
  uint8_t reo_wnd_persist_ = 0;
  bool dsack_round_open_ = false;
  bool reordering_seen_ = false;
  bool delivered_ = false;   // xmit_stamp_, end_seq_ and rtt_us_ are set
  bool fack_valid_ = false;

  // TLP (RFC 8985 7).
  bool tlp_outstanding_ = false;
  bool tlp_retransmission_ = false;
  uint8_t tlp_probes_ = 0;  // in the current episode
  uint32_t tlp_start_ = 0;
  uint32_t tlp_end_ = 0;
};

}  // namespace mtlsgw::net::tcp
