#pragma once
// `mtlsgwctl revoke add --cert FILE` revokes a certificate by its SHA-256
// fingerprint, computed here: the fingerprint names exactly one certificate
// whatever CA issued it, and it is the access log's fingerprint_sha256, so
// an operator can match the two.

#include <optional>
#include <string>
#include <string_view>

namespace mtlsgw::ctl {

// SHA-256 of the DER of the first certificate in pem, lower-case hex.
std::optional<std::string> certificate_fingerprint(std::string_view pem, std::string& error);

}  // namespace mtlsgw::ctl
