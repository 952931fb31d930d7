#pragma once
// Certificates the operator revoked by hand (`revoke add --fingerprint HEX`,
// `revoke add --ca NAME --serial HEX`), checked on every handshake, on a
// verdict-cache hit as much as after a full chain verification. A CRL only
// counts once a new TrustStore is built around it, which also drops every
// cached verdict of that CA set; this set takes effect on the next handshake
// that reads it and touches no cached verdict: the cache keeps each chain's
// keys (verdict_cache.h) and they are looked up here every time.
//
// Immutable after build() on the control thread; read by every worker at once
// through a shared const pointer. A lookup reads the flat table and writes
// nothing: no lock, no atomic, no shared line made dirty.
//
// Two keys per certificate, both 32 bytes, in one table:
// - fingerprint: SHA-256 of the certificate's DER, as `--fingerprint` gives it
//   and as the gateway logs it (ClientIdentity::fingerprint_sha256_hex).
// - issuer_serial: SHA-256 over a domain tag, the issuer's subject name DER
//   (length-prefixed), SHA-256 of the issuer's subjectPublicKey bits, and the
//   serial's DER content octets. RFC 5280 4.1.2.2 makes (issuer, serial)
//   unique per certificate, but only per CA: two CAs may carry the same name
//   (one operator's "Issuing CA 1" and another's), so the name alone would
//   let a revocation under one CA hit the other's certificate. The issuer's
//   key is what AKI/SKI identify (RFC 5280 4.2.1.1-2), but taken from the key
//   itself it is exact even where AKI or SKI is absent or computed by another
//   method. The issuer is the next certificate of the verified chain (the
//   chain proves it signed this one; a root is its own issuer), and at build
//   each certificate of the named CA's PEM stands in as issuer: a re-keyed
//   CA whose file holds both certificates revokes under both keys. The name
//   is the issuer certificate's own subject DER, never the child's issuer
//   field, so differently encoded but equal names (X509_NAME_cmp) cannot
//   make the two sides disagree.
//   Serials are compared as the DER content of a positive INTEGER (minimal
//   two's complement, a 0x00 first when the top bit is set); a negative
//   serial (non-conforming, found in the wild) is hashed with a 0xFF marker
//   no positive encoding starts with, so no operator serial matches it:
//   revoke such a certificate by fingerprint.
// The tag keeps the two kinds apart in the shared table (a DER certificate
// is hashed from its first byte 0x30, the tag is text).
//
// Table: open addressing with linear probing over a power-of-two array of
// keys, at most half full, so a miss probes about 1.5 slots on average; the
// index is the key's first 8 bytes (SHA-256 output: uniform, and a client
// cannot steer it). kMaxRevocationKeys bounds it at 16 MiB.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mtlsgw::tls {

struct CaSource;  // trust_store.h

inline constexpr std::size_t kSha256Bytes = 32;

struct RevocationKey {
  std::array<uint8_t, kSha256Bytes> bytes{};
  friend bool operator==(const RevocationKey&, const RevocationKey&) = default;
};

// The two keys of one certificate of a chain.
struct RevocationKeys {
  RevocationKey fingerprint;
  RevocationKey issuer_serial;
};

// One line of `revoke list`, and build()'s input.
struct RevocationEntry {
  enum class Kind : uint8_t { fingerprint, ca_serial };
  Kind kind = Kind::fingerprint;
  RevocationKey fingerprint;   // kind fingerprint: SHA-256 of the DER
  std::string ca_name;         // kind ca_serial: a CaSource name
  std::vector<uint8_t> serial;  // kind ca_serial: DER content octets, as parse_serial_hex makes them
};

