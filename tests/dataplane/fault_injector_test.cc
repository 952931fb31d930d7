#include "dataplane/fault_injector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "heap_frame_io.h"

namespace mtlsgw::testing {
namespace {

using dataplane::FaultInjectingIo;
using dataplane::FaultInjector;
using dataplane::FaultRng;
using dataplane::FaultSpec;
using dataplane::format_fault_spec;
using dataplane::parse_fault_spec;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kSeed = 0x6d746c73677721ULL;

// The content every test frame carries: the tag in the first four bytes (in
// the Ethernet header, which corruption never touches, so a frame can still
// be named after a bit flip), then a pattern that depends on tag and offset.
Bytes content(uint32_t tag, uint16_t len) {
  Bytes b(len);
  for (uint16_t i = 0; i < len; ++i) {
    b[i] = i < 4 ? static_cast<uint8_t>(tag >> (8 * (3 - i)))
                 : static_cast<uint8_t>(tag * 31 + i * 7 + 1);
  }
  return b;
}

uint32_t tag_of(const Bytes& b) {
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
}

size_t bits_differing(const Bytes& a, const Bytes& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::popcount(static_cast<unsigned>(a[i] ^ b[i]));
  return n;
}

struct Delivered {
  uint32_t tag;
  Bytes bytes;
  void* handle;
  uint64_t at_us;  // the simulated time of delivery
};

// A binomial count within five standard deviations of its mean: for a fixed
// seed the count is fixed, and a biased or broken die lands far outside.
void expect_binomial(uint64_t count, uint64_t trials, double p) {
  const double mean = static_cast<double>(trials) * p;
  const double sd = std::sqrt(static_cast<double>(trials) * p * (1 - p));
  EXPECT_NEAR(static_cast<double>(count), mean, 5 * sd + 1)
      << "trials " << trials << ", p " << p;
}

// A link end that records what the injector delivers, with the simulated
// time of delivery, and then sends it (so that HeapFrameIo's accounting sees
// every delivered frame end).
struct Harness {
  HeapFrameIo io{4096};
  std::vector<Delivered> out;
  uint64_t now = 0;

  auto sink() {
    return [this](const net::Frame& f) {
      Bytes bytes(f.data, f.data + f.len);
      const uint32_t tag = tag_of(bytes);
      out.push_back({tag, std::move(bytes), f.handle, now});
      io.send(f);
    };
  }

  net::Frame make(uint32_t tag, uint16_t len = 100) {
    const Bytes b = content(tag, len);
    net::Frame f = io.receive(b);
    EXPECT_EQ(f.len, len);
    return f;
  }

  // Pushes n frames, one per microsecond from the current time, releasing
  // what is due at each step; then lets time run until nothing is held.
  void run(FaultInjector& fi, uint32_t n, uint16_t len = 100) {
    for (uint32_t i = 0; i < n; ++i) {
      fi.push(make(i, len), now, sink());
      fi.release_due(now, sink());
      ++now;
    }
    while (fi.held() != 0) {
      fi.release_due(now, sink());
      ++now;
    }
  }

  std::vector<uint32_t> tags() const {
    std::vector<uint32_t> t;
    for (const auto& d : out) t.push_back(d.tag);
    return t;
  }

