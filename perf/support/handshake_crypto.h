#pragma once
// The public-key operations a TLS 1.3 mTLS server performs per handshake,
// with the test PKI's keys, each alone and without libssl around them: the
// crypto ceiling of issue 5 (docs/benchmarks.md). One full handshake on the
// server (host api.example.test, client client-devices) is
//   - an X25519 key share: generate our key pair, derive with the client's
//     share (RFC 8446 4.2.8, 7.4.2);
//   - one ECDSA P-256 signature: our CertificateVerify (RFC 8446 4.4.3), over
//     SHA-256 of its 130-byte content;
//   - one ECDSA P-256 verification: the client's CertificateVerify;
//   - one chain verification of the client's leaf (and the intermediate it
//     sends) against the devices CA with its CRLs, by X509_verify_cert as the
//     gateway configures it (TrustStore + ClientVerifier: CRL check at every
//     level, so two certificate and two CRL signatures are verified).
// A resumption (psk_dhe_ke, RFC 8446 4.2.9) is the key share alone.
// Symmetric work (HKDF, Finished MACs, record protection) is left out.

#include <cstdint>
#include <memory>
#include <string>

#include "common/handles.h"
#include "dataplane/tls/client_verify.h"
#include "dataplane/tls/trust_store.h"

namespace mtlsgw::perf {

// Microseconds of CPU per operation (CLOCK_THREAD_CPUTIME_ID).
struct CryptoCeiling {
  double x25519_us = 0;
  double sign_us = 0;
  double verify_us = 0;
  double chain_us = 0;
  double full_us() const { return x25519_us + sign_us + verify_us + chain_us; }
  double resumed_us() const { return x25519_us; }
};

class HandshakeCrypto {
 public:
  // Reads the keys and certificates from the test PKI and checks every
  // operation once (the signature verifies, the chain is ok). Null with
  // `error` saying what failed.
  static std::unique_ptr<HandshakeCrypto> load(const std::string& pki_dir, std::string& error);

  // Each returns false when OpenSSL fails (never expected after load()).
  bool x25519_key_share();
  bool ecdsa_sign();
  bool ecdsa_verify();
  bool chain_verify();
  bool full_handshake() { return x25519_key_share() && ecdsa_sign() && ecdsa_verify() && chain_verify(); }
  bool resumed_handshake() { return x25519_key_share(); }

  // Each primitive timed in `rounds` rounds of `per_round` operations; the
  // median round counts (the machine is shared: rounds that lost the CPU to
  // another process are the slow ones). Zeros when an operation fails.
  CryptoCeiling measure(int rounds, int per_round);

  // Chain length the verifier built (leaf + intermediate + root: 3).
  int chain_length() const { return chain_length_; }

 private:
  HandshakeCrypto() = default;
  bool sign_content(const uint8_t (&content)[130], EVP_PKEY_CTX* ctx, uint8_t* sig, size_t* sig_len);

  EvpMdHandle sha256_;
  EvpPkeyCtxHandle x25519_keygen_;
  EvpPkeyHandle client_share_;  // the client's X25519 key (its public half is what we use)
  EvpPkeyHandle server_key_;
  EvpPkeyHandle client_key_;
  EvpPkeyCtxHandle server_sign_;
  EvpPkeyCtxHandle client_verify_;  // on the public key of the client's certificate
  uint8_t server_content_[130];
  uint8_t client_content_[130];
  uint8_t client_signature_[80];
  size_t client_signature_len_ = 0;

  X509Handle client_leaf_;
  X509StackHandle client_chain_;  // what the client sends: leaf + intermediate
  std::unique_ptr<const tls::TrustStore> trust_store_;
  std::unique_ptr<tls::WorkerTrust> trust_;
  std::unique_ptr<tls::ClientVerifier> verifier_;
  int chain_length_ = 0;
};

}  // namespace mtlsgw::perf
