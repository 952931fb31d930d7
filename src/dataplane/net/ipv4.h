#pragma once
// IPv4 (RFC 791) for a host (RFC 1122 3.2.1): validation of every received
// header, delivery to the transport handlers, and header construction.

#include <cstdint>

#include "dataplane/net/ethernet.h"
#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::net::ipv4 {

constexpr uint16_t kMinHeaderLen = 20;
constexpr uint8_t kProtocolIcmp = 1;
constexpr uint8_t kProtocolTcp = 6;
constexpr uint8_t kProtocolUdp = 17;
// RFC 1700 / Linux's default: the TTL we send with.
constexpr uint8_t kDefaultTtl = 64;

struct Header {
  Ipv4Address src = 0;
  Ipv4Address dst = 0;
  uint16_t header_len = 0;  // bytes, options included
  uint16_t total_len = 0;   // bytes, header + payload
  uint8_t protocol = 0;
  uint8_t ttl = 0;
};

// Checks version, lengths, checksum and fragmentation of the datagram that
// starts at data (len: bytes available, which may include link padding).
Rejection parse(const uint8_t* data, uint16_t len, Header& out) noexcept;

// Writes a 20-byte header with its checksum. DF is set: we never fragment,
// and TCP will size segments by path MTU (RFC 1191).
void write_header(uint8_t* at, Ipv4Address src, Ipv4Address dst, uint8_t protocol,
                  uint16_t payload_len, uint16_t id, uint8_t ttl = kDefaultTtl) noexcept;

// Receive path after Ethernet: validate, check addresses, dispatch.
void input(Interface& iface, Frame frame, const ethernet::Header& eth, uint64_t now_us) noexcept;

}  // namespace mtlsgw::net::ipv4
