// handshake_verify_callback inside real OpenSSL handshakes (client and server
// over a BIO pair): the alert a refused client hears for each reason, in TLS
// 1.3 and 1.2, and what "optional" lets through.

#include <gtest/gtest.h>

#include <string>

#include "dataplane/tls/client_verify.h"
#include "test_pki.h"
#include "tls_pair.h"

namespace mtlsgw::tls {
namespace {

using testing::TlsPair;

struct Case {
  const char* client_cert;  // chain file the client sends; "" sends none
  const char* client_key;
  VerifyReason reason;
};

// The client side: offers the certificate chain of a PKI file, accepts any
// server certificate (the server's behaviour is under test, not the client's).
SslCtxHandle client_ctx(int version, const Case& c) {
  SslCtxHandle ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (*c.client_cert != '\0') {
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx.get(), testing::test_pki_path(c.client_cert).c_str()), 1)
        << c.client_cert;
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), testing::test_pki_path(c.client_key).c_str(), SSL_FILETYPE_PEM),
              1)
        << c.client_key;
  }
  return ctx;
}

SslCtxHandle server_ctx(int version, bool required) {
  SslCtxHandle ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  X509Handle cert = testing::load_certificate("server-api-ecdsa.pem");
  EvpPkeyHandle key = testing::load_private_key("server-api-ecdsa.key");
  EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), cert.get()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key.get()), 1);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
  SSL_CTX_set_cert_verify_callback(ctx.get(), handshake_verify_callback, nullptr);
  return ctx;
}

std::unique_ptr<WorkerTrust> devices_trust(const char* crl = "devices.crl.pem") {
  std::string error;
  auto store = TrustStore::build(
      {CaSource{"devices", testing::read_test_pki("devices-ca.pem"), testing::read_test_pki(crl)}}, {}, &error);
  EXPECT_NE(store, nullptr) << error;
  return store != nullptr ? store->instantiate(&error) : nullptr;
}

class HandshakeVerifyTest : public ::testing::TestWithParam<int> {
 protected:
  bool tls13() const { return GetParam() == TLS1_3_VERSION; }

  // Runs one handshake against a required or optional devices host.
  void run(const Case& c, bool required, const WorkerTrust* trust) {
    SslCtxHandle client = client_ctx(GetParam(), c);
    SslCtxHandle server = server_ctx(GetParam(), required);
    pair_ = std::make_unique<TlsPair>(client.get(), server.get());
    state_ = HandshakeVerify{};
    state_.trust = trust;
    state_.verifier = verifier_.get();
    state_.required = required;
    ASSERT_TRUE(attach_handshake_verify(pair_->server(), &state_));
    ASSERT_EQ(handshake_verify_of(pair_->server()), &state_);
    pair_->handshake();
  }

  std::unique_ptr<ClientVerifier> verifier_ = ClientVerifier::create();
  std::unique_ptr<TlsPair> pair_;
  HandshakeVerify state_;
};

const Case kRefused[] = {
    {"client-unknown-ca.pem", "client-unknown-ca.key", VerifyReason::unknown_ca},
    {"client-self-signed.pem", "client-self-signed.key", VerifyReason::unknown_ca},
    {"client-partners.pem", "client-partners.key", VerifyReason::unknown_ca},
    {"client-issued-by-leaf.chain.pem", "client-issued-by-leaf.key", VerifyReason::unknown_ca},
    {"client-expired.chain.pem", "client-expired.key", VerifyReason::expired},
    {"client-not-yet-valid.chain.pem", "client-not-yet-valid.key", VerifyReason::not_yet_valid},
    {"client-revoked.chain.pem", "client-revoked.key", VerifyReason::revoked},
    {"client-server-eku.chain.pem", "client-server-eku.key", VerifyReason::wrong_usage},
    {"client-no-digitalsig.chain.pem", "client-no-digitalsig.key", VerifyReason::wrong_usage},
    {"client-deep.chain.pem", "client-deep.key", VerifyReason::chain_too_deep},
    {"client-bad-signature.chain.pem", "client-bad-signature.key", VerifyReason::bad_signature},
};

TEST_P(HandshakeVerifyTest, AValidCertificateCompletesTheHandshake) {
  auto trust = devices_trust();
  ASSERT_TRUE(trust);
  for (const char* file : {"client-devices.chain.pem", "client-devices-rsa.chain.pem", "client-depth2.chain.pem"}) {
    const std::string key = std::string(file).substr(0, std::string(file).find(".chain")) + ".key";
    run({file, key.c_str(), VerifyReason::ok}, true, trust.get());
    EXPECT_TRUE(pair_->client_done()) << file;
    EXPECT_TRUE(pair_->server_done()) << file;
    EXPECT_TRUE(state_.ran);
    EXPECT_EQ(name_of(state_.verdict.reason), "ok") << file;
    EXPECT_EQ(SSL_get_verify_result(pair_->server()), X509_V_OK);
    EXPECT_EQ(pair_->client_alert(), -1);
  }
}

