#include "dataplane/tls/record_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>

namespace mtlsgw::tls {

namespace {

constexpr std::string_view kLabelPrefix = "tls13 ";

const char* digest_name(RecordCipher cipher) noexcept {
  return cipher == RecordCipher::aes_128_gcm_sha256 ? "SHA256" : "SHA384";
}

// The HKDF implementation, fetched once per process: EVP_KDF objects are
// immutable and may be shared between threads (OpenSSL 3 threading model);
// each call makes its own context.
EVP_KDF* hkdf() noexcept {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return kdf;
}

}  // namespace

std::optional<RecordCipher> record_cipher_from_suite(uint16_t suite) noexcept {
  switch (suite) {
    case 0x1301: return RecordCipher::aes_128_gcm_sha256;
    case 0x1302: return RecordCipher::aes_256_gcm_sha384;
    default: return std::nullopt;
  }
}

void wipe(TrafficSecret& secret) noexcept {
  OPENSSL_cleanse(secret.bytes.data(), secret.bytes.size());
  secret.length = 0;
}

void wipe(TrafficKeys& keys) noexcept {
  OPENSSL_cleanse(keys.key.data(), keys.key.size());
  OPENSSL_cleanse(keys.iv.data(), keys.iv.size());
  keys.key_length = 0;
}

bool hkdf_expand_label(RecordCipher cipher, const uint8_t* secret, size_t secret_len, std::string_view label,
                       const uint8_t* context, size_t context_len, uint8_t* out, size_t length) noexcept {
  // struct HkdfLabel { uint16 length; opaque label<7..255>; opaque context<0..255>; }
  const size_t full_label_len = kLabelPrefix.size() + label.size();
  if (length > 0xffff || full_label_len > 255 || context_len > 255) return false;
  uint8_t info[2 + 1 + 255 + 1 + 255];
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(length >> 8);
  info[n++] = static_cast<uint8_t>(length);
  info[n++] = static_cast<uint8_t>(full_label_len);
  std::memcpy(info + n, kLabelPrefix.data(), kLabelPrefix.size());
  n += kLabelPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = static_cast<uint8_t>(context_len);
  if (context_len != 0) std::memcpy(info + n, context, context_len);
  n += context_len;

  EVP_KDF* kdf = hkdf();
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  if (ctx == nullptr) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest_name(cipher)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret), secret_len),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out, length, params) == 1;
  EVP_KDF_CTX_free(ctx);
  OPENSSL_cleanse(info, sizeof info);
  return ok;
}

bool derive_traffic_keys(RecordCipher cipher, const TrafficSecret& secret, TrafficKeys& keys) noexcept {
  if (secret.length != secret_length(cipher)) return false;
  keys.key_length = static_cast<uint8_t>(key_length(cipher));
  const bool ok =
      hkdf_expand_label(cipher, secret.bytes.data(), secret.length, "key", nullptr, 0, keys.key.data(),
                        keys.key_length) &&
      hkdf_expand_label(cipher, secret.bytes.data(), secret.length, "iv", nullptr, 0, keys.iv.data(), kRecordIvLength);
  if (!ok) wipe(keys);
  return ok;
}

bool next_traffic_secret(RecordCipher cipher, const TrafficSecret& current, TrafficSecret& next) noexcept {
  if (current.length != secret_length(cipher)) return false;
  TrafficSecret result;
  result.length = current.length;
  if (!hkdf_expand_label(cipher, current.bytes.data(), current.length, "traffic upd", nullptr, 0,
                         result.bytes.data(), result.length)) {
    wipe(result);
    return false;
  }
  next = result;
  wipe(result);
  return true;
}

}  // namespace mtlsgw::tls
