#pragma once
// A worker's access records on their way to the writer thread: a bounded
// single-producer (the worker) single-consumer (the writer) ring. The worker
// never waits, locks, allocates or makes a syscall here; when the writer
// falls behind (a slow disk, a stalled stdout pipe) records are dropped and
// counted, so a log problem never slows the data path.
//
// Memory ordering. tail_ counts records published by the producer, head_
// records released by the consumer; both only grow (64 bits do not wrap), so
// tail_ - head_ is the fill level and index & mask_ the slot.
//   - The producer writes a slot, then stores tail_ with release. The
//     consumer loads tail_ with acquire, so it sees the slot's bytes whole.
//   - The consumer copies a slot out, then stores head_ with release. The
//     producer loads head_ with acquire before reusing that slot, so its new
//     bytes cannot overtake the consumer's read of the old ones.
// Each side keeps a private copy of the other side's index and reloads the
// shared one only when its copy says full (producer) or empty (consumer), so
// in the steady state neither touches the other's cache line. The producer's
// and consumer's fields live on separate 128-byte blocks: the L2 spatial
// prefetcher of Intel cores completes every line to its 128-byte aligned
// pair (Intel 64 and IA-32 Architectures Optimization Reference Manual), so
// 64-byte separation can still bounce lines between the two cores.
//
// One consumer at a time: the writer may drain from different threads only
// if something else orders them (AccessLogWriter holds a mutex).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/gateway/access_record.h"

namespace mtlsgw::gateway {

class AccessLogQueue {
 public:
  // At 50 ms between drains, 4096 slots (about 7.5 MiB) hold 80,000
  // connection ends per second from one worker before any is dropped.
  static constexpr std::size_t kDefaultCapacity = 4096;

  // capacity: rounded up to a power of two (at least 2). All slots are
  // allocated and zeroed here, so their pages are faulted in now and not on
  // a worker's first pushes.
  explicit AccessLogQueue(std::size_t capacity = kDefaultCapacity);
  AccessLogQueue(const AccessLogQueue&) = delete;
  AccessLogQueue& operator=(const AccessLogQueue&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // ---- producer (the worker) ----

  // Copies the record into the ring; false (and dropped() + 1) when full.
  bool try_push(const AccessRecord& record) noexcept {
    AccessRecord* slot = try_claim();
    if (slot == nullptr) return false;
    *slot = record;
    publish();
    return true;
  }

  // Two-step push that fills the slot in place (no 2 KiB copy): try_claim
  // returns the next free slot, holding whatever an earlier record left
  // there, or nullptr (and dropped() + 1) when full; publish() hands it to
  // the consumer. Nothing is visible to the consumer before publish().
  AccessRecord* try_claim() noexcept {
    const uint64_t tail = producer_.tail.load(std::memory_order_relaxed);
    if (tail - producer_.head_seen >= capacity()) {
      producer_.head_seen = consumer_.head.load(std::memory_order_acquire);
      if (tail - producer_.head_seen >= capacity()) {
        // Single writer: a plain load and store, no locked read-modify-write.
        producer_.dropped.store(producer_.dropped.load(std::memory_order_relaxed) + 1,
                                std::memory_order_relaxed);
        return nullptr;
      }
    }
    return &slots_[tail & mask_];
  }
  void publish() noexcept {
    producer_.tail.store(producer_.tail.load(std::memory_order_relaxed) + 1,
                         std::memory_order_release);
  }

  // ---- consumer (the writer) ----

  // Copies out the oldest record; false when empty.
  bool try_pop(AccessRecord& out) noexcept;

  // Hands each record present at the call, oldest first, to fn(const
  // AccessRecord&), at most max_records of them; returns how many. Each slot
  // is released as soon as fn returns, so the worker can reuse it while a
  // long drain goes on.
  template <typename Fn>
  std::size_t drain(Fn&& fn, std::size_t max_records = SIZE_MAX) {
    const uint64_t head = consumer_.head.load(std::memory_order_relaxed);
    consumer_.tail_seen = producer_.tail.load(std::memory_order_acquire);
    std::size_t count = 0;
    while (count < max_records && head + count != consumer_.tail_seen) {
      fn(static_cast<const AccessRecord&>(slots_[(head + count) & mask_]));
      ++count;
      consumer_.head.store(head + count, std::memory_order_release);
    }
    return count;
  }

  // ---- either side (telemetry) ----

  uint64_t dropped() const noexcept { return producer_.dropped.load(std::memory_order_relaxed); }
  // Records waiting, as of some recent moment (exact only on a quiet queue).
  std::size_t size_approx() const noexcept {
    const uint64_t head = consumer_.head.load(std::memory_order_acquire);
    const uint64_t tail = producer_.tail.load(std::memory_order_acquire);
    return tail >= head ? static_cast<std::size_t>(tail - head) : 0;
  }

 private:
  static constexpr std::size_t kSeparation = 128;

  struct alignas(kSeparation) Producer {
    std::atomic<uint64_t> tail{0};
    uint64_t head_seen = 0;  // the consumer's head_ as last loaded
    std::atomic<uint64_t> dropped{0};
  };
  struct alignas(kSeparation) Consumer {
    std::atomic<uint64_t> head{0};
    uint64_t tail_seen = 0;  // the producer's tail_ as last loaded
  };

  // Read by both sides, written only here: its own block, so that neither
  // index's line carries it.
  alignas(kSeparation) std::size_t mask_;
  std::unique_ptr<AccessRecord[]> slots_;
  Producer producer_;
  Consumer consumer_;
};

}  // namespace mtlsgw::gateway
