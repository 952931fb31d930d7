#include "dataplane/forward/http_identity.h"

#include <cstring>

#include "common/base64.h"
#include "common/utc_time.h"
#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool needs_escape(std::string_view v, size_t i) noexcept {
  const auto c = static_cast<uint8_t>(v[i]);
  if (c < 0x20 || c >= 0x7F) return true;
  // Leading and trailing spaces would be trimmed as OWS (RFC 9110 5.5) and
  // are escaped in an RFC 4514 string anyway.
  return c == ' ' && (i == 0 || i + 1 == v.size());
}

// One pass that either counts or writes, so that the size check and the
// writing cannot disagree.
class Output {
 public:
  Output(char* out, bool write) noexcept : out_(out), write_(write) {}
  void put(std::string_view s) noexcept {
    if (write_ && !s.empty()) std::memcpy(out_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  void put_safe(std::string_view v) noexcept {
    if (write_) size_ += write_safe_value(v, out_ + size_);
    else size_ += safe_value_length(v);
  }
  void put_byte_sequence(std::string_view bytes) noexcept {
    put(":");
    const size_t n = base64_encoded_length(bytes.size());
    if (write_) base64_encode(bytes, out_ + size_, n);
    size_ += n;
    put(":");
  }
  size_t size() const noexcept { return size_; }

 private:
  char* out_;
  bool write_;
  size_t size_ = 0;
};

void safe_field(Output& o, std::string_view name, std::string_view value) noexcept {
  if (value.empty()) return;
  o.put(name);
  o.put(": ");
  o.put_safe(value);
  o.put("\r\n");
}

void time_field(Output& o, std::string_view name, int64_t epoch) noexcept {
  // Not tls::format_rfc3339_utc: it calls gmtime_r, which locks (utc_time.h).
  char text[20];
  const size_t n = write_rfc3339(epoch, text);
  if (n != 0) safe_field(o, name, std::string_view(text, n));
}

uint16_t emit(Output& o, const RequestHead& head, const tls::ClientIdentity& id,
              const IdentityConfig& config) noexcept {
  uint16_t removed = 0;
  o.put(head.request_line);
  o.put("\r\n");
  for (size_t i = 0; i < head.fields.size(); ++i) {
    if (is_identity_field(head.field_name(i), config)) {
      ++removed;
      continue;
    }
    o.put(head.field_line(i));
  }
  const IdentityFieldNames& n = config.names;
  const bool verified = id.presented && id.verified;
  safe_field(o, n.verified, verified ? "true" : "false");
  safe_field(o, n.verify_reason, id.verify_reason);
  if (id.presented) {
    safe_field(o, n.subject, id.subject_dn);
    safe_field(o, n.issuer, id.issuer_dn);
    safe_field(o, n.serial, id.serial_hex);
    safe_field(o, n.fingerprint, id.fingerprint_sha256_hex);
    time_field(o, n.not_before, id.not_before_epoch);
    time_field(o, n.not_after, id.not_after_epoch);
    if (!id.der.empty() && (verified || config.client_cert_when_unverified)) {
      o.put(n.client_cert);
      o.put(": ");
      o.put_byte_sequence(id.der);
      o.put("\r\n");
    }
  }
  o.put("\r\n");
  return removed;
}

}  // namespace

bool is_identity_field(std::string_view name, const IdentityConfig& config) noexcept {
  for (std::string_view s : config.strip_names) {
    if (iequals(name, s)) return true;
  }
  const IdentityFieldNames& n = config.names;
  for (std::string_view s : {n.verified, n.verify_reason, n.subject, n.issuer, n.serial,
                             n.fingerprint, n.not_before, n.not_after, n.client_cert}) {
    if (iequals(name, s)) return true;
  }
  return false;
}

size_t safe_value_length(std::string_view value) noexcept {
  size_t n = 0;
  for (size_t i = 0; i < value.size(); ++i) n += needs_escape(value, i) ? 3 : 1;
  return n;
}

size_t write_safe_value(std::string_view value, char* out) noexcept {
  size_t o = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<uint8_t>(value[i]);
    if (needs_escape(value, i)) {
      out[o++] = '\\';
      out[o++] = kHex[c >> 4];
      out[o++] = kHex[c & 15];
    } else {
      out[o++] = static_cast<char>(c);
    }
  }
  return o;
}

RewriteResult rewrite_request_head(const RequestHead& head, const tls::ClientIdentity& id,
                                   const IdentityConfig& config, char* out,
                                   size_t capacity) noexcept {
  for (size_t i = 0; i < head.fields.size(); ++i) {
    if (!iequals(head.field_name(i), "connection")) continue;
    ListElements options(head.field_value(i));
    std::string_view option;
    while (options.next(option)) {
      if (is_identity_field(option, config)) {
        return {0, RewriteError::kConnectionNamesIdentityField, 0};
      }
    }
  }
  Output count(nullptr, false);
  emit(count, head, id, config);
  if (count.size() > capacity) return {count.size(), RewriteError::kBufferTooSmall, 0};
  Output write(out, true);
  const uint16_t removed = emit(write, head, id, config);
  return {write.size(), RewriteError::kNone, removed};
}

}  // namespace mtlsgw::forward::http