  static std::vector<uint32_t> iota(uint32_t n) {
    std::vector<uint32_t> t(n);
    for (uint32_t i = 0; i < n; ++i) t[i] = i;
    return t;
  }
};

class FaultInjectorTest : public ::testing::Test, public Harness {};

// --- FaultSpec ---------------------------------------------------------------

TEST(FaultSpecTest, DefaultIsDisabled) { EXPECT_FALSE(FaultSpec{}.enabled()); }

TEST(FaultSpecTest, EachFaultEnablesReorderHoldAloneDoesNot) {
  FaultSpec s;
  s.drop = 0.5;
  EXPECT_TRUE(s.enabled());
  s = {};
  s.duplicate = 0.5;
  EXPECT_TRUE(s.enabled());
  s = {};
  s.reorder = 0.5;
  EXPECT_TRUE(s.enabled());
  s = {};
  s.corrupt = 1e-9;
  EXPECT_TRUE(s.enabled());
  s = {};
  s.delay_us = 1;
  EXPECT_TRUE(s.enabled());
  s = {};
  s.reorder_us = 7;
  EXPECT_FALSE(s.enabled());
}

// --- Disabled ----------------------------------------------------------------

TEST_F(FaultInjectorTest, DisabledPassesEverythingAtOnceInOrderUntouched) {
  FaultInjector fi(FaultSpec{}, kSeed, io);
  EXPECT_FALSE(fi.enabled());
  for (uint32_t i = 0; i < 1000; ++i) {
    fi.push(make(i), 0, sink());
    EXPECT_EQ(out.size(), i + 1u);  // delivered within push, not later
  }
  EXPECT_EQ(fi.held(), 0u);
  EXPECT_EQ(tags(), iota(1000));
  for (const auto& d : out) EXPECT_EQ(d.bytes, content(d.tag, 100));
  const auto& s = fi.stats();
  EXPECT_EQ(s.passed, 1000u);
  EXPECT_EQ(s.dropped + s.duplicated + s.reordered + s.delayed + s.corrupted + s.hold_overflow, 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

// --- Drop --------------------------------------------------------------------

TEST_F(FaultInjectorTest, DropOneReleasesEveryFrame) {
  FaultSpec spec;
  spec.drop = 1;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 500);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fi.stats().dropped, 500u);
  EXPECT_EQ(fi.stats().passed, 0u);
  EXPECT_EQ(io.released_count(), 500u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, DropZeroDropsNothingOnTheFaultyPath) {
  FaultSpec spec;
  spec.drop = 0;
  spec.delay_us = 1;  // enabled, so the dice are thrown
  FaultInjector fi(spec, kSeed, io);
  run(fi, 2000);
  EXPECT_EQ(fi.stats().dropped, 0u);
  EXPECT_EQ(tags(), iota(2000));
  EXPECT_EQ(io.released_count(), 0u);
}

TEST_F(FaultInjectorTest, DropFractionIsWithinBoundsAndKeepsSurvivorsInOrder) {
  FaultSpec spec;
  spec.drop = 0.1;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 20000);
  const auto& s = fi.stats();
  expect_binomial(s.dropped, 20000, 0.1);
  EXPECT_EQ(s.passed + s.dropped, 20000u);
  EXPECT_EQ(out.size(), s.passed);
  EXPECT_EQ(io.released_count(), s.dropped);
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end(),
                             [](const auto& a, const auto& b) { return a.tag < b.tag; }));
  for (const auto& d : out) EXPECT_EQ(d.bytes, content(d.tag, 100));
  EXPECT_EQ(io.outstanding(), 0);
}

// --- Duplicate ---------------------------------------------------------------

TEST_F(FaultInjectorTest, DuplicateOneDeliversByteIdenticalCopiesInOtherBuffers) {
  FaultSpec spec;
  spec.duplicate = 1;
  FaultInjector fi(spec, kSeed, io);
  for (uint32_t i = 0; i < 300; ++i) {
    // Lengths vary so that a copy of the wrong length shows.
    fi.push(make(i, static_cast<uint16_t>(60 + i % 1400)), 0, sink());
  }
  ASSERT_EQ(out.size(), 600u);
  for (uint32_t i = 0; i < 300; ++i) {
    const Delivered& a = out[2 * i];
    const Delivered& b = out[2 * i + 1];
    EXPECT_EQ(a.tag, i);
    EXPECT_EQ(b.tag, i);
    EXPECT_EQ(a.bytes, content(i, static_cast<uint16_t>(60 + i % 1400)));
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_NE(a.handle, b.handle);
  }
  EXPECT_EQ(fi.stats().duplicated, 300u);
  EXPECT_EQ(fi.stats().passed, 300u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, DuplicateZeroCopiesNothingOnTheFaultyPath) {
  FaultSpec spec;
  spec.duplicate = 0;
  spec.delay_us = 1;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 2000);
  EXPECT_EQ(fi.stats().duplicated, 0u);
  EXPECT_EQ(tags(), iota(2000));
}

TEST_F(FaultInjectorTest, DuplicateFractionIsWithinBounds) {
  FaultSpec spec;
  spec.duplicate = 0.05;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 20000);
  const auto& s = fi.stats();
  expect_binomial(s.duplicated, 20000, 0.05);
  EXPECT_EQ(out.size(), 20000u + s.duplicated);
  std::map<uint32_t, int> seen;
  for (const auto& d : out) ++seen[d.tag];
  uint64_t twice = 0;
  for (const auto& [tag, n] : seen) {
    EXPECT_TRUE(n == 1 || n == 2) << tag;
    twice += n == 2;
  }
  EXPECT_EQ(seen.size(), 20000u);
  EXPECT_EQ(twice, s.duplicated);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, DuplicateWithoutBuffersStillDeliversTheOriginal) {
  FaultSpec spec;
  spec.duplicate = 1;
  FaultInjector fi(spec, kSeed, io);
  std::vector<net::Frame> frames;
  for (uint32_t i = 0; i < 20; ++i) frames.push_back(make(i));
  io.exhaust();
  // Delivered frames are kept until the end: sending one would give its
  // buffer back to the pool and let the next copy succeed.
  std::vector<net::Frame> delivered;
  for (const auto& f : frames) {
    fi.push(f, 0, [&](const net::Frame& d) { delivered.push_back(d); });
  }
  io.replenish();
  for (const auto& d : delivered) sink()(d);
  EXPECT_EQ(tags(), iota(20));
  EXPECT_EQ(fi.stats().duplicated, 0u);
  EXPECT_EQ(fi.stats().duplicate_failed, 20u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, DuplicateOfAFrameLargerThanAFreshBufferIsSkipped) {
  FaultSpec spec;
  spec.duplicate = 1;
  FaultInjector fi(spec, kSeed, io);
  // A frame that grew into its headroom is longer than the tailroom of any
  // fresh buffer.
  net::Frame f;
  ASSERT_TRUE(io.alloc(f));
  f.data -= f.headroom;
  f.tailroom = static_cast<uint16_t>(f.tailroom + f.headroom);
  f.headroom = 0;
  ASSERT_TRUE(f.append(HeapFrameIo::kBufferSize));
  const Bytes b = content(7, HeapFrameIo::kBufferSize);
  std::copy(b.begin(), b.end(), f.data);
  fi.push(f, 0, sink());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes, b);
  EXPECT_EQ(fi.stats().duplicate_failed, 1u);
  EXPECT_EQ(fi.stats().duplicated, 0u);
  EXPECT_EQ(io.released_count(), 1u);  // the unused copy
  EXPECT_EQ(io.outstanding(), 0);
}

