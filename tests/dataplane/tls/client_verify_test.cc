// ClientVerifier over the whole test PKI (scripts/make-test-pki): ok for every
// CA, every refusal reason, the depth boundary, CRL policy and reload.

#include "dataplane/tls/client_verify.h"

#include <gtest/gtest.h>

#include <ctime>

#include <set>
#include <string>
#include <vector>

#include "dataplane/tls/x509_text.h"
#include "test_pki.h"

namespace mtlsgw::tls {
namespace {

using testing::load_chain;
using testing::read_test_pki;

int64_t epoch_of_not_after(const X509* cert) { return epoch_of(X509_get0_notAfter(cert)).value_or(0); }

struct CaFiles {
  const char* name;
  const char* cert;
  const char* crl;  // "" for none
};

class ClientVerifyTest : public ::testing::Test {
 protected:
  static std::unique_ptr<WorkerTrust> trust(const std::vector<CaFiles>& files, int max_intermediates = 2) {
    std::vector<CaSource> sources;
    for (const CaFiles& f : files) {
      sources.push_back({f.name, read_test_pki(f.cert), *f.crl != '\0' ? read_test_pki(f.crl) : ""});
    }
    std::string error;
    auto store = TrustStore::build(sources, TrustOptions{max_intermediates}, &error);
    EXPECT_NE(store, nullptr) << error;
    if (store == nullptr) return nullptr;
    auto copy = store->instantiate(&error);
    EXPECT_NE(copy, nullptr) << error;
    return copy;
  }
  static std::unique_ptr<WorkerTrust> devices(int max_intermediates = 2) {
    return trust({{"devices", "devices-ca.pem", "devices.crl.pem"}}, max_intermediates);
  }

  // The first certificate of the file is the leaf; all of them are sent.
  ClientVerdict verify_file(const WorkerTrust& on, const std::string& file, int64_t at_epoch = 0) {
    X509StackHandle chain = load_chain(file);
    EXPECT_GT(sk_X509_num(chain.get()), 0) << file;
    return verifier_->verify(on, sk_X509_value(chain.get(), 0), chain.get(), at_epoch);
  }

  std::unique_ptr<ClientVerifier> verifier_ = ClientVerifier::create();
};

#define EXPECT_REASON(verdict, expected)                                                     \
  EXPECT_EQ(name_of((verdict).reason), name_of(VerifyReason::expected))                      \
      << "x509 error " << (verdict).x509_error << " ("                                       \
      << X509_verify_cert_error_string((verdict).x509_error) << ") at depth " << (verdict).error_depth

TEST_F(ClientVerifyTest, AcceptsAValidCertificateOfEachCa) {
  auto devices_trust = devices();
  auto partners = trust({{"partners", "partners-ca.pem", "partners.crl.pem"}});
  auto other = trust({{"other", "other-ca.pem", "other.crl.pem"}});
  ASSERT_TRUE(devices_trust && partners && other);

  ClientVerdict verdict = verify_file(*devices_trust, "client-devices.chain.pem");
  EXPECT_REASON(verdict, ok);
  EXPECT_TRUE(verdict.ok());
  EXPECT_EQ(verdict.x509_error, X509_V_OK);
  EXPECT_EQ(verdict.error_depth, -1);
  EXPECT_EQ(verdict.chain_length, 3);  // leaf, issuing CA, root
  EXPECT_REASON(verify_file(*devices_trust, "client-devices-rsa.chain.pem"), ok);

  verdict = verify_file(*partners, "client-partners.pem");
  EXPECT_REASON(verdict, ok);
  EXPECT_EQ(verdict.chain_length, 2);
  EXPECT_REASON(verify_file(*other, "client-other.pem"), ok);
}

TEST_F(ClientVerifyTest, FindsTheIntermediateInTheStoreOrInWhatTheClientSent) {
  auto full = devices();
  auto root_only = trust({{"devices", "devices-root.pem", "devices.crl.pem"}});
  ASSERT_TRUE(full && root_only);
  // The leaf alone: the intermediate comes from the CA file.
  EXPECT_REASON(verify_file(*full, "client-devices.pem"), ok);
  // Only the root configured: the client's chain supplies the intermediate.
  ClientVerdict verdict = verify_file(*root_only, "client-devices.chain.pem");
  EXPECT_REASON(verdict, ok);
  EXPECT_EQ(verdict.chain_length, 3);
  EXPECT_REASON(verify_file(*root_only, "client-devices.pem"), unknown_ca);
}

TEST_F(ClientVerifyTest, RefusesCertificatesNoTrustedCaIssued) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verify_file(*devices_trust, "client-unknown-ca.pem");
  EXPECT_REASON(verdict, unknown_ca);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(verdict.error_depth, 0);

