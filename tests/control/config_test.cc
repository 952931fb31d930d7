#include <cstdlib>

#include "control/config.h"
#include "control/default_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace mtlsgw::control {
namespace {

// The demo's TLS part comes with the embedded default only where its PKI is
// (scripts/demo makes it in kDemoPkiDir); the test PKI has the same files.
TEST(Config, EmbeddedDefaultServesTheDemoHostWhenThePkiIsThere) {
  const char* pki = std::getenv("MTLSGW_TEST_PKI");
  ASSERT_NE(pki, nullptr) << "meson sets MTLSGW_TEST_PKI";
  ASSERT_TRUE(demo_pki_present(pki));
  const Config c = default_config(pki);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 443);
  EXPECT_EQ(c.listeners[0].service, "tls");
  ASSERT_EQ(c.hosts.size(), 1u);
  EXPECT_EQ(c.hosts[0].name, "api.example.test");
  EXPECT_EQ(c.hosts[0].cert_path, std::string(pki) + "/server-api-ecdsa.pem");
  EXPECT_EQ(c.hosts[0].mtls, MtlsMode::required);
  EXPECT_EQ(c.hosts[0].forward, ForwardMode::http);
  EXPECT_EQ(net::format_ipv4(c.hosts[0].upstream_ip), "198.18.0.1");
  EXPECT_EQ(c.hosts[0].upstream_port, 8080);
  ASSERT_EQ(c.cas.size(), 1u);
  EXPECT_EQ(c.cas[0].crl_path, std::string(pki) + "/devices.crl.pem");
  ASSERT_TRUE(c.access_log.has_value());
  EXPECT_EQ(c.access_log->path, "-");
  EXPECT_TRUE(c.warnings.empty());

  EXPECT_FALSE(demo_pki_present("/nonexistent/demo-pki"));
  EXPECT_TRUE(default_config("/nonexistent/demo-pki").listeners.empty());
}

TEST(Config, EmbeddedDefaultIsTheTapTopology) {
  Config c = default_config("/nonexistent/demo-pki");
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].port_id, 0);
  EXPECT_EQ(net::format_ipv4(c.ports[0].address.address), "198.18.0.2");
  EXPECT_EQ(c.ports[0].address.length, 24);
  EXPECT_EQ(net::format_ipv4(c.ports[0].gateway), "198.18.0.1");
  EXPECT_EQ(c.ports[0].mtu, 1500);
}

TEST(Config, ParsesEveryPortField) {
  Config c = parse_config(R"({"ports": [
      {"port_id": 1, "address": "198.18.4.10/22", "gateway": "198.18.4.1", "mtu": 1400,
       "rx_descriptors": 2048, "tx_descriptors": 512},
      {"port_id": 0, "address": "198.19.0.2/30"}]})");
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].port_id, 1);
  EXPECT_EQ(c.ports[0].mtu, 1400);
  EXPECT_EQ(c.ports[0].rx_descriptors, 2048);
  EXPECT_EQ(c.ports[0].tx_descriptors, 512);
  EXPECT_EQ(c.ports[1].gateway, 0u);
}

// Every error names the field and the problem.
struct BadConfig {
  const char* json;
  const char* path;
  const char* message_part;
};

class ConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrors, NameTheFieldAndTheProblem) {
  const BadConfig& bad = GetParam();
  try {
    parse_config(bad.json);
    FAIL() << "accepted: " << bad.json;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), bad.path) << e.what();
    EXPECT_NE(std::string(e.what()).find(bad.message_part), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        BadConfig{"{", "", "invalid JSON"},
        BadConfig{"[]", "", "top level must be an object"},
        BadConfig{"{}", "ports", "is required"},
        BadConfig{R"({"ports": {}})", "ports", "expected an array"},
        BadConfig{R"({"ports": []})", "ports", "at least one"},
        BadConfig{R"({"ports": [], "listners": []})", "listners", "unknown field"},
        BadConfig{R"({"ports": [7]})", "ports[0]", "expected an object"},
        BadConfig{R"({"ports": [{"address": "198.18.0.2/24"}]})", "ports[0].port_id", "is required"},
        BadConfig{R"({"ports": [{"port_id": -1, "address": "198.18.0.2/24"}]})", "ports[0].port_id",
                  "out of range"},
        BadConfig{R"({"ports": [{"port_id": "0", "address": "198.18.0.2/24"}]})",
                  "ports[0].port_id", "expected an integer"},
        BadConfig{R"({"ports": [{"port_id": 0}]})", "ports[0].address", "is required"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2"}]})", "ports[0].address",
                  "prefix length"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.0/24"}]})", "ports[0].address",
                  "network or broadcast"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.255/24"}]})",
                  "ports[0].address", "network or broadcast"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/31"}]})", "ports[0].address",
                  "prefix length"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "127.0.0.2/8"}]})", "ports[0].address",
                  "cannot be a host address"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.19.0.1"}]})",
                  "ports[0].gateway", "not a host on"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.2"}]})",
                  "ports[0].gateway", "own address"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "gateway": "x"}]})",
                  "ports[0].gateway", "expected an IPv4 address"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "mtu": 20}]})",
                  "ports[0].mtu", "out of range"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "mtu": 9000}]})",
                  "ports[0].mtu", "out of range"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"},
                               {"port_id": 1, "address": "198.18.0.9/16"}]})",
                  "ports[1].address", "overlaps ports[0].address"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24", "speed": 1}]})",
                  "ports[0].speed", "unknown field"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"},
                               {"port_id": 0, "address": "198.19.0.2/24"}]})",
                  "ports[1].port_id", "listed twice"},
        // A worker's buffer pool above 4 GiB: the field the file sets is
        // named, buffer_pool when it sets both.
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
                     "tcp": {"buffer_pool": 65537, "buffer_size": 65536}})",
                  "tcp.buffer_pool", "65537 buffers of 64 KiB are 4194368 KiB per worker, more than the 4 GiB"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
                     "tcp": {"buffer_pool": 1048576, "buffer_size": 16777216}})",
                  "tcp.buffer_pool", "1048576 buffers of 16 MiB are 16384 GiB per worker"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
                     "tcp": {"buffer_size": 16777216}})",
                  "tcp.buffer_size", "4096 buffers of 16 MiB are 64 GiB per worker"},
        BadConfig{R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
                     "tcp": {"buffer_pool": 1048576}})",
                  "tcp.buffer_pool", "1048576 buffers of 64 KiB are 64 GiB per worker"}));

// The largest pool a worker may reserve is 4 GiB (docs/config.md), reached
// exactly with either field at its maximum.
TEST(Config, BufferPoolUpToFourGibPerWorkerIsAccepted) {
  const Config at_limit = parse_config(R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
      "tcp": {"buffer_pool": 65536, "buffer_size": 65536}})");
  EXPECT_EQ(uint64_t{at_limit.tcp.buffer_pool} * at_limit.tcp.buffer_size, uint64_t{4} << 30);
  const Config large_buffers = parse_config(R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
      "tcp": {"buffer_pool": 256, "buffer_size": 16777216}})");
  EXPECT_EQ(large_buffers.tcp.buffer_size, 16777216u);
  const Config many_buffers = parse_config(R"({"ports": [{"port_id": 0, "address": "198.18.0.2/24"}],
      "tcp": {"buffer_pool": 1048576, "buffer_size": 4096}})");
  EXPECT_EQ(many_buffers.tcp.buffer_pool, 1048576u);
}

TEST(Config, LoadsFilesAndReportsUnreadableOnes) {
  const std::string path = ::testing::TempDir() + "/mtlsgw_config_test.json";
  {
    std::ofstream out(path);
    out << default_config_json();
  }
  EXPECT_EQ(load_config_file(path).ports.size(), 1u);
  std::remove(path.c_str());
  EXPECT_THROW(load_config_file(path), ConfigError);
}

}  // namespace
}  // namespace mtlsgw::control
