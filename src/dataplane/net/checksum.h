#pragma once
// The Internet checksum (RFC 1071) that IPv4, ICMP and TCP carry: summing,
// summing while copying, and updating a checksum in place (RFC 1624).
//
// Conventions, the same as DPDK's rte_raw_cksum so that the two agree bit
// for bit: the wire bytes are read as native 16-bit words and summed with
// end-around carry. A one's-complement sum commutes with byte swapping
// (RFC 1071 2(B)), so its complement goes into a packet with memcpy as it is.
// A "sum" below is that result folded to 16 bits and not complemented: 0 only
// for bytes that are all zero, 0xffff for a correct header or segment summed
// together with its checksum field.
//
// Why our own: DPDK's pkg-config flags build everything for -march=corei7
// (SSE4.2), where rte_raw_cksum takes about 890 instructions and 120 TSC
// cycles for a full 1480-byte TCP segment (docs/benchmarks.md), over a third
// of the cost of a received segment. checksum.cc carries variants for wider
// vector units and picks the best one the CPU has, once, at the first call.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace mtlsgw::net {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the odd-length and odd-offset rules below assume a little-endian host");

// Folds a 64-bit accumulation of 16-bit words (or of 32- or 64-bit words: each
// is the same value modulo 0xffff), or a one's-complement sum of 64-bit words,
// to 16 bits, end-around carries included.
constexpr uint16_t checksum_fold(uint64_t sum) noexcept {
  const uint32_t low = static_cast<uint32_t>(sum);
  uint32_t s = low + static_cast<uint32_t>(sum >> 32);
  s += s < low;  // the carry out of bit 31 comes back in at bit 0
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// The sum of a and b (two sums or a sum and a 16-bit word).
constexpr uint16_t checksum_add(uint16_t a, uint16_t b) noexcept {
  return checksum_fold(uint32_t{a} + b);
}

// A part summed on its own that lies at byte offset `offset` of the data it
// belongs to: at an odd offset its bytes sit in the other half of every word
// (RFC 1071 2(B)), so its sum is byte-swapped before it is added.
constexpr uint16_t checksum_at_offset(uint16_t part, size_t offset) noexcept {
  return (offset & 1) != 0 ? __builtin_bswap16(part) : part;
}

// RFC 1624 eqn. 3: the checksum field after a 16-bit word it covers changed
// from old_word to new_word, HC' = ~(~HC + ~m + m'). All three in the same
// byte order (wire order read natively, or all host order). It gives what
// a full recomputation gives; eqn. 2 can give 0xffff where that gives 0x0000
// (RFC 1624 3 and its example in 4).
constexpr uint16_t checksum_update16(uint16_t checksum_field, uint16_t old_word,
                                     uint16_t new_word) noexcept {
  return static_cast<uint16_t>(~checksum_fold(uint32_t{static_cast<uint16_t>(~checksum_field)} +
                                              static_cast<uint16_t>(~old_word) + new_word));
}

// The same for a 32-bit field (two words), e.g. a sequence number.
constexpr uint16_t checksum_update32(uint16_t checksum_field, uint32_t old_value,
                                     uint32_t new_value) noexcept {
  return static_cast<uint16_t>(~checksum_fold(
      uint64_t{static_cast<uint16_t>(~checksum_field)} +
      static_cast<uint16_t>(~(old_value >> 16)) + static_cast<uint16_t>(~old_value) +
      (new_value >> 16) + (new_value & 0xffff)));
}

namespace checksum_detail {

// One's-complement addition of 64-bit words: the carry out of bit 63 comes
// back in at bit 0 (2^64 is 1 modulo 0xffff); GCC makes it add + adc. It
// also keeps GCC from vectorising the short loops below, whose vector
// prologue and reduction cost more than the loop itself (perf/tcp_bench).
inline uint64_t add64(uint64_t acc, uint64_t word) noexcept {
  const uint64_t sum = acc + word;
  return sum + (sum < word);  // sum is at most 2^64 - 2 when it wrapped
}

// Adds len bytes to a one's-complement accumulator, 8 bytes at a time. For
// headers and other short data, where a call into a vector loop costs more
// than it saves.
inline uint64_t add_bytes(uint64_t acc, const uint8_t* p, size_t len) noexcept {
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    acc = add64(acc, w);
  }
  uint64_t rest = 0;  // at most 7 bytes: no carry to track
  if ((len & 4) != 0) {
    uint32_t w;
    std::memcpy(&w, p, sizeof w);
    rest += w;
    p += 4;
  }
  if ((len & 2) != 0) {
    uint16_t w;
    std::memcpy(&w, p, sizeof w);
    rest += w;
    p += 2;
  }
  // An odd last byte is the first of a word padded with zero (RFC 1071):
  // the low half of a native little-endian word.
  if ((len & 1) != 0) rest += *p;
  return add64(acc, rest);
}

// Below this many bytes checksum() stays inline (measured in perf/tcp_bench:
// the vector variants' set-up and reduction outweigh their loop).
constexpr size_t kInlineMax = 64;

uint16_t checksum_long(const void* data, size_t len) noexcept;

}  // namespace checksum_detail

// The sum of len bytes (any alignment, any length).
inline uint16_t checksum(const void* data, size_t len) noexcept {
  if (len <= checksum_detail::kInlineMax) {
    return checksum_fold(checksum_detail::add_bytes(0, static_cast<const uint8_t*>(data), len));
  }
  return checksum_detail::checksum_long(data, len);
}

// The sum of exactly 20 bytes (an IPv4 header without options).
inline uint16_t checksum20(const void* data) noexcept {
  return checksum_fold(checksum_detail::add_bytes(0, static_cast<const uint8_t*>(data), 20));
}

// Copies len bytes from src to dst (which must not overlap) and returns the
// sum of them, in one pass over the bytes (Linux's csum_partial_copy): the
// copy into or out of a connection's buffer and the checksum share their
// loads.
uint16_t checksum_copy(void* dst, const void* src, size_t len) noexcept;

// One implementation of both functions, for tests and benchmarks; the
// functions above use the best one the CPU supports.
struct ChecksumImpl {
  const char* name;
  uint16_t (*sum)(const void* data, size_t len) noexcept;
  uint16_t (*copy)(void* dst, const void* src, size_t len) noexcept;
};

// Every implementation this CPU can run, the portable ones first.
std::span<const ChecksumImpl> checksum_impls() noexcept;

// The one checksum() and checksum_copy() use: the widest listed, but for
// AVX-512 on cores whose clock drops with it (checksum.cc).
const ChecksumImpl& checksum_impl() noexcept;

}  // namespace mtlsgw::net