// --- Corrupt -----------------------------------------------------------------

TEST_F(FaultInjectorTest, CorruptOneFlipsExactlyOneBitAfterTheEthernetHeader) {
  FaultSpec spec;
  spec.corrupt = 1;
  FaultInjector fi(spec, kSeed, io);
  constexpr uint16_t kLen = 64;
  run(fi, 2000, kLen);
  ASSERT_EQ(out.size(), 2000u);
  std::set<size_t> bytes_hit;
  std::set<int> bits_hit;
  for (const auto& d : out) {
    const Bytes want = content(d.tag, kLen);
    ASSERT_EQ(d.bytes.size(), want.size());
    EXPECT_EQ(bits_differing(d.bytes, want), 1u) << d.tag;
    for (size_t i = 0; i < want.size(); ++i) {
      if (d.bytes[i] == want[i]) continue;
      EXPECT_GE(i, FaultInjector::kCorruptFrom);
      bytes_hit.insert(i);
      bits_hit.insert(std::countr_zero(static_cast<unsigned>(d.bytes[i] ^ want[i])));
    }
  }
  // 2000 flips over 400 bits: every byte and every bit position is reached,
  // so the pick covers the whole range, the last byte included.
  EXPECT_EQ(bytes_hit.size(), kLen - FaultInjector::kCorruptFrom);
  EXPECT_EQ(*bytes_hit.begin(), FaultInjector::kCorruptFrom);
  EXPECT_EQ(*bytes_hit.rbegin(), kLen - 1u);
  EXPECT_EQ(bits_hit.size(), 8u);
  EXPECT_EQ(fi.stats().corrupted, 2000u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, CorruptLeavesFramesWithoutPayloadIntactAndUncounted) {
  FaultSpec spec;
  spec.corrupt = 1;
  FaultInjector fi(spec, kSeed, io);
  fi.push(make(1, 10), 0, sink());
  fi.push(make(2, 14), 0, sink());
  fi.push(make(3, 15), 0, sink());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].bytes, content(1, 10));
  EXPECT_EQ(out[1].bytes, content(2, 14));
  EXPECT_EQ(bits_differing(out[2].bytes, content(3, 15)), 1u);
  EXPECT_NE(out[2].bytes[14], content(3, 15)[14]);
  EXPECT_EQ(fi.stats().corrupted, 1u);
}

TEST_F(FaultInjectorTest, CorruptZeroChangesNothingOnTheFaultyPath) {
  FaultSpec spec;
  spec.corrupt = 0;
  spec.delay_us = 1;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 2000);
  EXPECT_EQ(fi.stats().corrupted, 0u);
  for (const auto& d : out) EXPECT_EQ(d.bytes, content(d.tag, 100));
}

TEST_F(FaultInjectorTest, CorruptFractionIsWithinBoundsAndCountsExactlyTheChangedFrames) {
  FaultSpec spec;
  spec.corrupt = 0.02;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 20000);
  uint64_t changed = 0;
  for (const auto& d : out) {
    const size_t bits = bits_differing(d.bytes, content(d.tag, 100));
    EXPECT_LE(bits, 1u);
    changed += bits;
  }
  EXPECT_EQ(changed, fi.stats().corrupted);
  expect_binomial(changed, 20000, 0.02);
}

TEST_F(FaultInjectorTest, DuplicateOfACorruptedFrameCarriesTheSameFlip) {
  FaultSpec spec;
  spec.corrupt = 1;
  spec.duplicate = 1;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 200);
  ASSERT_EQ(out.size(), 400u);
  for (size_t i = 0; i < out.size(); i += 2) {
    EXPECT_EQ(out[i].bytes, out[i + 1].bytes);
    EXPECT_EQ(bits_differing(out[i].bytes, content(out[i].tag, 100)), 1u);
  }
}

