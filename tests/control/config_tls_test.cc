// The TLS sections of the configuration file (issue 4): the tls listener,
// cas, hosts, default_host and access_log, with the certificate, key and CRL
// files they name. The files are dummy PEM: only their framing is checked at
// parse time (docs/config.md), so no real certificate is needed here.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "control/config.h"
#include "control/config_writer.h"
#include "control/default_config.h"

namespace mtlsgw::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string pem(std::string_view label, std::string_view body = "MIIBCgKCAQEAdummy+/0=") {
  return fmt::format("-----BEGIN {0}-----\n{1}\n-----END {0}-----\n", label, body);
}

class TlsFiles : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    std::string pattern = ::testing::TempDir() + "/mtlsgw_config_tls_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = fs::path(pattern).lexically_normal().string();
    // A root and an intermediate, as a CA file may hold both.
    write("ca.pem", pem("CERTIFICATE") + pem("CERTIFICATE"));
    // One file may hold several CRLs: one per CA of the chain.
    write("ca.crl", pem("X509 CRL") + pem("X509 CRL"));
    write("server.pem", pem("CERTIFICATE") + pem("CERTIFICATE"));
    write("server.key", pem("PRIVATE KEY"));
    // What openssl x509 -text and openssl ecparam -genkey write, and a file
    // copied from Windows: text around the blocks, extra blocks, CRLF.
    write("text.pem", "Certificate:\n    Data:\n        Version: 3 (0x2)\n" + pem("CERTIFICATE"));
    write("ec.key", pem("EC PARAMETERS", "BggqhkjOPQMBBw==") + pem("EC PRIVATE KEY"));
    write("rsa.key", "-----BEGIN RSA PRIVATE KEY-----\r\nMIIEow==\r\n-----END RSA PRIVATE KEY-----\r\n");
    write("combined.pem", pem("CERTIFICATE") + pem("PRIVATE KEY"));
    // Bad files.
    write("empty.pem", "");
    write("der.pem", std::string("\x30\x82\x01\x0a\x02\x82\x01\x01\x00\xc3", 10));
    write("key_only.pem", pem("PRIVATE KEY"));
    write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n");
    write("mismatched.pem", "-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n-----END X509 CRL-----\n");
    write("garbage.pem", "-----BEGIN CERTIFICATE-----\nMIIB{not base64}\n-----END CERTIFICATE-----\n");
    write("empty_block.pem", "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n");
    write("encrypted.key", pem("ENCRYPTED PRIVATE KEY"));
    write("legacy_encrypted.key",
          "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
          "DEK-Info: AES-256-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIEow==\n"
          "-----END RSA PRIVATE KEY-----\n");
    write("two.key", pem("PRIVATE KEY") + pem("EC PRIVATE KEY"));
    write("public.key", pem("PRIVATE KEY"), fs::perms::owner_read | fs::perms::owner_write |
                                               fs::perms::group_read | fs::perms::others_read);
    write("ca_with_key.pem", pem("CERTIFICATE") + pem("RSA PRIVATE KEY"));
    write("cert_as_crl.crl", pem("CERTIFICATE"));
    write("huge.pem", "");
    fs::resize_file(dir_ + "/huge.pem", (64u << 20) + 1);  // sparse: costs no disk
    fs::create_directory(dir_ + "/a_directory.pem");
    // Opening a FIFO blocks until a writer comes: the check must not open it.
    ASSERT_EQ(::mkfifo((dir_ + "/a_fifo.pem").c_str(), 0600), 0);
    fs::create_directory(dir_ + "/logs");
  }

  static void TearDownTestSuite() { fs::remove_all(dir_); }

 protected:
  static void write(const std::string& name, const std::string& content,
                    fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
    fs::permissions(dir_ + "/" + name, perms);
  }

  // One tls listener, the "devices" CA and one host, every optional field
  // left out.
  static json base() {
    return json::parse(R"({
      "ports": [{"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}],
      "listeners": [{"port": 443, "service": "tls"}],
      "cas": [{"name": "devices", "cert": "ca.pem", "crl": "ca.crl"}],
      "hosts": [{"name": "api.example.test", "cert": "server.pem", "key": "server.key",
                 "client_cas": ["devices"], "upstream": "198.18.0.1:8080"}]})");
  }

  static Config parse(const json& config) { return parse_config(config.dump(), dir_); }

  static std::string dir_;
};

std::string TlsFiles::dir_;

