#include "dataplane/net/interface.h"

#include "dataplane/net/arp.h"
#include "dataplane/net/ethernet.h"
#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::net {

Interface::Interface(const InterfaceConfig& config, FrameIo& io, StackCounters& counters)
    : config_(config), io_(io), counters_(counters), arp_(config.arp) {}

Interface::~Interface() { arp_.drain(*this); }

void Interface::start(uint64_t now_us) noexcept {
  arp::send_request(*this, config_.address.address, nullptr);
  if (config_.gateway != 0) {
    rte_ether_addr unused;
    if (arp_.lookup(config_.gateway, now_us, &unused) == ArpCache::Lookup::started) {
      arp::send_request(*this, config_.gateway, nullptr);
    }
  }
}

void Interface::input(Frame frame, uint64_t now_us) noexcept {
  counters_.rx_frames.add();
  counters_.rx_bytes.add(frame.len);
  ethernet::input(*this, frame, now_us);
}

void Interface::input_dispatched(Frame frame, uint64_t now_us) noexcept {
  counters_.dispatched_from_peer.add();
  // The peer checked these bytes already; a failure here would be a
  // corrupted handoff, dropped like any bad datagram.
  ipv4::Header header;
  if (Rejection r = ipv4::parse(frame.data + ethernet::kHeaderLen,
                                static_cast<uint16_t>(frame.len - ethernet::kHeaderLen), header)) {
    drop(frame, *r);
    return;
  }
  if (tcp_ == nullptr) {
    drop(frame, DropReason::ipv4_unsupported_protocol);
    return;
  }
  frame.trim_to(static_cast<uint16_t>(ethernet::kHeaderLen + header.total_len));
  tcp_->input(*this, frame, header, now_us);
}

void Interface::tick(uint64_t now_us) noexcept {
  const uint64_t expired_before = arp_.expired_count();
  arp_.tick(now_us, *this);
  counters_.arp_expired.add(arp_.expired_count() - expired_before);
}

void Interface::transmit(const Frame& frame) noexcept {
  counters_.tx_frames.add();
  counters_.tx_bytes.add(frame.len);
  io_.send(frame);
}

void Interface::drop(const Frame& frame, DropReason reason) noexcept {
  counters_.drop(reason);
  io_.release(frame);
}

Ipv4Address Interface::next_hop(Ipv4Address dst) const noexcept {
  if (config_.address.contains(dst)) return dst;
  return config_.gateway;
}

void Interface::finish_and_send(Frame frame, const rte_ether_addr& dst) noexcept {
  ethernet::write_header(frame.data, dst, config_.mac, RTE_ETHER_TYPE_IPV4);
  ethernet::pad(frame);
  transmit(frame);
}

void Interface::output_ipv4(Frame frame, Ipv4Address dst, uint64_t now_us) noexcept {
  const Ipv4Address hop = next_hop(dst);
  if (hop == 0) {
    drop(frame, DropReason::no_route);
    return;
  }
  rte_ether_addr mac;
  switch (arp_.lookup(hop, now_us, &mac)) {
    case ArpCache::Lookup::hit:
      finish_and_send(frame, mac);
      return;
    case ArpCache::Lookup::hit_stale:
      finish_and_send(frame, mac);
      arp::send_request(*this, hop, &mac);
      return;
    case ArpCache::Lookup::started:
      arp::send_request(*this, hop, nullptr);
      [[fallthrough]];
    case ArpCache::Lookup::pending: {
      Frame evicted;
      if (arp_.hold(hop, frame, &evicted)) drop(evicted, DropReason::arp_hold_full);
      return;
    }
    case ArpCache::Lookup::failed:
      drop(frame, DropReason::arp_unresolved);
      return;
    case ArpCache::Lookup::full:
      drop(frame, DropReason::arp_table_full);
      return;
  }
}

bool Interface::merge_neighbor(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us,
                               bool create) noexcept {
  Frame ready[ArpCache::kHoldPerEntry];
  const ArpCache::Learned learned = arp_.learn(ip, mac, now_us, create, ready);
  for (uint8_t i = 0; i < learned.ready_count; ++i) finish_and_send(ready[i], mac);
  return learned.changed;
}

void Interface::learn(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us,
                      bool create) noexcept {
  if (!merge_neighbor(ip, mac, now_us, create)) return;
  counters_.arp_learned.add();
  if (listener_ != nullptr) listener_->neighbor_learned(config_.port_id, ip, mac);
}

void Interface::learn_from_peer(Ipv4Address ip, const rte_ether_addr& mac,
                                uint64_t now_us) noexcept {
  // The peer relays entries it created or changed, so the address is a
  // neighbour we talk to: create it. Relaying again would loop.
  merge_neighbor(ip, mac, now_us, true);
}

void Interface::send_request(Ipv4Address ip, const rte_ether_addr* unicast_to) noexcept {
  arp::send_request(*this, ip, unicast_to);
}

void Interface::drop_unresolved(const Frame& frame) noexcept {
  drop(frame, DropReason::arp_unresolved);
}

}  // namespace mtlsgw::net
