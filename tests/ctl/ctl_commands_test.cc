#include "ctl/ctl_commands.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mtlsgw::ctl {
namespace {

using nlohmann::json;

class CtlCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mtlsgwctl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    write("cert.pem", "CERT\n");
    write("key.pem", "KEY\n");
    write("crl.pem", "CRL\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

CommandRequest request_of(const std::vector<std::string>& words) {
  auto built = build_request(words);
  if (auto* finished = std::get_if<Finished>(&built)) {
    ADD_FAILURE() << "usage error for " << ::testing::PrintToString(words) << ": " << finished->err;
    return {};
  }
  return std::get<CommandRequest>(built);
}

Finished usage_of(const std::vector<std::string>& words) {
  auto built = build_request(words);
  if (auto* request = std::get_if<CommandRequest>(&built)) {
    ADD_FAILURE() << "accepted " << ::testing::PrintToString(words) << " as " << request->command
                  << " " << request->args;
    return {};
  }
  return std::get<Finished>(built);
}

TEST_F(CtlCommands, HostAddSendsOnlyTheGivenOptions) {
  EXPECT_EQ(request_of({"host", "add", "api.example.test", "--cert", file("cert.pem"), "--key",
                        file("key.pem")}),
            (CommandRequest{"host.add", {{"name", "api.example.test"},
                                         {"cert_pem", "CERT\n"},
                                         {"key_pem", "KEY\n"}}}));
}

TEST_F(CtlCommands, HostAddWithEveryOption) {
  const CommandRequest r = request_of(
      {"host", "add", "--client-ca", "devices", "--client-ca", "partners", "*.wild.example.test",
       "--cert", file("cert.pem"), "--key", file("key.pem"), "--mtls", "optional", "--upstream",
       "198.18.0.1:8080", "--forward", "http", "--alpn", "http/1.1", "--alpn", "h2",
       "--min-version", "1.3", "--handshake-timeout-ms", "5000", "--idle-timeout-ms", "60000",
       "--connect-timeout-ms", "1000", "--default"});
  EXPECT_EQ(r.command, "host.add");
  EXPECT_EQ(r.args, (json{{"name", "*.wild.example.test"},
                          {"cert_pem", "CERT\n"},
                          {"key_pem", "KEY\n"},
                          {"mtls", "optional"},
                          {"client_cas", {"devices", "partners"}},
                          {"upstream", "198.18.0.1:8080"},
                          {"forward", "http"},
                          {"alpn", {"http/1.1", "h2"}},
                          {"min_version", "1.3"},
                          {"handshake_timeout_ms", 5000},
                          {"idle_timeout_ms", 60000},
                          {"connect_timeout_ms", 1000},
                          {"default", true}}));
}

TEST_F(CtlCommands, HostAddNoAlpnSendsAnEmptyList) {
  const CommandRequest r = request_of({"host", "add", "a.test", "--cert", file("cert.pem"), "--key",
                                       file("key.pem"), "--no-alpn"});
  EXPECT_EQ(r.args["alpn"], json::array());
  usage_of({"host", "add", "a.test", "--cert", file("cert.pem"), "--key", file("key.pem"),
            "--no-alpn", "--alpn", "h2"});
}

TEST_F(CtlCommands, HostAddRefusesBadInputBeforeSending) {
  const std::string cert = file("cert.pem");
  const std::string key = file("key.pem");
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"host", "add", "a.test", "--key", key},
           {"host", "add", "a.test", "--cert", cert},
           {"host", "add", "--cert", cert, "--key", key},
           {"host", "add", "a.test", "--cert", cert, "--key", key, "--mtls", "maybe"},
           {"host", "add", "a.test", "--cert", cert, "--key", key, "--forward", "udp"},
           {"host", "add", "a.test", "--cert", cert, "--key", key, "--min-version", "1.1"},
           {"host", "add", "a.test", "--cert", cert, "--key", key, "--idle-timeout-ms", "-5"},
           {"host", "add", "a.test", "--cert", cert, "--key", key, "--bogus"},
           {"host", "add", "a.test", "b.test", "--cert", cert, "--key", key},
       }) {
    EXPECT_EQ(usage_of(words).exit_code, kExitUsage) << ::testing::PrintToString(words);
  }
  Finished missing = usage_of({"host", "add", "a.test", "--cert", file("nope.pem"), "--key", key});
  EXPECT_NE(missing.err.find("cannot read " + file("nope.pem")), std::string::npos) << missing.err;
  Finished directory = usage_of({"host", "add", "a.test", "--cert", dir_, "--key", key});
  EXPECT_NE(directory.err.find("not a regular file"), std::string::npos) << directory.err;
  write("huge.pem", std::string(kMaxPemFileBytes + 1, 'x'));
  Finished huge = usage_of({"host", "add", "a.test", "--cert", file("huge.pem"), "--key", key});
  EXPECT_NE(huge.err.find("larger than 8 MiB"), std::string::npos) << huge.err;
}

