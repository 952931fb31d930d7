#include "dataplane/gateway/access_log_queue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace mtlsgw::gateway {
namespace {

AccessRecord numbered(uint32_t n) {
  AccessRecord record;
  record.requests = n;
  record.bytes_from_client = uint64_t{n} * 3;
  record.set_text(record.sni, "host-" + std::to_string(n) + ".example");
  return record;
}

std::vector<uint32_t> pop_all(AccessLogQueue& queue) {
  std::vector<uint32_t> seen;
  AccessRecord out;
  while (queue.try_pop(out)) seen.push_back(out.requests);
  return seen;
}

TEST(AccessLogQueue, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(AccessLogQueue(5).capacity(), 8u);
  EXPECT_EQ(AccessLogQueue(8).capacity(), 8u);
  EXPECT_EQ(AccessLogQueue(0).capacity(), 2u);
  EXPECT_EQ(AccessLogQueue().capacity(), AccessLogQueue::kDefaultCapacity);
}

TEST(AccessLogQueue, EmptyQueuePopsNothing) {
  AccessLogQueue queue(4);
  AccessRecord out;
  EXPECT_FALSE(queue.try_pop(out));
  EXPECT_EQ(queue.drain([](const AccessRecord&) { FAIL() << "nothing was pushed"; }), 0u);
  EXPECT_EQ(queue.size_approx(), 0u);
}

// The indices run far past the capacity: slot = index & mask must keep
// handing records out in push order across every wrap.
TEST(AccessLogQueue, KeepsOrderAcrossManyWrapArounds) {
  AccessLogQueue queue(4);
  uint32_t next_in = 0;
  uint32_t next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.try_push(numbered(next_in++)));
    AccessRecord out;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(queue.try_pop(out));
      EXPECT_EQ(out.requests, next_out);
      EXPECT_EQ(text_of(out.sni), "host-" + std::to_string(next_out) + ".example");
      ++next_out;
    }
    EXPECT_FALSE(queue.try_pop(out));
  }
  EXPECT_EQ(next_out, 150u);
  EXPECT_EQ(queue.dropped(), 0u);
}

TEST(AccessLogQueue, FullQueueRefusesAndCountsDrops) {
  AccessLogQueue queue(4);
  for (uint32_t n = 0; n < 4; ++n) ASSERT_TRUE(queue.try_push(numbered(n)));
  EXPECT_EQ(queue.size_approx(), 4u);
  EXPECT_FALSE(queue.try_push(numbered(4)));
  EXPECT_FALSE(queue.try_push(numbered(5)));
  EXPECT_EQ(queue.try_claim(), nullptr);
  EXPECT_EQ(queue.dropped(), 3u);

  // One slot freed: the next push fits, and the refused ones never appear.
  AccessRecord out;
  ASSERT_TRUE(queue.try_pop(out));
  EXPECT_EQ(out.requests, 0u);
  EXPECT_TRUE(queue.try_push(numbered(6)));
  EXPECT_FALSE(queue.try_push(numbered(7)));
  EXPECT_EQ(queue.dropped(), 4u);
  EXPECT_EQ(pop_all(queue), (std::vector<uint32_t>{1, 2, 3, 6}));
}

TEST(AccessLogQueue, ClaimedSlotIsInvisibleUntilPublished) {
  AccessLogQueue queue(4);
  AccessRecord* slot = queue.try_claim();
  ASSERT_NE(slot, nullptr);
  *slot = numbered(42);
  AccessRecord out;
  EXPECT_FALSE(queue.try_pop(out));
  queue.publish();
  ASSERT_TRUE(queue.try_pop(out));
  EXPECT_EQ(out.requests, 42u);
  EXPECT_EQ(out.bytes_from_client, 126u);
}

TEST(AccessLogQueue, DrainTakesOldestFirstUpToTheLimit) {
  AccessLogQueue queue(8);
  for (uint32_t n = 10; n < 15; ++n) ASSERT_TRUE(queue.try_push(numbered(n)));
  std::vector<uint32_t> seen;
  auto collect = [&](const AccessRecord& record) { seen.push_back(record.requests); };
  EXPECT_EQ(queue.drain(collect, 2), 2u);
  EXPECT_EQ(seen, (std::vector<uint32_t>{10, 11}));
  // Slots the drain released are free for the producer again.
  for (uint32_t n = 15; n < 20; ++n) ASSERT_TRUE(queue.try_push(numbered(n)));
  EXPECT_FALSE(queue.try_push(numbered(20)));
  EXPECT_EQ(queue.drain(collect), 8u);
  EXPECT_EQ(seen, (std::vector<uint32_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
}

// A worker and a writer on two threads: every record arrives exactly once,
// in order, and whole (its fields agree with each other, so a copy torn by
// a missing acquire/release would show). The producer retries when full, so
// no record may be missing; nothing here depends on how fast either side is.
TEST(AccessLogQueue, TwoThreadsDeliverEveryRecordOnceInOrder) {
  constexpr uint32_t kRecords = 200'000;
  AccessLogQueue queue(64);
  std::thread producer([&] {
    for (uint32_t n = 0; n < kRecords; ++n) {
      const AccessRecord record = numbered(n);
      while (!queue.try_push(record)) std::this_thread::yield();
    }
  });

  uint32_t expected = 0;
  uint32_t out_of_order = 0;
  uint32_t torn = 0;
  while (expected < kRecords) {
    const std::size_t count = queue.drain([&](const AccessRecord& record) {
      if (record.requests != expected) ++out_of_order;
      if (record.bytes_from_client != uint64_t{record.requests} * 3 ||
          text_of(record.sni) != "host-" + std::to_string(record.requests) + ".example") {
        ++torn;
      }
      expected = record.requests + 1;
    });
    if (count == 0) std::this_thread::yield();
  }
  producer.join();

  EXPECT_EQ(expected, kRecords);
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(torn, 0u);
  AccessRecord out;
  EXPECT_FALSE(queue.try_pop(out));
}

}  // namespace
}  // namespace mtlsgw::gateway
