#include "dataplane/net/arp_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "heap_frame_io.h"
#include "packet_builder.h"

namespace mtlsgw::testing {
namespace {

using net::ArpCache;
using Lookup = ArpCache::Lookup;
using State = ArpCache::State;

struct RecordingEvents final : ArpCache::Events {
  std::vector<std::pair<uint32_t, bool>> requests;  // ip, unicast
  std::vector<net::Frame> dropped;
  void send_request(net::Ipv4Address ip, const rte_ether_addr* unicast_to) noexcept override {
    requests.emplace_back(ip, unicast_to != nullptr);
  }
  void drop_unresolved(const net::Frame& frame) noexcept override { dropped.push_back(frame); }
};

class ArpCacheTest : public ::testing::Test {
 protected:
  ArpCache::Params params() {
    ArpCache::Params p;
    p.capacity = 16;
    p.reachable_us = 30'000;
    p.retry_us = 1'000;
    p.max_probes = 3;
    p.failed_holddown_us = 5'000;
    p.stale_gc_us = 100'000;
    return p;
  }
  ArpCache cache{params()};
  RecordingEvents events;
  HeapFrameIo io;
  const uint32_t peer = ip(198, 18, 0, 1);
  const rte_ether_addr peer_mac = mac({2, 0, 0xc6, 0x12, 0, 1});
  rte_ether_addr out{};
  net::Frame ready[ArpCache::kHoldPerEntry];

