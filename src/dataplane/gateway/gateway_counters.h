#pragma once
// The TLS gateway's counters, per worker (written by that worker only, read
// by telemetry and the exit report, summed over workers there). Handshake
// outcomes are kept per host and per verification reason, so an operator can
// see which host refuses which clients, and why.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/counter.h"
#include "dataplane/tls/verify_reason.h"

namespace mtlsgw::gateway {

#define MTLSGW_GATEWAY_COUNTERS(X)                                                      \
  X(accepted)              /* client connections given a session */                    \
  X(overload)              /* refused: no session slot */                              \
  X(handshakes_ok)                                                                      \
  X(handshakes_failed)                                                                  \
  X(resumed)               /* handshakes_ok that resumed a session */                  \
  X(records_offloaded)     /* handshakes_ok switched to our record layer */            \
  X(no_host)               /* ClientHello for no configured host, no default */        \
  X(handshake_timeouts)                                                                 \
  X(idle_timeouts)                                                                      \
  X(client_resets)         /* client sent RST or its TCP failed */                     \
  X(client_truncated)      /* client FIN without close_notify (RFC 8446 6.1) */        \
  X(upstream_connects)                                                                  \
  X(upstream_refused)                                                                   \
  X(upstream_unreachable)                                                               \
  X(upstream_timed_out)                                                                 \
  X(upstream_reset)                                                                     \
  X(bytes_from_client)     /* plaintext */                                              \
  X(bytes_to_client)                                                                    \
  X(http_local_responses)  /* 4xx/5xx written by the gateway itself */                 \
  X(access_log_dropped)    /* records the log queue had no room for */              \
  X(tables_adopted)        /* publications taken over from the control thread */        \
  X(policies_adopted)      /* revocation/rule policies first seen */                  \
  X(revoked_refused)       /* resumed sessions refused: their certificate is revoked */ \
  X(revoked_closed)        /* live connections closed by revoke add --close */          \
  X(rules_blocked_connections) /* connections a rule blocked after the handshake */  \
  X(rules_blocked_requests)    /* http requests a rule answered with 403 */         \
  X(rules_allowed)             /* evaluations an allow rule decided */              \
  X(rules_logged)              /* log rule hits */                                  \
  X(verify_cache_hits)     /* full handshakes whose chain verdict came from the cache */ \
  X(verify_cache_misses)   /* full handshakes that verified the chain */

struct GatewayCounters {
#define MTLSGW_GATEWAY_FIELD(name) Counter name;
  MTLSGW_GATEWAY_COUNTERS(MTLSGW_GATEWAY_FIELD)
#undef MTLSGW_GATEWAY_FIELD
  Counter active;      // gauge: sessions in use
  Counter http_slots;  // gauge: `http` exchange slots in use
  Counter ssl_pool_idle;  // gauge: SSL objects waiting in the worker's free list

  template <typename Fn>
  void visit(Fn&& fn) const {
#define MTLSGW_GATEWAY_VISIT(name) fn(#name, name.get());
    MTLSGW_GATEWAY_COUNTERS(MTLSGW_GATEWAY_VISIT)
#undef MTLSGW_GATEWAY_VISIT
  }
};

struct HostCounters {
  Counter handshakes_ok;
  Counter handshakes_failed;
  // optional mode: handshakes that passed with a missing or failed certificate
  Counter passed_unverified;
  // Every verification outcome of a full handshake on an mtls host, ok
  // included; a resumption is not verified again and not counted here.
  Counter verify[tls::kVerifyReasonCount];
};

// One worker's host counters, indexed like GatewayTables' hosts.
class HostCounterTable {
 public:
  explicit HostCounterTable(size_t hosts) : size_(hosts), hosts_(std::make_unique<HostCounters[]>(hosts)) {}
  size_t size() const noexcept { return size_; }
  HostCounters& operator[](size_t host) noexcept { return hosts_[host]; }
  const HostCounters& operator[](size_t host) const noexcept { return hosts_[host]; }

 private:
  size_t size_;
  std::unique_ptr<HostCounters[]> hosts_;
};

}  // namespace mtlsgw::gateway
