#pragma once
// Built-in TCP services selectable per listener (issue 3): they let the stack
// be tested end to end before TLS sits on top of it, and the relay is the
// path TLS will later use towards origins.
//   echo    (RFC 862)  sends back what it receives
//   discard (RFC 863)  reads and drops
//   chargen (RFC 864)  streams a character pattern until the peer closes
//   relay              opens a connection to an upstream per client and
//                      splices the two, carrying half-closes and resets
//   tls                the gateway itself (dataplane/gateway/tls_gateway.h):
//                      mTLS termination per host, forwarding to its origin

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/net/ipv4_address.h"
#include "dataplane/net/tcp_app.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::gateway {
struct GatewaySpec;
}

namespace mtlsgw::services {

struct ServiceSpec {
  std::string kind;  // echo, discard, chargen, relay, tls
  net::Ipv4Address upstream_ip = 0;  // relay
  uint16_t upstream_port = 0;
  uint16_t port = 0;  // the listener's
  std::shared_ptr<const gateway::GatewaySpec> gateway;  // tls
};

// One instance per worker and listener. interfaces: the worker's, the first
// being where active opens leave from when no interface has the upstream
// on-link. Null, with `error` saying why, for an unknown kind or tables that
// cannot be built.
std::unique_ptr<net::tcp::TcpApp> make_service(const ServiceSpec& spec,
                                               const std::vector<net::Interface*>& interfaces,
                                               std::string& error);

}  // namespace mtlsgw::services
