#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/gateway/tls_gateway_internal.h"
#include "dataplane/tls/client_identity_extract.h"

// The TLS handshake of a client: driving it, and what its end (success or
// refusal) means for counters, identity and the connection.

namespace mtlsgw::gateway {

void TlsGateway::drive_handshake(Session& s) noexcept {
  // Read when the verify callback runs: the set current in this iteration.
  s.verify.revocations = revocations();
  s.verify.cache = verdict_cache_;
  const auto spans = stack_.peek(s.client);
  const tls::TlsSession::Progress p = s.tls.receive(spans, s.client_fin, nullptr, 0);
  stack_.consume(s.client, p.ciphertext_taken);
  if (s.tls.state() == tls::TlsState::failed) {
    handshake_failed(s);
    return;
  }
  if (p.handshake_done) {
    handshake_done(s);
    return;
  }
  // Once the ClientHello named a host, its own handshake timeout applies.
  const uint32_t host = s.tls.host();
  if (host < s.tables->host_count() && s.deadline == Deadline::handshake) {
    const uint64_t at = s.start_us + ms_to_us(s.tables->route(host).handshake_timeout_ms);
    if (at < s.timer.expires_us) set_deadline(s, Deadline::handshake, at);
  }
}

void TlsGateway::handshake_failed(Session& s) noexcept {
  s.phase = Phase::refused;
  counters_.handshakes_failed.add();
  const uint32_t host = s.tls.host();
  s.host = host;
  s.end = ConnectionEnd::handshake_failed;
  if (host >= s.tables->host_count()) {
    // The ClientHello named no host we serve (or came without SNI and no
    // default is configured): on_client_hello refused it.
    if (s.tls.alert_sent() == SSL_AD_UNRECOGNIZED_NAME || s.tls.alert_sent() == SSL_AD_HANDSHAKE_FAILURE) {
      counters_.no_host.add();
      s.end = ConnectionEnd::no_host;
    }
  } else {
    HostCounters& hc = host_counters_[s.tables->counter_slot(host)];
    hc.handshakes_failed.add();
    if (s.verify.ran) {
      s.verdict_known = true;
      hc.verify[static_cast<size_t>(s.verify.verdict.reason)].add();
    } else if (s.tables->mtls(host) == tls::MtlsMode::required && s.tls.client_certificate() == nullptr &&
               ERR_GET_REASON(s.tls.error_code()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      s.verify.verdict.reason = tls::VerifyReason::no_certificate;
      s.verdict_known = true;
      hc.verify[static_cast<size_t>(tls::VerifyReason::no_certificate)].add();
    }
  }
  // The alert is in the send buffer (if it had room): read and drop what
  // else the client sent, so that closing sends a FIN after the alert
  // instead of a RST that could overtake it (RFC 2525 2.17).
  stack_.consume(s.client, stack_.readable(s.client));
  timers_.cancel(s.timer);
  s.deadline = Deadline::none;
  s.client_shut = true;
  stack_.close(s.client);
  set_deadline(s, Deadline::closing, stack_.now_us() + ms_to_us(limits_.closing_grace_ms));
}

void TlsGateway::handshake_done(Session& s) noexcept {
  s.host = s.tls.host();
  if (s.host >= s.tables->host_count()) {  // cannot happen: on_client_hello chose one
    s.end = ConnectionEnd::internal;
    reset_both(s);
    return;
  }
  HostCounters& hc = host_counters_[s.tables->counter_slot(s.host)];
  counters_.handshakes_ok.add();
  hc.handshakes_ok.add();
  const bool resumed = s.tls.resumed();
  if (resumed) counters_.resumed.add();

  // The verdict: this handshake's verification, or for a resumption the one
  // its session kept, or no certificate at all.
  tls::ClientVerdict verdict = s.verify.verdict;
  const bool presented = s.tls.client_cert_presented();
  if (!s.verify.ran) {
    if (!presented) {
      verdict = tls::ClientVerdict{};
    } else {
      const long result = s.tls.verify_result();
      verdict.reason = result == X509_V_OK ? tls::VerifyReason::ok : tls::reason_for_x509_error(static_cast<int>(result));
      verdict.x509_error = static_cast<int>(result);
    }
  }
  const tls::MtlsMode mtls = s.tables->mtls(s.host);
  if (resumed && presented) {
    // Sessions are flushed when revocations change (adopt_policy); this
    // catches one resumed in the same iteration, before the flush.
    const tls::RevocationSet* revoked = revocations();
    if (revoked != nullptr && client_revoked(s, *revoked)) {
      counters_.revoked_refused.add();
      hc.verify[static_cast<size_t>(tls::VerifyReason::revoked)].add();
      s.verify.verdict = tls::ClientVerdict{tls::VerifyReason::revoked, X509_V_ERR_CERT_REVOKED, 0, 0};
      s.verdict_known = true;
      s.phase = Phase::refused;
      end_by_gateway(s, ConnectionEnd::revoked, false);
      return;
    }
  }
  s.verify.verdict = verdict;
  s.verdict_known = mtls != tls::MtlsMode::off;
  if (mtls != tls::MtlsMode::off && !resumed) hc.verify[static_cast<size_t>(verdict.reason)].add();
  if (s.verify.ran && s.verify.cache != nullptr) {
    (s.verify.cache_hit ? counters_.verify_cache_hits : counters_.verify_cache_misses).add();
  }
  if (mtls != tls::MtlsMode::off && !verdict.ok()) hc.passed_unverified.add();
  // Once per handshake; allocates inside OpenSSL's encoders (the strings
  // keep their storage across the slot's connections).
  tls::extract_client_identity(s.tls.ssl(), verdict, &s.identity, s.tables->sha256());
  s.tls.fill_session_facts(s.tables->contexts(), s.identity);
  // The identity is out of the SSL: an offloaded session gives it back now
  // (its facts stay in the session), so an idle connection holds none.
  if (s.tls.offloaded()) {
    counters_.records_offloaded.add();
    return_ssl(s, s.tls.release_ssl());
  }
  if (!admit_connection(s)) return;
  open_upstream(s);
}

}  // namespace mtlsgw::gateway
