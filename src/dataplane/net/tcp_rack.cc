#include "dataplane/net/tcp_rack.h"

#include "dataplane/net/tcp_seq.h"

namespace mtlsgw::net::tcp {
namespace {

// RFC 8985 6.2, RACK_sent_after: t1/seq1 went out after t2/seq2 (stamps
// tie only past 2^12 transmissions in a microsecond: then by their end).
bool sent_after(uint64_t t1, uint32_t seq1, uint64_t t2, uint32_t seq2) noexcept {
  return t1 > t2 || (t1 == t2 && seq_gt(seq1, seq2));
}

}  // namespace

uint64_t Rack::stamp(uint64_t now_us) noexcept {
  const uint64_t base = now_us << kOrderBits;
  if (last_stamp_ < base) {
    last_stamp_ = base;
  } else if (microseconds(last_stamp_) == now_us &&
             (last_stamp_ & ((uint64_t{1} << kOrderBits) - 1)) != (uint64_t{1} << kOrderBits) - 1) {
    ++last_stamp_;
  }
  return last_stamp_;
}

void Rack::attach(SentSegment* storage, uint32_t capacity) noexcept {
  slots_ = storage;
  capacity_ = storage == nullptr ? 0 : capacity;
  mask_ = capacity_ == 0 ? 0 : capacity_ - 1;
  clear_log();
}

void Rack::clear_log() noexcept {
  head_ = 0;
  count_ = 0;
  sacked_bytes_ = 0;
  lost_bytes_ = 0;
  sacked_segments_ = 0;
  retransmitted_segments_ = 0;
}

void Rack::set_flags(uint32_t i, uint8_t flags) noexcept {
  SentSegment& s = at(i);
  const uint32_t len = s.end - start_of(i);
  const uint8_t changed = s.flags ^ flags;
  if (changed & kSacked) {
    if (flags & kSacked) {
      sacked_bytes_ += len;
      ++sacked_segments_;
    } else {
      sacked_bytes_ -= len;
      --sacked_segments_;
    }
  }
  if (changed & kLost) {
    if (flags & kLost) {
      lost_bytes_ += len;
    } else {
      lost_bytes_ -= len;
    }
  }
  if (changed & kRetransmitted) {
    if (flags & kRetransmitted) {
      ++retransmitted_segments_;
    } else {
      --retransmitted_segments_;
    }
  }
  s.flags = flags;
}

bool Rack::split(uint32_t i, uint32_t seq) noexcept {
  if (count_ == capacity_) return false;
  for (uint32_t k = count_; k > i + 1; --k) at(k) = at(k - 1);
  at(i + 1) = at(i);
  at(i).end = seq;
  ++count_;
  // Byte totals are unchanged; the per-segment counts gain the new half.
  if (at(i).flags & kSacked) ++sacked_segments_;
  if (at(i).flags & kRetransmitted) ++retransmitted_segments_;
  return true;
}

void Rack::on_transmit(uint32_t seq, uint32_t len, uint64_t now_us, uint32_t snd_max) noexcept {
  if (capacity_ == 0 || len == 0) return;
  const uint32_t end = seq + len;
  const uint64_t when = stamp(now_us);
  if (seq == snd_max) {
    // New data. The log always ends at SND.MAX; if it somehow does not, it
    // starts over rather than describe sequence space wrongly.
    if (count_ != 0 && at(count_ - 1).end != seq) clear_log();
    if (count_ == 0) start_ = seq;
    if (count_ == capacity_) {
      SentSegment& last = at(count_ - 1);
      if (last.flags & kSacked) set_flags(count_ - 1, static_cast<uint8_t>(last.flags & ~kSacked));
      if (last.flags & kLost) lost_bytes_ += len;
      last.end = end;
      last.stamp = when;
      return;
    }
    slots_[(head_ + count_) & mask_] = SentSegment{when, end, 0};
    ++count_;
    return;
  }
  // A retransmission: the records it covers get its time.
  if (count_ == 0 || seq_le(end, start_)) return;
  if (seq_lt(seq, start_)) seq = start_;
  uint32_t i = 0;
  while (i < count_ && seq_le(at(i).end, seq)) ++i;
  if (i == count_) return;
  if (seq_gt(seq, start_of(i)) && split(i, seq)) ++i;
  for (; i < count_ && seq_lt(start_of(i), end); ++i) {
    if (seq_gt(at(i).end, end)) split(i, end);
    SentSegment& s = at(i);
    s.stamp = when;
    set_flags(i, static_cast<uint8_t>((s.flags | kRetransmitted) & ~kLost));
  }
}

bool Rack::first_lost(uint32_t* seq, uint32_t* len) const noexcept {
  if (lost_bytes_ == 0) return false;
  for (uint32_t i = 0; i < count_; ++i) {
    if (at(i).flags & kLost) {
      *seq = start_of(i);
      *len = at(i).end - *seq;
      return true;
    }
  }
  return false;
}

bool Rack::last_unsacked(uint32_t* seq, uint32_t* len) const noexcept {
  for (uint32_t i = count_; i-- > 0;) {
    if ((at(i).flags & kSacked) == 0) {
      *seq = start_of(i);
      *len = at(i).end - *seq;
      return true;
    }
  }
  return false;
}

void Rack::delivered(const SentSegment& s, uint64_t now_us) noexcept {
  // Step 3: a segment delivered below one delivered before it was not lost
  // but overtaken. A retransmitted one proves nothing: its original may
  // have been lost.
  const bool retransmitted = (s.flags & kRetransmitted) != 0;
  if (!fack_valid_ || seq_gt(s.end, fack_)) {
    fack_ = s.end;
    fack_valid_ = true;
  } else if (seq_lt(s.end, fack_) && !retransmitted) {
    reordering_seen_ = true;
  }
  const uint64_t sent_us = microseconds(s.stamp);
  const uint64_t rtt = now_us > sent_us ? now_us - sent_us : 0;
  if (retransmitted) {
    // Step 2: an ACK that came back faster than the path can acknowledges
    // the original, not the retransmission. (RFC 8985 also compares the
    // echoed timestamp with the retransmission's, but a receiver echoes the
    // timestamp of its last in-order segment (RFC 7323 4.3), so every SACK
    // for a retransmission beyond a hole would fail that test: a probe's
    // SACK would then never reveal the loss before it. Linux omits it too.)
    if (min_rtt_us_ != UINT32_MAX && rtt < min_rtt_us_) return;
  }
  const uint32_t rtt32 = rtt > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(rtt);
  if (rtt32 < min_rtt_us_) min_rtt_us_ = rtt32;
  if (!delivered_ || sent_after(s.stamp, s.end, xmit_stamp_, end_seq_)) {
    xmit_stamp_ = s.stamp;
    end_seq_ = s.end;
    rtt_us_ = rtt32;
  }
  delivered_ = true;
}

void Rack::on_cumulative_ack(uint32_t ack, uint64_t now_us) noexcept {
  if (sacked_segments_ == 0 && retransmitted_segments_ == 0 && lost_bytes_ == 0) {
    // The bulk-transfer case: no record carries a flag, so the log is in
    // transmission order too, and steps 2 and 3 reduce to the newest record
    // acknowledged (the latest sent, with the smallest RTT; nothing below
    // it was delivered out of order). perf/tcp_bench: ~100 instructions
    // less per ACK than the general walk.
    uint32_t acked = 0;
    while (acked < count_ && seq_le(at(acked).end, ack)) ++acked;
    if (acked != 0) {
      const SentSegment newest = at(acked - 1);
      head_ = (head_ + acked) & mask_;
      count_ -= acked;
      start_ = newest.end;
      delivered(newest, now_us);
    }
    // An ACK inside the oldest segment leaves only its tail in flight.
    if (count_ == 0 || seq_gt(ack, start_)) start_ = ack;
    return;
  }
  while (count_ != 0 && seq_le(at(0).end, ack)) {
    const SentSegment s = at(0);
    if ((s.flags & kSacked) == 0) delivered(s, now_us);
    set_flags(0, 0);
    start_ = s.end;
    head_ = (head_ + 1) & mask_;
    --count_;
  }
  if (count_ == 0) {
    start_ = ack;
    return;
  }
  if (seq_gt(ack, start_)) {
    // The ACK ends inside the oldest segment: only its tail is in flight.
    const uint32_t cut = ack - start_;
    if (at(0).flags & kSacked) sacked_bytes_ -= cut;
    if (at(0).flags & kLost) lost_bytes_ -= cut;
    start_ = ack;
  }
}

void Rack::on_sack_block(uint32_t left, uint32_t right, uint64_t now_us) noexcept {
  for (uint32_t i = 0; i < count_; ++i) {
    const uint32_t start = start_of(i);
    if (seq_le(at(i).end, left)) continue;
    if (seq_ge(start, right)) break;
    // RFC 6675 works in whole segments: a block that covers part of one
    // (a receiver that trimmed it) leaves it outstanding.
    if ((at(i).flags & kSacked) || seq_lt(start, left) || seq_gt(at(i).end, right)) continue;
    delivered(at(i), now_us);
    set_flags(i, static_cast<uint8_t>((at(i).flags | kSacked) & ~kLost));
  }
}

void Rack::on_ack_end(bool dsack, uint32_t snd_una, uint32_t snd_max) noexcept {
  if (dsack_round_open_ && seq_ge(snd_una, dsack_round_)) dsack_round_open_ = false;
  if (!dsack) return;
  // A D-SACK reports a segment that arrived twice: a retransmission that was
  // not needed (the original was overtaken, not lost) or a copy the network
  // made. Either way waiting longer would have been right, so it counts as
  // reordering (RFC 8985 6.2 step 4 widens the window only once reordering
  // has been seen; without this, a path whose reordering always outlasts
  // the window would never show it: every overtaken segment would already
  // be a retransmission, which step 3 does not count).
  reordering_seen_ = true;
  if (!dsack_round_open_) {
    dsack_round_ = snd_max;
    dsack_round_open_ = true;
    if (reo_wnd_mult_ != UINT8_MAX) ++reo_wnd_mult_;
    reo_wnd_persist_ = kReoWndPersist;
  }
}

void Rack::on_recovery_end() noexcept {
  if (reo_wnd_persist_ != 0 && --reo_wnd_persist_ == 0) reo_wnd_mult_ = 1;
}

uint32_t Rack::reo_wnd_us(bool in_recovery, uint32_t srtt_us) const noexcept {
  if (!reordering_seen_) {
    // Until reordering is seen, be as quick as DupThresh would be.
    if (in_recovery || sacked_segments_ >= kDupThresh) return 0;
  }
  if (min_rtt_us_ == UINT32_MAX) return 0;
  const uint64_t wnd = uint64_t{min_rtt_us_ / 4} * reo_wnd_mult_;
  if (srtt_us != 0 && wnd > srtt_us) return srtt_us;
  return wnd > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(wnd);
}

uint64_t Rack::detect_loss(uint64_t now_us, uint32_t reo_wnd_us, uint32_t* newly_lost) noexcept {
  *newly_lost = 0;
  if (!delivered_) return 0;
  uint64_t wait = 0;
  const uint64_t allowance = uint64_t{rtt_us_} + reo_wnd_us;
  for (uint32_t i = 0; i < count_; ++i) {
    const SentSegment& s = at(i);
    if (s.flags & (kSacked | kLost)) continue;
    if (!sent_after(xmit_stamp_, end_seq_, s.stamp, s.end)) {
      // Without retransmissions the log is in order of transmission too:
      // nothing further on went out earlier.
      if (retransmitted_segments_ == 0) break;
      continue;
    }
    const uint64_t due = microseconds(s.stamp) + allowance;
    if (due <= now_us) {
      set_flags(i, static_cast<uint8_t>(s.flags | kLost));
      ++*newly_lost;
    } else if (due - now_us > wait) {
      wait = due - now_us;
    }
  }
  return wait;
}

uint32_t Rack::on_rto() noexcept {
  for (uint32_t i = 0; i < count_; ++i) {
    set_flags(i, static_cast<uint8_t>((at(i).flags & ~kSacked) | kLost));
  }
  return count_;
}

Rack::ProbeOutcome Rack::on_probe_ack(uint32_t ack, uint32_t dsack_left, uint32_t dsack_right,
                                      bool has_sack) noexcept {
  if (!tlp_outstanding_ || seq_lt(ack, tlp_end_)) return ProbeOutcome::pending;
  ProbeOutcome outcome;
  if (!tlp_retransmission_) {
    // New data probed: whatever it uncovered, RACK repairs as usual.
    outcome = ProbeOutcome::delivered;
  } else if (dsack_left != dsack_right && seq_lt(dsack_left, tlp_end_) &&
             seq_gt(dsack_right, tlp_start_)) {
    // The receiver had the original: nothing was lost.
    outcome = ProbeOutcome::spurious;
  } else if (seq_gt(ack, tlp_end_) || !has_sack) {
    // The probe itself filled the hole (7.4.2).
    outcome = ProbeOutcome::repaired_loss;
  } else {
    return ProbeOutcome::pending;  // a D-SACK may still come
  }
  tlp_outstanding_ = false;
  tlp_probes_ = 0;
  return outcome;
}

}  // namespace mtlsgw::net::tcp
