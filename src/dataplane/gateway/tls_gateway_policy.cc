// The operator's policy on one worker's connections (policy.h): what a new
// revocation set means for sessions that can resume and for connections that
// are open.

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/gateway/tls_gateway_internal.h"

namespace mtlsgw::gateway {

const tls::RevocationSet* TlsGateway::revocations() const noexcept {
  return policy_ != nullptr ? policy_->read()->revocations.get() : nullptr;
}

// Runs from poll() the first time this worker sees a policy, before its
// quiescent report lets the commit answer: so everything here has happened
// on every worker by the time `revoke add` returns.
void TlsGateway::adopt_policy(const Policy& policy) noexcept {
  policy_seen_ = policy.generation;
  counters_.policies_adopted.add();
  const tls::RevocationSet* revoked = policy.revocations.get();
  const uint64_t generation = revoked != nullptr ? revoked->generation() : 0;
  if (generation != revocations_seen_) {
    revocations_seen_ = generation;
    // A resumption checks no certificate (RFC 8446 2.2: the PSK stands for
    // the original handshake), so a revoked client could resume a session
    // made before its revocation. Every resumable session of this worker is
    // dropped instead: the next connection of each client makes a full
    // handshake, which meets the new set. Revocation changes are rare; one
    // full handshake per returning client is their price. t = 0 flushes all.
    SSL_CTX_flush_sessions(tables_->contexts().front(), 0);
    for (GatewayTables* t = superseded_; t != nullptr; t = t->retired_next) {
      SSL_CTX_flush_sessions(t->contexts().front(), 0);
    }
  }
  if (policy.close_revoked && revoked != nullptr) close_revoked_sessions(*revoked);
}

// The leaf by fingerprint and by issuer and serial; its issuer is looked up
// in the host's trust store, as a handshake's chain building would find it.
// For resumed sessions and the --close sweep, not for full handshakes (the
// verify callback checks the whole chain there).
bool TlsGateway::client_revoked(const Session& s, const tls::RevocationSet& revocations) noexcept {
  X509* leaf = s.tls.client_certificate();
  if (leaf == nullptr) return false;
  if (!hasher_) hasher_ = tls::CertificateHasher::create();
  if (!hasher_) return false;
  tls::RevocationKey key;
  if (hasher_->fingerprint(leaf, &key) && revocations.revoked(key)) return true;
  const tls::WorkerTrust* trust = s.host < s.tables->host_count() ? s.tables->trust(s.host) : nullptr;
  if (trust == nullptr) return false;
  X509StoreCtxHandle ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), trust->store(), leaf, nullptr) != 1) return false;
  X509* issuer = nullptr;
  const bool found = X509_STORE_CTX_get1_issuer(&issuer, ctx.get(), leaf) == 1 && issuer != nullptr;
  const bool revoked = found && hasher_->issuer_serial_of(leaf, issuer, &key) && revocations.revoked(key);
  X509_free(issuer);
  return revoked;
}

// `revoke add --close`: connections already past their handshake with a
// certificate the new set revokes are ended as an idle timeout ends them
// (close_notify and FIN both ways), before any more of their bytes move.
void TlsGateway::close_revoked_sessions(const tls::RevocationSet& revocations) noexcept {
  for (uint32_t i = 0; i < limits_.max_sessions; ++i) {
    Session& s = sessions_[i];
    if ((s.phase != Phase::forwarding && s.phase != Phase::connecting) || s.client_gone || s.closing_client) continue;
    if (!client_revoked(s, revocations)) continue;
    counters_.revoked_closed.add();
    s.end = ConnectionEnd::revoked;
    shut_upstream(s);
    close_client(s);
    if (!s.client_shut) set_deadline(s, Deadline::closing, stack_.now_us() + ms_to_us(limits_.closing_grace_ms));
  }
}

}  // namespace mtlsgw::gateway
