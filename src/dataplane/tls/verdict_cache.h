#pragma once
// Verdicts of client-certificate chain verification, shared by all workers,
// so that a returning device skips X509_verify_cert (chain building, the
// chain's signatures, CRL lookups and their signatures): 300-380 µs of a
// ~1.1 ms TLS 1.3 mTLS handshake on OpenSSL 3.0 (shared/research
// openssl-3.0-levers.md, "verify-verdict cache"; perf/verify_bench measures
// ours). Only the chain verdict is cached: the gateway replaces libssl's
// chain verification (SSL_CTX_set_cert_verify_callback) and nothing else, so
// libssl still checks the client's CertificateVerify signature against the
// leaf's key on every handshake, hit or miss. A cached verdict vouches for a
// certificate, never for possession of its key.
//
// Key: SHA-256 of the leaf's DER and the generation of the TrustStore it was
// verified against (trust_store.h). Everything else the verdict depends on
// comes from that store (CAs, CRLs, depth, purpose), and a new CA set or CRL
// is a new TrustStore, so exactly the verdicts of the replaced store miss and
// other stores' entries stay valid; nothing needs flushing, the old ones age
// out. The intermediates the client sends are not in the key: a leaf once
// chained to a trusted root through a genuine intermediate is that
// certificate's fact, whoever supplies the intermediate the next time.
//
// Value: the chain's revocation keys (leaf to root, RevocationKeys), because
// operator revocations are not in the key: they are checked on every
// handshake against these (revocation_set.h), so a revocation neither waits
// for an entry to expire nor invalidates anyone else's. Plus the window in
// which the verdict holds: from the verification time (earlier times miss:
// the verdict says nothing about them, so neither a notBefore nor a CRL's
// lastUpdate can be crossed backwards) to the earliest of every chain
// certificate's notAfter, the store's earliest CRL nextUpdate and insertion
// + ttl (a bound on what a cached verdict can miss that no key captures).
// Only ok verdicts are stored: a refusal costs a full verification again,
// which is cheap compared with what a refused client makes us do anyway,
// and refusals are time-dependent (not yet valid, a stale CRL that is about
// to be replaced), so caching them would need more rules for little gain.
//
// Layout: set-associative, kWays = 4 entries per bucket, the bucket chosen
// by the key's SHA-256 bits mixed with the generation (a client cannot steer
// it: only certificates a trusted CA signed are ever stored). One entry is
// six cache lines (384 B; 65,536 entries: 24 MiB), its first line holding
// the sequence word, the key and the window, so a miss reads one line per
// way. Insertion replaces, in order: the same key, an empty entry, an
// expired one, the oldest (earliest verification time); a bucket full of
// live entries counts an eviction.
//
// Concurrency: every word is a std::atomic<uint64_t>, so nothing is a data
// race under the C++ memory model, with a per-entry sequence counter
// (seqlock). A reader loads the counter (acquire), skips the entry if odd
// (being written), copies the words (relaxed), fences (acquire) and reloads
// the counter: unchanged means the copy is one writer's whole value. A
// writer claims an entry by CAS from the even value it saw to odd (losing
// the race means giving up the insert: it is only a cache), fences
// (release) so no payload store overtakes the odd value, stores the words
// (relaxed) and publishes the next even value (release); see Boehm, "Can
// Seqlocks Get Along With Programming Language Memory Models?" (MSPC 2012).
// A lookup writes nothing shared: hits stay in each core's cache; only
// inserts (misses) move lines between cores. Counters live in the caller's
// own block (VerdictCacheCounters, one per worker).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/tls/revocation_set.h"

namespace mtlsgw::tls {

// Leaf, intermediates and root of the chains the cache keeps: docs/config.md's
// default max_depth 4 allows three intermediates. A longer chain (a CA with a
// larger max_depth) is verified in full every time.
inline constexpr std::size_t kMaxCachedChain = 5;

struct VerdictKey {
  std::array<uint8_t, kSha256Bytes> leaf_sha256{};
  uint64_t trust_generation = 0;  // TrustStore::generation(), never 0
};

// An ok verdict: the chain OpenSSL built and when the verdict holds.
struct CachedVerdict {
  int64_t valid_from = 0;  // epoch seconds, the verification time
  int64_t expires_at = 0;  // first second it no longer holds
  uint32_t chain_length = 0;  // 1..kMaxCachedChain
  std::array<RevocationKeys, kMaxCachedChain> chain{};  // [0] the leaf; its fingerprint is the key's
};

// Per worker; lookups = hits + misses, expired counts the misses that found
// their key outside its window (at a CRL's nextUpdate, say).
struct VerdictCacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expired = 0;
  uint64_t inserts = 0;
  uint64_t evictions = 0;     // a live entry of another key pushed out
  uint64_t insert_races = 0;  // another writer held the entry: not inserted
};

struct VerdictCacheOptions {
  std::size_t entries = 65536;  // rounded up to a power of two, at least kWays
  uint32_t ttl_seconds = 3600;
};

class VerdictCache {
 public:
  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kMaxEntries = std::size_t{1} << 24;

  // Control thread. Null with *error on options out of range (no entries,
  // more than kMaxEntries, a zero ttl).
  static std::unique_ptr<VerdictCache> create(const VerdictCacheOptions& options, std::string* error);

  // Any worker, concurrently with inserts. True with *out when key has an
  // entry whose window holds at_epoch. No allocation, no shared write.
  bool lookup(const VerdictKey& key, int64_t at_epoch, CachedVerdict* out,
              VerdictCacheCounters& counters) const noexcept;

  // Any worker. Stores an ok verdict reached at now_epoch; its expiry is cut
  // to now_epoch + ttl. False when not stored: an empty window or a chain
  // longer than kMaxCachedChain, or a race lost to another writer.
  bool insert(const VerdictKey& key, const CachedVerdict& verdict, int64_t now_epoch,
              VerdictCacheCounters& counters) noexcept;

  ~VerdictCache();
  VerdictCache(const VerdictCache&) = delete;
  VerdictCache& operator=(const VerdictCache&) = delete;

  std::size_t capacity() const noexcept { return (bucket_mask_ + 1) * kWays; }
  uint32_t ttl_seconds() const noexcept { return ttl_seconds_; }

  struct Entry;  // verdict_cache.cc

 private:
  VerdictCache() = default;
  std::size_t bucket_start(const VerdictKey& key) const noexcept;

  std::unique_ptr<Entry[]> entries_;
  std::size_t bucket_mask_ = 0;
  uint32_t ttl_seconds_ = 0;
};

}  // namespace mtlsgw::tls
