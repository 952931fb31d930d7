#include "dataplane/tls/tls_session.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <memory>
#include <random>

#include "dataplane/tls/client_identity.h"
#include "dataplane/tls/ssl_pool.h"
#include "tls_test_link.h"

namespace mtlsgw::tls {
namespace {

using testing::ClientOptions;
using testing::Link;
using testing::TestClient;
using testing::TestPki;
using testing::random_bytes;

// Host indexes of the suite's contexts.
constexpr uint32_t kApi = 0;       // ECDSA, mtls required (devices CA + CRL), ALPN h2, http/1.1
constexpr uint32_t kGrpc = 1;      // RSA, mtls off, ALPN h2
constexpr uint32_t kAdmin = 2;     // ECDSA, mtls optional (devices CA + CRL), ALPN http/1.1
constexpr uint32_t kWild = 3;      // *.wild.example.test, ECDSA, mtls off, no ALPN
constexpr uint32_t kFallback = 4;  // default host, ECDSA, mtls off, ALPN http/1.1, h2

std::string common_name(X509* cert) {
  if (cert == nullptr) return {};
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return cn;
}

std::string server_cn(const TestClient& client) {
  X509* cert = SSL_get0_peer_certificate(client.ssl());
  return common_name(cert);
}

std::string client_alpn(const TestClient& client) {
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(client.ssl(), &data, &len);
  return {reinterpret_cast<const char*>(data), len};
}

class TlsSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki();
    if (!pki_->ok()) return;
    std::string error;
    contexts_ = TlsContexts::build(suite_hosts(), TlsContextOptions{}, error).release();
    if (contexts_ == nullptr) ADD_FAILURE() << error;
  }
  static void TearDownTestSuite() {
    delete contexts_;
    contexts_ = nullptr;
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(pki_->ok());
    ASSERT_NE(contexts_, nullptr);
    pool_ = std::make_unique<SslPool>(contexts_->front(), 64);
  }

  static TlsHostSpec spec(const std::string& name, const std::string& stem, MtlsMode mtls,
                          std::vector<std::string> alpn) {
    return testing::host_spec(*pki_, name, stem, mtls, std::move(alpn));
  }

  static std::vector<TlsHostSpec> suite_hosts() {
    auto fallback = spec("fallback.example.test", "fallback", MtlsMode::off, {"http/1.1", "h2"});
    fallback.default_host = true;
    return {spec("api.example.test", "api", MtlsMode::required, {"h2", "http/1.1"}),
            spec("grpc.example.test", "grpc", MtlsMode::off, {"h2"}),
            spec("admin.example.test", "admin", MtlsMode::optional, {"http/1.1"}),
            spec("*.wild.example.test", "wild", MtlsMode::off, {}), fallback};
  }

  static std::unique_ptr<TlsContexts> build(const std::vector<TlsHostSpec>& hosts) {
    std::string error;
    auto contexts = TlsContexts::build(hosts, TlsContextOptions{}, error);
    EXPECT_NE(contexts, nullptr) << error;
    return contexts;
  }

  static void expect_established(const Link& link, const TestClient& client) {
    EXPECT_EQ(link.server.state(), TlsState::established)
        << name_of(link.server.failure()) << " alert " << link.server.alert_sent() << " "
        << (link.server.error_reason() != nullptr ? link.server.error_reason() : "");
    EXPECT_TRUE(client.handshake_done);
    EXPECT_FALSE(client.failed) << "client alert " << client.alert_received;
    EXPECT_EQ(SSL_get_verify_result(client.ssl()), X509_V_OK);
    EXPECT_EQ(link.handshakes_done, 1);
  }

  // The server refused with `alert`, and the client saw that alert.
  static void expect_refused(const Link& link, const TestClient& client, int alert) {
    EXPECT_EQ(link.server.state(), TlsState::failed);
    EXPECT_EQ(link.server.failure(), TlsFailure::local_alert);
    EXPECT_EQ(link.server.alert_sent(), alert);
    EXPECT_TRUE(client.failed);
    EXPECT_EQ(client.alert_received, alert);
    EXPECT_EQ(link.handshakes_done, 0);
  }

  static TestPki* pki_;
  static TlsContexts* contexts_;
  std::unique_ptr<SslPool> pool_;
};

TestPki* TlsSessionTest::pki_ = nullptr;
TlsContexts* TlsSessionTest::contexts_ = nullptr;

