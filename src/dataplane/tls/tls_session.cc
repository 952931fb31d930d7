#include "dataplane/tls/tls_session.h"

#include <openssl/err.h>

#include <algorithm>

#include "dataplane/tls/client_identity.h"

namespace mtlsgw::tls {

const char* name_of(TlsState state) noexcept {
  switch (state) {
    case TlsState::idle:
      return "idle";
    case TlsState::handshaking:
      return "handshaking";
    case TlsState::established:
      return "established";
    case TlsState::closed:
      return "closed";
    case TlsState::failed:
      return "failed";
  }
  return "?";
}

const char* name_of(TlsFailure failure) noexcept {
  switch (failure) {
    case TlsFailure::none:
      return "none";
    case TlsFailure::local_alert:
      return "local_alert";
    case TlsFailure::peer_alert:
      return "peer_alert";
    case TlsFailure::truncated:
      return "truncated";
    case TlsFailure::internal:
      return "internal";
  }
  return "?";
}

bool TlsSession::start(SSL* ssl, const CiphertextSink& sink, const RecordOffload* offload) noexcept {
  ssl_ = ssl;
  offload_ = offload != nullptr && offload->mgr != nullptr && offload->scratch != nullptr ? offload : nullptr;
  io_ = TransportIo{};
  io_.sink = sink;
  notes_.clear();
  state_ = TlsState::handshaking;
  failure_ = TlsFailure::none;
  error_code_ = 0;
  owed_record_ = 0;
  blocked_on_sink_ = peer_closed_ = close_requested_ = close_sent_ = tickets_trimmed_ = false;
  rx_delivered_ = owed_sent_ = 0;
  tail_len_ = 0;
  tail_closes_ = key_update_owed_ = rx_more_ = false;
  if (ssl == nullptr) {
    state_ = TlsState::failed;
    failure_ = TlsFailure::internal;
    return false;
  }
  // Before SNI moves the SSL to a host's context: the front one keeps the
  // session cache.
  session_cache_ = SSL_get_SSL_CTX(ssl);
  bind_transport(SSL_get_rbio(ssl), &io_);
  TlsContexts::attach(ssl, &notes_);
  // A resumption on this SSL's previous connection turned tickets off.
  SSL_set_num_tickets(ssl, SSL_CTX_get_num_tickets(SSL_get_SSL_CTX(ssl)));
  if (offload_ != nullptr) {
    // No read ahead until the handshake is over: OpenSSL then reads each
    // record's header and body and nothing past the client's Finished, so
    // the records behind it stay in TCP for ours (record_protection.h).
    notes_.capture_secrets = true;
    SSL_set_msg_callback(ssl, TlsContexts::count_tickets);
    SSL_set_read_ahead(ssl, 0);
  } else {
    SSL_set_msg_callback(ssl, nullptr);
    SSL_set_read_ahead(ssl, 1);
  }
  // SSL_clear keeps the last verdict, which a connection without a client
  // certificate would otherwise report as its own.
  SSL_set_verify_result(ssl, X509_V_OK);
  return true;
}

SSL* TlsSession::finish() noexcept {
  SSL* ssl = ssl_;
  if (ssl != nullptr) {
    bind_transport(SSL_get_rbio(ssl), nullptr);
    TlsContexts::attach(ssl, nullptr);
    // OpenSSL drops a session from the cache when the SSL is cleared or
    // freed without our close_notify sent, TLS 1.0's rule. Since TLS 1.1 an
    // unclean close no longer forbids resumption (RFC 5246 7.2.1), and most
    // HTTP clients end with a FIN alone: a session whose handshake finished
    // and that saw no error stays resumable. Fatal alerts either way have
    // removed it already.
    if (state_ == TlsState::established || state_ == TlsState::closed) {
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
  }
  ssl_ = nullptr;
  state_ = TlsState::idle;
  if (offloaded_) {
    rx_.clear();
    tx_.clear();
    X509_free(facts_.client_certificate);
    SSL_SESSION_free(facts_.session);
    facts_ = OffloadedFacts{};
    offloaded_ = false;
  }
  notes_.wipe_secrets();
  rx_delivered_ = owed_sent_ = 0;
  tail_len_ = 0;
  tail_closes_ = key_update_owed_ = rx_more_ = false;
  return ssl;
}

SSL* TlsSession::release_ssl() noexcept {
  if (!offloaded_ || ssl_ == nullptr) return nullptr;
  SSL* ssl = ssl_;
  bind_transport(SSL_get_rbio(ssl), nullptr);
  TlsContexts::attach(ssl, nullptr);
  // The handshake succeeded: its session stays resumable (see finish()).
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  ssl_ = nullptr;
  return ssl;
}

void TlsSession::handshake_completed() noexcept {
  if (offload_ != nullptr && switch_record_layer()) return;
  notes_.wipe_secrets();
  SSL_set_msg_callback(ssl_, nullptr);
  SSL_set_read_ahead(ssl_, 1);
}

bool TlsSession::switch_record_layer() noexcept {
  if (SSL_version(ssl_) != TLS1_3_VERSION) return false;
  const SSL_CIPHER* suite = SSL_get_current_cipher(ssl_);
  const auto cipher = suite != nullptr ? record_cipher_from_suite(SSL_CIPHER_get_protocol_id(suite)) : std::nullopt;
  if (!cipher) return false;
  // Nothing may wait inside OpenSSL: no record read past Finished. (Its
  // output is all in the sink: SSL_do_handshake returns 1 only after its
  // last flight, the tickets, went out whole.)
  if (SSL_has_pending(ssl_) == 1) return false;
  // RFC 8446 7.2: the client has sent nothing under its application secret
  // yet (OpenSSL read none); the server's tickets went out under its own.
  IMB_MGR& mgr = *offload_->mgr;
  if (!rx_.install(mgr, *cipher, notes_.client_application, 0) ||
      !tx_.install(mgr, *cipher, notes_.server_application, notes_.tickets_sent)) {
    rx_.clear();
    tx_.clear();
    return false;
  }
  facts_.version_name = SSL_get_version(ssl_);
  facts_.version = SSL_version(ssl_);
  facts_.cipher_name = SSL_CIPHER_get_name(suite);
  facts_.signature_scheme = signature_scheme();
  facts_.group_name = SSL_group_to_name(ssl_, SSL_get_negotiated_group(ssl_));
  facts_.resumed = SSL_session_reused(ssl_) == 1;
  facts_.verify_result = SSL_get_verify_result(ssl_);
  facts_.session = SSL_get1_session(ssl_);
  facts_.client_certificate = SSL_get0_peer_certificate(ssl_);
  if (facts_.client_certificate != nullptr) X509_up_ref(facts_.client_certificate);
  notes_.wipe_secrets();
  SSL_set_msg_callback(ssl_, nullptr);
  blocked_on_sink_ = false;
  offloaded_ = true;
  return true;
}

TlsSession::Progress TlsSession::receive(const net::tcp::ByteSpans& ciphertext, bool ends, uint8_t* out,
                                         uint32_t cap) noexcept {
  Progress progress;
  if (ssl_ == nullptr && !offloaded_) return progress;
  const uint32_t offered = ciphertext.len[0] + ciphertext.len[1];
  // RFC 8446 6.1: data after a closure alert is ignored; taking it lets the
  // TCP side drain to its FIN.
  if (peer_closed_ || state_ == TlsState::closed) {
    progress.ciphertext_taken = offered;
    return progress;
  }
  if (state_ != TlsState::handshaking && state_ != TlsState::established) return progress;
  // SSL_get_error reads the thread's error queue: an entry left by anything
  // else on this worker would turn a want-read into a failure.
  ERR_clear_error();
  if (offloaded_) {
    read_records(ciphertext, 0, ends, out, cap, progress);
    return progress;
  }
  io_.offer(ciphertext, ends);
  if (state_ == TlsState::handshaking) drive_handshake(progress);
  if (offloaded_) {
    // Switched during this call: what follows Finished is ours.
    const uint32_t finished_at = io_.taken;
    io_.withdraw();
    progress.ciphertext_taken = finished_at;
    if (state_ == TlsState::established && cap > 0) read_records(ciphertext, finished_at, ends, out, cap, progress);
    return progress;
  }
  if (state_ == TlsState::established && cap > 0) read_plaintext(out, cap, progress);
  progress.ciphertext_taken = peer_closed_ ? offered : io_.taken;
  io_.withdraw();
  return progress;
}

void TlsSession::drive_handshake(Progress& progress) noexcept {
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    state_ = TlsState::established;
    progress.handshake_done = true;
    handshake_completed();
    return;
  }
  const int error = SSL_get_error(ssl_, result);
  // No new ticket on a resumed connection (unless configured): the
  // client's ticket stays good (the session is stateful, in this worker's
  // cache). Set before the client's Finished, after which tickets go out.
  if (!tickets_trimmed_ && !notes_.ticket_on_resumption && SSL_session_reused(ssl_) == 1) {
    SSL_set_num_tickets(ssl_, 0);
    tickets_trimmed_ = true;
  }
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return;
    case SSL_ERROR_WANT_WRITE:
      blocked_on_sink_ = true;
      return;
    default:
      fail(error);
  }
}

