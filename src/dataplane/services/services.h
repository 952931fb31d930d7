#pragma once
// Built-in TCP services selectable per listener (issue 3): they let the stack
// be tested end to end before TLS sits on top of it, and the relay is the
// path TLS will later use towards origins.
//   echo    (RFC 862)  sends back what it receives
//   discard (RFC 863)  reads and drops
//   chargen (RFC 864)  streams a character pattern until the peer closes
//   relay              opens a connection to an upstream per client and
//                      splices the two, carrying half-closes and resets

#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/net/ipv4_address.h"
#include "dataplane/net/tcp_app.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::services {

struct ServiceSpec {
  std::string kind;  // echo, discard, chargen, relay
  net::Ipv4Address upstream_ip = 0;
  uint16_t upstream_port = 0;
};

// One instance per worker and listener. interface: where the relay's active
// opens leave from. Null for an unknown kind.
std::unique_ptr<net::tcp::TcpApp> make_service(const ServiceSpec& spec, net::Interface& interface);

}  // namespace mtlsgw::services
