#include "dataplane/forward/http_response_parser.h"

#include <algorithm>

#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

constexpr size_t kMaxHeadBytes = 0xFFFF;

std::span<char> usable(std::span<char> buffer) noexcept {
  return buffer.first(std::min(buffer.size(), kMaxHeadBytes));
}

// A response's status line is bounded only by the head buffer: an origin is
// configured by the operator, and its long reason phrases are harmless.
uint32_t start_line_bound(std::span<char> buffer) noexcept {
  return static_cast<uint32_t>(usable(buffer).size());
}

bool is_reason_char(uint8_t c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7f); }

}  // namespace

ResponseParser::ResponseParser(std::span<char> head_buffer, const ResponseLimits& limits) noexcept
    : collector_(usable(head_buffer), start_line_bound(head_buffer)),
      limits_(limits),
      body_(limits.body) {
  limits_.max_fields = std::min(limits_.max_fields, kMaxFieldsCap);
}

bool ResponseParser::push_request(bool is_head) noexcept {
  if (pending_ == kMaxPending) return false;
  if (is_head) head_bits_ |= 1u << pending_;
  ++pending_;
  return true;
}

Step ResponseParser::fail(Error e, size_t consumed) noexcept {
  error_ = e;
  state_ = State::kError;
  return {Event::kError, consumed};
}

// RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
// A status line without the second SP is accepted: the reason is optional
// and some origins drop the space with it.
Error ResponseParser::parse_head() noexcept {
  ResponseHead& h = head_;
  h = ResponseHead{};
  h.raw = collector_.head();
  const size_t eol = h.raw.find("\r\n");
  h.status_line = h.raw.substr(0, eol);
  const std::string_view line = h.status_line;
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[6] != '.' || line[8] != ' ') {
    return Error::kBadStartLine;
  }
  if (line[5] != '1' || line[7] < '0' || line[7] > '9') return Error::kUnsupportedVersion;
  h.minor_version = line[7] == '0' ? 0 : 1;
  uint16_t status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return Error::kBadStatus;
    status = static_cast<uint16_t>(status * 10 + (line[i] - '0'));
  }
  if (status < 100 || status > 599) return Error::kBadStatus;  // RFC 9110 15
  if (line.size() > 12) {
    if (line[12] != ' ') return Error::kBadStatus;
    for (char c : line.substr(13)) {
      if (!is_reason_char(static_cast<uint8_t>(c))) return Error::kBadStartLine;
    }
  }
  h.status = status;

  uint16_t count = 0;
  const Error fe = parse_fields(h.raw, eol + 2, std::span(fields_).first(limits_.max_fields), count,
                                h.summary);
  if (fe != Error::kNone) return fe;
  h.fields = std::span<const FieldRef>(fields_.data(), count);
  const FieldSummary& s = h.summary;

  if (pending_ == 0) return Error::kUnsolicitedResponse;
  const bool request_was_head = (head_bits_ & 1u) != 0;

  h.keep_alive = !s.connection_close && (h.minor_version == 1 || s.connection_keep_alive);
  // RFC 9112 6.3, for responses.
  if (status < 200 || status == 204 || status == 304 || request_was_head) {
    h.interim = status < 200 && status != 101;  // rule 1: no body, whatever the fields say
    h.framing = Framing::kNone;
  } else if (s.transfer_encoding_count > 0) {
    if (s.content_length_count > 0) return Error::kContentLengthWithTransferEncoding;  // rule 3
    if (s.chunked_count > 1) return Error::kChunkedTwice;
    // Rule 4: without chunked last, the body runs to the close.
    h.framing = s.chunked_last ? Framing::kChunked : Framing::kUntilClose;
  } else if (s.content_length_count > 0) {
    if (s.content_length_bad) return Error::kBadContentLength;  // rule 5: 502
    if (s.content_length_conflict) return Error::kConflictingContentLength;
    h.framing = Framing::kContentLength;
    h.content_length = s.content_length;
  } else {
    h.framing = Framing::kUntilClose;  // rule 8
  }
  if (h.framing == Framing::kUntilClose) h.keep_alive = false;
  return Error::kNone;
}

Step ResponseParser::end_message(size_t consumed) noexcept {
  collector_.reset();
  if (head_.interim) {
    state_ = State::kHead;  // the same request still waits for its final response
    return {Event::kMessageEnd, consumed};
  }
  head_bits_ >>= 1;
  --pending_;
  if (head_.status == 101) state_ = State::kTunnel;
  else state_ = head_.keep_alive ? State::kHead : State::kClosed;
  return {Event::kMessageEnd, consumed};
}

Step ResponseParser::feed(std::span<const uint8_t> data) noexcept {
  switch (state_) {
    case State::kError: return {Event::kError, 0};
    case State::kClosed: return {Event::kClosed, 0};
    case State::kTunnel:
      return {data.empty() ? Event::kNeedMore : Event::kBody, data.size()};
    case State::kHead: {
      if (data.empty()) return {Event::kNeedMore, 0};
      const HeadCollector::Scan scan = collector_.feed(data.data(), data.size());
      if (scan.error != Error::kNone) return fail(scan.error, scan.consumed);
      if (!scan.complete) return {Event::kNeedMore, scan.consumed};
      const Error e = parse_head();
      if (e != Error::kNone) return fail(e, scan.consumed);
      state_ = State::kHeadDone;
      return {Event::kHead, scan.consumed};
    }
    case State::kHeadDone:
      body_.start(head_.framing, head_.content_length);
      state_ = State::kBody;
      [[fallthrough]];
    case State::kBody: {
      const BodyFramer::Result r = body_.feed(data.data(), data.size());
      if (r.error != Error::kNone) return fail(r.error, r.consumed);
      if (!r.done) return {r.consumed == 0 ? Event::kNeedMore : Event::kBody, r.consumed};
      return end_message(r.consumed);
    }
  }
  return {Event::kError, 0};
}

bool ResponseParser::at_close() noexcept {
  switch (state_) {
    case State::kHead: return collector_.empty();
    case State::kClosed:
    case State::kTunnel: return true;
    case State::kHeadDone:
      body_.start(head_.framing, head_.content_length);
      state_ = State::kBody;
      [[fallthrough]];
    case State::kBody:
      if (!body_.at_close()) return false;
      end_message(0);
      return true;
    case State::kError: return false;
  }
  return false;
}

}  // namespace mtlsgw::forward::http
