// Identity extraction: every ClientIdentity field from the PKI's certificates,
// checked against values OpenSSL computes on another path (X509_digest, BN
// conversion, the PEM file's own DER), plus escaping and caps on hostile
// certificates made in the test, and the session facts of real handshakes.

#include "dataplane/tls/client_identity_extract.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>

#include <string>
#include <vector>

#include "dataplane/tls/x509_text.h"
#include "test_pki.h"
#include "tls_pair.h"

namespace mtlsgw::tls {
namespace {

using testing::load_certificate;

ClientIdentity identity_of(const std::string& file) {
  X509Handle cert = load_certificate(file);
  ClientIdentity identity;
  EXPECT_TRUE(extract_certificate_identity(cert.get(), &identity)) << file;
  return identity;
}

std::string der_from_pem_file(const std::string& file) {
  const std::string pem = testing::read_test_pki(file);
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long length = 0;
  EXPECT_EQ(PEM_read_bio(bio.get(), &name, &header, &data, &length), 1);
  std::string der(reinterpret_cast<char*>(data), static_cast<std::size_t>(length));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return der;
}

TEST(ClientIdentityExtract, ReadsEveryFieldOfTheDevicesCertificate) {
  X509Handle cert = load_certificate("client-devices.pem");
  ClientIdentity identity;
  ASSERT_TRUE(extract_certificate_identity(cert.get(), &identity));

  EXPECT_TRUE(identity.presented);
  EXPECT_FALSE(identity.truncated);
  EXPECT_EQ(identity.subject_dn, "CN=device-001,OU=Fleet,O=Devices Example");
  EXPECT_EQ(identity.issuer_dn, "CN=Devices Issuing CA 1,O=Devices Example");
  EXPECT_EQ(identity.common_name, "device-001");
  EXPECT_EQ(identity.san_dns, std::vector<std::string>{"device-001.devices.example.test"});
  EXPECT_EQ(identity.san_uri, std::vector<std::string>{"spiffe://devices.example.test/device/001"});

  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr);
  char* serial_text = BN_bn2hex(serial);
  EXPECT_EQ(identity.serial_hex, serial_text);
  OPENSSL_free(serial_text);
  BN_free(serial);

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  ASSERT_EQ(X509_digest(cert.get(), EVP_sha256(), digest, &digest_length), 1);
  std::string expected_fingerprint;
  ASSERT_TRUE(hex_lower({digest, digest_length}, 64, &expected_fingerprint));
  EXPECT_EQ(identity.fingerprint_sha256_hex, expected_fingerprint);
  EXPECT_EQ(identity.fingerprint_sha256_hex.size(), 64u);

  EXPECT_EQ(identity.der, der_from_pem_file("client-devices.pem"));

  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert.get()), static_cast<time_t>(identity.not_before_epoch)), 0);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert.get()), static_cast<time_t>(identity.not_after_epoch)), 0);
  EXPECT_EQ(identity.not_after_epoch - identity.not_before_epoch, 825 * 86400);

  // The leaf's authorityKeyIdentifier is its issuer's subjectKeyIdentifier.
  const ClientIdentity issuer = identity_of("devices-int.pem");
  EXPECT_EQ(identity.ski_hex.size(), 40u);  // SHA-1 of the key (RFC 5280 4.2.1.2 method 1)
  EXPECT_EQ(identity.issuer_ski_hex, issuer.ski_hex);
  EXPECT_NE(identity.ski_hex, issuer.ski_hex);
}

TEST(ClientIdentityExtract, EscapesDistinguishedNamesAsRfc2253) {
  // A comma inside a value (RFC 2253 2.4).
  EXPECT_EQ(identity_of("client-partners.pem").subject_dn, "CN=partner-001,O=Partner\\, Inc.");
  // UTF-8 "Ö" as \C3\96: the DN stays ASCII for headers.
  const ClientIdentity other = identity_of("client-other.pem");
  EXPECT_EQ(other.issuer_dn, "CN=Other CA,O=\\C3\\96therwelt Beispiel");
  EXPECT_EQ(other.common_name, "other-001");
  EXPECT_TRUE(other.san_uri.empty());
  EXPECT_EQ(other.san_dns, std::vector<std::string>{"other-001.example.test"});
}

TEST(ClientIdentityExtract, HostileNamesAreEscapedNotPassedThrough) {
  testing::TestCertificate made = testing::make_test_certificate(
      "Jos\xc3\xa9\r\nX-Client-Verified: 1\\",
      {{"subjectAltName", "URI:https://\xc3\xa9.example.test/, DNS:a.example.test\r\nX: y"}});
  ClientIdentity identity;
  ASSERT_TRUE(extract_certificate_identity(made.cert.get(), &identity));
  // The CN keeps UTF-8, but control characters and the backslash become \XX.
  EXPECT_EQ(identity.common_name, "Jos\xc3\xa9\\0D\\0AX-Client-Verified: 1\\5C");
  EXPECT_EQ(identity.san_dns, std::vector<std::string>{"a.example.test\\0D\\0AX: y"});
  EXPECT_EQ(identity.san_uri, std::vector<std::string>{"https://\\C3\\A9.example.test/"});
  EXPECT_EQ(identity.subject_dn.find('\r'), std::string::npos);
  EXPECT_EQ(identity.subject_dn.find('\n'), std::string::npos);
  EXPECT_FALSE(identity.truncated);
}

