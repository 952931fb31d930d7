#pragma once
// The PROXY protocol version 2 header (HAProxy's doc/proxy-protocol.txt,
// section 2.2, revision 2026/01/15) that `forward: proxy_v2` sends to the
// upstream before the first byte of client data: TCP over IPv4, command PROXY,
// then the TLVs that carry what the TLS handshake established.
//
// What is emitted, in this order (each optional part switched by Options):
//   PP2_TYPE_CRC32C     first, so a receiver finds it early; computed last
//   PP2_TYPE_ALPN       the negotiated protocol (2.2.1), when there is one
//   PP2_TYPE_AUTHORITY  the SNI the client sent (2.2.2), when there is one
//   PP2_TYPE_UNIQUE_ID  an opaque connection id of at most 128 bytes (2.2.5)
//   PP2_TYPE_SSL        client bits, verify, then the sub-TLVs (2.2.6):
//     VERSION, CN, CIPHER, SIG_ALG, KEY_ALG, GROUP, SIG_SCHEME, CLIENT_CERT
//   kTypeVerifyReason   (0xE0, the spec's application range, 2.2.8) the
//                       verifier's reason name, e.g. "expired"
//
// Field semantics follow the spec, not the ClientIdentity field names:
// - verify is 0 only when a certificate was presented and verified; otherwise
//   1 (HAProxy sends OpenSSL's X509_V_ERR code there; our reason is the
//   0xE0 TLV, a name rather than a library-specific number).
// - PP2_CLIENT_CERT_SESS: a certificate was presented in this TLS session;
//   PP2_CLIENT_CERT_CONN: on this very connection, i.e. not on a resumption.
// - SIG_ALG and KEY_ALG describe the certificate the *frontend* (the gateway)
//   presented (2.2.6); ClientIdentity::sig_alg/key_alg hold exactly that. The
//   client certificate's own algorithms are in its DER (CLIENT_CERT).
// - CLIENT_CERT (0x28) is the leaf's DER, which HAProxy does not send.
//
// No allocation: encode() writes into the caller's buffer. The header length
// field is 16 bits, so a header never exceeds 16 + 65535 bytes; a client
// certificate near the ClientIdentity cap (16 KiB) fits with room to spare,
// but encode() checks instead of assuming.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dataplane/tls/client_identity.h"