TEST_F(TlsFiles, ParsesTheIssueExampleWithDefaults) {
  const Config c = parse(base());
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].service, "tls");
  EXPECT_EQ(c.listeners[0].upstream_ip, 0u);

  ASSERT_EQ(c.cas.size(), 1u);
  const CaConfig& ca = c.cas[0];
  EXPECT_EQ(ca.name, "devices");
  EXPECT_EQ(ca.cert_path, dir_ + "/ca.pem");
  EXPECT_EQ(ca.crl_path, dir_ + "/ca.crl");
  EXPECT_EQ(ca.max_depth, 4u);
  EXPECT_EQ(ca.certificate_count, 2u);
  EXPECT_EQ(ca.crl_count, 2u);

  ASSERT_EQ(c.hosts.size(), 1u);
  const HostConfig& host = c.hosts[0];
  EXPECT_EQ(host.name, "api.example.test");
  EXPECT_EQ(host.cert_path, dir_ + "/server.pem");
  EXPECT_EQ(host.key_path, dir_ + "/server.key");
  EXPECT_EQ(host.mtls, MtlsMode::required);
  EXPECT_EQ(host.client_cas, std::vector<std::string>{"devices"});
  EXPECT_EQ(net::format_ipv4(host.upstream_ip), "198.18.0.1");
  EXPECT_EQ(host.upstream_port, 8080);
  EXPECT_EQ(host.forward, ForwardMode::tcp);
  EXPECT_EQ(host.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(host.min_version, TlsVersion::tls1_2);
  EXPECT_FALSE(host.early_data);
  EXPECT_EQ(host.handshake_timeout_ms, 10'000u);
  EXPECT_EQ(host.idle_timeout_ms, 300'000u);
  EXPECT_EQ(host.connect_timeout_ms, 5'000u);

  EXPECT_EQ(c.default_host, "");
  EXPECT_FALSE(c.access_log.has_value());
  EXPECT_EQ(c.warnings, std::vector<std::string>{});
  EXPECT_EQ(c.find_ca("devices"), &c.cas[0]);
  EXPECT_EQ(c.find_ca("Devices"), nullptr);
  EXPECT_EQ(c.find_host("api.example.test"), &c.hosts[0]);
  EXPECT_EQ(c.find_host("other.example.test"), nullptr);
}

TEST_F(TlsFiles, ParsesEveryHostAndCaField) {
  json j = base();
  j["cas"][0] = json::parse(R"({"name": "Partner_CA.v2-1", "cert": "text.pem", "max_depth": 1})");
  j["cas"].push_back(json::parse(R"({"name": "devices", "cert": "ca.pem", "max_depth": 16})"));
  j["hosts"][0] = json::parse(R"({"name": "API.Example.TEST", "cert": "combined.pem",
      "key": "combined.pem", "mtls": "optional", "client_cas": ["devices", "Partner_CA.v2-1"],
      "upstream": "198.19.255.254:65535", "forward": "proxy_v2", "alpn": ["grpc-exp", "h2"],
      "min_version": "1.3", "early_data": true, "handshake_timeout_ms": 100,
      "idle_timeout_ms": 86400000, "connect_timeout_ms": 60000})");
  j["hosts"].push_back(json::parse(R"({"name": "*.example.test", "cert": "server.pem",
      "key": "ec.key", "mtls": "off", "upstream": "198.18.0.1:80", "forward": "http",
      "alpn": []})"));
  j["hosts"].push_back(json::parse(R"({"name": "localhost", "cert": "server.pem",
      "key": "rsa.key", "client_cas": ["devices"], "upstream": "198.18.0.1:80",
      "forward": "http", "handshake_timeout_ms": 120000, "idle_timeout_ms": 1000,
      "connect_timeout_ms": 100})"));
  j["default_host"] = "*.EXAMPLE.test";
  j["access_log"] = {{"path", "logs/access.log"}};
  const Config c = parse(j);

  ASSERT_EQ(c.cas.size(), 2u);
  EXPECT_EQ(c.cas[0].name, "Partner_CA.v2-1");
  EXPECT_EQ(c.cas[0].crl_path, "");
  EXPECT_EQ(c.cas[0].crl_count, 0u);
  EXPECT_EQ(c.cas[0].max_depth, 1u);
  EXPECT_EQ(c.cas[0].certificate_count, 1u);
  EXPECT_EQ(c.cas[1].max_depth, 16u);

  ASSERT_EQ(c.hosts.size(), 3u);
  const HostConfig& api = c.hosts[0];
  EXPECT_EQ(api.name, "api.example.test");
  EXPECT_EQ(api.cert_path, api.key_path);
  EXPECT_EQ(api.mtls, MtlsMode::optional);
  EXPECT_EQ(api.client_cas, (std::vector<std::string>{"devices", "Partner_CA.v2-1"}));
  EXPECT_EQ(net::format_ipv4(api.upstream_ip), "198.19.255.254");
  EXPECT_EQ(api.upstream_port, 65535);
  EXPECT_EQ(api.forward, ForwardMode::proxy_v2);
  EXPECT_EQ(api.alpn, (std::vector<std::string>{"grpc-exp", "h2"}));
  EXPECT_EQ(api.min_version, TlsVersion::tls1_3);
  EXPECT_TRUE(api.early_data);
  EXPECT_EQ(api.handshake_timeout_ms, 100u);
  EXPECT_EQ(api.idle_timeout_ms, 86'400'000u);
  EXPECT_EQ(api.connect_timeout_ms, 60'000u);

  const HostConfig& wildcard = c.hosts[1];
  EXPECT_EQ(wildcard.name, "*.example.test");
  EXPECT_EQ(wildcard.mtls, MtlsMode::off);
  EXPECT_TRUE(wildcard.client_cas.empty());
  EXPECT_EQ(wildcard.forward, ForwardMode::http);
  EXPECT_TRUE(wildcard.alpn.empty());

  // forward http negotiates HTTP/1.1 only unless told otherwise.
  EXPECT_EQ(c.hosts[2].alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_EQ(c.hosts[2].handshake_timeout_ms, 120'000u);
  EXPECT_EQ(c.hosts[2].idle_timeout_ms, 1'000u);
  EXPECT_EQ(c.hosts[2].connect_timeout_ms, 100u);

  EXPECT_EQ(c.default_host, "*.example.test");
  ASSERT_TRUE(c.access_log.has_value());
  EXPECT_EQ(c.access_log->path, dir_ + "/logs/access.log");
  EXPECT_EQ(c.warnings, std::vector<std::string>{});
}

// The control socket's state and `config dump` carry PEM text inline; a
// file's text is kept too, so the gateway loads exactly what was checked.
TEST_F(TlsFiles, PemTextInlineOrFromFilesIsKept) {
  const Config from_files = parse(base());
  EXPECT_EQ(from_files.cas[0].cert_pem, pem("CERTIFICATE") + pem("CERTIFICATE"));
  EXPECT_EQ(from_files.cas[0].crl_pem, pem("X509 CRL") + pem("X509 CRL"));
  EXPECT_EQ(from_files.hosts[0].key_pem, pem("PRIVATE KEY"));

  json config = base();
  config["cas"][0].erase("cert");
  config["cas"][0].erase("crl");
  config["cas"][0]["cert_pem"] = pem("CERTIFICATE");
  config["cas"][0]["crl_pem"] = pem("X509 CRL");
  config["hosts"][0].erase("cert");
  config["hosts"][0].erase("key");
  config["hosts"][0]["cert_pem"] = pem("CERTIFICATE");
  config["hosts"][0]["key_pem"] = pem("EC PRIVATE KEY");
  const Config inline_text = parse(config);
  EXPECT_EQ(inline_text.cas[0].cert_path, "");
  EXPECT_EQ(inline_text.cas[0].cert_pem, pem("CERTIFICATE"));
  EXPECT_EQ(inline_text.cas[0].certificate_count, 1u);
  EXPECT_EQ(inline_text.cas[0].crl_count, 1u);
  EXPECT_EQ(inline_text.hosts[0].cert_pem, pem("CERTIFICATE"));
  EXPECT_EQ(inline_text.hosts[0].key_path, "");
  EXPECT_EQ(inline_text.hosts[0].key_pem, pem("EC PRIVATE KEY"));

  config["hosts"][0]["cert"] = "server.pem";
  try {
    parse(config);
    ADD_FAILURE() << "cert and cert_pem together were accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "hosts[0].cert_pem: give either cert (a file) or cert_pem (its text), not both");
  }
  config["hosts"][0].erase("cert");
  config["hosts"][0]["key_pem"] = pem("CERTIFICATE");
  try {
    parse(config);
    ADD_FAILURE() << "a certificate as the key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "hosts[0].key_pem");
    EXPECT_NE(std::string(e.what()).find("the text holds no private key"), std::string::npos) << e.what();
  }
}

TEST_F(TlsFiles, RulesAndRevocationsAreCheckedAndNormalised) {
  json config = base();
  config["rules"] = json::parse(R"([
    {"name": "no-admin", "expression": "http.request.uri.path starts_with \"/admin\"", "action": "block"},
    {"name": "audit.all", "expression": "client.cert.presented", "action": "log"}])");
  config["revocations"] = json::parse(R"([
    {"ca": "devices", "serial": "00:1a:2B"},
    {"ca": "devices", "serial": "00:8f:12"},
    {"fingerprint": "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"}])");
  const Config c = parse(config);
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].name, "no-admin");
  EXPECT_EQ(c.rules[0].action, RuleAction::block);
  EXPECT_EQ(c.rules[1].action, RuleAction::log);
  EXPECT_EQ(c.find_rule("audit.all"), &c.rules[1]);
  ASSERT_EQ(c.revocations.size(), 3u);
  EXPECT_EQ(c.revocations[0].ca, "devices");
  EXPECT_EQ(c.revocations[0].serial, "1A2B");
  EXPECT_EQ(c.revocations[1].serial, "8F12") << "DER's sign octet is not part of the printed serial";
  EXPECT_EQ(c.revocations[2].fingerprint, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

  struct Bad {
    const char* section;
    const char* entry;
    const char* path;
    const char* message;
  };
  const Bad bad[] = {
      {"rules", R"({"name": "a b", "expression": "x", "action": "block"})", "rules[0].name",
       "\"a b\": a rule name has letters, digits, '_', '-' and '.' only"},
      {"rules", R"({"name": "a", "expression": "", "action": "block"})", "rules[0].expression", "is empty"},
      {"rules", R"({"name": "a", "expression": "x", "action": "deny"})", "rules[0].action",
       "\"deny\" is not one of block, allow, log"},
      {"revocations", R"({"ca": "nobody", "serial": "01"})", "revocations[0].ca", "no CA named \"nobody\" in cas"},
      {"revocations", R"({"ca": "devices", "serial": "0x12"})", "revocations[0].serial",
       "\"0x12\" is not a serial number (serial: 'x' is not a hex digit)"},
      {"revocations", R"({"fingerprint": "abcd"})", "revocations[0].fingerprint",
       "\"abcd\" is not a SHA-256 fingerprint (fingerprint: 2 bytes, a SHA-256 has 32)"},
      {"revocations", R"({"ca": "devices", "serial": "01", "fingerprint": "ab"})", "revocations[0].fingerprint",
       "give either a fingerprint, or a ca and a serial, not both"},
  };
  for (const Bad& b : bad) {
    json broken = base();
    broken[b.section] = json::array({json::parse(b.entry)});
    try {
      parse(broken);
      ADD_FAILURE() << b.entry << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.path(), b.path) << b.entry;
      EXPECT_EQ(std::string(e.what()), std::string(b.path) + ": " + b.message);
    }
  }
  json twice = base();
  twice["rules"] = json::parse(R"([{"name": "a", "expression": "x", "action": "log"},
                                   {"name": "a", "expression": "y", "action": "log"}])");
  EXPECT_THROW(parse(twice), ConfigError);
}

// `config dump` and the state directory write the config back; what they
// write parses to the same config, with every PEM inline.
TEST_F(TlsFiles, TheWrittenConfigParsesBackToItself) {
  json config = base();
  config["hosts"][0]["forward"] = "http";
  config["hosts"][0]["idle_timeout_ms"] = 5000;
  config["default_host"] = "api.example.test";
  config["rules"] = json::parse(R"([{"name": "r1", "expression": "tls.sni == \"x\"", "action": "allow"}])");
  config["revocations"] = json::parse(R"([{"ca": "devices", "serial": "0A"}])");
  const Config first = parse(config);
  const json written = config_to_json(first);
  EXPECT_FALSE(written["hosts"][0].contains("cert"));
  EXPECT_TRUE(written["hosts"][0].contains("key_pem"));
  const Config second = parse_config(written.dump(), "");
  EXPECT_EQ(config_to_json(second), written);
  EXPECT_EQ(second.hosts[0].cert_pem, first.hosts[0].cert_pem);
  EXPECT_EQ(second.cas[0].crl_pem, first.cas[0].crl_pem);
}