TEST_F(TlsSessionTest, Tls13EcdsaHandshakeReportsTheSessionFacts) {
  TestClient client(*pki_, {.sni = "fallback.example.test", .alpn = {"h2"}});
  Link link(*pool_, client);
  ASSERT_TRUE(link.started());
  link.pump();
  expect_established(link, client);
  const TlsSession& s = link.server;
  EXPECT_EQ(s.version(), TLS1_3_VERSION);
  EXPECT_STREQ(s.version_name(), "TLSv1.3");
  EXPECT_STREQ(s.cipher_name(), "TLS_AES_128_GCM_SHA256");  // the server's preference
  EXPECT_EQ(SSL_get_negotiated_group(s.ssl()), NID_X25519);
  EXPECT_EQ(s.host(), kFallback);
  EXPECT_EQ(s.sni(), "fallback.example.test");
  EXPECT_EQ(s.alpn(), "h2");
  EXPECT_FALSE(s.resumed());
  EXPECT_FALSE(s.client_cert_presented());
  EXPECT_FALSE(s.client_verified());
  EXPECT_EQ(server_cn(client), "fallback.example.test");

  ClientIdentity identity;
  s.fill_session_facts(*contexts_, identity);
  EXPECT_FALSE(identity.presented);
  EXPECT_FALSE(identity.verified);
  EXPECT_EQ(identity.tls_version, "TLSv1.3");
  EXPECT_EQ(identity.cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(identity.sni, "fallback.example.test");
  EXPECT_EQ(identity.alpn, "h2");
  EXPECT_EQ(identity.key_alg, "EC256");
  EXPECT_EQ(identity.sig_alg, "SHA256");
}

TEST_F(TlsSessionTest, TheRootInTheChainFileIsNotSent) {
  // api.pem holds leaf, intermediate and root.
  TestClient client(*pki_, {.sni = "api.example.test", .cert = "client-good"});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  STACK_OF(X509)* sent = SSL_get_peer_cert_chain(client.ssl());
  ASSERT_EQ(sk_X509_num(sent), 2);
  EXPECT_EQ(common_name(sk_X509_value(sent, 0)), "api.example.test");
  EXPECT_EQ(common_name(sk_X509_value(sent, 1)), "Server Intermediate");
}

TEST_F(TlsSessionTest, Tls12WithAnRsaCertificate) {
  TestClient client(*pki_, {.sni = "grpc.example.test", .max_version = TLS1_2_VERSION});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  EXPECT_EQ(link.server.version(), TLS1_2_VERSION);
  EXPECT_STREQ(link.server.cipher_name(), "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(link.server.host(), kGrpc);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(SSL_get0_peer_certificate(client.ssl()))), EVP_PKEY_RSA);
  EXPECT_EQ(server_cn(client), "grpc.example.test");
  ClientIdentity identity;
  link.server.fill_session_facts(*contexts_, identity);
  EXPECT_EQ(identity.key_alg, "RSA2048");
}

TEST_F(TlsSessionTest, Tls12WithAnEcdsaCertificate) {
  TestClient client(*pki_, {.sni = "fallback.example.test", .max_version = TLS1_2_VERSION});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  EXPECT_EQ(link.server.version(), TLS1_2_VERSION);
  EXPECT_STREQ(link.server.cipher_name(), "ECDHE-ECDSA-AES128-GCM-SHA256");
}

TEST_F(TlsSessionTest, Tls13WithAnRsaCertificate) {
  TestClient client(*pki_, {.sni = "grpc.example.test"});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  EXPECT_EQ(link.server.version(), TLS1_3_VERSION);
  EXPECT_EQ(server_cn(client), "grpc.example.test");
}

TEST_F(TlsSessionTest, SniChoosesAmongThreeHostsAndAWildcard) {
  struct Case {
    const char* sni;
    uint32_t host;
    const char* cn;
    const char* cert;
  };
  const Case cases[] = {
      {"api.example.test", kApi, "api.example.test", "client-good"},
      {"grpc.example.test", kGrpc, "grpc.example.test", ""},
      {"admin.example.test", kAdmin, "admin.example.test", ""},
      {"device-7.wild.example.test", kWild, "*.wild.example.test", ""},
      // DNS names compare case-insensitively (RFC 4343); sni() is lower-cased.
      {"GRPC.Example.Test", kGrpc, "grpc.example.test", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sni);
    TestClient client(*pki_, {.sni = c.sni, .cert = c.cert});
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);  // includes the client's host-name check
    EXPECT_EQ(link.server.host(), c.host);
    EXPECT_EQ(server_cn(client), c.cn);
  }
  TestClient upper(*pki_, {.sni = "GRPC.Example.Test"});
  Link link(*pool_, upper);
  link.pump();
  EXPECT_EQ(link.server.sni(), "grpc.example.test");
}

TEST_F(TlsSessionTest, DefaultHostTakesNoSniUnknownSniAndDeeperWildcardNames) {
  const char* names[] = {"", "nobody.example.test", "a.b.wild.example.test"};
  for (const char* sni : names) {
    SCOPED_TRACE(sni);
    TestClient client(*pki_, {.sni = sni, .verify_name = "fallback.example.test"});
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);
    EXPECT_EQ(link.server.host(), kFallback);
    EXPECT_EQ(link.server.sni(), sni == std::string("") ? "" : sni);
  }
}

