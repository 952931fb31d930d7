// PolicyCell: RCU publication of the operator's policy to the workers.

#include "dataplane/gateway/policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace mtlsgw::gateway {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<const Policy> policy(uint64_t generation) {
  auto p = std::make_unique<Policy>();
  p->generation = generation;
  return p;
}

TEST(PolicyCell, StartsEmptyAndPublishesWithNoReaderOnline) {
  PolicyCell cell(2);
  ASSERT_NE(cell.read(), nullptr);
  EXPECT_EQ(cell.generation(), 0u);
  EXPECT_EQ(cell.read()->revocations, nullptr);
  EXPECT_EQ(cell.read()->rules, nullptr);
  EXPECT_TRUE(cell.publish(policy(1), 10ms)) << "no worker online: nothing to wait for";
  EXPECT_EQ(cell.generation(), 1u);
}

// A worker that has not passed a quiescent state since the swap may still
// hold the old pointer: publish reports it and keeps the old policy alive.
TEST(PolicyCell, PublishWaitsForEveryOnlineWorkersQuiescentState) {
  PolicyCell cell(2);
  cell.online(0);
  cell.online(1);
  cell.quiescent(0);
  cell.quiescent(1);
  const Policy* held = cell.read();
  EXPECT_FALSE(cell.publish(policy(1), 5ms)) << "neither worker reported after the swap";
  EXPECT_EQ(cell.generation(), 1u) << "the swap itself is done at once";
  EXPECT_EQ(held->generation, 0u) << "the old policy stays readable";

  std::atomic<bool> stop{false};
  std::thread worker0([&] {
    while (!stop.load()) {
      (void)cell.read()->generation;
      cell.quiescent(0);
      std::this_thread::sleep_for(20us);
    }
  });
  std::thread worker1([&] {
    while (!stop.load()) {
      (void)cell.read()->generation;
      cell.quiescent(1);
      std::this_thread::sleep_for(20us);
    }
  });
  EXPECT_TRUE(cell.publish(policy(2), 2s));
  EXPECT_EQ(cell.generation(), 2u);
  stop = true;
  worker0.join();
  worker1.join();
  cell.offline(0);
  cell.offline(1);
  EXPECT_TRUE(cell.publish(policy(3), 10ms)) << "offline workers are not waited for";
}

// Readers check that what they read is whole and never goes backwards while
// the control thread publishes; run under AddressSanitizer, a policy freed
// too early would be a use after free here.
TEST(PolicyCell, ReadersSeeWholePoliciesInOrderWhilePublicationsRun) {
  constexpr uint32_t kWorkers = 3;
  PolicyCell cell(kWorkers);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> workers;
  for (uint32_t w = 0; w < kWorkers; ++w) cell.online(w);
  for (uint32_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      uint64_t last = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const Policy* p = cell.read();
        const uint64_t g = p->generation;
        if (g < last || p->close_revoked != (g % 2 == 1)) errors.fetch_add(1);
        last = g;
        cell.quiescent(w);
      }
    });
  }
  for (uint64_t g = 1; g <= 300; ++g) {
    auto p = std::make_unique<Policy>();
    p->generation = g;
    p->close_revoked = g % 2 == 1;
    EXPECT_TRUE(cell.publish(std::move(p), 2s));
  }
  stop = true;
  for (auto& t : workers) t.join();
  for (uint32_t w = 0; w < kWorkers; ++w) cell.offline(w);
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(cell.generation(), 300u);
}

}  // namespace
}  // namespace mtlsgw::gateway
