#include "dataplane/forward/proxy_v2.h"

#include <cstring>

#include "common/crc32c.h"

namespace mtlsgw::forward::proxy_v2 {
namespace {

// One description of the header, run twice: once over a Counter to size it,
// once over a Writer to produce it, so the two can never disagree.
class Counter {
 public:
  void put(const void*, size_t n) noexcept { size_ += n; }
  void put8(uint8_t) noexcept { size_ += 1; }
  void put16(uint16_t) noexcept { size_ += 2; }
  void put32(uint32_t) noexcept { size_ += 4; }
  size_t begin_tlv(uint8_t) noexcept {
    size_ += kTlvHeaderLen;
    return size_;
  }
  void end_tlv(size_t) noexcept {}
  size_t size() const noexcept { return size_; }

 private:
  size_t size_ = 0;
};

class Writer {
 public:
  explicit Writer(uint8_t* out) noexcept : out_(out) {}
  void put(const void* p, size_t n) noexcept {
    if (n != 0) std::memcpy(out_ + size_, p, n);
    size_ += n;
  }
  void put8(uint8_t v) noexcept { out_[size_++] = v; }
  void put16(uint16_t v) noexcept {
    put8(static_cast<uint8_t>(v >> 8));
    put8(static_cast<uint8_t>(v));
  }
  void put32(uint32_t v) noexcept {
    put16(static_cast<uint16_t>(v >> 16));
    put16(static_cast<uint16_t>(v));
  }
  // Returns where the value starts; end_tlv() fills the length from it.
  size_t begin_tlv(uint8_t type) noexcept {
    put8(type);
    put16(0);
    return size_;
  }
  void end_tlv(size_t value_start) noexcept {
    const size_t n = size_ - value_start;  // <= 65535: the caller checked the total
    out_[value_start - 2] = static_cast<uint8_t>(n >> 8);
    out_[value_start - 1] = static_cast<uint8_t>(n);
  }
  size_t size() const noexcept { return size_; }

