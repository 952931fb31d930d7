// RevocationSet: the operator's serial and fingerprint text, the keys of
// certificates of the test PKI (scripts/make-test-pki) by fingerprint and by
// CA + serial, and the table itself.

#include "dataplane/tls/revocation_set.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <string>
#include <vector>

#include "dataplane/tls/trust_store.h"
#include "dataplane/tls/x509_text.h"
#include "test_pki.h"

namespace mtlsgw::tls {
namespace {

using testing::load_certificate;
using testing::read_test_pki;

std::vector<uint8_t> serial_of(std::string_view text) {
  std::vector<uint8_t> content;
  std::string error;
  EXPECT_TRUE(parse_serial_hex(text, &content, &error)) << text << ": " << error;
  return content;
}

std::string serial_text(X509* cert) {
  std::string hex;
  EXPECT_TRUE(serial_hex(X509_get0_serialNumber(cert), 256, &hex));
  return hex;
}

RevocationKey openssl_fingerprint(X509* cert) {
  RevocationKey key;
  unsigned int length = 0;
  EXPECT_EQ(X509_digest(cert, EVP_sha256(), key.bytes.data(), &length), 1);
  EXPECT_EQ(length, kSha256Bytes);
  return key;
}

RevocationEntry by_serial(const std::string& ca, std::string_view serial) {
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::ca_serial;
  entry.ca_name = ca;
  entry.serial = serial_of(serial);
  return entry;
}

RevocationEntry by_fingerprint(const RevocationKey& key) {
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::fingerprint;
  entry.fingerprint = key;
  return entry;
}

std::vector<CaSource> pki_cas() {
  return {CaSource{"devices", read_test_pki("devices-ca.pem"), ""},
          CaSource{"other", read_test_pki("other-ca.pem"), ""},
          CaSource{"partners", read_test_pki("partners-ca.pem"), ""}};
}

std::unique_ptr<const RevocationSet> build(const std::vector<RevocationEntry>& entries) {
  std::string error;
  auto set = RevocationSet::build(entries, pki_cas(), &error);
  EXPECT_NE(set, nullptr) << error;
  return set;
}

TEST(SerialText, IsNormalisedAsAPositiveDerInteger) {
  const std::vector<uint8_t> padded{0x00, 0x8f, 0x12};
  EXPECT_EQ(serial_of("8f12"), padded);
  EXPECT_EQ(serial_of("8F12"), padded);
  EXPECT_EQ(serial_of("008F12"), padded);
  EXPECT_EQ(serial_of("00:8f:12"), padded);
  EXPECT_EQ(serial_of("0:0:8F:12"), padded);
  EXPECT_EQ(serial_of("00000000008f12"), padded);
  EXPECT_EQ(serial_of("7f12"), (std::vector<uint8_t>{0x7f, 0x12}));
  EXPECT_EQ(serial_of("0007f12"), (std::vector<uint8_t>{0x7f, 0x12}));
  EXPECT_EQ(serial_of("abc"), (std::vector<uint8_t>{0x0a, 0xbc}));
  EXPECT_EQ(serial_of("1:2"), (std::vector<uint8_t>{0x01, 0x02}));
  EXPECT_EQ(serial_of("0"), (std::vector<uint8_t>{0x00}));
  EXPECT_EQ(serial_of("00:00"), (std::vector<uint8_t>{0x00}));
  EXPECT_EQ(serial_of("80"), (std::vector<uint8_t>{0x00, 0x80}));
}

TEST(SerialText, RefusesWhatIsNotHex) {
  std::vector<uint8_t> content;
  std::string error;
  for (const char* bad : {"", "0x12", "12 34", "-12", "1::2", ":12", "12:", "123:45", "g1", "12\n"}) {
    EXPECT_FALSE(parse_serial_hex(bad, &content, &error)) << '"' << bad << '"';
    EXPECT_FALSE(error.empty());
  }
  EXPECT_TRUE(parse_serial_hex(std::string(2 * kMaxSerialBytes, '7'), &content, &error)) << error;
  EXPECT_FALSE(parse_serial_hex(std::string(2 * kMaxSerialBytes + 2, '7'), &content, &error));
  // Leading zeros do not count against the limit.
  EXPECT_TRUE(parse_serial_hex(std::string(100, '0') + "7f", &content, &error)) << error;
}

TEST(FingerprintText, TakesExactlyThirtyTwoBytes) {
  X509Handle leaf = load_certificate("client-devices.pem");
  const RevocationKey expected = openssl_fingerprint(leaf.get());
  std::string lower;
  hex_lower(expected.bytes, 256, &lower);
  std::string upper = lower;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string colons;
  for (std::size_t i = 0; i < upper.size(); i += 2) colons += (i == 0 ? "" : ":") + upper.substr(i, 2);
  for (const std::string& text : {lower, upper, colons}) {
    RevocationKey parsed;
    std::string error;
    ASSERT_TRUE(parse_fingerprint_hex(text, &parsed, &error)) << text << ": " << error;
    EXPECT_EQ(parsed, expected) << text;
  }
  RevocationKey parsed;
  std::string error;
  EXPECT_FALSE(parse_fingerprint_hex(lower.substr(2), &parsed, &error));
  EXPECT_FALSE(parse_fingerprint_hex(lower + "00", &parsed, &error));
  EXPECT_FALSE(parse_fingerprint_hex("zz" + lower.substr(2), &parsed, &error));
}

class RevocationSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hasher_ = CertificateHasher::create();
    ASSERT_NE(hasher_, nullptr);
    root_ = load_certificate("devices-root.pem");
    int_ = load_certificate("devices-int.pem");
    int2_ = load_certificate("devices-int2.pem");
    leaf_ = load_certificate("client-devices.pem");
    revoked_leaf_ = load_certificate("client-revoked.pem");
    depth2_ = load_certificate("client-depth2.pem");
    other_root_ = load_certificate("other-ca.pem");
    other_leaf_ = load_certificate("client-other.pem");
    ASSERT_TRUE(root_ && int_ && int2_ && leaf_ && revoked_leaf_ && depth2_ && other_root_ && other_leaf_);
  }