TEST(ClientIdentityExtract, CapsEveryFieldAndSaysSo) {
  std::string many_sans;
  for (int i = 0; i < 40; ++i) many_sans += (i ? "," : "") + std::string("DNS:host") + std::to_string(i) + ".example.test";
  testing::TestCertificate made = testing::make_test_certificate(std::string(3000, 'c'), {{"subjectAltName", many_sans}});
  ClientIdentity identity;
  ASSERT_TRUE(extract_certificate_identity(made.cert.get(), &identity));
  EXPECT_TRUE(identity.truncated);
  EXPECT_EQ(identity.common_name.size(), ClientIdentity::kMaxTextBytes);
  EXPECT_LE(identity.subject_dn.size(), ClientIdentity::kMaxTextBytes);
  ASSERT_EQ(identity.san_dns.size(), ClientIdentity::kMaxSanEntries);
  EXPECT_EQ(identity.san_dns.front(), "host0.example.test");
  EXPECT_EQ(identity.san_dns.back(), "host15.example.test");

  // One SAN longer than the cap is left out, not cut.
  made = testing::make_test_certificate("long-san", {{"subjectAltName", "DNS:" + std::string(2000, 'a') + ",DNS:ok.example.test"}});
  identity.clear();
  ASSERT_TRUE(extract_certificate_identity(made.cert.get(), &identity));
  EXPECT_TRUE(identity.truncated);
  EXPECT_EQ(identity.san_dns, std::vector<std::string>{"ok.example.test"});

  // A certificate larger than the DER cap keeps its fingerprint, not its DER.
  made = testing::make_test_certificate("big", {{"nsComment", std::string(20000, 'x')}});
  identity.clear();
  ASSERT_TRUE(extract_certificate_identity(made.cert.get(), &identity));
  EXPECT_TRUE(identity.truncated);
  EXPECT_TRUE(identity.der.empty());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  ASSERT_EQ(X509_digest(made.cert.get(), EVP_sha256(), digest, &digest_length), 1);
  std::string expected;
  hex_lower({digest, digest_length}, 64, &expected);
  EXPECT_EQ(identity.fingerprint_sha256_hex, expected);
}

TEST(ClientIdentityExtract, UsesAPrefetchedDigestWhenGivenOne) {
  EvpMdHandle sha256(EVP_MD_fetch(nullptr, "SHA2-256", nullptr));
  ASSERT_NE(sha256, nullptr);
  X509Handle cert = load_certificate("client-devices-rsa.pem");
  ClientIdentity fetched;
  ClientIdentity implicit;
  ASSERT_TRUE(extract_certificate_identity(cert.get(), &fetched, sha256.get()));
  ASSERT_TRUE(extract_certificate_identity(cert.get(), &implicit));
  EXPECT_EQ(fetched.fingerprint_sha256_hex, implicit.fingerprint_sha256_hex);
  EXPECT_EQ(fetched.common_name, "device-002");
}

TEST(ClientIdentityExtract, AppliesTheVerdict) {
  ClientIdentity identity;
  apply_verdict(ClientVerdict{VerifyReason::ok, X509_V_OK, -1, 3}, &identity);
  EXPECT_TRUE(identity.verified);
  EXPECT_EQ(identity.verify_reason, "ok");
  apply_verdict(ClientVerdict{VerifyReason::revoked, X509_V_ERR_CERT_REVOKED, 0, 3}, &identity);
  EXPECT_FALSE(identity.verified);
  EXPECT_EQ(identity.verify_reason, "revoked");
}

TEST(ClientIdentityExtract, ClearEmptiesEverything) {
  ClientIdentity identity = identity_of("client-devices.pem");
  identity.tls_version = "TLSv1.3";
  identity.clear();
  EXPECT_FALSE(identity.presented);
  EXPECT_TRUE(identity.subject_dn.empty());
  EXPECT_TRUE(identity.der.empty());
  EXPECT_TRUE(identity.san_dns.empty());
  EXPECT_TRUE(identity.tls_version.empty());
  EXPECT_EQ(identity.not_after_epoch, 0);
}

TEST(ClientIdentityExtract, FormatsRfc3339) {
  char text[21];
  ASSERT_EQ(format_rfc3339_utc(0, text), 20u);
  EXPECT_STREQ(text, "1970-01-01T00:00:00Z");
  ASSERT_EQ(format_rfc3339_utc(1700000000, text), 20u);
  EXPECT_STREQ(text, "2023-11-14T22:13:20Z");
  ASSERT_EQ(format_rfc3339_utc(253402300799, text), 20u);
  EXPECT_STREQ(text, "9999-12-31T23:59:59Z");
  EXPECT_EQ(format_rfc3339_utc(253402300800, text), 0u);
}