TEST_F(CtlCommands, NamedAndArgumentlessCommands) {
  EXPECT_EQ(request_of({"host", "del", "a.test"}), (CommandRequest{"host.del", {{"name", "a.test"}}}));
  EXPECT_EQ(request_of({"host", "show", "a.test"}), (CommandRequest{"host.show", {{"name", "a.test"}}}));
  EXPECT_EQ(request_of({"host", "list"}), (CommandRequest{"host.list", json::object()}));
  EXPECT_EQ(request_of({"ca", "del", "devices"}), (CommandRequest{"ca.del", {{"name", "devices"}}}));
  EXPECT_EQ(request_of({"ca", "list"}), (CommandRequest{"ca.list", json::object()}));
  EXPECT_EQ(request_of({"revoke", "list"}), (CommandRequest{"revoke.list", json::object()}));
  EXPECT_EQ(request_of({"rule", "del", "r1"}), (CommandRequest{"rule.del", {{"name", "r1"}}}));
  EXPECT_EQ(request_of({"rule", "list"}), (CommandRequest{"rule.list", json::object()}));
  for (const char* command : {"begin", "commit", "abort", "ping", "stats"}) {
    EXPECT_EQ(request_of({command}), (CommandRequest{command, json::object()}));
  }
  EXPECT_EQ(request_of({"stats", "--worker", "1"}), (CommandRequest{"stats", {{"worker", 1}}}));
  EXPECT_EQ(request_of({"stats", "--prometheus"}), (CommandRequest{"stats", {{"format", "prometheus"}}}));
  EXPECT_EQ(request_of({"config", "dump"}), (CommandRequest{"config.dump", json::object()}));
  EXPECT_EQ(usage_of({"host", "del"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"host"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"host", "list", "extra"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"nothing"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({}).exit_code, kExitUsage);
}

TEST_F(CtlCommands, CaAddAndCrlLoadReadTheirFiles) {
  EXPECT_EQ(request_of({"ca", "add", "devices", "--cert", file("cert.pem")}),
            (CommandRequest{"ca.add", {{"name", "devices"}, {"cert_pem", "CERT\n"}}}));
  EXPECT_EQ(request_of({"ca", "add", "devices", "--cert", file("cert.pem"), "--crl",
                        file("crl.pem"), "--max-depth", "2"}),
            (CommandRequest{"ca.add", {{"name", "devices"},
                                       {"cert_pem", "CERT\n"},
                                       {"crl_pem", "CRL\n"},
                                       {"max_depth", 2}}}));
  EXPECT_EQ(request_of({"crl", "load", "devices", file("crl.pem")}),
            (CommandRequest{"crl.load", {{"ca", "devices"}, {"crl_pem", "CRL\n"}}}));
  EXPECT_EQ(usage_of({"ca", "add", "devices"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"crl", "load", "devices"}).exit_code, kExitUsage);
}

TEST_F(CtlCommands, RevokeNamesACertificateOneWay) {
  EXPECT_EQ(request_of({"revoke", "add", "--ca", "devices", "--serial", "1F2E"}),
            (CommandRequest{"revoke.add", {{"ca", "devices"}, {"serial", "1F2E"}}}));
  EXPECT_EQ(request_of({"revoke", "add", "--ca", "devices", "--serial", "1F2E", "--close"}),
            (CommandRequest{"revoke.add",
                            {{"ca", "devices"}, {"serial", "1F2E"}, {"close_connections", true}}}));
  const std::string lower(64, 'a');
  std::string colons;
  for (int i = 0; i < 32; ++i) colons += std::string(i ? ":" : "") + "AA";
  EXPECT_EQ(request_of({"revoke", "add", "--fingerprint", colons}),
            (CommandRequest{"revoke.add", {{"fingerprint", lower}}}));
  EXPECT_EQ(request_of({"revoke", "del", "--fingerprint", lower}),
            (CommandRequest{"revoke.del", {{"fingerprint", lower}}}));
  EXPECT_EQ(request_of({"revoke", "del", "--ca", "devices", "--serial", "01"}),
            (CommandRequest{"revoke.del", {{"ca", "devices"}, {"serial", "01"}}}));
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"revoke", "add"},
           {"revoke", "add", "--ca", "devices"},
           {"revoke", "add", "--serial", "01"},
           {"revoke", "add", "--fingerprint", lower, "--ca", "devices", "--serial", "01"},
           {"revoke", "add", "--fingerprint", "abc"},
           {"revoke", "add", "--fingerprint", std::string(64, 'g')},
           {"revoke", "add", "--cert", file("cert.pem")},  // not a certificate
           {"revoke", "del", "--fingerprint", lower, "--close"},
       }) {
    EXPECT_EQ(usage_of(words).exit_code, kExitUsage) << ::testing::PrintToString(words);
  }
}

