#pragma once
// The gateway's configuration file (JSON): docs/config.md is its reference.
// Parsing is strict: an unknown field is an error, so that a typo never
// silently leaves a protection off. Errors name the field as a path
// ("ports[0].gateway") and say what is wrong with it.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::control {

struct PortConfig {
  uint16_t port_id = 0;
  net::Ipv4Prefix address;
  net::Ipv4Address gateway = 0;  // 0: none
  uint16_t mtu = 1500;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
};

// A TCP listener and the service behind it: a built-in one (issue 3) or
// "tls", which terminates TLS for the hosts of the file (issue 4).
struct ListenerConfig {
  uint16_t port = 0;
  std::string service;           // echo, discard, chargen, relay, tls
  net::Ipv4Address upstream_ip = 0;  // relay only
  uint16_t upstream_port = 0;
};

// Per-worker TCP limits and behaviour ("tcp" object; every field optional).
struct TcpSettings {
  uint32_t max_connections = 8192;
  uint32_t max_half_open = 1024;
  bool syn_cookies = true;
  uint32_t buffer_size = 64 * 1024;
  uint32_t buffer_pool = 4096;
  std::string congestion = "cubic";
  uint32_t time_wait_ms = 60'000;
  uint32_t max_time_wait = 0;  // 0: max_connections / 4
  uint32_t keepalive_idle_s = 0;
};

// A CA that client certificates may chain to ("cas" entry). Paths are
// absolute: relative ones in the file resolve against the file's directory.
// The files exist, are readable and hold PEM blocks of the right kind; their
// DER is not parsed here (the TLS engine loads them).
struct CaConfig {
  std::string name;
  std::string cert_path;          // one or more CERTIFICATE blocks: a root and intermediates
  std::string crl_path;           // empty: no revocation list; else one or more X509 CRL blocks
  // The text of both, read at parse time ("cert"/"crl" name files,
  // "cert_pem"/"crl_pem" carry the text inline: then the paths are empty).
  std::string cert_pem;
  std::string crl_pem;
  // The deepest position the trust anchor may have, the client certificate
  // being depth 0 (the numbering of X509_STORE_CTX_get_error_depth): 1 is a
  // client certificate issued by the anchor itself. OpenSSL's verify depth
  // counts intermediates only, so it is max_depth - 1.
  uint32_t max_depth = 4;
  uint32_t certificate_count = 0;  // CERTIFICATE blocks in cert_path
  uint32_t crl_count = 0;          // X509 CRL blocks in crl_path
  bool operator==(const CaConfig&) const = default;
};

enum class MtlsMode : uint8_t { off, optional, required };
enum class ForwardMode : uint8_t { tcp, proxy_v2, http };
enum class TlsVersion : uint8_t { tls1_2, tls1_3 };

std::string_view to_string(MtlsMode mode) noexcept;
std::string_view to_string(ForwardMode mode) noexcept;
std::string_view to_string(TlsVersion version) noexcept;

// A TLS host, chosen by the ClientHello's SNI ("hosts" entry).
struct HostConfig {
  // Lower case; exact ("api.example.test") or a wildcard whose "*" is the
  // whole left-most label and stands for exactly one label
  // ("*.example.test"). An exact name takes precedence over a wildcard.
  std::string name;
  std::string cert_path;  // one or more CERTIFICATE blocks: the server certificate first
  std::string key_path;   // one unencrypted private key
  std::string cert_pem;   // their text, read at parse time (paths empty when given inline)
  std::string key_pem;
  MtlsMode mtls = MtlsMode::required;
  std::vector<std::string> client_cas;  // names from Config::cas, each once
  net::Ipv4Address upstream_ip = 0;
  uint16_t upstream_port = 0;
  ForwardMode forward = ForwardMode::tcp;
  // In order of preference; empty: ALPN is not negotiated. Default
  // {"h2", "http/1.1"}, or {"http/1.1"} with forward http.
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::tls1_2;
  bool early_data = false;  // TLS 1.3 0-RTT
  uint32_t handshake_timeout_ms = 10'000;
  uint32_t idle_timeout_ms = 300'000;
  uint32_t connect_timeout_ms = 5'000;
  bool operator==(const HostConfig&) const = default;
};

// An operator rule ("rules" entry, or `rule add`): docs/rules.md.
enum class RuleAction : uint8_t { block, allow, log };
std::string_view to_string(RuleAction action) noexcept;

struct RuleConfig {
  std::string name;        // 1 to 64 of [A-Za-z0-9_.-], unique
  std::string expression;  // the rules language; compiled when published
  RuleAction action = RuleAction::block;
  bool operator==(const RuleConfig&) const = default;
};

// An operator revocation ("revocations" entry, or `revoke add`): either a
// CA's name and a serial number, or a certificate's SHA-256 fingerprint.
struct RevocationConfig {
  std::string ca;           // a name from cas; with serial
  std::string serial;       // upper-case hex, no separators, no leading zero octets
  std::string fingerprint;  // lower-case hex, 64 digits; alone
  bool operator==(const RevocationConfig&) const = default;
};

struct AccessLogConfig {
  std::string path;  // absolute, or "-" for standard output
};

struct Config {
  std::vector<PortConfig> ports;
  std::vector<ListenerConfig> listeners;
  TcpSettings tcp;
  std::vector<CaConfig> cas;
  std::vector<HostConfig> hosts;
  // A host name from hosts (lower case): it gets the ClientHellos without SNI
  // or with an SNI no host matches. Empty: those are refused with an
  // unrecognized_name alert (RFC 6066 section 3).
  std::string default_host;
  std::optional<AccessLogConfig> access_log;
  std::vector<RuleConfig> rules;  // in evaluation order
  std::vector<RevocationConfig> revocations;
  // Accepted but probably not what was meant, as "path: problem" lines for
  // the caller to print (--check-config does).
  std::vector<std::string> warnings;

  const CaConfig* find_ca(std::string_view name) const noexcept;
  const HostConfig* find_host(std::string_view name) const noexcept;  // by exact name
  const RuleConfig* find_rule(std::string_view name) const noexcept;
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string path, const std::string& problem)
      : std::runtime_error(path.empty() ? problem : path + ": " + problem), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// One entry of a section, checked as the file's parser checks it (the
// control socket's `host add`, `ca add`, `rule add` and `revoke add` take
// the same objects). `path` prefixes the field names in errors; `config`
// supplies the names an entry may refer to (client_cas, a revocation's ca)
// and collects warnings. Duplicate names are the caller's to check.
HostConfig parse_host_entry(const nlohmann::json& value, const std::string& path, const std::string& base_dir,
                            Config& config);
CaConfig parse_ca_entry(const nlohmann::json& value, const std::string& path, const std::string& base_dir,
                        Config& config);
RuleConfig parse_rule_entry(const nlohmann::json& value, const std::string& path);
RevocationConfig parse_revocation_entry(const nlohmann::json& value, const std::string& path, const Config& config);
// A serial number as hex (colon-separated bytes allowed, any case) in the form
// RevocationConfig keeps; throws ConfigError at path when it is not one.
std::string normalize_serial(std::string_view text, const std::string& path);
std::string normalize_fingerprint(std::string_view text, const std::string& path);

// Relative file names in the text resolve against base_dir (the current
// directory when it is empty); load_config_file uses the file's directory.
Config parse_config(std::string_view json_text, const std::string& base_dir = "");
Config load_config_file(const std::string& path);

}  // namespace mtlsgw::control