// Session facts from a real handshake: a client with the devices certificate
// talks to api.example.test with ALPN h2.
class SessionIdentityTest : public ::testing::TestWithParam<std::tuple<int, const char*>> {};

int select_h2(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
              unsigned int in_length, void*) {
  static const unsigned char kOffer[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kOffer, sizeof kOffer, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

TEST_P(SessionIdentityTest, ReportsVersionCipherSniAlpnAndTheGatewayCertificate) {
  const auto [version, server_name] = GetParam();
  const std::string server(server_name);

  SslCtxHandle client_ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(client_ctx.get(), version);
  SSL_CTX_set_max_proto_version(client_ctx.get(), version);
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(client_ctx.get(),
                                               testing::test_pki_path("client-devices.chain.pem").c_str()),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(client_ctx.get(), testing::test_pki_path("client-devices.key").c_str(),
                                        SSL_FILETYPE_PEM),
            1);
  static const unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  ASSERT_EQ(SSL_CTX_set_alpn_protos(client_ctx.get(), kAlpn, sizeof kAlpn), 0);

  SslCtxHandle server_ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_EQ(SSL_CTX_use_certificate_file(server_ctx.get(), testing::test_pki_path(server + ".pem").c_str(),
                                         SSL_FILETYPE_PEM),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server_ctx.get(), testing::test_pki_path(server + ".key").c_str(),
                                        SSL_FILETYPE_PEM),
            1);
  SSL_CTX_set_verify(server_ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(server_ctx.get(), handshake_verify_callback, nullptr);
  SSL_CTX_set_alpn_select_cb(server_ctx.get(), select_h2, nullptr);

  std::string error;
  auto store = TrustStore::build({CaSource{"devices", testing::read_test_pki("devices-ca.pem"),
                                           testing::read_test_pki("devices.crl.pem")}},
                                 {}, &error);
  ASSERT_NE(store, nullptr) << error;
  auto trust = store->instantiate(&error);
  auto verifier = ClientVerifier::create();
  HandshakeVerify state;
  state.trust = trust.get();
  state.verifier = verifier.get();

  testing::TlsPair pair(client_ctx.get(), server_ctx.get());
  ASSERT_EQ(SSL_set_tlsext_host_name(pair.client(), "api.example.test"), 1);
  ASSERT_TRUE(attach_handshake_verify(pair.server(), &state));
  pair.handshake();
  ASSERT_TRUE(pair.server_done());
  ASSERT_TRUE(pair.client_done());

  ClientIdentity identity;
  identity.subject_dn = "left over from an earlier connection";
  ASSERT_TRUE(extract_client_identity(pair.server(), state.verdict, &identity));
  EXPECT_EQ(identity.tls_version, version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
  EXPECT_EQ(identity.cipher, SSL_CIPHER_get_name(SSL_get_current_cipher(pair.client())));
  EXPECT_FALSE(identity.cipher.empty());
  EXPECT_EQ(identity.sni, "api.example.test");
  EXPECT_EQ(identity.alpn, "h2");
  EXPECT_EQ(identity.sig_alg, "SHA256");
  EXPECT_EQ(identity.key_alg, server.find("rsa") != std::string::npos ? "RSA2048" : "EC256");
  EXPECT_TRUE(identity.presented);
  EXPECT_TRUE(identity.verified);
  EXPECT_EQ(identity.verify_reason, "ok");
  EXPECT_EQ(identity.subject_dn, "CN=device-001,OU=Fleet,O=Devices Example");
  EXPECT_EQ(identity.der, der_from_pem_file("client-devices.pem"));
}

INSTANTIATE_TEST_SUITE_P(VersionsAndKeys, SessionIdentityTest,
                         ::testing::Combine(::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                                            ::testing::Values("server-api-ecdsa", "server-api-rsa")));

TEST(SessionIdentity, WithoutAClientCertificateOnlySessionFactsAreSet) {
  SslCtxHandle client_ctx(SSL_CTX_new(TLS_client_method()));
  SslCtxHandle server_ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_EQ(SSL_CTX_use_certificate_file(server_ctx.get(), testing::test_pki_path("server-wild-ecdsa.pem").c_str(),
                                         SSL_FILETYPE_PEM),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server_ctx.get(), testing::test_pki_path("server-wild-ecdsa.key").c_str(),
                                        SSL_FILETYPE_PEM),
            1);
  testing::TlsPair pair(client_ctx.get(), server_ctx.get());
  pair.handshake();
  ASSERT_TRUE(pair.server_done());
  ClientIdentity identity;
  ASSERT_TRUE(extract_client_identity(pair.server(), ClientVerdict{}, &identity));
  EXPECT_FALSE(identity.presented);
  EXPECT_FALSE(identity.verified);
  EXPECT_EQ(identity.verify_reason, "no_certificate");
  EXPECT_TRUE(identity.subject_dn.empty());
  EXPECT_TRUE(identity.sni.empty());
  EXPECT_TRUE(identity.alpn.empty());
  EXPECT_EQ(identity.tls_version, "TLSv1.3");
  EXPECT_EQ(identity.key_alg, "EC256");
}

}  // namespace
}  // namespace mtlsgw::tls
