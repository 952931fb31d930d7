#pragma once
// The client-to-origin direction of `forward: http`: an incremental parser of
// HTTP/1.1 requests (RFC 9112) that finds each request's head, checks it,
// and then follows its body to its end, so that requests pipelined over a
// kept-alive connection are each seen (and rewritten) in turn.
//
// Why our own parser and not Debian's libhttp-parser-dev 2.9.4
// (nodejs/http-parser): it was evaluated here, fed the smuggling cases of
// RFC 9112 11.2, and it accepted "Content-Length : 5" (whitespace before the
// colon, RFC 9112 5.1 MUST reject), obs-fold (5.2), bare-LF line endings
// (an origin that does not accept them frames differently), and chunk data
// not followed by CRLF ("5\r\nhelloXX0\r\n\r\n" parsed as one 5-byte
// body). It is unmaintained upstream (archived in 2022; its successor llhttp
// is not packaged in Debian 12), so those will not be fixed. Its callback
// API also hands out header fragments that we would have to reassemble to
// rewrite the head anyway, and it has no pkg-config file. The grammar we need
// is small; what a gateway needs is strictness, bounds and no allocation.
//
// Use (sans-I/O; the caller owns the bytes and the connection):
//   loop: step = parser.feed(data); data = data.subspan(step.consumed);
//     kNeedMore    all of data was taken into the head buffer; read more
//     kHead        a head is complete: head() until the next kMessageEnd;
//                  send the rewritten head upstream
//     kBody        step.consumed bytes of data are body: forward them as-is
//     kMessageEnd  likewise, and the request is complete (0 bytes for a
//                  request without body); the next feed starts the next head
//     kClosed      the request before said "close" (or was HTTP/1.0 without
//                  keep-alive): RFC 9112 9.6, no further requests are read
//     kError       error(): answer request_error_status() and close
// After kHead the next feed() may be called with no data.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_body.h"
#include "dataplane/forward/http_error.h"
#include "dataplane/forward/http_head.h"

namespace mtlsgw::forward::http {

enum class Event : uint8_t { kNeedMore, kHead, kBody, kMessageEnd, kClosed, kError };

struct Step {
  Event event = Event::kNeedMore;
  size_t consumed = 0;
};

// The largest number of field lines a parser can record; Limits choose less.
constexpr uint16_t kMaxFieldsCap = 256;

struct RequestLimits {
  // nginx's default large_client_header_buffers is 8 KiB per line; HAProxy's
  // default buffer is 16 KiB for the whole head. The head buffer given to the
  // parser bounds the head (at most 65535 bytes).
  uint32_t max_request_line = 8192;
  uint16_t max_fields = 100;  // HAProxy's tune.http.maxhdr is 101
  BodyLimits body;
};

enum class TargetForm : uint8_t { kOrigin, kAbsolute, kAsterisk };

struct RequestHead {
  std::string_view raw;           // request line through the final CRLF CRLF
  std::string_view request_line;  // without its CRLF
  std::string_view method;
  std::string_view target;
  uint8_t minor_version = 1;      // HTTP/1.x
  TargetForm form = TargetForm::kOrigin;
  std::string_view target_authority;  // absolute-form only: host[:port]
  bool is_head = false;               // method HEAD: its response has no body
  std::span<const FieldRef> fields;   // offsets into raw
  FieldSummary summary;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;       // the client may send another request after this one
  bool expect_continue = false; // RFC 9110 10.1.1, HTTP/1.1 only
  bool upgrade = false;         // Upgrade with Connection: upgrade (RFC 9110 7.8)

  std::string_view field_name(size_t i) const noexcept { return http::field_name(raw, fields[i]); }
  std::string_view field_value(size_t i) const noexcept { return http::field_value(raw, fields[i]); }
  std::string_view field_line(size_t i) const noexcept { return http::field_line(raw, fields[i]); }
};

class RequestParser {
 public:
  // head_buffer bounds the head (kHeadTooLarge beyond it; at most 65535
  // bytes are used) and holds it from kHead to kMessageEnd.
  RequestParser(std::span<char> head_buffer, const RequestLimits& limits = {}) noexcept;

  Step feed(std::span<const uint8_t> data) noexcept;

  const RequestHead& head() const noexcept { return head_; }
  Error error() const noexcept { return error_; }
  // Nothing of a request has been received since the last kMessageEnd.
  bool idle() const noexcept { return state_ == State::kHead && collector_.empty(); }
  // The origin answered 101 Switching Protocols: from now on every byte is
  // passed through as kBody.
  void enter_tunnel() noexcept { state_ = State::kTunnel; }
  BodyFramer& body_framer() noexcept { return body_; }

 private:
  enum class State : uint8_t { kHead, kHeadDone, kBody, kClosed, kTunnel, kError };

  Error parse_head() noexcept;
  Step fail(Error e, size_t consumed) noexcept;

  HeadCollector collector_;
  RequestLimits limits_;
  BodyFramer body_;
  std::array<FieldRef, kMaxFieldsCap> fields_{};
  RequestHead head_;
  State state_ = State::kHead;
  Error error_ = Error::kNone;
};

}  // namespace mtlsgw::forward::http
