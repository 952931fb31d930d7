#pragma once
// The part of an HTTP/1.1 message head that requests and responses share
// (RFC 9112 2, 5): collecting the head's bytes until the empty line, with
// strict line endings, and parsing its field lines into references plus a
// summary of the fields that decide framing and routing.
//
// Strictness is the point. The gateway forwards the client's head bytes
// (minus identity fields) to the origin, so any byte sequence that the
// gateway and the origin could frame differently is a request-smuggling
// vector (RFC 9112 11.2). The head is therefore refused, not repaired, on:
// a bare LF or bare CR (2.2), whitespace between a field name and its colon
// (5.1), obs-fold (5.2), and any CTL other than HTAB in a value (RFC 9110 5.5).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_error.h"

namespace mtlsgw::forward::http {

// Offsets into the head, which is at most 64 KiB (the Limits below cap it).
struct FieldRef {
  uint16_t line_offset = 0;   // first byte of the field name
  uint16_t line_length = 0;   // through the CRLF
  uint16_t name_length = 0;
  uint16_t value_offset = 0;  // OWS trimmed (RFC 9112 5.1)
  uint16_t value_length = 0;
};

enum class Framing : uint8_t {
  kNone,          // no body
  kContentLength,
  kChunked,
  kUntilClose,    // responses only (RFC 9112 6.3 rule 8)
};

// What the fields say about framing, routing and the connection.
struct FieldSummary {
  uint16_t host_count = 0;
  std::string_view host;  // the (last) Host value

  uint16_t content_length_count = 0;  // field lines
  uint16_t content_length_values = 0; // valid list elements, over all lines
  bool content_length_bad = false;    // an element that is not 1*DIGIT
  bool content_length_conflict = false;  // elements with different values
  uint64_t content_length = 0;

  uint16_t transfer_encoding_count = 0;  // field lines
  uint16_t transfer_codings = 0;         // list elements, over all lines
  uint16_t chunked_count = 0;
  bool chunked_last = false;
  bool unknown_coding = false;

  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  bool has_upgrade = false;
  bool expect_continue = false;
};

// Collects a head's bytes into caller storage until its final empty line.
class HeadCollector {
 public:
  struct Scan {
    size_t consumed = 0;
    bool complete = false;
    Error error = Error::kNone;
  };

  // storage.size() bounds the head; max_start_line bounds the first line
  // (kStartLineTooLong beyond it, kHeadTooLarge beyond storage). Empty lines
  // before the start line are skipped (RFC 9112 2.2), at most
  // kMaxLeadingEmptyLines of them.
  HeadCollector(std::span<char> storage, uint32_t max_start_line) noexcept
      : storage_(storage), max_start_line_(max_start_line) {}

  static constexpr uint8_t kMaxLeadingEmptyLines = 4;

  // Takes bytes until the head is complete or an error; the bytes after a
  // complete head are not consumed.
  Scan feed(const uint8_t* in, size_t len) noexcept;

  // The complete head: start line through the final CRLF CRLF.
  std::string_view head() const noexcept { return {storage_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0 && leading_empty_ == 0 && !prev_cr_; }
  void reset() noexcept {
    size_ = 0;
    line_len_ = 0;
    leading_empty_ = 0;
    prev_cr_ = false;
    in_start_line_ = true;
  }

 private:
  std::span<char> storage_;
  uint32_t max_start_line_;
  size_t size_ = 0;
  uint32_t line_len_ = 0;
  uint8_t leading_empty_ = 0;
  bool prev_cr_ = false;
  bool in_start_line_ = true;
};

// Parses the field lines of head, which starts at fields_offset (just after
// the start line's CRLF) and ends with the empty line. At most out.size()
// fields (kTooManyFields beyond).
Error parse_fields(std::string_view head, size_t fields_offset, std::span<FieldRef> out,
                   uint16_t& field_count, FieldSummary& summary) noexcept;

inline std::string_view field_name(std::string_view head, const FieldRef& f) noexcept {
  return head.substr(f.line_offset, f.name_length);
}
inline std::string_view field_value(std::string_view head, const FieldRef& f) noexcept {
  return head.substr(f.value_offset, f.value_length);
}
inline std::string_view field_line(std::string_view head, const FieldRef& f) noexcept {
  return head.substr(f.line_offset, f.line_length);
}

}  // namespace mtlsgw::forward::http
