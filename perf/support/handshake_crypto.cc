#include "handshake_crypto.h"

#include <openssl/pem.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace mtlsgw::perf {
namespace {

EvpPkeyHandle read_key(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  EvpPkeyHandle key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return key;
}

X509StackHandle read_certs(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509StackHandle certs(sk_X509_new_null());
  while (X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr)) sk_X509_push(certs.get(), cert);
  std::fclose(f);
  ERR_clear_error();  // the end of the file
  if (sk_X509_num(certs.get()) == 0) return nullptr;
  return certs;
}

// RFC 8446 4.4.3: 64 spaces, the context string, a zero byte, the transcript
// hash (SHA-256 for TLS_AES_128_GCM_SHA256, which the gateway picks).
void certificate_verify_content(const char* context, uint8_t (&out)[130]) {
  std::memset(out, 0x20, 64);
  std::memcpy(out + 64, context, 33);
  out[97] = 0;
  for (int i = 0; i < 32; ++i) out[98 + i] = static_cast<uint8_t>(0xa5 ^ i);
}

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

std::unique_ptr<HandshakeCrypto> HandshakeCrypto::load(const std::string& pki_dir, std::string& error) {
  std::unique_ptr<HandshakeCrypto> self(new HandshakeCrypto());
  auto fail = [&](const std::string& what) -> std::unique_ptr<HandshakeCrypto> {
    error = what;
    ERR_clear_error();
    return nullptr;
  };

  self->sha256_.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  self->x25519_keygen_.reset(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
  if (!self->sha256_ || !self->x25519_keygen_ || EVP_PKEY_keygen_init(self->x25519_keygen_.get()) != 1) {
    return fail("OpenSSL has no SHA-256 or X25519");
  }
  EVP_PKEY* share = nullptr;
  if (EVP_PKEY_keygen(self->x25519_keygen_.get(), &share) != 1) return fail("X25519 key generation failed");
  self->client_share_.reset(share);

  self->server_key_ = read_key(pki_dir + "/server-api-ecdsa.key");
  self->client_key_ = read_key(pki_dir + "/client-devices.key");
  if (!self->server_key_ || !self->client_key_) return fail("cannot read server-api-ecdsa.key or client-devices.key");
  if (!EVP_PKEY_is_a(self->server_key_.get(), "EC") || !EVP_PKEY_is_a(self->client_key_.get(), "EC")) {
    return fail("the test PKI's server-api-ecdsa or client-devices key is not ECDSA");
  }
  self->client_chain_ = read_certs(pki_dir + "/client-devices.chain.pem");
  if (!self->client_chain_) return fail("cannot read client-devices.chain.pem");
  self->client_leaf_.reset(X509_dup(sk_X509_value(self->client_chain_.get(), 0)));

  certificate_verify_content("TLS 1.3, server CertificateVerify", self->server_content_);
  certificate_verify_content("TLS 1.3, client CertificateVerify", self->client_content_);
  self->server_sign_.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, self->server_key_.get(), nullptr));
  if (!self->server_sign_ || EVP_PKEY_sign_init(self->server_sign_.get()) != 1) return fail("ECDSA sign init failed");
  // The client's signature, made once with its own key: what we verify.
  EvpPkeyCtxHandle client_sign(EVP_PKEY_CTX_new_from_pkey(nullptr, self->client_key_.get(), nullptr));
  self->client_signature_len_ = sizeof self->client_signature_;
  if (!client_sign || EVP_PKEY_sign_init(client_sign.get()) != 1 ||
      !self->sign_content(self->client_content_, client_sign.get(), self->client_signature_,
                          &self->client_signature_len_)) {
    return fail("cannot sign with client-devices.key");
  }
  self->client_verify_.reset(
      EVP_PKEY_CTX_new_from_pkey(nullptr, X509_get0_pubkey(self->client_leaf_.get()), nullptr));
  if (!self->client_verify_ || EVP_PKEY_verify_init(self->client_verify_.get()) != 1) {
    return fail("ECDSA verify init failed");
  }

  // The devices CA as a host's "cas" entry with its CRL file, and the
  // default max_depth of docs/config.md (4: three intermediates).
  tls::CaSource source;
  std::string why;
  if (!tls::load_ca_source("devices", pki_dir + "/devices-ca.pem", pki_dir + "/devices.crl.pem", &source, &why)) {
    return fail("devices CA: " + why);
  }
  tls::TrustOptions options;
  options.max_intermediates = 3;
  self->trust_store_ = tls::TrustStore::build({source}, options, &why);
  if (!self->trust_store_) return fail("devices CA: " + why);
  self->trust_ = self->trust_store_->instantiate(&why);
  self->verifier_ = tls::ClientVerifier::create();
  if (!self->trust_ || !self->verifier_) return fail("cannot make the worker's trust copy: " + why);

  if (!self->x25519_key_share() || !self->ecdsa_sign()) return fail("X25519 or ECDSA sign failed");
  if (!self->ecdsa_verify()) return fail("the client's CertificateVerify does not verify");
  const tls::ClientVerdict verdict =
      self->verifier_->verify(*self->trust_, self->client_leaf_.get(), self->client_chain_.get());
  if (!verdict.ok()) {
    return fail(std::string("client-devices does not verify against the devices CA: ") +
                X509_verify_cert_error_string(verdict.x509_error));
  }
  self->chain_length_ = verdict.chain_length;
  return self;
}

