#include "dataplane/net/arp.h"

#include <gtest/gtest.h>

#include "dataplane/net/ipv4.h"
#include "interface_fixture.h"

namespace mtlsgw::testing {
namespace {

using net::ArpCache;
using net::DropReason;
namespace arp_layer = net::arp;

class ArpTest : public InterfaceTest {
 protected:
  const rte_ether_addr zero_mac{};
  Bytes request(const rte_ether_addr& sender_mac, uint32_t sender_ip, uint32_t target_ip,
                const rte_ether_addr& eth_dst = broadcast_mac()) {
    Bytes frame = eth_frame(eth_dst, sender_mac, 0x0806, arp_payload(1, sender_mac, sender_ip, zero_mac, target_ip));
    frame.resize(60, 0);  // as it arrives from a real link
    return frame;
  }
};

TEST_F(ArpTest, ParseWriteRoundTrip) {
  arp_layer::Message m;
  m.op = arp_layer::kOpReply;
  m.sender_mac = our_mac;
  m.sender_ip = our_ip;
  m.target_mac = peer_mac;
  m.target_ip = peer_ip;
  uint8_t wire[arp_layer::kMessageLen];
  arp_layer::write(wire, m);
  EXPECT_EQ(Bytes(wire, wire + sizeof wire), arp_payload(2, our_mac, our_ip, peer_mac, peer_ip));
  arp_layer::Message back;
  ASSERT_FALSE(arp_layer::parse(wire, sizeof wire, back));
  EXPECT_EQ(back.op, m.op);
  EXPECT_TRUE(rte_is_same_ether_addr(&back.sender_mac, &our_mac));
  EXPECT_EQ(back.sender_ip, our_ip);
  EXPECT_TRUE(rte_is_same_ether_addr(&back.target_mac, &peer_mac));
  EXPECT_EQ(back.target_ip, peer_ip);
}

TEST_F(ArpTest, AnswersRequestForOurAddressAndLearnsTheSender) {
  deliver(request(peer_mac, peer_ip, our_ip));
  ASSERT_EQ(io.sent().size(), 1u);
  const Bytes& reply = io.sent()[0];
  ASSERT_EQ(reply.size(), 60u);
  EXPECT_EQ(Bytes(reply.begin(), reply.begin() + 14 + 28),
            eth_frame(peer_mac, our_mac, 0x0806, arp_payload(2, our_mac, our_ip, peer_mac, peer_ip)));
  EXPECT_EQ(iface.arp_cache().state_of(peer_ip), ArpCache::State::reachable);
  EXPECT_EQ(counters.arp_requests_in.get(), 1u);
  EXPECT_EQ(counters.arp_replies_out.get(), 1u);
  EXPECT_EQ(counters.arp_learned.get(), 1u);
  EXPECT_EQ(total_drops(), 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(ArpTest, RequestForAnotherHostIsNotAnsweredNorLearned) {
  const uint32_t third = ip(198, 18, 0, 7);
  deliver(request(peer_mac, peer_ip, third));
  EXPECT_TRUE(io.sent().empty());
  EXPECT_EQ(drops(DropReason::arp_not_for_us), 1u);
  // RFC 826: only an existing entry is updated by a request not for us.
  EXPECT_EQ(iface.arp_cache().state_of(peer_ip), ArpCache::State::empty);
}

TEST_F(ArpTest, ProbeIsAnsweredButNotLearned) {
  // RFC 5227 probe: sender IP 0.0.0.0.
  deliver(request(peer_mac, 0, our_ip));
  ASSERT_EQ(io.sent().size(), 1u);
  EXPECT_EQ(get32(io.sent()[0], 14 + 24), 0u);
  EXPECT_EQ(iface.arp_cache().size(), 0u);
}

TEST_F(ArpTest, RejectsMalformedAndSuspiciousMessages) {
  Bytes bad_htype = request(peer_mac, peer_ip, our_ip);
  bad_htype[15] = 6;
  deliver(bad_htype);
  EXPECT_EQ(drops(DropReason::arp_bad_format), 1u);

  Bytes bad_plen = request(peer_mac, peer_ip, our_ip);
  bad_plen[14 + 5] = 16;
  deliver(bad_plen);
  EXPECT_EQ(drops(DropReason::arp_bad_format), 2u);

  Bytes bad_op = request(peer_mac, peer_ip, our_ip);
  bad_op[14 + 7] = 3;  // RARP request
  deliver(bad_op);
  EXPECT_EQ(drops(DropReason::arp_bad_op), 1u);

  Bytes message = arp_payload(1, peer_mac, peer_ip, zero_mac, our_ip);
  message.resize(20);
  Bytes truncated = eth_frame(broadcast_mac(), peer_mac, 0x0806, message);
  deliver(truncated);
  EXPECT_EQ(drops(DropReason::arp_truncated), 1u);

  Bytes multicast_sender = request(peer_mac, peer_ip, our_ip);
  multicast_sender[14 + 8] = 0x01;
  deliver(multicast_sender);
  deliver(request(mac({0x02, 1, 2, 3, 4, 5}), ip(198, 19, 0, 1), our_ip));  // off-link
  deliver(request(mac({0x02, 1, 2, 3, 4, 5}), ip(127, 0, 0, 1), our_ip));
  deliver(request(mac({0x02, 1, 2, 3, 4, 5}), ip(198, 18, 0, 255), our_ip));
  EXPECT_EQ(drops(DropReason::arp_bad_sender), 4u);

  // Someone else claims our address.
  deliver(request(peer_mac, our_ip, peer_ip));
  EXPECT_EQ(drops(DropReason::arp_address_conflict), 1u);

  EXPECT_TRUE(io.sent().empty());
  EXPECT_EQ(iface.arp_cache().size(), 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(ArpTest, ReplyResolvesHeldDatagrams) {
  // Two datagrams towards the peer wait for its MAC.
  for (int i = 0; i < 2; ++i) {
    net::Frame f;
    ASSERT_TRUE(io.alloc(f));
    ASSERT_TRUE(f.append(14 + 20 + 8));
    net::ipv4::write_header(f.data + 14, our_ip, peer_ip, 1, 8, static_cast<uint16_t>(i));
    iface.output_ipv4(f, peer_ip, now_us);
  }
  ASSERT_EQ(io.sent().size(), 1u);  // one broadcast request, not two
  EXPECT_EQ(Bytes(io.sent()[0].begin(), io.sent()[0].begin() + 42),
            eth_frame(broadcast_mac(), our_mac, 0x0806, arp_payload(1, our_mac, our_ip, zero_mac, peer_ip)));
  io.take_sent();

  Bytes reply = eth_frame(our_mac, peer_mac, 0x0806, arp_payload(2, peer_mac, peer_ip, our_mac, our_ip));
  deliver(reply);
  ASSERT_EQ(io.sent().size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Bytes& d = io.sent()[i];
    EXPECT_EQ(0, memcmp(d.data(), peer_mac.addr_bytes, 6));
    EXPECT_EQ(get16(d, 12), 0x0800);
    EXPECT_EQ(get16(d, 14 + 4), i);  // order kept
  }
  EXPECT_EQ(counters.arp_replies_in.get(), 1u);
  EXPECT_EQ(total_drops(), 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(ArpTest, GratuitousAnnouncementUpdatesAKnownNeighbour) {
  deliver(request(peer_mac, peer_ip, our_ip));
  io.take_sent();
  const rte_ether_addr moved = mac({0x02, 0, 0xc6, 0x12, 0, 0x99});
  // The peer moved to a new NIC and announces it (sender == target).
  deliver(request(moved, peer_ip, peer_ip));
  rte_ether_addr now_mac;
  EXPECT_EQ(iface.arp_cache().lookup(peer_ip, now_us, &now_mac), ArpCache::Lookup::hit);
  EXPECT_TRUE(rte_is_same_ether_addr(&now_mac, &moved));
  EXPECT_EQ(counters.arp_learned.get(), 2u);
}

}  // namespace
}  // namespace mtlsgw::testing
