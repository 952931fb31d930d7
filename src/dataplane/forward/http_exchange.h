#pragma once
// One client connection of `forward: http`, as a state machine without I/O:
// the client's decrypted bytes go in through from_client() and leave, heads
// rewritten, through the origin sink; the origin's bytes go in through
// from_origin() and leave unchanged through the client sink. The gateway
// service owns both connections and asks the exchange, after every call, what
// to do with them (half-close, close, reset, stop reading).
//
// The rules it enforces, and why:
// - Responses answer requests in order (RFC 9112 9.3.2), so an answer the
//   gateway writes itself (400, 421, ...) waits until every earlier request's
//   response has been passed whole; then the connection closes (the canned
//   responses say "Connection: close"), and nothing after the refused
//   request reaches the origin.
// - A head leaves whole or not at all: the rewritten request head is written
//   only when the origin sink can take all of it, and a response head is
//   checked whole before its first byte reaches the client, so that a
//   malformed response can still be answered with a clean 502.
// - A response cut short must not look complete to the client: once a byte
//   of a response has been passed, an origin failure resets the client
//   instead of closing it (RFC 9112 6.3, 9.8: a client tells a complete
//   message from an incomplete one only by the framing or by a clean close).
// - At most ResponseParser::kMaxPending requests are outstanding; past that,
//   and after a request that asks to upgrade (the bytes after it belong to
//   the new protocol if the origin agrees, RFC 9110 7.8), the client is not
//   read until a response completes.
//
// Origin failure before any request (connect refused, FIN or reset on an idle
// connection that never carried a request): the 502 or 504 is sent when the
// client's first request head arrives, not at once. A response written before
// the client asked is an unsolicited response; HTTP/1.1 clients with
// connection pools discard those (Go's net/http logs "Unsolicited response
// received on idle HTTP channel") and then see a bare close, which says
// nothing about the origin, while a 502 in answer to the request does, and
// gives the access log a request line. The cost is holding the connection
// until the client sends a head or the gateway's request timeout ends it.
//
// Sinks: write() must take at least what space() reported (the exchange
// sizes head writes by space()); a sink that takes less is still handled:
// body bytes not taken are re-offered by the caller (from_client and
// from_origin return only what a sink took), and a head or canned response
// not taken is owed (has_owed_origin_output / has_owed_output).
//
// No allocation, no exceptions, work proportional to the bytes offered.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_canned_response.h"
#include "dataplane/forward/http_identity.h"
#include "dataplane/forward/http_request_parser.h"
#include "dataplane/forward/http_response_parser.h"
#include "dataplane/tls/client_identity.h"

namespace mtlsgw::forward::http {

// Where bytes go. The gateway binds `origin` to TcpStack::send on the upstream
// connection and `client` to TlsSession::send (which encrypts). write takes up
// to len and returns how many it took (0 when full; a later call must start
// with the bytes not taken). space: what write would take now.
struct ByteSink {
  uint32_t (*write)(void* context, const uint8_t* data, uint32_t len) noexcept = nullptr;
  uint32_t (*space)(void* context) noexcept = nullptr;
  void* context = nullptr;
};

// Storage the gateway hands over (from a per-worker pool); the exchange
// allocates nothing. Each span must outlive the exchange.
struct ExchangeBuffers {
  std::span<char> request_head;   // RequestParser's head buffer (e.g. 8 KiB)
  std::span<char> response_head;  // ResponseParser's head buffer (e.g. 8 KiB)
  // One rewritten head (head + identity fields, e.g. 32 KiB). A head whose
  // rewrite does not fit is answered 431. The origin sink must be able to
  // offer this much space at once, or a head this large never leaves.
  std::span<char> rewritten;
};

enum class OriginFailure : uint8_t { refused, unreachable, reset, timed_out };

class HttpExchange {
 public:
  HttpExchange(const ExchangeBuffers& buffers, const RequestLimits& req = {},
               const ResponseLimits& resp = {}, const IdentityConfig& identity = {}) noexcept;

  // A new client connection (also to reuse the exchange for the next one):
  // identity from its handshake (must outlive the exchange's use; null is
  // taken as "no certificate"), expected authority = the SNI, or the host's
  // configured name when there was none (empty: any authority).
  void start(const tls::ClientIdentity* identity, std::string_view expected_authority) noexcept;

  // The operator's rules on each request (docs/rules.md): called with every
  // request head before anything of it goes to the origin; false answers
  // 403 and closes, as a local answer does. Set after start(); empty: every
  // request passes.
  struct RequestGate {
    bool (*admit)(void* context, const RequestHead& head) noexcept = nullptr;
    void* context = nullptr;
  };
  void set_request_gate(RequestGate gate) noexcept { gate_ = gate; }

  // Client plaintext -> origin. Returns bytes of `in` taken; the caller
  // re-offers the rest (same bytes first) later. Once the exchange answers
  // locally or reads no more requests (Connection: close, origin closing),
  // everything offered is taken and dropped.
  size_t from_client(std::span<const uint8_t> in, ByteSink& origin, ByteSink& client,
                     int64_t now_epoch) noexcept;
  // Origin bytes -> client, unchanged; returns bytes taken (the caller
  // re-offers the rest). Bytes after the last response are dropped.
  size_t from_origin(std::span<const uint8_t> in, ByteSink& client, int64_t now_epoch) noexcept;

  // The client sink has room again: finish an owed canned response or
  // response head (has_owed_output()).
  void on_client_writable(ByteSink& client, int64_t now_epoch) noexcept;
  // The origin sink has room again: finish an owed request head
  // (has_owed_origin_output()).
  void on_origin_writable(ByteSink& origin, ByteSink& client, int64_t now_epoch) noexcept;

