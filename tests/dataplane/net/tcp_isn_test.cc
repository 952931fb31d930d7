#include "dataplane/net/tcp_isn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include "dataplane/net/tcp_seq.h"

namespace mtlsgw::net::tcp {
namespace {

constexpr SipKey kKeyA{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
constexpr SipKey kKeyB{0x0123456789abcdeeULL, 0xfedcba9876543210ULL};  // one bit apart

constexpr Ipv4Address kGateway = 0xc6120002;  // 198.18.0.2
constexpr Ipv4Address kClient = 0xc6120001;   // 198.18.0.1

const FourTuple kTuple{kGateway, 443, kClient, 50000};

// ---------------------------------------------------------------- ISNs

TEST(IsnGenerator, AdvancesOneEveryFourMicroseconds) {
  const IsnGenerator isn(kKeyA);
  const uint32_t base = isn.next(kTuple, 1'000'000);
  // RFC 9293 3.4.1: M ticks every 4 us, so 1..3 us later is the same value.
  EXPECT_EQ(isn.next(kTuple, 1'000'001), base);
  EXPECT_EQ(isn.next(kTuple, 1'000'003), base);
  EXPECT_EQ(isn.next(kTuple, 1'000'004), base + 1);
  EXPECT_EQ(isn.next(kTuple, 1'004'000), base + 1000);
  EXPECT_EQ(isn.next(kTuple, 1'000'000 + 4 * 123'456'789ULL), base + 123'456'789u);
}

TEST(IsnGenerator, IncreasesWithTimeAcrossTheWrap) {
  const IsnGenerator isn(kKeyA);
  // Successive incarnations of one tuple must move forward in sequence space
  // (RFC 9293 3.4.1), also when M wraps (every 2^32 ticks, 4.77 hours).
  uint32_t prev = isn.next(kTuple, 0);
  const uint64_t step_us = 997 * 1'000'000ULL;  // a little under 17 minutes
  for (uint64_t now = step_us; now < 3 * (uint64_t{4} << 32); now += step_us) {
    const uint32_t cur = isn.next(kTuple, now);
    EXPECT_TRUE(seq_gt(cur, prev)) << now;
    prev = cur;
  }
}

TEST(IsnGenerator, ClockIsTheOnlyTimeDependence) {
  const IsnGenerator isn(kKeyA);
  // ISN - M is F(tuple): constant in time for one tuple.
  const uint32_t f = isn.next(kTuple, 0);
  for (uint64_t now : {4ULL, 400ULL, 4'000'000ULL, 1ULL << 40, ~0ULL}) {
    EXPECT_EQ(isn.next(kTuple, now) - static_cast<uint32_t>(now / 4), f) << now;
  }
}

TEST(IsnGenerator, EveryTupleFieldMatters) {
  const IsnGenerator isn(kKeyA);
  const uint64_t now = 42'000'000;
  FourTuple t = kTuple;
  std::set<uint32_t> seen{isn.next(t, now)};
  t.local_ip ^= 1;
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
  t = kTuple;
  t.remote_ip ^= 1;
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
  t = kTuple;
  t.local_port ^= 1;
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
  t = kTuple;
  t.remote_port ^= 1;
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
  // Swapping the two ends is a different connection (we are the listener in
  // one, the client in the other).
  t = FourTuple{kTuple.remote_ip, kTuple.remote_port, kTuple.local_ip, kTuple.local_port};
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
  // Ports are not confused with each other.
  t = kTuple;
  std::swap(t.local_port, t.remote_port);
  EXPECT_TRUE(seen.insert(isn.next(t, now)).second);
}

TEST(IsnGenerator, NeighbouringTuplesLookUnrelated) {
  // An attacker who connects from port p and sees its ISN must learn nothing
  // about the ISN of a victim on port p + 1 (RFC 6528 3): the offsets of
  // adjacent ports differ in about half of their bits.
  const IsnGenerator isn(kKeyA);
  const uint64_t now = 7'000'000;
  FourTuple t = kTuple;
  std::set<uint32_t> seen;
  uint64_t total_distance = 0;
  constexpr int kPorts = 4096;
  uint32_t prev = isn.next(t, now);
  for (int i = 1; i <= kPorts; ++i) {
    t.remote_port = static_cast<uint16_t>(kTuple.remote_port + i);
    const uint32_t cur = isn.next(t, now);
    EXPECT_TRUE(seen.insert(cur).second);
    total_distance += std::popcount(cur ^ prev);
    EXPECT_NE(cur - prev, 0u);
    prev = cur;
  }
  const double mean = static_cast<double>(total_distance) / kPorts;
  EXPECT_GT(mean, 15.0);
  EXPECT_LT(mean, 17.0);
}

TEST(IsnGenerator, DependsOnTheKey) {
  const IsnGenerator a(kKeyA);
  const IsnGenerator a2(kKeyA);
  const IsnGenerator b(kKeyB);
  int same = 0;
  FourTuple t = kTuple;
  for (int i = 0; i < 1000; ++i) {
    t.remote_port = static_cast<uint16_t>(1024 + i);
    EXPECT_EQ(a.next(t, 12345), a2.next(t, 12345));
    same += a.next(t, 12345) == b.next(t, 12345);
  }
  EXPECT_LE(same, 1);
}

// ------------------------------------------------------ ephemeral ports

constexpr Ipv4Address kOrigin = 0xc6120001;

struct Recorder {
  std::vector<uint16_t>* offered;
  bool operator()(uint16_t port) const {
    offered->push_back(port);
    return false;
  }
};

TEST(EphemeralPorts, RefusesBadRanges) {
  EXPECT_THROW(EphemeralPorts(kKeyA, 0, 100), std::invalid_argument);
  EXPECT_THROW(EphemeralPorts(kKeyA, 2000, 1999), std::invalid_argument);
  EXPECT_NO_THROW(EphemeralPorts(kKeyA, 1, 65535));
  EXPECT_NO_THROW(EphemeralPorts(kKeyA, 5000, 5000));
  const EphemeralPorts p(kKeyA);
  EXPECT_EQ(p.first(), 32768);
  EXPECT_EQ(p.last(), 60999);
  EXPECT_EQ(p.range(), 60999u - 32768u + 1u);
}

TEST(EphemeralPorts, StaysInRange) {
  for (auto [first, last] : std::vector<std::pair<uint16_t, uint16_t>>{
           {32768, 60999}, {49152, 65535}, {1, 65535}, {1000, 1009}, {7000, 7000}}) {
    EphemeralPorts ports(kKeyA, first, last);
    for (uint32_t i = 0; i < 3000; ++i) {
      const uint16_t p = ports.select(kGateway, kOrigin + i % 7, static_cast<uint16_t>(9000 + i % 13),
                                      [](uint16_t) { return true; });
      ASSERT_GE(p, first);
      ASSERT_LE(p, last);
    }
  }
}

TEST(EphemeralPorts, OffersEveryPortOnceInAlgorithmOrder) {
  EphemeralPorts ports(kKeyA);
  std::vector<uint16_t> offered;
  EXPECT_EQ(ports.select(kGateway, kOrigin, 9000, Recorder{&offered}), 0);
  ASSERT_EQ(offered.size(), ports.range());
  // Algorithm 4 walks consecutive ports from first + (offset + table[index])
  // mod range, wrapping from last to first.
  for (size_t i = 1; i < offered.size(); ++i) {
    const uint16_t expected = offered[i - 1] == ports.last() ? ports.first() : offered[i - 1] + 1;
    ASSERT_EQ(offered[i], expected) << i;
  }
  std::vector<uint16_t> sorted = offered;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], ports.first() + i);
}

TEST(EphemeralPorts, FindsTheOnlyFreePort) {
  // Every port of a small range, in turn, is the only acceptable one.
  for (uint16_t target = 2000; target <= 2063; ++target) {
    EphemeralPorts ports(kKeyA, 2000, 2063);
    uint32_t calls = 0;
    const uint16_t p = ports.select(kGateway, kOrigin, 443, [&](uint16_t port) {
      ++calls;
      return port == target;
    });
    EXPECT_EQ(p, target);
    EXPECT_LE(calls, 64u);
  }
  // The same in the default range: the walk reaches a port far away.
  EphemeralPorts ports(kKeyA);
  for (uint16_t target : {32768, 46000, 60999}) {
    EXPECT_EQ(ports.select(kGateway, kOrigin, 443,
                           [&](uint16_t port) { return port == target; }),
              target);
  }
}

TEST(EphemeralPorts, MaxTriesBoundsTheWalk) {
  EphemeralPorts ports(kKeyA);
  std::vector<uint16_t> offered;
  EXPECT_EQ(ports.select(kGateway, kOrigin, 9000, Recorder{&offered}, 10), 0);
  EXPECT_EQ(offered.size(), 10u);
  offered.clear();
  // More than the range: each port once, no more.
  EphemeralPorts small(kKeyA, 100, 119);
  EXPECT_EQ(small.select(kGateway, kOrigin, 9000, Recorder{&offered}, 1000), 0);
  EXPECT_EQ(offered.size(), 20u);
  EXPECT_EQ(std::set<uint16_t>(offered.begin(), offered.end()).size(), 20u);
}

TEST(EphemeralPorts, SuccessiveConnectionsToOneDestinationWalkForward) {
  EphemeralPorts ports(kKeyA);
  const auto any = [](uint16_t) { return true; };
  const uint16_t first = ports.select(kGateway, kOrigin, 9000, any);
  std::set<uint16_t> seen{first};
  uint16_t prev = first;
  for (int i = 0; i < 5000; ++i) {
    const uint16_t p = ports.select(kGateway, kOrigin, 9000, any);
    EXPECT_TRUE(seen.insert(p).second) << i;
    // table[index]++ per candidate: the next connection starts one further.
    EXPECT_EQ(p, prev == ports.last() ? ports.first() : prev + 1);
    prev = p;
  }
}

TEST(EphemeralPorts, RefusedCandidatesAdvanceTheCounter) {
  EphemeralPorts ports(kKeyA);
  const auto any = [](uint16_t) { return true; };
  const uint32_t range = ports.range();
  const auto ahead = [&](uint16_t from, uint32_t n) {
    return static_cast<uint16_t>(ports.first() + (from - ports.first() + n) % range);
  };
  const uint16_t p0 = ports.select(kGateway, kOrigin, 9000, any);
  // Five refusals, then accept: the port is six past p0.
  uint32_t refusals = 0;
  const uint16_t p1 = ports.select(kGateway, kOrigin, 9000, [&](uint16_t) {
    return refusals++ == 5;
  });
  EXPECT_EQ(p1, ahead(p0, 6));
  // A walk that finds nothing still consumed its candidates (RFC 6056 3.3.4
  // increments table[index] for each one tried).
  EXPECT_EQ(ports.select(kGateway, kOrigin, 9000, [](uint16_t) { return false; }, 100), 0);
  EXPECT_EQ(ports.select(kGateway, kOrigin, 9000, any), ahead(p1, 101));
}

TEST(EphemeralPorts, PerturbationIsPerTableIndex) {
  EphemeralPorts ports(kKeyA);
  const auto any = [](uint16_t) { return true; };
  const size_t index_a = ports.table_index(kGateway, kOrigin, 9000);
  // Find one destination on another counter and one sharing A's counter.
  uint16_t other_port = 0;
  uint16_t sharing_port = 0;
  for (uint32_t rp = 1; rp < 65536 && (other_port == 0 || sharing_port == 0); ++rp) {
    if (rp == 9000) continue;
    const size_t idx = ports.table_index(kGateway, kOrigin, static_cast<uint16_t>(rp));
    if (idx == index_a && sharing_port == 0) sharing_port = static_cast<uint16_t>(rp);
    if (idx != index_a && other_port == 0) other_port = static_cast<uint16_t>(rp);
  }
  ASSERT_NE(other_port, 0);
  ASSERT_NE(sharing_port, 0);
  const auto next_of = [&](uint16_t p, uint32_t n) {
    return static_cast<uint16_t>(ports.first() + (p - ports.first() + n) % ports.range());
  };

  const uint16_t a0 = ports.select(kGateway, kOrigin, 9000, any);
  for (int i = 0; i < 10; ++i) ports.select(kGateway, kOrigin, other_port, any);
  // Another counter: A's walk is untouched.
  const uint16_t a1 = ports.select(kGateway, kOrigin, 9000, any);
  EXPECT_EQ(a1, next_of(a0, 1));
  for (int i = 0; i < 10; ++i) ports.select(kGateway, kOrigin, sharing_port, any);
  // The shared counter moved by 10: A's next port skips 10 positions.
  const uint16_t a2 = ports.select(kGateway, kOrigin, 9000, any);
  EXPECT_EQ(a2, next_of(a1, 11));
}

TEST(EphemeralPorts, TableIndicesSpreadOverTheTable) {
  const EphemeralPorts ports(kKeyA);
  std::map<size_t, int> hits;
  for (uint32_t rp = 1; rp <= 25600; ++rp) {
    const size_t idx = ports.table_index(kGateway, kOrigin, static_cast<uint16_t>(rp));
    ASSERT_LT(idx, EphemeralPorts::kTableLength);
    ++hits[idx];
  }
  // 100 expected per entry; a uniform hash stays far inside these bounds.
  EXPECT_EQ(hits.size(), EphemeralPorts::kTableLength);
  for (auto [idx, n] : hits) {
    EXPECT_GT(n, 40) << idx;
    EXPECT_LT(n, 170) << idx;
  }
}

TEST(EphemeralPorts, DestinationsStartAtUnrelatedPorts) {
  // F() gives each destination its own offset: first ports for different
  // destinations are spread over the range, not clustered.
  EphemeralPorts ports(kKeyA);
  const auto any = [](uint16_t) { return true; };
  std::set<uint16_t> firsts;
  uint32_t low_half = 0;
  constexpr int kDestinations = 2000;
  for (int i = 0; i < kDestinations; ++i) {
    const uint16_t p = ports.select(kGateway, kOrigin + static_cast<uint32_t>(i) * 7, 443, any);
    firsts.insert(p);
    low_half += p < ports.first() + ports.range() / 2;
  }
  EXPECT_GT(firsts.size(), kDestinations * 9 / 10);
  EXPECT_GT(low_half, kDestinations * 4 / 10);
  EXPECT_LT(low_half, kDestinations * 6 / 10);
}

TEST(EphemeralPorts, DependsOnTheKey) {
  EphemeralPorts a(kKeyA);
  EphemeralPorts a2(kKeyA);
  EphemeralPorts b(kKeyB);
  const auto any = [](uint16_t) { return true; };
  int same = 0;
  for (int i = 0; i < 200; ++i) {
    const Ipv4Address dst = kOrigin + static_cast<uint32_t>(i);
    const uint16_t pa = a.select(kGateway, dst, 443, any);
    EXPECT_EQ(pa, a2.select(kGateway, dst, 443, any));
    same += pa == b.select(kGateway, dst, 443, any);
  }
  EXPECT_LE(same, 3);
}

TEST(EphemeralPorts, KeepsOnlyPortsOfItsOwnWorker) {
  // The RSS use case: with 4 workers, three ports in four go elsewhere. Each
  // select() still returns a port of this worker and successive ones differ.
  EphemeralPorts ports(kKeyA);
  constexpr uint16_t kWorkers = 4;
  for (uint16_t worker = 0; worker < kWorkers; ++worker) {
    std::set<uint16_t> used;
    for (int i = 0; i < 500; ++i) {
      const uint16_t p = ports.select(kGateway, kOrigin, 8443, [&](uint16_t port) {
        return port % kWorkers == worker && !used.contains(port);
      });
      ASSERT_NE(p, 0);
      EXPECT_EQ(p % kWorkers, worker);
      EXPECT_TRUE(used.insert(p).second);
    }
  }
}

TEST(EphemeralPorts, FullRangeReturnsZero) {
  EphemeralPorts ports(kKeyA, 40000, 40099);
  std::set<uint16_t> used;
  const auto free_port = [&](uint16_t port) { return !used.contains(port); };
  for (int i = 0; i < 100; ++i) {
    const uint16_t p = ports.select(kGateway, kOrigin, 443, free_port);
    ASSERT_NE(p, 0);
    ASSERT_TRUE(used.insert(p).second);
  }
  EXPECT_EQ(ports.select(kGateway, kOrigin, 443, free_port), 0);
  // Other destinations may reuse the same ports (the four-tuple differs),
  // which is the caller's decision through acceptable().
  EXPECT_NE(ports.select(kGateway, kOrigin + 1, 443, [](uint16_t) { return true; }), 0);
}

}  // namespace
}  // namespace mtlsgw::net::tcp