TEST_F(TlsFiles, AbsolutePathsIgnoreTheBaseDirectory) {
  json j = base();
  j["cas"][0]["cert"] = dir_ + "/ca.pem";
  j["cas"][0]["crl"] = dir_ + "/ca.crl";
  j["hosts"][0]["cert"] = dir_ + "/./logs/../server.pem";
  j["hosts"][0]["key"] = dir_ + "/server.key";
  const Config c = parse_config(j.dump(), "/nonexistent-base");
  EXPECT_EQ(c.cas[0].cert_path, dir_ + "/ca.pem");
  EXPECT_EQ(c.hosts[0].cert_path, dir_ + "/server.pem");
}

TEST_F(TlsFiles, RelativePathsResolveAgainstTheBaseDirectory) {
  const json j = base();
  try {
    parse_config(j.dump(), "/nonexistent-base");
    FAIL() << "accepted files in a directory that does not exist";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "cas[0].cert");
    EXPECT_STREQ(e.what(),
                 "cas[0].cert: cannot read /nonexistent-base/ca.pem: No such file or directory");
  }
  // Without a base directory: the current one.
  try {
    parse_config(j.dump());
    FAIL() << "found ca.pem in the current directory";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "cas[0].cert");
    EXPECT_EQ(std::string(e.what()),
              fmt::format("cas[0].cert: cannot read {}/ca.pem: No such file or directory",
                          fs::current_path().string()));
  }
}

