#pragma once
// The sender's record of what the peer has SACKed (RFC 6675 section 3, the
// "scoreboard"), and the loss and pipe estimates RFC 6675 section 4 builds on
// it. Offsets are bytes from SND.UNA, so a SACK block arrives here already
// converted (left = block.left - SND.UNA) and the scoreboard never sees
// sequence numbers.
//
// Bounded: at most kMaxRanges disjoint ranges. Forgetting a SACKed range is
// always safe (at worst a byte is retransmitted that the peer already had);
// recording bytes as SACKed that were not would stall the connection, so the
// scoreboard never widens a range beyond what a block said.

#include <cstdint>
#include <utility>

namespace mtlsgw::net::tcp {

class SackScoreboard {
 public:
  static constexpr uint8_t kMaxRanges = 16;

  struct Range {
    uint32_t left;  // [left, right) from SND.UNA
    uint32_t right;
  };

  // RFC 2018 section 8: after a retransmission timeout the sender SHOULD
  // forget SACK information (the receiver may have reneged).
  void reset() noexcept {
    count_ = 0;
    sacked_ = 0;
  }

  // Records a SACK block [left, right), merging it with ranges it overlaps or
  // touches. The caller has discarded blocks outside (SND.UNA, SND.NXT]
  // (RFC 2018 section 5) and D-SACK blocks (RFC 2883).
  // When all kMaxRanges are in use and the block is disjoint from them, the
  // highest range is the one forgotten (counted in overflow_count()): the
  // holes near SND.UNA are the ones retransmitted first (RFC 6675 NextSeg),
  // so knowledge there saves the most.
  void add(uint32_t left, uint32_t right) noexcept;

  // SND.UNA moved forward by acked bytes: ranges shift down; those now below
  // SND.UNA are dropped, one straddling it keeps its part above.
  void advance(uint32_t acked) noexcept {
    if (count_ == 0 || acked == 0) return;
    shift(acked);
  }

  bool is_sacked(uint32_t offset) const noexcept;
  uint32_t sacked_bytes() const noexcept { return sacked_; }
  // Right edge of the highest SACKed range; 0 when nothing is SACKed.
  uint32_t highest_sacked() const noexcept { return count_ == 0 ? 0 : ranges_[count_ - 1].right; }
  bool empty() const noexcept { return count_ == 0; }

  // RFC 6675 section 4, IsLost(SeqNum): DupThresh discontiguous SACKed ranges,
  // or more than (DupThresh - 1) * SMSS SACKed bytes, lie above offset (at
  // offsets greater than it). dup_thresh 0 counts as 1.
  bool is_lost(uint32_t offset, uint32_t smss, uint32_t dup_thresh = 3) const noexcept;

  // IsLost is monotone: every offset below the returned one is lost and none
  // at or above it is. Lets NextSeg and SetPipe test many bytes at once.
  uint32_t lost_below(uint32_t smss, uint32_t dup_thresh = 3) const noexcept;

  // The first un-SACKed hole at or after from that lies below
  // highest_sacked(): {offset, length}; {from, 0} when there is none (RFC 6675
  // NextSeg rule 1 walks holes from HighRxt with this).
  std::pair<uint32_t, uint32_t> next_hole(uint32_t from) const noexcept;

  // RFC 6675 section 4, SetPipe part (a): bytes in [0, snd_nxt_offset) that
  // are neither SACKed nor lost. Part (b), the retransmitted bytes, is the
  // caller's: unsacked_bytes(0, HighRxt - SND.UNA + 1) under its own rules.
  uint32_t pipe(uint32_t snd_nxt_offset, uint32_t smss, uint32_t dup_thresh = 3) const noexcept {
    return unsacked_bytes(lost_below(smss, dup_thresh), snd_nxt_offset);
  }

  // Bytes in [from, to) that are not SACKed (0 when to <= from).
  uint32_t unsacked_bytes(uint32_t from, uint32_t to) const noexcept;

  uint8_t range_count() const noexcept { return count_; }
  Range range(uint8_t i) const noexcept { return ranges_[i]; }  // sorted by offset
  // Disjoint blocks that found the table full (a peer with many islands).
  uint64_t overflow_count() const noexcept { return overflows_; }

 private:
  void shift(uint32_t acked) noexcept;

  uint8_t count_ = 0;
  uint32_t sacked_ = 0;
  uint64_t overflows_ = 0;
  Range ranges_[kMaxRanges]{};  // sorted, disjoint and non-adjacent
};

}  // namespace mtlsgw::net::tcp