  RevocationKeys keys(X509* cert, X509* issuer) {
    RevocationKeys out;
    EXPECT_TRUE(hasher_->keys_of(cert, issuer, &out));
    return out;
  }

  std::unique_ptr<CertificateHasher> hasher_;
  X509Handle root_, int_, int2_, leaf_, revoked_leaf_, depth2_, other_root_, other_leaf_;
};

TEST_F(RevocationSetTest, FingerprintIsTheSha256OfTheDer) {
  const RevocationKeys leaf = keys(leaf_.get(), int_.get());
  EXPECT_EQ(leaf.fingerprint, openssl_fingerprint(leaf_.get()));
  EXPECT_NE(leaf.fingerprint, leaf.issuer_serial);
  RevocationKey alone;
  ASSERT_TRUE(hasher_->fingerprint(leaf_.get(), &alone));
  EXPECT_EQ(alone, leaf.fingerprint);
}

TEST_F(RevocationSetTest, RevokesByFingerprint) {
  auto set = build({by_fingerprint(openssl_fingerprint(leaf_.get())), by_fingerprint(openssl_fingerprint(int2_.get()))});
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->revoked(keys(leaf_.get(), int_.get())));
  EXPECT_TRUE(set->revoked(keys(int2_.get(), int_.get())));
  EXPECT_FALSE(set->revoked(keys(revoked_leaf_.get(), int_.get())));
  EXPECT_FALSE(set->revoked(keys(int_.get(), root_.get())));
  EXPECT_FALSE(set->revoked(keys(root_.get(), root_.get())));
  EXPECT_EQ(set->size(), 2u);
  EXPECT_EQ(set->key_count(), 2u);
}

TEST_F(RevocationSetTest, RevokesByCaAndSerialInEverySpelling) {
  const std::string serial = serial_text(leaf_.get());
  ASSERT_GE(serial.size(), 2u);
  std::string lower = serial;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string colons;
  for (std::size_t i = 0; i < serial.size(); i += 2) colons += (i == 0 ? "" : ":") + serial.substr(i, 2);
  for (const std::string& text : {serial, lower, colons, "00:" + colons, "0000" + lower}) {
    SCOPED_TRACE(text);
    auto set = build({by_serial("devices", text)});
    ASSERT_TRUE(set);
    EXPECT_TRUE(set->revoked(keys(leaf_.get(), int_.get())));
    EXPECT_FALSE(set->revoked(keys(revoked_leaf_.get(), int_.get())));
    EXPECT_EQ(set->size(), 1u);
    // One key per certificate of the devices CA file (root and three
    // intermediates): any of them may be the issuer.
    EXPECT_EQ(set->key_count(), 4u);
  }
}

