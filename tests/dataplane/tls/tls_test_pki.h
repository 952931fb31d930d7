#pragma once
// Certificates for the TLS engine's unit tests, made with the OpenSSL API in
// a temporary directory (PEM files, because TlsHostSpec takes paths) and
// removed afterwards.
//
// Server side: one root and one intermediate; hosts api.example.test (ECDSA,
// chain file leaf + intermediate + root), grpc.example.test (RSA-2048, leaf +
// intermediate), admin.example.test (ECDSA), *.wild.example.test (ECDSA),
// fallback.example.test (ECDSA, the default host).
// Client side: the devices CA with a CRL revoking client-revoked; the other CA
// that no host trusts; client certificates good, revoked, expired, other.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/handles.h"

namespace mtlsgw::tls::testing {

enum class Role { ca, server, client };

inline EvpPkeyHandle make_ec_key() { return EvpPkeyHandle(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }
inline EvpPkeyHandle make_rsa_key() {
  return EvpPkeyHandle(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
}

inline bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// issuer == nullptr: self-signed. Validity in seconds relative to now.
inline X509Handle issue(const std::string& cn, Role role, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                        long serial, const std::vector<std::string>& dns = {}, long not_before = -3600,
                        long not_after = 86400L * 30) {
  X509Handle cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mtlsgw tests"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after);
  X509_set_pubkey(cert.get(), key);
  bool ok = add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) ok = ok && add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid");
  switch (role) {
    case Role::ca:
      ok = ok && add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE") &&
           add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case Role::server:
      ok = ok && add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
           add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
           add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
      break;
    case Role::client:
      ok = ok && add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
           add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
           add_extension(cert.get(), signer, NID_ext_key_usage, "clientAuth");
      break;
  }
  if (!dns.empty()) {
    std::string san;
    for (const std::string& d : dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    ok = ok && add_extension(cert.get(), signer, NID_subject_alt_name, san);
  }
  if (!ok || X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

inline bool write_pem(const std::string& path, const std::vector<X509*>& certs) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = true;
  for (X509* c : certs) ok = ok && PEM_write_X509(f, c) == 1;
  return std::fclose(f) == 0 && ok;
}

inline bool write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  return std::fclose(f) == 0 && ok;
}

inline bool write_crl(const std::string& path, X509* issuer, EVP_PKEY* issuer_key, const std::vector<long>& revoked) {
  CHandle<X509_CRL, X509_CRL_free> crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  CHandle<ASN1_TIME, ASN1_TIME_free> now(X509_gmtime_adj(nullptr, -60));
  CHandle<ASN1_TIME, ASN1_TIME_free> next(X509_gmtime_adj(nullptr, 86400L * 30));
  X509_CRL_set1_lastUpdate(crl.get(), now.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (long serial : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    CHandle<ASN1_INTEGER, ASN1_INTEGER_free> number(ASN1_INTEGER_new());
    ASN1_INTEGER_set(number.get(), serial);
    X509_REVOKED_set_serialNumber(entry, number.get());
    X509_REVOKED_set_revocationDate(entry, now.get());
    X509_CRL_add0_revoked(crl.get(), entry);
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), issuer_key, EVP_sha256()) <= 0) return false;
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = PEM_write_X509_CRL(f, crl.get()) == 1;
  return std::fclose(f) == 0 && ok;
}

class TestPki {
 public:
  TestPki() {
    char pattern[] = "/tmp/mtlsgw-tls-test-XXXXXX";
    const char* made = mkdtemp(pattern);
    if (made == nullptr) return;
    dir_ = made;
    ok_ = make();
  }
  ~TestPki() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  bool ok() const { return ok_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  // The file's text; empty when it cannot be read (a test then fails on it).
  std::string read(const std::string& file) const {
    std::string text;
    if (std::FILE* in = std::fopen(path(file).c_str(), "rb")) {
      char chunk[4096];
      for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, in)) > 0;) text.append(chunk, n);
      std::fclose(in);
    }
    return text;
  }

  static constexpr long kRevokedSerial = 4002;

 private:
  bool make() {
    auto server_root_key = make_ec_key();
    auto server_root = issue("Server Root", Role::ca, server_root_key.get(), nullptr, nullptr, 1);
    auto server_int_key = make_ec_key();
    auto server_int = issue("Server Intermediate", Role::ca, server_int_key.get(), server_root.get(),
                            server_root_key.get(), 2);
    if (!server_root || !server_int) return false;
    bool ok = write_pem(path("server-root.pem"), {server_root.get()});

    struct Leaf {
      const char* file;
      const char* name;
      bool rsa;
      bool with_root;
    };
    const Leaf leaves[] = {
        {"api", "api.example.test", false, true},        {"grpc", "grpc.example.test", true, false},
        {"admin", "admin.example.test", false, false},   {"wild", "*.wild.example.test", false, false},
        {"fallback", "fallback.example.test", false, false},
    };
    long serial = 100;
    for (const Leaf& leaf : leaves) {
      auto key = leaf.rsa ? make_rsa_key() : make_ec_key();
      auto cert = issue(leaf.name, Role::server, key.get(), server_int.get(), server_int_key.get(), serial++,
                        {leaf.name});
      if (!key || !cert) return false;
      std::vector<X509*> chain{cert.get(), server_int.get()};
      if (leaf.with_root) chain.push_back(server_root.get());
      ok = ok && write_pem(path(std::string(leaf.file) + ".pem"), chain) &&
           write_key(path(std::string(leaf.file) + ".key"), key.get());
    }

    auto devices_key = make_ec_key();
    auto devices = issue("Devices CA", Role::ca, devices_key.get(), nullptr, nullptr, 3000);
    auto other_key = make_ec_key();
    auto other = issue("Other CA", Role::ca, other_key.get(), nullptr, nullptr, 3001);
    if (!devices || !other) return false;
    ok = ok && write_pem(path("devices-ca.pem"), {devices.get()}) &&
         write_pem(path("other-ca.pem"), {other.get()}) &&
         write_crl(path("devices.crl.pem"), devices.get(), devices_key.get(), {kRevokedSerial}) &&
         write_crl(path("other.crl.pem"), other.get(), other_key.get(), {});

    struct Client {
      const char* file;
      X509* issuer;
      EVP_PKEY* issuer_key;
      long serial;
      long not_after;
    };
    const Client clients[] = {
        {"client-good", devices.get(), devices_key.get(), 4001, 86400L * 30},
        {"client-revoked", devices.get(), devices_key.get(), kRevokedSerial, 86400L * 30},
        {"client-expired", devices.get(), devices_key.get(), 4003, -86400L},
        {"client-other", other.get(), other_key.get(), 4004, 86400L * 30},
    };
    for (const Client& c : clients) {
      auto key = make_ec_key();
      auto cert = issue(std::string(c.file) + ".devices.example.test", Role::client, key.get(), c.issuer,
                        c.issuer_key, c.serial, {}, -86400L * 2, c.not_after);
      if (!key || !cert) return false;
      ok = ok && write_pem(path(std::string(c.file) + ".pem"), {cert.get()}) &&
           write_key(path(std::string(c.file) + ".key"), key.get());
    }
    return ok;
  }

  std::string dir_;
  bool ok_ = false;
};

}  // namespace mtlsgw::tls::testing
