// handshake_verify_callback inside real OpenSSL handshakes (client and server
// over a BIO pair): the alert a refused client hears for each reason, in TLS
// 1.3 and 1.2, and what "optional" lets through.

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "dataplane/tls/client_verify.h"
#include "dataplane/tls/x509_text.h"
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
  void run(const Case& c, bool required, const WorkerTrust* trust, VerdictCache* cache = nullptr,
           const RevocationSet* revocations = nullptr) {
    SslCtxHandle client = client_ctx(GetParam(), c);
    SslCtxHandle server = server_ctx(GetParam(), required);
    pair_ = std::make_unique<TlsPair>(client.get(), server.get());
    state_ = HandshakeVerify{};
    state_.trust = trust;
    state_.verifier = verifier_.get();
    state_.required = required;
    state_.cache = cache;
    state_.revocations = revocations;
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

std::unique_ptr<VerdictCache> make_cache() {
  std::string error;
  auto cache = VerdictCache::create(VerdictCacheOptions{1024, 3600}, &error);
  EXPECT_NE(cache, nullptr) << error;
  return cache;
}

std::unique_ptr<const RevocationSet> revoke_serial_of(const char* ca_file, const char* cert_file) {
  X509Handle cert = testing::load_certificate(cert_file);
  std::string hex;
  EXPECT_TRUE(cert != nullptr && serial_hex(X509_get0_serialNumber(cert.get()), 256, &hex));
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::ca_serial;
  entry.ca_name = "devices";
  std::string error;
  EXPECT_TRUE(parse_serial_hex(hex, &entry.serial, &error)) << error;
  auto set = RevocationSet::build({entry}, {CaSource{"devices", testing::read_test_pki(ca_file), ""}}, &error);
  EXPECT_NE(set, nullptr) << error;
  return set;
}

const Case kDevice{"client-devices.chain.pem", "client-devices.key", VerifyReason::ok};

TEST_P(HandshakeVerifyTest, TheSecondConnectionHitsTheCache) {
  auto trust = devices_trust();
  auto cache = make_cache();
  ASSERT_TRUE(trust && cache);
  run(kDevice, true, trust.get(), cache.get());
  EXPECT_TRUE(pair_->client_done());
  EXPECT_TRUE(pair_->server_done());
  EXPECT_EQ(name_of(state_.verdict.reason), "ok");
  EXPECT_FALSE(state_.cache_hit);
  ASSERT_TRUE(state_.leaf_sha256_known);
  const auto first_sha256 = state_.leaf_sha256;

  run(kDevice, true, trust.get(), cache.get());
  EXPECT_TRUE(pair_->client_done());
  EXPECT_TRUE(pair_->server_done());
  EXPECT_EQ(name_of(state_.verdict.reason), "ok");
  EXPECT_TRUE(state_.cache_hit);
  EXPECT_EQ(state_.verdict.chain_length, 3);
  EXPECT_EQ(SSL_get_verify_result(pair_->server()), X509_V_OK);
  EXPECT_TRUE(state_.leaf_sha256_known);
  EXPECT_EQ(state_.leaf_sha256, first_sha256);
  EXPECT_EQ(verifier_->cache_counters().hits, 1u);
  EXPECT_EQ(verifier_->cache_counters().inserts, 1u);
}

TEST_P(HandshakeVerifyTest, AnOperatorRevocationEndsACachedClientsHandshake) {
  auto trust = devices_trust();
  auto cache = make_cache();
  auto revoked_int = revoke_serial_of("devices-ca.pem", "devices-int.pem");
  ASSERT_TRUE(trust && cache && revoked_int);
  run(kDevice, true, trust.get(), cache.get());
  ASSERT_TRUE(pair_->server_done());
  run(kDevice, true, trust.get(), cache.get(), revoked_int.get());
  EXPECT_TRUE(pair_->server_failed());
  EXPECT_TRUE(state_.cache_hit);
  EXPECT_EQ(name_of(state_.verdict.reason), "revoked");
  EXPECT_EQ(state_.verdict.error_depth, 1);
  EXPECT_EQ(pair_->client_alert(), static_cast<int>(TlsAlert::certificate_revoked));
  // Lifted (an empty set published): the same cached verdict serves again.
  auto none = RevocationSet::build({}, {}, nullptr);
  ASSERT_TRUE(none);
  run(kDevice, true, trust.get(), cache.get(), none.get());
  EXPECT_TRUE(pair_->server_done());
  EXPECT_TRUE(state_.cache_hit);
}

TEST_P(HandshakeVerifyTest, AHostWithoutTrustStillKnowsTheLeafsDigest) {
  run(kDevice, true, nullptr);
  EXPECT_EQ(state_.verdict.reason, VerifyReason::unknown_ca);
  EXPECT_TRUE(state_.leaf_sha256_known);
  EXPECT_FALSE(state_.cache_hit);
}

// A TLS 1.2 client and server over memory BIOs whose client-to-server bytes
// can have the last byte of the client's CertificateVerify flipped: the end
// of the ECDSA signature's s, so the message still parses but the signature
// does not verify. TLS 1.2 sends that message in the clear (RFC 5246 7.4.8,
// before ChangeCipherSpec); in TLS 1.3 it is encrypted, and a flipped byte
// would fail the record's AEAD tag first, so the test runs on 1.2. libssl
// checks CertificateVerify in one function for both versions
// (tls_process_cert_verify), after our verify callback.
class TamperingPair {
 public:
  TamperingPair(SSL_CTX* client_ctx, SSL_CTX* server_ctx, bool tamper)
      : client_(SSL_new(client_ctx)), server_(SSL_new(server_ctx)), tamper_(tamper) {
    client_in_ = BIO_new(BIO_s_mem());
    client_out_ = BIO_new(BIO_s_mem());
    server_in_ = BIO_new(BIO_s_mem());
    server_out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(client_.get(), client_in_, client_out_);
    SSL_set_bio(server_.get(), server_in_, server_out_);
    SSL_set_connect_state(client_.get());
    SSL_set_accept_state(server_.get());
    SSL_set_app_data(client_.get(), this);
    SSL_set_info_callback(client_.get(), [](const SSL* ssl, int where, int value) {
      if ((where & SSL_CB_READ_ALERT) != 0) static_cast<TamperingPair*>(SSL_get_app_data(ssl))->alert_ = value & 0xff;
    });
  }

  SSL* server() const { return server_.get(); }

  void handshake() {
    for (int round = 0; round < 64 && !(client_done_ && server_done_); ++round) {
      if (!client_done_ && !client_failed_) step(client_.get(), &client_done_, &client_failed_);
      forward_client();
      if (!server_done_ && !server_failed_) step(server_.get(), &server_done_, &server_failed_);
      forward_server();
      if (client_failed_ || server_failed_) break;
    }
    // The server's alert, if any, is now in the client's input.
    if (server_failed_ && !client_failed_ && !client_done_) step(client_.get(), &client_done_, &client_failed_);
    ERR_clear_error();
  }

  bool done() const { return client_done_ && server_done_; }
  bool server_failed() const { return server_failed_; }
  bool tampered() const { return tampered_; }
  int client_alert() const { return alert_; }

 private:
  static void step(SSL* ssl, bool* done, bool* failed) { testing::handshake_step(ssl, done, failed); }

  void forward_server() {
    char buffer[16384];
    for (int n; (n = BIO_read(server_out_, buffer, sizeof buffer)) > 0;) BIO_write(client_in_, buffer, n);
  }

  // Whole records only; handshake records before the client's
  // ChangeCipherSpec are plaintext, one or more messages each.
  void forward_client() {
    char buffer[16384];
    for (int n; (n = BIO_read(client_out_, buffer, sizeof buffer)) > 0;) pending_.insert(pending_.end(), buffer, buffer + n);
    std::size_t at = 0;
    while (pending_.size() - at >= 5) {
      const uint8_t type = pending_[at];
      const std::size_t length = static_cast<std::size_t>(pending_[at + 3]) << 8 | pending_[at + 4];
      if (pending_.size() - at < 5 + length) break;
      if (type == 20) after_change_cipher_spec_ = true;
      if (type == 22 && tamper_ && !after_change_cipher_spec_) tamper_messages(&pending_[at + 5], length);
      at += 5 + length;
    }
    if (at > 0) BIO_write(server_in_, pending_.data(), static_cast<int>(at));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(at));
  }

  void tamper_messages(uint8_t* body, std::size_t length) {
    constexpr uint8_t kCertificateVerify = 15;
    for (std::size_t at = 0; length - at >= 4;) {
      const std::size_t size = static_cast<std::size_t>(body[at + 1]) << 16 |
                               static_cast<std::size_t>(body[at + 2]) << 8 | body[at + 3];
      if (length - at - 4 < size) return;
      if (body[at] == kCertificateVerify && size > 0) {
        body[at + 4 + size - 1] ^= 0x01;
        tampered_ = true;
      }
      at += 4 + size;
    }
  }

  SslHandle client_;
  SslHandle server_;
  BIO* client_in_;
  BIO* client_out_;
  BIO* server_in_;
  BIO* server_out_;
  bool tamper_;
  std::vector<uint8_t> pending_;
  bool after_change_cipher_spec_ = false;
  bool tampered_ = false;
  bool client_done_ = false;
  bool client_failed_ = false;
  bool server_done_ = false;
  bool server_failed_ = false;
  int alert_ = -1;
};