TEST_F(TlsSessionTest, UnknownNameWithoutDefaultHostIsRefused) {
  auto contexts = build({spec("api.example.test", "api", MtlsMode::off, {}),
                         spec("grpc.example.test", "grpc", MtlsMode::off, {})});
  ASSERT_NE(contexts, nullptr);
  SslPool pool(contexts->front(), 4);
  {
    // RFC 6066 3: unrecognized_name.
    TestClient client(*pki_, {.sni = "nobody.example.test"});
    Link link(pool, client);
    link.pump();
    expect_refused(link, client, SSL_AD_UNRECOGNIZED_NAME);
    ASSERT_NE(link.server.error_reason(), nullptr);
  }
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    // No SNI at all: handshake_failure (what OpenSSL makes of RFC 8446 9.2's
    // missing_extension before the version is chosen).
    TestClient client(*pki_, {.verify_name = "api.example.test", .max_version = version});
    Link link(pool, client);
    link.pump();
    expect_refused(link, client, SSL_AD_HANDSHAKE_FAILURE);
  }
}

TEST_F(TlsSessionTest, AlpnFollowsTheServersPreference) {
  struct Case {
    const char* sni;
    std::vector<std::string> offered;
    const char* chosen;
  };
  const Case cases[] = {
      {"api.example.test", {"http/1.1", "h2"}, "h2"},         // server prefers h2
      {"fallback.example.test", {"h2", "http/1.1"}, "http/1.1"},  // server prefers http/1.1
      {"grpc.example.test", {"http/1.1", "h2"}, "h2"},
      {"fallback.example.test", {}, ""},                      // client offers none
      {"x.wild.example.test", {"h2"}, ""},                    // host has none: ignored
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.sni) + " -> " + c.chosen);
    const std::string cert = std::string(c.sni) == "api.example.test" ? "client-good" : "";
    TestClient client(*pki_, {.sni = c.sni, .alpn = c.offered, .cert = cert});
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);
    EXPECT_EQ(link.server.alpn(), c.chosen);
    EXPECT_EQ(client_alpn(client), c.chosen);
  }
}

TEST_F(TlsSessionTest, AlpnWithoutOverlapIsNoApplicationProtocol) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    TestClient client(*pki_, {.sni = "admin.example.test", .alpn = {"h2", "spdy/3"}, .max_version = version});
    Link link(*pool_, client);
    link.pump();
    expect_refused(link, client, SSL_AD_NO_APPLICATION_PROTOCOL);  // RFC 7301 3.2
  }
}

TEST_F(TlsSessionTest, RequiredMtlsWithoutCertificate) {
  {
    // TLS 1.3: certificate_required (RFC 8446 4.4.2.4). The client has
    // finished its side already and learns it from the alert.
    TestClient client(*pki_, {.sni = "api.example.test"});
    Link link(*pool_, client);
    link.pump();
    EXPECT_TRUE(client.handshake_done);
    expect_refused(link, client, SSL_AD_CERTIFICATE_REQUIRED);
    EXPECT_FALSE(link.server.client_cert_presented());
    EXPECT_FALSE(link.server.verify_ran());
  }
  {
    // TLS 1.2 has no certificate_required: OpenSSL sends handshake_failure
    // (RFC 5246 7.4.6 leaves the choice to the server).
    TestClient client(*pki_, {.sni = "api.example.test", .max_version = TLS1_2_VERSION});
    Link link(*pool_, client);
    link.pump();
    EXPECT_FALSE(client.handshake_done);
    expect_refused(link, client, SSL_AD_HANDSHAKE_FAILURE);
  }
}

