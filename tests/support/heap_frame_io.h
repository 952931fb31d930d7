#pragma once
// A FrameIo over a fixed pool of heap buffers, for running the protocol
// layers without EAL (unit tests, micro-benchmarks). It counts every buffer
// it hands out, so a test can assert that each frame ended in exactly one
// send or release, and it records what was sent (unless told not to, for
// benchmarks, where send and release only recycle the buffer).

#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/net/frame.h"

namespace mtlsgw::testing {

class HeapFrameIo final : public net::FrameIo {
 public:
  static constexpr uint16_t kBufferSize = 2048;
  static constexpr uint16_t kHeadroom = 128;

  explicit HeapFrameIo(size_t capacity = 256, bool record_sent = true)
      : storage_(capacity * kBufferSize), record_sent_(record_sent) {
    for (size_t i = capacity; i > 0; --i) free_.push_back(storage_.data() + (i - 1) * kBufferSize);
  }

  bool alloc(net::Frame& out) noexcept override {
    if (free_.empty()) return false;
    uint8_t* buffer = free_.back();
    free_.pop_back();
    out.data = buffer + kHeadroom;
    out.len = 0;
    out.headroom = kHeadroom;
    out.tailroom = kBufferSize - kHeadroom;
    out.handle = buffer;
    ++outstanding_;
    return true;
  }

  // A received frame holding a copy of bytes, as a port would deliver it.
  net::Frame receive(const uint8_t* bytes, size_t len) noexcept {
    net::Frame f;
    if (!alloc(f)) return f;
    std::memcpy(f.data, bytes, len);
    f.append(static_cast<uint16_t>(len));
    return f;
  }
  net::Frame receive(const std::vector<uint8_t>& bytes) noexcept {
    return receive(bytes.data(), bytes.size());
  }

  void send(const net::Frame& frame) noexcept override {
    if (record_sent_) sent_.emplace_back(frame.data, frame.data + frame.len);
    ++sent_count_;
    recycle(frame);
  }

  void release(const net::Frame& frame) noexcept override {
    ++released_count_;
    recycle(frame);
  }

  // Frames sent so far, oldest first; take_sent() empties the list.
  const std::vector<std::vector<uint8_t>>& sent() const noexcept { return sent_; }
  std::vector<std::vector<uint8_t>> take_sent() {
    std::vector<std::vector<uint8_t>> out;
    out.swap(sent_);
    return out;
  }
  // Buffers handed out and not yet sent or released.
  long outstanding() const noexcept { return outstanding_; }
  size_t sent_count() const noexcept { return sent_count_; }
  size_t released_count() const noexcept { return released_count_; }
  // Simulates an exhausted mempool.
  void exhaust() { exhausted_.insert(exhausted_.end(), free_.begin(), free_.end()), free_.clear(); }
  void replenish() { free_.insert(free_.end(), exhausted_.begin(), exhausted_.end()), exhausted_.clear(); }

 private:
  void recycle(const net::Frame& frame) noexcept {
    free_.push_back(static_cast<uint8_t*>(frame.handle));
    --outstanding_;
  }

  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> free_;
  std::vector<uint8_t*> exhausted_;
  bool record_sent_;
  long outstanding_ = 0;
  size_t sent_count_ = 0;
  size_t released_count_ = 0;
  std::vector<std::vector<uint8_t>> sent_;
};

}  // namespace mtlsgw::testing
