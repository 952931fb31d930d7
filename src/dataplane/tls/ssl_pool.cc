#include "dataplane/tls/ssl_pool.h"

#include <openssl/err.h>

#include "dataplane/tls/openssl_heap.h"
#include "dataplane/tls/transport_bio.h"

namespace mtlsgw::tls {

SslPool::SslPool(SSL_CTX* front, uint32_t max_idle) : front_(front), max_idle_(max_idle) {
  idle_.reserve(max_idle);
}

SslPool::~SslPool() {
  for (SSL* ssl : idle_) SSL_free(ssl);
}

SSL* SslPool::create() noexcept {
  const int64_t heap_before = openssl_heap_bytes_this_thread();
  SSL* ssl = SSL_new(front_);
  if (ssl == nullptr) return nullptr;
  BIO* bio = new_transport_bio();
  if (bio == nullptr) {
    SSL_free(ssl);
    return nullptr;
  }
  // One BIO both ways: SSL_set_bio takes the single reference.
  SSL_set_bio(ssl, bio, bio);
  ++created_;
  const int64_t heap_after = openssl_heap_bytes_this_thread();
  if (heap_before >= 0 && heap_after > heap_before) {
    ssl_bytes_.store(static_cast<uint64_t>(heap_after - heap_before), std::memory_order_relaxed);
  }
  return ssl;
}

uint32_t SslPool::prefill(uint32_t count) noexcept {
  while (idle_.size() < count && idle_.size() < max_idle_) {
    SSL* ssl = create();
    if (ssl == nullptr) break;
    idle_.push_back(ssl);
  }
  return idle();
}

SSL* SslPool::acquire() noexcept {
  SSL* ssl = nullptr;
  if (!idle_.empty()) {
    ssl = idle_.back();
    idle_.pop_back();
    ++reused_;
  } else {
    ssl = create();
    if (ssl == nullptr) return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

void SslPool::release(SSL* ssl) noexcept {
  if (ssl == nullptr) return;
  bind_transport(SSL_get_rbio(ssl), nullptr);
  SSL_set_app_data(ssl, nullptr);
  // SSL_clear keeps the last session referenced until the next handshake;
  // letting it go now frees the client certificate it holds.
  const bool cleared = SSL_clear(ssl) == 1 && SSL_set_session(ssl, nullptr) == 1;
  // An idle SSL keeps no record buffers (about 34 KiB) while it waits.
  SSL_free_buffers(ssl);
  if (!cleared) ERR_clear_error();
  if (!cleared || idle_.size() >= max_idle_) {
    SSL_free(ssl);
    return;
  }
  idle_.push_back(ssl);
}

void SslPool::discard(SSL* ssl) noexcept {
  if (ssl == nullptr) return;
  bind_transport(SSL_get_rbio(ssl), nullptr);
  SSL_set_app_data(ssl, nullptr);
  SSL_free(ssl);
}

uint32_t SslPool::rebase(SSL_CTX* front) noexcept {
  const auto refill = static_cast<uint32_t>(idle_.size());
  for (SSL* ssl : idle_) SSL_free(ssl);
  idle_.clear();
  front_ = front;
  return prefill(refill);
}

}  // namespace mtlsgw::tls
