#pragma once
// The responses the gateway itself sends on `forward: http`, when the request
// never reaches the origin (400, 414, 421, 431, 501, 505) or the origin fails
// it (502, 504). Each one ends the connection ("Connection: close", RFC 9112
// 9.6): after a framing error the next request's start cannot be known, and
// a 421 client retries on a new connection anyway (RFC 9110 15.5.20).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mtlsgw::forward::http {

// Enough for every status below with a Date field.
constexpr size_t kMaxCannedResponseLen = 256;

// RFC 9110 15 reason phrase; empty for a status we do not produce.
std::string_view canned_reason(uint16_t status) noexcept;

// Writes the whole response: status line, Date when now_epoch >= 0 (RFC 9110
// 6.6.1: a server with a clock sends it), a text/plain body naming the status,
// its Content-Length, and Connection: close. Returns the length, or 0 for a
// status we do not produce or a capacity below the response.
size_t write_canned_response(uint16_t status, int64_t now_epoch, char* out,
                             size_t capacity) noexcept;

}  // namespace mtlsgw::forward::http