// Operator text to bytes. Hex digits in either case; colons may separate
// bytes ("0A:1b:ff"), each group then being one byte of one or two digits.
// A serial is normalised as RFC 5280 4.1.2.2's positive INTEGER encodes it:
// leading zeros dropped, one 0x00 put back when the top bit is set, so
// "00:8F:12", "8f12" and "008F12" are one serial. False, with *error, on
// anything else (signs, "0x", spaces, more than kMaxSerialBytes bytes).
inline constexpr std::size_t kMaxSerialBytes = 64;  // RFC 5280 asks for 20; some CAs exceed it
bool parse_serial_hex(std::string_view text, std::vector<uint8_t>* content, std::string* error);
bool parse_fingerprint_hex(std::string_view text, RevocationKey* out, std::string* error);

// Computes RevocationKeys with one fetched SHA-256 and a reused digest
// context and DER buffer: one per worker (ClientVerifier owns one) or per
// build. A certificate up to kDerBufferBytes is encoded into the buffer;
// a larger one costs an OpenSSL allocation. Not thread-safe.
class CertificateHasher {
 public:
  static constexpr std::size_t kDerBufferBytes = 16384;
  static std::unique_ptr<CertificateHasher> create();  // null on OOM
  ~CertificateHasher();
  CertificateHasher(const CertificateHasher&) = delete;
  CertificateHasher& operator=(const CertificateHasher&) = delete;

  // SHA-256 of the certificate's DER.
  bool fingerprint(X509* cert, RevocationKey* out);
  // Both keys of cert, issued by issuer (the next certificate of the
  // verified chain; cert itself for a root). False only on OOM or an
  // unencodable certificate.
  bool keys_of(X509* cert, X509* issuer, RevocationKeys* out) {
    return fingerprint(cert, &out->fingerprint) && issuer_serial_of(cert, issuer, &out->issuer_serial);
  }
  // The second half alone, for a leaf whose fingerprint is already known.
  bool issuer_serial_of(X509* cert, X509* issuer, RevocationKey* out);
  // The issuer/serial key of any certificate issuer signed with that serial
  // (content octets as parse_serial_hex makes them).
  bool issuer_serial_key(X509* issuer, std::span<const uint8_t> serial_content, RevocationKey* out);

 private:
  CertificateHasher() = default;
  bool digest(std::span<const unsigned char> data, RevocationKey* out);
  // The serial's content octets arrive as head followed by rest (a sign or
  // padding byte, then the magnitude), so no copy is made.
  bool issuer_serial_digest(X509* issuer, std::span<const uint8_t> head, std::span<const uint8_t> rest,
                            RevocationKey* out);

  EVP_MD* sha256_ = nullptr;
  EVP_MD_CTX* ctx_ = nullptr;
  std::unique_ptr<unsigned char[]> der_;
};

inline constexpr std::size_t kMaxRevocationKeys = std::size_t{1} << 18;

class RevocationSet {
 public:
  // Control thread. Each ca_serial entry names a CaSource of `cas`, whose
  // certificates are parsed once per build; a name not there, an entry
  // without serial, or more than kMaxRevocationKeys keys is refused with
  // *error. Duplicates are kept once.
  static std::unique_ptr<const RevocationSet> build(const std::vector<RevocationEntry>& entries,
                                                    const std::vector<CaSource>& cas, std::string* error);

  // Any thread, concurrently; no allocation, no writes.
  bool revoked(const RevocationKey& key) const noexcept;
  // Either key of a certificate.
  bool revoked(const RevocationKeys& keys) const noexcept {
    return revoked(keys.fingerprint) || revoked(keys.issuer_serial);
  }

  // Unique per build and never reused, as TrustStore::generation().
  uint64_t generation() const noexcept { return generation_; }
  // Entries (as listed, duplicates dropped), not keys.
  std::size_t size() const noexcept { return entries_.size(); }
  const std::vector<RevocationEntry>& entries() const noexcept { return entries_; }
  std::size_t key_count() const noexcept { return key_count_; }

 private:
  RevocationSet() = default;
  bool insert(const RevocationKey& key);

  uint64_t generation_ = 0;
  std::vector<RevocationEntry> entries_;
  std::unique_ptr<RevocationKey[]> slots_;  // all-zero: empty (no SHA-256 output is)
  std::size_t mask_ = 0;
  std::size_t key_count_ = 0;
};

}  // namespace mtlsgw::tls
