#include "dataplane/tls/revocation_set.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "common/handles.h"
#include "dataplane/tls/trust_store.h"

namespace mtlsgw::tls {
namespace {

// Tells an issuer/serial key from a certificate fingerprint in the shared
// table, and names the version of the derivation.
constexpr char kIssuerSerialTag[] = "mtlsgw revocation issuer+serial v1";

constexpr RevocationKey kEmptySlot{};

std::atomic<uint64_t> g_next_generation{1};

// Operator text is short; this only stops a pasted file from being parsed.
constexpr std::size_t kMaxHexText = 512;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex to bytes: with colons, each group is one byte of one or two digits;
// without, the digits are one big-endian number (an odd count gets a
// leading zero nibble).
bool parse_hex_bytes(std::string_view text, std::vector<uint8_t>* out, std::string* error) {
  out->clear();
  if (text.empty()) {
    *error = "empty";
    return false;
  }
  if (text.size() > kMaxHexText) {
    *error = fmt::format("longer than {} characters", kMaxHexText);
    return false;
  }
  for (char c : text) {
    if (c != ':' && hex_value(c) < 0) {
      *error = fmt::format("'{}' is not a hex digit", c);
      return false;
    }
  }
  if (text.find(':') != std::string_view::npos) {
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = std::min(text.find(':', start), text.size());
      const std::string_view group = text.substr(start, end - start);
      if (group.empty() || group.size() > 2) {
        *error = "each colon-separated group must be one byte (one or two hex digits)";
        return false;
      }
      int value = 0;
      for (char c : group) value = value * 16 + hex_value(c);
      out->push_back(static_cast<uint8_t>(value));
      if (end == text.size()) return true;
      start = end + 1;
    }
  }
  std::size_t i = 0;
  if (text.size() % 2 == 1) {
    out->push_back(static_cast<uint8_t>(hex_value(text[0])));
    i = 1;
  }
  for (; i < text.size(); i += 2) {
    out->push_back(static_cast<uint8_t>(hex_value(text[i]) * 16 + hex_value(text[i + 1])));
  }
  return true;
}

// A non-negative magnitude as the DER content octets of a positive INTEGER
// (RFC 5280 4.1.2.2; X.690 8.3.2: minimal two's complement).
std::vector<uint8_t> positive_integer_content(std::span<const uint8_t> magnitude) {
  std::size_t first = 0;
  while (first < magnitude.size() && magnitude[first] == 0) ++first;
  const std::size_t digits = magnitude.size() - first;
  const std::size_t pad = digits == 0 || (magnitude[first] & 0x80) != 0 ? 1 : 0;
  std::vector<uint8_t> content(pad + digits, 0);
  if (digits > 0) std::memcpy(content.data() + pad, magnitude.data() + first, digits);
  return content;
}

uint64_t first_word(const RevocationKey& key) {
  uint64_t word;
  std::memcpy(&word, key.bytes.data(), sizeof word);
  return word;
}

bool read_certificates(std::string_view pem, std::vector<X509Handle>* out) {
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return false;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out->emplace_back(cert);
    if (out->size() > kMaxCaCertificates) return false;
  }
  // The end of the text shows up as PEM_R_NO_START_LINE; anything else is a
  // broken block.
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE && !out->empty();
}

}  // namespace

bool parse_serial_hex(std::string_view text, std::vector<uint8_t>* content, std::string* error) {
  std::string discard;
  if (error == nullptr) error = &discard;
  std::vector<uint8_t> bytes;
  if (!parse_hex_bytes(text, &bytes, error)) {
    *error = "serial: " + *error;
    return false;
  }
  *content = positive_integer_content(bytes);
  if (content->size() > kMaxSerialBytes) {
    *error = fmt::format("serial: longer than {} bytes", kMaxSerialBytes);
    return false;
  }
  return true;
}

bool parse_fingerprint_hex(std::string_view text, RevocationKey* out, std::string* error) {
  std::string discard;
  if (error == nullptr) error = &discard;
  std::vector<uint8_t> bytes;
  if (!parse_hex_bytes(text, &bytes, error)) {
    *error = "fingerprint: " + *error;
    return false;
  }
  if (bytes.size() != kSha256Bytes) {
    *error = fmt::format("fingerprint: {} bytes, a SHA-256 has {}", bytes.size(), kSha256Bytes);
    return false;
  }
  std::memcpy(out->bytes.data(), bytes.data(), kSha256Bytes);
  return true;
}

