#include "dataplane/gateway/access_log_queue.h"

#include <bit>

namespace mtlsgw::gateway {

AccessLogQueue::AccessLogQueue(std::size_t capacity)
    : mask_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
      slots_(new AccessRecord[mask_ + 1]()) {}

bool AccessLogQueue::try_pop(AccessRecord& out) noexcept {
  const uint64_t head = consumer_.head.load(std::memory_order_relaxed);
  if (head == consumer_.tail_seen) {
    consumer_.tail_seen = producer_.tail.load(std::memory_order_acquire);
    if (head == consumer_.tail_seen) return false;
  }
  out = slots_[head & mask_];
  consumer_.head.store(head + 1, std::memory_order_release);
  return true;
}

}  // namespace mtlsgw::gateway
