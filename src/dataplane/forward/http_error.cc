#include "dataplane/forward/http_error.h"

namespace mtlsgw::forward::http {

std::string_view error_name(Error e) noexcept {
  switch (e) {
    case Error::kNone: return "none";
    case Error::kBareLf: return "bare_lf";
    case Error::kBareCr: return "bare_cr";
    case Error::kBadStartLine: return "bad_start_line";
    case Error::kBadMethod: return "bad_method";
    case Error::kBadTarget: return "bad_target";
    case Error::kUnsupportedVersion: return "unsupported_version";
    case Error::kStartLineTooLong: return "start_line_too_long";
    case Error::kHeadTooLarge: return "head_too_large";
    case Error::kTooManyFields: return "too_many_fields";
    case Error::kObsFold: return "obs_fold";
    case Error::kWhitespaceBeforeColon: return "whitespace_before_colon";
    case Error::kBadFieldName: return "bad_field_name";
    case Error::kBadFieldValue: return "bad_field_value";
    case Error::kMissingHost: return "missing_host";
    case Error::kDuplicateHost: return "duplicate_host";
    case Error::kBadHost: return "bad_host";
    case Error::kBadContentLength: return "bad_content_length";
    case Error::kConflictingContentLength: return "conflicting_content_length";
    case Error::kContentLengthWithTransferEncoding: return "content_length_with_transfer_encoding";
    case Error::kChunkedNotFinal: return "chunked_not_final";
    case Error::kChunkedTwice: return "chunked_twice";
    case Error::kUnknownTransferCoding: return "unknown_transfer_coding";
    case Error::kTransferEncodingInHttp10: return "transfer_encoding_in_http10";
    case Error::kBadChunkSize: return "bad_chunk_size";
    case Error::kChunkLineTooLong: return "chunk_line_too_long";
    case Error::kBadChunkExtension: return "bad_chunk_extension";
    case Error::kMissingChunkCrlf: return "missing_chunk_crlf";
    case Error::kBadTrailer: return "bad_trailer";
    case Error::kTrailerTooLarge: return "trailer_too_large";
    case Error::kForbiddenTrailer: return "forbidden_trailer";
    case Error::kConnectNotSupported: return "connect_not_supported";
    case Error::kBadStatus: return "bad_status";
    case Error::kUnsolicitedResponse: return "unsolicited_response";
  }
  return "unknown";
}

uint16_t request_error_status(Error e) noexcept {
  switch (e) {
    case Error::kNone: return 0;
    case Error::kStartLineTooLong: return 414;
    case Error::kHeadTooLarge:
    case Error::kTooManyFields:
    case Error::kTrailerTooLarge: return 431;
    case Error::kUnknownTransferCoding:
    case Error::kConnectNotSupported: return 501;
    case Error::kUnsupportedVersion: return 505;
    default: return 400;
  }
}

}  // namespace mtlsgw::forward::http