void TlsSession::read_plaintext(uint8_t* out, uint32_t cap, Progress& progress) noexcept {
  while (progress.plaintext < cap) {
    size_t n = 0;
    const int result = SSL_read_ex(ssl_, out + progress.plaintext, cap - progress.plaintext, &n);
    if (result == 1) {
      progress.plaintext += static_cast<uint32_t>(n);
      continue;
    }
    const int error = SSL_get_error(ssl_, result);
    switch (error) {
      case SSL_ERROR_WANT_READ:
        return;
      case SSL_ERROR_WANT_WRITE:  // answering a KeyUpdate (RFC 8446 4.6.3)
        blocked_on_sink_ = true;
        return;
      case SSL_ERROR_ZERO_RETURN:
        peer_closed_ = true;
        if (close_sent_) state_ = TlsState::closed;
        return;
      default:
        fail(error);
        return;
    }
  }
}

uint32_t TlsSession::send(const uint8_t* data, uint32_t len) noexcept {
  if ((ssl_ == nullptr && !offloaded_) || state_ != TlsState::established || close_requested_ || len == 0) {
    return 0;
  }
  // A record the sink took only part of is finished by the next send, which
  // must repeat at least its bytes (OpenSSL's rule for a write that returned
  // WANT_WRITE; the offloaded path keeps the same contract).
  if (owed_record_ > 0 && len < owed_record_) {
    state_ = TlsState::failed;
    failure_ = TlsFailure::internal;
    return 0;
  }
  if (offloaded_) return send_records(data, len);
  ERR_clear_error();
  uint32_t taken = 0;
  if (owed_record_ > 0) {
    // The record is already encrypted; this only finishes it (the
    // moving-buffer mode allows another address).
    size_t n = 0;
    const int result = SSL_write_ex(ssl_, data, owed_record_, &n);
    if (result != 1) {
      const int error = SSL_get_error(ssl_, result);
      if (error == SSL_ERROR_WANT_WRITE) {
        blocked_on_sink_ = true;
      } else {
        fail(error);
      }
      return 0;
    }
    taken = static_cast<uint32_t>(n);
    owed_record_ = 0;
  }
  while (taken < len) {
    const uint32_t room = io_.sink.space != nullptr ? io_.sink.space(io_.sink.context) : UINT32_MAX;
    if (room == 0) {
      blocked_on_sink_ = true;
      break;
    }
    // Cut to the room, so the record goes whole into the TCP send buffer
    // and nothing waits inside OpenSSL. Room for less than a record's
    // overhead: a record goes anyway, the sink refuses its tail, and that
    // refusal is what makes TCP call on_writable (TcpStack arms it when send
    // takes less than offered or send_space says 0; waiting here silently
    // would never be woken).
    const uint32_t fit = room > kRecordOverhead ? room - kRecordOverhead : kMaxRecordPlaintext;
    const uint32_t chunk = std::min({len - taken, kMaxRecordPlaintext, fit});
    size_t n = 0;
    const int result = SSL_write_ex(ssl_, data + taken, chunk, &n);
    if (result == 1) {
      taken += static_cast<uint32_t>(n);
      continue;
    }
    const int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_WRITE) {
      // The sink took less than it promised: the record waits in OpenSSL's
      // write buffer, owed to the next send. (If OpenSSL stopped before
      // encrypting, at a pending handshake message, the next send simply
      // writes the record then.)
      owed_record_ = chunk;
      blocked_on_sink_ = true;
    } else if (error != SSL_ERROR_WANT_READ) {
      fail(error);
    }
    break;
  }
  return taken;
}

