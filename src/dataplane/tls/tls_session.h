#pragma once
// One server-side TLS connection over a TCP byte stream, for a worker's
// application (the forwarders): non-blocking, run to completion, errors as
// states and return values.
//
// How a TcpApp drives it (ciphertext never waits in a buffer of ours):
//   on_accepted:   session.start(pool.acquire(), sink over TcpStack::send)
//   on_readable / on_peer_closed:
//                  p = session.receive(stack.peek(h), peer_fin, out, cap);
//                  stack.consume(h, p.ciphertext_taken); forward out[0, p.plaintext)
//                  (again while p.plaintext == cap or has_buffered_input())
//   upstream data: n = session.send(data, len); the upstream consumes n; when
//                  n < len the next send starts with the bytes not taken
//   on_writable:   session.on_sink_writable(), then retry receive/send
//   closing:       session.close() sends close_notify; TcpStack::shutdown once
//                  close_notify_sent()
//   on_closed:     pool.release(session.finish())
//
// Plaintext copies: TCP receive ring -> OpenSSL record buffer (decrypted in
// place) -> `out`; `data` -> OpenSSL write buffer (encrypted in place) -> TCP
// send ring. OpenSSL 3.0 has no API to decrypt into or encrypt from a caller's
// buffer without its own, so these are the fewest copies it allows.
//
// Record offload (start with a RecordOffload): a TLS 1.3 connection with an
// AES-GCM suite leaves OpenSSL's record layer when its handshake completes
// and runs on ours (record_protection.h, IPsec-MB): records are opened from
// the TCP receive ring straight into `out` (a record the ring wraps, or one
// larger than the room in `out`, through the worker's scratch) and sealed
// from `data` into the scratch, then copied to the sink. The SSL is then
// only needed for what the caller reads of it (ssl(), for the client
// identity); release_ssl() hands it back for SslPool::release, and every
// fact below stays valid. About 1 us per small record and 2.6 GB/s at
// 16 KiB through OpenSSL against 0.1 us and 12 GB/s (perf/record_bench),
// and an idle connection holds no SSL (12-13 KiB of OpenSSL heap).
// TLS 1.2 and ChaCha20-Poly1305 connections stay on OpenSSL throughout.

#include <openssl/ssl.h>

#include <cstdint>
#include <string_view>

#include "dataplane/net/tcp_buffers.h"
#include "dataplane/tls/record_protection.h"
#include "dataplane/tls/tls_context.h"
#include "dataplane/tls/transport_bio.h"

namespace mtlsgw::tls {

struct ClientIdentity;

enum class TlsState : uint8_t {
  idle,         // no connection
  handshaking,
  established,  // application data; one direction may be closed already
  closed,       // close_notify sent and received
  failed,       // see failure()
};
const char* name_of(TlsState state) noexcept;

enum class TlsFailure : uint8_t {
  none,
  local_alert,  // we ended it with a fatal alert: alert_sent() (in the sink if it had room)
  peer_alert,   // the client sent a fatal alert: alert_received()
  truncated,    // the stream ended without close_notify (RFC 8446 6.1)
  internal,     // OpenSSL failed without an alert (allocation), or misuse
};
const char* name_of(TlsFailure failure) noexcept;

// A worker's means for offloaded sessions: its own IMB_MGR (never shared
// between threads) and one scratch of kMaxRecordLength bytes, which no
// session keeps anything in between calls.
struct RecordOffload {
  IMB_MGR* mgr = nullptr;
  uint8_t* scratch = nullptr;
};

class TlsSession {
 public:
  // Largest plaintext per record (RFC 8446 5.1 / RFC 5246 6.2.1: 2^14).
  static constexpr uint32_t kMaxRecordPlaintext = 16384;
  // Bytes a record adds to its plaintext with the configured suites: header
  // 5, TLS 1.2 explicit GCM nonce 8, tag 16, TLS 1.3 inner content type 1.
  static constexpr uint32_t kRecordOverhead = 5 + 8 + 16 + 1;

  struct Progress {
    uint32_t ciphertext_taken = 0;  // consume this many bytes from the TCP receive buffer
    uint32_t plaintext = 0;         // bytes written to out
    bool handshake_done = false;    // the handshake completed during this call
  };

  TlsSession() = default;
  TlsSession(const TlsSession&) = delete;  // OpenSSL holds pointers into it
  TlsSession& operator=(const TlsSession&) = delete;

