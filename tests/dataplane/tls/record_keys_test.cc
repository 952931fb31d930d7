#include "dataplane/tls/record_keys.h"

#include <gtest/gtest.h>

#include <vector>

#include "rfc8448_vectors.h"

namespace mtlsgw::tls {
namespace {

using testing::from_hex;
using testing::secret_from_hex;

std::vector<uint8_t> key_of(const TrafficKeys& keys) { return {keys.key.begin(), keys.key.begin() + keys.key_length}; }
std::vector<uint8_t> iv_of(const TrafficKeys& keys) { return {keys.iv.begin(), keys.iv.end()}; }

TEST(RecordKeys, SuitesWeProtect) {
  EXPECT_EQ(record_cipher_from_suite(0x1301), RecordCipher::aes_128_gcm_sha256);
  EXPECT_EQ(record_cipher_from_suite(0x1302), RecordCipher::aes_256_gcm_sha384);
  EXPECT_FALSE(record_cipher_from_suite(0x1303).has_value());  // ChaCha20-Poly1305 stays on OpenSSL
  EXPECT_FALSE(record_cipher_from_suite(0xc02f).has_value());  // a TLS 1.2 suite
  EXPECT_EQ(secret_length(RecordCipher::aes_256_gcm_sha384), 48u);
  EXPECT_EQ(key_length(RecordCipher::aes_256_gcm_sha384), 32u);
}

// RFC 8448 section 3: every traffic secret of the simple 1-RTT handshake
// gives the key and IV the RFC prints (RFC 8446 7.3).
TEST(RecordKeys, Rfc8448TrafficKeys) {
  for (const auto* v : {&testing::rfc8448::kClientHandshake, &testing::rfc8448::kServerHandshake,
                        &testing::rfc8448::kClientApplication, &testing::rfc8448::kServerApplication}) {
    SCOPED_TRACE(v->name);
    TrafficKeys keys;
    ASSERT_TRUE(derive_traffic_keys(RecordCipher::aes_128_gcm_sha256, secret_from_hex(v->secret), keys));
    EXPECT_EQ(key_of(keys), from_hex(v->key));
    EXPECT_EQ(iv_of(keys), from_hex(v->iv));
  }
}

// HKDF-Expand-Label with a context: RFC 8448's "derived" secret of section
// 3 is HKDF-Expand-Label(early secret, "derived", SHA-256(""), 32).
TEST(RecordKeys, Rfc8448ExpandLabelWithContext) {
  const auto early = from_hex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a");
  const auto empty_hash = from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  uint8_t derived[32];
  ASSERT_TRUE(hkdf_expand_label(RecordCipher::aes_128_gcm_sha256, early.data(), early.size(), "derived",
                                empty_hash.data(), empty_hash.size(), derived, sizeof derived));
  EXPECT_EQ(std::vector<uint8_t>(derived, derived + 32),
            from_hex("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"));
}

// 7.2: the next secret is HKDF-Expand-Label(current, "traffic upd", "", Hash.length),
// a different secret of the same length giving different keys; the chain is
// deterministic. (The interop test proves OpenSSL computes the same.)
TEST(RecordKeys, NextTrafficSecret) {
  for (RecordCipher cipher : {RecordCipher::aes_128_gcm_sha256, RecordCipher::aes_256_gcm_sha384}) {
    TrafficSecret current;
    current.length = static_cast<uint8_t>(secret_length(cipher));
    for (size_t i = 0; i < current.length; ++i) current.bytes[i] = static_cast<uint8_t>(i * 7 + 1);
    TrafficSecret next;
    TrafficSecret again;
    ASSERT_TRUE(next_traffic_secret(cipher, current, next));
    ASSERT_TRUE(next_traffic_secret(cipher, current, again));
    EXPECT_EQ(next.length, current.length);
    EXPECT_EQ(next.bytes, again.bytes);
    EXPECT_NE(next.bytes, current.bytes);
    uint8_t expected[48];
    ASSERT_TRUE(hkdf_expand_label(cipher, current.bytes.data(), current.length, "traffic upd", nullptr, 0,
                                  expected, current.length));
    EXPECT_EQ(std::vector<uint8_t>(next.bytes.begin(), next.bytes.begin() + next.length),
              std::vector<uint8_t>(expected, expected + current.length));
  }
}

TEST(RecordKeys, RefusesASecretOfTheWrongLength) {
  TrafficKeys keys;
  TrafficSecret secret = secret_from_hex(testing::rfc8448::kClientApplication.secret);  // 32 bytes
  EXPECT_FALSE(derive_traffic_keys(RecordCipher::aes_256_gcm_sha384, secret, keys));
  TrafficSecret next;
  EXPECT_FALSE(next_traffic_secret(RecordCipher::aes_256_gcm_sha384, secret, next));
}

}  // namespace
}  // namespace mtlsgw::tls
