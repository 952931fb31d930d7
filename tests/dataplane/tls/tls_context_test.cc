#include "dataplane/tls/tls_context.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tls_test_pki.h"

namespace mtlsgw::tls {
namespace {

using testing::TestPki;

class TlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new TestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(pki_->ok()); }

  static TlsHostSpec host(const std::string& name, const std::string& stem) {
    TlsHostSpec spec;
    spec.name = name;
    spec.cert_chain_pem = pki_->read(stem + ".pem");
    spec.key_pem = pki_->read(stem + ".key");
    return spec;
  }

  static std::unique_ptr<TlsContexts> build(const std::vector<TlsHostSpec>& hosts, std::string& error) {
    return TlsContexts::build(hosts, TlsContextOptions{}, error);
  }

  static TestPki* pki_;
};

TestPki* TlsContextTest::pki_ = nullptr;

TEST_F(TlsContextTest, FindsExactNameThenOneLabelWildcardThenDefault) {
  auto fallback = host("fallback.example.test", "fallback");
  fallback.default_host = true;
  std::string error;
  const auto contexts = build({host("api.example.test", "api"), host("*.wild.example.test", "wild"),
                               host("WILD.example.test", "admin"), fallback},
                              error);
  ASSERT_NE(contexts, nullptr) << error;
  EXPECT_EQ(contexts->find_host("api.example.test"), 0u);
  EXPECT_EQ(contexts->find_host("a.wild.example.test"), 1u);
  // The exact name wins over the wildcard; configured names are lower-cased.
  EXPECT_EQ(contexts->find_host("wild.example.test"), 2u);
  EXPECT_EQ(contexts->host(2).name, "wild.example.test");
  // One label deep only (RFC 6125 6.4.3), and never the bare suffix.
  EXPECT_EQ(contexts->find_host("a.b.wild.example.test"), 3u);
  EXPECT_EQ(contexts->find_host(".wild.example.test"), 3u);
  EXPECT_EQ(contexts->find_host("unknown.test"), 3u);
  EXPECT_EQ(contexts->find_host(""), 3u);
  EXPECT_EQ(contexts->default_host(), 3u);
}

TEST_F(TlsContextTest, WithoutDefaultAnUnknownNameFindsNoHost) {
  std::string error;
  const auto contexts = build({host("api.example.test", "api")}, error);
  ASSERT_NE(contexts, nullptr) << error;
  EXPECT_EQ(contexts->find_host("other.example.test"), TlsContexts::kNoHost);
  EXPECT_EQ(contexts->find_host(""), TlsContexts::kNoHost);
}

TEST_F(TlsContextTest, ServerChainIsBuiltWithoutTheRoot) {
  std::string error;
  // api.pem holds leaf + intermediate + root; grpc.pem leaf + intermediate.
  const auto contexts = build({host("api.example.test", "api"), host("grpc.example.test", "grpc")}, error);
  ASSERT_NE(contexts, nullptr) << error;
  for (uint32_t i = 0; i < 2; ++i) {
    STACK_OF(X509)* chain = nullptr;
    ASSERT_EQ(SSL_CTX_get0_chain_certs(contexts->host(i).ctx.get(), &chain), 1);
    ASSERT_NE(chain, nullptr);
    ASSERT_EQ(sk_X509_num(chain), 1) << "host " << i;
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)), NID_commonName, cn, sizeof cn);
    EXPECT_STREQ(cn, "Server Intermediate");
  }
}

TEST_F(TlsContextTest, DescribesTheHostCertificateForProxyV2) {
  std::string error;
  const auto contexts = build({host("api.example.test", "api"), host("grpc.example.test", "grpc")}, error);
  ASSERT_NE(contexts, nullptr) << error;
  EXPECT_EQ(contexts->host(0).cert_key_alg, "EC256");
  EXPECT_EQ(contexts->host(0).cert_sig_alg, "SHA256");
  EXPECT_EQ(contexts->host(1).cert_key_alg, "RSA2048");
  EXPECT_EQ(contexts->host(1).cert_sig_alg, "SHA256");
}

