#include "control/default_config.h"

#include <unistd.h>

namespace mtlsgw::control {

namespace {

constexpr const char* kDefaultConfig = R"({
  "ports": [
    {"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}
  ]
})";

constexpr const char* kDemoTlsConfig = R"({
  "ports": [
    {"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}
  ],
  "listeners": [{"port": 443, "service": "tls"}],
  "cas": [{"name": "devices", "cert": "devices-ca.pem", "crl": "devices.crl.pem"}],
  "hosts": [
    {"name": "api.example.test", "cert": "server-api-ecdsa.pem", "key": "server-api-ecdsa.key",
     "mtls": "required", "client_cas": ["devices"],
     "upstream": "198.18.0.1:8080", "forward": "http"}
  ],
  "access_log": {"path": "-"}
})";

constexpr const char* kDemoFiles[] = {"devices-ca.pem", "devices.crl.pem", "server-api-ecdsa.pem",
                                      "server-api-ecdsa.key"};

}  // namespace

const char* default_config_json() { return kDefaultConfig; }

const char* demo_tls_config_json() { return kDemoTlsConfig; }

bool demo_pki_present(const std::string& dir) {
  for (const char* file : kDemoFiles) {
    if (access((dir + "/" + file).c_str(), R_OK) != 0) return false;
  }
  return true;
}

Config default_config(const std::string& demo_pki_dir) {
  if (!demo_pki_dir.empty() && demo_pki_present(demo_pki_dir)) return parse_config(kDemoTlsConfig, demo_pki_dir);
  return parse_config(kDefaultConfig);
}

}  // namespace mtlsgw::control
