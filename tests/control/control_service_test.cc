// ControlService: commands, transactions and commits over a fake publisher,
// with the real checks (the test PKI's certificates and keys) and a real
// state directory.

#include "control/control_service.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "control/command_checks.h"
#include "control/config_writer.h"
#include "control/gateway_spec.h"
#include "control/state_store.h"
#include "test_pki.h"

namespace mtlsgw::control {
namespace {

using json = nlohmann::json;
using mtlsgw::testing::read_test_pki;

class FakePublisher final : public StatePublisher {
 public:
  struct Prepared final : StatePublisher::Prepared {
    Config next;
  };
  std::unique_ptr<StatePublisher::Prepared> prepare(const Config& next, const Config&, bool close_revoked,
                                                    std::string& error) override {
    if (!refuse.empty()) {
      error = refuse;
      return nullptr;
    }
    last_close_revoked = close_revoked;
    auto p = std::make_unique<Prepared>();
    p->next = next;
    return p;
  }
  json publish(std::unique_ptr<StatePublisher::Prepared> prepared) override {
    published.push_back(static_cast<Prepared&>(*prepared).next);
    return {{"published", published.size()}};
  }
  std::string refuse;
  bool last_close_revoked = false;
  std::vector<Config> published;
};

json ca_args(const std::string& name, const std::string& stem, const std::string& crl) {
  return {{"name", name}, {"cert_pem", read_test_pki(stem)}, {"crl_pem", read_test_pki(crl)}};
}

json host_args(const std::string& name, const std::string& stem, const std::string& ca) {
  return {{"name", name},
          {"cert_pem", read_test_pki(stem + ".pem")},
          {"key_pem", read_test_pki(stem + ".key")},
          {"client_cas", {ca}},
          {"upstream", "198.18.0.1:9000"}};
}

class Service : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mtlsgw-service-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::string error;
    store_ = StateStore::open(dir_.string(), error);
    ASSERT_TRUE(store_) << error;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Config base_config() {
    json config = {{"ports", {{{"port_id", 0}, {"address", "198.18.0.2/24"}}}}};
    config["cas"] = json::array({ca_args("devices", "devices-ca.pem", "devices.crl.pem")});
    config["hosts"] = json::array({host_args("api.example.test", "server-api-ecdsa", "devices")});
    return parse_config(config.dump(), "");
  }

  ControlService make(Config config) {
    return ControlService(std::move(config), publisher_, make_command_checks(), store_.get(), [](bool prometheus) {
      if (prometheus) return json("mtlsgw_rx_frames 1\n");
      return json{{"workers", json::array({json{{"busy_cycles", 1}}})}};
    });
  }

  static json call(ControlService& service, uint64_t client, const std::string& command, json args = json::object()) {
    Request r{json(7), command, std::move(args)};
    return json::parse(service.handle(client, r));
  }