  // The client's stream ended (close_notify or FIN) after everything offered
  // to from_client was taken.
  void client_ended() noexcept;
  // The origin's stream ended (FIN) after everything offered to from_origin
  // was taken.
  void origin_ended(ByteSink& client, int64_t now_epoch) noexcept;
  // The origin connection failed. Before any byte of the current response
  // reached the client and with a request outstanding: a canned 502
  // (refused, unreachable, reset) or 504 (timed_out), then close. With no
  // request sent yet, or one still arriving: the same answer to that request
  // when its head is complete. Between responses with nothing arriving: a
  // clean close. Otherwise (part of a response or a tunnel passed) the client
  // must be reset.
  void origin_failed(OriginFailure why, ByteSink& client, int64_t now_epoch) noexcept;

  // What the gateway must do next (query after every call):
  bool wants_origin_shutdown() const noexcept;  // no more bytes will go to the origin: half-close it (FIN)
  bool must_reset_origin() const noexcept;      // end the origin abruptly (RST): its stream is unusable
  bool wants_client_close() const noexcept;     // everything for the client is written: send close_notify+FIN
  bool must_reset_client() const noexcept;      // end the client abruptly (RST), e.g. truncated response
  bool client_paused() const noexcept;          // not reading the client now (pipelining limit, upgrade
                                                // pending, local response owed, request head owed)
  bool has_owed_output() const noexcept;         // bytes owed to the client: call on_client_writable
  bool has_owed_origin_output() const noexcept;  // a request head owed to the origin: call on_origin_writable

  // For the access log and counters:
  uint32_t requests() const noexcept { return requests_; }    // request heads received
  uint32_t responses() const noexcept { return responses_; }  // final responses passed, canned included
  uint16_t local_status() const noexcept { return local_status_; }  // the canned status answered, 0 if none
  bool tunnel() const noexcept { return tunnel_; }  // a 101 turned the connection into a tunnel

  // What an exchange at rest carries over: the counts above and the
  // requests forwarded (origin_failed() answers differently before the
  // first one).
  struct Tally {
    uint32_t requests = 0;
    uint32_t responses = 0;
    uint32_t forwarded = 0;
  };
  // Between messages in both directions with nothing half-parsed, owed,
  // carried or awaited, no answer of ours pending, and the connection
  // neither ending nor a tunnel. Then start() followed by resume(tally())
  // behaves exactly as this exchange would, so an idle connection can give
  // its exchange and buffers back to a pool (~70 KiB, tls_gateway) and take
  // one again when a byte arrives.
  bool at_rest() const noexcept;
  Tally tally() const noexcept { return {requests_, responses_, forwarded_}; }
  void resume(const Tally& tally) noexcept;

 private:
  enum class Origin : uint8_t { kOpen, kEnded, kFailed };

  size_t pump_requests(std::span<const uint8_t> in, ByteSink& origin) noexcept;
  bool handle_request_head(ByteSink& origin) noexcept;  // false: answered locally
  bool flush_request_head(ByteSink& origin) noexcept;
  void request_ended() noexcept;
  void request_error() noexcept;

  size_t pump_responses(std::span<const uint8_t> in, ByteSink& client) noexcept;
  bool flush_response_head(ByteSink& client) noexcept;
  void response_ended() noexcept;
  void response_error() noexcept;
  void settle_origin_eof() noexcept;
  void origin_gone(uint16_t status) noexcept;
  void reset_client() noexcept;

  void answer_locally(uint16_t status, bool after_pending_responses) noexcept;
  void pump_canned(ByteSink& client, int64_t now_epoch) noexcept;
  bool client_at_boundary() const noexcept;
  bool responses_expected() const noexcept;
  bool discarding_client() const noexcept;
  bool discarding_origin() const noexcept;

  ExchangeBuffers buffers_;
  RequestLimits request_limits_;
  ResponseLimits response_limits_;
  IdentityConfig identity_config_;
  RequestParser request_parser_;
  ResponseParser response_parser_;
  const tls::ClientIdentity* identity_ = nullptr;
  std::string_view expected_authority_;
  RequestGate gate_;

  // Client -> origin.
  bool request_in_head_ = true;     // the request parser is between messages or in a head
  bool request_head_owed_ = false;  // rewritten head not (wholly) written to the origin
  size_t request_head_len_ = 0;
  size_t request_head_sent_ = 0;
  size_t origin_carry_ = 0;         // body bytes parsed but not taken by the origin sink
  bool awaiting_upgrade_ = false;   // an Upgrade request waits for its final response
  bool closing_ = false;            // no further request will be forwarded
  bool client_ended_ = false;
  uint32_t forwarded_ = 0;

  // Origin -> client.
  bool response_in_head_ = true;
  bool response_head_owed_ = false;
  size_t response_head_sent_ = 0;
  size_t client_carry_ = 0;
  bool mid_response_ = false;  // a byte of the current response reached the client
  bool response_closed_ = false;  // the last response ends the origin connection
  bool tunnel_ = false;
  Origin origin_ = Origin::kOpen;
  bool origin_eof_ = false;  // origin_ended() seen, not yet settled

  // Answers the gateway writes.
  uint16_t local_status_ = 0;
  bool local_waits_ = false;      // until every forwarded request's response has passed
  uint16_t deferred_status_ = 0;  // the origin failed before a request: answer the next one
  bool canned_built_ = false;
  size_t canned_len_ = 0;
  size_t canned_sent_ = 0;
  char canned_[kMaxCannedResponseLen] = {};

  bool reset_client_ = false;
  bool reset_origin_ = false;
  uint32_t requests_ = 0;
  uint32_t responses_ = 0;
};

}  // namespace mtlsgw::forward::http
