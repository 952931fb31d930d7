#pragma once
// What the TLS gateway service knows about its hosts, in two forms:
//
// - GatewaySpec: the description the control side builds from the config
//   (file paths, parsed and checked trust stores, routes). Immutable and
//   shared by every worker; nothing in it is used on the packet path.
// - GatewayTables: one worker's private objects made from it before the
//   worker runs: its SSL_CTX per host (tls_context.h), its own copy of each
//   host's trust store (trust_store.h) and one ClientVerifier. No handshake
//   on one worker touches an OpenSSL object another worker writes (see
//   trust_store.h and tls_context.h for why that matters in OpenSSL 3.0).
//
// A control-socket change builds new GatewayTables for every worker off to
// the side and publishes them with one pointer swap per worker
// (TlsGateway::publish); connections keep the tables they started with, and
// a worker hands superseded tables back once no connection uses them.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/gateway/host_slots.h"
#include "dataplane/net/ipv4_address.h"
#include "dataplane/tls/client_verify.h"
#include "dataplane/tls/tls_context.h"
#include "dataplane/tls/trust_store.h"

namespace mtlsgw::gateway {

enum class ForwardMode : uint8_t {
  tcp,       // bytes both ways, unchanged
  proxy_v2,  // a PROXY protocol v2 header first (forward/proxy_v2.h), then bytes
  http,      // HTTP/1.1 aware, identity fields on every request (forward/http_exchange.h)
};
const char* name_of(ForwardMode mode) noexcept;

// Where a host's verified traffic goes, and how long each phase may take.
struct HostRoute {
  net::Ipv4Address upstream_ip = 0;
  uint16_t upstream_port = 0;
  ForwardMode forward = ForwardMode::tcp;
  uint32_t handshake_timeout_ms = 10'000;
  uint32_t idle_timeout_ms = 300'000;
  uint32_t connect_timeout_ms = 5'000;
};

struct GatewayHost {
  tls::TlsHostSpec tls;  // client_store and verifier are set per worker
  // The CAs its client certificates must chain to; null when mtls is off.
  std::shared_ptr<const tls::TrustStore> trust;
  HostRoute route;
  // Its per-host counters (host_slots.h); kNoSlot: its position in hosts.
  uint32_t counter_slot = HostSlots::kNoSlot;
};

struct GatewaySpec {
  std::vector<GatewayHost> hosts;
  tls::TlsContextOptions tls_options;
  // Counts the publications (1 for the tables a gateway starts with); shown
  // in stats and logs so that an operator can tell which tables served.
  uint64_t generation = 1;
  // Names of the counter slots, shared by every publication of a gateway;
  // null: build() makes one, slots by position.
  std::shared_ptr<HostSlots> host_slots;
};

class GatewayTables {
 public:
  // A worker's tables; null with `error` saying which host failed and why.
  // Control path (allocates, reads certificate and key files).
  static std::unique_ptr<GatewayTables> build(const GatewaySpec& spec, std::string& error);

  GatewayTables(const GatewayTables&) = delete;
  GatewayTables& operator=(const GatewayTables&) = delete;
  ~GatewayTables();

  const tls::TlsContexts& contexts() const noexcept { return *contexts_; }
  uint32_t host_count() const noexcept { return static_cast<uint32_t>(routes_.size()); }
  const HostRoute& route(uint32_t host) const noexcept { return routes_[host]; }
  const std::string& host_name(uint32_t host) const noexcept { return contexts_->host(host).name; }
  tls::MtlsMode mtls(uint32_t host) const noexcept { return contexts_->host(host).mtls; }
  // SHA-256 fetched once (EVP_MD_fetch), for certificate fingerprints.
  const EVP_MD* sha256() const noexcept { return sha256_.get(); }
  uint64_t generation() const noexcept { return generation_; }
  // A host's client trust on this worker; null when its mtls is off.
  const tls::WorkerTrust* trust(uint32_t host) const noexcept { return trusts_[host].get(); }
  const std::shared_ptr<HostSlots>& host_slots() const noexcept { return host_slots_; }
  uint32_t counter_slot(uint32_t host) const noexcept { return counter_slots_[host]; }
  // The highest counter slot + 1: the HostCounterTable these tables need.
  uint32_t counter_slots_needed() const noexcept { return counter_slots_needed_; }

  // Worker-owned bookkeeping (TlsGateway): sessions that started on these
  // tables, and the link of the list superseded tables wait on until the
  // control thread frees them. Only the owning worker touches users.
  uint32_t users = 0;
  GatewayTables* retired_next = nullptr;

  // The seam between TlsContexts' verify hook and ClientVerifier: the hook's
  // argument for one host. Public for the callback only.
  struct HostTrust {
    const tls::WorkerTrust* trust = nullptr;
    tls::ClientVerifier* verifier = nullptr;
    const EVP_MD* sha256 = nullptr;
  };

 private:
  GatewayTables() = default;

  std::vector<std::unique_ptr<tls::WorkerTrust>> trusts_;  // per host, null when mtls is off
  std::unique_ptr<tls::ClientVerifier> verifier_;
  std::unique_ptr<HostTrust[]> host_trust_;  // stable addresses: the verify hook keeps them
  std::unique_ptr<tls::TlsContexts> contexts_;
  std::vector<HostRoute> routes_;
  std::vector<uint32_t> counter_slots_;
  uint32_t counter_slots_needed_ = 0;
  uint64_t generation_ = 0;
  std::shared_ptr<HostSlots> host_slots_;
  EvpMdHandle sha256_;
};

}  // namespace mtlsgw::gateway