  std::filesystem::path dir_;
  std::unique_ptr<StateStore> store_;
  FakePublisher publisher_;
};

TEST_F(Service, ACommandOutsideATransactionCommitsAndIsSaved) {
  ControlService service = make(base_config());
  json answer = call(service, 1, "ca.add", ca_args("partners", "partners-ca.pem", "partners.crl.pem"));
  ASSERT_TRUE(answer["ok"]) << answer;
  EXPECT_EQ(answer["id"], 7);
  EXPECT_EQ(answer["result"]["commit"]["changes"], 1);
  answer = call(service, 1, "host.add", host_args("grpc.example.test", "server-grpc-ecdsa", "partners"));
  ASSERT_TRUE(answer["ok"]) << answer;
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(publisher_.published[1].hosts.size(), 2u);
  EXPECT_EQ(service.commits(), 2u);

  std::string error;
  std::optional<Config> restored = store_->restore(base_config(), error);
  ASSERT_TRUE(restored) << error;
  EXPECT_EQ(control_sections_to_json(*restored), control_sections_to_json(service.committed()));
}

TEST_F(Service, RefusedCommandsSayWhatAndWhereAndChangeNothing) {
  ControlService service = make(base_config());
  const json before = control_sections_to_json(service.committed());
  struct Case {
    std::string command;
    json args;
    std::string code;
    std::string where;
  };
  json wrong_key = host_args("bad.example.test", "server-grpc-ecdsa", "devices");
  wrong_key["key_pem"] = read_test_pki("server-api-ecdsa.key");
  const Case cases[] = {
      {"host.rename", json::object(), "unknown_command", "command"},
      {"host.add", host_args("api.example.test", "server-api-ecdsa", "devices"), "exists", "args.name"},
      {"host.add", wrong_key, "bad_pem", "args"},
      {"host.add", host_args("x.example.test", "server-api-ecdsa", "nobody"), "not_found", "args.client_cas[0]"},
      {"ca.del", {{"name", "devices"}}, "in_use", "args.name"},
      {"ca.add", {{"name", "junk"}, {"cert_pem", "no pem here"}}, "bad_pem", "args.cert_pem"},
      {"rule.add", {{"name", "r"}, {"expression", "tls.sni == "}, {"action", "block"}}, "bad_field",
       "args.expression"},
      {"rule.add", {{"name", "r"}, {"expression", "tls.sni == \"a\""}, {"action", "deny"}}, "bad_field",
       "args.action"},
      {"rule.move", {{"name", "nobody"}, {"position", 0}}, "not_found", "args.name"},
      {"revoke.add", {{"fingerprint", "abcd"}}, "bad_field", "args.fingerprint"},
      {"revoke.del", {{"ca", "devices"}, {"serial", "01"}}, "not_found", "args"},
      {"host.list", {{"verbose", true}}, "unknown_field", "args.verbose"},
      {"commit", json::object(), "no_transaction", ""},
      {"stats", {{"worker", 5}}, "not_found", "args.worker"},
  };
  for (const Case& c : cases) {
    const json answer = call(service, 1, c.command, c.args);
    EXPECT_FALSE(answer["ok"]) << c.command << " " << answer;
    EXPECT_EQ(answer["error"]["code"], c.code) << c.command << " " << answer;
    EXPECT_EQ(answer["error"]["where"], c.where) << c.command << " " << answer;
    EXPECT_FALSE(answer["error"]["message"].get<std::string>().empty());
  }
  const json rule_error = call(service, 1, "rule.add", {{"name", "r"}, {"expression", "tls.sni == "}, {"action", "log"}});
  EXPECT_NE(rule_error["error"]["message"].get<std::string>().find("1:"), std::string::npos) << rule_error;
  EXPECT_EQ(control_sections_to_json(service.committed()), before);
  EXPECT_TRUE(publisher_.published.empty());
}

TEST_F(Service, ATransactionCommitsAsOneAndAnAbortLeavesNothing) {
  ControlService service = make(base_config());
  ASSERT_TRUE(call(service, 1, "begin")["ok"]);
  EXPECT_EQ(call(service, 1, "begin")["error"]["code"], "in_transaction");
  ASSERT_TRUE(call(service, 1, "ca.add", ca_args("partners", "partners-ca.pem", "partners.crl.pem"))["ok"]);
  ASSERT_TRUE(call(service, 1, "host.add", host_args("grpc.example.test", "server-grpc-ecdsa", "partners"))["ok"]);
  EXPECT_EQ(call(service, 1, "host.list")["result"].size(), 2u) << "the transaction sees its own changes";
  EXPECT_EQ(call(service, 2, "host.list")["result"].size(), 1u) << "others do not";
  EXPECT_EQ(call(service, 1, "abort")["result"]["aborted"], 2);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_EQ(service.committed().hosts.size(), 1u);

  ASSERT_TRUE(call(service, 1, "begin")["ok"]);
  ASSERT_TRUE(call(service, 1, "ca.add", ca_args("partners", "partners-ca.pem", "partners.crl.pem"))["ok"]);
  // A refused command inside keeps the transaction and its staged state.
  EXPECT_EQ(call(service, 1, "ca.del", {{"name", "devices"}})["error"]["code"], "in_use");
  ASSERT_TRUE(call(service, 1, "host.add", host_args("grpc.example.test", "server-grpc-ecdsa", "partners"))["ok"]);
  const json done = call(service, 1, "commit");
  ASSERT_TRUE(done["ok"]) << done;
  EXPECT_EQ(done["result"]["changes"], 2);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(service.committed().hosts.size(), 2u);

  // A connection that closes with a transaction open drops it.
  ASSERT_TRUE(call(service, 3, "begin")["ok"]);
  ASSERT_TRUE(call(service, 3, "host.del", {{"name", "grpc.example.test"}})["ok"]);
  service.client_closed(3);
  EXPECT_EQ(call(service, 3, "commit")["error"]["code"], "no_transaction");
  EXPECT_EQ(service.committed().hosts.size(), 2u);
}

// Another client's commit in between: the transaction's commands are
// applied on top of it, or nothing is committed when one no longer applies.
TEST_F(Service, ATransactionReplaysOnTopOfAnotherClientsCommit) {
  ControlService service = make(base_config());
  ASSERT_TRUE(call(service, 1, "begin")["ok"]);
  ASSERT_TRUE(call(service, 1, "rule.add", {{"name", "mine"}, {"expression", "tls.sni == \"a\""}, {"action", "log"}})["ok"]);
  ASSERT_TRUE(call(service, 2, "rule.add", {{"name", "theirs"}, {"expression", "tls.sni == \"b\""}, {"action", "log"}})["ok"]);
  ASSERT_TRUE(call(service, 1, "commit")["ok"]);
  ASSERT_EQ(service.committed().rules.size(), 2u);
  EXPECT_EQ(service.committed().rules[0].name, "theirs");
  EXPECT_EQ(service.committed().rules[1].name, "mine");

  ASSERT_TRUE(call(service, 1, "begin")["ok"]);
  ASSERT_TRUE(call(service, 1, "rule.del", {{"name", "theirs"}})["ok"]);
  ASSERT_TRUE(call(service, 2, "rule.del", {{"name", "theirs"}})["ok"]);
  const json conflict = call(service, 1, "commit");
  EXPECT_EQ(conflict["error"]["code"], "not_found") << conflict;
  EXPECT_NE(conflict["error"]["message"].get<std::string>().find("nothing was committed"), std::string::npos);
  EXPECT_EQ(service.committed().rules.size(), 1u);
}

TEST_F(Service, ACommitThatCannotBeBuiltChangesNothingAndSavesNothing) {
  ControlService service = make(base_config());
  publisher_.refuse = "a worker's tables would not build";
  const json answer = call(service, 1, "revoke.add", {{"ca", "devices"}, {"serial", "0a"}, {"close_connections", true}});
  EXPECT_FALSE(answer["ok"]);
  EXPECT_TRUE(service.committed().revocations.empty());
  std::string error;
  EXPECT_FALSE(store_->restore(base_config(), error)) << "nothing saved";
  EXPECT_EQ(error, "");
  publisher_.refuse.clear();
  ASSERT_TRUE(call(service, 1, "revoke.add", {{"ca", "devices"}, {"serial", "0a"}, {"close_connections", true}})["ok"]);
  EXPECT_TRUE(publisher_.last_close_revoked);
  EXPECT_EQ(service.committed().revocations[0].serial, "0A");
  EXPECT_EQ(call(service, 1, "revoke.add", {{"ca", "devices"}, {"serial", "00:0A"}})["error"]["code"], "exists");
}

TEST_F(Service, StatsAnswerAsJsonPerWorkerOrPrometheusText) {
  ControlService service = make(base_config());
  EXPECT_EQ(call(service, 1, "stats")["result"]["workers"][0]["busy_cycles"], 1);
  EXPECT_EQ(call(service, 1, "stats", {{"worker", 0}})["result"]["stats"]["busy_cycles"], 1);
  EXPECT_EQ(call(service, 1, "stats", {{"format", "prometheus"}})["result"], "mtlsgw_rx_frames 1\n");
  EXPECT_EQ(call(service, 1, "stats", {{"format", "xml"}})["error"]["code"], "bad_field");
}

TEST_F(Service, RulesArePlacedMovedAndListedInOrder) {
  ControlService service = make(base_config());
  auto add = [&](const std::string& name, json place = json::object()) {
    json args = {{"name", name}, {"expression", "tls.sni == \"" + name + "\""}, {"action", "log"}};
    args.update(place);
    return call(service, 1, "rule.add", args);
  };
  ASSERT_TRUE(add("a")["ok"]);
  ASSERT_TRUE(add("c")["ok"]);
  ASSERT_TRUE(add("b", {{"before", "c"}})["ok"]);
  ASSERT_TRUE(add("first", {{"position", 0}})["ok"]);
  ASSERT_TRUE(add("d", {{"after", "c"}})["ok"]);
  EXPECT_EQ(add("x", {{"after", "c"}, {"position", 1}})["error"]["code"], "bad_field");
  ASSERT_TRUE(call(service, 1, "rule.move", {{"name", "first"}, {"after", "d"}})["ok"]);
  EXPECT_EQ(call(service, 1, "rule.move", {{"name", "a"}})["error"]["code"], "missing_field");
  EXPECT_EQ(call(service, 1, "rule.move", {{"name", "a"}, {"before", "a"}})["error"]["code"], "bad_field");
  std::vector<std::string> order;
  const json listed = call(service, 1, "rule.list");
  for (const json& r : listed["result"]) order.push_back(r["name"]);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d", "first"}));
}

// Trust stores are used again when their CAs did not change, so that the
// verdicts cached under their generation survive a change elsewhere.
TEST(GatewaySpecStores, AStoreIsKeptUntilItsCasChange) {
  json config = {{"ports", {{{"port_id", 0}, {"address", "198.18.0.2/24"}}}}};
  config["cas"] = json::array({ca_args("devices", "devices-ca.pem", "devices.crl.pem"),
                               ca_args("partners", "partners-ca.pem", "partners.crl.pem")});
  config["hosts"] = json::array({host_args("api.example.test", "server-api-ecdsa", "devices"),
                                 host_args("grpc.example.test", "server-grpc-ecdsa", "partners")});
  Config first = parse_config(config.dump(), "");
  TrustStoreCache stores;
  std::string error;
  std::vector<std::string> warnings;
  auto a = make_gateway_spec(first, error, warnings, nullptr, 1, &stores);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(stores.size(), 2u);

  config["cas"][1]["crl_pem"] = read_test_pki("partners.crl.pem") + "\n";  // a new CRL text
  Config second = parse_config(config.dump(), "");
  auto b = make_gateway_spec(second, error, warnings, nullptr, 2, &stores);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->hosts[0].trust, a->hosts[0].trust) << "devices did not change";
  EXPECT_NE(b->hosts[1].trust, a->hosts[1].trust) << "partners' CRL did";
  EXPECT_NE(b->hosts[1].trust->generation(), a->hosts[1].trust->generation());
}

}  // namespace
}  // namespace mtlsgw::control