TEST_F(TlsFiles, LoadConfigFileResolvesAgainstTheFilesDirectory) {
  const std::string path = dir_ + "/gw.json";
  std::ofstream(path) << base().dump(2);
  const Config c = load_config_file(path);
  EXPECT_EQ(c.cas[0].cert_path, dir_ + "/ca.pem");
  EXPECT_EQ(c.hosts[0].key_path, dir_ + "/server.key");
  fs::remove(path);
}

TEST_F(TlsFiles, TlsListenersSitBesideTheBuiltInServices) {
  json j = base();
  j["listeners"] = json::parse(R"([{"port": 7, "service": "echo"},
      {"port": 443, "service": "tls"}, {"port": 8443, "service": "tls"},
      {"port": 8000, "service": "relay", "upstream": "198.18.0.1:9000"}])");
  const Config c = parse(j);
  ASSERT_EQ(c.listeners.size(), 4u);
  EXPECT_EQ(c.listeners[0].service, "echo");
  EXPECT_EQ(c.listeners[2].service, "tls");
  EXPECT_EQ(c.listeners[2].port, 8443);
  EXPECT_EQ(c.listeners[3].upstream_port, 9000);
}

TEST_F(TlsFiles, HostNamesAreLowerCasedAndExactBesideWildcardIsAllowed) {
  json j = base();
  j["hosts"][0]["name"] = "XN--BCHER-KVA.Example.Test";
  j["hosts"].push_back(j["hosts"][0]);
  j["hosts"][1]["name"] = "*.Example.Test";
  j["hosts"].push_back(j["hosts"][0]);
  j["hosts"][2]["name"] = "123.example.test";  // RFC 1123 allows a leading digit
  j["default_host"] = "Xn--Bcher-Kva.EXAMPLE.test";
  const Config c = parse(j);
  EXPECT_EQ(c.hosts[0].name, "xn--bcher-kva.example.test");
  EXPECT_EQ(c.hosts[1].name, "*.example.test");
  EXPECT_EQ(c.hosts[2].name, "123.example.test");
  EXPECT_EQ(c.default_host, "xn--bcher-kva.example.test");
}

TEST_F(TlsFiles, NameLengthLimitsAreInclusive) {
  json j = base();
  const std::string ca_name = "c" + std::string(63, '7');
  j["cas"][0]["name"] = ca_name;
  j["hosts"][0]["client_cas"] = {ca_name};
  // 253 characters, labels of 63: the longest DNS name (RFC 1035 2.3.4).
  const std::string label(63, 'x');
  const std::string host_name = label + "." + label + "." + label + "." + std::string(59, 'y') + ".z";
  ASSERT_EQ(host_name.size(), 253u);
  j["hosts"][0]["name"] = host_name;
  const Config c = parse(j);
  EXPECT_EQ(c.cas[0].name, ca_name);
  EXPECT_EQ(c.hosts[0].name, host_name);
}

TEST_F(TlsFiles, AccessLogToStandardOutputOrAnExistingWritableFile) {
  json j = base();
  j["access_log"] = {{"path", "-"}};
  EXPECT_EQ(parse(j).access_log->path, "-");
  write("logs/existing.log", "{}\n");
  j["access_log"] = {{"path", dir_ + "/logs/existing.log"}};
  EXPECT_EQ(parse(j).access_log->path, dir_ + "/logs/existing.log");
}

TEST_F(TlsFiles, AcceptsTheKeyForms) {
  for (const char* key : {"server.key", "ec.key", "rsa.key", "combined.pem"}) {
    json j = base();
    j["hosts"][0]["key"] = key;
    EXPECT_EQ(parse(j).hosts[0].key_path, dir_ + "/" + key);
  }
}

TEST_F(TlsFiles, WarningsForWhatIsAcceptedButProbablyNotMeant) {
  json j = base();
  j["listeners"] = json::parse(R"([{"port": 7, "service": "echo"}])");
  j["cas"].push_back(json::parse(R"({"name": "unused", "cert": "ca_with_key.pem"})"));
  j["cas"].push_back(json::parse(R"({"name": "off_only", "cert": "ca.pem"})"));
  j["hosts"][0]["key"] = "public.key";
  j["hosts"].push_back(json::parse(R"({"name": "plain.example.test", "cert": "server.pem",
      "key": "server.key", "mtls": "off", "client_cas": ["off_only"],
      "upstream": "198.18.0.1:80"})"));
  const Config c = parse(j);
  EXPECT_EQ(c.warnings,
            (std::vector<std::string>{
                fmt::format("cas[1].cert: {}/ca_with_key.pem also holds a private key (line 4), "
                            "which the gateway does not need",
                            dir_),
                fmt::format("hosts[0].key: {}/public.key is readable by every user of this "
                            "machine (mode 0644)",
                            dir_),
                "hosts[1].client_cas: mtls is off, so no client certificate is asked for and "
                "these CAs are not used",
                "hosts: no listener has service \"tls\", so no host receives connections",
                "cas[1]: no host with mtls on lists \"unused\" in client_cas",
                "cas[2]: no host with mtls on lists \"off_only\" in client_cas",
            }));
}

TEST_F(TlsFiles, TheEmbeddedDefaultIsUnchanged) {
  EXPECT_STREQ(default_config_json(), R"({
  "ports": [
    {"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}
  ]
})");
  const Config c = default_config("/nonexistent/demo-pki");
  EXPECT_TRUE(c.listeners.empty());
  EXPECT_TRUE(c.cas.empty());
  EXPECT_TRUE(c.hosts.empty());
  EXPECT_EQ(c.default_host, "");
  EXPECT_FALSE(c.access_log.has_value());
  EXPECT_TRUE(c.warnings.empty());
}