TEST_F(TlsSessionTest, RequiredMtlsAcceptsAValidCertificate) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    TestClient client(*pki_, {.sni = "api.example.test", .max_version = version, .cert = "client-good"});
    client.outbox = "GET / HTTP/1.1\r\n\r\n";
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);
    EXPECT_EQ(link.server_received, client.outbox);
    EXPECT_TRUE(link.server.client_cert_presented());
    EXPECT_TRUE(link.server.client_verified());
    EXPECT_TRUE(link.server.verify_ran());
    EXPECT_EQ(link.server.verify_result(), X509_V_OK);
    EXPECT_EQ(common_name(link.server.client_certificate()), "client-good.devices.example.test");
    // The CertificateRequest named the host's CA (RFC 8446 4.2.4).
    const STACK_OF(X509_NAME)* asked = SSL_get0_peer_CA_list(client.ssl());
    ASSERT_NE(asked, nullptr);
    ASSERT_EQ(sk_X509_NAME_num(asked), 1);
    char cn[64] = {};
    X509_NAME_get_text_by_NID(sk_X509_NAME_value(asked, 0), NID_commonName, cn, sizeof cn);
    EXPECT_STREQ(cn, "Devices CA");
    ClientIdentity identity;
    link.server.fill_session_facts(*contexts_, identity);
    EXPECT_TRUE(identity.presented);
    EXPECT_TRUE(identity.verified);
  }
}

TEST_F(TlsSessionTest, RequiredMtlsRefusesBadCertificatesWithTheMatchingAlert) {
  struct Case {
    const char* cert;
    int alert;
    int verify_error;
  };
  const Case cases[] = {
      {"client-revoked", SSL_AD_CERTIFICATE_REVOKED, X509_V_ERR_CERT_REVOKED},
      {"client-expired", SSL_AD_CERTIFICATE_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED},
      {"client-other", SSL_AD_UNKNOWN_CA, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cert);
    TestClient client(*pki_, {.sni = "api.example.test", .cert = c.cert});
    Link link(*pool_, client);
    link.pump();
    expect_refused(link, client, c.alert);
    EXPECT_TRUE(link.server.verify_ran());
    EXPECT_EQ(link.server.verify_result(), c.verify_error);
    EXPECT_EQ(link.server.verify_error_depth(), 0);
    EXPECT_STREQ(link.server.error_reason(), "certificate verify failed");
  }
}

TEST_F(TlsSessionTest, OptionalMtlsLetsMissingAndBadCertificatesThroughUnverified) {
  struct Case {
    const char* cert;
    bool presented;
    long verify_result;
  };
  const Case cases[] = {
      {"", false, X509_V_OK},
      {"client-other", true, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
      {"client-revoked", true, X509_V_ERR_CERT_REVOKED},
      {"client-expired", true, X509_V_ERR_CERT_HAS_EXPIRED},
  };
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(c.cert) + (version == TLS1_3_VERSION ? " TLSv1.3" : " TLSv1.2"));
      TestClient client(*pki_, {.sni = "admin.example.test", .max_version = version, .cert = c.cert});
      client.outbox = "hello";
      Link link(*pool_, client);
      link.server_outbox = "world";
      link.pump();
      expect_established(link, client);
      EXPECT_EQ(link.server_received, "hello");
      EXPECT_EQ(client.received, "world");
      EXPECT_EQ(link.server.client_cert_presented(), c.presented);
      EXPECT_FALSE(link.server.client_verified());
      EXPECT_EQ(link.server.verify_result(), c.verify_result);
    }
  }
  TestClient client(*pki_, {.sni = "admin.example.test", .cert = "client-good"});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  EXPECT_TRUE(link.server.client_verified());
}

struct HookCalls {
  int calls = 0;
  int error = X509_V_OK;  // X509_V_OK: accept
};

int counting_verifier(X509_STORE_CTX* store_ctx, void* arg) {
  auto& hook = *static_cast<HookCalls*>(arg);
  ++hook.calls;
  if (hook.error == X509_V_OK) return 1;
  X509_STORE_CTX_set_error(store_ctx, hook.error);
  return 0;
}

