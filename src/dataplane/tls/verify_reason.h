#pragma once
// Why a client certificate was accepted or refused, and the TLS alert each
// refusal sends. Every client-certificate verification ends in exactly one of
// these, so failures are counted per host and per reason (no product we
// compared counts them by reason and host) and the client learns which check
// it failed. No OpenSSL type here: counters, rules and logs include it.
//
// Alerts: the descriptions are RFC 8446 section 6.2's. certificate_expired
// covers "has expired or is not currently valid", so a not-yet-valid
// certificate gets it too. bad_certificate covers "contained signatures that
// did not verify correctly". certificate_unknown ("some other (unspecified)
// issue") is what a client hears when its revocation status cannot be known
// (missing, stale or broken CRL): it may be fine, so it is not told "revoked".

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mtlsgw::tls {

// TLS AlertDescription values (RFC 8446 6 / RFC 5246 7.2).
enum class TlsAlert : uint8_t {
  handshake_failure = 40,
  bad_certificate = 42,
  unsupported_certificate = 43,
  certificate_revoked = 44,
  certificate_expired = 45,
  certificate_unknown = 46,
  unknown_ca = 48,
  internal_error = 80,
  certificate_required = 116,  // TLS 1.3 only (RFC 8446 4.4.2.4)
};

//      name                 alert                     meaning
#define MTLSGW_VERIFY_REASONS(X)                                                                  \
  X(ok,                 bad_certificate,         "chained to the host's trust, every check passed") \
  X(no_certificate,     certificate_required,    "the client sent no certificate")                  \
  X(unknown_ca,         unknown_ca,              "no chain to a trusted root (unknown issuer, "      \
                                                 "self-signed leaf, a non-CA used as issuer)")       \
  X(expired,            certificate_expired,     "a certificate of the chain is past notAfter")     \
  X(not_yet_valid,      certificate_expired,     "a certificate of the chain is before notBefore")  \
  X(revoked,            certificate_revoked,     "listed in its issuer's CRL")                      \
  X(wrong_usage,        unsupported_certificate, "no clientAuth EKU, or keyUsage without "          \
                                                 "digitalSignature")                                 \
  X(chain_too_deep,     unknown_ca,              "no trusted root within the maximum depth, "        \
                                                 "or a pathLenConstraint exceeded")                  \
  X(bad_signature,      bad_certificate,         "a signature in the chain does not verify")        \
  X(malformed,          bad_certificate,         "a certificate could not be decoded or has "       \
                                                 "broken fields")                                    \
  X(revocation_unknown, certificate_unknown,     "a needed CRL is missing, expired, not yet "       \
                                                 "valid or badly signed")                            \
  X(unacceptable,       bad_certificate,         "any other check: unhandled critical extension, "  \
                                                 "weak key or digest, name or policy constraint")    \
  X(internal_error,     internal_error,          "the gateway could not run the verification")

enum class VerifyReason : uint8_t {
#define MTLSGW_VERIFY_ENUM(name, alert, meaning) name,
  MTLSGW_VERIFY_REASONS(MTLSGW_VERIFY_ENUM)
#undef MTLSGW_VERIFY_ENUM
};

inline constexpr std::size_t kVerifyReasonCount = 0
#define MTLSGW_VERIFY_COUNT(name, alert, meaning) +1
    MTLSGW_VERIFY_REASONS(MTLSGW_VERIFY_COUNT)
#undef MTLSGW_VERIFY_COUNT
    ;

inline constexpr std::array<std::string_view, kVerifyReasonCount> kVerifyReasonNames = {
#define MTLSGW_VERIFY_NAME(name, alert, meaning) #name,
    MTLSGW_VERIFY_REASONS(MTLSGW_VERIFY_NAME)
#undef MTLSGW_VERIFY_NAME
};

inline constexpr std::array<std::string_view, kVerifyReasonCount> kVerifyReasonMeanings = {
#define MTLSGW_VERIFY_MEANING(name, alert, meaning) meaning,
    MTLSGW_VERIFY_REASONS(MTLSGW_VERIFY_MEANING)
#undef MTLSGW_VERIFY_MEANING
};

constexpr std::string_view name_of(VerifyReason reason) {
  return kVerifyReasonNames[static_cast<std::size_t>(reason)];
}

constexpr std::optional<VerifyReason> verify_reason_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kVerifyReasonCount; ++i) {
    if (kVerifyReasonNames[i] == name) return static_cast<VerifyReason>(i);
  }
  return std::nullopt;
}

// The alert a `required` host ends the handshake with. TLS 1.2 has no
// certificate_required: RFC 5246 7.4.6 answers a missing certificate with
// handshake_failure. For ok the value is meaningless (nothing is sent).
constexpr TlsAlert alert_for(VerifyReason reason, bool tls13) {
  constexpr std::array<TlsAlert, kVerifyReasonCount> alerts = {
#define MTLSGW_VERIFY_ALERT(name, alert, meaning) TlsAlert::alert,
      MTLSGW_VERIFY_REASONS(MTLSGW_VERIFY_ALERT)
#undef MTLSGW_VERIFY_ALERT
  };
  if (reason == VerifyReason::no_certificate && !tls13) return TlsAlert::handshake_failure;
  return alerts[static_cast<std::size_t>(reason)];
}

}  // namespace mtlsgw::tls