// The fingerprint of --cert is what `openssl x509 -fingerprint -sha256`
// prints, in the access log's form.
TEST_F(CtlCommands, RevokeByCertificateFileSendsItsFingerprint) {
  const char* pki = std::getenv("MTLSGW_TEST_PKI");
  ASSERT_NE(pki, nullptr) << "MTLSGW_TEST_PKI is not set (meson test sets it)";
  const std::string cert = std::string(pki) + "/client-devices.pem";
  const std::string command = "openssl x509 -noout -fingerprint -sha256 -in '" + cert + "'";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[256] = {};
  ASSERT_NE(std::fgets(line, sizeof(line), pipe), nullptr);
  ::pclose(pipe);
  std::string expected;
  for (const char* c = std::strchr(line, '=') + 1; *c && *c != '\n'; ++c) {
    if (*c != ':') expected += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
  }
  ASSERT_EQ(expected.size(), 64u) << line;
  EXPECT_EQ(request_of({"revoke", "add", "--cert", cert, "--close"}),
            (CommandRequest{"revoke.add", {{"fingerprint", expected}, {"close_connections", true}}}));
}

TEST_F(CtlCommands, RulesAndTheirPlaces) {
  EXPECT_EQ(request_of({"rule", "add", "r1", "--expression", "sni == \"a.test\"", "--action", "block"}),
            (CommandRequest{"rule.add",
                            {{"name", "r1"}, {"expression", "sni == \"a.test\""}, {"action", "block"}}}));
  EXPECT_EQ(request_of({"rule", "add", "r2", "--expression", "x", "--action", "log", "--before", "r1"})
                .args["before"],
            json("r1"));
  EXPECT_EQ(request_of({"rule", "add", "r2", "--expression", "x", "--action", "allow", "--after", "r1"})
                .args["after"],
            json("r1"));
  EXPECT_EQ(request_of({"rule", "add", "r2", "--expression", "x", "--action", "allow", "--position", "0"})
                .args["position"],
            json(0));
  EXPECT_EQ(request_of({"rule", "move", "r2", "--position", "3"}),
            (CommandRequest{"rule.move", {{"name", "r2"}, {"position", 3}}}));
  EXPECT_EQ(request_of({"rule", "move", "r2", "--after", "r1"}),
            (CommandRequest{"rule.move", {{"name", "r2"}, {"after", "r1"}}}));
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"rule", "add", "r1", "--expression", "x"},
           {"rule", "add", "r1", "--action", "block"},
           {"rule", "add", "r1", "--expression", "x", "--action", "drop"},
           {"rule", "add", "r1", "--expression", "x", "--action", "log", "--before", "a", "--after", "b"},
           {"rule", "move", "r1"},
           {"rule", "move", "r1", "--position", "1", "--before", "a"},
       }) {
    EXPECT_EQ(usage_of(words).exit_code, kExitUsage) << ::testing::PrintToString(words);
  }
}

