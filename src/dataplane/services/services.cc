#include "dataplane/services/services.h"

#include "dataplane/net/interface.h"
#include "dataplane/services/discard.h"
#include "dataplane/services/echo.h"
#include "dataplane/services/relay.h"

namespace mtlsgw::services {

std::unique_ptr<net::tcp::TcpApp> make_service(const ServiceSpec& spec, net::Interface& interface) {
  if (spec.kind == "echo") return std::make_unique<Echo>();
  if (spec.kind == "discard") return std::make_unique<Discard>();
  if (spec.kind == "chargen") return std::make_unique<Chargen>();
  if (spec.kind == "relay") {
    const uint32_t max_pairs = interface.tcp() != nullptr ? interface.tcp()->config().max_connections / 2 : 0;
    return std::make_unique<Relay>(interface, spec.upstream_ip, spec.upstream_port, max_pairs);
  }
  return nullptr;
}

}  // namespace mtlsgw::services