std::unique_ptr<CertificateHasher> CertificateHasher::create() {
  std::unique_ptr<CertificateHasher> hasher(new CertificateHasher);
  OpenSslErrorScope errors;
  hasher->sha256_ = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  hasher->ctx_ = EVP_MD_CTX_new();
  hasher->der_ = std::make_unique<unsigned char[]>(kDerBufferBytes);
  if (hasher->sha256_ == nullptr || hasher->ctx_ == nullptr) return nullptr;
  return hasher;
}

CertificateHasher::~CertificateHasher() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(sha256_);
}

bool CertificateHasher::digest(std::span<const unsigned char> data, RevocationKey* out) {
  unsigned int length = 0;
  return EVP_DigestInit_ex2(ctx_, sha256_, nullptr) == 1 && EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx_, out->bytes.data(), &length) == 1 && length == kSha256Bytes;
}

bool CertificateHasher::fingerprint(X509* cert, RevocationKey* out) {
  OpenSslErrorScope errors;
  const int length = i2d_X509(cert, nullptr);
  if (length <= 0) return false;
  const auto size = static_cast<std::size_t>(length);
  if (size <= kDerBufferBytes) {
    unsigned char* cursor = der_.get();
    return i2d_X509(cert, &cursor) == length && digest({der_.get(), size}, out);
  }
  unsigned char* heap = nullptr;
  const bool ok = i2d_X509(cert, &heap) == length && digest({heap, size}, out);
  OPENSSL_free(heap);
  return ok;
}

bool CertificateHasher::issuer_serial_digest(X509* issuer, std::span<const uint8_t> head,
                                             std::span<const uint8_t> rest, RevocationKey* out) {
  const unsigned char* name_der = nullptr;
  std::size_t name_length = 0;
  const ASN1_BIT_STRING* public_key = X509_get0_pubkey_bitstr(issuer);
  RevocationKey key_hash;
  if (X509_NAME_get0_der(X509_get_subject_name(issuer), &name_der, &name_length) != 1 || public_key == nullptr ||
      name_length > UINT32_MAX ||
      !digest({ASN1_STRING_get0_data(public_key), static_cast<std::size_t>(ASN1_STRING_length(public_key))},
              &key_hash)) {
    return false;
  }
  const uint8_t length_be[4] = {static_cast<uint8_t>(name_length >> 24), static_cast<uint8_t>(name_length >> 16),
                                static_cast<uint8_t>(name_length >> 8), static_cast<uint8_t>(name_length)};
  unsigned int length = 0;
  return EVP_DigestInit_ex2(ctx_, sha256_, nullptr) == 1 &&
         EVP_DigestUpdate(ctx_, kIssuerSerialTag, sizeof kIssuerSerialTag) == 1 &&
         EVP_DigestUpdate(ctx_, length_be, sizeof length_be) == 1 &&
         EVP_DigestUpdate(ctx_, name_der, name_length) == 1 &&
         EVP_DigestUpdate(ctx_, key_hash.bytes.data(), key_hash.bytes.size()) == 1 &&
         EVP_DigestUpdate(ctx_, head.data(), head.size()) == 1 &&
         EVP_DigestUpdate(ctx_, rest.data(), rest.size()) == 1 &&
         EVP_DigestFinal_ex(ctx_, out->bytes.data(), &length) == 1 && length == kSha256Bytes;
}

bool CertificateHasher::issuer_serial_of(X509* cert, X509* issuer, RevocationKey* out) {
  OpenSslErrorScope errors;
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  const uint8_t* magnitude = ASN1_STRING_get0_data(serial);
  std::size_t size = static_cast<std::size_t>(ASN1_STRING_length(serial));
  while (size > 0 && *magnitude == 0) {
    ++magnitude;
    --size;
  }
  static constexpr uint8_t kPad[1] = {0x00};
  static constexpr uint8_t kNegative[1] = {0xff};
  std::span<const uint8_t> head;
  if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) {
    head = kNegative;
  } else if (size == 0 || (magnitude[0] & 0x80) != 0) {
    head = kPad;
  }
  return issuer_serial_digest(issuer, head, {magnitude, size}, out);
}

