#include "dataplane/forward/http_identity.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Parsed {
  std::vector<char> buffer = std::vector<char>(65535);
  RequestLimits limits;
  RequestParser parser{std::span<char>(buffer), limits};
  explicit Parsed(std::string_view head) {
    const Step s = parser.feed(bytes(head));
    EXPECT_EQ(s.event, Event::kHead) << error_name(parser.error());
    EXPECT_EQ(s.consumed, head.size());
  }
  const RequestHead& head() const { return parser.head(); }
};

tls::ClientIdentity identity() {
  tls::ClientIdentity id;
  id.presented = true;
  id.verified = true;
  id.verify_reason = "ok";
  id.subject_dn = "CN=dev-1,O=Devices";
  id.issuer_dn = "CN=Devices CA,O=Example";
  id.serial_hex = "0A1B";
  id.fingerprint_sha256_hex = std::string(32, 'a') + std::string(32, 'b');
  id.not_before_epoch = 1735689600;  // 2025-01-01T00:00:00Z
  id.not_after_epoch = 1767225599;   // 2025-12-31T23:59:59Z
  id.der = std::string("\x30\x03\x02\x01\x05", 5);
  return id;
}

std::string rewrite(const RequestHead& head, const tls::ClientIdentity& id,
                    const IdentityConfig& config = {}) {
  std::string out(65536, '\0');
  const RewriteResult r = rewrite_request_head(head, id, config, out.data(), out.size());
  EXPECT_EQ(r.error, RewriteError::kNone);
  out.resize(r.length);
  return out;
}

// All values of the field name in a rewritten head, through our own parser.
std::vector<std::string> values_of(const std::string& rewritten, std::string_view name) {
  Parsed again(rewritten);
  std::vector<std::string> values;
  for (size_t i = 0; i < again.head().fields.size(); ++i) {
    if (iequals(again.head().field_name(i), name)) values.emplace_back(again.head().field_value(i));
  }
  return values;
}

const std::string kSpoofed =
    "GET /x HTTP/1.1\r\n"
    "Host: api.example.test\r\n"
    "x-client-verified: true\r\n"
    "Accept: */*\r\n"
    "CLIENT-CERT: :AAAA:\r\n"
    "X-Client-Subject: CN=admin\r\n"
    "x-CLIENT-subject: CN=root\r\n"
    "Client-Cert-Chain: :BBBB:\r\n"
    "X-Client-Verify-Reason: ok\r\n"
    "X-Client-Not-After:9999-12-31T23:59:59Z\r\n"
    "X-Forwarded-For: 198.18.0.9\r\n"
    "\r\n";

TEST(HttpIdentity, SpoofedFieldsRemovedIdentityAddedByteExact) {
  Parsed p(kSpoofed);
  std::string out(4096, '\0');
  const RewriteResult r = rewrite_request_head(p.head(), identity(), {}, out.data(), out.size());
  ASSERT_EQ(r.error, RewriteError::kNone);
  EXPECT_EQ(r.removed, 7);
  out.resize(r.length);
  EXPECT_EQ(out,
            "GET /x HTTP/1.1\r\n"
            "Host: api.example.test\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 198.18.0.9\r\n"
            "X-Client-Verified: true\r\n"
            "X-Client-Verify-Reason: ok\r\n"
            "X-Client-Subject: CN=dev-1,O=Devices\r\n"
            "X-Client-Issuer: CN=Devices CA,O=Example\r\n"
            "X-Client-Serial: 0A1B\r\n"
            "X-Client-Fingerprint: " + std::string(32, 'a') + std::string(32, 'b') + "\r\n"
            "X-Client-Not-Before: 2025-01-01T00:00:00Z\r\n"
            "X-Client-Not-After: 2025-12-31T23:59:59Z\r\n"
            "Client-Cert: :MAMCAQU=:\r\n"
            "\r\n");
}

TEST(HttpIdentity, ClientCertIsTheRfc9440ByteSequenceOfTheDer) {
  Parsed p("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  tls::ClientIdentity id = identity();
  id.der = std::string("\xfb\xff\xbf" "foobar", 9);
  EXPECT_EQ(values_of(rewrite(p.head(), id), "client-cert"), std::vector<std::string>{":+/+/Zm9vYmFy:"});

  id.der.assign(tls::ClientIdentity::kMaxDerBytes, '\x30');
  const std::vector<std::string> big = values_of(rewrite(p.head(), id), "Client-Cert");
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].size(), 2 + (id.der.size() + 2) / 3 * 4);
  EXPECT_EQ(big[0].substr(0, 5), ":MDAw");
  EXPECT_EQ(big[0].back(), ':');
}