  // Takes an SSL from SslPool::acquire (made from TlsContexts::front()) for
  // a new connection whose ciphertext goes to `sink`. False (state failed,
  // internal) when ssl is nullptr. With `offload` (the worker's, outliving
  // the session) a qualifying connection switches to our record layer when
  // its handshake completes.
  bool start(SSL* ssl, const CiphertextSink& sink, const RecordOffload* offload = nullptr) noexcept;
  // Ends the binding and hands the SSL back for SslPool::release (nullptr
  // when release_ssl() did already); the facts below are gone after this.
  SSL* finish() noexcept;

  // The connection runs on our record layer (its handshake completed).
  bool offloaded() const noexcept { return offloaded_; }
  // Once offloaded: gives the SSL up for SslPool::release (nullptr when not
  // offloaded or already given up). The handshake facts stay; ssl(),
  // client_chain() are nullptr from then on, so read the client identity
  // (extract_client_identity) before.
  SSL* release_ssl() noexcept;

  // Ciphertext the TCP receive buffer holds, all of it (`ends`: the peer's
  // FIN follows it). Drives the handshake, then decrypts up to cap bytes of
  // application data into out. cap 0 only drives the handshake (for a
  // caller whose upstream is not ready): the data stays in TCP, where the
  // window holds the client back.
  Progress receive(const net::tcp::ByteSpans& ciphertext, bool ends, uint8_t* out, uint32_t cap) noexcept;

  // Encrypts up to len bytes into records sized to the sink's room; returns
  // how many it took. Fewer than len: the sink is full (on_sink_writable
  // comes) and the next send must start with the bytes not taken, because
  // a record may already be half in the sink and OpenSSL finishes it on
  // that call.
  uint32_t send(const uint8_t* data, uint32_t len) noexcept;

  // The sink has room again: finishes output that was waiting (a handshake
  // flight, a KeyUpdate answer, close_notify). True when that completed the
  // handshake (its last flight was the one waiting). A record owed to send()
  // is finished by that send, not here.
  bool on_sink_writable() noexcept;

  // Sends close_notify after what send() took. False when not established
  // or when a record is still owed to send(): close after the data.
  bool close() noexcept;

  TlsState state() const noexcept { return state_; }
  TlsFailure failure() const noexcept { return failure_; }
  bool peer_closed() const noexcept { return peer_closed_; }        // close_notify received
  bool close_notify_sent() const noexcept { return close_sent_; }   // and in the sink
  bool wants_sink() const noexcept { return blocked_on_sink_; }     // waiting for on_sink_writable
  // OpenSSL holds received bytes not yet returned as plaintext (read ahead):
  // call receive again even without new TCP data.
  bool has_buffered_input() const noexcept;
  // An idle connection gives OpenSSL's record buffers back (about 34 KiB:
  // one read and one write buffer of a full record); the next record
  // allocates them again. False while they hold bytes.
  bool release_buffers() noexcept;
  int alert_sent() const noexcept { return notes_.alert_sent; }
  int alert_received() const noexcept { return notes_.alert_received; }
  // The library's reason for a failure ("certificate verify failed",
  // "no application protocol", ...), nullptr if none.
  const char* error_reason() const noexcept;
  unsigned long error_code() const noexcept { return error_code_; }

  // Facts of the handshake, valid once established.
  uint32_t host() const noexcept { return notes_.host; }
  std::string_view sni() const noexcept { return notes_.server_name(); }  // lower-cased
  std::string_view alpn() const noexcept;
  const char* version_name() const noexcept;  // "TLSv1.3", "TLSv1.2"
  int version() const noexcept;               // TLS1_3_VERSION, TLS1_2_VERSION
  const char* cipher_name() const noexcept;
  // The TLS SignatureScheme name (RFC 8446 4.2.3) our CertificateVerify or
  // ServerKeyExchange used, e.g. "ecdsa_secp256r1_sha256",
  // "rsa_pss_rsae_sha256"; "" when unknown or resumed (no signature).
  const char* signature_scheme() const noexcept;
  bool resumed() const noexcept;
  // The key exchange group ("x25519", "secp256r1"), nullptr if unknown.
  const char* group_name() const noexcept;
  bool client_cert_presented() const noexcept { return client_certificate() != nullptr; }
  // The client's leaf (also after resumption: the session keeps it), owned
  // by the session; and the chain it sent after the leaf.
  X509* client_certificate() const noexcept;
  STACK_OF(X509) * client_chain() const noexcept;
  // X509_V_OK or why verification failed (first failure; kept by the
  // session, so a resumption reports the original verdict).
  long verify_result() const noexcept;
  bool client_verified() const noexcept { return client_cert_presented() && verify_result() == X509_V_OK; }
  // This handshake's verification ran (false on resumption and without a
  // client certificate) and at which depth it failed.
  bool verify_ran() const noexcept { return notes_.verify_ran; }
  int verify_error_depth() const noexcept { return notes_.verify_error_depth; }
  SSL* ssl() const noexcept { return ssl_; }

