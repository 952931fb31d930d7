#pragma once
// Latencies in nanoseconds, recorded into logarithmic buckets in the manner
// of HdrHistogram: each power of two is cut into kSubBuckets equal buckets,
// so a reported percentile is within 1/kSubBuckets (0.8 %) of the recorded
// value, over the whole range from 1 ns to centuries, in a fixed 58 KiB
// with no allocation per value.

#include <array>
#include <cstddef>
#include <cstdint>

namespace mtlsgw::loadgen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  // Values below 2 * kSubBuckets have a bucket each (two blocks); above, the
  // powers of two 2^8 .. 2^63 have a block of kSubBuckets each.
  static constexpr size_t kBuckets = (64 - kSubBucketBits + 1) * kSubBuckets;

  void record(uint64_t ns) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept;

  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return max_; }
  uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  double mean() const noexcept { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value at or below which `fraction` (0 < fraction <= 1) of the
  // recorded values lie: the highest value of that value's bucket, capped at
  // the largest value recorded. 0 when empty.
  uint64_t percentile(double fraction) const noexcept;

  static size_t bucket_of(uint64_t ns) noexcept;
  static uint64_t highest_in_bucket(size_t bucket) noexcept;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace mtlsgw::loadgen