TEST(HttpIdentity, CertificateFieldsAreHeaderSafe) {
  Parsed p("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  tls::ClientIdentity id = identity();
  id.subject_dn = "CN=evil\r\nX-Client-Verified: true";
  id.issuer_dn = std::string(" CN=a\\,b\0\x7f\t\xc3\xa9 ", 14);
  id.serial_hex = "0A\n";
  const std::string out = rewrite(p.head(), id);
  EXPECT_EQ(values_of(out, "X-Client-Subject"),
            std::vector<std::string>{"CN=evil\\0D\\0AX-Client-Verified: true"});
  EXPECT_EQ(values_of(out, "X-Client-Issuer"), std::vector<std::string>{"\\20CN=a\\,b\\00\\7F\\09\\C3\\A9\\20"});
  EXPECT_EQ(values_of(out, "X-Client-Serial"), std::vector<std::string>{"0A\\0A"});
  EXPECT_EQ(values_of(out, "X-Client-Verified"), std::vector<std::string>{"true"});
  for (char c : out) {
    const auto u = static_cast<uint8_t>(c);
    EXPECT_TRUE(u == '\r' || u == '\n' || (u >= 0x20 && u < 0x7f)) << int{u};
  }
  EXPECT_EQ(safe_value_length("a b"), 3u);
  EXPECT_EQ(safe_value_length(" "), 3u);
  EXPECT_EQ(safe_value_length(""), 0u);
}

TEST(HttpIdentity, UnverifiedAndAbsentCertificates) {
  Parsed p(kSpoofed);
  tls::ClientIdentity id = identity();
  id.verified = false;
  id.verify_reason = "expired";
  std::string out = rewrite(p.head(), id);
  EXPECT_EQ(values_of(out, "X-Client-Verified"), std::vector<std::string>{"false"});
  EXPECT_EQ(values_of(out, "X-Client-Verify-Reason"), std::vector<std::string>{"expired"});
  EXPECT_EQ(values_of(out, "X-Client-Subject"), std::vector<std::string>{"CN=dev-1,O=Devices"});
  EXPECT_TRUE(values_of(out, "Client-Cert").empty());  // not for an unverified certificate
  EXPECT_TRUE(values_of(out, "Client-Cert-Chain").empty());

  IdentityConfig send_anyway;
  send_anyway.client_cert_when_unverified = true;
  out = rewrite(p.head(), id, send_anyway);
  EXPECT_EQ(values_of(out, "Client-Cert"), std::vector<std::string>{":MAMCAQU=:"});

  tls::ClientIdentity none;
  none.verify_reason = "no_certificate";
  none.subject_dn = "CN=stale";  // never sent without a certificate
  out = rewrite(p.head(), none);
  Parsed again(out);
  ASSERT_EQ(again.head().fields.size(), 5u);
  EXPECT_EQ(values_of(out, "X-Client-Verified"), std::vector<std::string>{"false"});
  EXPECT_EQ(values_of(out, "X-Client-Verify-Reason"), std::vector<std::string>{"no_certificate"});
  EXPECT_TRUE(values_of(out, "X-Client-Subject").empty());
  EXPECT_TRUE(values_of(out, "X-Client-Not-After").empty());
}

TEST(HttpIdentity, ConfiguredNamesAreRemovedToo) {
  IdentityConfig config;
  config.names.verified = "X-Mtls-Verified";
  static constexpr std::string_view kStrip[] = {"X-Ssl-Client-Der"};
  config.strip_names = kStrip;
  Parsed p("GET / HTTP/1.1\r\nHost: h\r\nx-mtls-VERIFIED: true\r\nX-SSL-Client-DER: x\r\n"
           "X-Client-Subject: CN=spoof\r\n\r\n");
  const std::string out = rewrite(p.head(), identity(), config);
  EXPECT_EQ(values_of(out, "X-Mtls-Verified"), std::vector<std::string>{"true"});
  EXPECT_TRUE(values_of(out, "X-Ssl-Client-Der").empty());
  // The added names are always removed from what the client sent.
  EXPECT_EQ(values_of(out, "X-Client-Subject"), std::vector<std::string>{"CN=dev-1,O=Devices"});
  EXPECT_TRUE(is_identity_field("client-cert", config));
  EXPECT_FALSE(is_identity_field("Client-Cert-Chain", config));  // not in this strip list
}

TEST(HttpIdentity, ConnectionNamingAnIdentityFieldIsRefused) {
  Parsed p("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-CLIENT-VERIFIED\r\n\r\n");
  char out[1024];
  EXPECT_EQ(rewrite_request_head(p.head(), identity(), {}, out, sizeof out).error,
            RewriteError::kConnectionNamesIdentityField);
  Parsed fine("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: x\r\n\r\n");
  EXPECT_EQ(rewrite_request_head(fine.head(), identity(), {}, out, sizeof out).error, RewriteError::kNone);
}

TEST(HttpIdentity, BufferTooSmallSaysWhatIsNeeded) {
  Parsed p(kSpoofed);
  std::string out(4096, '\0');
  const RewriteResult full = rewrite_request_head(p.head(), identity(), {}, out.data(), out.size());
  ASSERT_EQ(full.error, RewriteError::kNone);
  const RewriteResult small =
      rewrite_request_head(p.head(), identity(), {}, out.data(), full.length - 1);
  EXPECT_EQ(small.error, RewriteError::kBufferTooSmall);
  EXPECT_EQ(small.length, full.length);
  EXPECT_EQ(rewrite_request_head(p.head(), identity(), {}, out.data(), full.length).length,
            full.length);
}

}  // namespace
}  // namespace mtlsgw::forward::http