  verdict = verify_file(*devices_trust, "client-self-signed.pem");
  EXPECT_REASON(verdict, unknown_ca);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);

  // Valid certificates, but of another host's CA.
  EXPECT_REASON(verify_file(*devices_trust, "client-partners.pem"), unknown_ca);
  EXPECT_REASON(verify_file(*devices_trust, "client-other.pem"), unknown_ca);

  // Signed by client-devices, a leaf (CA:FALSE) that tries to act as a CA.
  verdict = verify_file(*devices_trust, "client-issued-by-leaf.chain.pem");
  EXPECT_REASON(verdict, unknown_ca);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_INVALID_CA);
  EXPECT_EQ(verdict.error_depth, 1);
}

TEST_F(ClientVerifyTest, RefusesCertificatesOutsideTheirValidity) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verify_file(*devices_trust, "client-expired.chain.pem");
  EXPECT_REASON(verdict, expired);
  EXPECT_EQ(verdict.error_depth, 0);
  verdict = verify_file(*devices_trust, "client-not-yet-valid.chain.pem");
  EXPECT_REASON(verdict, not_yet_valid);
  EXPECT_EQ(verdict.error_depth, 0);
}

TEST_F(ClientVerifyTest, VerificationTimeCanBeChosen) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  X509Handle leaf = testing::load_certificate("client-devices.pem");
  const int64_t not_after = epoch_of_not_after(leaf.get());
  // One second after notAfter the CRLs have expired too (365 < 825 days), and
  // OpenSSL checks revocation before validity times: fail closed either way.
  ClientVerdict verdict = verify_file(*devices_trust, "client-devices.chain.pem", not_after + 1);
  EXPECT_FALSE(verdict.ok());
  // Verified without CRLs, the same moment shows the certificate expiry.
  auto no_crl = trust({{"devices", "devices-ca.pem", ""}});
  ASSERT_TRUE(no_crl);
  EXPECT_REASON(verify_file(*no_crl, "client-devices.chain.pem", not_after + 1), expired);
  EXPECT_REASON(verify_file(*no_crl, "client-devices.chain.pem", not_after - 1), ok);
}

TEST_F(ClientVerifyTest, RefusesRevokedCertificates) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verify_file(*devices_trust, "client-revoked.chain.pem");
  EXPECT_REASON(verdict, revoked);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(verdict.error_depth, 0);
}

TEST_F(ClientVerifyTest, RefusesCertificatesNotMeantForClientAuthentication) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verify_file(*devices_trust, "client-server-eku.chain.pem");
  EXPECT_REASON(verdict, wrong_usage);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_INVALID_PURPOSE);
  // keyAgreement only: OpenSSL's SSL-client purpose passes it, our own
  // digitalSignature rule does not.
  verdict = verify_file(*devices_trust, "client-no-digitalsig.chain.pem");
  EXPECT_REASON(verdict, wrong_usage);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE);
  EXPECT_EQ(verdict.error_depth, 0);
}

TEST_F(ClientVerifyTest, EnforcesTheMaximumDepthAtItsBoundary) {
  auto depth1 = devices(1);
  auto depth2 = devices(2);
  auto depth3 = devices(3);
  ASSERT_TRUE(depth1 && depth2 && depth3);
  // root -> int -> int2 -> leaf: two intermediates.
  EXPECT_REASON(verify_file(*depth2, "client-depth2.chain.pem"), ok);
  EXPECT_REASON(verify_file(*depth1, "client-depth2.chain.pem"), chain_too_deep);
  // root -> int -> int2 -> int3 -> leaf: three intermediates.
  ClientVerdict verdict = verify_file(*depth2, "client-deep.chain.pem");
  EXPECT_REASON(verdict, chain_too_deep);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_CERT_CHAIN_TOO_LONG);
  EXPECT_REASON(verify_file(*depth3, "client-deep.chain.pem"), ok);
  // The same whether the intermediates come from the client or the CA file.
  X509Handle leaf = testing::load_certificate("client-deep.pem");
  EXPECT_REASON(verifier_->verify(*depth2, leaf.get(), nullptr), chain_too_deep);
  EXPECT_REASON(verifier_->verify(*depth3, leaf.get(), nullptr), ok);
}

