#include "tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "dataplane/tls/alert_name.h"

namespace mtlsgw::loadgen {
namespace {

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + openssl_reason());
}

// The pool of the context that made the SSL, for the new-session callback.
int tls_stream_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int context_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* stream = static_cast<TlsStream*>(SSL_get_ex_data(ssl, tls_stream_index()));
  auto* context = static_cast<ClientTlsContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), context_index()));
  if (stream == nullptr || context == nullptr || !stream->keeps_sessions() ||
      SSL_SESSION_is_resumable(session) != 1) {
    return 0;  // OpenSSL frees it
  }
  context->sessions().add(session);
  return 1;  // the pool keeps the reference
}

// The gateway's own table (RFC 8446 6 and the TLS 1.2 names): OpenSSL
// 3.0's SSL_alert_desc_string_long knows no certificate_required (116).
std::string alert_name(int description) {
  const std::string_view name = mtlsgw::tls::alert_name(static_cast<uint8_t>(description));
  return name.empty() ? "alert_" + std::to_string(description) : std::string(name);
}

}  // namespace

SessionPool::~SessionPool() {
  for (SSL_SESSION* s : fresh_) SSL_SESSION_free(s);
  if (last_ != nullptr) SSL_SESSION_free(last_);
}

void SessionPool::add(SSL_SESSION* session) {
  fresh_.push_front(session);
  if (fresh_.size() > capacity_) {
    SSL_SESSION_free(fresh_.back());
    fresh_.pop_back();
  }
}

SSL_SESSION* SessionPool::take() {
  while (!fresh_.empty()) {
    SSL_SESSION* next = fresh_.front();
    fresh_.pop_front();
    if (SSL_SESSION_is_resumable(next) != 1) {
      SSL_SESSION_free(next);
      continue;
    }
    if (last_ != nullptr) SSL_SESSION_free(last_);
    last_ = next;
    break;
  }
  if (last_ != nullptr && SSL_SESSION_is_resumable(last_) != 1) {
    SSL_SESSION_free(last_);
    last_ = nullptr;
  }
  return last_;
}

ClientTlsContext::ClientTlsContext(const Options& options)
    : sessions_(std::max<size_t>(16, 4 * size_t{options.concurrency})), sni_(options.sni) {
  ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!ctx_) fail("SSL_CTX_new");
  SSL_CTX* ctx = ctx_.get();
  SSL_CTX_set_ex_data(ctx, context_index(), this);

  const int version = options.tls_version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, version) != 1) {
    fail("TLS version " + options.tls_version);
  }
  if (!options.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.cert.c_str()) != 1) {
      fail("client certificate " + options.cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail("client key " + options.key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) fail("client key does not match the certificate");
  }
  if (options.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx, options.cafile.c_str(), nullptr) != 1) {
      fail("CA file " + options.cafile);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    verify_name_ = !options.sni.empty() ? options.sni : options.host;
  }
  if (!options.alpn.empty()) {
    if (options.alpn.size() > 255) throw std::runtime_error("ALPN protocol name too long");
    std::vector<unsigned char> wire;
    wire.push_back(static_cast<unsigned char>(options.alpn.size()));
    wire.insert(wire.end(), options.alpn.begin(), options.alpn.end());
    // SSL_CTX_set_alpn_protos returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx, wire.data(), static_cast<unsigned>(wire.size())) != 0) {
      fail("ALPN");
    }
  }
  // Sessions go to our pool only (the callback), not to OpenSSL's client
  // cache, which a client never looks up by itself.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
}

