#include "dataplane/net/ethernet.h"

#include <cstring>

#include "dataplane/net/arp.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/ipv4.h"
#include "dataplane/net/wire.h"

namespace mtlsgw::net::ethernet {

Rejection parse(const uint8_t* data, uint16_t len, const rte_ether_addr& our_mac,
                Header& out) noexcept {
  if (len < kHeaderLen) return DropReason::eth_truncated;
  std::memcpy(&out.dst, data, RTE_ETHER_ADDR_LEN);
  std::memcpy(&out.src, data + RTE_ETHER_ADDR_LEN, RTE_ETHER_ADDR_LEN);
  out.ether_type = load_be16(data + 12);
  out.broadcast = rte_is_broadcast_ether_addr(&out.dst);
  if (!out.broadcast) {
    if (rte_is_multicast_ether_addr(&out.dst)) return DropReason::eth_multicast;
    if (!rte_is_same_ether_addr(&out.dst, &our_mac)) return DropReason::eth_not_for_us;
  }
  // IEEE 802-2014 8.2.2: the source is always an individual address; our
  // own address as a source means a loop or a spoof.
  if (rte_is_multicast_ether_addr(&out.src) || rte_is_same_ether_addr(&out.src, &our_mac)) {
    return DropReason::eth_bad_source;
  }
  switch (out.ether_type) {
    case RTE_ETHER_TYPE_IPV4:
    case RTE_ETHER_TYPE_ARP:
      return std::nullopt;
    case RTE_ETHER_TYPE_IPV6:
      return DropReason::eth_ipv6;
    case RTE_ETHER_TYPE_VLAN:
    case RTE_ETHER_TYPE_QINQ:
      return DropReason::eth_vlan;
    default:
      return DropReason::eth_unknown_type;
  }
}

void write_header(uint8_t* at, const rte_ether_addr& dst, const rte_ether_addr& src,
                  uint16_t ether_type) noexcept {
  std::memcpy(at, &dst, RTE_ETHER_ADDR_LEN);
  std::memcpy(at + RTE_ETHER_ADDR_LEN, &src, RTE_ETHER_ADDR_LEN);
  store_be16(at + 12, ether_type);
}

void pad(Frame& frame) noexcept {
  if (frame.len >= kMinFrameLen) return;
  uint16_t missing = static_cast<uint16_t>(kMinFrameLen - frame.len);
  uint8_t* end = frame.data + frame.len;
  if (frame.append(missing)) std::memset(end, 0, missing);
}

void input(Interface& iface, Frame frame, uint64_t now_us) noexcept {
  Header header;
  if (Rejection r = parse(frame.data, frame.len, iface.config().mac, header)) {
    iface.drop(frame, *r);
    return;
  }
  if (header.ether_type == RTE_ETHER_TYPE_ARP) {
    arp::input(iface, frame, header, now_us);
  } else {
    ipv4::input(iface, frame, header, now_us);
  }
}

}  // namespace mtlsgw::net::ethernet