namespace mtlsgw::forward::proxy_v2 {

constexpr uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr uint8_t kVersion2 = 0x20;  // high nibble of byte 13
constexpr uint8_t kCommandLocal = 0x00;
constexpr uint8_t kCommandProxy = 0x01;
constexpr uint8_t kFamilyUnspec = 0x00;
constexpr uint8_t kFamilyTcp4 = 0x11;  // AF_INET << 4 | STREAM

constexpr size_t kFixedHeaderLen = 16;  // signature, ver_cmd, fam, len
constexpr size_t kTcp4AddressLen = 12;  // 2 * 4 + 2 * 2
constexpr size_t kTlvHeaderLen = 3;     // type, length_hi, length_lo
constexpr size_t kSslFixedLen = 5;      // client (1) + verify (4)
constexpr size_t kMaxLengthField = 0xFFFF;
constexpr size_t kMaxHeaderLen = kFixedHeaderLen + kMaxLengthField;
constexpr size_t kMaxUniqueIdLen = 128;  // 2.2.5

// TLV types (2.2, 2.2.8).
constexpr uint8_t kTypeAlpn = 0x01;
constexpr uint8_t kTypeAuthority = 0x02;
constexpr uint8_t kTypeCrc32c = 0x03;
constexpr uint8_t kTypeNoop = 0x04;
constexpr uint8_t kTypeUniqueId = 0x05;
constexpr uint8_t kTypeSsl = 0x20;
constexpr uint8_t kSubtypeSslVersion = 0x21;
constexpr uint8_t kSubtypeSslCn = 0x22;
constexpr uint8_t kSubtypeSslCipher = 0x23;
constexpr uint8_t kSubtypeSslSigAlg = 0x24;
constexpr uint8_t kSubtypeSslKeyAlg = 0x25;
constexpr uint8_t kSubtypeSslGroup = 0x26;
constexpr uint8_t kSubtypeSslSigScheme = 0x27;
constexpr uint8_t kSubtypeSslClientCert = 0x28;
constexpr uint8_t kTypeNetns = 0x30;
constexpr uint8_t kTypeVerifyReason = 0xE0;  // ours, PP2_TYPE_MIN_CUSTOM

// Bits of the SSL TLV's client field (2.2.6).
constexpr uint8_t kClientSsl = 0x01;
constexpr uint8_t kClientCertConn = 0x02;
constexpr uint8_t kClientCertSess = 0x04;

constexpr uint32_t kVerifyOk = 0;
constexpr uint32_t kVerifyFailed = 1;

// The connection's facts that are not the client's identity. Addresses and
// ports in host byte order.
struct Connection {
  uint32_t client_address = 0;  // source: the TLS client
  uint16_t client_port = 0;
  uint32_t local_address = 0;   // destination: where the client connected to
  uint16_t local_port = 0;
  bool session_resumed = false;  // no certificate was sent on this connection
  std::string_view group;          // key exchange group, e.g. "x25519"
  std::string_view sig_scheme;     // e.g. "ecdsa_secp256r1_sha256"
  std::string_view unique_id;      // empty: no PP2_TYPE_UNIQUE_ID
};

// Which TLVs to send. Empty values are never sent, whatever the switch says.
struct Options {
  bool alpn = true;
  bool authority = true;
  bool ssl = true;
  bool ssl_version = true;
  bool ssl_cn = true;
  bool ssl_cipher = true;
  bool ssl_sig_alg = true;
  bool ssl_key_alg = true;
  bool ssl_group = true;
  bool ssl_sig_scheme = true;
  bool ssl_client_cert = true;
  bool verify_reason = true;
  bool crc32c = false;
};

enum class EncodeError : uint8_t {
  kNone,
  kBufferTooSmall,  // the header is valid but capacity is smaller; see length
  kTooLarge,        // the length field would exceed 65535
  kUniqueIdTooLong, // over 128 bytes (2.2.5)
};

struct EncodeResult {
  size_t length = 0;  // bytes written; on kBufferTooSmall, the bytes needed
  EncodeError error = EncodeError::kNone;
};

// Bytes encode() would write for these inputs; may exceed kMaxHeaderLen (then
// encode() refuses with kTooLarge).
size_t encoded_length(const Connection& conn, const tls::ClientIdentity& id,
                      const Options& options) noexcept;

// Writes the whole header at out. Nothing is guaranteed about out's contents
// on an error.
EncodeResult encode(const Connection& conn, const tls::ClientIdentity& id, const Options& options,
                    uint8_t* out, size_t capacity) noexcept;

// ---- Decoding: for tests and test origins; the gateway only sends. ----

enum class DecodeError : uint8_t {
  kNone,
  kIncomplete,      // fewer bytes than the header says; needed_length tells how many
  kBadSignature,
  kBadVersion,
  kBadCommand,
  kBadFamily,       // not one the spec defines
  kBadAddressLength,  // shorter than the family's addresses
  kBadTlv,          // a TLV runs past the header, or TLVs do not end on its end
  kBadSslTlv,       // shorter than client + verify, or a sub-TLV runs past it
  kBadCrc32c,       // wrong length or wrong value
  kDuplicateTlv,    // a known type twice
};

// Views into the decoded buffer.
struct Decoded {
  size_t header_length = 0;
  uint8_t command = 0;
  uint8_t family = 0;
  uint32_t source_address = 0;  // host byte order, TCP/UDP over IPv4 only
  uint32_t destination_address = 0;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;

  bool has_crc32c = false;
  std::string_view alpn;
  std::string_view authority;
  std::string_view unique_id;
  std::string_view verify_reason;
  unsigned noop_count = 0;
  unsigned unknown_count = 0;  // types skipped as the spec allows

  bool has_ssl = false;
  uint8_t ssl_client = 0;
  uint32_t ssl_verify = 0;
  std::string_view ssl_version;
  std::string_view ssl_cn;
  std::string_view ssl_cipher;
  std::string_view ssl_sig_alg;
  std::string_view ssl_key_alg;
  std::string_view ssl_group;
  std::string_view ssl_sig_scheme;
  std::string_view ssl_client_cert;
  unsigned ssl_unknown_count = 0;
};

struct DecodeResult {
  DecodeError error = DecodeError::kNone;
  size_t needed_length = 0;  // the whole header's length, once bytes 15-16 were seen
};

// Parses a header at the start of in (len bytes, possibly followed by data).
// A present CRC32c TLV is checked (2.2.3). Decoded views point into in.
DecodeResult decode(const uint8_t* in, size_t len, Decoded& out) noexcept;

std::string_view encode_error_name(EncodeError e) noexcept;
std::string_view decode_error_name(DecodeError e) noexcept;

}  // namespace mtlsgw::forward::proxy_v2