TEST_F(ClientVerifyTest, RefusesABrokenSignature) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verify_file(*devices_trust, "client-bad-signature.chain.pem");
  EXPECT_REASON(verdict, bad_signature);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_CERT_SIGNATURE_FAILURE);
  EXPECT_EQ(verdict.error_depth, 0);
}

TEST_F(ClientVerifyTest, CallsUndecodableCertificatesMalformed) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, read_test_pki("client-malformed.pem")), malformed);
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, read_test_pki("client-truncated.pem")), malformed);
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, ""), malformed);
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, "no PEM here at all"), malformed);
  // A good chain as PEM text takes the same path as parsed certificates.
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, read_test_pki("client-devices.chain.pem")), ok);
  EXPECT_REASON(verifier_->verify_pem(*devices_trust, read_test_pki("client-revoked.chain.pem")), revoked);
}

TEST_F(ClientVerifyTest, NoCertificateIsNoCertificate) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ClientVerdict verdict = verifier_->verify(*devices_trust, nullptr, nullptr);
  EXPECT_REASON(verdict, no_certificate);
  EXPECT_EQ(ClientVerdict{}.reason, VerifyReason::no_certificate);
}

TEST_F(ClientVerifyTest, RefusesAnUnhandledCriticalExtensionAsUnacceptable) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  X509Handle issuer = testing::load_certificate("devices-int.pem");
  EvpPkeyHandle issuer_key = testing::load_private_key("devices-int.key");
  testing::TestCertificate made = testing::make_test_certificate(
      "critical-extension",
      {{"basicConstraints", "critical,CA:FALSE"},
       {"keyUsage", "critical,digitalSignature"},
       {"extendedKeyUsage", "clientAuth"},
       {"authorityKeyIdentifier", "keyid:always"},
       {"1.3.6.1.4.1.55555.1", "critical,DER:05:00"}},
      issuer.get(), issuer_key.get());
  ClientVerdict verdict = verifier_->verify(*devices_trust, made.cert.get(), nullptr);
  EXPECT_REASON(verdict, unacceptable);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION);
  // The same certificate without that extension passes: the refusal is for
  // the extension, nothing else.
  made = testing::make_test_certificate("no-critical-extension",
                                        {{"basicConstraints", "critical,CA:FALSE"},
                                         {"keyUsage", "critical,digitalSignature"},
                                         {"extendedKeyUsage", "clientAuth"},
                                         {"authorityKeyIdentifier", "keyid:always"}},
                                        issuer.get(), issuer_key.get());
  EXPECT_REASON(verifier_->verify(*devices_trust, made.cert.get(), nullptr), ok);
}

TEST_F(ClientVerifyTest, AMissingOrStaleCrlMakesRevocationUnknown) {
  // The devices CRL file reduced to the root's CRL: the issuing CA's own CRL,
  // needed for its leaves, is missing.
  std::string root_crl;
  {
    const std::string pem = read_test_pki("devices.crl.pem");
    root_crl = pem.substr(0, pem.find("-----END X509 CRL-----") + 23);
  }
  std::string error;
  auto store = TrustStore::build({CaSource{"devices", read_test_pki("devices-root.pem"), root_crl}}, {}, &error);
  ASSERT_NE(store, nullptr) << error;
  auto root_crl_only = store->instantiate(&error);
  ASSERT_NE(root_crl_only, nullptr) << error;
  ClientVerdict verdict = verify_file(*root_crl_only, "client-devices.chain.pem");
  EXPECT_REASON(verdict, revocation_unknown);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_UNABLE_TO_GET_CRL);

  // Past every CRL's nextUpdate, before the certificate's notAfter.
  store = TrustStore::build({CaSource{"devices", read_test_pki("devices-ca.pem"), read_test_pki("devices.crl.pem")}},
                            {}, &error);
  ASSERT_NE(store, nullptr) << error;
  auto full = store->instantiate(&error);
  ASSERT_NE(full, nullptr);
  const int64_t stale = store->earliest_crl_next_update() + 86400;
  X509Handle leaf = testing::load_certificate("client-devices.pem");
  ASSERT_LT(stale, epoch_of_not_after(leaf.get()));
  verdict = verify_file(*full, "client-devices.chain.pem", stale);
  EXPECT_REASON(verdict, revocation_unknown);
  EXPECT_EQ(verdict.x509_error, X509_V_ERR_CRL_HAS_EXPIRED);
}

