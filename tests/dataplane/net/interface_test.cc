#include "dataplane/net/interface.h"

#include <gtest/gtest.h>

#include "dataplane/net/ipv4.h"
#include "dataplane/net/tcp_stack.h"
#include "interface_fixture.h"

namespace mtlsgw::testing {
namespace {

using net::ArpCache;
using net::DropReason;

class InterfaceOutputTest : public InterfaceTest {
 protected:
  net::Frame datagram(uint32_t dst) {
    net::Frame f;
    EXPECT_TRUE(io.alloc(f));
    f.append(14 + 20 + 100);
    net::ipv4::write_header(f.data + 14, our_ip, dst, 17, 100, 1);
    return f;
  }
  struct Listener final : net::NeighborListener {
    std::vector<uint32_t> learned;
    void neighbor_learned(uint16_t, net::Ipv4Address ip, const rte_ether_addr&) noexcept override {
      learned.push_back(ip);
    }
  };
};

TEST_F(InterfaceOutputTest, StartAnnouncesAndResolvesTheGateway) {
  iface.start(now_us);
  ASSERT_EQ(io.sent().size(), 2u);
  const Bytes& announce = io.sent()[0];
  EXPECT_EQ(get16(announce, 14 + 6), 1);            // request
  EXPECT_EQ(get32(announce, 14 + 14), our_ip);      // sender
  EXPECT_EQ(get32(announce, 14 + 24), our_ip);      // target: gratuitous
  EXPECT_EQ(get32(io.sent()[1], 14 + 24), peer_ip);  // the gateway
  EXPECT_EQ(counters.arp_gratuitous_out.get(), 1u);
  EXPECT_EQ(counters.arp_requests_out.get(), 1u);
  EXPECT_EQ(iface.arp_cache().state_of(peer_ip), ArpCache::State::incomplete);
}

TEST_F(InterfaceOutputTest, RoutesOffLinkThroughTheGateway) {
  deliver(eth_frame(our_mac, peer_mac, 0x0806, arp_payload(2, peer_mac, peer_ip, our_mac, our_ip)));
  // An unsolicited reply is not addressed to a request of ours, but it is
  // addressed to us (target == our address): RFC 826 creates the entry.
  ASSERT_EQ(iface.arp_cache().state_of(peer_ip), ArpCache::State::reachable);
  iface.output_ipv4(datagram(ip(198, 19, 7, 7)), ip(198, 19, 7, 7), now_us);
  ASSERT_EQ(io.sent().size(), 1u);
  const Bytes& out = io.sent()[0];
  EXPECT_EQ(0, memcmp(out.data(), peer_mac.addr_bytes, 6));
  EXPECT_EQ(0, memcmp(out.data() + 6, our_mac.addr_bytes, 6));
  EXPECT_EQ(get32(out, 14 + 16), ip(198, 19, 7, 7));
  EXPECT_EQ(counters.tx_frames.get(), 1u);
}

TEST_F(InterfaceOutputTest, NoGatewayMeansNoRoute) {
  net::InterfaceConfig config = make_config();
  config.gateway = 0;
  net::Interface isolated(config, io, counters);
  isolated.output_ipv4(datagram(ip(198, 19, 0, 1)), ip(198, 19, 0, 1), now_us);
  EXPECT_EQ(drops(DropReason::no_route), 1u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(InterfaceOutputTest, UnresolvedNextHopDropsHeldFramesAfterRetries) {
  const uint32_t silent = ip(198, 18, 0, 50);
  iface.output_ipv4(datagram(silent), silent, now_us);
  for (int i = 0; i < 10; ++i) {
    now_us += 1'000'000;
    iface.tick(now_us);
  }
  EXPECT_EQ(drops(DropReason::arp_unresolved), 1u);
  EXPECT_EQ(counters.arp_requests_out.get(), 3u);  // RFC 1122 2.3.2.1: bounded retries
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(InterfaceOutputTest, TooManyWaitingFramesDropTheOldest) {
  const uint32_t slow = ip(198, 18, 0, 51);
  for (int i = 0; i < ArpCache::kHoldPerEntry + 2; ++i) iface.output_ipv4(datagram(slow), slow, now_us);
  EXPECT_EQ(drops(DropReason::arp_hold_full), 2u);
  EXPECT_EQ(io.outstanding(), ArpCache::kHoldPerEntry);
}

TEST_F(InterfaceOutputTest, HeldFramesAreReleasedAtDestruction) {
  HeapFrameIo local_io;
  net::StackCounters local_counters;
  {
    net::Interface local(make_config(), local_io, local_counters);
    net::Frame f;
    ASSERT_TRUE(local_io.alloc(f));
    f.append(60);
    local.output_ipv4(f, ip(198, 18, 0, 9), now_us);
    EXPECT_EQ(local_io.sent_count(), 1u);   // the ARP request
    EXPECT_EQ(local_io.outstanding(), 1);   // the datagram, held
  }
  EXPECT_EQ(local_io.outstanding(), 0);
  EXPECT_EQ(local_counters.dropped(DropReason::arp_unresolved), 1u);
}

TEST_F(InterfaceOutputTest, MempoolExhaustionIsCountedNotFatal) {
  io.exhaust();
  iface.start(now_us);
  EXPECT_EQ(drops(DropReason::tx_no_buffer), 2u);
  io.replenish();
}

TEST_F(InterfaceOutputTest, TellsTheListenerWhatItLearned) {
  Listener listener;
  iface.set_neighbor_listener(&listener);
  deliver(eth_frame(broadcast_mac(), peer_mac, 0x0806,
                   arp_payload(1, peer_mac, peer_ip, rte_ether_addr{}, our_ip)));
  ASSERT_EQ(listener.learned.size(), 1u);
  EXPECT_EQ(listener.learned[0], peer_ip);
  // A peer's news is applied without being relayed back.
  iface.learn_from_peer(ip(198, 18, 0, 77), peer_mac, now_us);
  EXPECT_EQ(listener.learned.size(), 1u);
  EXPECT_EQ(iface.arp_cache().state_of(ip(198, 18, 0, 77)), ArpCache::State::reachable);
}

// Software dispatch: a TCP segment another worker received, checked and
// counted through Ethernet and IPv4 is handed to this worker's TCP alone, so
// that rx_frames, rx_bytes and ipv4_in summed over workers count it once;
// dispatched_from_peer says how many came that way.
TEST_F(InterfaceTest, DispatchedSegmentGoesToTcpWithoutCountingAsReceivedAgain) {
  net::tcp::TcpConfig config;
  config.max_connections = 4;
  config.buffer_pool = 2;
  config.buffer_size = 4096;
  net::tcp::TcpStack tcp(config, SipKey{1, 2}, now_us);
  iface.set_tcp(&tcp);
  iface.learn(peer_ip, peer_mac, now_us, true);
  TcpSegmentFields syn;
  syn.src_port = 40000;
  syn.dst_port = 7;  // no listener: answered with a RST
  syn.seq = 1;
  syn.flags = net::tcp::kFlagSyn;
  const Bytes frame = tcp_frame(our_mac, peer_mac, peer_ip, our_ip, syn);

  iface.input_dispatched(io.receive(frame), now_us);
  EXPECT_EQ(counters.dispatched_from_peer.get(), 1u);
  EXPECT_EQ(counters.rx_frames.get(), 0u);
  EXPECT_EQ(counters.rx_bytes.get(), 0u);
  EXPECT_EQ(counters.ipv4_in.get(), 0u);
  EXPECT_EQ(tcp.counters().segments_in.get(), 1u);
  EXPECT_EQ(tcp.counters().resets_sent.get(), 1u);
  EXPECT_EQ(drops(DropReason::tcp_no_listener), 1u);

  // The same segment from the port counts at every layer.
  deliver(frame);
  EXPECT_EQ(counters.dispatched_from_peer.get(), 1u);
  EXPECT_EQ(counters.rx_frames.get(), 1u);
  EXPECT_EQ(counters.rx_bytes.get(), frame.size());
  EXPECT_EQ(counters.ipv4_in.get(), 1u);
  EXPECT_EQ(tcp.counters().segments_in.get(), 2u);
  EXPECT_EQ(tcp.counters().resets_sent.get(), 2u);
  iface.set_tcp(nullptr);
}

}  // namespace
}  // namespace mtlsgw::testing