TEST_F(TlsSessionTest, AReplacementVerifierDecides) {
  HookCalls refuse{.error = X509_V_ERR_CERT_REVOKED};
  HookCalls accept;
  auto required = spec("api.example.test", "api", MtlsMode::required, {});
  required.verifier = {counting_verifier, &refuse};
  auto optional = spec("admin.example.test", "admin", MtlsMode::optional, {});
  optional.verifier = {counting_verifier, &refuse};
  auto accepting = spec("grpc.example.test", "grpc", MtlsMode::required, {});
  accepting.verifier = {counting_verifier, &accept};
  auto contexts = build({required, optional, accepting});
  ASSERT_NE(contexts, nullptr);
  SslPool pool(contexts->front(), 4);
  {
    // Refuses a certificate X509_verify_cert would accept.
    TestClient client(*pki_, {.sni = "api.example.test", .cert = "client-good"});
    Link link(pool, client);
    link.pump();
    expect_refused(link, client, SSL_AD_CERTIFICATE_REVOKED);
    EXPECT_EQ(refuse.calls, 1);
  }
  {
    // Optional: the refusal is recorded and the connection goes on.
    TestClient client(*pki_, {.sni = "admin.example.test", .cert = "client-good"});
    Link link(pool, client);
    link.pump();
    expect_established(link, client);
    EXPECT_EQ(link.server.verify_result(), X509_V_ERR_CERT_REVOKED);
    EXPECT_FALSE(link.server.client_verified());
    EXPECT_EQ(refuse.calls, 2);
  }
  {
    // Accepts a certificate from a CA the host does not trust.
    TestClient client(*pki_, {.sni = "grpc.example.test", .cert = "client-other"});
    Link link(pool, client);
    link.pump();
    expect_established(link, client);
    EXPECT_TRUE(link.server.client_verified());
    EXPECT_EQ(accept.calls, 1);
  }
}

TEST_F(TlsSessionTest, HostWithTls13MinimumRefusesTls12) {
  auto strict = spec("api.example.test", "api", MtlsMode::off, {});
  strict.min_version = MinTlsVersion::tls1_3;
  auto contexts = build({strict, spec("grpc.example.test", "grpc", MtlsMode::off, {})});
  ASSERT_NE(contexts, nullptr);
  SslPool pool(contexts->front(), 4);
  {
    TestClient client(*pki_, {.sni = "api.example.test", .max_version = TLS1_2_VERSION});
    Link link(pool, client);
    link.pump();
    expect_refused(link, client, SSL_AD_PROTOCOL_VERSION);
  }
  {
    // The other host of the same worker still speaks TLS 1.2.
    TestClient client(*pki_, {.sni = "grpc.example.test", .max_version = TLS1_2_VERSION});
    Link link(pool, client);
    link.pump();
    expect_established(link, client);
  }
}

TEST_F(TlsSessionTest, HelloRetryRequestKeepsTheHost) {
  // The client's first key share is P-384, which the server does not take:
  // HelloRetryRequest for P-256, a second ClientHello, the same host.
  TestClient client(*pki_, {.sni = "grpc.example.test", .groups = "P-384:P-256"});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  EXPECT_EQ(link.server.host(), kGrpc);
  EXPECT_EQ(SSL_get_negotiated_group(link.server.ssl()), NID_X9_62_prime256v1);
}

TEST_F(TlsSessionTest, RenegotiationIsRefused) {
  TestClient client(*pki_, {.sni = "grpc.example.test", .max_version = TLS1_2_VERSION});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  ASSERT_EQ(SSL_renegotiate(client.ssl()), 1);
  client.handshake_done = false;  // the client drives its new handshake
  link.pump();
  // no_renegotiation (RFC 5246 7.2.2) as a warning; the server never starts
  // a second handshake. OpenSSL's client gives up on it with a fatal
  // handshake_failure.
  EXPECT_EQ(link.server.alert_sent(), SSL_AD_NO_RENEGOTIATION);
  EXPECT_EQ(link.handshakes_done, 1);
  EXPECT_EQ(client.alert_received, SSL_AD_NO_RENEGOTIATION);
  EXPECT_TRUE(client.failed);
  EXPECT_EQ(link.server.state(), TlsState::failed);
  EXPECT_EQ(link.server.failure(), TlsFailure::peer_alert);
  EXPECT_EQ(link.server.alert_received(), SSL_AD_HANDSHAKE_FAILURE);
}

TEST_F(TlsSessionTest, ServerClosesFirst) {
  TestClient client(*pki_, {.sni = "grpc.example.test"});
  Link link(*pool_, client);
  link.server_outbox = "last words";
  link.close_after_outbox = true;
  link.pump();
  EXPECT_TRUE(link.server.close_notify_sent());
  EXPECT_EQ(link.server.state(), TlsState::established);  // waiting for the client's
  EXPECT_EQ(client.received, "last words");
  EXPECT_TRUE(client.got_close_notify);
  const size_t sent = link.to_client_total;
  EXPECT_TRUE(link.server.close());  // idempotent: no second close_notify
  EXPECT_EQ(link.to_client_total, sent);
  EXPECT_EQ(link.server.send(reinterpret_cast<const uint8_t*>("x"), 1), 0u);
  ASSERT_EQ(SSL_shutdown(client.ssl()), 1);
  link.pump();
  EXPECT_TRUE(link.server.peer_closed());
  EXPECT_EQ(link.server.state(), TlsState::closed);
  EXPECT_EQ(link.server.failure(), TlsFailure::none);
}

