#include "dataplane/tls/verdict_cache.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <limits>
#include <new>

namespace mtlsgw::tls {
namespace {

constexpr std::size_t kKeyWords = kSha256Bytes / sizeof(uint64_t);
// payload: valid_from, expires_at, chain_length, the leaf's issuer/serial key,
// then both keys of every further chain certificate (the leaf's fingerprint
// is the entry's key and is not stored twice).
constexpr std::size_t kValidFrom = 0;
constexpr std::size_t kExpiresAt = 1;
constexpr std::size_t kChainLength = 2;
constexpr std::size_t kLeafIssuerSerial = 3;
constexpr std::size_t kFurtherChain = kLeafIssuerSerial + kKeyWords;
constexpr std::size_t kPayloadWords = kFurtherChain + (kMaxCachedChain - 1) * 2 * kKeyWords;

// A reader retries an entry whose counter moved while it copied; a writer
// holds an entry for a few dozen stores, so two attempts cover all but a
// writer preempted mid-store, which then costs a miss, never a wait.
constexpr int kReadAttempts = 2;

void to_words(const std::array<uint8_t, kSha256Bytes>& bytes, uint64_t* words) {
  std::memcpy(words, bytes.data(), kSha256Bytes);
}
void from_words(const uint64_t* words, std::array<uint8_t, kSha256Bytes>* bytes) {
  std::memcpy(bytes->data(), words, kSha256Bytes);
}

}  // namespace

struct alignas(64) VerdictCache::Entry {
  std::atomic<uint64_t> sequence;  // odd: a writer is inside
  std::atomic<uint64_t> leaf[kKeyWords];
  std::atomic<uint64_t> generation;  // 0: never written (generations start at 1)
  std::atomic<uint64_t> payload[kPayloadWords];
};

// The first line holds what a lookup compares and the window, so a way that
// is not the key costs one line.
static_assert(offsetof(VerdictCache::Entry, payload) + (kExpiresAt + 1) * sizeof(uint64_t) <= 64);
static_assert(sizeof(VerdictCache::Entry) == 384);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

VerdictCache::~VerdictCache() = default;

std::unique_ptr<VerdictCache> VerdictCache::create(const VerdictCacheOptions& options, std::string* error) {
  std::string discard;
  if (error == nullptr) error = &discard;
  if (options.entries == 0 || options.entries > kMaxEntries) {
    *error = "verdict cache entries must be 1.." + std::to_string(kMaxEntries);
    return nullptr;
  }
  if (options.ttl_seconds == 0) {
    *error = "verdict cache ttl must be at least one second";
    return nullptr;
  }
  std::size_t buckets = 1;
  while (buckets * kWays < options.entries) buckets *= 2;
  std::unique_ptr<VerdictCache> cache(new VerdictCache);
  // Value-initialised: every word 0, every entry empty.
  cache->entries_.reset(new (std::nothrow) Entry[buckets * kWays]());
  if (cache->entries_ == nullptr) {
    *error = "out of memory for the verdict cache";
    return nullptr;
  }
  cache->bucket_mask_ = buckets - 1;
  cache->ttl_seconds_ = options.ttl_seconds;
  return cache;
}

std::size_t VerdictCache::bucket_start(const VerdictKey& key) const noexcept {
  uint64_t hash;
  std::memcpy(&hash, key.leaf_sha256.data(), sizeof hash);
  // The same leaf under two trust stores lands in two buckets.
  hash ^= key.trust_generation * 0x9e3779b97f4a7c15ull;
  return (hash & bucket_mask_) * kWays;
}

bool VerdictCache::lookup(const VerdictKey& key, int64_t at_epoch, CachedVerdict* out,
                          VerdictCacheCounters& counters) const noexcept {
  uint64_t leaf[kKeyWords];
  to_words(key.leaf_sha256, leaf);
  const Entry* ways = &entries_[bucket_start(key)];
  uint64_t words[kPayloadWords];
  bool outside_window = false;
  for (std::size_t way = 0; way < kWays; ++way) {
    const Entry& entry = ways[way];
    bool copied = false;
    for (int attempt = 0; attempt < kReadAttempts && !copied; ++attempt) {
      const uint64_t before = entry.sequence.load(std::memory_order_acquire);
      if ((before & 1) != 0) break;
      if (entry.generation.load(std::memory_order_relaxed) != key.trust_generation) break;
      bool same = true;
      for (std::size_t i = 0; i < kKeyWords; ++i) same = same && entry.leaf[i].load(std::memory_order_relaxed) == leaf[i];
      if (!same) break;
      for (std::size_t i = 0; i < kPayloadWords; ++i) words[i] = entry.payload[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      copied = entry.sequence.load(std::memory_order_relaxed) == before;
    }
    if (!copied) continue;
    const auto valid_from = std::bit_cast<int64_t>(words[kValidFrom]);
    const auto expires_at = std::bit_cast<int64_t>(words[kExpiresAt]);
    const uint64_t chain_length = words[kChainLength];
    if (chain_length == 0 || chain_length > kMaxCachedChain) continue;
    if (at_epoch < valid_from || at_epoch >= expires_at) {
      // Two racing inserts of one key can leave it in two ways: look on.
      outside_window = true;
      continue;
    }
    out->valid_from = valid_from;
    out->expires_at = expires_at;
    out->chain_length = static_cast<uint32_t>(chain_length);
    out->chain[0].fingerprint.bytes = key.leaf_sha256;
    from_words(&words[kLeafIssuerSerial], &out->chain[0].issuer_serial.bytes);
    for (std::size_t c = 1; c < chain_length; ++c) {
      const uint64_t* keys = &words[kFurtherChain + (c - 1) * 2 * kKeyWords];
      from_words(keys, &out->chain[c].fingerprint.bytes);
      from_words(keys + kKeyWords, &out->chain[c].issuer_serial.bytes);
    }
    ++counters.hits;
    return true;
  }
  if (outside_window) ++counters.expired;
  ++counters.misses;
  return false;
}

bool VerdictCache::insert(const VerdictKey& key, const CachedVerdict& verdict, int64_t now_epoch,
                          VerdictCacheCounters& counters) noexcept {
  if (key.trust_generation == 0 || verdict.chain_length == 0 || verdict.chain_length > kMaxCachedChain) return false;
  const int64_t ttl_end = now_epoch > std::numeric_limits<int64_t>::max() - ttl_seconds_
                              ? std::numeric_limits<int64_t>::max()
                              : now_epoch + ttl_seconds_;
  const int64_t expires_at = std::min(verdict.expires_at, ttl_end);
  if (expires_at <= now_epoch || expires_at <= verdict.valid_from) return false;

  uint64_t leaf[kKeyWords];
  to_words(key.leaf_sha256, leaf);
  Entry* ways = &entries_[bucket_start(key)];

  // The replacement order: same key, empty, expired, oldest. What is read
  // here may be mid-change; the CAS below is what decides.
  enum Rank { same_key, empty, expired, live, none };
  Rank best = none;
  std::size_t victim = 0;
  uint64_t victim_sequence = 0;
  int64_t victim_from = std::numeric_limits<int64_t>::max();
  for (std::size_t way = 0; way < kWays && best != same_key; ++way) {
    const Entry& entry = ways[way];
    const uint64_t sequence = entry.sequence.load(std::memory_order_acquire);
    if ((sequence & 1) != 0) continue;
    const uint64_t generation = entry.generation.load(std::memory_order_relaxed);
    bool same = generation == key.trust_generation;
    for (std::size_t i = 0; i < kKeyWords; ++i) same = same && entry.leaf[i].load(std::memory_order_relaxed) == leaf[i];
    const auto from = std::bit_cast<int64_t>(entry.payload[kValidFrom].load(std::memory_order_relaxed));
    Rank rank = live;
    if (same) {
      rank = same_key;
    } else if (generation == 0) {
      rank = empty;
    } else if (std::bit_cast<int64_t>(entry.payload[kExpiresAt].load(std::memory_order_relaxed)) <= now_epoch) {
      rank = expired;
    }
    if (rank < best || (rank == live && best == live && from < victim_from)) {
      best = rank;
      victim = way;
      victim_sequence = sequence;
      victim_from = from;
    }
  }
  if (best == none) {
    ++counters.insert_races;
    return false;
  }

  Entry& entry = ways[victim];
  uint64_t expected = victim_sequence;
  if (!entry.sequence.compare_exchange_strong(expected, victim_sequence + 1, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
    ++counters.insert_races;
    return false;
  }
  // No store below may become visible before the odd counter.
  std::atomic_thread_fence(std::memory_order_release);
  for (std::size_t i = 0; i < kKeyWords; ++i) entry.leaf[i].store(leaf[i], std::memory_order_relaxed);
  entry.generation.store(key.trust_generation, std::memory_order_relaxed);
  uint64_t words[kPayloadWords] = {};
  words[kValidFrom] = std::bit_cast<uint64_t>(verdict.valid_from);
  words[kExpiresAt] = std::bit_cast<uint64_t>(expires_at);
  words[kChainLength] = verdict.chain_length;
  to_words(verdict.chain[0].issuer_serial.bytes, &words[kLeafIssuerSerial]);
  for (std::size_t c = 1; c < verdict.chain_length; ++c) {
    uint64_t* keys = &words[kFurtherChain + (c - 1) * 2 * kKeyWords];
    to_words(verdict.chain[c].fingerprint.bytes, keys);
    to_words(verdict.chain[c].issuer_serial.bytes, keys + kKeyWords);
  }
  for (std::size_t i = 0; i < kPayloadWords; ++i) entry.payload[i].store(words[i], std::memory_order_relaxed);
  entry.sequence.store(victim_sequence + 2, std::memory_order_release);
  ++counters.inserts;
  if (best == live) ++counters.evictions;
  return true;
}

}  // namespace mtlsgw::tls
