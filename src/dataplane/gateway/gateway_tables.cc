#include "dataplane/gateway/gateway_tables.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>

#include "dataplane/tls/client_identity_extract.h"

namespace mtlsgw::gateway {

namespace {

// TlsContexts' verify hook for a host: points the connection's
// HandshakeVerify (attached by the gateway before the handshake) at this
// host's trust, then runs the shared verifier through
// handshake_verify_callback. It always asks for a refusal on failure;
// TlsContexts' wrapper turns that into a pass for an `optional` host and
// keeps the X509 error as the session's verify result.
int verify_for_host(X509_STORE_CTX* store_ctx, void* arg) {
  const auto& host = *static_cast<const GatewayTables::HostTrust*>(arg);
  const auto* ssl =
      static_cast<const SSL*>(X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  tls::HandshakeVerify* state = ssl != nullptr ? tls::handshake_verify_of(ssl) : nullptr;
  if (state != nullptr) {
    state->trust = host.trust;
    state->verifier = host.verifier;
    state->required = true;
  }
  const int result = tls::handshake_verify_callback(store_ctx, nullptr);
  if (state != nullptr && !state->verdict.ok() && state->refused_identity != nullptr) {
    tls::extract_certificate_identity(X509_STORE_CTX_get0_cert(store_ctx), state->refused_identity, host.sha256);
  }
  return result;
}

}  // namespace

const char* name_of(ForwardMode mode) noexcept {
  switch (mode) {
    case ForwardMode::tcp:
      return "tcp";
    case ForwardMode::proxy_v2:
      return "proxy_v2";
    case ForwardMode::http:
      return "http";
  }
  return "?";
}

GatewayTables::~GatewayTables() = default;

std::unique_ptr<GatewayTables> GatewayTables::build(const GatewaySpec& spec, std::string& error) {
  std::unique_ptr<GatewayTables> self(new GatewayTables());
  self->verifier_ = tls::ClientVerifier::create();
  self->sha256_.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!self->verifier_ || !self->sha256_) {
    error = "out of memory";
    return nullptr;
  }
  const size_t count = spec.hosts.size();
  self->host_trust_ = std::make_unique<HostTrust[]>(count);
  std::vector<tls::TlsHostSpec> tls_hosts;
  tls_hosts.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const GatewayHost& host = spec.hosts[i];
    tls::TlsHostSpec tls_spec = host.tls;
    std::unique_ptr<tls::WorkerTrust> trust;
    if (host.trust) {
      trust = host.trust->instantiate(&error);
      if (!trust) {
        error = "host " + host.tls.name + ": " + error;
        return nullptr;
      }
      self->host_trust_[i] = HostTrust{trust.get(), self->verifier_.get(), self->sha256_.get()};
      // The store serves the CertificateRequest's CA names; verification
      // goes through verify_for_host.
      tls_spec.client_store = trust->store();
      tls_spec.verify_depth = trust->max_intermediates();
      tls_spec.verifier = tls::ClientCertVerifier{verify_for_host, &self->host_trust_[i]};
    }
    self->trusts_.push_back(std::move(trust));
    self->routes_.push_back(host.route);
    const uint32_t slot = host.counter_slot != HostSlots::kNoSlot ? host.counter_slot : static_cast<uint32_t>(i);
    self->counter_slots_.push_back(slot);
    self->counter_slots_needed_ = std::max(self->counter_slots_needed_, slot + 1);
    tls_hosts.push_back(std::move(tls_spec));
  }
  self->generation_ = spec.generation;
  self->host_slots_ = spec.host_slots;
  if (!self->host_slots_) {
    self->host_slots_ = std::make_shared<HostSlots>(std::max<uint32_t>(self->counter_slots_needed_, 1));
    for (const GatewayHost& host : spec.hosts) self->host_slots_->assign(host.tls.name, {});
  }
  self->contexts_ = tls::TlsContexts::build(tls_hosts, spec.tls_options, error);
  if (!self->contexts_) return nullptr;
  return self;
}

}  // namespace mtlsgw::gateway
