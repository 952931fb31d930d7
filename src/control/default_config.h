#pragma once
// The configuration the gateway runs without --config: port 0 at
// 198.18.0.2/24 behind 198.18.0.1, the net_tap topology of
// scripts/gateway-netns; and, when a demo PKI has been made (scripts/demo
// runs scripts/make-test-pki into kDemoPkiDir), the demo of the product: a
// TLS listener on 443 for api.example.test, client certificates required
// from the "devices" CA with its CRL, HTTP forwarding with identity headers
// to a demo origin at 198.18.0.1:8080, and the access log on standard
// output. Without the PKI the TLS part is left out, and the start says so,
// rather than the gateway refusing to start for files nobody asked for.

#include <string>

#include "control/config.h"

namespace mtlsgw::control {

inline constexpr const char* kDemoPkiDir = "/var/lib/mtlsgw/demo-pki";

// The embedded default; demo_pki_dir: where to look for the demo PKI.
Config default_config(const std::string& demo_pki_dir = kDemoPkiDir);
// The two parts, as JSON text (the TLS part's file names are relative to the
// PKI directory).
const char* default_config_json();
const char* demo_tls_config_json();
// The files the demo part needs are all in dir.
bool demo_pki_present(const std::string& dir);

}  // namespace mtlsgw::control