TEST_F(ClientVerifyTest, RevocationIsCheckedOnlyForSourcesWithACrlFile) {
  // devices with CRLs next to partners without: a partners chain is not
  // refused for lacking CRLs, a devices chain still is checked.
  auto mixed = trust({{"devices", "devices-ca.pem", "devices.crl.pem"}, {"partners", "partners-ca.pem", ""}});
  ASSERT_TRUE(mixed);
  EXPECT_REASON(verify_file(*mixed, "client-partners.pem"), ok);
  EXPECT_REASON(verify_file(*mixed, "client-devices.chain.pem"), ok);
  EXPECT_REASON(verify_file(*mixed, "client-revoked.chain.pem"), revoked);
  // Without any CRL file a revoked certificate is not known to be revoked.
  auto unchecked = trust({{"devices", "devices-ca.pem", ""}});
  ASSERT_TRUE(unchecked);
  EXPECT_REASON(verify_file(*unchecked, "client-revoked.chain.pem"), ok);
}

TEST_F(ClientVerifyTest, ACrlReloadRevokesOnTheNextVerification) {
  auto before = trust({{"devices", "devices-ca.pem", "devices-empty.crl.pem"}});
  auto after = trust({{"devices", "devices-ca.pem", "devices.crl.pem"}});
  ASSERT_TRUE(before && after);
  // One verifier (one worker) moving from the old copy to the new one.
  EXPECT_REASON(verify_file(*before, "client-revoked.chain.pem"), ok);
  EXPECT_REASON(verify_file(*after, "client-revoked.chain.pem"), revoked);
  EXPECT_REASON(verify_file(*after, "client-devices.chain.pem"), ok);
  EXPECT_REASON(verify_file(*before, "client-revoked.chain.pem"), ok);
}

TEST_F(ClientVerifyTest, WorkerCopiesAreIndependent) {
  std::string error;
  auto store = TrustStore::build({CaSource{"devices", read_test_pki("devices-ca.pem"), read_test_pki("devices.crl.pem")}},
                                 {}, &error);
  ASSERT_NE(store, nullptr) << error;
  auto first = store->instantiate(&error);
  auto second = store->instantiate(&error);
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->store(), second->store());
  // No certificate object is shared between the copies, nor with the master.
  STACK_OF(X509_OBJECT)* a = X509_STORE_get0_objects(first->store());
  STACK_OF(X509_OBJECT)* b = X509_STORE_get0_objects(second->store());
  ASSERT_EQ(sk_X509_OBJECT_num(a), sk_X509_OBJECT_num(b));
  ASSERT_EQ(sk_X509_OBJECT_num(a), 8);  // 4 CAs, 4 CRLs
  std::set<const void*> seen;
  for (STACK_OF(X509_OBJECT)* objects : {a, b}) {
    for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
      X509_OBJECT* object = sk_X509_OBJECT_value(objects, i);
      const void* pointer = X509_OBJECT_get_type(object) == X509_LU_X509
                                ? static_cast<const void*>(X509_OBJECT_get0_X509(object))
                                : static_cast<const void*>(X509_OBJECT_get0_X509_CRL(object));
      EXPECT_TRUE(seen.insert(pointer).second);
    }
  }
  EXPECT_REASON(verify_file(*first, "client-devices.chain.pem"), ok);
  second.reset();
  EXPECT_REASON(verify_file(*first, "client-revoked.chain.pem"), revoked);
}

