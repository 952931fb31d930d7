#pragma once
// A connection's byte stores: what we sent and the peer has not acknowledged,
// and what the peer sent and the application has not read.
//
// Both are rings over storage the caller hands in (a fixed-size slot of the
// worker's slab), so a connection's memory is fixed when it is created and the
// packet path never allocates. They know nothing of sequence numbers: every
// position is a byte offset from a point the caller names (SND.UNA, RCV.NXT),
// so wrap-around of the sequence space stays in the TCB (tcp_seq.h).
//
// Ring positions are free-running uint32 counters masked into the storage;
// capacity is at most 2^31, so differences of positions are exact.

#include <cstdint>
#include <cstring>

#include "dataplane/net/checksum.h"

namespace mtlsgw::net::tcp {

// Up to two pieces because the ring may wrap; len[1] is 0 when it does not.
struct ByteSpans {
  const uint8_t* data[2];
  uint32_t len[2];
};

namespace buffers_detail {

// Largest capacity kept: a power of two no larger than 2^31, so that offsets
// and position differences fit in 32 bits. RFC 7323 2.3 caps a window at 2^30.
constexpr uint32_t kMaxCapacity = 1u << 31;

uint32_t usable_capacity(uint32_t capacity) noexcept;

inline void ring_store(uint8_t* ring, uint32_t mask, uint32_t pos, const uint8_t* src,
                       uint32_t n) noexcept {
  const uint32_t i = pos & mask;
  const uint32_t room = mask + 1 - i;
  if (n <= room) {
    std::memcpy(ring + i, src, n);
  } else {
    std::memcpy(ring + i, src, room);
    std::memcpy(ring, src + room, n - room);
  }
}

// ring_store that returns the sum of the bytes (checksum.h), taken in the
// same pass; a second piece after the wrap lies at offset `room` of the data.
inline uint16_t ring_store_sum(uint8_t* ring, uint32_t mask, uint32_t pos, const uint8_t* src,
                               uint32_t n) noexcept {
  const uint32_t i = pos & mask;
  const uint32_t room = mask + 1 - i;
  if (n <= room) return checksum_copy(ring + i, src, n);
  const uint16_t first = checksum_copy(ring + i, src, room);
  const uint16_t second = checksum_copy(ring, src + room, n - room);
  return checksum_add(first, checksum_at_offset(second, room));
}

inline void ring_load(const uint8_t* ring, uint32_t mask, uint32_t pos, uint8_t* dst,
                      uint32_t n) noexcept {
  const uint32_t i = pos & mask;
  const uint32_t room = mask + 1 - i;
  if (n <= room) {
    std::memcpy(dst, ring + i, n);
  } else {
    std::memcpy(dst, ring + i, room);
    std::memcpy(dst + room, ring, n - room);
  }
}

// ring_load that returns the sum (checksum.h) of the bytes, taken in the
// same pass; a second piece after the wrap lies at offset `room` of the copy.
inline uint16_t ring_load_sum(const uint8_t* ring, uint32_t mask, uint32_t pos, uint8_t* dst,
                              uint32_t n) noexcept {
  const uint32_t i = pos & mask;
  const uint32_t room = mask + 1 - i;
  if (n <= room) return checksum_copy(dst, ring + i, n);
  const uint16_t first = checksum_copy(dst, ring + i, room);
  const uint16_t second = checksum_copy(dst + room, ring, n - room);
  return checksum_add(first, checksum_at_offset(second, room));
}

inline ByteSpans ring_spans(const uint8_t* ring, uint32_t mask, uint32_t pos, uint32_t n) noexcept {
  const uint32_t i = pos & mask;
  const uint32_t room = mask + 1 - i;
  if (n <= room) return ByteSpans{{ring + i, ring}, {n, 0}};
  return ByteSpans{{ring + i, ring}, {room, n - room}};
}

}  // namespace buffers_detail

// Bytes the application wrote and the peer has not acknowledged. Offset 0 is
// SND.UNA; the TCB keeps SND.NXT - SND.UNA itself and reads from there to send,
// and from any lower offset to retransmit (RFC 9293 3.8.1). SYN and FIN occupy
// sequence space but are never stored here: the caller leaves them out of the
// lengths it passes.
class SendBuffer {
 public:
  // capacity is rounded down to a power of two (at most 2^31). Empties the
  // buffer; the storage must outlive it.
  void attach(uint8_t* storage, uint32_t capacity) noexcept;

