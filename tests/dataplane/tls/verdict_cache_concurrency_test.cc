// VerdictCache under concurrent lookups and inserts: four threads look up
// random keys and insert on a miss, while a fifth keeps overwriting random
// keys with new values, on a cache small enough that buckets are always
// contended. Every value is self-describing (key, writer, version, and bytes
// derived from them), so a hit that mixes two writers' words, or returns
// another key's value, is caught. Built with ThreadSanitizer on
// verdict_cache.cc alone (tests/dataplane/tls/meson.build), without gtest:
// nothing uninstrumented runs in the threads.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/tls/verdict_cache.h"

namespace {

using mtlsgw::tls::CachedVerdict;
using mtlsgw::tls::kMaxCachedChain;
using mtlsgw::tls::kSha256Bytes;
using mtlsgw::tls::VerdictCache;
using mtlsgw::tls::VerdictCacheCounters;
using mtlsgw::tls::VerdictCacheOptions;
using mtlsgw::tls::VerdictKey;

constexpr int64_t kNow = 1'000'000;
constexpr int kLookupThreads = 4;

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

struct Rng {
  uint64_t state;
  uint64_t next() {
    state += 0x9e3779b97f4a7c15ull;
    return mix(state);
  }
};

VerdictKey key_of(uint64_t id) {
  VerdictKey key;
  for (std::size_t i = 0; i < kSha256Bytes; i += 8) {
    const uint64_t word = mix(id * 4 + i / 8);
    std::memcpy(&key.leaf_sha256[i], &word, 8);
  }
  key.trust_generation = 1 + id % 2;
  return key;
}

uint8_t byte_of(uint64_t id, uint64_t version, std::size_t position) {
  return static_cast<uint8_t>(mix(id ^ (version << 20) ^ (position * 0x100000001ull)));
}

// The value version `version` of key `id`: the chain length and every byte
// follow from (id, version), which sit in the leaf's issuer/serial key.
CachedVerdict value_of(const VerdictKey& key, uint64_t id, uint64_t version) {
  CachedVerdict value;
  value.valid_from = kNow;
  value.expires_at = INT64_MAX;
  value.chain_length = static_cast<uint32_t>(1 + version % kMaxCachedChain);
  value.chain[0].fingerprint.bytes = key.leaf_sha256;
  std::memcpy(&value.chain[0].issuer_serial.bytes[0], &id, 8);
  std::memcpy(&value.chain[0].issuer_serial.bytes[8], &version, 8);
  std::size_t position = 0;
  for (std::size_t i = 16; i < kSha256Bytes; ++i) value.chain[0].issuer_serial.bytes[i] = byte_of(id, version, position++);
  for (std::size_t c = 1; c < value.chain_length; ++c) {
    for (std::size_t i = 0; i < kSha256Bytes; ++i) value.chain[c].fingerprint.bytes[i] = byte_of(id, version, position++);
    for (std::size_t i = 0; i < kSha256Bytes; ++i) value.chain[c].issuer_serial.bytes[i] = byte_of(id, version, position++);
  }
  return value;
}

// True when got is exactly one inserted value of key id.
bool whole_value_of(const CachedVerdict& got, const VerdictKey& key, uint64_t id) {
  uint64_t stored_id;
  uint64_t version;
  std::memcpy(&stored_id, &got.chain[0].issuer_serial.bytes[0], 8);
  std::memcpy(&version, &got.chain[0].issuer_serial.bytes[8], 8);
  if (stored_id != id || got.chain[0].fingerprint.bytes != key.leaf_sha256) return false;
  const CachedVerdict want = value_of(key, id, version);
  if (got.chain_length != want.chain_length || got.valid_from != want.valid_from) return false;
  for (std::size_t c = 0; c < want.chain_length; ++c) {
    if (got.chain[c].fingerprint != want.chain[c].fingerprint) return false;
    if (got.chain[c].issuer_serial != want.chain[c].issuer_serial) return false;
  }
  return true;
}

struct Totals {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> inserts{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> races{0};
  std::atomic<uint64_t> torn{0};
};

void add(Totals& totals, const VerdictCacheCounters& counters, uint64_t torn) {
  totals.hits += counters.hits;
  totals.inserts += counters.inserts;
  totals.evictions += counters.evictions;
  totals.races += counters.insert_races;
  totals.torn += torn;
}

// One phase: `keys` distinct keys over a cache of `entries`.
bool run_phase(const char* name, std::size_t entries, uint64_t keys, int iterations) {
  std::string error;
  std::unique_ptr<VerdictCache> cache = VerdictCache::create(VerdictCacheOptions{entries, 3600}, &error);
  if (cache == nullptr) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return false;
  }
  Totals totals;
  std::atomic<int> running{kLookupThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kLookupThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng rng{static_cast<uint64_t>(t) * 7919 + 1};
      VerdictCacheCounters counters;
      uint64_t torn = 0;
      uint64_t version = static_cast<uint64_t>(t + 1) << 40;
      for (int i = 0; i < iterations; ++i) {
        const uint64_t id = rng.next() % keys;
        const VerdictKey key = key_of(id);
        CachedVerdict got;
        if (cache->lookup(key, kNow, &got, counters)) {
          if (!whole_value_of(got, key, id)) ++torn;
        } else {
          cache->insert(key, value_of(key, id, ++version), kNow, counters);
        }
      }
      add(totals, counters, torn);
      running.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    Rng rng{424242};
    VerdictCacheCounters counters;
    uint64_t version = uint64_t{99} << 40;
    // Bounded as well, in case a lookup thread dies.
    for (int i = 0; i < iterations * 4 && running.load() > 0; ++i) {
      const uint64_t id = rng.next() % keys;
      const VerdictKey key = key_of(id);
      cache->insert(key, value_of(key, id, ++version), kNow, counters);
    }
    add(totals, counters, 0);
  });
  for (std::thread& thread : threads) thread.join();

  std::printf("%s: %d lookups per thread x %d, hits %llu, inserts %llu, evictions %llu, insert races %llu, torn %llu\n",
              name, iterations, kLookupThreads, static_cast<unsigned long long>(totals.hits.load()),
              static_cast<unsigned long long>(totals.inserts.load()),
              static_cast<unsigned long long>(totals.evictions.load()),
              static_cast<unsigned long long>(totals.races.load()), static_cast<unsigned long long>(totals.torn.load()));
  bool ok = true;
  if (totals.torn.load() != 0) {
    std::fprintf(stderr, "%s: FAIL: %llu hits returned a value no writer inserted for that key\n", name,
                 static_cast<unsigned long long>(totals.torn.load()));
    ok = false;
  }
  // Without hits and overwrites nothing above was tested.
  if (totals.hits.load() == 0 || totals.inserts.load() == 0) {
    std::fprintf(stderr, "%s: FAIL: no hits or no inserts\n", name);
    ok = false;
  }
  return ok;
}

}  // namespace

int main() {
  bool ok = true;
  // A few keys in a few buckets: the same entries are read and rewritten all
  // the time (seqlock retries, lost claims).
  ok = run_phase("hot", 8, 12, 40000) && ok;
  // More keys than entries: lookups, misses and evictions everywhere.
  ok = run_phase("spread", 64, 400, 40000) && ok;
  std::puts(ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
