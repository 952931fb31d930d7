#include "dataplane/forward/http_head.h"

#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {

HeadCollector::Scan HeadCollector::feed(const uint8_t* in, size_t len) noexcept {
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = in[i];
    if (prev_cr_) {
      if (c != '\n') return {i, false, Error::kBareCr};
      prev_cr_ = false;
      if (line_len_ == 0 && in_start_line_) {
        // RFC 9112 2.2: empty lines before the request-line are ignored (an
        // old client's CRLF after a POST body); they are not forwarded.
        size_ = 0;
        if (++leading_empty_ > kMaxLeadingEmptyLines) return {i + 1, false, Error::kBadStartLine};
        continue;
      }
      if (size_ == storage_.size()) return {i, false, Error::kHeadTooLarge};
      storage_[size_++] = static_cast<char>(c);
      if (line_len_ == 0) return {i + 1, true, Error::kNone};
      in_start_line_ = false;
      line_len_ = 0;
      continue;
    }
    if (c == '\n') return {i, false, Error::kBareLf};
    if (size_ == storage_.size()) {
      return {i, false, in_start_line_ ? Error::kStartLineTooLong : Error::kHeadTooLarge};
    }
    storage_[size_++] = static_cast<char>(c);
    if (c == '\r') {
      prev_cr_ = true;
      continue;
    }
    if (++line_len_ > max_start_line_ && in_start_line_) return {i, false, Error::kStartLineTooLong};
  }
  return {len, false, Error::kNone};
}

namespace {

bool is_known_transfer_coding(std::string_view coding) noexcept {
  // RFC 9110 18.6 / RFC 9112 7: the registered codings other than chunked.
  for (std::string_view known : {"gzip", "x-gzip", "deflate", "compress", "x-compress"}) {
    if (iequals(coding, known)) return true;
  }
  return false;
}

void summarize(std::string_view name, std::string_view value, FieldSummary& s) noexcept {
  std::string_view element;
  if (iequals(name, "host")) {
    ++s.host_count;
    s.host = value;
  } else if (iequals(name, "content-length")) {
    // RFC 9110 8.6: a list of identical values ("5, 5") may be taken as one;
    // differing values are a framing error (RFC 9112 6.3 rule 5).
    ListElements list(value);
    bool any = false;
    while (list.next(element)) {
      any = true;
      uint64_t n = 0;
      if (!parse_decimal(element, n)) {
        s.content_length_bad = true;
      } else if (s.content_length_values++ == 0) {
        s.content_length = n;
      } else if (n != s.content_length) {
        s.content_length_conflict = true;
      }
    }
    if (!any) s.content_length_bad = true;
    ++s.content_length_count;
  } else if (iequals(name, "transfer-encoding")) {
    ++s.transfer_encoding_count;
    ListElements list(value);
    while (list.next(element)) {
      ++s.transfer_codings;
      if (iequals(element, "chunked")) {
        ++s.chunked_count;
        s.chunked_last = true;
        continue;
      }
      s.chunked_last = false;
      // A coding with parameters, or one we do not know, cannot be framed
      // with certainty (RFC 9112 6.1: 501 for an unknown coding).
      if (!is_token(element) || !is_known_transfer_coding(element)) s.unknown_coding = true;
    }
    if (s.transfer_codings == 0) s.unknown_coding = true;
  } else if (iequals(name, "connection")) {
    ListElements list(value);
    while (list.next(element)) {
      if (iequals(element, "close")) s.connection_close = true;
      else if (iequals(element, "keep-alive")) s.connection_keep_alive = true;
      else if (iequals(element, "upgrade")) s.connection_upgrade = true;
    }
  } else if (iequals(name, "upgrade")) {
    s.has_upgrade = true;
  } else if (iequals(name, "expect")) {
    ListElements list(value);
    while (list.next(element)) {
      if (iequals(element, "100-continue")) s.expect_continue = true;
    }
  }
}

}  // namespace

Error parse_fields(std::string_view head, size_t fields_offset, std::span<FieldRef> out,
                   uint16_t& field_count, FieldSummary& summary) noexcept {
  field_count = 0;
  summary = FieldSummary{};
  size_t pos = fields_offset;
  while (true) {
    const size_t eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos) return Error::kBadFieldName;  // not a complete head
    if (eol == pos) return Error::kNone;
    const std::string_view line = head.substr(pos, eol - pos);
    if (is_ows(static_cast<uint8_t>(line.front()))) return Error::kObsFold;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Error::kBadFieldName;
    const std::string_view name = line.substr(0, colon);
    if (is_ows(static_cast<uint8_t>(name.back()))) return Error::kWhitespaceBeforeColon;
    if (!is_token(name)) return Error::kBadFieldName;
    const std::string_view raw_value = line.substr(colon + 1);
    for (char c : raw_value) {
      if (!is_field_value_char(static_cast<uint8_t>(c))) return Error::kBadFieldValue;
    }
    const std::string_view value = trim_ows(raw_value);
    if (field_count == out.size()) return Error::kTooManyFields;
    FieldRef& f = out[field_count++];
    f.line_offset = static_cast<uint16_t>(pos);
    f.line_length = static_cast<uint16_t>(eol + 2 - pos);
    f.name_length = static_cast<uint16_t>(name.size());
    f.value_offset = static_cast<uint16_t>(value.data() - head.data());
    f.value_length = static_cast<uint16_t>(value.size());
    summarize(name, value, summary);
    pos = eol + 2;
  }
}

}  // namespace mtlsgw::forward::http
