#include "control/gateway_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace mtlsgw::control {

namespace {

tls::MtlsMode tls_mode(MtlsMode mode) {
  switch (mode) {
    case MtlsMode::off:
      return tls::MtlsMode::off;
    case MtlsMode::optional:
      return tls::MtlsMode::optional;
    case MtlsMode::required:
      return tls::MtlsMode::required;
  }
  return tls::MtlsMode::required;
}

gateway::ForwardMode forward_mode(ForwardMode mode) {
  switch (mode) {
    case ForwardMode::tcp:
      return gateway::ForwardMode::tcp;
    case ForwardMode::proxy_v2:
      return gateway::ForwardMode::proxy_v2;
    case ForwardMode::http:
      return gateway::ForwardMode::http;
  }
  return gateway::ForwardMode::tcp;
}

// One trust store for every host that lists the same CAs (in any order).
std::shared_ptr<const tls::TrustStore> trust_for(const Config& config, const HostConfig& host,
                                                 TrustStoreCache& built, const TrustStoreCache* earlier,
                                                 std::string& error, std::vector<std::string>& warnings) {
  std::vector<std::string> names = host.client_cas;
  std::sort(names.begin(), names.end());
  // Everything the store is built from, byte for byte: equal keys build
  // equal stores.
  std::string key;
  for (const std::string& name : names) {
    const CaConfig* ca = config.find_ca(name);
    if (ca == nullptr) continue;  // refused below
    key += fmt::format("{}\n{}\n{}\n{}\n{}\n", name.size(), name, ca->cert_pem.size(), ca->crl_pem.size(),
                       ca->max_depth);
    key += ca->cert_pem;
    key += ca->crl_pem;
  }
  if (auto it = built.find(key); it != built.end()) return it->second;
  if (earlier != nullptr) {
    if (auto it = earlier->find(key); it != earlier->end()) {
      built.emplace(key, it->second);
      return it->second;
    }
  }
  const std::vector<std::string>& sorted = names;
  std::vector<tls::CaSource> sources;
  // OpenSSL's depth limit is one number per store; a host that trusts CAs
  // with different max_depth gets the largest (docs/config.md says so).
  uint32_t max_depth = 1;
  for (const std::string& name : sorted) {
    const CaConfig* ca = config.find_ca(name);
    if (ca == nullptr) {
      error = fmt::format("host {}: unknown CA \"{}\"", host.name, name);
      return nullptr;
    }
    sources.push_back(tls::CaSource{ca->name, ca->cert_pem, ca->crl_pem});
    max_depth = std::max(max_depth, ca->max_depth);
  }
  tls::TrustOptions options;
  options.max_intermediates = static_cast<int>(max_depth) - 1;
  std::string why;
  std::shared_ptr<const tls::TrustStore> store = tls::TrustStore::build(sources, options, &why);
  if (!store) {
    error = fmt::format("host {}: client CAs: {}", host.name, why);
    return nullptr;
  }
  for (const std::string& warning : store->warnings()) {
    warnings.push_back(fmt::format("host {}: {}", host.name, warning));
  }
  built.emplace(std::move(key), store);
  return store;
}

}  // namespace

std::shared_ptr<const gateway::GatewaySpec> make_gateway_spec(const Config& config, std::string& error,
                                                              std::vector<std::string>& warnings,
                                                              const std::shared_ptr<gateway::HostSlots>& slots,
                                                              uint64_t generation, TrustStoreCache* stores) {
  auto spec = std::make_shared<gateway::GatewaySpec>();
  spec->generation = generation;
  spec->host_slots = slots;
  std::vector<std::string> live;
  for (const HostConfig& host : config.hosts) live.push_back(host.name);
  TrustStoreCache built;
  for (const HostConfig& host : config.hosts) {
    gateway::GatewayHost out;
    out.tls.name = host.name;
    out.tls.cert_chain_pem = host.cert_pem;
    out.tls.key_pem = host.key_pem;
    out.tls.mtls = tls_mode(host.mtls);
    out.tls.alpn = host.alpn;
    out.tls.min_version = host.min_version == TlsVersion::tls1_3 ? tls::MinTlsVersion::tls1_3
                                                                 : tls::MinTlsVersion::tls1_2;
    out.tls.early_data = host.early_data;
    out.tls.default_host = !config.default_host.empty() && host.name == config.default_host;
    if (host.mtls != MtlsMode::off) {
      out.trust = trust_for(config, host, built, stores, error, warnings);
      if (!out.trust) return nullptr;
    }
    out.route.upstream_ip = host.upstream_ip;
    out.route.upstream_port = host.upstream_port;
    out.route.forward = forward_mode(host.forward);
    out.route.handshake_timeout_ms = host.handshake_timeout_ms;
    out.route.idle_timeout_ms = host.idle_timeout_ms;
    out.route.connect_timeout_ms = host.connect_timeout_ms;
    if (slots) {
      out.counter_slot = slots->assign(host.name, live);
      if (out.counter_slot == gateway::HostSlots::kNoSlot) {
        error = fmt::format("host {}: more than {} hosts", host.name, slots->capacity());
        return nullptr;
      }
    }
    spec->hosts.push_back(std::move(out));
  }
  if (stores != nullptr) *stores = std::move(built);
  return spec;
}

}  // namespace mtlsgw::control