TEST_F(TlsSessionTest, ClientClosesFirstAndTheServerFinishesItsSide) {
  TestClient client(*pki_, {.sni = "grpc.example.test"});
  client.outbox = "request";
  Link link(*pool_, client);
  link.pump();
  ASSERT_EQ(SSL_shutdown(client.ssl()), 0);
  link.pump();
  EXPECT_EQ(link.server_received, "request");
  EXPECT_TRUE(link.server.peer_closed());
  EXPECT_EQ(link.server.state(), TlsState::established);  // half closed (RFC 8446 6.1)
  // Bytes after close_notify are taken and ignored.
  link.tcp_in.assign(40, 0x17);
  link.receive_all();
  EXPECT_TRUE(link.tcp_in.empty());
  // The response still goes out, then our close_notify.
  link.server_outbox = "response";
  link.close_after_outbox = true;
  link.pump();
  EXPECT_EQ(client.received, "response");
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(link.server.state(), TlsState::closed);
}

TEST_F(TlsSessionTest, EndOfStreamWithoutCloseNotifyIsTruncation) {
  {
    TestClient client(*pki_, {.sni = "grpc.example.test"});
    client.outbox = "partial";
    Link link(*pool_, client);
    link.pump();
    link.tcp_in_ends = true;  // the client's FIN, no close_notify
    link.receive_all();
    EXPECT_EQ(link.server_received, "partial");  // what came before is delivered
    EXPECT_EQ(link.server.state(), TlsState::failed);
    EXPECT_EQ(link.server.failure(), TlsFailure::truncated);
  }
  {
    // During the handshake.
    TestClient client(*pki_, {.sni = "grpc.example.test"});
    Link link(*pool_, client);
    link.pump_once();
    link.tcp_in_ends = true;
    link.pump();
    EXPECT_EQ(link.server.state(), TlsState::failed);
    EXPECT_EQ(link.server.failure(), TlsFailure::truncated);
  }
}

// Data both ways, many records of many sizes, the server's send side
// back-pressured: records are sized to the room.
TEST_F(TlsSessionTest, DataBothWaysIsByteExactUnderBackPressure) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    for (const uint32_t budget : {3001u, 17u}) {
      SCOPED_TRACE(std::to_string(version) + " budget " + std::to_string(budget));
      const size_t size = budget < 100 ? 64 * 1024 : 1024 * 1024;
      TestClient client(*pki_, {.sni = "fallback.example.test", .max_version = version});
      client.outbox = random_bytes(size, 1);
      Link link(*pool_, client);
      link.server_outbox = random_bytes(size, 2);
      link.budget_per_round = budget;
      link.read_cap = 777;
      link.pump();
      expect_established(link, client);
      EXPECT_TRUE(link.server_received == client.outbox);
      EXPECT_TRUE(client.received == link.server_outbox);
      EXPECT_EQ(link.server_out_pos, link.server_outbox.size());
      EXPECT_GT(link.to_client_total, size);
    }
  }
}

// A sink that promises more than it takes (TcpStack before its send buffer
// is attached): records wait half-sent inside OpenSSL and are finished by the
// next send() of the same bytes.
TEST_F(TlsSessionTest, DataIsByteExactWhenTheSinkTakesLessThanItPromised) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client);
  link.server_outbox = random_bytes(256 * 1024, 3);
  link.budget_per_round = 1000;
  link.space_over_promises = true;
  link.pump();
  expect_established(link, client);
  EXPECT_TRUE(client.received == link.server_outbox);
  EXPECT_GT(link.sink_refusals, 0u);
  // A shorter retry than what is owed is misuse, refused without damage.
  TestClient other(*pki_, {.sni = "fallback.example.test"});
  Link owed(*pool_, other);
  owed.space_over_promises = true;
  owed.pump();
  ASSERT_EQ(owed.server.state(), TlsState::established);
  const std::string data = random_bytes(4000, 4);
  owed.budget_per_round = 0;
  owed.pump_once();
  EXPECT_EQ(owed.server.send(reinterpret_cast<const uint8_t*>(data.data()), 4000), 0u);
  EXPECT_FALSE(owed.server.close());  // a record is owed: close after the data
  EXPECT_EQ(owed.server.send(reinterpret_cast<const uint8_t*>(data.data()), 10), 0u);
  EXPECT_EQ(owed.server.state(), TlsState::failed);
  EXPECT_EQ(owed.server.failure(), TlsFailure::internal);
}