bool HandshakeCrypto::sign_content(const uint8_t (&content)[130], EVP_PKEY_CTX* ctx, uint8_t* sig,
                                   size_t* sig_len) {
  uint8_t digest[32];
  unsigned digest_len = 0;
  return EVP_Digest(content, sizeof content, digest, &digest_len, sha256_.get(), nullptr) == 1 &&
         EVP_PKEY_sign(ctx, sig, sig_len, digest, digest_len) == 1;
}

bool HandshakeCrypto::x25519_key_share() {
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(x25519_keygen_.get(), &raw) != 1) return false;
  EvpPkeyHandle ours(raw);
  // Our public half goes into the ServerHello.
  uint8_t public_key[32];
  size_t public_len = sizeof public_key;
  if (EVP_PKEY_get_raw_public_key(ours.get(), public_key, &public_len) != 1) return false;
  EvpPkeyCtxHandle derive(EVP_PKEY_CTX_new_from_pkey(nullptr, ours.get(), nullptr));
  uint8_t secret[32];
  size_t secret_len = sizeof secret;
  return derive && EVP_PKEY_derive_init(derive.get()) == 1 &&
         EVP_PKEY_derive_set_peer(derive.get(), client_share_.get()) == 1 &&
         EVP_PKEY_derive(derive.get(), secret, &secret_len) == 1 && secret_len == 32;
}

bool HandshakeCrypto::ecdsa_sign() {
  uint8_t signature[80];
  size_t len = sizeof signature;
  return sign_content(server_content_, server_sign_.get(), signature, &len);
}

bool HandshakeCrypto::ecdsa_verify() {
  uint8_t digest[32];
  unsigned digest_len = 0;
  return EVP_Digest(client_content_, sizeof client_content_, digest, &digest_len, sha256_.get(), nullptr) == 1 &&
         EVP_PKEY_verify(client_verify_.get(), client_signature_, client_signature_len_, digest, digest_len) == 1;
}

bool HandshakeCrypto::chain_verify() {
  return verifier_->verify(*trust_, client_leaf_.get(), client_chain_.get()).ok();
}

CryptoCeiling HandshakeCrypto::measure(int rounds, int per_round) {
  auto median_us = [&](bool (HandshakeCrypto::*op)()) -> double {
    std::vector<double> per_op;
    for (int r = 0; r < rounds; ++r) {
      const uint64_t start = thread_cpu_ns();
      for (int i = 0; i < per_round; ++i) {
        if (!(this->*op)()) return 0;
      }
      per_op.push_back(static_cast<double>(thread_cpu_ns() - start) / 1000.0 / per_round);
    }
    std::sort(per_op.begin(), per_op.end());
    return per_op[per_op.size() / 2];
  };
  CryptoCeiling c;
  c.x25519_us = median_us(&HandshakeCrypto::x25519_key_share);
  c.sign_us = median_us(&HandshakeCrypto::ecdsa_sign);
  c.verify_us = median_us(&HandshakeCrypto::ecdsa_verify);
  c.chain_us = median_us(&HandshakeCrypto::chain_verify);
  return c;
}

}  // namespace mtlsgw::perf