 private:
  uint8_t* out_;
  size_t size_ = 0;
};

template <class Sink>
void tlv(Sink& s, uint8_t type, std::string_view value) noexcept {
  const size_t start = s.begin_tlv(type);
  s.put(value.data(), value.size());
  s.end_tlv(start);
}

template <class Sink>
void optional_tlv(Sink& s, bool wanted, uint8_t type, std::string_view value) noexcept {
  if (wanted && !value.empty()) tlv(s, type, value);
}

// Everything after the 16-byte fixed part. Returns where the CRC32c value
// sits (0: none).
template <class Sink>
size_t emit_body(Sink& s, const Connection& c, const tls::ClientIdentity& id,
                 const Options& o) noexcept {
  s.put32(c.client_address);
  s.put32(c.local_address);
  s.put16(c.client_port);
  s.put16(c.local_port);

  size_t crc_at = 0;
  if (o.crc32c) {
    crc_at = s.begin_tlv(kTypeCrc32c);
    s.put32(0);  // 2.2.3: computed over the header with this field zero
    s.end_tlv(crc_at);
  }
  optional_tlv(s, o.alpn, kTypeAlpn, id.alpn);
  optional_tlv(s, o.authority, kTypeAuthority, id.sni);
  optional_tlv(s, true, kTypeUniqueId, c.unique_id);

  if (o.ssl) {
    const bool cert_in_session = id.presented;
    const bool cert_on_connection = id.presented && !c.session_resumed;
    uint8_t client = kClientSsl;
    if (cert_in_session) client |= kClientCertSess;
    if (cert_on_connection) client |= kClientCertConn;
    const size_t ssl = s.begin_tlv(kTypeSsl);
    s.put8(client);
    s.put32(id.presented && id.verified ? kVerifyOk : kVerifyFailed);
    optional_tlv(s, o.ssl_version, kSubtypeSslVersion, id.tls_version);
    optional_tlv(s, o.ssl_cn && id.presented, kSubtypeSslCn, id.common_name);
    optional_tlv(s, o.ssl_cipher, kSubtypeSslCipher, id.cipher);
    optional_tlv(s, o.ssl_sig_alg, kSubtypeSslSigAlg, id.sig_alg);
    optional_tlv(s, o.ssl_key_alg, kSubtypeSslKeyAlg, id.key_alg);
    optional_tlv(s, o.ssl_group, kSubtypeSslGroup, c.group);
    optional_tlv(s, o.ssl_sig_scheme, kSubtypeSslSigScheme, c.sig_scheme);
    optional_tlv(s, o.ssl_client_cert && id.presented, kSubtypeSslClientCert, id.der);
    s.end_tlv(ssl);
  }
  optional_tlv(s, o.verify_reason, kTypeVerifyReason, id.verify_reason);
  return crc_at;
}

uint16_t read16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t read32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

std::string_view view(const uint8_t* p, size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

// Stores a TLV value in a known slot; a second occurrence is an error, since a
// receiver cannot know which one the sender meant.
bool set_once(std::string_view& slot, bool& seen, std::string_view value) noexcept {
  if (seen) return false;
  seen = true;
  slot = value;
  return true;
}

DecodeError decode_ssl(const uint8_t* p, size_t n, Decoded& out) noexcept {
  if (n < kSslFixedLen) return DecodeError::kBadSslTlv;
  out.has_ssl = true;
  out.ssl_client = p[0];
  out.ssl_verify = read32(p + 1);
  bool seen[8] = {};
  std::string_view* slots[8] = {&out.ssl_version, &out.ssl_cn,    &out.ssl_cipher,
                                &out.ssl_sig_alg, &out.ssl_key_alg, &out.ssl_group,
                                &out.ssl_sig_scheme, &out.ssl_client_cert};
  size_t i = kSslFixedLen;
  while (i < n) {
    if (n - i < kTlvHeaderLen) return DecodeError::kBadSslTlv;
    const uint8_t type = p[i];
    const size_t len = read16(p + i + 1);
    i += kTlvHeaderLen;
    if (len > n - i) return DecodeError::kBadSslTlv;
    if (type >= kSubtypeSslVersion && type <= kSubtypeSslClientCert) {
      const int k = type - kSubtypeSslVersion;
      if (!set_once(*slots[k], seen[k], view(p + i, len))) return DecodeError::kDuplicateTlv;
    } else {
      ++out.ssl_unknown_count;
    }
    i += len;
  }
  return DecodeError::kNone;
}

}  // namespace

size_t encoded_length(const Connection& conn, const tls::ClientIdentity& id,
                      const Options& options) noexcept {
  Counter c;
  emit_body(c, conn, id, options);
  return kFixedHeaderLen + c.size();
}

EncodeResult encode(const Connection& conn, const tls::ClientIdentity& id, const Options& options,
                    uint8_t* out, size_t capacity) noexcept {
  if (conn.unique_id.size() > kMaxUniqueIdLen) return {0, EncodeError::kUniqueIdTooLong};
  const size_t total = encoded_length(conn, id, options);
  if (total > kMaxHeaderLen) return {total, EncodeError::kTooLarge};
  if (total > capacity) return {total, EncodeError::kBufferTooSmall};

  Writer w(out);
  w.put(kSignature, sizeof kSignature);
  w.put8(kVersion2 | kCommandProxy);
  w.put8(kFamilyTcp4);
  w.put16(static_cast<uint16_t>(total - kFixedHeaderLen));
  Writer body(out + kFixedHeaderLen);
  const size_t crc_at = emit_body(body, conn, id, options);
  if (options.crc32c) {
    const uint32_t crc = crc32c(out, total);
    // HAProxy, the reference receiver, reads the value in network byte order.
    uint8_t* field = out + kFixedHeaderLen + crc_at;
    field[0] = static_cast<uint8_t>(crc >> 24);
    field[1] = static_cast<uint8_t>(crc >> 16);
    field[2] = static_cast<uint8_t>(crc >> 8);
    field[3] = static_cast<uint8_t>(crc);
  }
  return {total, EncodeError::kNone};
}

DecodeResult decode(const uint8_t* in, size_t len, Decoded& out) noexcept {
  out = Decoded{};
  if (len == 0) return {DecodeError::kIncomplete, 0};
  const size_t sig_seen = len < sizeof kSignature ? len : sizeof kSignature;
  if (std::memcmp(in, kSignature, sig_seen) != 0) return {DecodeError::kBadSignature, 0};
  if (len < kFixedHeaderLen) return {DecodeError::kIncomplete, 0};
  if ((in[12] & 0xF0) != kVersion2) return {DecodeError::kBadVersion, 0};
  const uint8_t command = in[12] & 0x0F;
  if (command != kCommandLocal && command != kCommandProxy) return {DecodeError::kBadCommand, 0};
  const size_t total = kFixedHeaderLen + read16(in + 14);
  if (len < total) return {DecodeError::kIncomplete, total};
  out.header_length = total;
  out.command = command;
  out.family = in[13];

  size_t address_len = 0;
  switch (out.family) {
    case 0x00: address_len = 0; break;
    case 0x11: case 0x12: address_len = 12; break;
    case 0x21: case 0x22: address_len = 36; break;
    case 0x31: case 0x32: address_len = 216; break;
    default: return {DecodeError::kBadFamily, total};
  }
  // 2.2: receivers must skip by the length field, whatever the command.
  if (total - kFixedHeaderLen < address_len) return {DecodeError::kBadAddressLength, total};
  const uint8_t* a = in + kFixedHeaderLen;
  if (address_len == kTcp4AddressLen) {
    out.source_address = read32(a);
    out.destination_address = read32(a + 4);
    out.source_port = read16(a + 8);
    out.destination_port = read16(a + 10);
  }

  bool seen_alpn = false, seen_authority = false, seen_unique = false, seen_reason = false;
  size_t i = kFixedHeaderLen + address_len;
  size_t crc_at = 0;
  uint32_t crc_value = 0;
  while (i < total) {
    if (total - i < kTlvHeaderLen) return {DecodeError::kBadTlv, total};
    const uint8_t type = in[i];
    const size_t n = read16(in + i + 1);
    const size_t v = i + kTlvHeaderLen;
    if (n > total - v) return {DecodeError::kBadTlv, total};
    const std::string_view value = view(in + v, n);
    bool fresh = true;
    switch (type) {
      case kTypeAlpn: fresh = set_once(out.alpn, seen_alpn, value); break;
      case kTypeAuthority: fresh = set_once(out.authority, seen_authority, value); break;
      case kTypeUniqueId: fresh = set_once(out.unique_id, seen_unique, value); break;
      case kTypeVerifyReason: fresh = set_once(out.verify_reason, seen_reason, value); break;
      case kTypeNoop: ++out.noop_count; break;
      case kTypeCrc32c:
        if (out.has_crc32c) return {DecodeError::kDuplicateTlv, total};
        if (n != 4) return {DecodeError::kBadCrc32c, total};
        out.has_crc32c = true;
        crc_at = v;
        crc_value = read32(in + v);
        break;
      case kTypeSsl:
        if (out.has_ssl) return {DecodeError::kDuplicateTlv, total};
        if (const DecodeError e = decode_ssl(in + v, n, out); e != DecodeError::kNone) {
          return {e, total};
        }
        break;
      default: ++out.unknown_count; break;
    }
    if (!fresh) return {DecodeError::kDuplicateTlv, total};
    i = v + n;
  }
  if (out.has_crc32c) {
    static constexpr uint8_t kZero[4] = {};
    uint32_t crc = crc32c_extend(0, in, crc_at);
    crc = crc32c_extend(crc, kZero, sizeof kZero);
    crc = crc32c_extend(crc, in + crc_at + 4, total - crc_at - 4);
    if (crc != crc_value) return {DecodeError::kBadCrc32c, total};
  }
  return {DecodeError::kNone, total};
}

std::string_view encode_error_name(EncodeError e) noexcept {
  switch (e) {
    case EncodeError::kNone: return "none";
    case EncodeError::kBufferTooSmall: return "buffer_too_small";
    case EncodeError::kTooLarge: return "too_large";
    case EncodeError::kUniqueIdTooLong: return "unique_id_too_long";
  }
  return "unknown";
}

std::string_view decode_error_name(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::kNone: return "none";
    case DecodeError::kIncomplete: return "incomplete";
    case DecodeError::kBadSignature: return "bad_signature";
    case DecodeError::kBadVersion: return "bad_version";
    case DecodeError::kBadCommand: return "bad_command";
    case DecodeError::kBadFamily: return "bad_family";
    case DecodeError::kBadAddressLength: return "bad_address_length";
    case DecodeError::kBadTlv: return "bad_tlv";
    case DecodeError::kBadSslTlv: return "bad_ssl_tlv";
    case DecodeError::kBadCrc32c: return "bad_crc32c";
    case DecodeError::kDuplicateTlv: return "duplicate_tlv";
  }
  return "unknown";
}

}  // namespace mtlsgw::forward::proxy_v2
