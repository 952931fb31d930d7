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
  tls::RevocationKey key;
  if (hasher_->fingerprint(leaf, &key) && revocations.revoked(key)) return true;
  const tls::WorkerTrust* trust = s.host < s.tables->host_count() ? s.tables->trust(s.host) : nullptr;
  if (trust == nullptr) return false;
  X509_STORE_CTX* ctx = issuer_lookup_.get();
  if (X509_STORE_CTX_init(ctx, trust->store(), leaf, nullptr) != 1) return false;
  X509* issuer = nullptr;
  const bool found = X509_STORE_CTX_get1_issuer(&issuer, ctx, leaf) == 1 && issuer != nullptr;
  const bool revoked = found && hasher_->issuer_serial_of(leaf, issuer, &key) && revocations.revoked(key);
  X509_free(issuer);
  X509_STORE_CTX_cleanup(ctx);
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
    end_by_gateway(s, ConnectionEnd::revoked, true);
  }
}

}  // namespace mtlsgw::gateway

namespace mtlsgw::gateway {

// ---- Rules (docs/rules.md) ----

void TlsGateway::fill_rule_input(const Session& s, rules::RuleInput& in) noexcept {
  const tls::ClientIdentity& id = s.identity;
  in.tls_sni = id.sni;
  in.tls_version = id.tls_version;
  in.tls_alpn = id.alpn;
  in.tls_cipher = id.cipher;
  in.tls_host = s.host < s.tables->host_count() ? std::string_view(s.tables->host_name(s.host)) : std::string_view();
  in.ip_src = s.tuple.remote_ip;
  in.cert_presented = id.presented;
  in.cert_verified = id.verified;
  in.cert_revoked = s.verify.verdict.reason == tls::VerifyReason::revoked;
  in.cert_subject_dn = id.subject_dn;
  in.cert_issuer_dn = id.issuer_dn;
  in.cert_common_name = id.common_name;
  in.cert_serial = id.serial_hex;
  in.cert_fingerprint_sha256 = id.fingerprint_sha256_hex;
  in.cert_ski = id.ski_hex;
  in.cert_issuer_ski = id.issuer_ski_hex;
  const size_t dns = std::min(id.san_dns.size(), san_dns_view_.size());
  for (size_t i = 0; i < dns; ++i) san_dns_view_[i] = id.san_dns[i];
  in.cert_san_dns = std::span<const std::string_view>(san_dns_view_.data(), dns);
  const size_t uri = std::min(id.san_uri.size(), san_uri_view_.size());
  for (size_t i = 0; i < uri; ++i) san_uri_view_[i] = id.san_uri[i];
  in.cert_san_uri = std::span<const std::string_view>(san_uri_view_.data(), uri);
  in.cert_not_before = id.not_before_epoch;
  in.cert_not_after = id.not_after_epoch;
  in.http_present = false;
}

void TlsGateway::set_rule_slots(std::shared_ptr<const HostSlots> slots) noexcept {
  rule_names_ = std::move(slots);
  rule_slot_count_ = rule_names_ ? rule_names_->capacity() : 0;
  rule_hits_ = rule_slot_count_ != 0 ? std::make_unique<Counter[]>(rule_slot_count_) : nullptr;
}

void TlsGateway::count_rule_verdict(const Policy& policy, const rules::Verdict& verdict) noexcept {
  auto hit = [&](uint32_t index) {
    if (index < policy.rule_slots.size() && policy.rule_slots[index] < rule_slot_count_) {
      rule_hits_[policy.rule_slots[index]].add();
    }
  };
  if (!verdict.logged.empty()) {
    counters_.rules_logged.add(verdict.logged.count());
    for (uint32_t i = verdict.logged.next(0); i != rules::kNoRule; i = verdict.logged.next(i + 1)) hit(i);
  }
  if (verdict.decided()) hit(verdict.rule_index);
  if (verdict.decision == rules::Decision::allow) counters_.rules_allowed.add();
}

// After the handshake, once: the rules on connection fields, in table order
// up to the first rule that reads HTTP fields (the request phase goes on
// from there). Hosts without an HTTP view (forward tcp, proxy_v2) have no
// request phase: every rule runs now, HTTP fields absent. A block ends the
// connection before any byte reaches the origin: close_notify and FIN (an
// alert cannot follow a finished handshake in OpenSSL 3.0's API).
bool TlsGateway::admit_connection(Session& s) noexcept {
  s.rules_resume = 0;
  s.rules_generation = 0;
  if (policy_ == nullptr) return true;
  const Policy* policy = policy_->read();
  const rules::RuleTable* table = policy->rules.get();
  if (table == nullptr || table->empty()) return true;
  rules::RuleInput input;
  fill_rule_input(s, input);
  const bool http = s.tables->route(s.host).forward == ForwardMode::http;
  const rules::Verdict verdict =
      http ? table->evaluate_connection(input, *rule_scratch_) : table->evaluate_all(input, *rule_scratch_);
  count_rule_verdict(*policy, verdict);
  s.rules_generation = policy->generation;
  s.rules_resume = verdict.decided() ? static_cast<uint32_t>(table->size()) : verdict.resume_index;
  if (verdict.decision != rules::Decision::block) return true;
  counters_.rules_blocked_connections.add();
  s.phase = Phase::refused;
  end_by_gateway(s, ConnectionEnd::blocked, false);
  return false;
}

// Per request of an `http` host: the rules from where the connection phase
// stopped, with the request's fields. A policy published since the
// connection phase runs whole (its table is another one).
bool TlsGateway::admit_request(void* context, const forward::http::RequestHead& head) noexcept {
  Session& s = *static_cast<Session*>(context);
  TlsGateway& self = *s.owner;
  if (self.policy_ == nullptr) return true;
  const Policy* policy = self.policy_->read();
  const rules::RuleTable* table = policy->rules.get();
  if (table == nullptr || table->empty()) return true;
  rules::RuleInput input;
  self.fill_rule_input(s, input);
  input.http_present = true;
  input.http_host = head.summary.host;
  input.http_method = head.method;
  input.http_uri = head.target;
  const size_t query = head.target.find('?');
  input.http_uri_path = query == std::string_view::npos ? head.target : head.target.substr(0, query);
  const rules::Verdict verdict = policy->generation == s.rules_generation
                                     ? table->evaluate_request(input, *self.rule_scratch_, s.rules_resume)
                                     : table->evaluate_all(input, *self.rule_scratch_);
  self.count_rule_verdict(*policy, verdict);
  if (verdict.decision != rules::Decision::block) return true;
  self.counters_.rules_blocked_requests.add();
  return false;
}

}  // namespace mtlsgw::gateway
