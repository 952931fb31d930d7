#pragma once
// TCP sequence-number arithmetic modulo 2^32 (RFC 9293 3.4, RFC 1982):
// a < b when b is less than 2^31 ahead of a. Every comparison of sequence or
// acknowledgment numbers in the stack goes through these.

#include <cstdint>

namespace mtlsgw::net::tcp {

constexpr bool seq_lt(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) < 0; }
constexpr bool seq_le(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) <= 0; }
constexpr bool seq_gt(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) > 0; }
constexpr bool seq_ge(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) >= 0; }
// lo <= x < hi, modulo 2^32.
constexpr bool seq_in(uint32_t x, uint32_t lo, uint32_t hi) noexcept {
  return x - lo < hi - lo;
}
constexpr uint32_t seq_max(uint32_t a, uint32_t b) noexcept { return seq_gt(a, b) ? a : b; }
constexpr uint32_t seq_min(uint32_t a, uint32_t b) noexcept { return seq_lt(a, b) ? a : b; }

}  // namespace mtlsgw::net::tcp
