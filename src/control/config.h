#pragma once
// The gateway's configuration file (JSON): docs/config.md is its reference.
// Parsing is strict: an unknown field is an error, so that a typo never
// silently leaves a protection off. Errors name the field as a path
// ("ports[0].gateway") and say what is wrong with it.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

// A TCP listener and the built-in service behind it (issue 3); the TLS
// listeners of issue 4 join these.
struct ListenerConfig {
  uint16_t port = 0;
  std::string service;           // echo, discard, chargen, relay
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
  uint32_t keepalive_idle_s = 0;
};

struct Config {
  std::vector<PortConfig> ports;
  std::vector<ListenerConfig> listeners;
  TcpSettings tcp;
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string path, const std::string& problem)
      : std::runtime_error(path.empty() ? problem : path + ": " + problem), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The embedded default: port 0 at 198.18.0.2/24 behind 198.18.0.1, the
// net_tap topology of scripts/gateway-netns.
Config default_config();
const char* default_config_json();

Config parse_config(std::string_view json_text);
Config load_config_file(const std::string& path);

}  // namespace mtlsgw::control
