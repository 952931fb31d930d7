#pragma once
// TLS 1.3 traffic keys from traffic secrets (RFC 8446 7.1-7.3), for our own
// record protection (record_protection.h) once OpenSSL has finished the
// handshake. Only the AES-GCM suites: ChaCha20-Poly1305 connections stay on
// OpenSSL's record layer.
//
// This runs once per direction at switch-over and once per KeyUpdate, not per
// record, so it may use OpenSSL's EVP_KDF (which allocates a context per
// call).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mtlsgw::tls {

enum class RecordCipher : uint8_t {
  aes_128_gcm_sha256,  // TLS_AES_128_GCM_SHA256 {0x13, 0x01}
  aes_256_gcm_sha384,  // TLS_AES_256_GCM_SHA384 {0x13, 0x02}
};

// The suite for an IANA cipher suite number (SSL_CIPHER_get_protocol_id), or
// nothing for a suite we leave to OpenSSL.
std::optional<RecordCipher> record_cipher_from_suite(uint16_t suite) noexcept;

// Hash.length of the suite's hash: the length of its traffic secrets.
constexpr size_t secret_length(RecordCipher cipher) noexcept {
  return cipher == RecordCipher::aes_128_gcm_sha256 ? 32 : 48;
}
constexpr size_t key_length(RecordCipher cipher) noexcept {
  return cipher == RecordCipher::aes_128_gcm_sha256 ? 16 : 32;
}
// Both AES-GCM suites use a 96-bit per-record nonce (RFC 8446 5.3, RFC 5116).
inline constexpr size_t kRecordIvLength = 12;

struct TrafficSecret {
  std::array<uint8_t, 48> bytes{};
  uint8_t length = 0;  // secret_length(cipher)
};

struct TrafficKeys {
  std::array<uint8_t, 32> key{};
  uint8_t key_length = 0;
  std::array<uint8_t, kRecordIvLength> iv{};
};

// Overwrites key material before the memory is reused.
void wipe(TrafficSecret& secret) noexcept;
void wipe(TrafficKeys& keys) noexcept;

// HKDF-Expand-Label(secret, label, context, length) of RFC 8446 7.1 with the
// suite's hash; `label` without the "tls13 " prefix. False when OpenSSL fails
// or length exceeds what one label can ask for (255).
bool hkdf_expand_label(RecordCipher cipher, const uint8_t* secret, size_t secret_len, std::string_view label,
                       const uint8_t* context, size_t context_len, uint8_t* out, size_t length) noexcept;

// [sender]_write_key and [sender]_write_iv of RFC 8446 7.3.
bool derive_traffic_keys(RecordCipher cipher, const TrafficSecret& secret, TrafficKeys& keys) noexcept;

// application_traffic_secret_N+1 of RFC 8446 7.2 ("traffic upd"), the
// secret after a KeyUpdate (4.6.3).
bool next_traffic_secret(RecordCipher cipher, const TrafficSecret& current, TrafficSecret& next) noexcept;

}  // namespace mtlsgw::tls
