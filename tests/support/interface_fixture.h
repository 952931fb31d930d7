#pragma once
// An Interface on a HeapFrameIo with the test topology's addresses:
// us 198.18.0.2/24 (02:00:c6:12:00:02), the kernel peer 198.18.0.1.

#include <gtest/gtest.h>

#include "dataplane/net/interface.h"
#include "heap_frame_io.h"
#include "packet_builder.h"

namespace mtlsgw::testing {

class InterfaceTest : public ::testing::Test {
 protected:
  static net::InterfaceConfig make_config() {
    net::InterfaceConfig config;
    config.port_id = 0;
    config.mac = mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x02});
    config.address = net::Ipv4Prefix{ip(198, 18, 0, 2), 24};
    config.gateway = ip(198, 18, 0, 1);
    return config;
  }

  const rte_ether_addr our_mac = mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x02});
  const rte_ether_addr peer_mac = mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x01});
  const uint32_t our_ip = ip(198, 18, 0, 2);
  const uint32_t peer_ip = ip(198, 18, 0, 1);

  HeapFrameIo io;
  net::StackCounters counters;
  net::Interface iface{make_config(), io, counters};
  uint64_t now_us = 1'000'000;

  void deliver(const Bytes& frame) { iface.input(io.receive(frame), now_us); }
  uint64_t drops(net::DropReason r) const { return counters.dropped(r); }
  uint64_t total_drops() const {
    uint64_t n = 0;
    for (const auto& c : counters.drops) n += c.get();
    return n;
  }
};

}  // namespace mtlsgw::testing
