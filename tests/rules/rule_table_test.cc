#include "rules/rule_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mtlsgw::rules {
namespace {

struct Spec {
  std::string name;
  Action action;
  std::string expression;
};

RuleTable build(const std::vector<Spec>& specs) {
  RuleTableBuilder builder;
  for (const Spec& spec : specs) {
    RuleError error;
    EXPECT_TRUE(builder.add(spec.name, spec.action, spec.expression, error))
        << spec.name << ": " << error.to_string();
  }
  return std::move(builder).build();
}

std::vector<uint32_t> hits(const LogHits& logged) {
  std::vector<uint32_t> out;
  for (uint32_t i = logged.next(0); i != kNoRule; i = logged.next(i + 1)) out.push_back(i);
  return out;
}

RuleInput connection(bool verified) {
  RuleInput in;
  in.tls_sni = "api.example.test";
  in.ip_src = 0xC6120107;  // 198.18.1.7
  in.cert_presented = verified;
  in.cert_verified = verified;
  in.cert_common_name = "dev-1";
  return in;
}

RuleInput request(bool verified, std::string_view method, std::string_view path) {
  RuleInput in = connection(verified);
  in.http_present = true;
  in.http_method = method;
  in.http_uri_path = path;
  in.http_uri = path;
  in.http_host = "api.example.test";
  return in;
}

// 0 log   every connection
// 1 block unverified clients outside 198.18.1.0/24
// 2 log   any request to /admin
// 3 block writes by clients other than dev-1
// 4 allow verified clients
// 5 block everything else
const std::vector<Spec> kPolicy = {
    {"seen", Action::log, "true"},
    {"outsiders", Action::block, "not client.cert.verified and not ip.src in {198.18.1.0/24}"},
    {"admin-seen", Action::log, "http.request.uri.path starts_with \"/admin\""},
    {"writers", Action::block,
     "http.request.method in {\"POST\" \"PUT\" \"DELETE\"} and client.cert.common_name != "
     "\"dev-1\""},
    {"verified", Action::allow, "client.cert.verified"},
    {"rest", Action::block, "true"},
};

class RuleTableTest : public ::testing::Test {
 protected:
  RuleTable table_ = build(kPolicy);
  EvalScratch scratch_;
};

TEST_F(RuleTableTest, ConnectionPhaseStopsAtTheFirstHttpRule) {
  ASSERT_EQ(table_.size(), 6u);
  EXPECT_TRUE(table_.uses_http());
  const Verdict verdict = table_.evaluate_connection(connection(true), scratch_);
  EXPECT_EQ(verdict.decision, Decision::none);
  EXPECT_EQ(verdict.rule_index, kNoRule);
  EXPECT_EQ(verdict.resume_index, 2u);
  EXPECT_EQ(hits(verdict.logged), std::vector<uint32_t>{0});
}

TEST_F(RuleTableTest, ConnectionPhaseDecidesBeforeAnyHttpRule) {
  RuleInput outsider = connection(false);
  outsider.ip_src = 0xC6130001;  // 198.19.0.1
  const Verdict verdict = table_.evaluate_connection(outsider, scratch_);
  EXPECT_EQ(verdict.decision, Decision::block);
  EXPECT_EQ(verdict.rule_index, 1u);
  EXPECT_EQ(hits(verdict.logged), std::vector<uint32_t>{0});
}

TEST_F(RuleTableTest, RequestPhaseResumesInOrder) {
  const Verdict connected = table_.evaluate_connection(connection(true), scratch_);
  ASSERT_EQ(connected.resume_index, 2u);

  const Verdict read = table_.evaluate_request(request(true, "GET", "/admin/users"), scratch_,
                                               connected.resume_index);
  EXPECT_EQ(read.decision, Decision::allow);
  EXPECT_EQ(read.rule_index, 4u);
  EXPECT_EQ(hits(read.logged), std::vector<uint32_t>{2});  // not 0 again: the connection's

  RuleInput other = request(true, "DELETE", "/v1/items");
  other.cert_common_name = "dev-2";
  const Verdict write = table_.evaluate_request(other, scratch_, connected.resume_index);
  EXPECT_EQ(write.decision, Decision::block);
  EXPECT_EQ(write.rule_index, 3u);
  EXPECT_TRUE(write.logged.empty());
}

TEST_F(RuleTableTest, UnverifiedInsiderFallsThroughToTheLastRule) {
  const Verdict connected = table_.evaluate_connection(connection(false), scratch_);
  EXPECT_FALSE(connected.decided());
  const Verdict verdict =
      table_.evaluate_request(request(false, "GET", "/"), scratch_, connected.resume_index);
  EXPECT_EQ(verdict.decision, Decision::block);
  EXPECT_EQ(verdict.rule_index, 5u);
}

// Without HTTP (forward tcp or proxy_v2) the HTTP fields are absent, and one
// walk gives what the two phases give.
TEST_F(RuleTableTest, EvaluateAllEqualsBothPhasesWithoutHttp) {
  for (bool verified : {false, true}) {
    RuleInput in = connection(verified);
    in.cert_common_name = "dev-2";  // "writers" would block if the method were present
    const Verdict all = table_.evaluate_all(in, scratch_);
    const Verdict first = table_.evaluate_connection(in, scratch_);
    const Verdict second = table_.evaluate_request(in, scratch_, first.resume_index);
    EXPECT_EQ(all.decision, second.decision);
    EXPECT_EQ(all.rule_index, second.rule_index);
    std::vector<uint32_t> both = hits(first.logged);
    for (uint32_t i : hits(second.logged)) both.push_back(i);
    EXPECT_EQ(hits(all.logged), both);
    EXPECT_EQ(all.decision, verified ? Decision::allow : Decision::block);
  }
}

TEST(RuleTable, FirstDecidingRuleWinsAndLogsBeforeItCount) {
  const RuleTable table = build({
      {"a", Action::log, "true"},
      {"b", Action::log, "false"},
      {"c", Action::log, "tls.sni == \"x\""},
      {"d", Action::allow, "tls.sni == \"x\""},
      {"e", Action::log, "true"},
      {"f", Action::block, "true"},
  });
  EvalScratch scratch;
  RuleInput in;
  in.tls_sni = "x";
  const Verdict allowed = table.evaluate_connection(in, scratch);
  EXPECT_EQ(allowed.decision, Decision::allow);
  EXPECT_EQ(allowed.rule_index, 3u);
  EXPECT_EQ(allowed.resume_index, table.size());
  EXPECT_EQ(hits(allowed.logged), (std::vector<uint32_t>{0, 2}));
  in.tls_sni = "y";
  const Verdict blocked = table.evaluate_connection(in, scratch);
  EXPECT_EQ(blocked.decision, Decision::block);
  EXPECT_EQ(blocked.rule_index, 5u);
  EXPECT_EQ(hits(blocked.logged), (std::vector<uint32_t>{0, 4}));
  EXPECT_FALSE(table.uses_http());
}

TEST(RuleTable, NothingDecidesOnAnEmptyOrAllLogTable) {
  EvalScratch scratch;
  const RuleTable empty;
  const Verdict none = empty.evaluate_connection(RuleInput{}, scratch);
  EXPECT_EQ(none.decision, Decision::none);
  EXPECT_EQ(none.resume_index, 0u);
  EXPECT_TRUE(none.logged.empty());
  const RuleTable logs = build({{"a", Action::log, "true"}, {"b", Action::log, "true"}});
  const Verdict logged = logs.evaluate_connection(RuleInput{}, scratch);
  EXPECT_EQ(logged.decision, Decision::none);
  EXPECT_EQ(logged.resume_index, 2u);
  EXPECT_EQ(logged.logged.count(), 2u);
  // A start past the end evaluates nothing.
  EXPECT_TRUE(logs.evaluate_request(RuleInput{}, scratch, 7).logged.empty());
}

TEST(RuleTable, AnHttpRuleFirstLeavesEverythingToTheRequest) {
  const RuleTable table = build({
      {"get", Action::allow, "http.request.method == \"GET\""},
      {"rest", Action::block, "true"},
  });
  EvalScratch scratch;
  const Verdict connected = table.evaluate_connection(RuleInput{}, scratch);
  EXPECT_FALSE(connected.decided());
  EXPECT_EQ(connected.resume_index, 0u);
}

TEST(RuleTable, NamesAreCheckedAndUnique) {
  RuleTableBuilder builder;
  RuleError error;
  EXPECT_TRUE(builder.add("a-Z_0.9", Action::log, "true", error));
  EXPECT_TRUE(builder.add(std::string(64, 'n'), Action::log, "true", error));
  for (const std::string& bad : {std::string(), std::string(65, 'n'), std::string("a b"),
                                 std::string("caf\xC3\xA9"), std::string("a/b")}) {
    EXPECT_FALSE(builder.add(bad, Action::log, "true", error)) << bad;
    EXPECT_EQ(error.line, 0u);
    EXPECT_NE(error.message.find("invalid rule name"), std::string::npos) << error.message;
  }
  EXPECT_FALSE(builder.add("a-Z_0.9", Action::block, "true", error));
  EXPECT_EQ(error.message, "a rule named \"a-Z_0.9\" exists already");
  EXPECT_EQ(builder.size(), 2u);
}

TEST(RuleTable, ExpressionErrorsKeepTheirPositionAndLeaveTheTable) {
  RuleTableBuilder builder;
  RuleError error;
  EXPECT_FALSE(builder.add("bad", Action::block, "tls.sni ==", error));
  EXPECT_EQ(error.line, 1u);
  EXPECT_EQ(error.column, 11u);
  EXPECT_EQ(builder.size(), 0u);
  EXPECT_TRUE(builder.add("bad", Action::block, "tls.sni == \"a\"", error));
}

TEST(RuleTable, RuleCountIsLimited) {
  RuleTableBuilder builder;
  RuleError error;
  for (std::size_t i = 0; i < kMaxRules; ++i) {
    ASSERT_TRUE(builder.add("r" + std::to_string(i), Action::log, "true", error)) << i;
  }
  EXPECT_FALSE(builder.add("one-more", Action::log, "true", error));
  EXPECT_EQ(error.message, "the table holds at most 4096 rules");
  const RuleTable table = std::move(builder).build();
  EvalScratch scratch;
  const Verdict verdict = table.evaluate_connection(RuleInput{}, scratch);
  EXPECT_EQ(verdict.logged.count(), kMaxRules);
  EXPECT_TRUE(verdict.logged.test(kMaxRules - 1));
  EXPECT_EQ(verdict.logged.next(kMaxRules - 1), kMaxRules - 1);
}

TEST(RuleTable, RenderKeepsTheTextAsWritten) {
  const RuleTable table = build({
      {"ops", Action::block, "client.cert.verified  and\n  tls.sni eq r\"a\""},
      {"api", Action::allow, "http.host == \"api\""},
  });
  EXPECT_EQ(table.render(0), "ops block client.cert.verified  and\n  tls.sni eq r\"a\"");
  EXPECT_EQ(table.render(1), "api allow http.host == \"api\"");
  EXPECT_EQ(table.find("api"), 1u);
  EXPECT_FALSE(table.find("nope"));
  EXPECT_EQ(table[1].action, Action::allow);
  EXPECT_EQ(table[0].expression, "client.cert.verified  and\n  tls.sni eq r\"a\"");
}

TEST(RuleTable, ActionsAndDecisionsByName) {
  EXPECT_EQ(parse_action("log"), Action::log);
  EXPECT_EQ(parse_action("allow"), Action::allow);
  EXPECT_EQ(parse_action("block"), Action::block);
  EXPECT_FALSE(parse_action("Block"));
  EXPECT_FALSE(parse_action("deny"));
  EXPECT_EQ(to_string(Action::block), "block");
  EXPECT_EQ(to_string(Decision::none), "none");
  EXPECT_EQ(to_string(Decision::allow), "allow");
}

TEST(LogHitsTest, SetTestNextAndCount) {
  LogHits hits;
  EXPECT_TRUE(hits.empty());
  EXPECT_EQ(hits.next(0), kNoRule);
  for (uint32_t i : {0u, 63u, 64u, 1000u, 4095u}) hits.set(i);
  EXPECT_EQ(hits.count(), 5u);
  EXPECT_TRUE(hits.test(63));
  EXPECT_FALSE(hits.test(62));
  EXPECT_FALSE(hits.test(kMaxRules));
  EXPECT_EQ(hits.next(0), 0u);
  EXPECT_EQ(hits.next(1), 63u);
  EXPECT_EQ(hits.next(64), 64u);
  EXPECT_EQ(hits.next(65), 1000u);
  EXPECT_EQ(hits.next(1001), 4095u);
  EXPECT_EQ(hits.next(4096), kNoRule);
}

}  // namespace
}  // namespace mtlsgw::rules