TEST_F(TlsSessionTest, KeyUpdateIsAnsweredThroughABackPressuredSink) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client);
  link.pump();
  expect_established(link, client);
  ASSERT_EQ(SSL_key_update(client.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  client.outbox = "after the update";
  link.server_outbox = random_bytes(50000, 5);
  link.budget_per_round = 10;
  link.pump();
  EXPECT_EQ(link.server_received, "after the update");
  EXPECT_TRUE(client.received == link.server_outbox);
  EXPECT_EQ(link.server.state(), TlsState::established);
  EXPECT_FALSE(client.failed);
}

TEST_F(TlsSessionTest, StatefulResumptionWithoutANewTicket) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version);
    TestClient first(*pki_, {.sni = "grpc.example.test", .max_version = version});
    first.outbox = "one";
    Link full(*pool_, first);
    full.server_outbox = "one";
    full.pump();
    expect_established(full, first);
    ASSERT_EQ(first.sessions.size(), 1u);  // one ticket (TLS 1.3) or session id (1.2)
    SSL_SESSION* session = first.sessions[0].get();
    ASSERT_EQ(SSL_SESSION_is_resumable(session), 1);
    for (int again = 0; again < 2; ++again) {
      SCOPED_TRACE(again);
      ASSERT_EQ(SSL_SESSION_is_resumable(session), 1);
      TestClient client(*pki_, {.sni = "grpc.example.test", .max_version = version, .session = session});
      client.outbox = "two";
      Link link(*pool_, client);
      link.pump();
      expect_established(link, client);
      EXPECT_TRUE(link.server.resumed());
      EXPECT_EQ(SSL_session_reused(client.ssl()), 1);
      EXPECT_EQ(link.server_received, "two");
      // No new ticket on a resumed connection; the first stays good.
      EXPECT_TRUE(client.sessions.empty());
    }
  }
}

// Clients that use each TLS 1.3 ticket once (RFC 8446 C.4) keep a wallet of
// unused tickets. Without a ticket on resumption they resume every other
// connection; with ticket_on_resumption, every connection after the first.
TEST_F(TlsSessionTest, SingleUseTicketClientsAndTicketOnResumption) {
  for (const bool reissue : {false, true}) {
    SCOPED_TRACE(reissue);
    TlsContextOptions options;
    options.ticket_on_resumption = reissue;
    std::string error;
    auto contexts =
        TlsContexts::build({spec("grpc.example.test", "grpc", MtlsMode::off, {})}, options, error);
    ASSERT_NE(contexts, nullptr) << error;
    SslPool pool(contexts->front(), 4);
    std::vector<testing::SslSessionHandle> wallet;
    int resumed = 0;
    for (int connection = 0; connection < 6; ++connection) {
      testing::SslSessionHandle ticket;
      if (!wallet.empty()) {
        ticket = std::move(wallet.back());
        wallet.pop_back();
      }
      TestClient client(*pki_, {.sni = "grpc.example.test", .session = ticket.get()});
      client.outbox = "ping";
      Link link(pool, client);
      link.server_outbox = "pong";
      link.pump();
      expect_established(link, client);
      resumed += link.server.resumed() ? 1 : 0;
      for (auto& fresh : client.sessions) wallet.push_back(std::move(fresh));
    }
    EXPECT_EQ(resumed, reissue ? 5 : 3);
  }
}

TEST_F(TlsSessionTest, ResumptionKeepsTheClientIdentityAndVerdict) {
  struct Case {
    const char* sni;
    const char* cert;
    long verify_result;
  };
  const Case cases[] = {
      {"api.example.test", "client-good", X509_V_OK},
      {"admin.example.test", "client-other", X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cert);
    TestClient first(*pki_, {.sni = c.sni, .cert = c.cert});
    first.outbox = "x";
    Link full(*pool_, first);
    full.server_outbox = "y";
    full.pump();
    expect_established(full, first);
    ASSERT_EQ(first.sessions.size(), 1u);
    TestClient client(*pki_, {.sni = c.sni, .cert = c.cert, .session = first.sessions[0].get()});
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);
    EXPECT_TRUE(link.server.resumed());
    EXPECT_FALSE(link.server.verify_ran());  // nothing verified again...
    EXPECT_TRUE(link.server.client_cert_presented());  // ...yet the identity is there
    EXPECT_EQ(common_name(link.server.client_certificate()), std::string(c.cert) + ".devices.example.test");
    EXPECT_EQ(link.server.verify_result(), c.verify_result);
  }
}

