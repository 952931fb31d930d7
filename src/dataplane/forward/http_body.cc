#include "dataplane/forward/http_body.h"

#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

int hex_value(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9110 5.6.4: qdtext and the octets a quoted-pair may escape.
bool is_qdtext(uint8_t c) noexcept {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) ||
         (c >= 0x5D && c <= 0x7E) || c >= 0x80;
}
bool is_quoted_pair_char(uint8_t c) noexcept {
  return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7E) || c >= 0x80;
}

}  // namespace

void BodyFramer::start(Framing framing, uint64_t content_length) noexcept {
  framing_ = framing;
  remaining_ = 0;
  line_len_ = 0;
  trailer_bytes_ = 0;
  trailer_fields_ = 0;
  ws_pending_ = false;
  name_len_ = 0;
  switch (framing) {
    case Framing::kNone: state_ = State::kDone; break;
    case Framing::kContentLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::kDone : State::kLength;
      break;
    case Framing::kChunked: state_ = State::kSizeFirst; break;
    case Framing::kUntilClose: state_ = State::kUntilClose; break;
  }
}

bool BodyFramer::at_close() noexcept {
  if (state_ == State::kUntilClose) state_ = State::kDone;
  return state_ == State::kDone;
}

BodyFramer::Result BodyFramer::feed(const uint8_t* in, size_t len) noexcept {
  size_t i = 0;
  while (i < len) {
    switch (state_) {
      case State::kDone: return {i, true, Error::kNone};
      case State::kUntilClose: return {len, false, Error::kNone};
      case State::kLength:
      case State::kData: {
        const uint64_t left = len - i;
        const uint64_t take = remaining_ < left ? remaining_ : left;
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = state_ == State::kLength ? State::kDone : State::kDataCr;
        continue;
      }
      default: {
        const Error e = step_chunked(in[i]);
        if (e != Error::kNone) return {i, false, e};
        ++i;
      }
    }
  }
  return {i, state_ == State::kDone, Error::kNone};
}

Error BodyFramer::end_trailer_name() noexcept {
  if (++trailer_fields_ > limits_.max_trailer_fields) return Error::kTrailerTooLarge;
  if (name_len_ > kNameKeep) return Error::kNone;  // longer than any name we refuse
  const std::string_view name(name_, name_len_);
  for (std::string_view f : forbidden_) {
    if (iequals(name, f)) return Error::kForbiddenTrailer;
  }
  return Error::kNone;
}

