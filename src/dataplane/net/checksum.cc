#include "dataplane/net/checksum.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>

namespace mtlsgw::net {
namespace {

using checksum_detail::add_bytes;

// --- portable: 64-bit add-with-carry --------------------------------------
// One adc per 8 bytes, four per iteration; the carry chain through the flag
// register bounds it at about 8 bytes per cycle.

template <bool kCopy>
uint16_t scalar_pass(uint8_t* dst, const uint8_t* src, size_t len) noexcept {
  unsigned long long acc = 0;
  unsigned char carry = 0;
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    unsigned long long w[4];
    std::memcpy(w, src + i, sizeof w);
    if constexpr (kCopy) std::memcpy(dst + i, w, sizeof w);
    carry = _addcarry_u64(carry, acc, w[0], &acc);
    carry = _addcarry_u64(carry, acc, w[1], &acc);
    carry = _addcarry_u64(carry, acc, w[2], &acc);
    carry = _addcarry_u64(carry, acc, w[3], &acc);
  }
  // The last carry, end-around: acc + 1 cannot carry again unless acc wraps
  // to 0, and then the second add is the one that brings the 1 back.
  carry = _addcarry_u64(carry, acc, 0, &acc);
  acc += carry;
  if constexpr (kCopy) std::memcpy(dst + i, src + i, len - i);
  return checksum_add(checksum_fold(acc), checksum_fold(add_bytes(0, src + i, len - i)));
}

// --- vector: 16-bit words through a signed multiply-add -------------------
// x ^ 0x8000 read as a signed 16-bit number is exactly x - 32768, so pmaddwd
// against ones adds two words into a 32-bit lane with no carry to keep:
// three operations per vector (xor, madd, add) where widening the words to
// 32 bits takes four. The bias, 32768 per word, is added back per block.
// A lane grows by at most 65536 per vector, so blocks of 64 KiB keep every
// lane far inside 32 bits whatever the vector width.

constexpr size_t kBlock = 64 * 1024;
constexpr int64_t kBiasPerByte = 32768 / 2;

template <typename Lanes>
int64_t lane_total(const Lanes& lanes) noexcept {
  int64_t total = 0;
  for (const int32_t lane : lanes) total += lane;
  return total;
}

template <bool kCopy>
uint16_t sse2_pass(uint8_t* dst, const uint8_t* src, size_t len) noexcept {
  const __m128i bias = _mm_set1_epi16(INT16_MIN);
  const __m128i ones = _mm_set1_epi16(1);
  uint64_t sum = 0;
  size_t i = 0;
  while (len - i >= 16) {
    const size_t block_end = i + (std::min(len - i, kBlock) & ~size_t{15});
    __m128i a0 = _mm_setzero_si128();
    __m128i a1 = _mm_setzero_si128();
    const size_t block_start = i;
    for (; i + 32 <= block_end; i += 32) {
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
      if constexpr (kCopy) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), v1);
      }
      a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_xor_si128(v0, bias), ones));
      a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_xor_si128(v1, bias), ones));
    }
    if (i != block_end) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      if constexpr (kCopy) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v);
      a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_xor_si128(v, bias), ones));
      i += 16;
    }
    alignas(16) int32_t lanes[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), _mm_add_epi32(a0, a1));
    sum += static_cast<uint64_t>(lane_total(lanes) +
                                 kBiasPerByte * static_cast<int64_t>(block_end - block_start));
  }
  if constexpr (kCopy) std::memcpy(dst + i, src + i, len - i);
  return checksum_fold(add_bytes(sum, src + i, len - i));
}

template <bool kCopy>
[[gnu::target("avx2")]] uint16_t avx2_pass(uint8_t* dst, const uint8_t* src, size_t len) noexcept {
  const __m256i bias = _mm256_set1_epi16(INT16_MIN);
  const __m256i ones = _mm256_set1_epi16(1);
  uint64_t sum = 0;
  size_t i = 0;
  while (len - i >= 32) {
    const size_t block_end = i + (std::min(len - i, kBlock) & ~size_t{31});
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = _mm256_setzero_si256();
    const size_t block_start = i;
    for (; i + 64 <= block_end; i += 64) {
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
      if constexpr (kCopy) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), v0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 32), v1);
      }
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_xor_si256(v0, bias), ones));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_xor_si256(v1, bias), ones));
    }
    if (i != block_end) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
      if constexpr (kCopy) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), v);
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_xor_si256(v, bias), ones));
      i += 32;
    }
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi32(a0, a1));
    sum += static_cast<uint64_t>(lane_total(lanes) +
                                 kBiasPerByte * static_cast<int64_t>(block_end - block_start));
  }
  if constexpr (kCopy) std::memcpy(dst + i, src + i, len - i);
  return checksum_fold(add_bytes(sum, src + i, len - i));
}

