#pragma once
// The PKI made by scripts/make-test-pki at build time (tests/meson.build runs
// it into the build directory and passes its path in MTLSGW_TEST_PKI), and
// small loaders for its files. A missing PKI is a build fault, so it fails
// the test rather than skipping it.

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/handles.h"

namespace mtlsgw::testing {

inline std::string test_pki_path(const std::string& file) {
  const char* dir = std::getenv("MTLSGW_TEST_PKI");
  EXPECT_NE(dir, nullptr) << "MTLSGW_TEST_PKI is not set: run through meson test";
  return std::string(dir != nullptr ? dir : "/nonexistent") + "/" + file;
}

inline std::string read_test_pki(const std::string& file) {
  std::ifstream in(test_pki_path(file), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << test_pki_path(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every certificate of a PEM file, in file order.
inline std::vector<X509Handle> load_certificates(const std::string& file) {
  const std::string pem = read_test_pki(file);
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Handle> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();
  return certs;
}

inline X509Handle load_certificate(const std::string& file) {
  std::vector<X509Handle> certs = load_certificates(file);
  EXPECT_FALSE(certs.empty()) << file;
  return certs.empty() ? nullptr : std::move(certs.front());
}

inline EvpPkeyHandle load_private_key(const std::string& file) {
  const std::string pem = read_test_pki(file);
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyHandle key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_NE(key, nullptr) << file;
  return key;
}

// A stack holding the certificates of a chain file (leaf first), for
// ClientVerifier::verify's untrusted argument.
inline X509StackHandle load_chain(const std::string& file) {
  X509StackHandle stack(sk_X509_new_null());
  for (X509Handle& cert : load_certificates(file)) {
    if (sk_X509_push(stack.get(), cert.get()) > 0) cert.release();
  }
  return stack;
}

// A certificate made in the test, for shapes the PKI script cannot make
// (oversized or hostile names, unknown critical extensions): a fresh P-256
// key, valid from an hour ago for a day, signed with issuer_key by issuer
// (self-signed when issuer is null). The CN is set byte for byte as a
// UTF8String, bypassing OpenSSL's length table; extensions are given in
// OpenSSL config syntax, e.g. {"keyUsage", "critical,digitalSignature"}.
struct TestCertificate {
  X509Handle cert;
  EvpPkeyHandle key;
};

inline TestCertificate make_test_certificate(const std::string& common_name,
                                             const std::vector<std::pair<std::string, std::string>>& extensions,
                                             X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
  TestCertificate made;
  made.key.reset(EVP_EC_gen("P-256"));
  made.cert.reset(X509_new());
  X509* cert = made.cert.get();
  EXPECT_NE(made.key, nullptr);
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 0x5e71a1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, made.key.get());
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", V_ASN1_UTF8STRING,
                             reinterpret_cast<const unsigned char*>(common_name.data()),
                             static_cast<int>(common_name.size()), -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : subject);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  for (const auto& [name, value] : extensions) {
    X509_EXTENSION* extension = X509V3_EXT_nconf(nullptr, &ctx, name.c_str(), value.c_str());
    EXPECT_NE(extension, nullptr) << name << " = " << value.substr(0, 80);
    if (extension == nullptr) continue;
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }
  EXPECT_GT(X509_sign(cert, issuer_key != nullptr ? issuer_key : made.key.get(), EVP_sha256()), 0);
  ERR_clear_error();
  return made;
}

}  // namespace mtlsgw::testing