// RFC 9112 7.1:
//   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   last-chunk = 1*("0") [ chunk-ext ] CRLF
//   chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
// and 7.1.2 for the trailer section, field lines as in the header section.
Error BodyFramer::step_chunked(uint8_t c) noexcept {
  if (state_ <= State::kSizeLf && state_ >= State::kSizeFirst) {
    if (++line_len_ > limits_.max_chunk_line) return Error::kChunkLineTooLong;
  } else if (state_ >= State::kTrailerLineStart) {
    if (++trailer_bytes_ > limits_.max_trailer_bytes) return Error::kTrailerTooLarge;
  }
  switch (state_) {
    case State::kSizeFirst: {
      const int v = hex_value(c);
      if (v < 0) return Error::kBadChunkSize;
      remaining_ = static_cast<uint64_t>(v);
      state_ = State::kSize;
      return Error::kNone;
    }
    case State::kSize: {
      const int v = hex_value(c);
      if (v >= 0) {
        if (remaining_ > (UINT64_MAX >> 4)) return Error::kBadChunkSize;
        remaining_ = remaining_ << 4 | static_cast<uint64_t>(v);
      } else if (c == ';') {
        state_ = State::kExtBeforeName;
      } else if (is_ows(c)) {
        state_ = State::kSizeBws;
      } else if (c == '\r') {
        state_ = State::kSizeLf;
      } else {
        return Error::kBadChunkSize;
      }
      return Error::kNone;
    }
    case State::kSizeBws:
      // BWS is allowed only as the start of a chunk-ext: "5 \r\n" is not.
      if (is_ows(c)) return Error::kNone;
      if (c != ';') return Error::kBadChunkSize;
      state_ = State::kExtBeforeName;
      return Error::kNone;
    case State::kExtBeforeName:
      if (is_ows(c)) return Error::kNone;
      if (!is_tchar(c)) return Error::kBadChunkExtension;
      state_ = State::kExtName;
      return Error::kNone;
    case State::kExtName:
      if (is_tchar(c)) return Error::kNone;
      if (c == '=') state_ = State::kExtBeforeValue;
      else if (c == ';') state_ = State::kExtBeforeName;
      else if (c == '\r') state_ = State::kSizeLf;
      else if (is_ows(c)) state_ = State::kExtAfterName;
      else return Error::kBadChunkExtension;
      return Error::kNone;
    case State::kExtAfterName:
      if (is_ows(c)) return Error::kNone;
      if (c == '=') state_ = State::kExtBeforeValue;
      else if (c == ';') state_ = State::kExtBeforeName;
      else return Error::kBadChunkExtension;
      return Error::kNone;
    case State::kExtBeforeValue:
      if (is_ows(c)) return Error::kNone;
      if (c == '"') state_ = State::kExtQuoted;
      else if (is_tchar(c)) state_ = State::kExtToken;
      else return Error::kBadChunkExtension;
      return Error::kNone;
    case State::kExtToken:
      if (is_tchar(c)) return Error::kNone;
      if (c == ';') state_ = State::kExtBeforeName;
      else if (c == '\r') state_ = State::kSizeLf;
      else if (is_ows(c)) {
        ws_pending_ = true;
        state_ = State::kExtAfterValue;
      } else {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kExtQuoted:
      if (c == '"') {
        ws_pending_ = false;
        state_ = State::kExtAfterValue;
      } else if (c == '\\') {
        state_ = State::kExtQuotedEscape;
      } else if (!is_qdtext(c)) {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kExtQuotedEscape:
      if (!is_quoted_pair_char(c)) return Error::kBadChunkExtension;
      state_ = State::kExtQuoted;
      return Error::kNone;
    case State::kExtAfterValue:
      if (is_ows(c)) {
        ws_pending_ = true;
        return Error::kNone;
      }
      if (c == ';') {
        ws_pending_ = false;
        state_ = State::kExtBeforeName;
        return Error::kNone;
      }
      if (c == '\r' && !ws_pending_) {
        state_ = State::kSizeLf;
        return Error::kNone;
      }
      return Error::kBadChunkExtension;
    case State::kSizeLf:
      if (c != '\n') return Error::kBadChunkSize;
      line_len_ = 0;
      state_ = remaining_ == 0 ? State::kTrailerLineStart : State::kData;
      return Error::kNone;
    case State::kDataCr:
      if (c != '\r') return Error::kMissingChunkCrlf;
      state_ = State::kDataLf;
      return Error::kNone;
    case State::kDataLf:
      if (c != '\n') return Error::kMissingChunkCrlf;
      state_ = State::kSizeFirst;
      return Error::kNone;
    case State::kTrailerLineStart:
      if (c == '\r') {
        state_ = State::kTrailerEndLf;
        return Error::kNone;
      }
      if (!is_tchar(c)) return Error::kBadTrailer;  // obs-fold included
      name_len_ = 1;
      name_[0] = static_cast<char>(c);
      state_ = State::kTrailerName;
      return Error::kNone;
    case State::kTrailerName:
      if (is_tchar(c)) {
        if (name_len_ < kNameKeep) name_[name_len_] = static_cast<char>(c);
        if (name_len_ <= kNameKeep) ++name_len_;
        return Error::kNone;
      }
      if (c != ':') return Error::kBadTrailer;  // whitespace before colon included
      state_ = State::kTrailerValue;
      return end_trailer_name();
    case State::kTrailerValue:
      if (c == '\r') state_ = State::kTrailerLf;
      else if (!is_field_value_char(c)) return Error::kBadTrailer;
      return Error::kNone;
    case State::kTrailerLf:
      if (c != '\n') return Error::kBadTrailer;
      state_ = State::kTrailerLineStart;
      return Error::kNone;
    case State::kTrailerEndLf:
      if (c != '\n') return Error::kBadTrailer;
      state_ = State::kDone;
      return Error::kNone;
    case State::kDone:
    case State::kLength:
    case State::kUntilClose:
    case State::kData:
      break;
  }
  return Error::kNone;
}

}  // namespace mtlsgw::forward::http
