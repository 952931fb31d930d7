#include "control/config_writer.h"

#include <fmt/format.h>

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

std::string endpoint(net::Ipv4Address ip, uint16_t port) { return fmt::format("{}:{}", net::format_ipv4(ip), port); }

json port_to_json(const PortConfig& port) {
  json out = {{"port_id", port.port_id},
              {"address", fmt::format("{}/{}", net::format_ipv4(port.address.address), port.address.length)},
              {"mtu", port.mtu},
              {"rx_descriptors", port.rx_descriptors},
              {"tx_descriptors", port.tx_descriptors}};
  if (port.gateway != 0) out["gateway"] = net::format_ipv4(port.gateway);
  return out;
}

json listener_to_json(const ListenerConfig& listener) {
  json out = {{"port", listener.port}, {"service", listener.service}};
  if (listener.upstream_ip != 0) out["upstream"] = endpoint(listener.upstream_ip, listener.upstream_port);
  return out;
}

json tcp_to_json(const TcpSettings& tcp) {
  return {{"max_connections", tcp.max_connections},
          {"max_half_open", tcp.max_half_open},
          {"syn_cookies", tcp.syn_cookies},
          {"buffer_size", tcp.buffer_size},
          {"buffer_pool", tcp.buffer_pool},
          {"congestion", tcp.congestion},
          {"time_wait_ms", tcp.time_wait_ms},
          {"max_time_wait", tcp.max_time_wait},
          {"keepalive_idle_s", tcp.keepalive_idle_s}};
}

}  // namespace

json ca_to_json(const CaConfig& ca) {
  json out = {{"name", ca.name}, {"cert_pem", ca.cert_pem}, {"max_depth", ca.max_depth}};
  if (!ca.crl_pem.empty()) out["crl_pem"] = ca.crl_pem;
  return out;
}

json host_to_json(const HostConfig& host, bool with_key) {
  json out = {{"name", host.name},
              {"cert_pem", host.cert_pem},
              {"mtls", std::string(to_string(host.mtls))},
              {"client_cas", host.client_cas},
              {"upstream", endpoint(host.upstream_ip, host.upstream_port)},
              {"forward", std::string(to_string(host.forward))},
              {"alpn", host.alpn},
              {"min_version", std::string(to_string(host.min_version))},
              {"early_data", host.early_data},
              {"handshake_timeout_ms", host.handshake_timeout_ms},
              {"idle_timeout_ms", host.idle_timeout_ms},
              {"connect_timeout_ms", host.connect_timeout_ms}};
  if (with_key) out["key_pem"] = host.key_pem;
  return out;
}

json rule_to_json(const RuleConfig& rule) {
  return {{"name", rule.name}, {"expression", rule.expression}, {"action", std::string(to_string(rule.action))}};
}

json revocation_to_json(const RevocationConfig& revocation) {
  if (!revocation.fingerprint.empty()) return {{"fingerprint", revocation.fingerprint}};
  return {{"ca", revocation.ca}, {"serial", revocation.serial}};
}

json control_sections_to_json(const Config& config) {
  json out = json::object();
  out["cas"] = json::array();
  for (const CaConfig& ca : config.cas) out["cas"].push_back(ca_to_json(ca));
  out["hosts"] = json::array();
  for (const HostConfig& host : config.hosts) out["hosts"].push_back(host_to_json(host, true));
  if (!config.default_host.empty()) out["default_host"] = config.default_host;
  out["rules"] = json::array();
  for (const RuleConfig& rule : config.rules) out["rules"].push_back(rule_to_json(rule));
  out["revocations"] = json::array();
  for (const RevocationConfig& r : config.revocations) out["revocations"].push_back(revocation_to_json(r));
  return out;
}

json config_to_json(const Config& config) {
  json out = json::object();
  out["ports"] = json::array();
  for (const PortConfig& port : config.ports) out["ports"].push_back(port_to_json(port));
  out["listeners"] = json::array();
  for (const ListenerConfig& listener : config.listeners) out["listeners"].push_back(listener_to_json(listener));
  out["tcp"] = tcp_to_json(config.tcp);
  if (config.access_log) out["access_log"] = {{"path", config.access_log->path}};
  out.update(control_sections_to_json(config));
  return out;
}

}  // namespace mtlsgw::control
