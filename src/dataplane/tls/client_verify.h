#pragma once
// Client-certificate verification against one host's trust on one worker:
// chain building, signatures, validity times, basic constraints, key usage and
// extended key usage (clientAuth), maximum depth and CRL revocation, ending in
// one VerifyReason. Two ways in:
//
// - ClientVerifier::verify on a parsed leaf and the chain the client sent
//   (tests, the control socket's "would this certificate pass" check);
// - handshake_verify_callback, installed with SSL_CTX_set_cert_verify_callback
//   on every host SSL_CTX, which finds the connection's HandshakeVerify
//   through the SSL's ex_data and runs the same verify.
//
// Per handshake, not per packet: OpenSSL allocates inside X509_verify_cert
// whatever we do; this layer adds no allocation of its own on that path and
// leaves the thread's OpenSSL error queue as it found it.
//
// Around X509_verify_cert, in this order: the leaf's SHA-256 (once; the
// handshake keeps it for identity extraction), the operator's revocation
// set on the leaf's fingerprint, the shared verdict cache (a hit skips chain
// verification), and after a full ok verification the chain's revocation
// keys, the revocation set on every certificate of the chain, and the insert
// into the cache. Revocations are looked up on hits too, against the keys
// the entry kept (verdict_cache.h). An operator revocation ends as
// VerifyReason::revoked, alert certificate_revoked, like a CRL's.

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/handles.h"
#include "dataplane/tls/revocation_set.h"
#include "dataplane/tls/trust_store.h"
#include "dataplane/tls/verdict_cache.h"
#include "dataplane/tls/verify_reason.h"

namespace mtlsgw::tls {

struct ClientIdentity;

struct ClientVerdict {
  VerifyReason reason = VerifyReason::no_certificate;
  int x509_error = X509_V_OK;  // OpenSSL's code, for logs (X509_verify_cert_error_string)
  int error_depth = -1;        // where in the chain it failed, 0 = leaf; -1: not in a chain
  int chain_length = 0;        // certificates in the chain OpenSSL built, leaf and root included

  bool ok() const noexcept { return reason == VerifyReason::ok; }
};

// Which reason an X509_V_ERR_* code is. Pure.
VerifyReason reason_for_x509_error(int x509_error);

// The X509_V_ERR_* code to leave in libssl's X509_STORE_CTX when a handshake is
// refused. libssl chooses the alert itself from that code (ssl_x509err2alert
// in statem_lib.c), and a verify callback can steer it only through the code,
// so each reason maps to a code libssl turns into alert_for(reason): for
// example not_yet_valid leaves CERT_HAS_EXPIRED, because libssl would answer
// CERT_NOT_YET_VALID with bad_certificate where RFC 8446 6.2 says
// certificate_expired.
int x509_error_for_alert(VerifyReason reason);

// What a verification consults besides the trust and the certificates.
struct VerifyOptions {
  const RevocationSet* revocations = nullptr;  // null: no operator revocations
  VerdictCache* cache = nullptr;               // null: the chain is verified every time
  int64_t at_epoch = 0;                        // verification time, epoch seconds; 0: now
};

// What a verification learnt besides its verdict.
struct VerifyFacts {
  std::array<uint8_t, kSha256Bytes> leaf_sha256{};  // of the leaf's DER
  bool leaf_sha256_known = false;
  bool cache_hit = false;  // the verdict came from the cache (revocations still checked)
};

class ClientVerifier {
 public:
  // One per worker (it holds a reusable X509_STORE_CTX, a SHA-256 context
  // and that worker's cache counters). Null on OOM.
  static std::unique_ptr<ClientVerifier> create();

  // Verifies leaf with the chain the client sent (untrusted may be null and
  // may contain the leaf, as libssl passes it). facts may be null.
  ClientVerdict verify(const WorkerTrust& trust, X509* leaf, STACK_OF(X509) * untrusted, const VerifyOptions& options,
                       VerifyFacts* facts = nullptr);
  // Without revocations or cache; at_epoch: verification time in seconds
  // since the epoch, 0 is now.
  ClientVerdict verify(const WorkerTrust& trust, X509* leaf, STACK_OF(X509) * untrusted, int64_t at_epoch = 0) {
    return verify(trust, leaf, untrusted, VerifyOptions{nullptr, nullptr, at_epoch});
  }

  // The same on PEM text: the leaf first, then any intermediates. Text that
  // holds no decodable certificate is malformed.
  ClientVerdict verify_pem(const WorkerTrust& trust, std::string_view pem, const VerifyOptions& options);
  ClientVerdict verify_pem(const WorkerTrust& trust, std::string_view pem, int64_t at_epoch = 0) {
    return verify_pem(trust, pem, VerifyOptions{nullptr, nullptr, at_epoch});
  }

  // SHA-256 of a certificate's DER with this worker's context.
  bool fingerprint(X509* cert, RevocationKey* out) { return hasher_->fingerprint(cert, out); }

  // This worker's share of the shared cache's traffic.
  const VerdictCacheCounters& cache_counters() const noexcept { return cache_counters_; }

 private:
  ClientVerifier() = default;
  // After a full ok verification: the chain's keys against the revocations,
  // and the verdict into the cache. The store context still holds the chain.
  // cache_key null: not cached; leaf_fingerprint null: not known yet.
  void settle_chain(const WorkerTrust& trust, const VerifyOptions& options, const VerdictKey* cache_key,
                    const RevocationKey* leaf_fingerprint, int64_t at_epoch, ClientVerdict* verdict);

  X509StoreCtxHandle ctx_;
  std::unique_ptr<CertificateHasher> hasher_;
  VerdictCacheCounters cache_counters_;
};

// What the handshake layer attaches to each SSL before its handshake and reads
// after it. The SNI step points trust at the chosen host's WorkerTrust (null:
// the host trusts no CA, every certificate is unknown_ca) and sets required
// from the host's mtls mode; it must also call SSL_set_verify itself, because
// SSL_set_SSL_CTX does not carry the new context's verify mode over.
//
// revocations and cache are read when the callback runs, so a revocation set
// published between attach and the client's Certificate already applies.
struct HandshakeVerify {
  const WorkerTrust* trust = nullptr;
  ClientVerifier* verifier = nullptr;
  const RevocationSet* revocations = nullptr;  // null: no operator revocations
  VerdictCache* cache = nullptr;               // null: no verdict cache
  bool required = true;  // false: "optional", a failed certificate lets the handshake finish
  bool ran = false;      // the callback ran: the client presented a certificate
  ClientVerdict verdict;  // no_certificate until the callback runs
  bool cache_hit = false;  // the chain verdict came from the cache
  // SHA-256 of the leaf's DER, computed once by the callback, for identity
  // extraction and logs (ClientIdentity::fingerprint_sha256_hex).
  std::array<uint8_t, kSha256Bytes> leaf_sha256{};
  bool leaf_sha256_known = false;
  // Where the caller wants a refused certificate's facts (subject, serial,
  // fingerprint) for its logs: a refused handshake keeps no peer
  // certificate to read them from afterwards. Null: not wanted.
  ClientIdentity* refused_identity = nullptr;
};

// Attach before SSL_do_handshake; the state must outlive the handshake.
bool attach_handshake_verify(SSL* ssl, HandshakeVerify* state);
HandshakeVerify* handshake_verify_of(const SSL* ssl);

// For SSL_CTX_set_cert_verify_callback(ctx, handshake_verify_callback, nullptr).
// Returns 1 to continue the handshake, 0 to end it with the reason's alert.
int handshake_verify_callback(X509_STORE_CTX* store_ctx, void* unused);

}  // namespace mtlsgw::tls