TEST_F(ClientVerifyTest, LeavesTheErrorQueueAsItFoundIt) {
  auto devices_trust = devices();
  ASSERT_TRUE(devices_trust);
  ERR_clear_error();
  for (const char* file : {"client-bad-signature.chain.pem", "client-revoked.chain.pem", "client-devices.chain.pem"}) {
    verify_file(*devices_trust, file);
    EXPECT_EQ(ERR_peek_error(), 0u) << file;
  }
  verifier_->verify_pem(*devices_trust, read_test_pki("client-truncated.pem"));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// The verdict cache and the operator's revocation set around verify().

std::unique_ptr<VerdictCache> make_cache(uint32_t ttl_seconds = 3600) {
  std::string error;
  auto cache = VerdictCache::create(VerdictCacheOptions{1024, ttl_seconds}, &error);
  EXPECT_NE(cache, nullptr) << error;
  return cache;
}

std::shared_ptr<const TrustStore> build_store(const char* cert, const char* crl, int max_intermediates = 2) {
  std::string error;
  auto store = TrustStore::build({CaSource{"devices", read_test_pki(cert), *crl != '\0' ? read_test_pki(crl) : ""}},
                                 TrustOptions{max_intermediates}, &error);
  EXPECT_NE(store, nullptr) << error;
  return store;
}

std::unique_ptr<WorkerTrust> copy_of(const TrustStore& store) {
  std::string error;
  auto copy = store.instantiate(&error);
  EXPECT_NE(copy, nullptr) << error;
  return copy;
}

std::string serial_of(const char* file) {
  X509Handle cert = testing::load_certificate(file);
  std::string hex;
  EXPECT_TRUE(cert != nullptr && serial_hex(X509_get0_serialNumber(cert.get()), 256, &hex));
  return hex;
}

RevocationEntry fingerprint_entry(const char* file) {
  X509Handle cert = testing::load_certificate(file);
  RevocationEntry entry;
  unsigned int length = 0;
  EXPECT_EQ(X509_digest(cert.get(), EVP_sha256(), entry.fingerprint.bytes.data(), &length), 1);
  return entry;
}

RevocationEntry serial_entry(const char* ca, const char* file) {
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::ca_serial;
  entry.ca_name = ca;
  std::string error;
  EXPECT_TRUE(parse_serial_hex(serial_of(file), &entry.serial, &error)) << error;
  return entry;
}

std::unique_ptr<const RevocationSet> revocations(const std::vector<RevocationEntry>& entries) {
  std::string error;
  auto set = RevocationSet::build(entries,
                                  {CaSource{"devices", read_test_pki("devices-ca.pem"), ""},
                                   CaSource{"other", read_test_pki("other-ca.pem"), ""}},
                                  &error);
  EXPECT_NE(set, nullptr) << error;
  return set;
}

class CachedVerifyTest : public ClientVerifyTest {
 protected:
  ClientVerdict check(const WorkerTrust& on, const std::string& file, const VerifyOptions& options,
                      VerifyFacts* facts = nullptr, ClientVerifier* verifier = nullptr) {
    X509StackHandle chain = load_chain(file);
    EXPECT_GT(sk_X509_num(chain.get()), 0) << file;
    return (verifier != nullptr ? verifier : verifier_.get())
        ->verify(on, sk_X509_value(chain.get(), 0), chain.get(), options, facts);
  }
  const VerdictCacheCounters& counters() const { return verifier_->cache_counters(); }

  const int64_t now_ = static_cast<int64_t>(time(nullptr));
};

TEST_F(CachedVerifyTest, ASecondVerificationHitsTheCacheOnAnyWorker) {
  auto cache = make_cache();
  auto store = build_store("devices-ca.pem", "devices.crl.pem");
  ASSERT_TRUE(cache && store);
  auto worker1 = copy_of(*store);
  auto worker2 = copy_of(*store);
  ASSERT_TRUE(worker1 && worker2);
  EXPECT_EQ(worker1->generation(), store->generation());
  EXPECT_EQ(worker1->earliest_crl_next_update(), store->earliest_crl_next_update());

  VerifyFacts facts;
  ClientVerdict verdict = check(*worker1, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts);
  EXPECT_REASON(verdict, ok);
  EXPECT_FALSE(facts.cache_hit);
  EXPECT_EQ(verdict.chain_length, 3);
  ASSERT_TRUE(facts.leaf_sha256_known);
  X509Handle leaf = testing::load_certificate("client-devices.pem");
  std::array<uint8_t, kSha256Bytes> expected{};
  unsigned int length = 0;
  ASSERT_EQ(X509_digest(leaf.get(), EVP_sha256(), expected.data(), &length), 1);
  EXPECT_EQ(facts.leaf_sha256, expected);
  EXPECT_EQ(counters().misses, 1u);
  EXPECT_EQ(counters().inserts, 1u);

  verdict = check(*worker1, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts);
  EXPECT_REASON(verdict, ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_EQ(verdict.chain_length, 3);
  EXPECT_EQ(verdict.error_depth, -1);
  EXPECT_EQ(verdict.x509_error, X509_V_OK);
  EXPECT_EQ(facts.leaf_sha256, expected);
  EXPECT_EQ(counters().hits, 1u);

  // Another worker: its own verifier and trust copy, the same cache.
  auto other_worker = ClientVerifier::create();
  ASSERT_TRUE(other_worker);
  verdict = check(*worker2, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts, other_worker.get());
  EXPECT_REASON(verdict, ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_EQ(other_worker->cache_counters().hits, 1u);
  EXPECT_EQ(other_worker->cache_counters().misses, 0u);
  // The leaf alone (intermediate from the CA file) is the same certificate.
  X509Handle alone = testing::load_certificate("client-devices.pem");
  verdict = verifier_->verify(*worker1, alone.get(), nullptr, {nullptr, cache.get(), now_}, &facts);
  EXPECT_REASON(verdict, ok);
  EXPECT_TRUE(facts.cache_hit);
}

TEST_F(CachedVerifyTest, RefusalsAreNotCached) {
  auto cache = make_cache();
  auto trust = devices();
  ASSERT_TRUE(cache && trust);
  for (const char* file : {"client-revoked.chain.pem", "client-expired.chain.pem", "client-bad-signature.chain.pem",
                           "client-unknown-ca.pem", "client-no-digitalsig.chain.pem"}) {
    for (int round = 0; round < 2; ++round) {
      VerifyFacts facts;
      EXPECT_FALSE(check(*trust, file, {nullptr, cache.get(), now_}, &facts).ok()) << file;
      EXPECT_FALSE(facts.cache_hit) << file;
    }
  }
  EXPECT_EQ(counters().inserts, 0u);
  EXPECT_EQ(counters().hits, 0u);
}

TEST_F(CachedVerifyTest, ANewTrustStoreMissesOnlyItsOwnVerdicts) {
  auto cache = make_cache();
  auto devices_store = build_store("devices-ca.pem", "devices.crl.pem");
  std::string error;
  auto partners_store = TrustStore::build(
      {CaSource{"partners", read_test_pki("partners-ca.pem"), read_test_pki("partners.crl.pem")}}, {}, &error);
  ASSERT_TRUE(cache && devices_store && partners_store) << error;
  auto devices_copy = copy_of(*devices_store);
  auto partners_copy = copy_of(*partners_store);
  ASSERT_TRUE(devices_copy && partners_copy);
  const VerifyOptions options{nullptr, cache.get(), now_};
  VerifyFacts facts;
  for (int round = 0; round < 2; ++round) {
    EXPECT_REASON(check(*devices_copy, "client-devices.chain.pem", options, &facts), ok);
    EXPECT_EQ(facts.cache_hit, round == 1);
    EXPECT_REASON(check(*partners_copy, "client-partners.pem", options, &facts), ok);
    EXPECT_EQ(facts.cache_hit, round == 1);
  }

  // The devices CA set rebuilt (a CRL reload, say): a new generation.
  auto rebuilt = build_store("devices-ca.pem", "devices.crl.pem");
  ASSERT_TRUE(rebuilt);
  EXPECT_NE(rebuilt->generation(), devices_store->generation());
  EXPECT_NE(rebuilt->generation(), partners_store->generation());
  auto rebuilt_copy = copy_of(*rebuilt);
  ASSERT_TRUE(rebuilt_copy);
  EXPECT_REASON(check(*rebuilt_copy, "client-devices.chain.pem", options, &facts), ok);
  EXPECT_FALSE(facts.cache_hit);
  EXPECT_REASON(check(*rebuilt_copy, "client-devices.chain.pem", options, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  // The other host's store, and connections still on the old store, hit.
  EXPECT_REASON(check(*partners_copy, "client-partners.pem", options, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_REASON(check(*devices_copy, "client-devices.chain.pem", options, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  // A partners certificate never hits under the devices store.
  EXPECT_REASON(check(*rebuilt_copy, "client-partners.pem", options, &facts), unknown_ca);
  EXPECT_FALSE(facts.cache_hit);
}

TEST_F(CachedVerifyTest, AnEntryEndsAtTheEarliestCrlNextUpdate) {
  auto cache = make_cache(UINT32_MAX);
  auto store = build_store("devices-ca.pem", "devices.crl.pem");
  ASSERT_TRUE(cache && store);
  auto trust = copy_of(*store);
  ASSERT_TRUE(trust);
  const int64_t next_update = store->earliest_crl_next_update();
  ASSERT_GT(next_update, now_);
  VerifyFacts facts;
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts), ok);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), next_update - 1}, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  // From nextUpdate on, the entry is over, and a full verification agrees
  // that the verdict no longer holds.
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), next_update}, &facts),
                revocation_unknown);
  EXPECT_FALSE(facts.cache_hit);
  EXPECT_EQ(counters().expired, 1u);
}

TEST_F(CachedVerifyTest, AnEntryEndsAtTheChainsEarliestNotAfter) {
  auto cache = make_cache(UINT32_MAX);
  auto store = build_store("devices-ca.pem", "");
  ASSERT_TRUE(cache && store);
  auto trust = copy_of(*store);
  ASSERT_TRUE(trust);
  X509Handle leaf = testing::load_certificate("client-devices.pem");
  const int64_t not_after = epoch_of_not_after(leaf.get());
  VerifyFacts facts;
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts), ok);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), not_after - 1}, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), not_after}, &facts), expired);
  EXPECT_FALSE(facts.cache_hit);
  EXPECT_EQ(counters().expired, 1u);
}

