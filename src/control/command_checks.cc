#include "control/command_checks.h"

#include <algorithm>

#include "control/gateway_spec.h"
#include "control/policy_builder.h"
#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/tls/trust_store.h"

namespace mtlsgw::control {

namespace {

// The host alone with the CAs it lists: its certificate, key and chain, and
// its trust store, as one worker would build them.
std::string check_host(const Config& state, const HostConfig& host) {
  Config alone;
  for (const std::string& name : host.client_cas) {
    if (const CaConfig* ca = state.find_ca(name)) alone.cas.push_back(*ca);
  }
  alone.hosts.push_back(host);
  std::string error;
  std::vector<std::string> warnings;
  std::shared_ptr<const gateway::GatewaySpec> spec = make_gateway_spec(alone, error, warnings);
  if (!spec) return error;
  if (!gateway::GatewayTables::build(*spec, error)) return error;
  return "";
}

std::string check_ca(const CaConfig& ca) {
  tls::TrustOptions options;
  options.max_intermediates = static_cast<int>(std::max<uint32_t>(ca.max_depth, 1)) - 1;
  std::string error;
  if (!tls::TrustStore::build({tls::CaSource{ca.name, ca.cert_pem, ca.crl_pem}}, options, &error)) return error;
  return "";
}

}  // namespace

CommandChecks make_command_checks() {
  CommandChecks checks;
  checks.host = check_host;
  checks.ca = check_ca;
  checks.rule = check_rule;
  return checks;
}

}  // namespace mtlsgw::control
