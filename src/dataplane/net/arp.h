#pragma once
// ARP for IPv4 over Ethernet (RFC 826), with the address-probe rules of
// RFC 5227. Table management lives in arp_cache.h; this file is the wire
// format and the receive logic.

#include <cstdint>

#include "dataplane/net/ethernet.h"
#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::net::arp {

constexpr uint16_t kMessageLen = 28;
constexpr uint16_t kOpRequest = 1;
constexpr uint16_t kOpReply = 2;

struct Message {
  uint16_t op = 0;
  rte_ether_addr sender_mac{};
  Ipv4Address sender_ip = 0;
  rte_ether_addr target_mac{};
  Ipv4Address target_ip = 0;
};

Rejection parse(const uint8_t* data, uint16_t len, Message& out) noexcept;
void write(uint8_t* at, const Message& message) noexcept;

// Answers requests for our address, merges senders into the neighbour table.
void input(Interface& iface, Frame frame, const ethernet::Header& eth, uint64_t now_us) noexcept;

// Builds and sends a request for target (broadcast unless unicast_to is set).
// A gratuitous announcement is a request with target == our own address.
void send_request(Interface& iface, Ipv4Address target, const rte_ether_addr* unicast_to) noexcept;

}  // namespace mtlsgw::net::arp
