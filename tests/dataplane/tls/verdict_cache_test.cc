// VerdictCache on made-up keys and values, one thread: what a lookup returns,
// the key's generation, the window, the TTL, replacement in a full bucket,
// and the counters. The concurrent case is verdict_cache_concurrency_test.cc;
// verdicts of real certificates are in client_verify_test.cc.

#include "dataplane/tls/verdict_cache.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace mtlsgw::tls {
namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

VerdictKey key_of(uint8_t id, uint64_t generation = 1) {
  VerdictKey key;
  for (std::size_t i = 0; i < key.leaf_sha256.size(); ++i) key.leaf_sha256[i] = static_cast<uint8_t>(id * 31 + i);
  key.trust_generation = generation;
  return key;
}

CachedVerdict verdict_of(const VerdictKey& key, uint8_t tag, uint32_t chain_length, int64_t valid_from,
                         int64_t expires_at) {
  CachedVerdict verdict;
  verdict.valid_from = valid_from;
  verdict.expires_at = expires_at;
  verdict.chain_length = chain_length;
  verdict.chain[0].fingerprint.bytes = key.leaf_sha256;
  for (std::size_t c = 0; c < chain_length; ++c) {
    for (std::size_t i = 0; i < kSha256Bytes; ++i) {
      if (c > 0) verdict.chain[c].fingerprint.bytes[i] = static_cast<uint8_t>(tag + c * 7 + i);
      verdict.chain[c].issuer_serial.bytes[i] = static_cast<uint8_t>(tag * 3 + c * 11 + i + 1);
    }
  }
  return verdict;
}

std::unique_ptr<VerdictCache> make_cache(std::size_t entries, uint32_t ttl = 3600) {
  std::string error;
  auto cache = VerdictCache::create(VerdictCacheOptions{entries, ttl}, &error);
  EXPECT_NE(cache, nullptr) << error;
  return cache;
}

void expect_same(const CachedVerdict& got, const CachedVerdict& want) {
  EXPECT_EQ(got.valid_from, want.valid_from);
  EXPECT_EQ(got.chain_length, want.chain_length);
  for (std::size_t c = 0; c < want.chain_length; ++c) {
    EXPECT_EQ(got.chain[c].fingerprint, want.chain[c].fingerprint) << c;
    EXPECT_EQ(got.chain[c].issuer_serial, want.chain[c].issuer_serial) << c;
  }
}

TEST(VerdictCache, HitsAfterAnInsertWithTheWholeValue) {
  auto cache = make_cache(64);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  const VerdictKey key = key_of(1);
  CachedVerdict got;
  EXPECT_FALSE(cache->lookup(key, 1000, &got, counters));
  EXPECT_EQ(counters.misses, 1u);

  for (uint32_t length = 1; length <= kMaxCachedChain; ++length) {
    SCOPED_TRACE(length);
    const CachedVerdict put = verdict_of(key, static_cast<uint8_t>(length), length, 1000, 5000);
    ASSERT_TRUE(cache->insert(key, put, 1000, counters));
    ASSERT_TRUE(cache->lookup(key, 1000, &got, counters));
    expect_same(got, put);
    EXPECT_EQ(got.expires_at, 1000 + 3600);  // cut to the TTL
  }
  EXPECT_EQ(counters.hits, kMaxCachedChain);
  EXPECT_EQ(counters.inserts, kMaxCachedChain);
  EXPECT_EQ(counters.evictions, 0u);
  EXPECT_EQ(counters.misses, 1u);
}

