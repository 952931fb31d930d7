#pragma once
// What the TLS gateway's source files share and nobody else needs: the
// per-worker scratch sizes, clocks, and the `http` connection slot.

#include <chrono>
#include <cstdint>

#include "dataplane/forward/http_exchange.h"
#include "dataplane/tls/tls_session.h"

namespace mtlsgw::gateway {

// Decrypted client bytes per pass, and the room for a PROXY v2 header
// (at most 16 + 65535 bytes, proxy_v2.h).
inline constexpr uint32_t kScratchBytes = 16 + 65535;
inline constexpr uint32_t kPlainChunk = tls::TlsSession::kMaxRecordPlaintext;

constexpr uint64_t ms_to_us(uint32_t ms) { return uint64_t{ms} * 1000; }

// Wall-clock time, read once per gateway to tie the stack's monotonic
// clock to it (TlsGateway::unix_us): never per segment.
inline int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One `http` connection's exchange and its buffers, from a pool made at
// construction. The buffers are left uninitialised, so the pool's memory is
// only backed once a connection touches it.
struct HttpSlot {
  static constexpr uint32_t kHeadBytes = 8192;
  static constexpr uint32_t kRewrittenBytes = 32768;
  char request_head[kHeadBytes];
  char response_head[kHeadBytes];
  char rewritten[kRewrittenBytes];
  // Decrypted client bytes the exchange has not taken yet (it stops at a
  // head that does not fit the origin's room, at the pipelining limit, or
  // after a request it answers itself).
  uint8_t carry[kPlainChunk];
  uint32_t carry_len = 0;
  bool origin_end_told = false;
  forward::http::HttpExchange exchange;

  HttpSlot()
      : exchange(forward::http::ExchangeBuffers{{request_head, kHeadBytes},
                                                {response_head, kHeadBytes},
                                                {rewritten, kRewrittenBytes}}) {}
};

}  // namespace mtlsgw::gateway
