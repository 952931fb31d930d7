// TrustStore: what it accepts, what it refuses and why, what it warns about.
// The verification behaviour of the copies it makes is in client_verify_test.

#include "dataplane/tls/trust_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "dataplane/tls/x509_text.h"
#include "test_pki.h"

namespace mtlsgw::tls {
namespace {

using testing::read_test_pki;

CaSource source(const std::string& name, const std::string& cert_file, const std::string& crl_file = "") {
  return CaSource{name, read_test_pki(cert_file), crl_file.empty() ? "" : read_test_pki(crl_file)};
}

bool any_contains(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.find(part) != std::string::npos; });
}

TEST(TrustStore, BuildsTheDevicesHierarchyWithItsCrls) {
  std::string error;
  auto store = TrustStore::build({source("devices", "devices-ca.pem", "devices.crl.pem")}, {}, &error);
  ASSERT_NE(store, nullptr) << error;
  EXPECT_EQ(store->ca_count(), 4u);
  EXPECT_EQ(store->crl_count(), 4u);
  EXPECT_TRUE(store->warnings().empty()) << store->warnings().front();
  EXPECT_EQ(store->options().max_intermediates, 2);
  // make-test-pki issues CRLs for 365 days.
  EXPECT_GT(store->earliest_crl_next_update(), static_cast<int64_t>(time(nullptr)));
  EXPECT_NE(store->instantiate(&error), nullptr) << error;
}

TEST(TrustStore, CaNamesListEverySubjectForCertificateRequest) {
  auto store = TrustStore::build({source("devices", "devices-ca.pem", "devices.crl.pem"),
                                  source("partners", "partners-ca.pem", "partners.crl.pem")},
                                 {}, nullptr);
  ASSERT_NE(store, nullptr);
  X509NameStackHandle names = store->make_ca_names();
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_X509_NAME_num(names.get()), 5);
  std::vector<std::string> texts;
  for (int i = 0; i < sk_X509_NAME_num(names.get()); ++i) {
    std::string text;
    ASSERT_TRUE(rfc2253_name(sk_X509_NAME_value(names.get(), i), 1024, &text));
    texts.push_back(text);
  }
  EXPECT_TRUE(any_contains(texts, "CN=Devices Root CA,O=Devices Example"));
  EXPECT_TRUE(any_contains(texts, "CN=Devices Sub CA 3,O=Devices Example"));
  EXPECT_TRUE(any_contains(texts, "CN=Partners CA,O=Partner\\, Inc."));
}

TEST(TrustStore, RefusesALeafAsCa) {
  std::string error;
  EXPECT_EQ(TrustStore::build({source("leaf", "client-devices.pem")}, {}, &error), nullptr);
  EXPECT_NE(error.find("is not a CA certificate"), std::string::npos) << error;
  EXPECT_NE(error.find("CN=device-001"), std::string::npos) << error;
}

TEST(TrustStore, RefusesBrokenPemAndEmptyFiles) {
  std::string error;
  EXPECT_EQ(TrustStore::build({source("garbage", "client-malformed.pem")}, {}, &error), nullptr);
  EXPECT_NE(error.find("does not decode"), std::string::npos) << error;
  EXPECT_EQ(TrustStore::build({source("cut", "client-truncated.pem")}, {}, &error), nullptr);
  EXPECT_NE(error.find("does not decode"), std::string::npos) << error;
  EXPECT_EQ(TrustStore::build({CaSource{"empty", "", ""}}, {}, &error), nullptr);
  EXPECT_NE(error.find("no PEM certificate"), std::string::npos) << error;
  EXPECT_EQ(TrustStore::build({}, {}, &error), nullptr);
  EXPECT_NE(error.find("no CA certificate"), std::string::npos) << error;
  EXPECT_EQ(TrustStore::build({CaSource{"devices", read_test_pki("devices-ca.pem"), "not a CRL"}}, {}, &error),
            nullptr);
  EXPECT_NE(error.find("no PEM CRL"), std::string::npos) << error;
}

TEST(TrustStore, RefusesACrlFileThatMissesOneOfItsCas) {
  std::string error;
  // partners.crl.pem covers no devices CA.
  EXPECT_EQ(TrustStore::build({source("devices", "devices-ca.pem", "partners.crl.pem")}, {}, &error), nullptr);
  EXPECT_NE(error.find("no CRL issued by CN=Devices Root CA"), std::string::npos) << error;
}

