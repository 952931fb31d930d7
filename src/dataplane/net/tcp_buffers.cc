#include "dataplane/net/tcp_buffers.h"

#include <bit>

namespace mtlsgw::net::tcp {

namespace buffers_detail {

uint32_t usable_capacity(uint32_t capacity) noexcept {
  return capacity >= kMaxCapacity ? kMaxCapacity : std::bit_floor(capacity);
}

}  // namespace buffers_detail

void SendBuffer::attach(uint8_t* storage, uint32_t capacity) noexcept {
  storage_ = storage;
  capacity_ = storage == nullptr ? 0 : buffers_detail::usable_capacity(capacity);
  mask_ = capacity_ == 0 ? 0 : capacity_ - 1;
  clear();
}

ByteSpans SendBuffer::view(uint32_t offset, uint32_t len) const noexcept {
  const uint32_t held = size();
  if (offset >= held) return ByteSpans{{nullptr, nullptr}, {0, 0}};
  const uint32_t n = len < held - offset ? len : held - offset;
  return buffers_detail::ring_spans(storage_, mask_, una_ + offset, n);
}

void ReceiveBuffer::attach(uint8_t* storage, uint32_t capacity) noexcept {
  storage_ = storage;
  capacity_ = storage == nullptr ? 0 : buffers_detail::usable_capacity(capacity);
  mask_ = capacity_ == 0 ? 0 : capacity_ - 1;
  clear();
}

void ReceiveBuffer::clear() noexcept {
  forget_placed();
  head_ = tail_ = 0;
  ooo_bytes_ = 0;
  touch_clock_ = 0;
  count_ = 0;
}

void ReceiveBuffer::erase_ranges(uint8_t first, uint8_t last) noexcept {
  if (first == last) return;
  for (uint8_t from = last, to = first; from < count_; ++from, ++to) ranges_[to] = ranges_[from];
  count_ = static_cast<uint8_t>(count_ - (last - first));
}

ReceiveBuffer::InsertResult ReceiveBuffer::insert_slow(uint32_t offset, const uint8_t* data,
                                                       uint32_t len) noexcept {
  InsertResult r{};
  if (len == 0) return r;
  const uint32_t window = free_space();
  if (offset >= window) {
    r.trimmed = true;
    return r;
  }
  uint32_t n = len;
  if (n > window - offset) {
    n = window - offset;
    r.trimmed = true;
  }
  const uint32_t begin = offset;
  const uint32_t end = offset + n;

  // The islands that overlap [begin, end) or touch it at either edge are
  // consecutive in the sorted array: [first, last).
  uint8_t first = 0;
  while (first < count_ && ranges_[first].right - tail_ < begin) ++first;
  uint8_t last = first;
  while (last < count_ && ranges_[last].left - tail_ <= end) ++last;

  if (begin != 0) {
    r.out_of_order = true;
    // Dropping the newcomer rather than an island keeps every block we may
    // already have SACKed: RFC 2018 section 8 allows reneging but the sender
    // then carries the cost of it.
    if (first == last && count_ == kMaxRanges) {
      r.dropped_no_range = true;
      return r;
    }
  }

  // Only the gaps between held islands are written.
  uint32_t cursor = begin;
  uint32_t written = 0;
  for (uint8_t i = first; i < last && cursor < end; ++i) {
    const uint32_t left = ranges_[i].left - tail_;
    const uint32_t right = ranges_[i].right - tail_;
    if (left > cursor) {
      buffers_detail::ring_store(storage_, mask_, tail_ + cursor, data + (cursor - begin),
                                 left - cursor);
      written += left - cursor;
    }
    if (right > cursor) cursor = right;
  }
  if (cursor < end) {
    buffers_detail::ring_store(storage_, mask_, tail_ + cursor, data + (cursor - begin),
                               end - cursor);
    written += end - cursor;
  }
  r.duplicate = written == 0;

  if (begin == 0) {
    // Islands have left > 0, so first is 0 here, and the slow path with
    // offset 0 means islands exist: this segment fills (part of) a gap.
    uint32_t grown = end;
    for (uint8_t i = first; i < last; ++i) {
      ooo_bytes_ -= ranges_[i].right - ranges_[i].left;
      const uint32_t right = ranges_[i].right - tail_;
      if (right > grown) grown = right;
    }
    erase_ranges(first, last);
    tail_ += grown;
    r.in_order = grown;
    r.filled_gap = true;
    return r;
  }

  // RFC 2018 section 4: the island holding this segment is reported first in
  // the next ACK, even when the segment was a duplicate.
  ++touch_clock_;
  if (first == last) {
    for (uint8_t i = count_; i > first; --i) ranges_[i] = ranges_[i - 1];
    ranges_[first] = Range{tail_ + begin, tail_ + end, touch_clock_};
    ++count_;
    ooo_bytes_ += n;
    return r;
  }
  const uint32_t left = ranges_[first].left - tail_;
  const uint32_t right = ranges_[last - 1].right - tail_;
  ranges_[first] = Range{tail_ + (left < begin ? left : begin), tail_ + (right > end ? right : end),
                         touch_clock_};
  erase_ranges(static_cast<uint8_t>(first + 1), last);
  ooo_bytes_ += written;
  return r;
}

uint8_t ReceiveBuffer::sack_ranges(uint32_t (*out)[2], uint8_t max) const noexcept {
  // At most kMaxRanges islands: a selection by age is cheaper than keeping a
  // second order up to date on every insert. Ages are modular so that the
  // clock may wrap.
  const uint8_t n = max < count_ ? max : count_;
  uint32_t taken = 0;
  for (uint8_t k = 0; k < n; ++k) {
    uint8_t best = 0;
    uint32_t best_age = UINT32_MAX;
    for (uint8_t i = 0; i < count_; ++i) {
      if (taken & (1u << i)) continue;
      const uint32_t age = touch_clock_ - ranges_[i].stamp;
      if (age <= best_age) {
        best = i;
        best_age = age;
      }
    }
    taken |= 1u << best;
    out[k][0] = ranges_[best].left - tail_;
    out[k][1] = ranges_[best].right - tail_;
  }
  return n;
}

}  // namespace mtlsgw::net::tcp
