#include "dataplane/net/ethernet.h"

#include <gtest/gtest.h>

#include "interface_fixture.h"

namespace mtlsgw::testing {
namespace {

using net::DropReason;
namespace ethernet = net::ethernet;

class EthernetTest : public InterfaceTest {};

TEST_F(EthernetTest, ParsesUnicastAndBroadcast) {
  ethernet::Header h;
  Bytes unicast = eth_frame(our_mac, peer_mac, 0x0800, Bytes(46));
  EXPECT_FALSE(ethernet::parse(unicast.data(), static_cast<uint16_t>(unicast.size()), our_mac, h));
  EXPECT_EQ(h.ether_type, 0x0800);
  EXPECT_FALSE(h.broadcast);
  EXPECT_TRUE(rte_is_same_ether_addr(&h.src, &peer_mac));

  Bytes bcast = eth_frame(broadcast_mac(), peer_mac, 0x0806, Bytes(46));
  EXPECT_FALSE(ethernet::parse(bcast.data(), static_cast<uint16_t>(bcast.size()), our_mac, h));
  EXPECT_TRUE(h.broadcast);
}

TEST_F(EthernetTest, RejectsWithReason) {
  struct Case {
    Bytes frame;
    DropReason reason;
  };
  const rte_ether_addr other = mac({0x02, 0, 0, 0, 0, 9});
  const rte_ether_addr multicast = mac({0x01, 0x00, 0x5e, 0, 0, 1});
  const Case cases[] = {
      {Bytes(13, 0), DropReason::eth_truncated},
      {eth_frame(other, peer_mac, 0x0800, {}), DropReason::eth_not_for_us},
      {eth_frame(multicast, peer_mac, 0x0800, {}), DropReason::eth_multicast},
      {eth_frame(our_mac, multicast, 0x0800, {}), DropReason::eth_bad_source},
      {eth_frame(our_mac, broadcast_mac(), 0x0800, {}), DropReason::eth_bad_source},
      {eth_frame(our_mac, our_mac, 0x0800, {}), DropReason::eth_bad_source},
      {eth_frame(our_mac, peer_mac, 0x86dd, {}), DropReason::eth_ipv6},
      {eth_frame(our_mac, peer_mac, 0x8100, {}), DropReason::eth_vlan},
      {eth_frame(our_mac, peer_mac, 0x88a8, {}), DropReason::eth_vlan},
      {eth_frame(our_mac, peer_mac, 0x88cc, {}), DropReason::eth_unknown_type},
  };
  for (const Case& c : cases) {
    ethernet::Header h;
    auto r = ethernet::parse(c.frame.data(), static_cast<uint16_t>(c.frame.size()), our_mac, h);
    ASSERT_TRUE(r.has_value()) << net::name_of(c.reason);
    EXPECT_EQ(*r, c.reason) << net::name_of(*r) << " instead of " << net::name_of(c.reason);
    deliver(c.frame);
  }
  // Each dropped frame was counted once under its reason and released.
  for (const Case& c : cases) EXPECT_GE(drops(c.reason), 1u) << net::name_of(c.reason);
  EXPECT_EQ(total_drops(), std::size(cases));
  EXPECT_EQ(io.released_count(), std::size(cases));
  EXPECT_EQ(io.outstanding(), 0);
  EXPECT_TRUE(io.sent().empty());
}

TEST_F(EthernetTest, WritesHeaderAndPads) {
  net::Frame f;
  ASSERT_TRUE(io.alloc(f));
  ASSERT_TRUE(f.append(20));
  ethernet::write_header(f.data, peer_mac, our_mac, 0x0806);
  ethernet::pad(f);
  EXPECT_EQ(f.len, ethernet::kMinFrameLen);
  for (uint16_t i = 20; i < f.len; ++i) EXPECT_EQ(f.data[i], 0) << i;
  EXPECT_EQ(f.data[12], 0x08);
  EXPECT_EQ(f.data[13], 0x06);
  EXPECT_EQ(0, memcmp(f.data, peer_mac.addr_bytes, 6));
  EXPECT_EQ(0, memcmp(f.data + 6, our_mac.addr_bytes, 6));
  io.release(f);
}

}  // namespace
}  // namespace mtlsgw::testing