TEST(VerdictCache, TheTrustGenerationIsPartOfTheKey) {
  auto cache = make_cache(64);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  CachedVerdict got;
  ASSERT_TRUE(cache->insert(key_of(1, 7), verdict_of(key_of(1, 7), 1, 3, 100, kForever), 100, counters));
  EXPECT_FALSE(cache->lookup(key_of(1, 8), 100, &got, counters));
  EXPECT_FALSE(cache->lookup(key_of(2, 7), 100, &got, counters));
  EXPECT_TRUE(cache->lookup(key_of(1, 7), 100, &got, counters));
  // The same leaf under another store is an entry of its own.
  ASSERT_TRUE(cache->insert(key_of(1, 8), verdict_of(key_of(1, 8), 9, 2, 100, kForever), 100, counters));
  ASSERT_TRUE(cache->lookup(key_of(1, 8), 100, &got, counters));
  EXPECT_EQ(got.chain_length, 2u);
  ASSERT_TRUE(cache->lookup(key_of(1, 7), 100, &got, counters));
  EXPECT_EQ(got.chain_length, 3u);
}

TEST(VerdictCache, HoldsFromTheVerificationTimeUntilExpiry) {
  auto cache = make_cache(64, 1'000'000);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  CachedVerdict got;
  const VerdictKey key = key_of(3);
  ASSERT_TRUE(cache->insert(key, verdict_of(key, 3, 3, 1000, 2000), 1000, counters));
  EXPECT_FALSE(cache->lookup(key, 999, &got, counters));
  EXPECT_EQ(counters.expired, 1u);
  EXPECT_TRUE(cache->lookup(key, 1000, &got, counters));
  EXPECT_TRUE(cache->lookup(key, 1999, &got, counters));
  EXPECT_EQ(got.expires_at, 2000);
  EXPECT_FALSE(cache->lookup(key, 2000, &got, counters));
  EXPECT_EQ(counters.expired, 2u);
  EXPECT_EQ(counters.misses, 2u);
  EXPECT_EQ(counters.hits, 2u);
}

TEST(VerdictCache, TheTtlBoundsEveryEntry) {
  auto cache = make_cache(64, 60);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  CachedVerdict got;
  const VerdictKey key = key_of(4);
  ASSERT_TRUE(cache->insert(key, verdict_of(key, 4, 3, 1000, kForever), 1000, counters));
  EXPECT_TRUE(cache->lookup(key, 1059, &got, counters));
  EXPECT_FALSE(cache->lookup(key, 1060, &got, counters));
  EXPECT_EQ(cache->ttl_seconds(), 60u);
}

TEST(VerdictCache, RefusesWhatItCannotHold) {
  auto cache = make_cache(64);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  const VerdictKey key = key_of(5);
  EXPECT_FALSE(cache->insert(key, verdict_of(key, 5, 3, 1000, 1000), 1000, counters));  // empty window
  EXPECT_FALSE(cache->insert(key, verdict_of(key, 5, 3, 1000, 900), 1000, counters));
  EXPECT_FALSE(cache->insert(key, verdict_of(key, 5, 0, 1000, 5000), 1000, counters));
  CachedVerdict too_long = verdict_of(key, 5, kMaxCachedChain, 1000, 5000);
  too_long.chain_length = kMaxCachedChain + 1;
  EXPECT_FALSE(cache->insert(key, too_long, 1000, counters));
  EXPECT_FALSE(cache->insert(key_of(5, 0), verdict_of(key_of(5, 0), 5, 3, 1000, 5000), 1000, counters));
  EXPECT_EQ(counters.inserts, 0u);
  CachedVerdict got;
  EXPECT_FALSE(cache->lookup(key, 1000, &got, counters));
}

