#pragma once
// Where an HTTP/1.1 message body ends (RFC 9112 6.3, 7.1), found while the
// body streams through unchanged. The gateway never de-chunks: the origin
// receives the client's chunk framing byte for byte, so the only thing that
// matters is that the gateway and the origin agree on the end. Hence the
// chunked grammar is applied strictly, including the CRLF after each
// chunk's data (a parser that skips it, as nodejs/http-parser 2.9.4 does,
// lets "5\r\nhelloXX0\r\n\r\n" mean one thing here and another there).
//
// Nothing is buffered: chunk data is skipped in bulk; chunk-size lines and
// trailer lines are checked byte by byte, with bounds on their length, since
// a client could otherwise keep one open forever.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_error.h"
#include "dataplane/forward/http_head.h"

namespace mtlsgw::forward::http {

struct BodyLimits {
  uint32_t max_chunk_line = 4096;      // chunk-size, extensions and CRLF
  uint32_t max_trailer_bytes = 16384;  // the whole trailer section
  uint16_t max_trailer_fields = 64;
};

class BodyFramer {
 public:
  struct Result {
    size_t consumed = 0;  // body bytes (framing included), to forward as they are
    bool done = false;    // the body ended within them
    Error error = Error::kNone;
  };

  explicit BodyFramer(const BodyLimits& limits = {}) noexcept : limits_(limits) {}

  // Trailer fields with these names (case-insensitive) are refused with
  // kForbiddenTrailer: a client must not smuggle identity fields past the
  // rewriter in a trailer that an origin merges into the header section
  // (RFC 9110 6.5.2 forbids the merge, but not every origin obeys).
  void set_forbidden_trailer_names(std::span<const std::string_view> names) noexcept {
    forbidden_ = names;
  }

  void start(Framing framing, uint64_t content_length = 0) noexcept;
  Framing framing() const noexcept { return framing_; }

  // Consumes body bytes from in. Stops at the body's end (the bytes after it
  // belong to the next message) or at the first error.
  Result feed(const uint8_t* in, size_t len) noexcept;

  // The body is complete (kUntilClose: becomes complete when the peer
  // closes, which the caller tells through at_close()).
  bool done() const noexcept { return state_ == State::kDone; }
  // The peer closed: true when that ends the body rather than truncating it.
  bool at_close() noexcept;

 private:
  enum class State : uint8_t {
    kDone,
    kLength,
    kUntilClose,
    kSizeFirst,       // first hex digit of chunk-size
    kSize,
    kSizeBws,         // BWS after chunk-size, before ";"
    kExtBeforeName,   // BWS after ";"
    kExtName,
    kExtAfterName,    // BWS, then "=", ";" or CR
    kExtBeforeValue,  // BWS after "="
    kExtToken,
    kExtQuoted,
    kExtQuotedEscape,
    kExtAfterValue,   // BWS, then ";" or CR
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kTrailerEndLf,
  };

  Error step_chunked(uint8_t c) noexcept;
  Error end_trailer_name() noexcept;

  BodyLimits limits_;
  std::span<const std::string_view> forbidden_;
  Framing framing_ = Framing::kNone;
  State state_ = State::kDone;
  uint64_t remaining_ = 0;  // content-length left, or chunk-data left
  uint32_t line_len_ = 0;   // bytes of the current chunk-size line
  uint32_t trailer_bytes_ = 0;
  uint16_t trailer_fields_ = 0;
  bool ws_pending_ = false;  // BWS seen that must be followed by ";"
  // The current trailer field name, enough of it to compare with forbidden_.
  static constexpr size_t kNameKeep = 64;
  char name_[kNameKeep] = {};
  uint16_t name_len_ = 0;
};

}  // namespace mtlsgw::forward::http
