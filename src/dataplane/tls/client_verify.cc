#include "dataplane/tls/client_verify.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <optional>
#include <vector>

#include "dataplane/tls/x509_text.h"

namespace mtlsgw::tls {
namespace {

// A source without a CRL file is not checked for revocation, but the store's
// CRL flags apply to every chain once any source has one. So a missing CRL is
// forgiven exactly when the chain ends in a root of such a source; any other
// error stands. Runs inside X509_verify_cert, after the chain is built.
int forgive_unchecked_revocation(int ok, X509_STORE_CTX* ctx) {
  if (ok == 1) return 1;
  if (X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNABLE_TO_GET_CRL) return 0;
  const auto* trust = static_cast<const WorkerTrust*>(X509_STORE_CTX_get_app_data(ctx));
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const int length = chain != nullptr ? sk_X509_num(chain) : 0;
  if (trust == nullptr || length == 0 || !trust->revocation_exempt(sk_X509_value(chain, length - 1))) {
    return 0;
  }
  X509_STORE_CTX_set_error(ctx, X509_V_OK);
  return 1;
}

int ssl_ex_index() {
  // Registered once per process; the first call takes OpenSSL's ex_data lock
  // (a start-up cost: the handshake layer attaches before any traffic).
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

VerifyReason reason_for_x509_error(int x509_error) {
  switch (x509_error) {
    case X509_V_OK:
      return VerifyReason::ok;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_PATH_LOOP:
      return VerifyReason::unknown_ca;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED:
      return VerifyReason::chain_too_deep;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return VerifyReason::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return VerifyReason::not_yet_valid;
    case X509_V_ERR_CERT_REVOKED:
      return VerifyReason::revoked;
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
      return VerifyReason::wrong_usage;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_NO_ISSUER_PUBLIC_KEY:
      return VerifyReason::bad_signature;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
    case X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH:
    case X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY:
    case X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA:
    case X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN:
    case X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA:
    case X509_V_ERR_ISSUER_NAME_EMPTY:
    case X509_V_ERR_SUBJECT_NAME_EMPTY:
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
    case X509_V_ERR_EMPTY_SUBJECT_ALT_NAME:
    case X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL:
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
    case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
    case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
      return VerifyReason::malformed;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
      return VerifyReason::revocation_unknown;
    case X509_V_ERR_UNSPECIFIED:
    case X509_V_ERR_OUT_OF_MEM:
    case X509_V_ERR_INVALID_CALL:
    case X509_V_ERR_STORE_LOOKUP:
      return VerifyReason::internal_error;
    default:
      return VerifyReason::unacceptable;
  }
}

int x509_error_for_alert(VerifyReason reason) {
  switch (reason) {
    case VerifyReason::ok:
      return X509_V_OK;
    case VerifyReason::no_certificate:
      return X509_V_ERR_APPLICATION_VERIFICATION;  // handshake_failure
    case VerifyReason::unknown_ca:
      return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
    case VerifyReason::expired:
    case VerifyReason::not_yet_valid:
      return X509_V_ERR_CERT_HAS_EXPIRED;
    case VerifyReason::revoked:
      return X509_V_ERR_CERT_REVOKED;
    case VerifyReason::wrong_usage:
      return X509_V_ERR_INVALID_PURPOSE;
    case VerifyReason::chain_too_deep:
      return X509_V_ERR_CERT_CHAIN_TOO_LONG;
    case VerifyReason::bad_signature:
      // Not CERT_SIGNATURE_FAILURE: libssl answers that with decrypt_error.
      return X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE;
    case VerifyReason::malformed:
    case VerifyReason::unacceptable:
      return X509_V_ERR_CERT_REJECTED;
    case VerifyReason::revocation_unknown:
      // Absent from libssl's table, so it falls to certificate_unknown
      // (UNABLE_TO_GET_CRL would say unknown_ca).
      return X509_V_ERR_CRL_PATH_VALIDATION_ERROR;
    case VerifyReason::internal_error:
      return X509_V_ERR_UNSPECIFIED;
  }
  return X509_V_ERR_UNSPECIFIED;
}

std::unique_ptr<ClientVerifier> ClientVerifier::create() {
  std::unique_ptr<ClientVerifier> verifier(new ClientVerifier);
  verifier->ctx_.reset(X509_STORE_CTX_new());
  verifier->hasher_ = CertificateHasher::create();
  if (verifier->ctx_ == nullptr || verifier->hasher_ == nullptr) return nullptr;
  return verifier;
}

ClientVerdict ClientVerifier::verify(const WorkerTrust& trust, X509* leaf, STACK_OF(X509) * untrusted,
                                     const VerifyOptions& options, VerifyFacts* facts) {
  VerifyFacts discard;
  if (facts == nullptr) facts = &discard;
  *facts = VerifyFacts{};
  ClientVerdict verdict;
  if (leaf == nullptr) return verdict;  // no_certificate
  OpenSslErrorScope errors;

  RevocationKey leaf_fingerprint;
  facts->leaf_sha256_known = hasher_->fingerprint(leaf, &leaf_fingerprint);
  if (facts->leaf_sha256_known) facts->leaf_sha256 = leaf_fingerprint.bytes;
  if (options.revocations != nullptr) {
    // Unencodable means out of memory here (libssl decoded it); without the
    // key nothing says the leaf is not revoked.
    if (!facts->leaf_sha256_known) {
      verdict.reason = VerifyReason::internal_error;
      verdict.x509_error = X509_V_ERR_OUT_OF_MEM;
      return verdict;
    }
    if (options.revocations->revoked(leaf_fingerprint)) {
      verdict.reason = VerifyReason::revoked;
      verdict.x509_error = X509_V_ERR_CERT_REVOKED;
      verdict.error_depth = 0;
      return verdict;
    }
  }

  // One time for the cache window and for OpenSSL's checks.
  const int64_t at = options.at_epoch != 0 ? options.at_epoch : static_cast<int64_t>(time(nullptr));
  const bool use_cache = options.cache != nullptr && facts->leaf_sha256_known && trust.generation() != 0;
  VerdictKey key;
  if (use_cache) {
    key.leaf_sha256 = leaf_fingerprint.bytes;
    key.trust_generation = trust.generation();
    CachedVerdict cached;
    if (options.cache->lookup(key, at, &cached, cache_counters_)) {
      facts->cache_hit = true;
      verdict.reason = VerifyReason::ok;
      verdict.x509_error = X509_V_OK;
      verdict.chain_length = static_cast<int>(cached.chain_length);
      if (options.revocations != nullptr) {
        for (uint32_t depth = 0; depth < cached.chain_length; ++depth) {
          if (!options.revocations->revoked(cached.chain[depth])) continue;
          verdict.reason = VerifyReason::revoked;
          verdict.x509_error = X509_V_ERR_CERT_REVOKED;
          verdict.error_depth = static_cast<int>(depth);
          break;
        }
      }
      return verdict;
    }
  }

  X509_STORE_CTX* ctx = ctx_.get();
  if (X509_STORE_CTX_init(ctx, trust.store(), leaf, untrusted) != 1) {
    verdict.reason = VerifyReason::internal_error;
    verdict.x509_error = X509_V_ERR_OUT_OF_MEM;
    return verdict;
  }
  X509_STORE_CTX_set_app_data(ctx, const_cast<WorkerTrust*>(&trust));
  X509_STORE_CTX_set_verify_cb(ctx, forgive_unchecked_revocation);
  X509_STORE_CTX_set_time(ctx, 0, static_cast<time_t>(at));

  const int result = X509_verify_cert(ctx);
  verdict.x509_error = X509_STORE_CTX_get_error(ctx);
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  verdict.chain_length = chain != nullptr ? sk_X509_num(chain) : 0;
  if (result == 1) {
    // RFC 8446 4.4.2.2 and RFC 5280 4.2.1.3: a key that signs the
    // CertificateVerify needs digitalSignature when keyUsage is present.
    // OpenSSL's SSL-client purpose also accepts keyAgreement alone, which
    // cannot sign; X509_get_key_usage is all ones without the extension.
    if ((X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
      verdict.reason = VerifyReason::wrong_usage;
      verdict.x509_error = X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE;
      verdict.error_depth = 0;
    } else {
      verdict.reason = VerifyReason::ok;
      verdict.x509_error = X509_V_OK;
      settle_chain(trust, options, use_cache ? &key : nullptr, facts->leaf_sha256_known ? &leaf_fingerprint : nullptr,
                   at, &verdict);
    }
  } else {
    // A negative result with no error code is a misuse or an allocation
    // failure inside OpenSSL, never the certificate's fault.
    if (verdict.x509_error == X509_V_OK) verdict.x509_error = X509_V_ERR_UNSPECIFIED;
    verdict.reason = reason_for_x509_error(verdict.x509_error);
    verdict.error_depth = X509_STORE_CTX_get_error_depth(ctx);
  }
  X509_STORE_CTX_cleanup(ctx);
  return verdict;
}

void ClientVerifier::settle_chain(const WorkerTrust& trust, const VerifyOptions& options, const VerdictKey* cache_key,
                                  const RevocationKey* leaf_fingerprint, int64_t at_epoch, ClientVerdict* verdict) {
  if (options.revocations == nullptr && cache_key == nullptr) return;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx_.get());
  const int length = chain != nullptr ? sk_X509_num(chain) : 0;
  CachedVerdict cached;
  cached.valid_from = at_epoch;
  cached.expires_at = trust.earliest_crl_next_update() != 0 ? trust.earliest_crl_next_update()
                                                            : std::numeric_limits<int64_t>::max();
  cached.chain_length = static_cast<uint32_t>(length);
  bool cacheable = cache_key != nullptr && length > 0 && static_cast<std::size_t>(length) <= kMaxCachedChain;
  for (int depth = 0; depth < length; ++depth) {
    X509* cert = sk_X509_value(chain, depth);
    // The chain proves who signed each certificate; the last one is the
    // trust anchor, its own issuer.
    X509* issuer = sk_X509_value(chain, std::min(depth + 1, length - 1));
    RevocationKeys keys;
    bool keyed;
    if (depth == 0 && leaf_fingerprint != nullptr) {
      keys.fingerprint = *leaf_fingerprint;
      keyed = hasher_->issuer_serial_of(cert, issuer, &keys.issuer_serial);
    } else {
      keyed = hasher_->keys_of(cert, issuer, &keys);
    }
    if (!keyed) {
      if (options.revocations != nullptr) {
        verdict->reason = VerifyReason::internal_error;
        verdict->x509_error = X509_V_ERR_OUT_OF_MEM;
        verdict->error_depth = depth;
      }
      return;
    }
    if (options.revocations != nullptr && verdict->ok() && options.revocations->revoked(keys)) {
      verdict->reason = VerifyReason::revoked;
      verdict->x509_error = X509_V_ERR_CERT_REVOKED;
      verdict->error_depth = depth;
    }
    if (!cacheable) continue;
    cached.chain[static_cast<std::size_t>(depth)] = keys;
    const std::optional<int64_t> not_after = epoch_of(X509_get0_notAfter(cert));
    if (!not_after.has_value()) {
      cacheable = false;
      continue;
    }
    cached.expires_at = std::min(cached.expires_at, *not_after);
  }
  // The chain's verdict is ok even when the operator revoked one of its
  // certificates: the revocation is checked on every hit, and lifting it
  // lets the entry serve again.
  if (cacheable) options.cache->insert(*cache_key, cached, at_epoch, cache_counters_);
}

ClientVerdict ClientVerifier::verify_pem(const WorkerTrust& trust, std::string_view pem, const VerifyOptions& options) {
  ClientVerdict malformed;
  malformed.reason = VerifyReason::malformed;
  malformed.error_depth = 0;
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509StackHandle chain(sk_X509_new_null());
  if (bio == nullptr || chain == nullptr) {
    malformed.reason = VerifyReason::internal_error;
    return malformed;
  }
  OpenSslErrorScope errors;
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) {
      // The end of the text shows up as PEM_R_NO_START_LINE.
      const unsigned long code = ERR_peek_last_error();
      const bool end = ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
      if (!end || sk_X509_num(chain.get()) == 0) return malformed;
      break;
    }
    if (sk_X509_push(chain.get(), cert) <= 0) {
      X509_free(cert);
      malformed.reason = VerifyReason::internal_error;
      return malformed;
    }
  }
  return verify(trust, sk_X509_value(chain.get(), 0), chain.get(), options);
}

bool attach_handshake_verify(SSL* ssl, HandshakeVerify* state) {
  const int index = ssl_ex_index();
  return index >= 0 && SSL_set_ex_data(ssl, index, state) == 1;
}

HandshakeVerify* handshake_verify_of(const SSL* ssl) {
  const int index = ssl_ex_index();
  return index >= 0 ? static_cast<HandshakeVerify*>(SSL_get_ex_data(ssl, index)) : nullptr;
}

int handshake_verify_callback(X509_STORE_CTX* store_ctx, void* /*unused*/) {
  const auto* ssl =
      static_cast<const SSL*>(X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  HandshakeVerify* state = ssl != nullptr ? handshake_verify_of(ssl) : nullptr;
  if (state == nullptr || state->verifier == nullptr) {
    // Nothing attached: a wiring fault in the gateway. Refuse rather than
    // let an unverified client through.
    if (state != nullptr) {
      state->ran = true;
      state->verdict = ClientVerdict{VerifyReason::internal_error, X509_V_ERR_UNSPECIFIED, -1, 0};
    }
    X509_STORE_CTX_set_error(store_ctx, x509_error_for_alert(VerifyReason::internal_error));
    return 0;
  }
  state->ran = true;
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  if (state->trust == nullptr) {
    state->verdict = ClientVerdict{VerifyReason::unknown_ca, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0, 0};
    RevocationKey fingerprint;
    state->leaf_sha256_known = leaf != nullptr && state->verifier->fingerprint(leaf, &fingerprint);
    state->leaf_sha256 = fingerprint.bytes;
    state->cache_hit = false;
  } else {
    // Only the chain verification is ours (SSL_CTX_set_cert_verify_callback):
    // libssl checks the CertificateVerify signature after this returns, on a
    // cache hit as on a miss.
    VerifyFacts facts;
    state->verdict = state->verifier->verify(*state->trust, leaf, X509_STORE_CTX_get0_untrusted(store_ctx),
                                             VerifyOptions{state->revocations, state->cache, 0}, &facts);
    state->leaf_sha256 = facts.leaf_sha256;
    state->leaf_sha256_known = facts.leaf_sha256_known;
    state->cache_hit = facts.cache_hit;
  }
  X509_STORE_CTX_set_error(store_ctx, x509_error_for_alert(state->verdict.reason));
  if (state->verdict.ok()) return 1;
  return state->required ? 0 : 1;
}

}  // namespace mtlsgw::tls
