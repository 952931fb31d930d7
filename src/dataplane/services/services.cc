#include "dataplane/services/services.h"

#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/net/interface.h"
#include "dataplane/services/discard.h"
#include "dataplane/services/echo.h"
#include "dataplane/services/relay.h"

namespace mtlsgw::services {

namespace {

// Active opens towards ip leave from the interface that has it on-link, else
// from the first one (through its gateway).
net::Interface& egress_for(net::Ipv4Address ip, const std::vector<net::Interface*>& interfaces) {
  for (net::Interface* iface : interfaces) {
    if (iface->config().address.contains(ip)) return *iface;
  }
  return *interfaces.front();
}

}  // namespace

std::unique_ptr<net::tcp::TcpApp> make_service(const ServiceSpec& spec,
                                               const std::vector<net::Interface*>& interfaces,
                                               std::string& error) {
  if (spec.kind == "echo") return std::make_unique<Echo>();
  if (spec.kind == "discard") return std::make_unique<Discard>();
  if (spec.kind == "chargen") return std::make_unique<Chargen>();
  if (interfaces.empty() || interfaces.front()->tcp() == nullptr) {
    error = "no interface with TCP";
    return nullptr;
  }
  net::tcp::TcpStack& stack = *interfaces.front()->tcp();
  // A relay pair and a gateway session each hold two connections.
  const uint32_t max_pairs = stack.config().max_connections / 2;
  if (spec.kind == "relay") {
    return std::make_unique<Relay>(egress_for(spec.upstream_ip, interfaces), spec.upstream_ip,
                                   spec.upstream_port, max_pairs);
  }
  if (spec.kind == "tls") {
    if (!spec.gateway) {
      error = "no TLS hosts configured";
      return nullptr;
    }
    auto tables = gateway::GatewayTables::build(*spec.gateway, error);
    if (!tables) return nullptr;
    gateway::GatewayLimits limits;
    limits.max_sessions = max_pairs;
    limits.http_exchanges = std::min<uint32_t>(limits.http_exchanges, max_pairs);
    return std::make_unique<gateway::TlsGateway>(stack, interfaces, std::move(tables), limits, spec.port);
  }
  error = "unknown service";
  return nullptr;
}

}  // namespace mtlsgw::services