bool CertificateHasher::issuer_serial_key(X509* issuer, std::span<const uint8_t> serial_content,
                                          RevocationKey* out) {
  OpenSslErrorScope errors;
  return issuer_serial_digest(issuer, {}, serial_content, out);
}

std::unique_ptr<const RevocationSet> RevocationSet::build(const std::vector<RevocationEntry>& entries,
                                                          const std::vector<CaSource>& cas, std::string* error) {
  std::string discard;
  if (error == nullptr) error = &discard;
  OpenSslErrorScope errors;
  std::unique_ptr<RevocationSet> set(new RevocationSet);
  set->generation_ = g_next_generation.fetch_add(1, std::memory_order_relaxed);
  std::unique_ptr<CertificateHasher> hasher = CertificateHasher::create();
  if (hasher == nullptr) {
    *error = "out of memory for SHA-256";
    return nullptr;
  }

  std::map<std::string, std::vector<X509Handle>> ca_certificates;
  std::set<std::array<uint8_t, kSha256Bytes>> seen_fingerprints;
  std::set<std::pair<std::string, std::vector<uint8_t>>> seen_serials;
  std::vector<RevocationKey> keys;
  for (const RevocationEntry& entry : entries) {
    if (entry.kind == RevocationEntry::Kind::fingerprint) {
      if (entry.fingerprint == kEmptySlot) {
        *error = "fingerprint: all zeros is no SHA-256 of a certificate";
        return nullptr;
      }
      if (!seen_fingerprints.insert(entry.fingerprint.bytes).second) continue;
      keys.push_back(entry.fingerprint);
      set->entries_.push_back(entry);
      continue;
    }
    if (entry.serial.empty()) {
      *error = fmt::format("CA {}: no serial", entry.ca_name);
      return nullptr;
    }
    RevocationEntry normalised = entry;
    normalised.serial = positive_integer_content(entry.serial);
    if (normalised.serial.size() > kMaxSerialBytes) {
      *error = fmt::format("CA {}: serial longer than {} bytes", entry.ca_name, kMaxSerialBytes);
      return nullptr;
    }
    if (!seen_serials.emplace(normalised.ca_name, normalised.serial).second) continue;
    auto found = ca_certificates.find(entry.ca_name);
    if (found == ca_certificates.end()) {
      auto source = std::find_if(cas.begin(), cas.end(), [&](const CaSource& s) { return s.name == entry.ca_name; });
      if (source == cas.end()) {
        *error = fmt::format("no CA named {}", entry.ca_name);
        return nullptr;
      }
      std::vector<X509Handle> certs;
      if (!read_certificates(source->cert_pem, &certs)) {
        *error = fmt::format("CA {}: its certificates do not decode", entry.ca_name);
        return nullptr;
      }
      found = ca_certificates.emplace(entry.ca_name, std::move(certs)).first;
    }
    for (const X509Handle& ca : found->second) {
      RevocationKey key;
      if (!hasher->issuer_serial_key(ca.get(), normalised.serial, &key)) {
        *error = fmt::format("CA {}: cannot hash a certificate's name or key", entry.ca_name);
        return nullptr;
      }
      keys.push_back(key);
    }
    set->entries_.push_back(std::move(normalised));
  }
  if (keys.size() > kMaxRevocationKeys) {
    *error = fmt::format("{} keys, more than {}", keys.size(), kMaxRevocationKeys);
    return nullptr;
  }

  std::size_t capacity = 8;
  while (capacity < 2 * keys.size()) capacity *= 2;
  set->slots_ = std::make_unique<RevocationKey[]>(capacity);
  set->mask_ = capacity - 1;
  for (const RevocationKey& key : keys) set->insert(key);
  return set;
}

bool RevocationSet::insert(const RevocationKey& key) {
  for (std::size_t i = first_word(key) & mask_;; i = (i + 1) & mask_) {
    RevocationKey& slot = slots_[i];
    if (slot == key) return false;
    if (slot == kEmptySlot) {
      slot = key;
      ++key_count_;
      return true;
    }
  }
}

bool RevocationSet::revoked(const RevocationKey& key) const noexcept {
  // At most half full: the probe always ends at an empty slot.
  for (std::size_t i = first_word(key) & mask_;; i = (i + 1) & mask_) {
    const RevocationKey& slot = slots_[i];
    if (slot == kEmptySlot) return false;  // first: an all-zero query must not match it
    if (slot == key) return true;
  }
}

}  // namespace mtlsgw::tls
