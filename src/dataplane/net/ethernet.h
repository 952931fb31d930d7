#pragma once
// Ethernet II framing (IEEE 802.3 with EtherType): the first layer a received
// frame meets and the last one a sent frame gets.

#include <rte_ether.h>

#include <cstdint>

#include "dataplane/net/drop_reason.h"
#include "dataplane/net/frame.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::net::ethernet {

constexpr uint16_t kHeaderLen = 14;
// Minimum frame without FCS; shorter frames are padded before sending.
constexpr uint16_t kMinFrameLen = 60;

struct Header {
  rte_ether_addr dst;
  rte_ether_addr src;
  uint16_t ether_type;  // host byte order
  bool broadcast;
};

// Validates the L2 header of a frame received by the owner of our_mac.
Rejection parse(const uint8_t* data, uint16_t len, const rte_ether_addr& our_mac,
                Header& out) noexcept;

void write_header(uint8_t* at, const rte_ether_addr& dst, const rte_ether_addr& src,
                  uint16_t ether_type) noexcept;

// Zero-pads frame up to kMinFrameLen (the NIC adds the FCS).
void pad(Frame& frame) noexcept;

// Receive entry point: parses, then hands the frame to ARP or IPv4.
void input(Interface& iface, Frame frame, uint64_t now_us) noexcept;

}  // namespace mtlsgw::net::ethernet