TEST(TlsNames, ToStringGivesTheFileSpelling) {
  EXPECT_EQ(to_string(MtlsMode::off), "off");
  EXPECT_EQ(to_string(MtlsMode::optional), "optional");
  EXPECT_EQ(to_string(MtlsMode::required), "required");
  EXPECT_EQ(to_string(ForwardMode::tcp), "tcp");
  EXPECT_EQ(to_string(ForwardMode::proxy_v2), "proxy_v2");
  EXPECT_EQ(to_string(ForwardMode::http), "http");
  EXPECT_EQ(to_string(TlsVersion::tls1_2), "1.2");
  EXPECT_EQ(to_string(TlsVersion::tls1_3), "1.3");
}

// Each refusal: a JSON merge patch (RFC 7386; null removes a field) applied
// to the base file's hosts[0], to its cas[0] and to its top level, then the
// path and the whole message expected. "{dir}" stands for the directory of
// the files.
struct BadTls {
  const char* host_patch;
  const char* ca_patch;
  const char* root_patch;
  const char* path;
  const char* message;
};

void PrintTo(const BadTls& bad, std::ostream* os) { *os << bad.path << ": " << bad.message; }

class TlsErrors : public TlsFiles, public ::testing::WithParamInterface<BadTls> {};

TEST_P(TlsErrors, NameTheFieldAndTheProblem) {
  const BadTls& bad = GetParam();
  json j = base();
  if (bad.host_patch) j["hosts"][0].merge_patch(json::parse(bad.host_patch));
  if (bad.ca_patch) j["cas"][0].merge_patch(json::parse(bad.ca_patch));
  if (bad.root_patch) j.merge_patch(json::parse(bad.root_patch));
  std::string expected = bad.message;
  for (size_t at; (at = expected.find("{dir}")) != std::string::npos;) {
    expected.replace(at, 5, dir_);
  }
  try {
    parse(j);
    FAIL() << "accepted: " << j.dump();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), bad.path) << e.what();
    EXPECT_EQ(std::string(e.what()), std::string(bad.path) + ": " + expected);
  }
}

constexpr const char* kNone = nullptr;

INSTANTIATE_TEST_SUITE_P(
    Listeners, TlsErrors,
    ::testing::Values(
        BadTls{kNone, kNone, R"({"hosts": null})", "listeners[0].service",
               "a tls listener needs at least one entry in hosts"},
        BadTls{kNone, kNone, R"({"hosts": []})", "listeners[0].service",
               "a tls listener needs at least one entry in hosts"},
        BadTls{kNone, kNone, R"({"listeners": [{"port": 443, "service": "tls", "upstream": "198.18.0.1:8080"}]})",
               "listeners[0].upstream", "only a relay has an upstream, not tls"},
        BadTls{kNone, kNone, R"({"listeners": [{"port": 443, "service": "TLS"}]})",
               "listeners[0].service",
               "unknown service \"TLS\" (echo, discard, chargen, relay, tls)"},
        BadTls{kNone, kNone, R"({"listeners": [{"port": 443, "service": "tls"}, {"port": 443, "service": "tls"}]})",
               "listeners[1].port", "port 443 is listened on twice"},
        BadTls{kNone, kNone, R"({"access_logs": {"path": "-"}})", "access_logs",
               "unknown field (known here: ports, listeners, tcp, cas, hosts, default_host, "
               "access_log, rules, revocations)"}));

INSTANTIATE_TEST_SUITE_P(
    Cas, TlsErrors,
    ::testing::Values(
        BadTls{kNone, kNone, R"({"cas": {}})", "cas", "expected an array, got object"},
        BadTls{kNone, kNone, R"({"cas": ["devices"]})", "cas[0]", "expected an object, got string"},
        BadTls{kNone, R"({"name": null})", kNone, "cas[0].name", "is required"},
        BadTls{kNone, R"({"name": ""})", kNone, "cas[0].name", "is empty"},
        BadTls{kNone, R"({"name": 7})", kNone, "cas[0].name", "expected a string, got number"},
        BadTls{kNone, R"({"name": "my devices"})", kNone, "cas[0].name",
               "\"my devices\" has a character outside A-Z a-z 0-9 _ . -"},
        BadTls{kNone, R"({"name": "devices/2"})", kNone, "cas[0].name",
               "\"devices/2\" has a character outside A-Z a-z 0-9 _ . -"},
        BadTls{kNone,
               R"({"name": "d1234567890123456789012345678901234567890123456789012345678901234"})",
               kNone, "cas[0].name",
               "\"d1234567890123456789012345678901234567890123456789012345678901234\" is 65 "
               "characters long, more than 64"},
        BadTls{kNone, kNone,
               R"({"cas": [{"name": "devices", "cert": "ca.pem"}, {"name": "devices", "cert": "ca.pem"}]})",
               "cas[1].name", "\"devices\" is already the name of cas[0]"},
        BadTls{kNone, R"({"certs": "ca.pem"})", kNone, "cas[0].certs",
               "unknown field (known here: name, cert, cert_pem, crl, crl_pem, max_depth)"},
        BadTls{kNone, R"({"cert": null})", kNone, "cas[0].cert", "is required (or \"cert_pem\" with the PEM text)"},
        BadTls{kNone, R"({"cert": ""})", kNone, "cas[0].cert", "is empty"},
        BadTls{kNone, R"({"cert": "ca\u0000.pem"})", kNone, "cas[0].cert",
               "contains a NUL character"},
        BadTls{kNone, R"({"cert": "missing.pem"})", kNone, "cas[0].cert",
               "cannot read {dir}/missing.pem: No such file or directory"},
        BadTls{kNone, R"({"cert": "a_directory.pem"})", kNone, "cas[0].cert",
               "{dir}/a_directory.pem is not a regular file"},
        BadTls{kNone, R"({"cert": "a_fifo.pem"})", kNone, "cas[0].cert",
               "{dir}/a_fifo.pem is not a regular file"},
        BadTls{kNone, R"({"cert": "huge.pem"})", kNone, "cas[0].cert",
               "{dir}/huge.pem has 67108865 bytes, more than the 64 MiB a PEM file may have"},
        BadTls{kNone, R"({"cert": "empty.pem"})", kNone, "cas[0].cert",
               "{dir}/empty.pem holds no \"-----BEGIN CERTIFICATE-----\" block (PEM is "
               "required: openssl x509 -inform der converts DER)"},
        BadTls{kNone, R"({"cert": "der.pem"})", kNone, "cas[0].cert",
               "{dir}/der.pem holds no \"-----BEGIN CERTIFICATE-----\" block (PEM is "
               "required: openssl x509 -inform der converts DER)"},
        BadTls{kNone, R"({"cert": "key_only.pem"})", kNone, "cas[0].cert",
               "{dir}/key_only.pem holds no \"-----BEGIN CERTIFICATE-----\" block (PEM is "
               "required: openssl x509 -inform der converts DER)"},
        BadTls{kNone, R"({"cert": "truncated.pem"})", kNone, "cas[0].cert",
               "{dir}/truncated.pem: the CERTIFICATE block begun on line 1 has no END line "
               "(a truncated file?)"},
        BadTls{kNone, R"({"cert": "mismatched.pem"})", kNone, "cas[0].cert",
               "{dir}/mismatched.pem line 3: the CERTIFICATE block begun on line 1 ends with "
               "\"-----END X509 CRL-----\""},
        BadTls{kNone, R"({"cert": "garbage.pem"})", kNone, "cas[0].cert",
               "{dir}/garbage.pem line 2: the CERTIFICATE block begun on line 1 holds "
               "something other than base64"},
        BadTls{kNone, R"({"cert": "empty_block.pem"})", kNone, "cas[0].cert",
               "{dir}/empty_block.pem line 1: the CERTIFICATE block is empty"},
        BadTls{kNone, R"({"crl": "missing.crl"})", kNone, "cas[0].crl",
               "cannot read {dir}/missing.crl: No such file or directory"},
        BadTls{kNone, R"({"crl": "cert_as_crl.crl"})", kNone, "cas[0].crl",
               "{dir}/cert_as_crl.crl holds no \"-----BEGIN X509 CRL-----\" block (PEM is "
               "required: openssl crl -inform der converts DER)"},
        BadTls{kNone, R"({"crl": "truncated.pem"})", kNone, "cas[0].crl",
               "{dir}/truncated.pem: the CERTIFICATE block begun on line 1 has no END line "
               "(a truncated file?)"},
        BadTls{kNone, R"({"crl": ["ca.crl"]})", kNone, "cas[0].crl",
               "expected a string, got array"},
        BadTls{kNone, R"({"max_depth": 0})", kNone, "cas[0].max_depth",
               "0 is out of range [1, 16]"},
        BadTls{kNone, R"({"max_depth": 17})", kNone, "cas[0].max_depth",
               "17 is out of range [1, 16]"},
        BadTls{kNone, R"({"max_depth": "4"})", kNone, "cas[0].max_depth",
               "expected an integer, got string"}));