// AVX-512BW: masked loads and stores take the tail too (the bytes past len
// are neither read nor written), so there is no scalar remainder. Twice as
// fast as AVX2 here (AMD family 0x1a, perf/tcp_bench). On Intel Skylake-SP
// and Cascade Lake, 512-bit multiplies lower the core's clock for a while,
// which would cost more than this saves: best_impl() takes it only where
// AVX512-VBMI2 shows a later core (Ice Lake, AMD Zen 4 and after).
template <bool kCopy>
[[gnu::target("avx512bw")]] uint16_t avx512_pass(uint8_t* dst, const uint8_t* src,
                                                 size_t len) noexcept {
  const __m512i bias = _mm512_set1_epi16(INT16_MIN);
  const __m512i ones = _mm512_set1_epi16(1);
  uint64_t sum = 0;
  size_t i = 0;
  while (i < len) {
    const size_t block_end = i + std::min(len - i, kBlock);
    __m512i a0 = _mm512_setzero_si512();
    __m512i a1 = _mm512_setzero_si512();
    const size_t block_start = i;
    for (; i + 128 <= block_end; i += 128) {
      const __m512i v0 = _mm512_loadu_si512(src + i);
      const __m512i v1 = _mm512_loadu_si512(src + i + 64);
      if constexpr (kCopy) {
        _mm512_storeu_si512(dst + i, v0);
        _mm512_storeu_si512(dst + i + 64, v1);
      }
      a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_xor_si512(v0, bias), ones));
      a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(_mm512_xor_si512(v1, bias), ones));
    }
    size_t loaded = i - block_start;
    for (; i < block_end; i += 64) {
      const size_t n = std::min<size_t>(block_end - i, 64);
      const __mmask64 mask = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
      // Masked-off bytes load as zero: whole zero words, or the zero high
      // half that RFC 1071 pads an odd last byte with.
      const __m512i v = _mm512_maskz_loadu_epi8(mask, src + i);
      if constexpr (kCopy) _mm512_mask_storeu_epi8(dst + i, mask, v);
      a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_xor_si512(v, bias), ones));
      loaded += 64;  // the zero words were biased too
    }
    alignas(64) int32_t lanes[16];
    _mm512_store_si512(lanes, _mm512_add_epi32(a0, a1));
    sum += static_cast<uint64_t>(lane_total(lanes) + kBiasPerByte * static_cast<int64_t>(loaded));
  }
  return checksum_fold(sum);
}

uint16_t scalar_sum(const void* data, size_t len) noexcept {
  return scalar_pass<false>(nullptr, static_cast<const uint8_t*>(data), len);
}
uint16_t scalar_copy(void* dst, const void* src, size_t len) noexcept {
  return scalar_pass<true>(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), len);
}
uint16_t sse2_sum(const void* data, size_t len) noexcept {
  return sse2_pass<false>(nullptr, static_cast<const uint8_t*>(data), len);
}
uint16_t sse2_copy(void* dst, const void* src, size_t len) noexcept {
  return sse2_pass<true>(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), len);
}
[[gnu::target("avx2")]] uint16_t avx2_sum(const void* data, size_t len) noexcept {
  return avx2_pass<false>(nullptr, static_cast<const uint8_t*>(data), len);
}
[[gnu::target("avx2")]] uint16_t avx2_copy(void* dst, const void* src, size_t len) noexcept {
  return avx2_pass<true>(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), len);
}
[[gnu::target("avx512bw")]] uint16_t avx512_sum(const void* data, size_t len) noexcept {
  return avx512_pass<false>(nullptr, static_cast<const uint8_t*>(data), len);
}
[[gnu::target("avx512bw")]] uint16_t avx512_copy(void* dst, const void* src, size_t len) noexcept {
  return avx512_pass<true>(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), len);
}

// Portable first, widest last; constant-initialised, so usable before any
// static constructor has run.
constexpr ChecksumImpl kImpls[] = {
    {"scalar", scalar_sum, scalar_copy},
    {"sse2", sse2_sum, sse2_copy},
    {"avx2", avx2_sum, avx2_copy},
    {"avx512bw", avx512_sum, avx512_copy},
};

// How many of kImpls this CPU runs. __builtin_cpu_supports also checks that
// the OS saves the wider registers (XCR0), not only that the CPU has them;
// it reads what __builtin_cpu_init found, with no lock and no system call.
size_t supported_count() noexcept {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) return 2;
  return __builtin_cpu_supports("avx512bw") ? 4 : 3;
}

const ChecksumImpl& best_impl() noexcept {
  size_t n = supported_count();
  if (n == 4 && !__builtin_cpu_supports("avx512vbmi2")) n = 3;
  return kImpls[n - 1];
}

// Chosen at the first call, by whichever worker makes it (they all store the
// same value), rather than by a static initialiser that another one could
// precede.
std::atomic<const ChecksumImpl*> g_active{nullptr};

}  // namespace

std::span<const ChecksumImpl> checksum_impls() noexcept { return {kImpls, supported_count()}; }

const ChecksumImpl& checksum_impl() noexcept {
  const ChecksumImpl* impl = g_active.load(std::memory_order_relaxed);
  if (impl == nullptr) [[unlikely]] {
    impl = &best_impl();
    g_active.store(impl, std::memory_order_relaxed);
  }
  return *impl;
}

namespace checksum_detail {

uint16_t checksum_long(const void* data, size_t len) noexcept {
  return checksum_impl().sum(data, len);
}

}  // namespace checksum_detail

uint16_t checksum_copy(void* dst, const void* src, size_t len) noexcept {
  return checksum_impl().copy(dst, src, len);
}

}  // namespace mtlsgw::net