bool TlsStream::open(ClientTlsContext& context, SSL_SESSION* resume, bool keep_sessions) {
  close();
  alert_kind_.clear();
  detail_.clear();
  keep_sessions_ = keep_sessions;
  ssl_ = SSL_new(context.get());
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || network_in_ == nullptr || network_out_ == nullptr) {
    BIO_free(network_in_);
    BIO_free(network_out_);
    network_in_ = network_out_ = nullptr;
    detail_ = openssl_reason();
    return false;
  }
  // An empty input BIO means "no data yet" (retry), not end of stream: the
  // end of the TCP stream is the socket's to report.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);
  SSL_set_ex_data(ssl_, tls_stream_index(), this);
  SSL_set_info_callback(ssl_, on_info);
  SSL_set_connect_state(ssl_);
  if (!context.sni().empty() && SSL_set_tlsext_host_name(ssl_, context.sni().c_str()) != 1) {
    detail_ = openssl_reason();
    return false;
  }
  if (!context.verify_name().empty() && SSL_set1_host(ssl_, context.verify_name().c_str()) != 1) {
    detail_ = openssl_reason();
    return false;
  }
  if (resume != nullptr) {
    // A copy: at the end of a TLS 1.3 handshake OpenSSL's client removes
    // the session it resumed from the client cache, which marks that very
    // object not resumable ("use TLS 1.3 tickets once"). The pool's own
    // stays good for a server that lets a ticket be used again (a stateful
    // cache that sends no new ticket on resumption, as mtlsgw by default).
    SSL_SESSION* copy = SSL_SESSION_dup(resume);
    const bool set = copy != nullptr && SSL_set_session(ssl_, copy) == 1;
    SSL_SESSION_free(copy);
    if (!set) {
      detail_ = openssl_reason();
      return false;
    }
  }
  return true;
}

void TlsStream::shutdown() {
  ERR_clear_error();
  SSL_shutdown(ssl_);  // 1 or 0: either way the alert is in the write BIO
  ERR_clear_error();
}

void TlsStream::mark_clean_end() {
  // SSL_free of a connection that was not shut down marks its session not
  // resumable (OpenSSL's ssl_clear_bad_session), and in TLS 1.3 that
  // session is the last ticket received, the one the pool holds. After a
  // complete response the connection did end cleanly, even when the server
  // closed without a close_notify to answer.
  if (ssl_ != nullptr) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

void TlsStream::close() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
  ssl_ = nullptr;
  network_in_ = network_out_ = nullptr;
}

void TlsStream::on_info(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) == 0 || (where & SSL_CB_READ) == 0) return;
  // ret: level in the high byte (2 = fatal), description in the low byte.
  // A close_notify is a warning and ends the stream cleanly (kClosed).
  if ((ret >> 8) != SSL3_AL_FATAL) return;
  auto* stream = static_cast<TlsStream*>(SSL_get_ex_data(ssl, tls_stream_index()));
  if (stream != nullptr && stream->alert_kind_.empty()) {
    stream->alert_kind_ = "tls_alert:" + alert_name(ret & 0xff);
  }
}

TlsStream::Status TlsStream::fail_with(int ssl_result) {
  switch (SSL_get_error(ssl_, ssl_result)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return Status::kWantMore;
    case SSL_ERROR_ZERO_RETURN:
      return Status::kClosed;
    default:
      detail_ = openssl_reason();
      return Status::kError;
  }
}

void TlsStream::feed(const uint8_t* data, size_t len) {
  // A memory BIO takes everything (it grows), so one call suffices.
  BIO_write(network_in_, data, static_cast<int>(len));
}

TlsStream::Status TlsStream::handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  return r == 1 ? Status::kDone : fail_with(r);
}

TlsStream::Status TlsStream::write(const void* data, size_t len) {
  ERR_clear_error();
  size_t written = 0;
  if (len == 0) return Status::kDone;
  const int r = SSL_write_ex(ssl_, data, len, &written);
  return r == 1 ? Status::kDone : fail_with(r);
}

TlsStream::Status TlsStream::read(uint8_t* out, size_t cap, size_t& got) {
  ERR_clear_error();
  got = 0;
  const int r = SSL_read_ex(ssl_, out, cap, &got);
  return r == 1 ? Status::kDone : fail_with(r);
}

size_t TlsStream::pending_ciphertext() const { return BIO_ctrl_pending(network_out_); }

void TlsStream::take_ciphertext(std::vector<uint8_t>& out) {
  const size_t pending = BIO_ctrl_pending(network_out_);
  if (pending == 0) return;
  const size_t old = out.size();
  out.resize(old + pending);
  const int n = BIO_read(network_out_, out.data() + old, static_cast<int>(pending));
  out.resize(old + static_cast<size_t>(n > 0 ? n : 0));
}

}  // namespace mtlsgw::loadgen
