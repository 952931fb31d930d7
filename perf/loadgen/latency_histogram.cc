#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace mtlsgw::loadgen {

// Values below 2^(bits+1) index directly. Above, with m the position of the
// highest set bit, the value is shifted right by m - bits so that its top
// bits + 1 bits (a mantissa in [kSubBuckets, 2 kSubBuckets)) pick one of
// kSubBuckets buckets in the block of that power of two.
size_t LatencyHistogram::bucket_of(uint64_t ns) noexcept {
  if (ns < 2 * kSubBuckets) return static_cast<size_t>(ns);
  const unsigned msb = static_cast<unsigned>(std::bit_width(ns)) - 1;
  const unsigned shift = msb - kSubBucketBits;
  const uint64_t mantissa = ns >> shift;
  return static_cast<size_t>((shift + 1) * kSubBuckets + (mantissa - kSubBuckets));
}

uint64_t LatencyHistogram::highest_in_bucket(size_t bucket) noexcept {
  if (bucket < 2 * kSubBuckets) return bucket;
  const unsigned shift = static_cast<unsigned>(bucket / kSubBuckets) - 1;
  const uint64_t mantissa = kSubBuckets + bucket % kSubBuckets;
  return (mantissa << shift) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(uint64_t ns) noexcept {
  ++buckets_[bucket_of(ns)];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() noexcept { *this = LatencyHistogram{}; }

uint64_t LatencyHistogram::percentile(double fraction) const noexcept {
  if (count_ == 0) return 0;
  const double wanted = std::ceil(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(count_));
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(wanted));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(highest_in_bucket(i), max_);
  }
  return max_;
}

}  // namespace mtlsgw::loadgen
