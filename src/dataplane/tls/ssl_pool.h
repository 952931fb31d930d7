#pragma once
// A worker's free list of SSL objects, each with its transport BIO, so that a
// new connection reuses one with SSL_clear instead of SSL_new + BIO_new
// (-4% server CPU standalone, up to -10% with the other levers:
// research/openssl-3.0-levers.md). The worker owns it; no lock.

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace mtlsgw::tls {

class SslPool {
 public:
  // SSLs come from `front` (TlsContexts::front()); at most max_idle are kept.
  SslPool(SSL_CTX* front, uint32_t max_idle);
  ~SslPool();
  SslPool(const SslPool&) = delete;
  SslPool& operator=(const SslPool&) = delete;

  // Makes count SSLs ahead, so that the first connections do not allocate
  // them. Returns how many the list holds.
  uint32_t prefill(uint32_t count) noexcept;

  // An SSL in accept state with its transport BIO, or nullptr when OpenSSL
  // cannot allocate one.
  SSL* acquire() noexcept;
  // Back to the list, cleared; freed instead when the list is full or
  // SSL_clear refuses. A session that did not end with our close_notify is
  // dropped from the cache by SSL_clear (RFC 5246 7.2.1's rule OpenSSL
  // keeps): it cannot be resumed.
  void release(SSL* ssl) noexcept;
  // Frees an SSL instead of keeping it: one made from a front context the
  // pool no longer serves.
  void discard(SSL* ssl) noexcept;
  // New tables were published: SSLs from now on come from `front`. The idle
  // ones are bound to the old contexts and are freed; as many are made
  // anew, so the next connections still find them ready. Returns idle().
  uint32_t rebase(SSL_CTX* front) noexcept;

  uint32_t idle() const noexcept { return static_cast<uint32_t>(idle_.size()); }
  uint64_t created() const noexcept { return created_; }
  uint64_t reused() const noexcept { return reused_; }
  // Heap bytes of one SSL with its BIO as made (openssl_heap.h; 0 when not
  // counted): what each idle SSL of the list holds, since release() gives
  // its record buffers back. Any thread may ask.
  uint64_t ssl_bytes() const noexcept { return ssl_bytes_.load(std::memory_order_relaxed); }

 private:
  SSL* create() noexcept;

  SSL_CTX* front_;
  uint32_t max_idle_;
  std::vector<SSL*> idle_;
  uint64_t created_ = 0;
  uint64_t reused_ = 0;
  std::atomic<uint64_t> ssl_bytes_{0};
};

}  // namespace mtlsgw::tls