TEST_F(CachedVerifyTest, AnEntryHoldsForItsTtlAndNotBeforeItsVerification) {
  auto store = build_store("devices-ca.pem", "devices.crl.pem");
  ASSERT_TRUE(store);
  auto trust = copy_of(*store);
  ASSERT_TRUE(trust);
  VerifyFacts facts;
  auto cache = make_cache(60);
  ASSERT_TRUE(cache);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), now_}, &facts), ok);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), now_ + 59}, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, cache.get(), now_ + 60}, &facts), ok);
  EXPECT_FALSE(facts.cache_hit);

  auto fresh = make_cache(60);
  ASSERT_TRUE(fresh);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, fresh.get(), now_}, &facts), ok);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {nullptr, fresh.get(), now_ - 1}, &facts), ok);
  EXPECT_FALSE(facts.cache_hit);
}

TEST_F(CachedVerifyTest, AFiveCertificateChainIsCached) {
  auto cache = make_cache();
  auto trust = devices(3);
  ASSERT_TRUE(cache && trust);
  VerifyFacts facts;
  ClientVerdict verdict = check(*trust, "client-deep.chain.pem", {nullptr, cache.get(), now_}, &facts);
  EXPECT_REASON(verdict, ok);
  EXPECT_EQ(verdict.chain_length, 5);
  verdict = check(*trust, "client-deep.chain.pem", {nullptr, cache.get(), now_}, &facts);
  EXPECT_REASON(verdict, ok);
  EXPECT_TRUE(facts.cache_hit);
  EXPECT_EQ(verdict.chain_length, 5);
}