TEST_F(RevocationSetTest, TheIssuerIsPartOfTheKey) {
  auto set = build({by_serial("devices", serial_text(leaf_.get()))});
  ASSERT_TRUE(set);
  // The same certificate as if another CA had issued it; under any of the
  // devices CA's own certificates the serial is revoked (the operator named
  // the CA, not one of its certificates).
  EXPECT_FALSE(set->revoked(keys(leaf_.get(), other_root_.get()).issuer_serial));
  EXPECT_TRUE(set->revoked(keys(leaf_.get(), root_.get()).issuer_serial));
  EXPECT_TRUE(set->revoked(keys(leaf_.get(), int2_.get()).issuer_serial));
  // A certificate with the devices CA's name but another key is another CA.
  testing::TestCertificate impostor = testing::make_test_certificate("impostor", {{"basicConstraints", "critical,CA:TRUE"}});
  ASSERT_TRUE(impostor.cert);
  ASSERT_EQ(X509_set_subject_name(impostor.cert.get(), X509_get_subject_name(int_.get())), 1);
  EXPECT_FALSE(set->revoked(keys(leaf_.get(), impostor.cert.get()).issuer_serial));
  ASSERT_EQ(X509_set_pubkey(impostor.cert.get(), X509_get0_pubkey(int_.get())), 1);
  EXPECT_TRUE(set->revoked(keys(leaf_.get(), impostor.cert.get()).issuer_serial));
  // The serial under a CA that did not issue it revokes nothing.
  auto elsewhere = build({by_serial("other", serial_text(leaf_.get())), by_serial("partners", serial_text(leaf_.get()))});
  ASSERT_TRUE(elsewhere);
  EXPECT_FALSE(elsewhere->revoked(keys(leaf_.get(), int_.get())));
  // And the other CA's own certificate is revoked by its own serial.
  auto other = build({by_serial("other", serial_text(other_leaf_.get()))});
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->revoked(keys(other_leaf_.get(), other_root_.get())));
}

TEST_F(RevocationSetTest, RevokesAnIntermediateByCaAndSerial) {
  auto set = build({by_serial("devices", serial_text(int_.get()))});
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->revoked(keys(int_.get(), root_.get())));
  EXPECT_FALSE(set->revoked(keys(int2_.get(), int_.get())));
  EXPECT_FALSE(set->revoked(keys(leaf_.get(), int_.get())));
  // A root is its own issuer.
  auto root = build({by_serial("devices", serial_text(root_.get()))});
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->revoked(keys(root_.get(), root_.get())));
}

TEST_F(RevocationSetTest, ANegativeSerialMatchesNoOperatorSerial) {
  testing::TestCertificate made = testing::make_test_certificate("negative-serial", {});
  ASSERT_TRUE(made.cert);
  X509* cert = made.cert.get();
  CHandle<ASN1_INTEGER, ASN1_INTEGER_free> serial(ASN1_INTEGER_new());
  ASSERT_EQ(ASN1_INTEGER_set(serial.get(), 0x8f12), 1);
  ASSERT_EQ(X509_set_serialNumber(cert, serial.get()), 1);
  RevocationKey operator_key;
  ASSERT_TRUE(hasher_->issuer_serial_key(cert, serial_of("8F12"), &operator_key));
  EXPECT_EQ(keys(cert, cert).issuer_serial, operator_key);
  ASSERT_EQ(ASN1_INTEGER_set(serial.get(), -0x8f12), 1);
  ASSERT_EQ(X509_set_serialNumber(cert, serial.get()), 1);
  EXPECT_NE(keys(cert, cert).issuer_serial, operator_key);
  ASSERT_EQ(ASN1_INTEGER_set(serial.get(), 0), 1);
  ASSERT_EQ(X509_set_serialNumber(cert, serial.get()), 1);
  ASSERT_TRUE(hasher_->issuer_serial_key(cert, serial_of("0"), &operator_key));
  EXPECT_EQ(keys(cert, cert).issuer_serial, operator_key);
}

