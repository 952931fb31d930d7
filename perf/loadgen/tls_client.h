#pragma once
// The client side of TLS over memory BIOs: OpenSSL never sees the socket.
// Ciphertext read from the socket is fed in (feed), ciphertext to send is
// taken out (take_ciphertext), and the connection (connection.cc) moves the
// bytes with io_uring. Also the client's sessions, for resumption.

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "options.h"

namespace mtlsgw::loadgen {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};

// Sessions the server gave us (TLS 1.2 session ids or tickets, TLS 1.3
// NewSessionTicket messages, which arrive after the handshake), newest
// first. A TLS 1.3 ticket may be single-use at the server (RFC 8446 8.1), so
// each is offered once while fresh ones keep coming; when none is left (a
// server that sends no new ticket on a resumed connection), the last one
// offered is offered again.
class SessionPool {
 public:
  explicit SessionPool(size_t capacity) : capacity_(capacity) {}
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  void add(SSL_SESSION* session);  // takes the reference
  // A session to offer, owned by the pool (SSL_set_session takes its own
  // reference), or nullptr before the first one arrived.
  SSL_SESSION* take();
  size_t fresh() const { return fresh_.size(); }

 private:
  size_t capacity_;
  std::deque<SSL_SESSION*> fresh_;
  SSL_SESSION* last_ = nullptr;
};

// The SSL_CTX of a run: client certificate, server verification (or none),
// protocol version, ALPN. Throws std::runtime_error with OpenSSL's reason
// when a file does not load.
class ClientTlsContext {
 public:
  explicit ClientTlsContext(const Options& options);
  SSL_CTX* get() const { return ctx_.get(); }
  SessionPool& sessions() { return sessions_; }
  const std::string& sni() const { return sni_; }
  const std::string& verify_name() const { return verify_name_; }

 private:
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  SessionPool sessions_;
  std::string sni_;
  std::string verify_name_;  // checked against the server certificate (--cafile)
};

// One TLS connection's OpenSSL state.
class TlsStream {
 public:
  enum class Status : uint8_t {
    kDone,      // handshake complete / data read
    kWantMore,  // needs more ciphertext from the peer
    kClosed,    // the peer sent close_notify
    kError,     // failure(): a fatal alert received, or a local error
  };

  TlsStream() = default;
  ~TlsStream() { close(); }
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // A new client SSL; offers `resume` when not null. keep_sessions: sessions
  // the server sends on this connection go to the context's pool.
  bool open(ClientTlsContext& context, SSL_SESSION* resume, bool keep_sessions);
  // Queues our close_notify (take_ciphertext has it).
  void shutdown();
  // The connection ended as it should (every response complete): keep its
  // sessions resumable.
  void mark_clean_end();
  void close();

  void feed(const uint8_t* data, size_t len);
  Status handshake();
  // Writes all of data (the write BIO is a growing memory BIO).
  Status write(const void* data, size_t len);
  // Up to cap bytes of plaintext into out; `got` is what was read.
  Status read(uint8_t* out, size_t cap, size_t& got);

  size_t pending_ciphertext() const;
  void take_ciphertext(std::vector<uint8_t>& out);  // appends

  bool resumed() const { return SSL_session_reused(ssl_) == 1; }
  // After kError: "tls_alert:<name>" for a fatal alert from the peer, else
  // the empty string; detail() has OpenSSL's reason.
  const std::string& alert_kind() const { return alert_kind_; }
  const std::string& detail() const { return detail_; }
  bool keeps_sessions() const { return keep_sessions_; }

 private:
  static void on_info(const SSL* ssl, int where, int ret);
  Status fail_with(int ssl_result);

  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // owned by ssl_
  BIO* network_out_ = nullptr;  // owned by ssl_
  bool keep_sessions_ = false;
  std::string alert_kind_;
  std::string detail_;
};

}  // namespace mtlsgw::loadgen