// --- Reorder and delay -------------------------------------------------------

TEST_F(FaultInjectorTest, ReorderOneHoldsEachFrameForReorderUs) {
  FaultSpec spec;
  spec.reorder = 1;
  spec.reorder_us = 500;
  FaultInjector fi(spec, kSeed, io);
  for (uint32_t i = 0; i < 10; ++i) fi.push(make(i), i, sink());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fi.held(), 10u);
  EXPECT_EQ(fi.next_due_us(), 500u);
  fi.release_due(499, sink());
  EXPECT_TRUE(out.empty());
  fi.release_due(500, sink());
  EXPECT_EQ(tags(), iota(1));
  EXPECT_EQ(fi.next_due_us(), 501u);
  fi.release_due(509, sink());
  EXPECT_EQ(tags(), iota(10));
  EXPECT_EQ(fi.held(), 0u);
  EXPECT_EQ(fi.next_due_us(), UINT64_MAX);
  EXPECT_EQ(fi.stats().reordered, 10u);
  EXPECT_EQ(fi.stats().delayed, 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, ReorderFractionLetsLaterFramesOvertake) {
  FaultSpec spec;
  spec.reorder = 0.2;
  spec.reorder_us = 50;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 5000);  // frame i pushed at time i
  ASSERT_EQ(out.size(), 5000u);
  // Each frame comes out either at once or exactly reorder_us later...
  uint64_t late = 0;
  for (const auto& d : out) {
    const uint64_t waited = d.at_us - d.tag;
    EXPECT_TRUE(waited == 0 || waited == 50) << d.tag << " waited " << waited;
    late += waited == 50;
  }
  EXPECT_EQ(late, fi.stats().reordered);
  expect_binomial(late, 5000, 0.2);
  // ...so the order really changes, and nothing is lost or repeated.
  const auto got = tags();
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));
  auto sorted = got;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(5000));
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, ReorderZeroKeepsOrderOnTheFaultyPath) {
  FaultSpec spec;
  spec.reorder = 0;
  spec.delay_us = 3;
  FaultInjector fi(spec, kSeed, io);
  run(fi, 2000);
  EXPECT_EQ(tags(), iota(2000));
  EXPECT_EQ(fi.stats().reordered, 0u);
}

TEST_F(FaultInjectorTest, DelayHoldsEveryFrameExactlyDelayUs) {
  FaultSpec spec;
  spec.delay_us = 200;
  FaultInjector fi(spec, kSeed, io);
  fi.push(make(0), 1000, sink());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fi.next_due_us(), 1200u);
  fi.release_due(1199, sink());
  EXPECT_TRUE(out.empty());
  fi.release_due(1200, sink());
  EXPECT_EQ(tags(), iota(1));
  EXPECT_EQ(fi.stats().delayed, 1u);
}

