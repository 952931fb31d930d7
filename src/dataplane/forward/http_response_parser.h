#pragma once
// The origin-to-client direction of `forward: http`: where each response
// ends (RFC 9112 6.3), so that the connection can be kept alive after it, a
// request that got no response can be told apart from one that got a
// truncated one (502 vs a clean close), and interim responses are passed
// without being taken for the final one.
//
// Responses answer requests in order (RFC 9112 9.3.2). The relay tells the
// parser about each request it forwards (push_request) because a response's
// framing depends on its request: a response to HEAD has no body whatever
// its fields say (6.3 rule 1).
//
// Same events as RequestParser (see there). In addition, after a 101
// Switching Protocols every byte is kBody (tunnel()), and a close-delimited
// body ends when the caller reports the origin's FIN through at_close().

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_body.h"
#include "dataplane/forward/http_error.h"
#include "dataplane/forward/http_head.h"
#include "dataplane/forward/http_request_parser.h"

namespace mtlsgw::forward::http {

struct ResponseLimits {
  uint16_t max_fields = 100;
  BodyLimits body;
};

struct ResponseHead {
  std::string_view raw;          // status line through the final CRLF CRLF
  std::string_view status_line;  // without its CRLF
  uint16_t status = 0;
  uint8_t minor_version = 1;
  bool interim = false;          // 1xx other than 101: the final response is still to come
  std::span<const FieldRef> fields;
  FieldSummary summary;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // the origin keeps the connection after this response
};

class ResponseParser {
 public:
  // Pipelined requests tracked at once; the relay stops reading requests
  // from the client while push_request() refuses.
  static constexpr unsigned kMaxPending = 32;

  ResponseParser(std::span<char> head_buffer, const ResponseLimits& limits = {}) noexcept;

  // A request was forwarded; false (and nothing recorded) when kMaxPending
  // are already outstanding.
  bool push_request(bool is_head) noexcept;
  unsigned pending() const noexcept { return pending_; }

  Step feed(std::span<const uint8_t> data) noexcept;

  // The origin closed its side. Returns true when that is a clean end: between
  // responses, or the end of a close-delimited body. False: a response was cut
  // short (the relay then cannot answer the client with a 502 if it already
  // sent part of that response, and resets it instead).
  bool at_close() noexcept;

  const ResponseHead& head() const noexcept { return head_; }
  Error error() const noexcept { return error_; }
  bool idle() const noexcept { return state_ == State::kHead && collector_.empty(); }
  bool tunnel() const noexcept { return state_ == State::kTunnel; }

 private:
  enum class State : uint8_t { kHead, kHeadDone, kBody, kClosed, kTunnel, kError };

  Error parse_head() noexcept;
  Step fail(Error e, size_t consumed) noexcept;
  Step end_message(size_t consumed) noexcept;

  HeadCollector collector_;
  ResponseLimits limits_;
  BodyFramer body_;
  std::array<FieldRef, kMaxFieldsCap> fields_{};
  ResponseHead head_;
  State state_ = State::kHead;
  Error error_ = Error::kNone;
  uint32_t head_bits_ = 0;  // bit i: the i-th oldest pending request is HEAD
  unsigned pending_ = 0;
};

}  // namespace mtlsgw::forward::http
