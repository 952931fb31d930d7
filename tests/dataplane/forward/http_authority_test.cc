#include "dataplane/forward/http_authority.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/forward/http_request_parser.h"

namespace mtlsgw::forward::http {
namespace {

TEST(HttpAuthority, SplitsHostFromPort) {
  std::string_view host;
  ASSERT_TRUE(authority_host("api.example.test:8443", host));
  EXPECT_EQ(host, "api.example.test");
  ASSERT_TRUE(authority_host("api.example.test:", host));  // RFC 3986: port = *DIGIT
  EXPECT_EQ(host, "api.example.test");
  ASSERT_TRUE(authority_host("[2001:db8::1]:443", host));
  EXPECT_EQ(host, "[2001:db8::1]");
  ASSERT_TRUE(authority_host("198.18.0.2", host));
  EXPECT_EQ(host, "198.18.0.2");
  for (const char* bad : {"a b", "a:b", "a:123456", "u@a", "[::1", "[::1]x", "[zz]", "a/b", "a\"b"}) {
    EXPECT_FALSE(authority_host(bad, host)) << bad;
  }
}

TEST(HttpAuthority, HostMatchingRules) {
  EXPECT_TRUE(host_matches("API.Example.TEST", "api.example.test"));
  EXPECT_TRUE(host_matches("api.example.test.", "api.example.test"));
  EXPECT_TRUE(host_matches("api.example.test", "api.example.test."));
  EXPECT_FALSE(host_matches("api.example.test.evil", "api.example.test"));
  EXPECT_FALSE(host_matches("", "api.example.test"));
  EXPECT_TRUE(host_matches("dev.example.test", "*.example.test"));
  EXPECT_FALSE(host_matches("a.b.example.test", "*.example.test"));  // one label only
  EXPECT_FALSE(host_matches("example.test", "*.example.test"));
  EXPECT_FALSE(host_matches(".example.test", "*.example.test"));
}

struct Parsed {
  std::vector<char> buffer = std::vector<char>(4096);
  RequestLimits limits;
  RequestParser parser{std::span<char>(buffer), limits};
  explicit Parsed(std::string_view head) {
    const Step s = parser.feed({reinterpret_cast<const uint8_t*>(head.data()), head.size()});
    EXPECT_EQ(s.event, Event::kHead) << error_name(parser.error());
  }
};

TEST(HttpAuthority, RequestAgainstSni) {
  const std::string sni = "api.example.test";
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMatch);
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: API.example.test:443\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMatch);
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: other.example.test\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMisdirected);
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: \r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMisdirected);
  // Both the absolute-form authority and Host must match: an origin may read either.
  EXPECT_EQ(check_request_authority(
                Parsed("GET http://other.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMisdirected);
  EXPECT_EQ(check_request_authority(
                Parsed("GET https://api.example.test:443/x HTTP/1.1\r\nHost: other.example.test\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMisdirected);
  EXPECT_EQ(check_request_authority(
                Parsed("GET https://api.example.test/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kMatch);
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.0\r\n\r\n").parser.head(), sni),
            AuthorityCheck::kNoAuthority);
  // No SNI and no configured name: nothing to compare.
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: x\r\n\r\n").parser.head(), ""),
            AuthorityCheck::kMatch);
  // A client without SNI on a wildcard host: checked against the pattern.
  EXPECT_EQ(check_request_authority(Parsed("GET / HTTP/1.1\r\nHost: dev.example.test\r\n\r\n").parser.head(),
                                    "*.example.test"),
            AuthorityCheck::kMatch);
}

}  // namespace
}  // namespace mtlsgw::forward::http