TEST_F(CtlCommands, BatchLinesTakeNoGlobalOptionsHelpOrBatch) {
  EXPECT_EQ(usage_of({"batch", "file"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"host", "list", "--json"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"host", "--help"}).exit_code, kExitUsage);
  EXPECT_EQ(usage_of({"-s", "/tmp/x", "ping"}).exit_code, kExitUsage);
}

TEST(CtlCommandLine, GlobalOptionsBeforeOrAfterTheCommand) {
  ::unsetenv(kSocketEnvironment);
  Invocation plain = parse_command_line({"mtlsgwctl", "ping"});
  EXPECT_EQ(plain.options.socket, kDefaultSocket);
  EXPECT_FALSE(plain.options.json);
  EXPECT_EQ(std::get<CommandRequest>(plain.action), (CommandRequest{"ping", json::object()}));

  Invocation before = parse_command_line(
      {"mtlsgwctl", "-s", "/tmp/gw.sock", "--json", "--timeout", "2.5", "host", "list"});
  EXPECT_EQ(before.options.socket, "/tmp/gw.sock");
  EXPECT_TRUE(before.options.json);
  EXPECT_EQ(before.options.timeout_s, 2.5);
  EXPECT_EQ(std::get<CommandRequest>(before.action).command, "host.list");

  Invocation after = parse_command_line({"mtlsgwctl", "host", "list", "--json", "-s", "/tmp/b.sock"});
  EXPECT_TRUE(after.options.json);
  EXPECT_EQ(after.options.socket, "/tmp/b.sock");

  Invocation negative = parse_command_line({"mtlsgwctl", "--timeout", "-1", "ping"});
  EXPECT_EQ(std::get<Finished>(negative.action).exit_code, kExitUsage);
}

TEST(CtlCommandLine, TheEnvironmentOverridesTheDefaultSocketAndSOverridesBoth) {
  ::setenv(kSocketEnvironment, "/tmp/env.sock", 1);
  EXPECT_EQ(parse_command_line({"mtlsgwctl", "ping"}).options.socket, "/tmp/env.sock");
  EXPECT_EQ(parse_command_line({"mtlsgwctl", "-s", "/tmp/s.sock", "ping"}).options.socket,
            "/tmp/s.sock");
  ::unsetenv(kSocketEnvironment);
}

TEST(CtlCommandLine, HelpVersionAndBatch) {
  Finished help = std::get<Finished>(parse_command_line({"mtlsgwctl", "--help"}).action);
  EXPECT_EQ(help.exit_code, kExitOk);
  EXPECT_NE(help.out.find("host"), std::string::npos);
  EXPECT_NE(help.out.find("batch"), std::string::npos);
  Finished verb_help =
      std::get<Finished>(parse_command_line({"mtlsgwctl", "rule", "move", "--help"}).action);
  EXPECT_EQ(verb_help.exit_code, kExitOk);
  EXPECT_NE(verb_help.out.find("--position"), std::string::npos) << verb_help.out;
  Finished version = std::get<Finished>(parse_command_line({"mtlsgwctl", "--version"}).action);
  EXPECT_EQ(version.exit_code, kExitOk);
  EXPECT_EQ(version.out.rfind("mtlsgwctl ", 0), 0u);
  EXPECT_EQ(std::get<BatchRequest>(parse_command_line({"mtlsgwctl", "batch"}).action).file, "-");
  EXPECT_EQ(std::get<BatchRequest>(parse_command_line({"mtlsgwctl", "batch", "x.txt"}).action).file,
            "x.txt");
  Finished nothing = std::get<Finished>(parse_command_line({"mtlsgwctl"}).action);
  EXPECT_EQ(nothing.exit_code, kExitUsage);
  EXPECT_FALSE(nothing.err.empty());
}

}  // namespace
}  // namespace mtlsgw::ctl