TEST(TrustStore, RefusesACrlSignedByAnotherKeyUnderItsCaName) {
  // devices.crl.pem's first CRL is the root's. Re-sign it with the partners
  // CA key: same issuer name, wrong signature.
  std::vector<X509CrlHandle> crls;
  {
    const std::string pem = read_test_pki("devices.crl.pem");
    BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) crls.emplace_back(crl);
    ERR_clear_error();
  }
  ASSERT_EQ(crls.size(), 4u);
  EvpPkeyHandle wrong_key = testing::load_private_key("partners-ca.key");
  ASSERT_GT(X509_CRL_sign(crls[0].get(), wrong_key.get(), EVP_sha256()), 0);
  std::string forged;
  for (const X509CrlHandle& crl : crls) {
    BioHandle out(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_X509_CRL(out.get(), crl.get()), 1);
    char* data = nullptr;
    const long length = BIO_get_mem_data(out.get(), &data);
    forged.append(data, static_cast<std::size_t>(length));
  }
  std::string error;
  EXPECT_EQ(TrustStore::build({CaSource{"devices", read_test_pki("devices-ca.pem"), forged}}, {}, &error), nullptr);
  EXPECT_NE(error.find("is not signed by that CA's key"), std::string::npos) << error;
}

TEST(TrustStore, WarnsAboutSourcesWithoutCrlAndOrphanIntermediates) {
  std::string error;
  auto store = TrustStore::build({source("partners", "partners-ca.pem"), source("orphan", "devices-int.pem")}, {},
                                 &error);
  ASSERT_NE(store, nullptr) << error;
  EXPECT_TRUE(any_contains(store->warnings(), "CA partners: no CRL file")) << store->warnings().size();
  EXPECT_TRUE(any_contains(store->warnings(), "CN=Devices Issuing CA 1,O=Devices Example is an intermediate"));
  EXPECT_EQ(store->earliest_crl_next_update(), 0);
}

TEST(TrustStore, WarnsAboutCrlsForCasOutsideTheSet) {
  // Only the root is configured; the intermediates' CRLs serve chains the
  // clients send.
  std::string error;
  auto store = TrustStore::build({source("devices", "devices-root.pem", "devices.crl.pem")}, {}, &error);
  ASSERT_NE(store, nullptr) << error;
  EXPECT_EQ(store->ca_count(), 1u);
  EXPECT_EQ(store->crl_count(), 4u);
  EXPECT_TRUE(any_contains(store->warnings(), "the CRL of CN=Devices Issuing CA 1,O=Devices Example matches no CA"));
}

TEST(TrustStore, KeepsOneCopyOfACaListedTwice) {
  auto store = TrustStore::build({source("a", "devices-ca.pem", "devices.crl.pem"), source("b", "devices-root.pem")},
                                 {}, nullptr);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->ca_count(), 4u);
}

TEST(TrustStore, BoundsWhatOneSourceMayHold) {
  const std::string root = read_test_pki("devices-root.pem");
  std::string many;
  for (std::size_t i = 0; i <= kMaxCaCertificates; ++i) many += root;
  std::string error;
  EXPECT_EQ(TrustStore::build({CaSource{"many", many, ""}}, {}, &error), nullptr);
  EXPECT_NE(error.find("more than 256"), std::string::npos) << error;
}

TEST(TrustStore, RefusesAnAbsurdDepth) {
  std::string error;
  EXPECT_EQ(TrustStore::build({source("devices", "devices-ca.pem")}, TrustOptions{-1}, &error), nullptr);
  EXPECT_EQ(TrustStore::build({source("devices", "devices-ca.pem")}, TrustOptions{17}, &error), nullptr);
  EXPECT_NE(error.find("outside 0..16"), std::string::npos) << error;
  EXPECT_NE(TrustStore::build({source("devices", "devices-ca.pem")}, TrustOptions{0}, &error), nullptr) << error;
}

TEST(TrustStore, LoadsSourcesFromFiles) {
  CaSource loaded;
  std::string error;
  ASSERT_TRUE(load_ca_source("devices", testing::test_pki_path("devices-ca.pem"),
                             testing::test_pki_path("devices.crl.pem"), &loaded, &error))
      << error;
  EXPECT_EQ(loaded.name, "devices");
  EXPECT_EQ(loaded.cert_pem, read_test_pki("devices-ca.pem"));
  EXPECT_EQ(loaded.crl_pem, read_test_pki("devices.crl.pem"));
  ASSERT_TRUE(load_ca_source("partners", testing::test_pki_path("partners-ca.pem"), "", &loaded, &error));
  EXPECT_TRUE(loaded.crl_pem.empty());
  EXPECT_FALSE(load_ca_source("nope", testing::test_pki_path("no-such-file.pem"), "", &loaded, &error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

}  // namespace
}  // namespace mtlsgw::tls