TEST_F(RevocationSetTest, ListsEntriesOnceWithNormalisedSerials) {
  const RevocationKey fingerprint = openssl_fingerprint(leaf_.get());
  auto set = build({by_fingerprint(fingerprint), by_serial("devices", "8f12"), by_fingerprint(fingerprint),
                    by_serial("devices", "00:8F:12"), by_serial("other", "8f12")});
  ASSERT_TRUE(set);
  ASSERT_EQ(set->size(), 3u);
  EXPECT_EQ(set->key_count(), 1u + 4u + 1u);
  const auto& entries = set->entries();
  EXPECT_EQ(entries[0].kind, RevocationEntry::Kind::fingerprint);
  EXPECT_EQ(entries[0].fingerprint, fingerprint);
  EXPECT_EQ(entries[1].kind, RevocationEntry::Kind::ca_serial);
  EXPECT_EQ(entries[1].ca_name, "devices");
  EXPECT_EQ(entries[1].serial, (std::vector<uint8_t>{0x00, 0x8f, 0x12}));
  EXPECT_EQ(entries[2].ca_name, "other");
  // Serial bytes given unnormalised are normalised too.
  RevocationEntry raw;
  raw.kind = RevocationEntry::Kind::ca_serial;
  raw.ca_name = "devices";
  raw.serial = {0x00, 0x00, 0x8f, 0x12};
  auto from_bytes = build({raw});
  ASSERT_TRUE(from_bytes);
  EXPECT_EQ(from_bytes->entries()[0].serial, (std::vector<uint8_t>{0x00, 0x8f, 0x12}));
}

TEST_F(RevocationSetTest, GenerationsAreUniqueAndIncreasing) {
  auto first = build({});
  auto second = build({});
  ASSERT_TRUE(first && second);
  EXPECT_GT(first->generation(), 0u);
  EXPECT_GT(second->generation(), first->generation());
  EXPECT_EQ(first->size(), 0u);
  EXPECT_FALSE(first->revoked(keys(leaf_.get(), int_.get())));
  EXPECT_FALSE(first->revoked(RevocationKey{}));
}

TEST_F(RevocationSetTest, RefusesWhatCannotBeAKey) {
  std::string error;
  EXPECT_EQ(RevocationSet::build({by_serial("nobody", "01")}, pki_cas(), &error), nullptr);
  EXPECT_NE(error.find("nobody"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(RevocationSet::build({by_fingerprint(RevocationKey{})}, pki_cas(), &error), nullptr);
  EXPECT_FALSE(error.empty());
  RevocationEntry no_serial;
  no_serial.kind = RevocationEntry::Kind::ca_serial;
  no_serial.ca_name = "devices";
  error.clear();
  EXPECT_EQ(RevocationSet::build({no_serial}, pki_cas(), &error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(RevocationSet::build({by_serial("broken", "01")}, {CaSource{"broken", "not PEM", ""}}, &error), nullptr);
  EXPECT_NE(error.find("broken"), std::string::npos) << error;
}

TEST_F(RevocationSetTest, FindsEveryKeyOfALargeSetAndNoOther) {
  constexpr int kCount = 20000;
  std::vector<RevocationEntry> entries;
  std::vector<RevocationKey> absent;
  for (int i = 0; i < kCount; ++i) {
    RevocationKey key;
    ASSERT_EQ(RAND_bytes(key.bytes.data(), static_cast<int>(key.bytes.size())), 1);
    entries.push_back(by_fingerprint(key));
    ASSERT_EQ(RAND_bytes(key.bytes.data(), static_cast<int>(key.bytes.size())), 1);
    absent.push_back(key);
  }
  auto set = build(entries);
  ASSERT_TRUE(set);
  EXPECT_EQ(set->key_count(), static_cast<std::size_t>(kCount));
  int found = 0;
  int wrongly_found = 0;
  for (int i = 0; i < kCount; ++i) {
    found += set->revoked(entries[static_cast<std::size_t>(i)].fingerprint) ? 1 : 0;
    wrongly_found += set->revoked(absent[static_cast<std::size_t>(i)]) ? 1 : 0;
  }
  EXPECT_EQ(found, kCount);
  EXPECT_EQ(wrongly_found, 0);
}

}  // namespace
}  // namespace mtlsgw::tls