TEST_F(TlsContextTest, CertificateRequestNamesTheHostsCas) {
  auto api = host("api.example.test", "api");
  api.mtls = MtlsMode::required;
  api.client_ca_pems = {pki_->path("devices-ca.pem"), pki_->path("other-ca.pem")};
  std::string error;
  const auto contexts = build({api, host("grpc.example.test", "grpc")}, error);
  ASSERT_NE(contexts, nullptr) << error;
  const STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(contexts->host(0).ctx.get());
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_X509_NAME_num(names), 2);
  char cn[64] = {};
  X509_NAME_get_text_by_NID(sk_X509_NAME_value(names, 0), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "Devices CA");
  EXPECT_EQ(SSL_CTX_get_verify_mode(contexts->host(0).ctx.get()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  // A host without mTLS asks for nothing.
  const STACK_OF(X509_NAME)* none = SSL_CTX_get_client_CA_list(contexts->host(1).ctx.get());
  EXPECT_TRUE(none == nullptr || sk_X509_NAME_num(none) == 0);
  EXPECT_EQ(SSL_CTX_get_verify_mode(contexts->host(1).ctx.get()), SSL_VERIFY_NONE);
}

TEST_F(TlsContextTest, PreparedStoreGivesTheCaNames) {
  X509StoreHandle store(X509_STORE_new());
  ASSERT_EQ(X509_STORE_load_file(store.get(), pki_->path("devices-ca.pem").c_str()), 1);
  auto api = host("api.example.test", "api");
  api.mtls = MtlsMode::optional;
  api.client_store = store.get();
  std::string error;
  const auto contexts = build({api}, error);
  ASSERT_NE(contexts, nullptr) << error;
  const STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(contexts->host(0).ctx.get());
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(sk_X509_NAME_num(names), 1);
  EXPECT_EQ(SSL_CTX_get_verify_mode(contexts->host(0).ctx.get()), SSL_VERIFY_PEER);
}

TEST_F(TlsContextTest, SharedProtocolSettings) {
  std::string error;
  const auto contexts = build({host("api.example.test", "api")}, error);
  ASSERT_NE(contexts, nullptr) << error;
  for (SSL_CTX* ctx : {contexts->front(), contexts->host(0).ctx.get()}) {
    const uint64_t options = SSL_CTX_get_options(ctx);
    EXPECT_NE(options & SSL_OP_NO_TICKET, 0u);
    EXPECT_NE(options & SSL_OP_NO_RENEGOTIATION, 0u);
    EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0u);
    EXPECT_EQ(options & SSL_OP_ALLOW_CLIENT_RENEGOTIATION, 0u);
    EXPECT_EQ(SSL_CTX_get_num_tickets(ctx), 1u);
    EXPECT_EQ(SSL_CTX_get_max_early_data(ctx), 0u);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_NE(SSL_CTX_get_mode(ctx) & SSL_MODE_NO_AUTO_CHAIN, 0);
  }
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(contexts->front()), SSL_SESS_CACHE_SERVER);
  EXPECT_EQ(SSL_CTX_sess_get_cache_size(contexts->front()), 8192);
}

TEST_F(TlsContextTest, RefusesWhatCannotWork) {
  struct Case {
    const char* what;
    std::vector<TlsHostSpec> hosts;
  };
  auto fallback = host("fallback.example.test", "fallback");
  fallback.default_host = true;
  auto second_default = host("admin.example.test", "admin");
  second_default.default_host = true;
  auto early = host("api.example.test", "api");
  early.early_data = true;
  auto no_cas = host("api.example.test", "api");
  no_cas.mtls = MtlsMode::required;
  auto missing_cert = host("api.example.test", "api");
  missing_cert.cert_chain_pem = "no certificate here";
  auto wrong_key = host("api.example.test", "api");
  wrong_key.key_pem = pki_->read("admin.key");
  auto empty_alpn = host("api.example.test", "api");
  empty_alpn.alpn = {"h2", ""};
  auto bad_ca = host("api.example.test", "api");
  bad_ca.mtls = MtlsMode::optional;
  bad_ca.client_ca_pems = {pki_->path("absent-ca.pem")};
  // A chain file whose second certificate did not issue the leaf.
  {
    std::ofstream out(pki_->path("mismatched-chain.pem"));
    out << std::ifstream(pki_->path("client-good.pem")).rdbuf() << std::ifstream(pki_->path("other-ca.pem")).rdbuf();
  }
  auto mismatched_chain = host("api.example.test", "client-good");
  mismatched_chain.cert_chain_pem = pki_->read("mismatched-chain.pem");
  auto leaf_only = host("api.example.test", "client-good");
  const Case cases[] = {
      {"no hosts", {}},
      {"same name twice", {host("api.example.test", "api"), host("API.example.test", "admin")}},
      {"two defaults", {fallback, second_default}},
      {"early data", {early}},
      {"mtls without CAs", {no_cas}},
      {"missing certificate", {missing_cert}},
      {"key of another certificate", {wrong_key}},
      {"empty ALPN name", {empty_alpn}},
      {"missing CA file", {bad_ca}},
      {"bare wildcard", {host("*", "api")}},
      {"wildcard inside", {host("a.*.example.test", "api")}},
      {"trailing dot", {host("api.example.test.", "api")}},
      {"chain of another issuer", {mismatched_chain}},
  };
  for (const Case& c : cases) {
    std::string error;
    EXPECT_EQ(build(c.hosts, error), nullptr) << c.what;
    EXPECT_FALSE(error.empty()) << c.what;
  }
  // A leaf alone (no chain to order) is fine.
  std::string error;
  EXPECT_NE(build({leaf_only}, error), nullptr) << error;
}

}  // namespace
}  // namespace mtlsgw::tls