bool TlsSession::on_sink_writable() noexcept {
  if (offloaded_) {
    blocked_on_sink_ = false;
    // A fatal alert may still wait in the tail.
    if (state_ == TlsState::established || state_ == TlsState::failed) flush_control();
    return false;
  }
  if (ssl_ == nullptr) return false;
  blocked_on_sink_ = false;
  if (state_ != TlsState::handshaking && state_ != TlsState::established) return false;
  ERR_clear_error();
  io_.withdraw();
  Progress progress;
  if (state_ == TlsState::handshaking) {
    drive_handshake(progress);
  } else if (SSL_in_init(ssl_) == 1) {
    // A post-handshake message (KeyUpdate answer) waiting for room.
    const int result = SSL_do_handshake(ssl_);
    if (result != 1) {
      const int error = SSL_get_error(ssl_, result);
      if (error == SSL_ERROR_WANT_WRITE) {
        blocked_on_sink_ = true;
      } else if (error != SSL_ERROR_WANT_READ) {
        fail(error);
      }
    }
  }
  if (state_ == TlsState::established && close_requested_ && !close_sent_) drive_shutdown();
  return progress.handshake_done;
}

bool TlsSession::close() noexcept {
  if ((ssl_ == nullptr && !offloaded_) || state_ != TlsState::established || owed_record_ > 0) return false;
  if (close_requested_) return true;
  close_requested_ = true;
  if (offloaded_) {
    flush_control();
    return true;
  }
  ERR_clear_error();
  drive_shutdown();
  return true;
}

