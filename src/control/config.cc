#include "control/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <tuple>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace mtlsgw::control {
namespace {

using nlohmann::json;

constexpr const char* kDefaultConfig = R"({
  "ports": [
    {"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}
  ]
})";

// Each worker reserves buffer_pool x buffer_size bytes at start, in one
// allocation (TcpStack). Past this a pool is a typo, or a per-worker size
// taken for a gateway-wide one (docs/config.md), and the allocation would
// likely fail at start: refuse it while the file is checked.
constexpr uint64_t kMaxBufferPoolBytes = uint64_t{4} << 30;

std::string type_name(const json& value) { return value.type_name(); }

std::string byte_size_text(uint64_t bytes) {
  if (bytes % (uint64_t{1} << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes % (uint64_t{1} << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes % (uint64_t{1} << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

void check_fields(const json& object, const std::string& path,
                  std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (auto k : known) found = found || k == key;
    if (!found) {
      std::string names;
      for (auto k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      throw ConfigError(path.empty() ? key : path + "." + key,
                        fmt::format("unknown field (known here: {})", names));
    }
  }
}

const json& require(const json& object, const std::string& path, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw ConfigError(path.empty() ? std::string(key) : path + "." + key, "is required");
  return *it;
}

uint64_t as_uint(const json& value, const std::string& path, uint64_t min, uint64_t max) {
  if (!value.is_number_integer()) {
    throw ConfigError(path, fmt::format("expected an integer, got {}", type_name(value)));
  }
  const bool negative = !value.is_number_unsigned() && value.get<int64_t>() < 0;
  const uint64_t v = negative ? 0 : value.get<uint64_t>();
  if (negative || v < min || v > max) {
    throw ConfigError(path, fmt::format("{} is out of range [{}, {}]", value.dump(), min, max));
  }
  return v;
}

std::string as_string(const json& value, const std::string& path) {
  if (!value.is_string()) {
    throw ConfigError(path, fmt::format("expected a string, got {}", type_name(value)));
  }
  return value.get<std::string>();
}

PortConfig parse_port(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path,
               {"port_id", "address", "gateway", "mtu", "rx_descriptors", "tx_descriptors"});
  PortConfig port;
  port.port_id =
      static_cast<uint16_t>(as_uint(require(value, path, "port_id"), path + ".port_id", 0, 1023));

  const std::string address_path = path + ".address";
  const std::string address_text = as_string(require(value, path, "address"), address_path);
  auto prefix = net::parse_ipv4_prefix(address_text);
  if (!prefix) {
    throw ConfigError(address_path,
                      fmt::format("expected an IPv4 address with prefix length like "
                                  "\"198.18.0.2/24\", got \"{}\"",
                                  address_text));
  }
  if (prefix->length == 0 || prefix->length > 30) {
    throw ConfigError(address_path,
                      fmt::format("prefix length /{} leaves no room for a neighbour (use /1 to /30)",
                                  prefix->length));
  }
  if (prefix->address == (prefix->address & prefix->mask()) ||
      prefix->address == prefix->directed_broadcast()) {
    throw ConfigError(address_path, fmt::format("{} is the network or broadcast address of {}",
                                                net::format_ipv4(prefix->address), address_text));
  }
  if (net::is_martian_source(prefix->address)) {
    throw ConfigError(address_path, fmt::format("{} cannot be a host address",
                                                net::format_ipv4(prefix->address)));
  }
  port.address = *prefix;

  if (auto it = value.find("gateway"); it != value.end()) {
    const std::string gateway_path = path + ".gateway";
    const std::string text = as_string(*it, gateway_path);
    auto gateway = net::parse_ipv4(text);
    if (!gateway) {
      throw ConfigError(gateway_path,
                        fmt::format("expected an IPv4 address like \"198.18.0.1\", got \"{}\"", text));
    }
    if (!port.address.contains(*gateway) || *gateway == port.address.directed_broadcast() ||
        *gateway == (port.address.address & port.address.mask())) {
      throw ConfigError(gateway_path,
                        fmt::format("{} is not a host on {}", text, address_text));
    }
    if (*gateway == port.address.address) {
      throw ConfigError(gateway_path, "is the port's own address");
    }
    port.gateway = *gateway;
  }
  if (auto it = value.find("mtu"); it != value.end()) {
    // RFC 791: every host must accept 68. Above 1500 a frame no longer fits
    // one mbuf and the stack parses single-segment frames only, so jumbo
    // frames wait for multi-segment support.
    port.mtu = static_cast<uint16_t>(as_uint(*it, path + ".mtu", 68, 1500));
  }
  if (auto it = value.find("rx_descriptors"); it != value.end()) {
    port.rx_descriptors = static_cast<uint16_t>(as_uint(*it, path + ".rx_descriptors", 64, 16384));
  }
  if (auto it = value.find("tx_descriptors"); it != value.end()) {
    port.tx_descriptors = static_cast<uint16_t>(as_uint(*it, path + ".tx_descriptors", 64, 16384));
  }
  return port;
}

std::pair<net::Ipv4Address, uint16_t> parse_endpoint(const json& value, const std::string& path) {
  const std::string text = as_string(value, path);
  const auto colon = text.rfind(':');
  std::optional<net::Ipv4Address> address;
  unsigned port = 0;
  if (colon != std::string::npos) {
    address = net::parse_ipv4(std::string_view(text).substr(0, colon));
    const char* begin = text.data() + colon + 1;
    const char* end = text.data() + text.size();
    auto [next, ec] = std::from_chars(begin, end, port);
    if (ec != std::errc{} || next != end || begin == end) port = 0;
  }
  if (!address || port == 0 || port > 65535) {
    throw ConfigError(path, fmt::format("expected \"A.B.C.D:PORT\" like \"198.18.0.1:9000\", got \"{}\"", text));
  }
  return {*address, static_cast<uint16_t>(port)};
}

ListenerConfig parse_listener(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"port", "service", "upstream"});
  ListenerConfig listener;
  listener.port = static_cast<uint16_t>(as_uint(require(value, path, "port"), path + ".port", 1, 65535));
  listener.service = as_string(require(value, path, "service"), path + ".service");
  static constexpr std::string_view kServices[] = {"echo", "discard", "chargen", "relay"};
  if (std::find(std::begin(kServices), std::end(kServices), listener.service) == std::end(kServices)) {
    throw ConfigError(path + ".service",
                      fmt::format("unknown service \"{}\" (echo, discard, chargen, relay)", listener.service));
  }
  const auto upstream = value.find("upstream");
  if (listener.service == "relay") {
    if (upstream == value.end()) throw ConfigError(path + ".upstream", "is required for a relay");
    std::tie(listener.upstream_ip, listener.upstream_port) = parse_endpoint(*upstream, path + ".upstream");
  } else if (upstream != value.end()) {
    throw ConfigError(path + ".upstream", fmt::format("only a relay has an upstream, not {}", listener.service));
  }
  return listener;
}

TcpSettings parse_tcp(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"max_connections", "max_half_open", "syn_cookies", "buffer_size",
                             "buffer_pool", "congestion", "time_wait_ms", "keepalive_idle_s"});
  TcpSettings tcp;
  if (auto it = value.find("max_connections"); it != value.end()) {
    tcp.max_connections = static_cast<uint32_t>(as_uint(*it, path + ".max_connections", 2, 1u << 20));
  }
  if (auto it = value.find("max_half_open"); it != value.end()) {
    tcp.max_half_open = static_cast<uint32_t>(as_uint(*it, path + ".max_half_open", 0, 1u << 20));
  }
  if (auto it = value.find("syn_cookies"); it != value.end()) {
    if (!it->is_boolean()) throw ConfigError(path + ".syn_cookies", fmt::format("expected true or false, got {}", type_name(*it)));
    tcp.syn_cookies = it->get<bool>();
  }
  if (auto it = value.find("buffer_size"); it != value.end()) {
    tcp.buffer_size = static_cast<uint32_t>(as_uint(*it, path + ".buffer_size", 4096, 1u << 24));
    if ((tcp.buffer_size & (tcp.buffer_size - 1)) != 0) {
      throw ConfigError(path + ".buffer_size", fmt::format("{} is not a power of two", tcp.buffer_size));
    }
  }
  if (auto it = value.find("buffer_pool"); it != value.end()) {
    tcp.buffer_pool = static_cast<uint32_t>(as_uint(*it, path + ".buffer_pool", 2, 1u << 20));
  }
  if (auto it = value.find("congestion"); it != value.end()) {
    tcp.congestion = as_string(*it, path + ".congestion");
    if (tcp.congestion != "cubic" && tcp.congestion != "newreno") {
      throw ConfigError(path + ".congestion", fmt::format("\"{}\" is not cubic or newreno", tcp.congestion));
    }
  }
  if (auto it = value.find("time_wait_ms"); it != value.end()) {
    tcp.time_wait_ms = static_cast<uint32_t>(as_uint(*it, path + ".time_wait_ms", 0, 240'000));
  }
  if (auto it = value.find("keepalive_idle_s"); it != value.end()) {
    tcp.keepalive_idle_s = static_cast<uint32_t>(as_uint(*it, path + ".keepalive_idle_s", 0, 86'400));
  }
  // Two 32-bit factors: the product cannot overflow 64 bits.
  const uint64_t pool_bytes = uint64_t{tcp.buffer_pool} * tcp.buffer_size;
  if (pool_bytes > kMaxBufferPoolBytes) {
    // Name the field the file sets (buffer_pool when it sets both): the
    // other one may be a default the user never wrote.
    const char* field = value.contains("buffer_pool") ? "buffer_pool" : "buffer_size";
    throw ConfigError(path + "." + field,
                      fmt::format("{} buffers of {} are {} per worker, more than the {} a worker "
                                  "may reserve (buffer_pool x buffer_size)",
                                  tcp.buffer_pool, byte_size_text(tcp.buffer_size),
                                  byte_size_text(pool_bytes), byte_size_text(kMaxBufferPoolBytes)));
  }
  return tcp;
}

}  // namespace

const char* default_config_json() { return kDefaultConfig; }

Config default_config() { return parse_config(kDefaultConfig); }

Config parse_config(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // nlohmann reports "[json.exception.parse_error.101] parse error at line
    // 3, column 5: ..."; keep the location and the reason.
    std::string what = e.what();
    auto pos = what.find("] ");
    throw ConfigError("", "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  if (!root.is_object()) {
    throw ConfigError("", fmt::format("the top level must be an object, got {}", type_name(root)));
  }
  check_fields(root, "", {"ports", "listeners", "tcp"});
  Config config;
  const json& ports = require(root, "", "ports");
  if (!ports.is_array()) {
    throw ConfigError("ports", fmt::format("expected an array, got {}", type_name(ports)));
  }
  if (ports.empty()) throw ConfigError("ports", "needs at least one port");
  std::set<uint16_t> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string path = fmt::format("ports[{}]", i);
    PortConfig port = parse_port(ports[i], path);
    if (!seen.insert(port.port_id).second) {
      throw ConfigError(path + ".port_id", fmt::format("port {} is listed twice", port.port_id));
    }
    for (size_t j = 0; j < config.ports.size(); ++j) {
      const net::Ipv4Prefix& other = config.ports[j].address;
      // Overlapping on-link prefixes would make the egress port ambiguous.
      const uint8_t shorter = std::min(other.length, port.address.length);
      const net::Ipv4Prefix common{other.address, shorter};
      if (common.contains(port.address.address)) {
        throw ConfigError(path + ".address",
                          fmt::format("overlaps ports[{}].address ({}/{})", j,
                                      net::format_ipv4(other.address), other.length));
      }
    }
    config.ports.push_back(port);
  }
  if (auto it = root.find("listeners"); it != root.end()) {
    if (!it->is_array()) {
      throw ConfigError("listeners", fmt::format("expected an array, got {}", type_name(*it)));
    }
    std::set<uint16_t> ports;
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string path = fmt::format("listeners[{}]", i);
      ListenerConfig listener = parse_listener((*it)[i], path);
      if (!ports.insert(listener.port).second) {
        throw ConfigError(path + ".port", fmt::format("port {} is listened on twice", listener.port));
      }
      config.listeners.push_back(listener);
    }
  }
  if (auto it = root.find("tcp"); it != root.end()) config.tcp = parse_tcp(*it, "tcp");
  return config;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("", fmt::format("cannot read config file {}", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_config(buffer.str());
}

}  // namespace mtlsgw::control
