#pragma once
// CRC32c (Castagnoli, reflected polynomial 0x82F63B78) as RFC 4960 (SCTP)
// Appendix B defines it: initial value all ones, final complement. The PROXY
// protocol v2 header checksum (PP2_TYPE_CRC32C) is this CRC. SSE4.2's CRC32
// instruction when the CPU has it (checked once at start), else a table.

#include <cstddef>
#include <cstdint>

namespace mtlsgw {

// Continues a CRC over data: pass the previous return value as crc, 0 to
// start. crc32c(a+b) == crc32c_extend(crc32c_extend(0, a), b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept;

// The table loop alone, whatever the CPU: for tests that compare the two.
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t len) noexcept;

inline uint32_t crc32c(const void* data, size_t len) noexcept {
  return crc32c_extend(0, data, len);
}

}  // namespace mtlsgw