void TlsSession::drive_shutdown() noexcept {
  if (SSL_in_init(ssl_) == 1) {
    // SSL_shutdown refuses while a post-handshake message is unfinished;
    // on_sink_writable comes back here once it is out.
    blocked_on_sink_ = true;
    return;
  }
  const int result = SSL_shutdown(ssl_);
  if (result >= 0) {
    // 0: our close_notify is out; 1: and the peer's came before.
    close_sent_ = true;
    if (result == 1 || peer_closed_) state_ = TlsState::closed;
    return;
  }
  const int error = SSL_get_error(ssl_, result);
  if (error == SSL_ERROR_WANT_WRITE) {
    blocked_on_sink_ = true;
    return;
  }
  fail(error);
}

void TlsSession::fail(int ssl_error) noexcept {
  state_ = TlsState::failed;
  error_code_ = ERR_peek_error();
  // End of stream first: OpenSSL answers it with a decode_error alert of
  // its own, which is a consequence, not the cause.
  if (io_.end_reached || ssl_error == SSL_ERROR_SYSCALL) {
    failure_ = TlsFailure::truncated;
  } else if (notes_.alert_sent != HandshakeNotes::kNoAlert && notes_.alert_sent_fatal) {
    failure_ = TlsFailure::local_alert;
  } else if (notes_.alert_received != HandshakeNotes::kNoAlert && notes_.alert_received_fatal) {
    failure_ = TlsFailure::peer_alert;
  } else {
    failure_ = TlsFailure::internal;
  }
  ERR_clear_error();
}

bool TlsSession::has_buffered_input() const noexcept {
  if (offloaded_) return state_ == TlsState::established && !peer_closed_ && rx_more_;
  return ssl_ != nullptr && state_ == TlsState::established && !peer_closed_ && SSL_has_pending(ssl_) == 1;
}

bool TlsSession::release_buffers() noexcept {
  if (offloaded_) {
    if (ssl_ != nullptr) SSL_free_buffers(ssl_);
    return tail_len_ == 0 && owed_record_ == 0;
  }
  return ssl_ != nullptr && SSL_free_buffers(ssl_) == 1;
}

const char* TlsSession::error_reason() const noexcept {
  return error_code_ != 0 ? ERR_reason_error_string(error_code_) : nullptr;
}