// Each way of revoking, on a miss (cache empty), on a hit (cache warmed
// without the revocation) and without a cache.
TEST_F(CachedVerifyTest, OperatorRevocationsApplyOnEveryPath) {
  struct Case {
    const char* what;
    RevocationEntry entry;
    const char* client;
    int depth;
  };
  const Case cases[] = {
      {"leaf by fingerprint", fingerprint_entry("client-devices.pem"), "client-devices.chain.pem", 0},
      {"intermediate by fingerprint", fingerprint_entry("devices-int.pem"), "client-devices.chain.pem", 1},
      {"root by fingerprint", fingerprint_entry("devices-root.pem"), "client-devices.chain.pem", 2},
      {"leaf by CA and serial", serial_entry("devices", "client-devices.pem"), "client-devices.chain.pem", 0},
      {"intermediate by CA and serial", serial_entry("devices", "devices-int.pem"), "client-devices.chain.pem", 1},
      {"intermediate two levels up", serial_entry("devices", "devices-int.pem"), "client-depth2.chain.pem", 2},
  };
  auto store = build_store("devices-ca.pem", "devices.crl.pem");
  ASSERT_TRUE(store);
  auto trust = copy_of(*store);
  ASSERT_TRUE(trust);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto set = revocations({c.entry});
    ASSERT_TRUE(set);
    VerifyFacts facts;

    ClientVerdict verdict = check(*trust, c.client, {set.get(), nullptr, now_}, &facts);
    EXPECT_REASON(verdict, revoked);
    EXPECT_EQ(verdict.error_depth, c.depth);
    EXPECT_EQ(verdict.x509_error, X509_V_ERR_CERT_REVOKED);

    auto cache = make_cache();
    ASSERT_TRUE(cache);
    verdict = check(*trust, c.client, {set.get(), cache.get(), now_}, &facts);
    EXPECT_REASON(verdict, revoked);
    EXPECT_EQ(verdict.error_depth, c.depth);
    EXPECT_FALSE(facts.cache_hit);
    // A leaf revoked by fingerprint is refused before any lookup or chain
    // work. Any other revocation needs the chain, whose verdict is cached
    // all the same, so lifting the revocation serves it again.
    const bool before_lookup = c.entry.kind == RevocationEntry::Kind::fingerprint && c.depth == 0;
    verdict = check(*trust, c.client, {nullptr, cache.get(), now_}, &facts);
    EXPECT_REASON(verdict, ok);
    EXPECT_EQ(facts.cache_hit, !before_lookup);

    // Revoked while cached: the next handshake sees it.
    verdict = check(*trust, c.client, {set.get(), cache.get(), now_}, &facts);
    EXPECT_REASON(verdict, revoked);
    EXPECT_EQ(verdict.error_depth, c.depth);
    EXPECT_EQ(facts.cache_hit, !before_lookup);
    EXPECT_TRUE(facts.leaf_sha256_known);
  }
}

