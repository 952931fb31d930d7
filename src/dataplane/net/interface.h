#pragma once
// One port as seen by one worker: its addresses, its transmit queue, its
// neighbour table and the counters it feeds. Every protocol layer works on an
// Interface; a worker owns one per port, so nothing here is shared.

#include <rte_ether.h>

#include <cstdint>

#include "dataplane/net/arp_cache.h"
#include "dataplane/net/frame.h"
#include "dataplane/net/ipv4_address.h"
#include "dataplane/net/stack_counters.h"

namespace mtlsgw::net {

namespace tcp {
class TcpStack;
}

struct InterfaceConfig {
  uint16_t port_id = 0;
  rte_ether_addr mac{};
  Ipv4Prefix address;          // our address and the on-link prefix
  Ipv4Address gateway = 0;     // 0: no default route
  uint16_t mtu = 1500;
  ArpCache::Params arp;
};

// Told when this interface learns or changes a neighbour, so that the other
// workers' tables for the same port can follow (dataplane/worker.cc).
class NeighborListener {
 public:
  virtual ~NeighborListener() = default;
  virtual void neighbor_learned(uint16_t port_id, Ipv4Address ip,
                                const rte_ether_addr& mac) noexcept = 0;
};

class Interface final : private ArpCache::Events {
 public:
  Interface(const InterfaceConfig& config, FrameIo& io, StackCounters& counters);
  ~Interface() override;
  Interface(const Interface&) = delete;
  Interface& operator=(const Interface&) = delete;

  // Announces our address (gratuitous ARP, RFC 5227 2.3) and starts
  // resolving the gateway so that the first packet towards it does not wait.
  void start(uint64_t now_us) noexcept;

  // A received frame; ownership passes to the stack.
  void input(Frame frame, uint64_t now_us) noexcept;
  // A TCP segment that another worker received on this port and passes on
  // because this worker owns its connection (software dispatch). That worker
  // ran it through Ethernet and IPv4, with the same settings, and counted
  // it there (rx_frames, ipv4_in): here it goes to TCP alone, so that a
  // counter summed over workers counts it once. Ownership passes.
  void input_dispatched(Frame frame, uint64_t now_us) noexcept;

  // Timers: neighbour ageing and retries.
  void tick(uint64_t now_us) noexcept;

  // Sends frame, whose IPv4 datagram starts kEthernetHeaderLen bytes after
  // frame.data, towards dst: next hop by route, MAC by ARP (may be held).
  void output_ipv4(Frame frame, Ipv4Address dst, uint64_t now_us) noexcept;

  // Learning relayed from another worker.
  void learn_from_peer(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us) noexcept;

  // Used by the layers.
  void transmit(const Frame& frame) noexcept;
  void drop(const Frame& frame, DropReason reason) noexcept;
  void learn(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us, bool create) noexcept;
  bool owns(Ipv4Address a) const noexcept { return a == config_.address.address; }
  bool is_broadcast(Ipv4Address a) const noexcept {
    return a == kIpv4Broadcast || a == config_.address.directed_broadcast();
  }

  void set_neighbor_listener(NeighborListener* listener) noexcept { listener_ = listener; }
  // The worker's TCP, shared by its interfaces; null: TCP is refused.
  void set_tcp(tcp::TcpStack* tcp) noexcept { tcp_ = tcp; }
  tcp::TcpStack* tcp() const noexcept { return tcp_; }
  const InterfaceConfig& config() const noexcept { return config_; }
  StackCounters& counters() noexcept { return counters_; }
  FrameIo& io() noexcept { return io_; }
  ArpCache& arp_cache() noexcept { return arp_; }
  const ArpCache& arp_cache() const noexcept { return arp_; }

 private:
  void send_request(Ipv4Address ip, const rte_ether_addr* unicast_to) noexcept override;
  void drop_unresolved(const Frame& frame) noexcept override;
  Ipv4Address next_hop(Ipv4Address dst) const noexcept;
  void finish_and_send(Frame frame, const rte_ether_addr& dst) noexcept;
  // RFC 826 merge into the table, then sends the frames that waited for
  // the address; true when the entry is new or its MAC changed.
  bool merge_neighbor(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us,
                      bool create) noexcept;

  InterfaceConfig config_;
  FrameIo& io_;
  StackCounters& counters_;
  ArpCache arp_;
  NeighborListener* listener_ = nullptr;
  tcp::TcpStack* tcp_ = nullptr;
};

}  // namespace mtlsgw::net
