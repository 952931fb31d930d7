#include "dataplane/forward/proxy_v2.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/crc32c.h"

namespace mtlsgw::forward::proxy_v2 {
namespace {

using Bytes = std::vector<uint8_t>;

void append(Bytes& b, std::initializer_list<uint8_t> bytes) { b.insert(b.end(), bytes); }
void append(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }

tls::ClientIdentity verified_identity() {
  tls::ClientIdentity id;
  id.presented = true;
  id.verified = true;
  id.verify_reason = "ok";
  id.common_name = "dev-1";
  id.der = std::string("\x30\x03\x02\x01\x05", 5);
  id.tls_version = "TLSv1.3";
  id.cipher = "TLS_AES_128_GCM_SHA256";
  id.sni = "api.example.test";
  id.alpn = "h2";
  id.sig_alg = "SHA256";  // the gateway's certificate, as 2.2.6 defines SIG_ALG
  id.key_alg = "EC256";
  return id;
}

Connection connection() {
  Connection c;
  c.client_address = 0xC6120001;  // 198.18.0.1
  c.client_port = 40000;
  c.local_address = 0xC6120002;  // 198.18.0.2
  c.local_port = 443;
  return c;
}

Bytes encode_all(const Connection& c, const tls::ClientIdentity& id, const Options& o) {
  Bytes out(kMaxHeaderLen);
  const EncodeResult r = encode(c, id, o, out.data(), out.size());
  EXPECT_EQ(r.error, EncodeError::kNone) << encode_error_name(r.error);
  out.resize(r.length);
  return out;
}

// Every byte laid out by hand from proxy-protocol.txt 2.2 and 2.2.6.
TEST(ProxyV2Encode, ByteExactAgainstAHandBuiltHeader) {
  Bytes expected;
  append(expected, {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});
  append(expected, {0x21, 0x11, 0x00, 0x75});  // v2 PROXY, TCP4, 117 bytes follow
  append(expected, {198, 18, 0, 1, 198, 18, 0, 2, 0x9C, 0x40, 0x01, 0xBB});
  append(expected, {0x01, 0x00, 0x02});
  append(expected, "h2");
  append(expected, {0x02, 0x00, 0x10});
  append(expected, "api.example.test");
  append(expected, {0x20, 0x00, 0x49});  // SSL: 5 + 10 + 8 + 25 + 9 + 8 + 8 = 73
  append(expected, {0x07, 0x00, 0x00, 0x00, 0x00});  // SSL | CERT_CONN | CERT_SESS, verified
  append(expected, {0x21, 0x00, 0x07});
  append(expected, "TLSv1.3");
  append(expected, {0x22, 0x00, 0x05});
  append(expected, "dev-1");
  append(expected, {0x23, 0x00, 0x16});
  append(expected, "TLS_AES_128_GCM_SHA256");
  append(expected, {0x24, 0x00, 0x06});
  append(expected, "SHA256");
  append(expected, {0x25, 0x00, 0x05});
  append(expected, "EC256");
  append(expected, {0x28, 0x00, 0x05, 0x30, 0x03, 0x02, 0x01, 0x05});
  append(expected, {0xE0, 0x00, 0x02});
  append(expected, "ok");
  ASSERT_EQ(expected.size(), 16u + 117u);

  const Bytes got = encode_all(connection(), verified_identity(), Options{});
  EXPECT_EQ(got, expected);
  EXPECT_EQ(encoded_length(connection(), verified_identity(), Options{}), expected.size());
}

TEST(ProxyV2Encode, RoundTripsEveryTlv) {
  Connection c = connection();
  c.group = "x25519";
  c.sig_scheme = "ecdsa_secp256r1_sha256";
  c.unique_id = "conn-0001";
  Options o;
  o.crc32c = true;
  const tls::ClientIdentity id = verified_identity();
  const Bytes wire = encode_all(c, id, o);

  Decoded d;
  const DecodeResult r = decode(wire.data(), wire.size(), d);
  ASSERT_EQ(r.error, DecodeError::kNone) << decode_error_name(r.error);
  EXPECT_EQ(d.header_length, wire.size());
  EXPECT_EQ(d.command, kCommandProxy);
  EXPECT_EQ(d.family, kFamilyTcp4);
  EXPECT_EQ(d.source_address, c.client_address);
  EXPECT_EQ(d.destination_address, c.local_address);
  EXPECT_EQ(d.source_port, 40000);
  EXPECT_EQ(d.destination_port, 443);
  EXPECT_TRUE(d.has_crc32c);
  EXPECT_EQ(d.alpn, "h2");
  EXPECT_EQ(d.authority, "api.example.test");
  EXPECT_EQ(d.unique_id, "conn-0001");
  EXPECT_EQ(d.verify_reason, "ok");
  ASSERT_TRUE(d.has_ssl);
  EXPECT_EQ(d.ssl_client, kClientSsl | kClientCertConn | kClientCertSess);
  EXPECT_EQ(d.ssl_verify, kVerifyOk);
  EXPECT_EQ(d.ssl_version, "TLSv1.3");
  EXPECT_EQ(d.ssl_cn, "dev-1");
  EXPECT_EQ(d.ssl_cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(d.ssl_sig_alg, "SHA256");
  EXPECT_EQ(d.ssl_key_alg, "EC256");
  EXPECT_EQ(d.ssl_group, "x25519");
  EXPECT_EQ(d.ssl_sig_scheme, "ecdsa_secp256r1_sha256");
  EXPECT_EQ(d.ssl_client_cert, id.der);
  EXPECT_EQ(d.unknown_count, 0u);
  EXPECT_EQ(d.ssl_unknown_count, 0u);
}

TEST(ProxyV2Encode, Crc32cIsFirstAndCoversTheHeaderWithItselfZero) {
  Options o;
  o.crc32c = true;
  Bytes wire = encode_all(connection(), verified_identity(), o);
  // The CRC TLV comes right after the addresses (16 + 12).
  ASSERT_EQ(wire[28], kTypeCrc32c);
  ASSERT_EQ(wire[29], 0);
  ASSERT_EQ(wire[30], 4);
  const uint32_t sent = uint32_t{wire[31]} << 24 | uint32_t{wire[32]} << 16 |
                        uint32_t{wire[33]} << 8 | wire[34];
  Bytes zeroed = wire;
  zeroed[31] = zeroed[32] = zeroed[33] = zeroed[34] = 0;
  EXPECT_EQ(sent, crc32c(zeroed.data(), zeroed.size()));

  Decoded d;
  wire[wire.size() - 1] ^= 0x01;  // one flipped bit in the last TLV
  EXPECT_EQ(decode(wire.data(), wire.size(), d).error, DecodeError::kBadCrc32c);
}

TEST(ProxyV2Encode, UnverifiedAndAbsentCertificates) {
  tls::ClientIdentity id = verified_identity();
  id.verified = false;
  id.verify_reason = "expired";
  Decoded d;
  Bytes wire = encode_all(connection(), id, Options{});
  ASSERT_EQ(decode(wire.data(), wire.size(), d).error, DecodeError::kNone);
  EXPECT_EQ(d.ssl_client, kClientSsl | kClientCertConn | kClientCertSess);
  EXPECT_EQ(d.ssl_verify, kVerifyFailed);
  EXPECT_EQ(d.verify_reason, "expired");
  EXPECT_EQ(d.ssl_client_cert, id.der);  // presented: the origin may judge it

  tls::ClientIdentity none;
  none.verify_reason = "no_certificate";
  none.tls_version = "TLSv1.2";
  none.common_name = "stale";  // must not be sent without a certificate
  none.der = "stale";
  wire = encode_all(connection(), none, Options{});
  ASSERT_EQ(decode(wire.data(), wire.size(), d).error, DecodeError::kNone);
  EXPECT_EQ(d.ssl_client, kClientSsl);
  EXPECT_EQ(d.ssl_verify, kVerifyFailed);
  EXPECT_TRUE(d.ssl_cn.empty());
  EXPECT_TRUE(d.ssl_client_cert.empty());
  EXPECT_TRUE(d.alpn.empty());
  EXPECT_TRUE(d.authority.empty());
  EXPECT_EQ(d.ssl_version, "TLSv1.2");
}

TEST(ProxyV2Encode, ResumedSessionClearsCertConnOnly) {
  Connection c = connection();
  c.session_resumed = true;
  const Bytes wire = encode_all(c, verified_identity(), Options{});
  Decoded d;
  ASSERT_EQ(decode(wire.data(), wire.size(), d).error, DecodeError::kNone);
  EXPECT_EQ(d.ssl_client, kClientSsl | kClientCertSess);
  EXPECT_EQ(d.ssl_verify, kVerifyOk);
}

TEST(ProxyV2Encode, OptionsSwitchTlvsOff) {
  Options o;
  o.alpn = o.authority = o.ssl_client_cert = o.ssl_cn = o.verify_reason = false;
  const Bytes wire = encode_all(connection(), verified_identity(), o);
  Decoded d;
  ASSERT_EQ(decode(wire.data(), wire.size(), d).error, DecodeError::kNone);
  EXPECT_TRUE(d.alpn.empty());
  EXPECT_TRUE(d.authority.empty());
  EXPECT_TRUE(d.ssl_cn.empty());
  EXPECT_TRUE(d.ssl_client_cert.empty());
  EXPECT_TRUE(d.verify_reason.empty());
  EXPECT_EQ(d.ssl_cipher, "TLS_AES_128_GCM_SHA256");

  o.ssl = false;
  const Bytes bare = encode_all(connection(), verified_identity(), o);
  ASSERT_EQ(decode(bare.data(), bare.size(), d).error, DecodeError::kNone);
  EXPECT_FALSE(d.has_ssl);
  EXPECT_EQ(bare.size(), kFixedHeaderLen + kTcp4AddressLen);
}

TEST(ProxyV2Encode, BufferTooSmallSaysWhatIsNeeded) {
  const size_t need = encoded_length(connection(), verified_identity(), Options{});
  Bytes out(need);
  for (size_t capacity : {size_t{0}, size_t{16}, need - 1}) {
    const EncodeResult r = encode(connection(), verified_identity(), Options{}, out.data(), capacity);
    EXPECT_EQ(r.error, EncodeError::kBufferTooSmall) << capacity;
    EXPECT_EQ(r.length, need);
  }
  EXPECT_EQ(encode(connection(), verified_identity(), Options{}, out.data(), need).error,
            EncodeError::kNone);
}

// The length field is 16 bits: 12 address bytes + SSL TLV (3 + 5) + the
// client-cert sub-TLV (3 + DER) = 23 + DER must stay <= 65535.
TEST(ProxyV2Encode, SixtyFourKibLimitIsExact) {
  Options o;
  o.alpn = o.authority = o.verify_reason = false;
  tls::ClientIdentity id;
  id.presented = true;
  id.der.assign(65535 - 23, 'x');
  Bytes out(kMaxHeaderLen + 16);
  EncodeResult r = encode(Connection{}, id, o, out.data(), out.size());
  ASSERT_EQ(r.error, EncodeError::kNone);
  EXPECT_EQ(r.length, kMaxHeaderLen);
  EXPECT_EQ(out[14], 0xFF);
  EXPECT_EQ(out[15], 0xFF);
  Decoded d;
  ASSERT_EQ(decode(out.data(), r.length, d).error, DecodeError::kNone);
  EXPECT_EQ(d.ssl_client_cert.size(), id.der.size());

  id.der.push_back('x');
  r = encode(Connection{}, id, o, out.data(), out.size());
  EXPECT_EQ(r.error, EncodeError::kTooLarge);
  EXPECT_EQ(r.length, kMaxHeaderLen + 1);
}

TEST(ProxyV2Encode, UniqueIdOver128BytesIsRefused) {
  Connection c = connection();
  const std::string id128(128, 'u');
  c.unique_id = id128;
  Bytes out(kMaxHeaderLen);
  EXPECT_EQ(encode(c, verified_identity(), Options{}, out.data(), out.size()).error,
            EncodeError::kNone);
  const std::string id129(129, 'u');
  c.unique_id = id129;
  EXPECT_EQ(encode(c, verified_identity(), Options{}, out.data(), out.size()).error,
            EncodeError::kUniqueIdTooLong);
}

// ---- The decoder on its own: what a test origin must refuse. ----

Bytes minimal_header() {
  Bytes b(kSignature, kSignature + 12);
  append(b, {0x21, 0x11, 0x00, 0x0C, 198, 18, 0, 1, 198, 18, 0, 2, 0x9C, 0x40, 0x01, 0xBB});
  return b;
}

void set_length(Bytes& b) {
  const size_t n = b.size() - kFixedHeaderLen;
  b[14] = static_cast<uint8_t>(n >> 8);
  b[15] = static_cast<uint8_t>(n);
}

TEST(ProxyV2Decode, IncompleteHeadersAskForTheirLength) {
  const Bytes b = minimal_header();
  Decoded d;
  for (size_t len = 0; len < b.size(); ++len) {
    const DecodeResult r = decode(b.data(), len, d);
    EXPECT_EQ(r.error, DecodeError::kIncomplete) << len;
    if (len >= kFixedHeaderLen) {
      EXPECT_EQ(r.needed_length, b.size());
    }
  }
  Bytes with_data = b;
  append(with_data, "GET / HTTP/1.1\r\n");
  const DecodeResult r = decode(with_data.data(), with_data.size(), d);
  EXPECT_EQ(r.error, DecodeError::kNone);
  EXPECT_EQ(d.header_length, b.size());
}

TEST(ProxyV2Decode, RefusesMalformedHeaders) {
  Decoded d;
  Bytes b = minimal_header();
  b[3] = 'x';
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadSignature);
  b = minimal_header();
  b[12] = 0x11;  // version 1
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadVersion);
  b = minimal_header();
  b[12] = 0x22;  // command 2
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadCommand);
  b = minimal_header();
  b[13] = 0x41;
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadFamily);
  b = minimal_header();
  b[15] = 0x08;  // TCP4 needs 12 address bytes
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadAddressLength);

  b = minimal_header();
  append(b, {kTypeAlpn, 0x00, 0x05, 'h', '2'});  // value runs past the header
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadTlv);
  b = minimal_header();
  append(b, {kTypeAlpn, 0x00});  // a TLV header cut short
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadTlv);
  b = minimal_header();
  append(b, {kTypeAlpn, 0x00, 0x02, 'h', '2', kTypeAlpn, 0x00, 0x02, 'h', '3'});
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kDuplicateTlv);
  b = minimal_header();
  append(b, {kTypeSsl, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00});  // no room for verify
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadSslTlv);
  b = minimal_header();
  append(b, {kTypeSsl, 0x00, 0x08, 0x01, 0, 0, 0, 0, kSubtypeSslCn, 0x00, 0x09});
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadSslTlv);
  b = minimal_header();
  append(b, {kTypeCrc32c, 0x00, 0x02, 0, 0});
  set_length(b);
  EXPECT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kBadCrc32c);
}

TEST(ProxyV2Decode, SkipsUnknownAndNoopTlvsAndAcceptsLocal) {
  Bytes b = minimal_header();
  append(b, {kTypeNoop, 0x00, 0x01, 0x00, 0xE5, 0x00, 0x01, 'z', kTypeNetns, 0x00, 0x00});
  set_length(b);
  Decoded d;
  ASSERT_EQ(decode(b.data(), b.size(), d).error, DecodeError::kNone);
  EXPECT_EQ(d.noop_count, 1u);
  EXPECT_EQ(d.unknown_count, 2u);

  Bytes local(kSignature, kSignature + 12);
  append(local, {0x20, 0x00, 0x00, 0x00});
  ASSERT_EQ(decode(local.data(), local.size(), d).error, DecodeError::kNone);
  EXPECT_EQ(d.command, kCommandLocal);
  EXPECT_EQ(d.header_length, 16u);
}

}  // namespace
}  // namespace mtlsgw::forward::proxy_v2