  // Appends up to free_space() bytes; returns how many were taken.
  uint32_t write(const uint8_t* data, uint32_t len) noexcept {
    const uint32_t n = len < free_space() ? len : free_space();
    if (n == 0) return 0;
    buffers_detail::ring_store(storage_, mask_, end_, data, n);
    end_ += n;
    return n;
  }

  uint32_t size() const noexcept { return end_ - una_; }
  uint32_t free_space() const noexcept { return capacity_ - size(); }
  uint32_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return end_ == una_; }

  // Copies up to len bytes starting offset bytes after SND.UNA; returns the
  // count, 0 when offset is at or past the end.
  uint32_t copy_out(uint32_t offset, uint8_t* out, uint32_t len) const noexcept {
    const uint32_t held = size();
    if (offset >= held) return 0;
    const uint32_t n = len < held - offset ? len : held - offset;
    if (n != 0) buffers_detail::ring_load(storage_, mask_, una_ + offset, out, n);
    return n;
  }

  // copy_out that also stores the sum (checksum.h) of the bytes copied in
  // `sum` (0 when none): a segment's payload is read once on its way into
  // the frame, not once to copy and once more to checksum.
  uint32_t copy_out(uint32_t offset, uint8_t* out, uint32_t len, uint16_t& sum) const noexcept {
    sum = 0;
    const uint32_t held = size();
    if (offset >= held) return 0;
    const uint32_t n = len < held - offset ? len : held - offset;
    if (n != 0) sum = buffers_detail::ring_load_sum(storage_, mask_, una_ + offset, out, n);
    return n;
  }

  // The same bytes as copy_out, in place (for a gather list or a checksum
  // over the payload); len is cut to what the buffer holds past offset.
  ByteSpans view(uint32_t offset, uint32_t len) const noexcept;

  // SND.UNA advanced by len data bytes. More than size() is clamped: an ACK
  // that covers a FIN reaches here with the FIN already subtracted by the
  // caller, and anything beyond is the caller's bug, not a reason to corrupt.
  void acknowledge(uint32_t len) noexcept {
    const uint32_t held = size();
    una_ += len < held ? len : held;
  }

  void clear() noexcept { una_ = end_ = 0; }

 private:
  uint8_t* storage_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t mask_ = 0;
  uint32_t una_ = 0;  // ring position of SND.UNA
  uint32_t end_ = 0;  // ring position one past the newest byte written
};

// In-order data the application has not read, followed by the receive window,
// in which out-of-order segments are stored at their final place and tracked
// as ranges ("islands") until the hole before them fills (RFC 9293 3.10.7.4:
// segments beyond RCV.NXT SHOULD be held). Offset 0 is RCV.NXT.
class ReceiveBuffer {
 public:
  // Bounded out-of-order queue (issue 3): a peer cannot make us track more.
  static constexpr uint8_t kMaxRanges = 8;

  using Spans = ByteSpans;

  struct InsertResult {
    // Bytes by which the contiguous readable data grew, islands that joined
    // included: the caller advances RCV.NXT by this.
    uint32_t in_order;
    // The segment began beyond RCV.NXT and some of it lay inside the window
    // (RFC 5681 4.2: ACK at once). Also set when it was dropped_no_range.
    bool out_of_order;
    // Every byte of the segment inside the window was already held: nothing
    // was written (a candidate for D-SACK, RFC 2883).
    bool duplicate;
    // Bytes past the right edge of the window were cut off (RFC 9293 3.10.7.4).
    bool trimmed;
    // The segment would have needed an island of its own while all kMaxRanges
    // are in use: nothing was stored, the peer retransmits it later.
    bool dropped_no_range;
    // In-order data arrived while islands were held: a gap (or part of one)
    // was filled, so RFC 5681 4.2 asks for an immediate ACK.
    bool filled_gap;
  };

  // capacity is rounded down to a power of two (at most 2^31). Empties the
  // buffer; the storage must outlive it.
  void attach(uint8_t* storage, uint32_t capacity) noexcept;