INSTANTIATE_TEST_SUITE_P(
    HostNames, TlsErrors,
    ::testing::Values(
        BadTls{R"({"name": null})", kNone, kNone, "hosts[0].name", "is required"},
        BadTls{R"({"name": ""})", kNone, kNone, "hosts[0].name", "is empty"},
        BadTls{R"({"name": ["api.example.test"]})", kNone, kNone, "hosts[0].name",
               "expected a string, got array"},
        BadTls{R"({"name": "api.example.test."})", kNone, kNone, "hosts[0].name",
               "\"api.example.test.\" ends with a dot, which an SNI name never has (RFC 6066 "
               "section 3)"},
        BadTls{R"({"name": "api..example.test"})", kNone, kNone, "hosts[0].name",
               "\"api..example.test\" has an empty label"},
        BadTls{R"({"name": ".example.test"})", kNone, kNone, "hosts[0].name",
               "\".example.test\" has an empty label"},
        BadTls{R"({"name": "api_v2.example.test"})", kNone, kNone, "hosts[0].name",
               "\"api_v2.example.test\" has '_', which is not a letter, digit or hyphen (RFC "
               "1123 section 2.1)"},
        BadTls{R"({"name": "[::1]"})", kNone, kNone, "hosts[0].name",
               "\"[::1]\" has '[', which is not a letter, digit or hyphen (RFC 1123 section 2.1)"},
        BadTls{R"({"name": "-api.example.test"})", kNone, kNone, "hosts[0].name",
               "\"-api.example.test\": the label \"-api\" begins or ends with a hyphen"},
        BadTls{R"({"name": "api.example-.test"})", kNone, kNone, "hosts[0].name",
               "\"api.example-.test\": the label \"example-\" begins or ends with a hyphen"},
        BadTls{R"({"name": "b\u00fccher.example.test"})", kNone, kNone, "hosts[0].name",
               "\"b\u00fccher.example.test\" is not ASCII: give an internationalized name in "
               "its A-label form (xn--..., RFC 5890)"},
        BadTls{R"({"name": "198.18.0.1"})", kNone, kNone, "hosts[0].name",
               "\"198.18.0.1\" is an IP address or ends in a numeric label; SNI carries host "
               "names only (RFC 6066 section 3)"},
        BadTls{R"({"name": "api.example.123"})", kNone, kNone, "hosts[0].name",
               "\"api.example.123\" is an IP address or ends in a numeric label; SNI carries "
               "host names only (RFC 6066 section 3)"},
        BadTls{R"({"name": "*"})", kNone, kNone, "hosts[0].name",
               "\"*\": a wildcard must be the whole left-most label, as in \"*.example.test\" "
               "(RFC 6125 section 6.4.3)"},
        BadTls{R"({"name": "*api.example.test"})", kNone, kNone, "hosts[0].name",
               "\"*api.example.test\": a wildcard must be the whole left-most label, as in "
               "\"*.example.test\" (RFC 6125 section 6.4.3)"},
        BadTls{R"({"name": "api.*.example.test"})", kNone, kNone, "hosts[0].name",
               "\"api.*.example.test\": a wildcard must be the whole left-most label, as in "
               "\"*.example.test\" (RFC 6125 section 6.4.3)"},
        BadTls{R"({"name": "*.*.example.test"})", kNone, kNone, "hosts[0].name",
               "\"*.*.example.test\": a wildcard must be the whole left-most label, as in "
               "\"*.example.test\" (RFC 6125 section 6.4.3)"},
        BadTls{R"({"name": "*.test"})", kNone, kNone, "hosts[0].name",
               "\"*.test\": a wildcard needs at least two labels after \"*.\" "
               "(\"*.example.test\", not \"*.test\")"},
        BadTls{R"({"name": "a1234567890123456789012345678901234567890123456789012345678901234.test"})",
               kNone, kNone, "hosts[0].name",
               "\"a1234567890123456789012345678901234567890123456789012345678901234.test\": the "
               "label \"a1234567890123456789012345678901234567890123456789012345678901234\" is "
               "longer than 63 characters"},
        BadTls{kNone, kNone,
               R"({"hosts": [{"name": "api.example.test", "cert": "server.pem", "key": "server.key", "client_cas": ["devices"], "upstream": "198.18.0.1:8080"},
                             {"name": "API.Example.Test", "cert": "server.pem", "key": "server.key", "client_cas": ["devices"], "upstream": "198.18.0.1:8080"}]})",
               "hosts[1].name",
               "\"api.example.test\" is already the name of hosts[0] (names compare ignoring case)"}));

