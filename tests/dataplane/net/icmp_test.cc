#include "dataplane/net/icmp.h"

#include <gtest/gtest.h>

#include "interface_fixture.h"

namespace mtlsgw::testing {
namespace {

using net::DropReason;

class IcmpTest : public InterfaceTest {
 protected:
  Bytes echo_request(uint32_t dst, const Bytes& data, uint16_t seq = 7, Bytes options = {}) {
    Ipv4Fields f;
    f.src = peer_ip;
    f.dst = dst;
    f.ttl = 3;
    f.options = std::move(options);
    return eth_frame(our_mac, peer_mac, 0x0800, ipv4_packet(f, icmp_echo(8, 0x4242, seq, data)));
  }
};

TEST_F(IcmpTest, AnswersEchoInPlace) {
  Bytes data;
  for (int i = 0; i < 56; ++i) data.push_back(static_cast<uint8_t>(i * 7));
  deliver(echo_request(our_ip, data));

  ASSERT_EQ(io.sent().size(), 1u);
  const Bytes& reply = io.sent()[0];
  ASSERT_EQ(reply.size(), 14u + 20 + 8 + data.size());
  // Ethernet: back to the sender's MAC, from ours.
  EXPECT_EQ(0, memcmp(reply.data(), peer_mac.addr_bytes, 6));
  EXPECT_EQ(0, memcmp(reply.data() + 6, our_mac.addr_bytes, 6));
  // IPv4: addresses swapped, our TTL, valid checksum.
  EXPECT_EQ(get32(reply, 14 + 12), our_ip);
  EXPECT_EQ(get32(reply, 14 + 16), peer_ip);
  EXPECT_EQ(reply[14 + 8], 64);
  EXPECT_EQ(internet_checksum(reply.data() + 14, 20), 0);
  // ICMP: echo reply, identifier, sequence and data unchanged, valid checksum.
  const size_t icmp = 14 + 20;
  EXPECT_EQ(reply[icmp], 0);
  EXPECT_EQ(reply[icmp + 1], 0);
  EXPECT_EQ(get16(reply, icmp + 4), 0x4242);
  EXPECT_EQ(get16(reply, icmp + 6), 7);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), reply.begin() + icmp + 8));
  EXPECT_EQ(internet_checksum(reply.data() + icmp, reply.size() - icmp), 0);

  EXPECT_EQ(counters.icmp_echo_requests.get(), 1u);
  EXPECT_EQ(counters.icmp_echo_replies.get(), 1u);
  EXPECT_EQ(total_drops(), 0u);
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(IcmpTest, ReplyDropsLinkPaddingAndKeepsOptions) {
  // A tiny echo arrives padded to 60 bytes; the reply must not carry the
  // padding inside the datagram. A 4-byte option (NOP x3 + EOL) is echoed.
  Bytes frame = echo_request(our_ip, {}, 1, {1, 1, 1, 0});
  const size_t datagram_end = frame.size();
  frame.resize(60, 0xee);
  deliver(frame);
  ASSERT_EQ(io.sent().size(), 1u);
  const Bytes& reply = io.sent()[0];
  EXPECT_EQ(get16(reply, 14 + 2), datagram_end - 14);
  EXPECT_EQ(reply[14] & 0x0f, 6);
  EXPECT_EQ(internet_checksum(reply.data() + 14, 24), 0);
  EXPECT_EQ(internet_checksum(reply.data() + 14 + 24, datagram_end - 14 - 24), 0);
  // On the wire the reply is padded again with zeros, not with the request's
  // padding bytes.
  ASSERT_EQ(reply.size(), 60u);
  for (size_t i = datagram_end; i < reply.size(); ++i) EXPECT_EQ(reply[i], 0) << i;
}

TEST_F(IcmpTest, OddLengthDataChecksums) {
  deliver(echo_request(our_ip, Bytes(33, 0xab)));
  ASSERT_EQ(io.sent().size(), 1u);
  const Bytes& reply = io.sent()[0];
  EXPECT_EQ(internet_checksum(reply.data() + 34, reply.size() - 34), 0);
}

TEST_F(IcmpTest, DropsBadMessages) {
  Bytes bad_sum = echo_request(our_ip, Bytes(8, 1));
  bad_sum[14 + 20 + 9] ^= 0xff;
  deliver(bad_sum);
  EXPECT_EQ(drops(DropReason::icmp_bad_checksum), 1u);

  Ipv4Fields f;
  f.src = peer_ip;
  f.dst = our_ip;
  deliver(eth_frame(our_mac, peer_mac, 0x0800, ipv4_packet(f, Bytes{8, 0, 0xf7})));
  EXPECT_EQ(drops(DropReason::icmp_truncated), 1u);

  // Destination unreachable is counted, not answered.
  Bytes unreachable = {3, 3, 0, 0, 0, 0, 0, 0};
  const uint16_t sum = internet_checksum(unreachable.data(), unreachable.size());
  unreachable[2] = static_cast<uint8_t>(sum >> 8);
  unreachable[3] = static_cast<uint8_t>(sum);
  deliver(eth_frame(our_mac, peer_mac, 0x0800, ipv4_packet(f, unreachable)));
  EXPECT_EQ(drops(DropReason::icmp_unhandled_type), 1u);
  EXPECT_EQ(counters.icmp_other_in.get(), 1u);

  // RFC 1122 3.2.2.6: echo to a broadcast address is ignored.
  deliver(echo_request(ip(198, 18, 0, 255), {}));
  deliver(echo_request(0xffffffff, {}));
  EXPECT_EQ(drops(DropReason::icmp_broadcast_echo), 2u);

  EXPECT_TRUE(io.sent().empty());
  EXPECT_EQ(io.outstanding(), 0);
}

}  // namespace
}  // namespace mtlsgw::testing