TEST(VerdictCache, SizesAndOptions) {
  EXPECT_EQ(make_cache(1)->capacity(), VerdictCache::kWays);
  EXPECT_EQ(make_cache(5)->capacity(), 8u);
  EXPECT_EQ(make_cache(65536)->capacity(), 65536u);
  std::string error;
  EXPECT_EQ(VerdictCache::create(VerdictCacheOptions{0, 60}, &error), nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(VerdictCache::create(VerdictCacheOptions{VerdictCache::kMaxEntries + 1, 60}, &error), nullptr);
  EXPECT_EQ(VerdictCache::create(VerdictCacheOptions{64, 0}, &error), nullptr);
  EXPECT_EQ(VerdictCacheOptions{}.entries, 65536u);
}

// One bucket of four ways: every key lands in it.
TEST(VerdictCache, AFullBucketEvictsTheOldestEntry) {
  auto cache = make_cache(VerdictCache::kWays);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  CachedVerdict got;
  for (uint8_t id = 1; id <= 4; ++id) {
    ASSERT_TRUE(cache->insert(key_of(id), verdict_of(key_of(id), id, 2, 100 + id, kForever), 100 + id, counters));
  }
  EXPECT_EQ(counters.evictions, 0u);
  // Refreshing a key takes its own way back, nobody else's.
  ASSERT_TRUE(cache->insert(key_of(1), verdict_of(key_of(1), 1, 2, 110, kForever), 110, counters));
  EXPECT_EQ(counters.evictions, 0u);
  for (uint8_t id = 1; id <= 4; ++id) EXPECT_TRUE(cache->lookup(key_of(id), 120, &got, counters)) << int(id);
  // Now key 2 (verified at 102) is the oldest.
  ASSERT_TRUE(cache->insert(key_of(5), verdict_of(key_of(5), 5, 2, 120, kForever), 120, counters));
  EXPECT_EQ(counters.evictions, 1u);
  EXPECT_FALSE(cache->lookup(key_of(2), 120, &got, counters));
  for (uint8_t id : {1, 3, 4, 5}) EXPECT_TRUE(cache->lookup(key_of(id), 120, &got, counters)) << int(id);
  EXPECT_EQ(counters.inserts, 6u);
}

TEST(VerdictCache, ExpiredEntriesGoBeforeLiveOnes) {
  auto cache = make_cache(VerdictCache::kWays);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  CachedVerdict got;
  ASSERT_TRUE(cache->insert(key_of(1), verdict_of(key_of(1), 1, 2, 100, kForever), 100, counters));
  ASSERT_TRUE(cache->insert(key_of(2), verdict_of(key_of(2), 2, 2, 101, kForever), 101, counters));
  ASSERT_TRUE(cache->insert(key_of(3), verdict_of(key_of(3), 3, 2, 102, 150), 102, counters));
  ASSERT_TRUE(cache->insert(key_of(4), verdict_of(key_of(4), 4, 2, 103, kForever), 103, counters));
  ASSERT_TRUE(cache->insert(key_of(5), verdict_of(key_of(5), 5, 2, 200, kForever), 200, counters));
  EXPECT_EQ(counters.evictions, 0u);  // key 3 had expired: replaced, not evicted
  for (uint8_t id : {1, 2, 4, 5}) EXPECT_TRUE(cache->lookup(key_of(id), 200, &got, counters)) << int(id);
  EXPECT_FALSE(cache->lookup(key_of(3), 120, &got, counters));
}

TEST(VerdictCache, KeysSpreadOverBuckets) {
  // 256 entries, 64 buckets; the keys' first bytes differ in their low six
  // bits two by two, so 128 keys fill every bucket half and evict nothing.
  auto cache = make_cache(256);
  ASSERT_TRUE(cache);
  VerdictCacheCounters counters;
  for (int id = 0; id < 128; ++id) {
    VerdictKey key;
    for (std::size_t i = 0; i < key.leaf_sha256.size(); ++i) {
      key.leaf_sha256[i] = static_cast<uint8_t>((id * 2654435761u) >> (i % 4 * 8));
    }
    key.trust_generation = 3;
    ASSERT_TRUE(cache->insert(key, verdict_of(key, 1, 1, 0, kForever), 0, counters));
  }
  EXPECT_EQ(counters.evictions, 0u);
  EXPECT_EQ(counters.inserts, 128u);
}

}  // namespace
}  // namespace mtlsgw::tls