  // offset = SEG.SEQ - RCV.NXT, after the caller has trimmed anything below
  // RCV.NXT. Bytes already held are kept as they are: a retransmission (or an
  // injected segment) never rewrites data we accepted once.
  InsertResult insert(uint32_t offset, const uint8_t* data, uint32_t len) noexcept {
    if (offset == 0 && count_ == 0) [[likely]] {
      // No islands: plain append, the per-segment case.
      InsertResult r{};
      const uint32_t window = free_space();
      uint32_t n = len;
      if (n > window) {
        n = window;
        r.trimmed = true;
      }
      if (n != 0 && !(data == placed_data_ && n <= placed_len_ && tail_ == placed_at_)) {
        buffers_detail::ring_store(storage_, mask_, tail_, data, n);
      }
      forget_placed();
      tail_ += n;
      r.in_order = n;
      return r;
    }
    forget_placed();
    return insert_slow(offset, data, len);
  }

  // For a segment whose checksum is not yet known: copies its len bytes to
  // RCV.NXT, where in-order data goes next, without making them readable,
  // and returns their sum (checksum.h) in `sum`, so that the receive path
  // verifies the checksum while it copies the payload: one pass over the
  // bytes instead of two. offset as for insert(); only in-order bytes that
  // fit the free space with no islands held are placed, otherwise nothing
  // is copied and the result is false. A later insert() at offset 0 of the
  // same bytes (same data pointer) only makes them readable. Every call
  // forgets the previous placement: the receive path calls place() for
  // every segment of the connection before its checksum is checked, so a
  // segment that was placed but never inserted (dropped later, say) cannot
  // be taken for a later one that arrives in the same frame buffer.
  bool place(uint32_t offset, const uint8_t* data, uint32_t len, uint16_t& sum) noexcept {
    forget_placed();
    if (offset != 0 || count_ != 0 || len == 0 || len > free_space()) return false;
    sum = buffers_detail::ring_store_sum(storage_, mask_, tail_, data, len);
    placed_data_ = data;
    placed_len_ = len;
    placed_at_ = tail_;
    return true;
  }

  uint32_t readable() const noexcept { return tail_ - head_; }

  // Copies up to len readable bytes and consumes them.
  uint32_t read(uint8_t* out, uint32_t len) noexcept {
    const uint32_t avail = readable();
    const uint32_t n = len < avail ? len : avail;
    if (n == 0) return 0;
    buffers_detail::ring_load(storage_, mask_, head_, out, n);
    head_ += n;
    return n;
  }

  // All readable bytes in place; valid until the next consume/read/insert.
  Spans peek() const noexcept {
    return buffers_detail::ring_spans(storage_, mask_, head_, readable());
  }

  // Drops n bytes from the front of the readable data (clamped to readable()).
  void consume(uint32_t n) noexcept {
    const uint32_t avail = readable();
    head_ += n < avail ? n : avail;
  }

  // RCV.WND: the islands lie inside this window, so it does not shrink when
  // out-of-order data arrives (RFC 9293 3.8.6 discourages shrinking it).
  uint32_t free_space() const noexcept { return capacity_ - readable(); }
  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t out_of_order_bytes() const noexcept { return ooo_bytes_; }
  uint8_t range_count() const noexcept { return count_; }

  // RFC 2018 section 4: one block per island, the island that the latest
  // segment landed in first, then the others from the most recently touched,
  // so that repeated ACKs keep reporting recent blocks. Offsets [left, right)
  // from RCV.NXT. Returns the number written (at most max).
  uint8_t sack_ranges(uint32_t (*out)[2], uint8_t max) const noexcept;

  void clear() noexcept;

 private:
  struct Range {
    uint32_t left;  // ring positions, both past tail_
    uint32_t right;
    uint32_t stamp;  // touch_clock_ at the last segment that landed in it
  };

  InsertResult insert_slow(uint32_t offset, const uint8_t* data, uint32_t len) noexcept;
  void forget_placed() noexcept {
    placed_data_ = nullptr;
    placed_len_ = 0;
  }
  void erase_ranges(uint8_t first, uint8_t last) noexcept;

  uint8_t* storage_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t mask_ = 0;
  uint32_t head_ = 0;  // ring position of the first unread byte
  uint32_t tail_ = 0;  // ring position of RCV.NXT
  uint32_t ooo_bytes_ = 0;
  uint32_t touch_clock_ = 0;
  uint8_t count_ = 0;
  Range ranges_[kMaxRanges]{};  // sorted, disjoint and non-adjacent
  // What place() copied to tail_ and insert() has not yet made readable.
  const uint8_t* placed_data_ = nullptr;
  uint32_t placed_len_ = 0;
  uint32_t placed_at_ = 0;
};

}  // namespace mtlsgw::net::tcp