TEST(HandshakeVerifyCache, ABadCertificateVerifyFailsOnACacheHit) {
  auto trust = devices_trust();
  auto cache = make_cache();
  auto verifier = ClientVerifier::create();
  ASSERT_TRUE(trust && cache && verifier);
  SslCtxHandle client = client_ctx(TLS1_2_VERSION, kDevice);
  SslCtxHandle server = server_ctx(TLS1_2_VERSION, true);
  auto connect = [&](bool tamper, HandshakeVerify* state) {
    TamperingPair pair(client.get(), server.get(), tamper);
    *state = HandshakeVerify{};
    state->trust = trust.get();
    state->verifier = verifier.get();
    state->cache = cache.get();
    EXPECT_TRUE(attach_handshake_verify(pair.server(), state));
    pair.handshake();
    EXPECT_EQ(pair.tampered(), tamper);
    return std::make_pair(pair.done(), pair.client_alert());
  };

  HandshakeVerify state;
  auto [done, alert] = connect(false, &state);
  EXPECT_TRUE(done);
  EXPECT_FALSE(state.cache_hit);
  EXPECT_EQ(alert, -1);

  std::tie(done, alert) = connect(true, &state);
  EXPECT_FALSE(done);
  EXPECT_TRUE(state.cache_hit);            // the chain was vouched for by the cache...
  EXPECT_TRUE(state.verdict.ok());
  EXPECT_EQ(alert, SSL_AD_DECRYPT_ERROR);  // ...and libssl still refused the signature

  std::tie(done, alert) = connect(false, &state);
  EXPECT_TRUE(done);
  EXPECT_TRUE(state.cache_hit);
}

INSTANTIATE_TEST_SUITE_P(Versions, HandshakeVerifyTest, ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? std::string("tls13") : std::string("tls12");
                         });

}  // namespace
}  // namespace mtlsgw::tls