TEST_F(CachedVerifyTest, OtherRevocationsLeaveACertificateAlone) {
  auto cache = make_cache();
  auto trust = devices();
  ASSERT_TRUE(cache && trust);
  // The leaf's serial under another CA, another leaf's serial, another
  // certificate's fingerprint.
  auto set = revocations({serial_entry("other", "client-devices.pem"), serial_entry("devices", "client-revoked.pem"),
                          fingerprint_entry("client-depth2.pem")});
  ASSERT_TRUE(set);
  VerifyFacts facts;
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {set.get(), cache.get(), now_}, &facts), ok);
  EXPECT_REASON(check(*trust, "client-devices.chain.pem", {set.get(), cache.get(), now_}, &facts), ok);
  EXPECT_TRUE(facts.cache_hit);
  // The CRL-revoked certificate stays revoked by its CRL.
  EXPECT_REASON(check(*trust, "client-revoked.chain.pem", {set.get(), cache.get(), now_}, &facts), revoked);
}

TEST(VerifyReasonMapping, EveryOpenSslCodeHasAReason) {
  std::set<VerifyReason> reached;
  for (int code = X509_V_OK; code <= X509_V_ERR_EC_KEY_EXPLICIT_PARAMS + 10; ++code) {
    reached.insert(reason_for_x509_error(code));
  }
  // Every reason but no_certificate (which no X509 code means) is reachable.
  EXPECT_EQ(reached.size(), kVerifyReasonCount - 1);
  EXPECT_EQ(reached.count(VerifyReason::no_certificate), 0u);
  EXPECT_EQ(reason_for_x509_error(X509_V_ERR_OUT_OF_MEM), VerifyReason::internal_error);
  EXPECT_EQ(reason_for_x509_error(X509_V_ERR_CRL_HAS_EXPIRED), VerifyReason::revocation_unknown);
  EXPECT_EQ(reason_for_x509_error(X509_V_ERR_PATH_LENGTH_EXCEEDED), VerifyReason::chain_too_deep);
  EXPECT_EQ(reason_for_x509_error(X509_V_ERR_EE_KEY_TOO_SMALL), VerifyReason::unacceptable);
}

TEST(VerifyReasonMapping, NamesAreUniqueAndRoundTrip) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kVerifyReasonCount; ++i) {
    const auto reason = static_cast<VerifyReason>(i);
    EXPECT_TRUE(names.insert(name_of(reason)).second) << name_of(reason);
    EXPECT_EQ(verify_reason_from_name(name_of(reason)), reason);
    EXPECT_FALSE(kVerifyReasonMeanings[i].empty());
  }
  EXPECT_FALSE(verify_reason_from_name("nonsense").has_value());
}

TEST(VerifyReasonMapping, AlertsFollowRfc8446) {
  EXPECT_EQ(alert_for(VerifyReason::no_certificate, true), TlsAlert::certificate_required);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::no_certificate, true)), 116);
  EXPECT_EQ(alert_for(VerifyReason::no_certificate, false), TlsAlert::handshake_failure);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::unknown_ca, true)), 48);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::expired, true)), 45);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::not_yet_valid, false)), 45);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::revoked, true)), 44);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::wrong_usage, true)), 43);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::chain_too_deep, true)), 48);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::bad_signature, true)), 42);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::malformed, true)), 42);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::revocation_unknown, true)), 46);
  EXPECT_EQ(static_cast<int>(alert_for(VerifyReason::internal_error, true)), 80);
}

}  // namespace
}  // namespace mtlsgw::tls
