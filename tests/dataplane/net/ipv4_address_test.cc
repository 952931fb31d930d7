#include "dataplane/net/ipv4_address.h"

#include <gtest/gtest.h>

namespace mtlsgw::net {
namespace {

TEST(Ipv4Address, ParsesDottedQuad) {
  EXPECT_EQ(parse_ipv4("198.18.0.2"), 0xc6120002u);
  EXPECT_EQ(parse_ipv4("0.0.0.0"), 0u);
  EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
}

TEST(Ipv4Address, RefusesEverythingElse) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "1..2.3", "a.b.c.d",
                          "1.2.3.4 ", " 1.2.3.4", "01.2.3.4", "1.2.3.0004", "0x1.2.3.4", "1.2.3.4/"}) {
    EXPECT_FALSE(parse_ipv4(bad).has_value()) << bad;
  }
}

TEST(Ipv4Address, ParsesPrefixes) {
  auto p = parse_ipv4_prefix("198.18.0.2/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->address, 0xc6120002u);
  EXPECT_EQ(p->length, 24);
  EXPECT_EQ(p->mask(), 0xffffff00u);
  EXPECT_EQ(p->directed_broadcast(), 0xc61200ffu);
  EXPECT_TRUE(p->contains(0xc6120001u));
  EXPECT_FALSE(p->contains(0xc6120101u));
  EXPECT_EQ(parse_ipv4_prefix("0.0.0.0/0")->mask(), 0u);
  EXPECT_EQ(parse_ipv4_prefix("1.2.3.4/32")->mask(), 0xffffffffu);
  for (const char* bad : {"1.2.3.4", "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/x", "1.2.3/8", "1.2.3.4/24/1"}) {
    EXPECT_FALSE(parse_ipv4_prefix(bad).has_value()) << bad;
  }
}

TEST(Ipv4Address, FormatsRoundTrip) {
  EXPECT_EQ(format_ipv4(0xc6120002u), "198.18.0.2");
  EXPECT_EQ(format_ipv4(*parse_ipv4("198.19.255.1")), "198.19.255.1");
}

TEST(Ipv4Address, MartianSourcesPerRfc1122) {
  EXPECT_TRUE(is_martian_source(0));
  EXPECT_TRUE(is_martian_source(*parse_ipv4("0.1.2.3")));
  EXPECT_TRUE(is_martian_source(*parse_ipv4("127.0.0.1")));
  EXPECT_TRUE(is_martian_source(*parse_ipv4("224.0.0.1")));
  EXPECT_TRUE(is_martian_source(*parse_ipv4("240.0.0.1")));
  EXPECT_TRUE(is_martian_source(kIpv4Broadcast));
  EXPECT_FALSE(is_martian_source(*parse_ipv4("198.18.0.1")));
}

}  // namespace
}  // namespace mtlsgw::net