  net::Frame frame(uint8_t tag) {
    net::Frame f;
    EXPECT_TRUE(io.alloc(f));
    f.append(1);
    f.data[0] = tag;
    return f;
  }
};

TEST_F(ArpCacheTest, MissStartsOneResolutionThenHits) {
  EXPECT_EQ(cache.lookup(peer, 0, &out), Lookup::started);
  EXPECT_EQ(cache.lookup(peer, 10, &out), Lookup::pending);
  EXPECT_EQ(cache.state_of(peer), State::incomplete);
  auto learned = cache.learn(peer, peer_mac, 20, false, ready);
  EXPECT_TRUE(learned.changed);
  EXPECT_TRUE(learned.known);
  EXPECT_EQ(cache.lookup(peer, 30, &out), Lookup::hit);
  EXPECT_TRUE(rte_is_same_ether_addr(&out, &peer_mac));
}

TEST_F(ArpCacheTest, LearnCreatesOnlyWhenAsked) {
  EXPECT_FALSE(cache.learn(peer, peer_mac, 0, false, ready).known);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.learn(peer, peer_mac, 0, true, ready).known);
  EXPECT_EQ(cache.size(), 1u);
  // Same MAC again: known, not a change.
  EXPECT_FALSE(cache.learn(peer, peer_mac, 1, false, ready).changed);
}

TEST_F(ArpCacheTest, HoldsFramesAndPushesOutTheOldest) {
  ASSERT_EQ(cache.lookup(peer, 0, &out), Lookup::started);
  net::Frame evicted;
  for (uint8_t i = 0; i < ArpCache::kHoldPerEntry; ++i) {
    EXPECT_FALSE(cache.hold(peer, frame(i), &evicted));
  }
  ASSERT_TRUE(cache.hold(peer, frame(99), &evicted));
  EXPECT_EQ(evicted.data[0], 0);
  io.release(evicted);
  auto learned = cache.learn(peer, peer_mac, 5, false, ready);
  ASSERT_EQ(learned.ready_count, ArpCache::kHoldPerEntry);
  EXPECT_EQ(ready[0].data[0], 1);
  EXPECT_EQ(ready[ArpCache::kHoldPerEntry - 1].data[0], 99);
  for (uint8_t i = 0; i < learned.ready_count; ++i) io.release(ready[i]);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(ArpCacheTest, HoldWithoutPendingResolutionHandsTheFrameBack) {
  net::Frame evicted;
  net::Frame f = frame(1);
  EXPECT_TRUE(cache.hold(peer, f, &evicted));
  EXPECT_EQ(evicted.handle, f.handle);
  io.release(evicted);
}

TEST_F(ArpCacheTest, RetriesThenFailsThenForgets) {
  ASSERT_EQ(cache.lookup(peer, 0, &out), Lookup::started);  // probe 1 sent by the caller
  net::Frame evicted;
  cache.hold(peer, frame(1), &evicted);
  cache.tick(500, events);
  EXPECT_TRUE(events.requests.empty());  // not yet due
  cache.tick(1'000, events);
  cache.tick(2'000, events);
  ASSERT_EQ(events.requests.size(), 2u);  // probes 2 and 3, broadcast
  EXPECT_FALSE(events.requests[0].second);
  EXPECT_TRUE(events.dropped.empty());
  cache.tick(3'000, events);
  EXPECT_EQ(cache.state_of(peer), State::failed);
  ASSERT_EQ(events.dropped.size(), 1u);
  io.release(events.dropped[0]);
  // A dead next hop costs nothing per packet during the hold-down.
  EXPECT_EQ(cache.lookup(peer, 4'000, &out), Lookup::failed);
  cache.tick(8'000, events);
  EXPECT_EQ(cache.state_of(peer), State::empty);
  EXPECT_EQ(cache.lookup(peer, 8'001, &out), Lookup::started);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(ArpCacheTest, StaleEntryIsUsedAndPolledOnce) {
  cache.learn(peer, peer_mac, 0, true, ready);
  cache.tick(30'000, events);
  EXPECT_EQ(cache.state_of(peer), State::stale);
  EXPECT_EQ(cache.expired_count(), 1u);
  EXPECT_EQ(cache.lookup(peer, 30'001, &out), Lookup::hit_stale);
  EXPECT_TRUE(rte_is_same_ether_addr(&out, &peer_mac));
  EXPECT_EQ(cache.lookup(peer, 30'002, &out), Lookup::hit);  // one poll only
  // The poll is answered: reachable again.
  cache.learn(peer, peer_mac, 30'100, false, ready);
  EXPECT_EQ(cache.state_of(peer), State::reachable);
}

TEST_F(ArpCacheTest, UnansweredPollFallsBackToBroadcastThenFails) {
  cache.learn(peer, peer_mac, 0, true, ready);
  cache.tick(30'000, events);
  ASSERT_EQ(cache.lookup(peer, 30'000, &out), Lookup::hit_stale);
  cache.tick(31'000, events);
  cache.tick(32'000, events);
  EXPECT_EQ(events.requests.size(), 2u);
  cache.tick(33'000, events);
  EXPECT_EQ(cache.state_of(peer), State::failed);
}

TEST_F(ArpCacheTest, UnusedStaleEntriesAreCollected) {
  cache.learn(peer, peer_mac, 0, true, ready);
  cache.tick(30'000, events);
  EXPECT_EQ(cache.state_of(peer), State::stale);
  cache.tick(99'999, events);
  EXPECT_EQ(cache.state_of(peer), State::stale);
  cache.tick(100'000, events);
  EXPECT_EQ(cache.state_of(peer), State::empty);
  EXPECT_TRUE(events.requests.empty());
}

TEST_F(ArpCacheTest, RefusesWhenFull) {
  size_t accepted = 0;
  for (uint32_t i = 1; i <= cache.capacity(); ++i) {
    if (cache.lookup(ip(198, 18, 1, static_cast<uint8_t>(i)), 0, &out) == Lookup::started) ++accepted;
  }
  EXPECT_EQ(accepted, cache.capacity() - cache.capacity() / 4);
  EXPECT_EQ(cache.lookup(ip(198, 18, 2, 1), 0, &out), Lookup::full);
}

// Random inserts, learns and expiries against a std::map model: the probe
// chains must stay intact through backward-shift deletions.
TEST_F(ArpCacheTest, MatchesAModelUnderChurn) {
  ArpCache::Params p = params();
  p.capacity = 64;
  ArpCache big(p);
  std::map<uint32_t, State> model;
  std::mt19937 rng(12345);
  uint64_t now = 0;
  for (int step = 0; step < 20'000; ++step) {
    now += rng() % 300;
    const uint32_t addr = ip(198, 18, 3, static_cast<uint8_t>(rng() % 80));
    switch (rng() % 3) {
      case 0: {
        Lookup r = big.lookup(addr, now, &out);
        if (r == Lookup::started) model[addr] = State::incomplete;
        break;
      }
      case 1:
        if (big.learn(addr, peer_mac, now, true, ready).known) model[addr] = State::reachable;
        break;
      case 2:
        big.tick(now, events);
        break;
    }
    // Every address the model knows must be findable; sizes must agree once
    // the model forgets what the cache forgot.
    for (auto it = model.begin(); it != model.end();) {
      if (big.state_of(it->first) == State::empty) {
        it = model.erase(it);
      } else {
        ++it;
      }
    }
    ASSERT_EQ(big.size(), model.size()) << "step " << step;
  }
  EXPECT_GT(events.requests.size(), 0u);
}

}  // namespace
}  // namespace mtlsgw::testing
