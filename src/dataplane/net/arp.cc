#include "dataplane/net/arp.h"

#include <cstring>

#include "dataplane/net/interface.h"
#include "dataplane/net/wire.h"

namespace mtlsgw::net::arp {
namespace {

constexpr uint16_t kHardwareEthernet = 1;

}  // namespace

Rejection parse(const uint8_t* data, uint16_t len, Message& out) noexcept {
  if (len < kMessageLen) return DropReason::arp_truncated;
  if (load_be16(data) != kHardwareEthernet || load_be16(data + 2) != RTE_ETHER_TYPE_IPV4 ||
      data[4] != RTE_ETHER_ADDR_LEN || data[5] != 4) {
    return DropReason::arp_bad_format;
  }
  out.op = load_be16(data + 6);
  if (out.op != kOpRequest && out.op != kOpReply) return DropReason::arp_bad_op;
  std::memcpy(&out.sender_mac, data + 8, RTE_ETHER_ADDR_LEN);
  out.sender_ip = load_be32(data + 14);
  std::memcpy(&out.target_mac, data + 18, RTE_ETHER_ADDR_LEN);
  out.target_ip = load_be32(data + 24);
  return std::nullopt;
}

void write(uint8_t* at, const Message& message) noexcept {
  store_be16(at, kHardwareEthernet);
  store_be16(at + 2, RTE_ETHER_TYPE_IPV4);
  at[4] = RTE_ETHER_ADDR_LEN;
  at[5] = 4;
  store_be16(at + 6, message.op);
  std::memcpy(at + 8, &message.sender_mac, RTE_ETHER_ADDR_LEN);
  store_be32(at + 14, message.sender_ip);
  std::memcpy(at + 18, &message.target_mac, RTE_ETHER_ADDR_LEN);
  store_be32(at + 24, message.target_ip);
}

void input(Interface& iface, Frame frame, const ethernet::Header& eth, uint64_t now_us) noexcept {
  const InterfaceConfig& config = iface.config();
  StackCounters& counters = iface.counters();
  Message message;
  if (Rejection r = parse(frame.data + ethernet::kHeaderLen,
                          static_cast<uint16_t>(frame.len - ethernet::kHeaderLen), message)) {
    iface.drop(frame, *r);
    return;
  }
  (message.op == kOpRequest ? counters.arp_requests_in : counters.arp_replies_in).add();

  if (rte_is_multicast_ether_addr(&message.sender_mac) ||
      rte_is_same_ether_addr(&message.sender_mac, &config.mac)) {
    iface.drop(frame, DropReason::arp_bad_sender);
    return;
  }
  // RFC 5227 2.1.1: a probe carries sender 0.0.0.0 and must not be learned,
  // but a request for our address from a prober is still answered (that is
  // how the prober detects the conflict).
  const bool probe = message.sender_ip == 0 && message.op == kOpRequest;
  if (!probe && (is_martian_source(message.sender_ip) ||
                 !config.address.contains(message.sender_ip) ||
                 message.sender_ip == config.address.directed_broadcast())) {
    iface.drop(frame, DropReason::arp_bad_sender);
    return;
  }
  if (iface.owns(message.sender_ip)) {
    // RFC 5227 2.4: someone else uses our address. We keep it (we are a
    // server with a configured address) and count the conflict.
    iface.drop(frame, DropReason::arp_address_conflict);
    return;
  }

  const bool for_us = iface.owns(message.target_ip);
  if (!probe) iface.learn(message.sender_ip, message.sender_mac, now_us, for_us);

  if (message.op != kOpRequest) {
    iface.io().release(frame);
    return;
  }
  if (!for_us) {
    iface.drop(frame, DropReason::arp_not_for_us);
    return;
  }
  // The reply reuses the request's buffer: swap roles, keep the padding.
  Message reply;
  reply.op = kOpReply;
  reply.sender_mac = config.mac;
  reply.sender_ip = config.address.address;
  reply.target_mac = message.sender_mac;
  reply.target_ip = message.sender_ip;
  write(frame.data + ethernet::kHeaderLen, reply);
  ethernet::write_header(frame.data, eth.src, config.mac, RTE_ETHER_TYPE_ARP);
  ethernet::pad(frame);
  counters.arp_replies_out.add();
  iface.transmit(frame);
}

void send_request(Interface& iface, Ipv4Address target, const rte_ether_addr* unicast_to) noexcept {
  const InterfaceConfig& config = iface.config();
  Frame frame;
  if (!iface.io().alloc(frame)) {
    iface.counters().drop(DropReason::tx_no_buffer);
    return;
  }
  if (!frame.append(ethernet::kHeaderLen + kMessageLen)) {
    iface.drop(frame, DropReason::tx_no_buffer);
    return;
  }
  rte_ether_addr broadcast;
  std::memset(&broadcast, 0xff, sizeof broadcast);
  ethernet::write_header(frame.data, unicast_to != nullptr ? *unicast_to : broadcast, config.mac,
                         RTE_ETHER_TYPE_ARP);
  Message request;
  request.op = kOpRequest;
  request.sender_mac = config.mac;
  request.sender_ip = config.address.address;
  request.target_ip = target;  // target_mac stays zero: unknown (RFC 826)
  write(frame.data + ethernet::kHeaderLen, request);
  ethernet::pad(frame);
  (target == config.address.address ? iface.counters().arp_gratuitous_out
                                    : iface.counters().arp_requests_out)
      .add();
  iface.transmit(frame);
}

}  // namespace mtlsgw::net::arp
