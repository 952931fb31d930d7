#pragma once
// The field registry: every name a rule can test, its type, when it is
// present, where its value lives in RuleInput, and a line for docs/rules.md.
// Field names are the language's; the table below is the one place that ties
// them to RuleInput.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "rules/rule_input.h"

namespace mtlsgw::rules {

enum class FieldType : uint8_t { string, string_array, integer, boolean, address };

// When a field has a value (RuleInput's comment): always, with a client
// certificate, or with an HTTP request.
enum class Presence : uint8_t { always, certificate, http };

enum class FieldId : uint8_t {
  tls_sni,
  tls_version,
  tls_alpn,
  tls_cipher,
  tls_host,
  ip_src,
  cert_presented,
  cert_verified,
  cert_revoked,
  cert_subject_dn,
  cert_issuer_dn,
  cert_common_name,
  cert_serial,
  cert_fingerprint_sha256,
  cert_ski,
  cert_issuer_ski,
  cert_san_dns,
  cert_san_uri,
  cert_not_before,
  cert_not_after,
  http_host,
  http_method,
  http_uri_path,
  http_uri,
};
constexpr std::size_t kFieldCount = static_cast<std::size_t>(FieldId::http_uri) + 1;

struct FieldInfo {
  FieldId id;
  std::string_view name;
  FieldType type;
  Presence presence;
  std::string_view meaning;
  // The member of RuleInput that holds the value; only the one of the
  // field's type is set.
  std::string_view RuleInput::*text = nullptr;
  std::span<const std::string_view> RuleInput::*list = nullptr;
  int64_t RuleInput::*integer = nullptr;
  bool RuleInput::*flag = nullptr;
  uint32_t RuleInput::*address = nullptr;
};

// The registry, in FieldId order (rule_fields.cc); declared here so that
// field_info() inlines into the evaluator.
extern const std::array<FieldInfo, kFieldCount> kFieldTable;

inline std::span<const FieldInfo> all_fields() noexcept { return kFieldTable; }
inline const FieldInfo& field_info(FieldId id) noexcept {
  return kFieldTable[static_cast<std::size_t>(id)];
}
const FieldInfo* find_field(std::string_view name) noexcept;

// A known name close to an unknown one (a typo, another case, or the
// Cloudflare name of the same fact), or nothing.
std::optional<std::string_view> suggest_field(std::string_view unknown);

// "a string", "an IPv4 address", ... for messages.
std::string_view type_phrase(FieldType type) noexcept;
// "string", "ip", ... for docs and dumps.
std::string_view type_name(FieldType type) noexcept;

inline bool is_present(const FieldInfo& field, const RuleInput& input) noexcept {
  switch (field.presence) {
    case Presence::always: return true;
    case Presence::certificate: return input.cert_presented;
    case Presence::http: return input.http_present;
  }
  return false;
}

}  // namespace mtlsgw::rules
