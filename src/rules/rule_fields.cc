#include "rules/rule_fields.h"

#include <algorithm>
#include <array>
#include <vector>

namespace mtlsgw::rules {
namespace {

constexpr FieldInfo text_field(FieldId id, std::string_view name, Presence presence,
                               std::string_view RuleInput::*member, std::string_view meaning) {
  FieldInfo f{id, name, FieldType::string, presence, meaning};
  f.text = member;
  return f;
}
constexpr FieldInfo list_field(FieldId id, std::string_view name,
                               std::span<const std::string_view> RuleInput::*member,
                               std::string_view meaning) {
  FieldInfo f{id, name, FieldType::string_array, Presence::certificate, meaning};
  f.list = member;
  return f;
}
constexpr FieldInfo integer_field(FieldId id, std::string_view name, int64_t RuleInput::*member,
                                  std::string_view meaning) {
  FieldInfo f{id, name, FieldType::integer, Presence::certificate, meaning};
  f.integer = member;
  return f;
}
constexpr FieldInfo flag_field(FieldId id, std::string_view name, bool RuleInput::*member,
                               std::string_view meaning) {
  FieldInfo f{id, name, FieldType::boolean, Presence::always, meaning};
  f.flag = member;
  return f;
}

using enum FieldId;
using enum Presence;

}  // namespace

// In FieldId order (checked below).
constexpr std::array<FieldInfo, kFieldCount> kFieldTable{{
    text_field(tls_sni, "tls.sni", always, &RuleInput::tls_sni,
               "the server name (SNI) the client sent; empty without one"),
    text_field(tls_version, "tls.version", always, &RuleInput::tls_version,
               "the negotiated protocol version: \"TLSv1.3\" or \"TLSv1.2\""),
    text_field(tls_alpn, "tls.alpn", always, &RuleInput::tls_alpn,
               "the negotiated ALPN protocol, e.g. \"h2\"; empty without one"),
    text_field(tls_cipher, "tls.cipher", always, &RuleInput::tls_cipher,
               "the negotiated cipher suite, OpenSSL's name, e.g. \"TLS_AES_128_GCM_SHA256\""),
    text_field(tls_host, "tls.host", always, &RuleInput::tls_host,
               "the configured host the SNI selected, as configured (may be a wildcard, "
               "\"*.example.test\")"),
    [] {
      FieldInfo f{ip_src, "ip.src", FieldType::address, always, "the client's IPv4 address"};
      f.address = &RuleInput::ip_src;
      return f;
    }(),
    flag_field(cert_presented, "client.cert.presented", &RuleInput::cert_presented,
               "the client sent a certificate (also one that failed verification)"),
    flag_field(cert_verified, "client.cert.verified", &RuleInput::cert_verified,
               "the client's certificate chained to the host's trust and passed every check"),
    flag_field(cert_revoked, "client.cert.revoked", &RuleInput::cert_revoked,
               "the client's certificate is on its CA's revocation list"),
    text_field(cert_subject_dn, "client.cert.subject_dn", certificate, &RuleInput::cert_subject_dn,
               "the subject's distinguished name, RFC 2253 form, e.g. \"CN=dev-1,O=Devices\""),
    text_field(cert_issuer_dn, "client.cert.issuer_dn", certificate, &RuleInput::cert_issuer_dn,
               "the issuer's distinguished name, RFC 2253 form"),
    text_field(cert_common_name, "client.cert.common_name", certificate,
               &RuleInput::cert_common_name, "the subject's (last) common name"),
    text_field(cert_serial, "client.cert.serial", certificate, &RuleInput::cert_serial,
               "the serial number, upper-case hex without separators, e.g. \"0A1B2C\""),
    text_field(cert_fingerprint_sha256, "client.cert.fingerprint_sha256", certificate,
               &RuleInput::cert_fingerprint_sha256,
               "SHA-256 of the certificate's DER, 64 lower-case hex digits"),
    text_field(cert_ski, "client.cert.ski", certificate, &RuleInput::cert_ski,
               "the subject key identifier, lower-case hex"),
    text_field(cert_issuer_ski, "client.cert.issuer_ski", certificate, &RuleInput::cert_issuer_ski,
               "the authority key identifier (the issuer's SKI), lower-case hex"),
    list_field(cert_san_dns, "client.cert.san.dns", &RuleInput::cert_san_dns,
               "the DNS names of the subject alternative name"),
    list_field(cert_san_uri, "client.cert.san.uri", &RuleInput::cert_san_uri,
               "the URIs of the subject alternative name, e.g. SPIFFE IDs"),
    integer_field(cert_not_before, "client.cert.not_before", &RuleInput::cert_not_before,
                  "start of validity, seconds since 1970-01-01T00:00:00Z"),
    integer_field(cert_not_after, "client.cert.not_after", &RuleInput::cert_not_after,
                  "end of validity, seconds since 1970-01-01T00:00:00Z"),
    text_field(http_host, "http.host", http, &RuleInput::http_host,
               "the request's Host (its authority), as sent"),
    text_field(http_method, "http.request.method", http, &RuleInput::http_method,
               "the request method, e.g. \"GET\""),
    text_field(http_uri_path, "http.request.uri.path", http, &RuleInput::http_uri_path,
               "the request target's path, without the query"),
    text_field(http_uri, "http.request.uri", http, &RuleInput::http_uri,
               "the request target: path and query, as sent"),
}};

namespace {

constexpr bool fields_in_id_order() {
  for (std::size_t i = 0; i < kFieldTable.size(); ++i) {
    if (static_cast<std::size_t>(kFieldTable[i].id) != i) return false;
  }
  return true;
}
static_assert(fields_in_id_order());

// Names an operator who knows Cloudflare's rules would reach for.
struct Alias {
  std::string_view theirs;
  std::string_view ours;
};
constexpr std::array<Alias, 14> kAliases{{
    {"cf.tls_client_auth.cert_presented", "client.cert.presented"},
    {"cf.tls_client_auth.cert_verified", "client.cert.verified"},
    {"cf.tls_client_auth.cert_revoked", "client.cert.revoked"},
    {"cf.tls_client_auth.cert_subject_dn", "client.cert.subject_dn"},
    {"cf.tls_client_auth.cert_issuer_dn", "client.cert.issuer_dn"},
    {"cf.tls_client_auth.cert_serial", "client.cert.serial"},
    {"cf.tls_client_auth.cert_fingerprint_sha256", "client.cert.fingerprint_sha256"},
    {"cf.tls_client_auth.cert_ski", "client.cert.ski"},
    {"cf.tls_client_auth.cert_issuer_ski", "client.cert.issuer_ski"},
    {"cf.tls_client_auth.cert_not_after", "client.cert.not_after"},
    {"cf.tls_client_auth.cert_not_before", "client.cert.not_before"},
    {"ssl", "tls.version"},
    {"ip.src.addr", "ip.src"},
    {"http.request.full_uri", "http.request.uri"},
}};

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Levenshtein distance, case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitution = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const FieldInfo* find_field(std::string_view name) noexcept {
  for (const FieldInfo& field : kFieldTable) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

std::optional<std::string_view> suggest_field(std::string_view unknown) {
  for (const Alias& alias : kAliases) {
    if (alias.theirs == unknown) return alias.ours;
  }
  // Names are at most 30 characters; a far longer word is no typo of one.
  constexpr std::size_t kLongestTypo = 64;
  if (unknown.size() > kLongestTypo) return std::nullopt;
  // Up to a third of the name may be wrong, and never more than 3 edits:
  // "tls.sin" finds "tls.sni", "client.cert.cn" does not find everything.
  const FieldInfo* best = nullptr;
  std::size_t best_distance = std::min<std::size_t>(3, unknown.size() / 3) + 1;
  for (const FieldInfo& field : kFieldTable) {
    const std::size_t distance = edit_distance(unknown, field.name);
    if (distance < best_distance) {
      best = &field;
      best_distance = distance;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->name;
}

std::string_view type_phrase(FieldType type) noexcept {
  switch (type) {
    case FieldType::string: return "a string";
    case FieldType::string_array: return "an array of strings";
    case FieldType::integer: return "an integer";
    case FieldType::boolean: return "a boolean";
    case FieldType::address: return "an IPv4 address";
  }
  return "a value";
}

std::string_view type_name(FieldType type) noexcept {
  switch (type) {
    case FieldType::string: return "string";
    case FieldType::string_array: return "array of strings";
    case FieldType::integer: return "integer";
    case FieldType::boolean: return "boolean";
    case FieldType::address: return "ip";
  }
  return "?";
}

}  // namespace mtlsgw::rules
