#pragma once
// Counters written by exactly one thread (the worker that owns them) and read
// by others (telemetry, the exit report).
//
// A relaxed load + store compiles to plain moves on x86-64; fetch_add would
// emit a LOCK-prefixed instruction on every packet for no benefit, because
// there is never a second writer.

#include <atomic>
#include <cstdint>

namespace mtlsgw {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace mtlsgw
