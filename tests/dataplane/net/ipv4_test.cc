#include "dataplane/net/ipv4.h"

#include <gtest/gtest.h>

#include "interface_fixture.h"

namespace mtlsgw::testing {
namespace {

using net::DropReason;
namespace ipv4_layer = net::ipv4;

class Ipv4Test : public InterfaceTest {
 protected:
  Bytes datagram(Ipv4Fields f, const Bytes& payload = icmp_echo(8, 1, 1, Bytes(8, 0))) {
    return ipv4_packet(f, payload);
  }
  Ipv4Fields to_us() {
    Ipv4Fields f;
    f.src = peer_ip;
    f.dst = our_ip;
    return f;
  }
  std::optional<DropReason> parse(const Bytes& d) {
    ipv4_layer::Header h;
    return ipv4_layer::parse(d.data(), static_cast<uint16_t>(d.size()), h);
  }
};

TEST_F(Ipv4Test, ParsesAValidHeader) {
  Ipv4Fields f = to_us();
  f.ttl = 9;
  f.options = {1, 1, 1, 1, 1, 1, 1, 0};
  const Bytes d = datagram(f);
  ipv4_layer::Header h;
  ASSERT_FALSE(ipv4_layer::parse(d.data(), static_cast<uint16_t>(d.size()), h));
  EXPECT_EQ(h.src, peer_ip);
  EXPECT_EQ(h.dst, our_ip);
  EXPECT_EQ(h.header_len, 28);
  EXPECT_EQ(h.total_len, d.size());
  EXPECT_EQ(h.protocol, 1);
  EXPECT_EQ(h.ttl, 9);
}

TEST_F(Ipv4Test, RejectsMalformedHeaders) {
  Bytes d = datagram(to_us());
  EXPECT_EQ(parse(Bytes(d.begin(), d.begin() + 19)), DropReason::ipv4_truncated);

  Bytes v6 = d;
  v6[0] = 0x65;
  EXPECT_EQ(parse(v6), DropReason::ipv4_bad_version);

  Bytes short_ihl = d;
  short_ihl[0] = 0x44;
  EXPECT_EQ(parse(short_ihl), DropReason::ipv4_bad_header_length);

  Bytes long_ihl = d;
  long_ihl[0] = 0x4f;  // 60 bytes of header in a 36-byte datagram
  EXPECT_EQ(parse(long_ihl), DropReason::ipv4_bad_header_length);

  Bytes short_total = d;
  short_total[2] = 0;
  short_total[3] = 19;
  EXPECT_EQ(parse(short_total), DropReason::ipv4_bad_total_length);

  Bytes long_total = d;
  long_total[3] = static_cast<uint8_t>(long_total[3] + 1);
  EXPECT_EQ(parse(long_total), DropReason::ipv4_bad_total_length);

  Bytes bad_sum = d;
  bad_sum[10] ^= 0x01;
  EXPECT_EQ(parse(bad_sum), DropReason::ipv4_bad_checksum);

  Ipv4Fields more = to_us();
  more.flags_fragment = 0x2000;
  EXPECT_EQ(parse(datagram(more)), DropReason::ipv4_fragment);
  Ipv4Fields offset = to_us();
  offset.flags_fragment = 0x0010;
  EXPECT_EQ(parse(datagram(offset)), DropReason::ipv4_fragment);
}

TEST_F(Ipv4Test, InputChecksAddressesAndProtocol) {
  struct Case {
    Ipv4Fields fields;
    DropReason reason;
  };
  auto with = [&](uint32_t src, uint32_t dst, uint8_t protocol = 1) {
    Ipv4Fields f;
    f.src = src;
    f.dst = dst;
    f.protocol = protocol;
    return f;
  };
  const Case cases[] = {
      {with(peer_ip, ip(198, 18, 0, 3)), DropReason::ipv4_not_for_us},
      {with(peer_ip, ip(198, 19, 0, 2)), DropReason::ipv4_not_for_us},
      {with(0, our_ip), DropReason::ipv4_bad_source},
      {with(ip(127, 0, 0, 1), our_ip), DropReason::ipv4_bad_source},
      {with(ip(224, 0, 0, 5), our_ip), DropReason::ipv4_bad_source},
      {with(ip(198, 18, 0, 255), our_ip), DropReason::ipv4_bad_source},
      {with(our_ip, our_ip), DropReason::ipv4_bad_source},
      {with(peer_ip, our_ip, 17), DropReason::ipv4_unsupported_protocol},
      {with(peer_ip, our_ip, 6), DropReason::ipv4_unsupported_protocol},
  };
  for (const Case& c : cases) {
    deliver(eth_frame(our_mac, peer_mac, 0x0800, datagram(c.fields)));
    EXPECT_EQ(drops(c.reason), 1u)
        << net::name_of(c.reason);
    counters.drops[static_cast<size_t>(c.reason)].set(0);
  }
  EXPECT_EQ(counters.ipv4_in.get(), std::size(cases));
  EXPECT_TRUE(io.sent().empty());
  EXPECT_EQ(io.outstanding(), 0);
}

TEST_F(Ipv4Test, WritesAValidHeader) {
  uint8_t header[20];
  ipv4_layer::write_header(header, our_ip, peer_ip, ipv4_layer::kProtocolTcp, 1460, 0xbeef);
  EXPECT_EQ(internet_checksum(header, 20), 0);
  Bytes bytes(header, header + 20);
  bytes.resize(20 + 1460);
  ipv4_layer::Header h;
  ASSERT_FALSE(ipv4_layer::parse(bytes.data(), static_cast<uint16_t>(bytes.size()), h));
  EXPECT_EQ(h.total_len, 1480);
  EXPECT_EQ(h.src, our_ip);
  EXPECT_EQ(h.dst, peer_ip);
  EXPECT_EQ(h.protocol, ipv4_layer::kProtocolTcp);
  EXPECT_EQ(h.ttl, ipv4_layer::kDefaultTtl);
  EXPECT_EQ(get16(bytes, 4), 0xbeef);
  EXPECT_EQ(get16(bytes, 6), 0x4000);  // DF, no offset
}

}  // namespace
}  // namespace mtlsgw::testing
