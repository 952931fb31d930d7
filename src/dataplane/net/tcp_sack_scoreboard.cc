#include "dataplane/net/tcp_sack_scoreboard.h"

namespace mtlsgw::net::tcp {

void SackScoreboard::add(uint32_t left, uint32_t right) noexcept {
  if (left >= right) return;
  // Ranges overlapping or touching [left, right) are consecutive: [first, last).
  uint8_t first = 0;
  while (first < count_ && ranges_[first].right < left) ++first;
  uint8_t last = first;
  while (last < count_ && ranges_[last].left <= right) ++last;

  if (first == last) {
    if (count_ == kMaxRanges) {
      ++overflows_;
      if (first == count_) return;  // the block itself is the highest
      --count_;
      sacked_ -= ranges_[count_].right - ranges_[count_].left;
    }
    for (uint8_t i = count_; i > first; --i) ranges_[i] = ranges_[i - 1];
    ranges_[first] = Range{left, right};
    ++count_;
    sacked_ += right - left;
    return;
  }

  Range merged{left < ranges_[first].left ? left : ranges_[first].left,
               right > ranges_[last - 1].right ? right : ranges_[last - 1].right};
  for (uint8_t i = first; i < last; ++i) sacked_ -= ranges_[i].right - ranges_[i].left;
  sacked_ += merged.right - merged.left;
  ranges_[first] = merged;
  const uint8_t removed = static_cast<uint8_t>(last - first - 1);
  if (removed != 0) {
    for (uint8_t from = last, to = static_cast<uint8_t>(first + 1); from < count_; ++from, ++to) {
      ranges_[to] = ranges_[from];
    }
    count_ = static_cast<uint8_t>(count_ - removed);
  }
}

void SackScoreboard::shift(uint32_t acked) noexcept {
  uint8_t kept = 0;
  uint32_t sacked = 0;
  for (uint8_t i = 0; i < count_; ++i) {
    const Range r = ranges_[i];
    if (r.right <= acked) continue;
    const Range moved{r.left > acked ? r.left - acked : 0, r.right - acked};
    ranges_[kept++] = moved;
    sacked += moved.right - moved.left;
  }
  count_ = kept;
  sacked_ = sacked;
}

bool SackScoreboard::is_sacked(uint32_t offset) const noexcept {
  for (uint8_t i = 0; i < count_; ++i) {
    if (offset < ranges_[i].left) return false;
    if (offset < ranges_[i].right) return true;
  }
  return false;
}

bool SackScoreboard::is_lost(uint32_t offset, uint32_t smss, uint32_t dup_thresh) const noexcept {
  if (dup_thresh == 0) dup_thresh = 1;
  const uint64_t byte_limit = static_cast<uint64_t>(dup_thresh - 1) * smss;
  uint32_t ranges_above = 0;
  uint64_t bytes_above = 0;
  for (uint8_t i = count_; i-- > 0;) {
    const Range r = ranges_[i];
    // Bytes strictly greater than offset: (offset, right).
    if (r.right - 1 <= offset) break;
    ++ranges_above;
    bytes_above += r.right - (r.left > offset ? r.left : offset + 1);
    if (ranges_above >= dup_thresh || bytes_above > byte_limit) return true;
  }
  return false;
}

uint32_t SackScoreboard::lost_below(uint32_t smss, uint32_t dup_thresh) const noexcept {
  if (dup_thresh == 0) dup_thresh = 1;
  // Count rule: offset o has dup_thresh ranges above it while the
  // dup_thresh-th highest range still holds a byte > o, i.e. o < its right - 1.
  uint32_t bound = 0;
  if (count_ >= dup_thresh) bound = ranges_[count_ - dup_thresh].right - 1;
  // Byte rule: walk down until the SACKed bytes above exceed the limit; inside
  // that range, bytes above o are above + (right - 1 - o).
  const uint64_t byte_limit = static_cast<uint64_t>(dup_thresh - 1) * smss;
  uint64_t above = 0;
  for (uint8_t i = count_; i-- > 0;) {
    const Range r = ranges_[i];
    const uint64_t len = r.right - r.left;
    if (above + len > byte_limit) {
      const uint32_t by_bytes = r.right - 1 - static_cast<uint32_t>(byte_limit - above);
      if (by_bytes > bound) bound = by_bytes;
      break;
    }
    above += len;
  }
  return bound;
}

std::pair<uint32_t, uint32_t> SackScoreboard::next_hole(uint32_t from) const noexcept {
  uint32_t cursor = from;
  for (uint8_t i = 0; i < count_; ++i) {
    const Range r = ranges_[i];
    if (r.right <= cursor) continue;
    if (r.left > cursor) return {cursor, r.left - cursor};
    cursor = r.right;
  }
  return {from, 0};
}

uint32_t SackScoreboard::unsacked_bytes(uint32_t from, uint32_t to) const noexcept {
  if (to <= from) return 0;
  uint32_t total = to - from;
  for (uint8_t i = 0; i < count_; ++i) {
    const Range r = ranges_[i];
    if (r.left >= to) break;
    const uint32_t lo = r.left > from ? r.left : from;
    const uint32_t hi = r.right < to ? r.right : to;
    if (hi > lo) total -= hi - lo;
  }
  return total;
}

}  // namespace mtlsgw::net::tcp
