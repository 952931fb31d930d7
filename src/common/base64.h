#pragma once
// Base64 with the standard alphabet and "=" padding (RFC 4648 section 4), the
// encoding RFC 8941 3.3.5 prescribes for structured-field byte sequences such
// as RFC 9440 Client-Cert. Encoding only: nothing in the gateway decodes it.

#include <cstddef>
#include <string_view>

namespace mtlsgw {

constexpr size_t base64_encoded_length(size_t input_len) noexcept {
  return (input_len + 2) / 3 * 4;
}

// Writes base64_encoded_length(in.size()) characters at out; returns that
// count, or 0 when out_capacity is smaller (nothing is written then) and
// in is not empty.
size_t base64_encode(std::string_view in, char* out, size_t out_capacity) noexcept;

}  // namespace mtlsgw