TEST_F(FaultInjectorTest, DelayKeepsOrderAndAddsTheSameLatencyToAll) {
  FaultSpec spec;
  spec.delay_us = 100;
  FaultInjector fi(spec, kSeed, io);
  FaultRng gaps(1);
  uint32_t pushed = 0;
  std::vector<uint64_t> pushed_at;
  for (now = 0; pushed < 1000 || fi.held() != 0; ++now) {
    // Bursts of 0 to 3 frames per microsecond.
    for (uint64_t k = gaps.next() % 4; k > 0 && pushed < 1000; --k) {
      pushed_at.push_back(now);
      fi.push(make(pushed++), now, sink());
    }
    fi.release_due(now, sink());
  }
  EXPECT_EQ(tags(), iota(1000));
  for (const auto& d : out) EXPECT_EQ(d.at_us, pushed_at[d.tag] + 100) << d.tag;
  EXPECT_EQ(fi.stats().delayed, 1000u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, ReorderedFrameWaitsDelayPlusReorderUs) {
  FaultSpec spec;
  spec.delay_us = 100;
  spec.reorder = 1;
  spec.reorder_us = 300;
  FaultInjector fi(spec, kSeed, io);
  fi.push(make(0), 0, sink());
  fi.release_due(399, sink());
  EXPECT_TRUE(out.empty());
  fi.release_due(400, sink());
  EXPECT_EQ(tags(), iota(1));
  EXPECT_EQ(fi.stats().reordered, 1u);
  EXPECT_EQ(fi.stats().delayed, 0u);
}

TEST_F(FaultInjectorTest, EqualDueTimesComeOutInPushOrder) {
  FaultSpec spec;
  spec.delay_us = 10;
  FaultInjector fi(spec, kSeed, io);
  for (uint32_t i = 0; i < 300; ++i) fi.push(make(i), 0, sink());
  fi.release_due(10, sink());
  EXPECT_EQ(tags(), iota(300));
}

TEST_F(FaultInjectorTest, FlushDeliversByDueTimeWhateverThePushOrder) {
  FaultSpec spec;
  spec.delay_us = 5;
  FaultInjector fi(spec, kSeed, io);
  // Times need not be monotonic for the queue to stay ordered.
  const uint64_t times[] = {100, 0, 50, 50, 7, 1000, 3};
  for (uint32_t i = 0; i < std::size(times); ++i) fi.push(make(i), times[i], sink());
  EXPECT_EQ(fi.next_due_us(), 5u);
  fi.flush(sink());
  EXPECT_EQ(tags(), (std::vector<uint32_t>{1, 6, 4, 2, 3, 0, 5}));
  EXPECT_EQ(fi.held(), 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

// --- Hold overflow -----------------------------------------------------------

TEST_F(FaultInjectorTest, FullHoldQueueDeliversAtOnceAndCounts) {
  FaultSpec spec;
  spec.reorder = 1;
  FaultInjector fi(spec, kSeed, io, 4);
  EXPECT_EQ(fi.max_held(), 4u);
  for (uint32_t i = 0; i < 10; ++i) fi.push(make(i), 0, sink());
  EXPECT_EQ(fi.held(), 4u);
  EXPECT_EQ(tags(), (std::vector<uint32_t>{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(fi.stats().hold_overflow, 6u);
  EXPECT_EQ(fi.stats().reordered, 4u);
  fi.release_due(spec.reorder_us, sink());
  EXPECT_EQ(tags(), (std::vector<uint32_t>{4, 5, 6, 7, 8, 9, 0, 1, 2, 3}));
  // Room again: the next frame is held.
  fi.push(make(10), 0, sink());
  EXPECT_EQ(fi.held(), 1u);
  fi.flush(sink());
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, NoHoldStorageMeansNoDelayButNoLoss) {
  FaultSpec spec;
  spec.delay_us = 100;
  FaultInjector fi(spec, kSeed, io, 0);
  for (uint32_t i = 0; i < 50; ++i) fi.push(make(i), 0, sink());
  EXPECT_EQ(tags(), iota(50));
  EXPECT_EQ(fi.stats().hold_overflow, 50u);
  EXPECT_EQ(fi.stats().delayed, 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, CopyThatFindsTheQueueFullGoesOutAtOnce) {
  FaultSpec spec;
  spec.duplicate = 1;
  spec.delay_us = 10;
  FaultInjector fi(spec, kSeed, io, 1);
  fi.push(make(0), 0, sink());
  EXPECT_EQ(fi.held(), 1u);
  ASSERT_EQ(out.size(), 1u);  // the copy
  EXPECT_EQ(fi.stats().hold_overflow, 1u);
  EXPECT_EQ(fi.stats().delayed, 1u);
  fi.release_due(10, sink());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes, out[1].bytes);
  EXPECT_EQ(io.outstanding(), 0);
}

// --- Accounting --------------------------------------------------------------

FaultSpec everything() {
  FaultSpec spec;
  spec.drop = 0.05;
  spec.duplicate = 0.05;
  spec.reorder = 0.1;
  spec.corrupt = 0.02;
  spec.delay_us = 20;
  spec.reorder_us = 40;
  return spec;
}

TEST_F(FaultInjectorTest, EveryFrameEndsInExactlyOneDeliveryOrRelease) {
  // A small queue, so that overflow is part of the mix.
  FaultInjector fi(everything(), kSeed, io, 24);
  constexpr uint32_t kFrames = 20000;
  run(fi, kFrames);
  const auto& s = fi.stats();
  EXPECT_EQ(s.passed + s.dropped, kFrames);
  EXPECT_GT(s.hold_overflow, 0u);
  EXPECT_GT(s.duplicated, 0u);
  EXPECT_EQ(s.duplicate_failed, 0u);
  EXPECT_EQ(out.size(), s.passed + s.duplicated);
  EXPECT_EQ(io.sent_count(), out.size());
  EXPECT_EQ(io.released_count(), s.dropped);
  EXPECT_EQ(io.outstanding(), 0);
  std::map<uint32_t, int> seen;
  for (const auto& d : out) ++seen[d.tag];
  uint64_t twice = 0;
  for (const auto& [tag, n] : seen) {
    ASSERT_LE(n, 2) << tag;
    twice += n == 2;
  }
  EXPECT_EQ(seen.size(), s.passed);
  EXPECT_EQ(twice, s.duplicated);
}

// The counts as telemetry and the exit report list them (docs/telemetry.md):
// each by its name, and summed over a worker's injectors (one per port).
TEST_F(FaultInjectorTest, StatsNameEveryCountAndAddUp) {
  FaultInjector fi(everything(), kSeed, io, 24);
  run(fi, 2000);
  const FaultInjector::Stats one = fi.stats();
  std::vector<std::string> names;
  std::map<std::string, uint64_t> values;
  one.for_each([&](const char* name, uint64_t value) {
    names.emplace_back(name);
    values[name] = value;
  });
  EXPECT_EQ(names, (std::vector<std::string>{"passed", "dropped", "duplicated", "duplicate_failed",
                                             "reordered", "delayed", "corrupted", "hold_overflow"}));
  EXPECT_EQ(values["passed"], one.passed);
  EXPECT_EQ(values["dropped"], one.dropped);
  EXPECT_EQ(values["duplicated"], one.duplicated);
  EXPECT_EQ(values["reordered"], one.reordered);
  EXPECT_EQ(values["delayed"], one.delayed);
  EXPECT_EQ(values["corrupted"], one.corrupted);
  EXPECT_EQ(values["hold_overflow"], one.hold_overflow);
  EXPECT_EQ(one.passed + one.dropped, 2000u);
  FaultInjector::Stats sum = one;
  sum += one;
  sum.for_each([&](const char* name, uint64_t value) { EXPECT_EQ(value, 2 * values[name]) << name; });
}

TEST_F(FaultInjectorTest, DrainReleasesHeldFramesWithoutDelivering) {
  FaultSpec spec;
  spec.reorder = 1;
  spec.duplicate = 1;
  FaultInjector fi(spec, kSeed, io);
  for (uint32_t i = 0; i < 50; ++i) fi.push(make(i), 0, sink());
  EXPECT_EQ(fi.held(), 100u);
  EXPECT_EQ(io.outstanding(), 100);
  fi.drain();
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fi.held(), 0u);
  EXPECT_EQ(io.released_count(), 100u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(FaultInjectorTest, DestructionReleasesWhatIsHeld) {
  {
    FaultSpec spec;
    spec.delay_us = 1000;
    FaultInjector fi(spec, kSeed, io);
    for (uint32_t i = 0; i < 30; ++i) fi.push(make(i), 0, sink());
    EXPECT_EQ(io.outstanding(), 30);
  }
  EXPECT_EQ(io.outstanding(), 0);
  EXPECT_TRUE(out.empty());
}

// --- Replay ------------------------------------------------------------------

struct Outcome {
  std::vector<Delivered> out;
  FaultInjector::Stats stats;
};

// len 0: every third frame too short to corrupt, the others 100 bytes.
Outcome replay(const FaultSpec& spec, uint64_t seed, uint16_t len, uint32_t frames = 5000) {
  Harness h;
  FaultInjector fi(spec, seed, h.io, 64);
  if (len != 0) {
    h.run(fi, frames, len);
  } else {
    for (uint32_t i = 0; i < frames; ++i) {
      fi.push(h.make(i, i % 3 == 0 ? 10 : 100), h.now, h.sink());
      fi.release_due(h.now, h.sink());
      ++h.now;
    }
    for (; fi.held() != 0; ++h.now) fi.release_due(h.now, h.sink());
  }
  return {std::move(h.out), fi.stats()};
}

bool same_stats(const FaultInjector::Stats& a, const FaultInjector::Stats& b) {
  return a.passed == b.passed && a.dropped == b.dropped && a.duplicated == b.duplicated &&
         a.duplicate_failed == b.duplicate_failed && a.reordered == b.reordered &&
         a.delayed == b.delayed && a.corrupted == b.corrupted &&
         a.hold_overflow == b.hold_overflow;
}

std::vector<std::pair<uint32_t, uint64_t>> schedule(const Outcome& r) {
  std::vector<std::pair<uint32_t, uint64_t>> s;
  for (const auto& d : r.out) s.emplace_back(d.tag, d.at_us);
  return s;
}

TEST(FaultInjectorReplayTest, SameSeedSameInputGivesTheSameRun) {
  const Outcome a = replay(everything(), 1234, 100);
  const Outcome b = replay(everything(), 1234, 100);
  ASSERT_EQ(a.out.size(), b.out.size());
  for (size_t i = 0; i < a.out.size(); ++i) {
    EXPECT_EQ(a.out[i].tag, b.out[i].tag) << i;
    EXPECT_EQ(a.out[i].at_us, b.out[i].at_us) << i;
    EXPECT_EQ(a.out[i].bytes, b.out[i].bytes) << i;  // same bits flipped
  }
  EXPECT_TRUE(same_stats(a.stats, b.stats));
}

TEST(FaultInjectorReplayTest, AnotherSeedGivesAnotherRun) {
  const Outcome a = replay(everything(), 1234, 100);
  const Outcome b = replay(everything(), 1235, 100);
  EXPECT_NE(schedule(a), schedule(b));
}

TEST(FaultInjectorReplayTest, DecisionsDoNotDependOnFrameContentOrLength) {
  // A replay must hold when the payload differs (other data, another MSS).
  const Outcome a = replay(everything(), 99, 100);
  const Outcome b = replay(everything(), 99, 1500);
  EXPECT_EQ(schedule(a), schedule(b));
  EXPECT_TRUE(same_stats(a.stats, b.stats));
  // Frames too short to corrupt still consume the same dice.
  Outcome c = replay(everything(), 99, 0);
  EXPECT_EQ(schedule(a), schedule(c));
  EXPECT_LT(c.stats.corrupted, a.stats.corrupted);
  c.stats.corrupted = a.stats.corrupted;
  EXPECT_TRUE(same_stats(a.stats, c.stats));
}

TEST(FaultRngTest, DeterministicPerSeedAndUnrelatedAcrossNeighbouringSeeds) {
  FaultRng a(5), b(5), c(6);
  int equal_to_neighbour = 0;
  uint64_t ones = 0;
  for (int i = 0; i < 4096; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    equal_to_neighbour += x == c.next();
    ones += static_cast<uint64_t>(std::popcount(x));
  }
  EXPECT_EQ(equal_to_neighbour, 0);
  // 4096 * 64 fair bits: mean 131072, sd 256.
  EXPECT_NEAR(static_cast<double>(ones), 131072.0, 5 * 256.0);
}

// --- FaultInjectingIo --------------------------------------------------------

TEST(FaultInjectingIoTest, SendsGoThroughTheInjectorBuffersThroughInner) {
  HeapFrameIo inner(64);
  FaultSpec spec;
  spec.delay_us = 100;
  {
    FaultInjectingIo faulty(inner, spec, kSeed);
    net::Frame f;
    ASSERT_TRUE(faulty.alloc(f));
    EXPECT_EQ(inner.outstanding(), 1);
    ASSERT_TRUE(f.append(60));
    f.data[0] = 42;
    faulty.advance(1000);
    faulty.send(f);
    EXPECT_EQ(inner.sent_count(), 0u);
    faulty.advance(1099);
    EXPECT_EQ(inner.sent_count(), 0u);
    faulty.advance(1100);
    ASSERT_EQ(inner.sent_count(), 1u);
    EXPECT_EQ(inner.sent()[0][0], 42);

    net::Frame g;
    ASSERT_TRUE(faulty.alloc(g));
    faulty.release(g);
    EXPECT_EQ(inner.released_count(), 1u);

    net::Frame h;
    ASSERT_TRUE(faulty.alloc(h));
    faulty.send(h);
    EXPECT_EQ(faulty.injector().held(), 1u);
    faulty.flush();
    EXPECT_EQ(inner.sent_count(), 2u);
    EXPECT_EQ(faulty.injector().stats().delayed, 2u);
  }
  EXPECT_EQ(inner.outstanding(), 0);
}

TEST(FaultInjectingIoTest, DropsAreReleasedToInner) {
  HeapFrameIo inner(64);
  FaultSpec spec;
  spec.drop = 1;
  FaultInjectingIo faulty(inner, spec, kSeed);
  for (int i = 0; i < 10; ++i) {
    net::Frame f;
    ASSERT_TRUE(faulty.alloc(f));
    faulty.send(f);
  }
  EXPECT_EQ(inner.sent_count(), 0u);
  EXPECT_EQ(inner.released_count(), 10u);
  EXPECT_EQ(inner.outstanding(), 0);
}

// --- parse_fault_spec --------------------------------------------------------

TEST(ParseFaultSpecTest, ReadsEveryKey) {
  std::string error;
  const auto spec = parse_fault_spec(
      "drop=0.03,reorder=0.03,duplicate=0.01,corrupt=0.001,delay_us=200,reorder_us=500", &error);
  ASSERT_TRUE(spec.has_value()) << error;
  EXPECT_DOUBLE_EQ(spec->drop, 0.03);
  EXPECT_DOUBLE_EQ(spec->reorder, 0.03);
  EXPECT_DOUBLE_EQ(spec->duplicate, 0.01);
  EXPECT_DOUBLE_EQ(spec->corrupt, 0.001);
  EXPECT_EQ(spec->delay_us, 200u);
  EXPECT_EQ(spec->reorder_us, 500u);
  EXPECT_TRUE(spec->enabled());
}

TEST(ParseFaultSpecTest, KeysAreOptionalAndSpacesIgnored) {
  const auto spec = parse_fault_spec("  corrupt = 1e-3 ,\tdrop=1 , reorder_us=0", nullptr);
  ASSERT_TRUE(spec.has_value());
  EXPECT_DOUBLE_EQ(spec->corrupt, 0.001);
  EXPECT_DOUBLE_EQ(spec->drop, 1.0);
  EXPECT_EQ(spec->reorder_us, 0u);
  EXPECT_DOUBLE_EQ(spec->duplicate, 0.0);
  EXPECT_DOUBLE_EQ(spec->reorder, 0.0);
  EXPECT_EQ(spec->delay_us, 0u);
}

TEST(ParseFaultSpecTest, EmptyTextIsTheDisabledSpec) {
  for (const char* text : {"", "   "}) {
    const auto spec = parse_fault_spec(text, nullptr);
    ASSERT_TRUE(spec.has_value()) << "'" << text << "'";
    EXPECT_FALSE(spec->enabled());
    EXPECT_EQ(spec->reorder_us, FaultSpec{}.reorder_us);
  }
}

TEST(ParseFaultSpecTest, BoundsOfAProbabilityAreAccepted) {
  const auto spec = parse_fault_spec("drop=0,duplicate=1,delay_us=4294967295", nullptr);
  ASSERT_TRUE(spec.has_value());
  EXPECT_DOUBLE_EQ(spec->drop, 0.0);
  EXPECT_DOUBLE_EQ(spec->duplicate, 1.0);
  EXPECT_EQ(spec->delay_us, 4294967295u);
}

TEST(ParseFaultSpecTest, RejectsBadInputWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"reorder=1.5", "reorder: 1.5 is not a probability in [0, 1]"},
      {"dorp=0.1", "unknown key 'dorp'"},
      {"drop=-0.1", "drop: -0.1 is not a probability in [0, 1]"},
      {"drop=nan", "drop: nan is not a probability in [0, 1]"},
      {"corrupt=inf", "corrupt: inf is not a probability in [0, 1]"},
      {"drop=abc", "drop: 'abc' is not a number"},
      {"drop=0.1x", "drop: '0.1x' is not a number"},
      {"drop=0.1 5", "drop: '0.1 5' is not a number"},
      {"drop", "'drop' has no value (expected key=value)"},
      {"drop=", "drop: missing value"},
      {"drop=0.1,", "empty entry (two commas, or a comma at an end)"},
      {",drop=0.1", "empty entry (two commas, or a comma at an end)"},
      {"drop=0.1,,corrupt=0", "empty entry (two commas, or a comma at an end)"},
      {"drop=0.1,drop=0.2", "key 'drop' given twice"},
      {"=0.1", "unknown key ''"},
      {"Drop=0.1", "unknown key 'Drop'"},
      {"delay_us=1.5", "delay_us: '1.5' is not a whole number of microseconds"},
      {"delay_us=-1", "delay_us: '-1' is not a whole number of microseconds"},
      {"reorder_us=4294967296", "reorder_us: 4294967296 is out of range (at most 4294967295)"},
      {"drop=0.1,seed=3", "unknown key 'seed'"},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    EXPECT_FALSE(parse_fault_spec(text, &error).has_value()) << text;
    EXPECT_EQ(error, want) << text;
    EXPECT_FALSE(parse_fault_spec(text, nullptr).has_value()) << text;
  }
}

TEST(ParseFaultSpecTest, FormatReadsBackToTheSameSpec) {
  FaultSpec a;
  a.drop = 1.0 / 3;
  a.duplicate = 0.01;
  a.reorder = 1;
  a.corrupt = 0.001;
  a.delay_us = 250;
  a.reorder_us = 0;
  const std::string text = format_fault_spec(a);
  EXPECT_EQ(format_fault_spec(FaultSpec{}),
            "drop=0,duplicate=0,reorder=0,corrupt=0,delay_us=0,reorder_us=500");
  std::string error;
  const auto b = parse_fault_spec(text, &error);
  ASSERT_TRUE(b.has_value()) << text << ": " << error;
  EXPECT_EQ(b->drop, a.drop);  // exact, not near: a replay needs the same dice
  EXPECT_EQ(b->duplicate, a.duplicate);
  EXPECT_EQ(b->reorder, a.reorder);
  EXPECT_EQ(b->corrupt, a.corrupt);
  EXPECT_EQ(b->delay_us, a.delay_us);
  EXPECT_EQ(b->reorder_us, a.reorder_us);
}

TEST(FaultInjectorClampTest, OutOfRangeProbabilitiesAreClamped) {
  HeapFrameIo io(64);
  FaultSpec spec;
  spec.drop = -3;
  spec.duplicate = std::nan("");
  spec.corrupt = 7;
  FaultInjector fi(spec, kSeed, io);
  EXPECT_EQ(fi.spec().drop, 0.0);
  EXPECT_EQ(fi.spec().duplicate, 0.0);
  EXPECT_EQ(fi.spec().corrupt, 1.0);
  std::vector<Bytes> got;
  for (uint32_t i = 0; i < 100; ++i) {
    fi.push(io.receive(content(i, 64)), 0, [&](const net::Frame& f) {
      got.emplace_back(f.data, f.data + f.len);
      io.send(f);
    });
  }
  ASSERT_EQ(got.size(), 100u);
  EXPECT_EQ(fi.stats().corrupted, 100u);
  EXPECT_EQ(io.outstanding(), 0);
}

}  // namespace
}  // namespace mtlsgw::testing
