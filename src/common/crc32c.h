#pragma once
// CRC32c (Castagnoli, reflected polynomial 0x82F63B78) as RFC 4960 (SCTP)
// Appendix B defines it: initial value all ones, final complement. The PROXY
// protocol v2 header checksum (PP2_TYPE_CRC32C) is this CRC. A table-driven
// byte loop: the headers it covers are a few hundred bytes to a few KiB, once
// per upstream connection.

#include <cstddef>
#include <cstdint>

namespace mtlsgw {

// Continues a CRC over data: pass the previous return value as crc, 0 to
// start. crc32c(a+b) == crc32c_extend(crc32c_extend(0, a), b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept;

inline uint32_t crc32c(const void* data, size_t len) noexcept {
  return crc32c_extend(0, data, len);
}

}  // namespace mtlsgw