  // Writes the session facts of ClientIdentity (presented, verified,
  // tls_version, cipher, sni, alpn, sig_alg, key_alg); the certificate fields
  // are the identity extractor's.
  void fill_session_facts(const TlsContexts& contexts, ClientIdentity& identity) const;

 private:
  void drive_handshake(Progress& progress) noexcept;
  void read_plaintext(uint8_t* out, uint32_t cap, Progress& progress) noexcept;
  void drive_shutdown() noexcept;
  // Classifies an SSL_get_error result that is not a want-read/want-write.
  void fail(int ssl_error) noexcept;
  // The handshake completed: switch to our record layer if this connection
  // qualifies, else back to OpenSSL's read-ahead.
  void handshake_completed() noexcept;
  bool switch_record_layer() noexcept;

  // Our record layer (tls_session_records.cc).
  void read_records(const net::tcp::ByteSpans& ciphertext, uint32_t offset, bool ends, uint8_t* out, uint32_t cap,
                    Progress& progress) noexcept;
  // A record the peer sent that is not application data; false ends reading.
  bool on_control_record(ContentType type, const uint8_t* body, size_t length) noexcept;
  uint32_t send_records(const uint8_t* data, uint32_t len) noexcept;
  // Output of ours that waits (a control record's tail, a KeyUpdate, our
  // close_notify), in order; true when none is left.
  bool flush_control() noexcept;
  // One small record of ours to the sink, what it refuses kept in tail_.
  bool write_control(ContentType type, const uint8_t* body, size_t length) noexcept;
  void fail_with_alert(uint8_t alert) noexcept;
  void forget_session() noexcept;

  struct OffloadedFacts {
    const char* version_name = "";
    const char* cipher_name = "";
    const char* signature_scheme = "";
    const char* group_name = nullptr;
    X509* client_certificate = nullptr;  // a reference of ours
    // The session the client may resume (a reference of ours): a fatal
    // error removes it from the cache, as OpenSSL's record layer does.
    SSL_SESSION* session = nullptr;
    long verify_result = X509_V_OK;
    int version = 0;
    bool resumed = false;
  };

  SSL* ssl_ = nullptr;
  TransportIo io_;
  HandshakeNotes notes_;
  TlsState state_ = TlsState::idle;
  TlsFailure failure_ = TlsFailure::none;
  unsigned long error_code_ = 0;
  uint32_t owed_record_ = 0;  // plaintext of a record OpenSSL has not finished writing
  bool blocked_on_sink_ = false;
  bool peer_closed_ = false;
  bool close_requested_ = false;
  bool close_sent_ = false;
  bool tickets_trimmed_ = false;

  // Record offload; rx_/tx_ hold the keys (about 1 KiB each, IPsec-MB's
  // expanded AES and GHASH tables).
  static constexpr size_t kTailBytes = 64;  // a control record or two (alert 24, KeyUpdate 27 bytes)
  const RecordOffload* offload_ = nullptr;
  SSL_CTX* session_cache_ = nullptr;  // the context the SSL was made from: its cache holds the sessions
  RecordProtection rx_;
  RecordProtection tx_;
  OffloadedFacts facts_;
  uint32_t rx_delivered_ = 0;  // plaintext of the first record in TCP already returned
  uint32_t owed_sent_ = 0;     // ciphertext of the owed record already in the sink
  uint8_t owed_tag_[kRecordTagLength]{};
  uint8_t tail_[kTailBytes]{};
  uint8_t tail_len_ = 0;
  bool tail_closes_ = false;     // close_notify ends the tail
  bool key_update_owed_ = false;  // RFC 8446 4.6.3: ours goes before our next record
  bool rx_more_ = false;          // a complete record waits that did not fit into out
  bool offloaded_ = false;
};

}  // namespace mtlsgw::tls