TEST_F(TlsSessionTest, SessionsDoNotCrossHosts) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version);
    TestClient first(*pki_, {.sni = "admin.example.test", .max_version = version});
    first.outbox = "x";
    Link full(*pool_, first);
    full.server_outbox = "y";
    full.pump();
    ASSERT_EQ(first.sessions.size(), 1u);
    // A session of the optional host offered to the required one: a full
    // handshake, which then asks for the certificate.
    TestClient client(*pki_, {.sni = "api.example.test", .max_version = version, .cert = "client-good",
                              .session = first.sessions[0].get()});
    Link link(*pool_, client);
    link.pump();
    expect_established(link, client);
    EXPECT_FALSE(link.server.resumed());
    EXPECT_TRUE(link.server.verify_ran());
    EXPECT_TRUE(link.server.client_verified());
  }
}

TEST_F(TlsSessionTest, PooledSslsAreReusedAcrossHostsAndPolicies) {
  SslPool pool(contexts_->front(), 1);
  struct Case {
    const char* sni;
    const char* cert;
    uint32_t host;
    bool presented;
    bool verified;
  };
  const Case cases[] = {
      {"api.example.test", "client-good", kApi, true, true},
      {"grpc.example.test", "", kGrpc, false, false},  // no certificate asked for
      {"", "", kFallback, false, false},
      {"admin.example.test", "client-other", kAdmin, true, false},
      {"api.example.test", "client-good", kApi, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sni);
    TestClient client(*pki_, {.sni = c.sni, .verify_name = c.sni[0] ? c.sni : "fallback.example.test",
                              .cert = c.cert});
    client.outbox = "ping";
    Link link(pool, client);
    link.server_outbox = "pong";
    link.pump();
    expect_established(link, client);
    EXPECT_EQ(link.server.host(), c.host);
    EXPECT_EQ(link.server.client_cert_presented(), c.presented);
    EXPECT_EQ(link.server.client_verified(), c.verified);
    EXPECT_EQ(link.server_received, "ping");
    EXPECT_EQ(client.received, "pong");
  }
  EXPECT_EQ(pool.created(), 1u);
  EXPECT_EQ(pool.reused(), std::size(cases) - 1);
}

TEST_F(TlsSessionTest, ManyHandshakesInterleavedOnOneWorker) {
  constexpr int kClients = 16;
  const char* names[] = {"api.example.test", "grpc.example.test", "admin.example.test", "a.wild.example.test"};
  const uint32_t hosts[] = {kApi, kGrpc, kAdmin, kWild};
  std::vector<std::unique_ptr<TestClient>> clients;
  std::vector<std::unique_ptr<Link>> links;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<TestClient>(
        *pki_, ClientOptions{.sni = names[i % 4],
                             .max_version = i % 3 == 0 ? TLS1_2_VERSION : TLS1_3_VERSION,
                             .cert = i % 4 == 0 || i % 8 == 2 ? "client-good" : ""}));
    clients.back()->outbox = "client " + std::to_string(i);
    links.push_back(std::make_unique<Link>(*pool_, *clients.back()));
    links.back()->server_outbox = "server " + std::to_string(i);
    links.back()->budget_per_round = 500;
  }
  for (int round = 0; round < 200; ++round) {
    for (auto& link : links) link->pump_once();
  }
  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(i);
    expect_established(*links[i], *clients[i]);
    EXPECT_EQ(links[i]->server.host(), hosts[i % 4]);
    EXPECT_EQ(links[i]->server_received, "client " + std::to_string(i));
    EXPECT_EQ(clients[i]->received, "server " + std::to_string(i));
    EXPECT_EQ(links[i]->server.client_verified(), i % 4 == 0 || i % 8 == 2);
  }
}

TEST_F(TlsSessionTest, StartWithoutAnSslFails) {
  TlsSession session;
  EXPECT_FALSE(session.start(nullptr, CiphertextSink{}));
  EXPECT_EQ(session.state(), TlsState::failed);
  EXPECT_EQ(session.failure(), TlsFailure::internal);
  const auto p = session.receive(net::tcp::ByteSpans{}, false, nullptr, 0);
  EXPECT_EQ(p.ciphertext_taken, 0u);
  EXPECT_EQ(session.finish(), nullptr);
  EXPECT_EQ(session.state(), TlsState::idle);
}

}  // namespace
}  // namespace mtlsgw::tls
