#pragma once
// A TCP connection's identity (RFC 9293 3.3.1: the socket pair), as seen from
// our side. Host byte order throughout.

#include <cstdint>

#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::net::tcp {

struct FourTuple {
  Ipv4Address local_ip = 0;
  uint16_t local_port = 0;
  Ipv4Address remote_ip = 0;
  uint16_t remote_port = 0;

  friend bool operator==(const FourTuple&, const FourTuple&) = default;
};

}  // namespace mtlsgw::net::tcp