std::string_view TlsSession::alpn() const noexcept {
  if (offloaded_) return notes_.alpn_selected();
  if (ssl_ == nullptr) return {};
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return {reinterpret_cast<const char*>(data), len};
}

const char* TlsSession::version_name() const noexcept {
  if (offloaded_) return facts_.version_name;
  return ssl_ != nullptr ? SSL_get_version(ssl_) : "";
}

int TlsSession::version() const noexcept {
  if (offloaded_) return facts_.version;
  return ssl_ != nullptr ? SSL_version(ssl_) : 0;
}

const char* TlsSession::cipher_name() const noexcept {
  if (offloaded_) return facts_.cipher_name;
  return ssl_ != nullptr ? SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_)) : "";
}

const char* TlsSession::signature_scheme() const noexcept {
  if (offloaded_) return facts_.signature_scheme;
  if (ssl_ == nullptr) return "";
  int type = NID_undef;
  int digest = NID_undef;
  if (SSL_get_signature_type_nid(ssl_, &type) != 1 || SSL_get_signature_nid(ssl_, &digest) != 1) return "";
  struct Scheme {
    int type;
    int digest;
    const char* name;
  };
  // RFC 8446 4.2.3's names. ECDSA in TLS 1.3 binds the curve to the digest;
  // in TLS 1.2 the same names are what IANA lists for those pairs. Our RSA
  // keys are rsaEncryption keys, hence rsae for PSS.
  static constexpr Scheme kSchemes[] = {
      {EVP_PKEY_EC, NID_sha256, "ecdsa_secp256r1_sha256"},
      {EVP_PKEY_EC, NID_sha384, "ecdsa_secp384r1_sha384"},
      {EVP_PKEY_EC, NID_sha512, "ecdsa_secp521r1_sha512"},
      {EVP_PKEY_RSA_PSS, NID_sha256, "rsa_pss_rsae_sha256"},
      {EVP_PKEY_RSA_PSS, NID_sha384, "rsa_pss_rsae_sha384"},
      {EVP_PKEY_RSA_PSS, NID_sha512, "rsa_pss_rsae_sha512"},
      {EVP_PKEY_RSA, NID_sha256, "rsa_pkcs1_sha256"},
      {EVP_PKEY_RSA, NID_sha384, "rsa_pkcs1_sha384"},
      {EVP_PKEY_RSA, NID_sha512, "rsa_pkcs1_sha512"},
      {EVP_PKEY_ED25519, NID_undef, "ed25519"},
  };
  for (const Scheme& scheme : kSchemes) {
    if (scheme.type == type && (scheme.digest == digest || scheme.type == EVP_PKEY_ED25519)) return scheme.name;
  }
  return "";
}

bool TlsSession::resumed() const noexcept {
  if (offloaded_) return facts_.resumed;
  return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

const char* TlsSession::group_name() const noexcept {
  if (offloaded_) return facts_.group_name;
  return ssl_ != nullptr ? SSL_group_to_name(ssl_, SSL_get_negotiated_group(ssl_)) : nullptr;
}

X509* TlsSession::client_certificate() const noexcept {
  if (offloaded_) return facts_.client_certificate;
  return ssl_ != nullptr ? SSL_get0_peer_certificate(ssl_) : nullptr;
}

STACK_OF(X509) * TlsSession::client_chain() const noexcept {
  return ssl_ != nullptr ? SSL_get_peer_cert_chain(ssl_) : nullptr;
}

long TlsSession::verify_result() const noexcept {
  if (offloaded_) return facts_.verify_result;
  return ssl_ != nullptr ? SSL_get_verify_result(ssl_) : X509_V_ERR_UNSPECIFIED;
}

void TlsSession::fill_session_facts(const TlsContexts& contexts, ClientIdentity& identity) const {
  identity.presented = client_cert_presented();
  identity.verified = client_verified();
  identity.tls_version = version_name();
  identity.cipher = cipher_name();
  identity.sni = sni();
  identity.alpn = alpn();
  if (notes_.host < contexts.host_count()) {
    const TlsContexts::Host& host = contexts.host(notes_.host);
    identity.sig_alg = host.cert_sig_alg;
    identity.key_alg = host.cert_key_alg;
  }
}

}  // namespace mtlsgw::tls