// 254 characters: five labels of 50 and the dots between them.
INSTANTIATE_TEST_SUITE_P(
    HostNameLength, TlsErrors,
    ::testing::Values(BadTls{
        R"({"name": "a1234567890123456789012345678901234567890123456789.b1234567890123456789012345678901234567890123456789.c1234567890123456789012345678901234567890123456789.d1234567890123456789012345678901234567890123456789.e1234567890123456789012345678901234567890123456789"})",
        kNone, kNone, "hosts[0].name", "is 254 characters long, more than a DNS name's 253"}));

INSTANTIATE_TEST_SUITE_P(
    HostFiles, TlsErrors,
    ::testing::Values(
        BadTls{kNone, kNone, R"({"hosts": {}})", "hosts", "expected an array, got object"},
        BadTls{kNone, kNone, R"({"hosts": [7]})", "hosts[0]", "expected an object, got number"},
        BadTls{R"({"sni": "api.example.test"})", kNone, kNone, "hosts[0].sni",
               "unknown field (known here: name, cert, cert_pem, key, key_pem, mtls, client_cas, "
               "upstream, forward, alpn, min_version, early_data, handshake_timeout_ms, "
               "idle_timeout_ms, connect_timeout_ms)"},
        BadTls{R"({"cert": null})", kNone, kNone, "hosts[0].cert", "is required (or \"cert_pem\" with the PEM text)"},
        BadTls{R"({"cert": "missing.pem"})", kNone, kNone, "hosts[0].cert",
               "cannot read {dir}/missing.pem: No such file or directory"},
        BadTls{R"({"cert": "server.key"})", kNone, kNone, "hosts[0].cert",
               "{dir}/server.key holds no \"-----BEGIN CERTIFICATE-----\" block (PEM is "
               "required: openssl x509 -inform der converts DER)"},
        BadTls{R"({"key": null})", kNone, kNone, "hosts[0].key", "is required (or \"key_pem\" with the PEM text)"},
        BadTls{R"({"key": "missing.key"})", kNone, kNone, "hosts[0].key",
               "cannot read {dir}/missing.key: No such file or directory"},
        BadTls{R"({"key": "server.pem"})", kNone, kNone, "hosts[0].key",
               "{dir}/server.pem holds no private key (a PRIVATE KEY, RSA PRIVATE KEY or EC "
               "PRIVATE KEY block)"},
        BadTls{R"({"key": "encrypted.key"})", kNone, kNone, "hosts[0].key",
               "{dir}/encrypted.key holds an encrypted key, and the gateway has no passphrase "
               "(openssl pkey -in KEY -out PLAIN decrypts it)"},
        BadTls{R"({"key": "legacy_encrypted.key"})", kNone, kNone, "hosts[0].key",
               "{dir}/legacy_encrypted.key holds an encrypted key, and the gateway has no "
               "passphrase (openssl pkey -in KEY -out PLAIN decrypts it)"},
        BadTls{R"({"key": "two.key"})", kNone, kNone, "hosts[0].key",
               "{dir}/two.key holds 2 private keys (blocks on lines 1 and 4); it must hold one"},
        BadTls{R"({"key": "truncated.pem"})", kNone, kNone, "hosts[0].key",
               "{dir}/truncated.pem: the CERTIFICATE block begun on line 1 has no END line "
               "(a truncated file?)"}));

INSTANTIATE_TEST_SUITE_P(
    HostMtls, TlsErrors,
    ::testing::Values(
        BadTls{R"({"mtls": "on"})", kNone, kNone, "hosts[0].mtls",
               "\"on\" is not one of off, optional, required"},
        BadTls{R"({"mtls": true})", kNone, kNone, "hosts[0].mtls",
               "expected a string, got boolean"},
        BadTls{R"({"client_cas": null})", kNone, kNone, "hosts[0].client_cas",
               "needs at least one CA when mtls is required: the CAs a client certificate must "
               "chain to"},
        BadTls{R"({"client_cas": []})", kNone, kNone, "hosts[0].client_cas",
               "needs at least one CA when mtls is required: the CAs a client certificate must "
               "chain to"},
        BadTls{R"({"mtls": "optional", "client_cas": null})", kNone, kNone, "hosts[0].client_cas",
               "needs at least one CA when mtls is optional: the CAs a client certificate must "
               "chain to"},
        BadTls{R"({"client_cas": "devices"})", kNone, kNone, "hosts[0].client_cas",
               "expected an array, got string"},
        BadTls{R"({"client_cas": [1]})", kNone, kNone, "hosts[0].client_cas[0]",
               "expected a string, got number"},
        BadTls{R"({"client_cas": ["devices", "partners"]})", kNone, kNone,
               "hosts[0].client_cas[1]", "no CA named \"partners\" in cas (\"devices\")"},
        BadTls{R"({"client_cas": ["Devices"]})", kNone, kNone, "hosts[0].client_cas[0]",
               "no CA named \"Devices\" in cas (\"devices\")"},
        BadTls{R"({"client_cas": ["devices", "devices"]})", kNone, kNone,
               "hosts[0].client_cas[1]", "\"devices\" is listed twice"},
        BadTls{kNone, kNone, R"({"cas": null})", "hosts[0].client_cas[0]",
               "no CA named \"devices\": cas is empty"}));

