#pragma once
// ICMP for IPv4 (RFC 792), host requirements of RFC 1122 3.2.2: echo is
// answered; other messages are counted for now (TCP will consume destination
// unreachable for PMTU discovery, RFC 1191).

#include <cstdint>

#include "dataplane/net/ethernet.h"
#include "dataplane/net/ipv4.h"

namespace mtlsgw::net::icmp {

constexpr uint16_t kHeaderLen = 8;
constexpr uint8_t kTypeEchoReply = 0;
constexpr uint8_t kTypeEchoRequest = 8;

// The frame's IPv4 datagram has been validated and trimmed by ipv4::input.
void input(Interface& iface, Frame frame, const ethernet::Header& eth, const ipv4::Header& ip,
           bool to_broadcast, uint64_t now_us) noexcept;

}  // namespace mtlsgw::net::icmp
