#pragma once
// A TLS 1.3 record sealed with OpenSSL's EVP AES-GCM instead of IPsec-MB,
// for records our seal() refuses to make (padding, oversized inner
// plaintext, any sequence number): an independent second implementation.

#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "dataplane/tls/record_keys.h"

namespace mtlsgw::tls::testing {

inline std::vector<uint8_t> reference_seal(RecordCipher cipher, const TrafficSecret& secret, uint64_t sequence,
                                           const std::vector<uint8_t>& inner_plaintext) {
  TrafficKeys keys;
  if (!derive_traffic_keys(cipher, secret, keys)) return {};
  uint8_t nonce[kRecordIvLength];
  for (size_t i = 0; i < kRecordIvLength; ++i) nonce[i] = keys.iv[i];
  for (size_t i = 0; i < 8; ++i) nonce[kRecordIvLength - 1 - i] ^= static_cast<uint8_t>(sequence >> (8 * i));
  const size_t body = inner_plaintext.size() + 16;
  // Sized first, then the header written: GCC 12 at -O3 (scripts/setup's
  // release build) reports a false array-bounds error for an initializer
  // list followed by resize().
  std::vector<uint8_t> record(5 + body);
  record[0] = 0x17;
  record[1] = 0x03;
  record[2] = 0x03;
  record[3] = static_cast<uint8_t>(body >> 8);
  record[4] = static_cast<uint8_t>(body);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  const bool ok =
      EVP_EncryptInit_ex(ctx, cipher == RecordCipher::aes_128_gcm_sha256 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(),
                         nullptr, keys.key.data(), nonce) == 1 &&
      EVP_EncryptUpdate(ctx, nullptr, &n, record.data(), 5) == 1 &&
      EVP_EncryptUpdate(ctx, record.data() + 5, &n, inner_plaintext.data(),
                        static_cast<int>(inner_plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx, record.data() + 5 + n, &n) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, record.data() + 5 + inner_plaintext.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok ? record : std::vector<uint8_t>{};
}

}  // namespace mtlsgw::tls::testing