INSTANTIATE_TEST_SUITE_P(
    HostForwarding, TlsErrors,
    ::testing::Values(
        BadTls{R"({"upstream": null})", kNone, kNone, "hosts[0].upstream", "is required"},
        BadTls{R"({"upstream": "198.18.0.1"})", kNone, kNone, "hosts[0].upstream",
               "expected \"A.B.C.D:PORT\" like \"198.18.0.1:9000\", got \"198.18.0.1\""},
        BadTls{R"({"upstream": "origin.example.test:80"})", kNone, kNone, "hosts[0].upstream",
               "expected \"A.B.C.D:PORT\" like \"198.18.0.1:9000\", got "
               "\"origin.example.test:80\""},
        BadTls{R"({"upstream": "198.18.0.1:65536"})", kNone, kNone, "hosts[0].upstream",
               "expected \"A.B.C.D:PORT\" like \"198.18.0.1:9000\", got \"198.18.0.1:65536\""},
        BadTls{R"({"forward": "proxy"})", kNone, kNone, "hosts[0].forward",
               "\"proxy\" is not one of tcp, proxy_v2, http"},
        BadTls{R"({"alpn": "h2"})", kNone, kNone, "hosts[0].alpn",
               "expected an array, got string"},
        BadTls{R"({"alpn": ["h2", ""]})", kNone, kNone, "hosts[0].alpn[1]",
               "a protocol name has 1 to 255 bytes, \"\" has 0"},
        BadTls{R"({"alpn": ["h2 "]})", kNone, kNone, "hosts[0].alpn[0]",
               "\"h2 \" has a character outside printable ASCII"},
        BadTls{R"({"alpn": ["h2", "http/1.1", "h2"]})", kNone, kNone, "hosts[0].alpn[2]",
               "\"h2\" is listed twice"},
        BadTls{R"({"alpn": [2]})", kNone, kNone, "hosts[0].alpn[0]",
               "expected a string, got number"},
        BadTls{R"({"alpn": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})",
               kNone, kNone, "hosts[0].alpn", "has 17 protocols, more than 16"},
        BadTls{R"({"forward": "http", "alpn": ["h2", "http/1.1"]})", kNone, kNone,
               "hosts[0].alpn[0]",
               "forward http speaks HTTP/1.1 only, not \"h2\" (h2 passes through with forward "
               "tcp or proxy_v2)"}));

INSTANTIATE_TEST_SUITE_P(
    HostTls, TlsErrors,
    ::testing::Values(
        BadTls{R"({"min_version": 1.3})", kNone, kNone, "hosts[0].min_version",
               "expected a string, got number"},
        BadTls{R"({"min_version": "1.1"})", kNone, kNone, "hosts[0].min_version",
               "\"1.1\" is not one of 1.2, 1.3"},
        BadTls{R"({"min_version": "TLSv1.3"})", kNone, kNone, "hosts[0].min_version",
               "\"TLSv1.3\" is not one of 1.2, 1.3"},
        BadTls{R"({"early_data": "true"})", kNone, kNone, "hosts[0].early_data",
               "expected true or false, got string"},
        BadTls{R"({"handshake_timeout_ms": 99})", kNone, kNone, "hosts[0].handshake_timeout_ms",
               "99 is out of range [100, 120000]"},
        BadTls{R"({"handshake_timeout_ms": 120001})", kNone, kNone,
               "hosts[0].handshake_timeout_ms", "120001 is out of range [100, 120000]"},
        BadTls{R"({"idle_timeout_ms": 0})", kNone, kNone, "hosts[0].idle_timeout_ms",
               "0 is out of range [1000, 86400000]"},
        BadTls{R"({"idle_timeout_ms": 86400001})", kNone, kNone, "hosts[0].idle_timeout_ms",
               "86400001 is out of range [1000, 86400000]"},
        BadTls{R"({"connect_timeout_ms": 99})", kNone, kNone, "hosts[0].connect_timeout_ms",
               "99 is out of range [100, 60000]"},
        BadTls{R"({"connect_timeout_ms": 60001})", kNone, kNone, "hosts[0].connect_timeout_ms",
               "60001 is out of range [100, 60000]"},
        BadTls{R"({"connect_timeout_ms": 5000.0})", kNone, kNone, "hosts[0].connect_timeout_ms",
               "expected an integer, got number"}));

INSTANTIATE_TEST_SUITE_P(
    DefaultHostAndAccessLog, TlsErrors,
    ::testing::Values(
        BadTls{kNone, kNone, R"({"default_host": "www.example.test"})", "default_host",
               "no host named \"www.example.test\" in hosts (\"api.example.test\")"},
        BadTls{kNone, kNone, R"({"default_host": "other.example.test", "listeners": null, "hosts": null})",
               "default_host", "no host named \"other.example.test\": hosts is empty"},
        BadTls{kNone, kNone, R"({"default_host": true})", "default_host",
               "expected a string, got boolean"},
        // A wildcard host is named by its wildcard, not by a name it matches.
        BadTls{R"({"name": "*.example.test"})", kNone,
               R"({"default_host": "api.example.test"})", "default_host",
               "no host named \"api.example.test\" in hosts (\"*.example.test\")"},
        BadTls{kNone, kNone, R"({"access_log": "-"})", "access_log",
               "expected an object, got string"},
        BadTls{kNone, kNone, R"({"access_log": {}})", "access_log.path", "is required"},
        BadTls{kNone, kNone, R"({"access_log": {"path": ""}})", "access_log.path", "is empty"},
        BadTls{kNone, kNone, R"({"access_log": {"path": "-", "format": "json"}})",
               "access_log.format", "unknown field (known here: path)"},
        BadTls{kNone, kNone, R"({"access_log": {"path": "no_such_dir/access.log"}})",
               "access_log.path", "the directory {dir}/no_such_dir does not exist"},
        BadTls{kNone, kNone, R"({"access_log": {"path": "ca.pem/access.log"}})",
               "access_log.path", "{dir}/ca.pem is not a directory"},
        BadTls{kNone, kNone, R"({"access_log": {"path": "logs"}})", "access_log.path",
               "{dir}/logs is a directory"}));

}  // namespace
}  // namespace mtlsgw::control