TEST_P(HandshakeVerifyTest, ARequiredHostEndsTheHandshakeWithTheReasonsAlert) {
  auto trust = devices_trust();
  ASSERT_TRUE(trust);
  for (const Case& c : kRefused) {
    SCOPED_TRACE(c.client_cert);
    run(c, true, trust.get());
    EXPECT_TRUE(pair_->server_failed());
    EXPECT_FALSE(pair_->client_done());
    EXPECT_TRUE(state_.ran);
    EXPECT_EQ(name_of(state_.verdict.reason), name_of(c.reason));
    EXPECT_EQ(pair_->client_alert(), static_cast<int>(alert_for(c.reason, tls13())));
  }
}

TEST_P(HandshakeVerifyTest, AnOptionalHostLetsFailuresThroughMarkedUnverified) {
  auto trust = devices_trust();
  ASSERT_TRUE(trust);
  for (const Case& c : kRefused) {
    SCOPED_TRACE(c.client_cert);
    run(c, false, trust.get());
    EXPECT_TRUE(pair_->client_done());
    EXPECT_TRUE(pair_->server_done());
    EXPECT_EQ(pair_->client_alert(), -1);
    EXPECT_TRUE(state_.ran);
    EXPECT_EQ(name_of(state_.verdict.reason), name_of(c.reason));
    EXPECT_EQ(SSL_get_verify_result(pair_->server()), x509_error_for_alert(c.reason));
    EXPECT_NE(SSL_get0_peer_certificate(pair_->server()), nullptr);
  }
}

TEST_P(HandshakeVerifyTest, NoCertificate) {
  auto trust = devices_trust();
  ASSERT_TRUE(trust);
  run({"", "", VerifyReason::no_certificate}, true, trust.get());
  EXPECT_TRUE(pair_->server_failed());
  EXPECT_FALSE(state_.ran);
  EXPECT_EQ(state_.verdict.reason, VerifyReason::no_certificate);
  EXPECT_EQ(pair_->client_alert(), static_cast<int>(alert_for(VerifyReason::no_certificate, tls13())));

  run({"", "", VerifyReason::no_certificate}, false, trust.get());
  EXPECT_TRUE(pair_->client_done());
  EXPECT_TRUE(pair_->server_done());
  EXPECT_FALSE(state_.ran);
  EXPECT_EQ(state_.verdict.reason, VerifyReason::no_certificate);
}

TEST_P(HandshakeVerifyTest, AStaleCrlIsRevocationUnknownNotAPass) {
  // Only the root's CRL: the issuing CA's CRL is missing.
  const std::string all = testing::read_test_pki("devices.crl.pem");
  const std::string root_crl = all.substr(0, all.find("-----END X509 CRL-----") + 23);
  std::string error;
  auto store = TrustStore::build({CaSource{"devices", testing::read_test_pki("devices-root.pem"), root_crl}}, {},
                                 &error);
  ASSERT_NE(store, nullptr) << error;
  auto trust = store->instantiate(&error);
  ASSERT_NE(trust, nullptr) << error;
  run({"client-devices.chain.pem", "client-devices.key", VerifyReason::revocation_unknown}, true, trust.get());
  EXPECT_EQ(name_of(state_.verdict.reason), "revocation_unknown");
  EXPECT_EQ(pair_->client_alert(), static_cast<int>(TlsAlert::certificate_unknown));
}

TEST_P(HandshakeVerifyTest, AHostWithoutTrustKnowsNoCa) {
  run({"client-devices.chain.pem", "client-devices.key", VerifyReason::unknown_ca}, true, nullptr);
  EXPECT_TRUE(state_.ran);
  EXPECT_EQ(state_.verdict.reason, VerifyReason::unknown_ca);
  EXPECT_EQ(pair_->client_alert(), static_cast<int>(TlsAlert::unknown_ca));
}

TEST_P(HandshakeVerifyTest, MissingWiringIsAnInternalErrorNotAPass) {
  auto trust = devices_trust();
  ASSERT_TRUE(trust);
  // A verifier that was never attached: even the optional mode refuses.
  SslCtxHandle client = client_ctx(GetParam(), {"client-devices.chain.pem", "client-devices.key", VerifyReason::ok});
  SslCtxHandle server = server_ctx(GetParam(), false);
  TlsPair pair(client.get(), server.get());
  pair.handshake();
  EXPECT_TRUE(pair.server_failed());
  EXPECT_EQ(pair.client_alert(), static_cast<int>(TlsAlert::internal_error));

  // Attached without a verifier.
  SslCtxHandle client2 = client_ctx(GetParam(), {"client-devices.chain.pem", "client-devices.key", VerifyReason::ok});
  TlsPair pair2(client2.get(), server.get());
  HandshakeVerify unwired;
  unwired.trust = trust.get();
  ASSERT_TRUE(attach_handshake_verify(pair2.server(), &unwired));
  pair2.handshake();
  EXPECT_TRUE(pair2.server_failed());
  EXPECT_TRUE(unwired.ran);
  EXPECT_EQ(unwired.verdict.reason, VerifyReason::internal_error);
  EXPECT_EQ(pair2.client_alert(), static_cast<int>(TlsAlert::internal_error));
}

INSTANTIATE_TEST_SUITE_P(Versions, HandshakeVerifyTest, ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? std::string("tls13") : std::string("tls12");
                         });

}  // namespace
}  // namespace mtlsgw::tls
