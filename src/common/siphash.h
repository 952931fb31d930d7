#pragma once
// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
// INDOCRYPT 2012): a keyed 64-bit PRF that is fast on the 12-24 byte inputs
// the TCP stack hashes (four-tuples, cookie inputs) and, unlike unkeyed table
// hashes, safe to expose to an attacker who picks the inputs. RFC 6528 ISNs,
// RFC 6056 port offsets and RFC 4987 SYN cookies all need such a function.
//
// The hash is inline: it runs per SYN and per active open on the packet path,
// and with a constant length the compiler unrolls it. Only key generation,
// which makes a system call, lives in siphash.cc.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace mtlsgw {

// k0 holds key bytes 0..7 and k1 bytes 8..15, both read little-endian (the
// paper's convention), so the paper's key 00 01 .. 0f is
// {0x0706050403020100, 0x0f0e0d0c0b0a0908}.
struct SipKey {
  uint64_t k0;
  uint64_t k1;

  friend bool operator==(const SipKey&, const SipKey&) = default;
};

namespace siphash_detail {

inline uint64_t load_le64(const unsigned char* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

struct State {
  uint64_t v0, v1, v2, v3;

  // One SipRound (paper, section 2).
  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  void compress(uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

}  // namespace siphash_detail

inline uint64_t siphash24(const SipKey& key, const void* data, size_t len) noexcept {
  // Initialisation constants: "somepseudorandomlygeneratedbytes" (paper, 2).
  siphash_detail::State s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
                          key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const whole_end = p + (len & ~size_t{7});
  for (; p != whole_end; p += 8) s.compress(siphash_detail::load_le64(p));

  // The last block carries the remaining 0-7 bytes and the length mod 256 in
  // its top byte, so that messages differing only by trailing zeros differ.
  uint64_t last = static_cast<uint64_t>(len) << 56;
  switch (len & 7) {
    case 7: last |= static_cast<uint64_t>(p[6]) << 48; [[fallthrough]];
    case 6: last |= static_cast<uint64_t>(p[5]) << 40; [[fallthrough]];
    case 5: last |= static_cast<uint64_t>(p[4]) << 32; [[fallthrough]];
    case 4: last |= static_cast<uint64_t>(p[3]) << 24; [[fallthrough]];
    case 3: last |= static_cast<uint64_t>(p[2]) << 16; [[fallthrough]];
    case 2: last |= static_cast<uint64_t>(p[1]) << 8; [[fallthrough]];
    case 1: last |= static_cast<uint64_t>(p[0]); break;
    default: break;
  }
  s.compress(last);

  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// A key in the paper's byte order (see SipKey).
inline SipKey sip_key_from_bytes(const unsigned char (&bytes)[16]) noexcept {
  return SipKey{siphash_detail::load_le64(bytes), siphash_detail::load_le64(bytes + 8)};
}

// A subkey for one purpose, so that the ISN generator, the port selector and
// the SYN cookies stay independent PRFs even when the caller hands all three
// the same master key: an output of one then says nothing about another.
// Control path (constructors), but allocation-free.
inline SipKey derive_sip_key(const SipKey& master, std::string_view label) noexcept {
  // PRF(master, label || i) for i = 0, 1. Labels are short literals; the
  // buffer bounds them at 63 bytes, and a longer label is truncated, which
  // only matters if two callers share a 63-byte prefix.
  unsigned char buf[64];
  const size_t n = label.size() < sizeof buf - 1 ? label.size() : sizeof buf - 1;
  std::memcpy(buf, label.data(), n);
  buf[n] = 0;
  const uint64_t k0 = siphash24(master, buf, n + 1);
  buf[n] = 1;
  const uint64_t k1 = siphash24(master, buf, n + 1);
  return SipKey{k0, k1};
}

// 128 bits from getrandom(2), blocking until the kernel's pool is seeded.
// Control path only: throws std::runtime_error when the kernel refuses.
SipKey random_sip_key();

}  // namespace mtlsgw
