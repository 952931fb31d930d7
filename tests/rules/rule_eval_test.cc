#include "rules/rule_eval.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "rule_test_support.h"

namespace mtlsgw::rules {
namespace {

using testing::compile_ok;

constexpr std::array<std::string_view, 2> kSanDns = {"api.example.test", "*.svc.example.test"};
constexpr std::array<std::string_view, 1> kSanUri = {"spiffe://example.test/ns/prod/sa/api"};

// A verified client on an HTTP request; tests switch parts off.
RuleInput full_input() {
  RuleInput in;
  in.tls_sni = "api.example.test";
  in.tls_version = "TLSv1.3";
  in.tls_alpn = "http/1.1";
  in.tls_cipher = "TLS_AES_128_GCM_SHA256";
  in.tls_host = "*.example.test";
  in.ip_src = 0xC6120107;  // 198.18.1.7
  in.cert_presented = true;
  in.cert_verified = true;
  in.cert_revoked = false;
  in.cert_subject_dn = "CN=dev-1,O=Devices";
  in.cert_issuer_dn = "CN=Test CA,O=Example";
  in.cert_common_name = "dev-1";
  in.cert_serial = "0A1B2C";
  in.cert_fingerprint_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  in.cert_ski = "a1b2";
  in.cert_issuer_ski = "c3d4";
  in.cert_san_dns = kSanDns;
  in.cert_san_uri = kSanUri;
  in.cert_not_before = 1'700'000'000;
  in.cert_not_after = 1'800'000'000;
  in.http_present = true;
  in.http_host = "api.example.test:443";
  in.http_method = "POST";
  in.http_uri_path = "/v1/items";
  in.http_uri = "/v1/items?limit=5";
  return in;
}

class RuleEval : public ::testing::Test {
 protected:
  bool eval(std::string_view text, const RuleInput& input) {
    return evaluate(compile_ok(text), input, scratch_);
  }
  bool eval(std::string_view text) { return eval(text, full_input()); }

  EvalScratch scratch_;
};

TEST_F(RuleEval, StringOperators) {
  EXPECT_TRUE(eval("tls.sni == \"api.example.test\""));
  EXPECT_FALSE(eval("tls.sni == \"API.example.test\""));  // case matters
  EXPECT_FALSE(eval("tls.sni == \"api.example\""));
  EXPECT_TRUE(eval("tls.sni != \"other.example.test\""));
  EXPECT_FALSE(eval("tls.sni != \"api.example.test\""));
  EXPECT_TRUE(eval("tls.sni contains \"example\""));
  EXPECT_TRUE(eval("tls.sni contains \"\""));
  EXPECT_FALSE(eval("tls.sni contains \"exemple\""));
  EXPECT_TRUE(eval("tls.sni starts_with \"api.\""));
  EXPECT_FALSE(eval("tls.sni starts_with \"example\""));
  EXPECT_TRUE(eval("tls.sni ends_with \".test\""));
  EXPECT_FALSE(eval("tls.sni ends_with \".example\""));
  EXPECT_TRUE(eval("tls.sni matches \"^api\\\\.\""));
  EXPECT_FALSE(eval("tls.sni matches \"^example\""));
  EXPECT_TRUE(eval("tls.sni in {\"x.example.test\" \"api.example.test\"}"));
  EXPECT_FALSE(eval("tls.sni in {\"x.example.test\" \"api.example.tes\"}"));
}

// Every field reads its own member of RuleInput: each string field is set
// to its own name and compared with every other field's name.
TEST_F(RuleEval, EachFieldReadsItsOwnValue) {
  std::vector<std::string_view> names;
  RuleInput in = full_input();
  for (const FieldInfo& field : all_fields()) {
    if (field.type == FieldType::string) in.*field.text = field.name;
  }
  for (const FieldInfo& field : all_fields()) {
    if (field.type != FieldType::string) continue;
    for (const FieldInfo& other : all_fields()) {
      if (other.type != FieldType::string) continue;
      const std::string text = std::string(field.name) + " == \"" + std::string(other.name) + "\"";
      EXPECT_EQ(eval(text, in), field.id == other.id) << text;
    }
  }
  RuleInput flags;
  flags.cert_revoked = true;
  EXPECT_TRUE(eval("client.cert.revoked", flags));
  EXPECT_FALSE(eval("client.cert.verified", flags));
  EXPECT_FALSE(eval("client.cert.presented", flags));
  flags.cert_revoked = false;
  flags.cert_verified = true;
  EXPECT_TRUE(eval("client.cert.verified", flags));
  EXPECT_FALSE(eval("client.cert.revoked", flags));
  EXPECT_TRUE(eval("client.cert.not_before == 1700000000"));
  EXPECT_TRUE(eval("client.cert.not_after == 1800000000"));
  in = full_input();
  in.cert_san_dns = {};
  EXPECT_FALSE(eval("client.cert.san.dns == \"api.example.test\"", in));
  EXPECT_TRUE(eval("client.cert.san.uri == \"spiffe://example.test/ns/prod/sa/api\"", in));
}

TEST_F(RuleEval, IntegerOperators) {
  EXPECT_TRUE(eval("client.cert.not_after == 1800000000"));
  EXPECT_FALSE(eval("client.cert.not_after == 1800000001"));
  EXPECT_TRUE(eval("client.cert.not_after != 1800000001"));
  EXPECT_FALSE(eval("client.cert.not_after != 1800000000"));
  EXPECT_TRUE(eval("client.cert.not_after < 1800000001"));
  EXPECT_FALSE(eval("client.cert.not_after < 1800000000"));
  EXPECT_TRUE(eval("client.cert.not_after <= 1800000000"));
  EXPECT_FALSE(eval("client.cert.not_after <= 1799999999"));
  EXPECT_TRUE(eval("client.cert.not_after > 1799999999"));
  EXPECT_FALSE(eval("client.cert.not_after > 1800000000"));
  EXPECT_TRUE(eval("client.cert.not_after >= 1800000000"));
  EXPECT_FALSE(eval("client.cert.not_after >= 1800000001"));
  EXPECT_TRUE(eval("client.cert.not_after in {5 1800000000 -3}"));
  EXPECT_FALSE(eval("client.cert.not_after in {5 1800000001 -3}"));
  RuleInput in = full_input();
  in.cert_not_before = INT64_MIN;
  EXPECT_TRUE(eval("client.cert.not_before < -9223372036854775807", in));
  EXPECT_TRUE(eval("client.cert.not_before == -9223372036854775808", in));
}

TEST_F(RuleEval, AddressOperators) {
  EXPECT_TRUE(eval("ip.src == 198.18.1.7"));
  EXPECT_FALSE(eval("ip.src == 198.18.1.8"));
  EXPECT_TRUE(eval("ip.src == 198.18.0.0/15"));
  EXPECT_TRUE(eval("ip.src == 198.18.1.0/24"));
  EXPECT_FALSE(eval("ip.src == 198.18.0.0/24"));
  EXPECT_TRUE(eval("ip.src == 0.0.0.0/0"));
  EXPECT_TRUE(eval("ip.src != 198.18.0.0/24"));
  EXPECT_FALSE(eval("ip.src != 198.18.1.7"));
  EXPECT_TRUE(eval("ip.src in {198.18.0.0/24 198.18.1.7}"));
  EXPECT_TRUE(eval("ip.src in {198.18.0.0/24 198.18.1.0/25}"));
  EXPECT_FALSE(eval("ip.src in {198.18.0.0/24 198.18.1.6 198.18.1.128/25}"));
  EXPECT_TRUE(eval("ip.src in {198.19.0.0/16, 198.18.0.0/15}"));
}

TEST_F(RuleEval, BooleanForms) {
  EXPECT_TRUE(eval("client.cert.verified"));
  EXPECT_TRUE(eval("client.cert.verified == true"));
  EXPECT_FALSE(eval("client.cert.verified == false"));
  EXPECT_TRUE(eval("client.cert.revoked != true"));
  EXPECT_FALSE(eval("not client.cert.verified"));
  EXPECT_TRUE(eval("!client.cert.revoked"));
  EXPECT_TRUE(eval("true"));
  EXPECT_FALSE(eval("false"));
}

TEST_F(RuleEval, LogicalOperators) {
  EXPECT_TRUE(eval("client.cert.verified and tls.version == \"TLSv1.3\""));
  EXPECT_FALSE(eval("client.cert.verified and tls.version == \"TLSv1.2\""));
  EXPECT_TRUE(eval("client.cert.revoked or tls.version == \"TLSv1.3\""));
  EXPECT_FALSE(eval("client.cert.revoked or tls.version == \"TLSv1.2\""));
  EXPECT_TRUE(eval("true xor false"));
  EXPECT_FALSE(eval("true xor true"));
  EXPECT_TRUE(eval("true xor true xor true"));
  EXPECT_FALSE(eval("not (true or false)"));
  EXPECT_TRUE(eval("not false and not false"));
  // not a or b and c, with a true: (not a) or (b and c).
  EXPECT_FALSE(eval("not client.cert.verified or client.cert.revoked and true"));
  EXPECT_TRUE(eval("not client.cert.verified or client.cert.presented and true"));
}

TEST_F(RuleEval, ArraysHoldWhenAnyElementDoes) {
  EXPECT_TRUE(eval("client.cert.san.dns == \"*.svc.example.test\""));
  EXPECT_FALSE(eval("client.cert.san.dns == \"svc.example.test\""));
  EXPECT_TRUE(eval("client.cert.san.dns contains \"svc\""));
  EXPECT_TRUE(eval("client.cert.san.dns starts_with \"api.\""));
  EXPECT_TRUE(eval("client.cert.san.dns ends_with \".svc.example.test\""));
  EXPECT_FALSE(eval("client.cert.san.dns ends_with \".svc\""));
  EXPECT_TRUE(eval("client.cert.san.dns matches \"^\\\\*\\\\.\""));
  EXPECT_TRUE(eval("client.cert.san.dns in {\"x\" \"api.example.test\"}"));
  EXPECT_FALSE(eval("client.cert.san.dns in {\"x\" \"y\"}"));
  EXPECT_TRUE(eval("client.cert.san.uri starts_with \"spiffe://example.test/\""));
  // != holds when no element equals.
  EXPECT_FALSE(eval("client.cert.san.dns != \"api.example.test\""));
  EXPECT_TRUE(eval("client.cert.san.dns != \"web.example.test\""));
  // An empty array: nothing holds for any element, so != holds.
  RuleInput in = full_input();
  in.cert_san_dns = {};
  EXPECT_FALSE(eval("client.cert.san.dns == \"api.example.test\"", in));
  EXPECT_FALSE(eval("client.cert.san.dns contains \"\"", in));
  EXPECT_TRUE(eval("client.cert.san.dns != \"api.example.test\"", in));
}

TEST_F(RuleEval, AbsentHttpFieldsAreFalseExceptForNotEqual) {
  RuleInput in = full_input();
  in.http_present = false;  // the views still hold text: presence decides
  EXPECT_FALSE(eval("http.host == \"api.example.test:443\"", in));
  EXPECT_TRUE(eval("http.host != \"api.example.test:443\"", in));
  EXPECT_FALSE(eval("http.request.method in {\"POST\"}", in));
  EXPECT_FALSE(eval("http.request.uri.path starts_with \"/\"", in));
  EXPECT_FALSE(eval("http.request.uri contains \"\"", in));
  EXPECT_FALSE(eval("http.request.uri matches \"\"", in));
  EXPECT_TRUE(eval("not http.request.method == \"POST\"", in));
  in.http_present = true;
  EXPECT_TRUE(eval("http.host == \"api.example.test:443\"", in));
  EXPECT_TRUE(eval("http.request.method in {\"POST\"}", in));
  EXPECT_TRUE(eval("http.request.uri.path == \"/v1/items\"", in));
  EXPECT_TRUE(eval("http.request.uri ends_with \"?limit=5\"", in));
}

TEST_F(RuleEval, CertificateFieldsAreAbsentWithoutACertificate) {
  RuleInput in = full_input();
  in.cert_presented = false;
  in.cert_verified = false;
  EXPECT_FALSE(eval("client.cert.not_after < 1900000000", in));
  EXPECT_FALSE(eval("client.cert.not_after >= 0", in));
  EXPECT_FALSE(eval("client.cert.common_name == \"dev-1\"", in));
  EXPECT_TRUE(eval("client.cert.common_name != \"dev-1\"", in));
  EXPECT_FALSE(eval("client.cert.san.dns contains \"example\"", in));
  EXPECT_TRUE(eval("client.cert.san.dns != \"api.example.test\"", in));
  // The flags are always present.
  EXPECT_TRUE(eval("not client.cert.presented", in));
  EXPECT_TRUE(eval("client.cert.verified == false", in));
  // Connection fields do not depend on either.
  in.http_present = false;
  EXPECT_TRUE(eval("tls.alpn == \"http/1.1\" and ip.src == 198.18.1.7", in));
}

TEST_F(RuleEval, RegularExpressions) {
  EXPECT_TRUE(eval("tls.sni matches \"example\""));  // unanchored
  EXPECT_TRUE(eval("tls.sni matches r\"^api\\.example\\.test$\""));
  EXPECT_FALSE(eval("tls.sni matches r\"^example\""));
  EXPECT_TRUE(eval("tls.sni matches r\"(?i)^API\\.\""));
  EXPECT_TRUE(eval("client.cert.subject_dn ~ r\"(^|,)O=Devices(,|$)\""));
  EXPECT_TRUE(eval("http.request.uri ~ r\"^/v1/(items|orders)\\?\""));
  EXPECT_TRUE(eval("tls.alpn matches \"\""));
  RuleInput in = full_input();
  in.tls_sni = "abc\n";
  // $ is the end of the subject only (PCRE2_DOLLAR_ENDONLY).
  EXPECT_FALSE(eval("tls.sni matches \"^abc$\"", in));
  EXPECT_TRUE(eval("tls.sni matches r\"^abc\\n$\"", in));
  // Bytes, not UTF-8: an invalid sequence is a subject like any other.
  in.tls_sni = "\xFF\xFE";
  EXPECT_TRUE(eval("tls.sni matches r\"^\\xFF\"", in));
  in.tls_sni = {};
  EXPECT_TRUE(eval("tls.sni matches \"^$\"", in));
  EXPECT_EQ(scratch_.regex_aborted(), 0u);
}

TEST_F(RuleEval, HostileRegexStopsAtTheMatchLimit) {
  RuleInput in = full_input();
  const std::string subject = std::string(40, 'a') + "!";
  in.tls_sni = subject;
  const Program program = compile_ok("tls.sni matches r\"^(a|aa)+$\"");
  EXPECT_FALSE(evaluate(program, in, scratch_));
  EXPECT_EQ(scratch_.regex_aborted(), 1u);
  // The scratch is usable again at once.
  in.tls_sni = "aaaa";
  EXPECT_TRUE(evaluate(program, in, scratch_));
  EXPECT_EQ(scratch_.regex_aborted(), 1u);
}

TEST_F(RuleEval, ShortCircuitSkipsTheRest) {
  RuleInput in = full_input();
  in.tls_sni = std::string_view("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
  // The hostile match would count an abort if it ran.
  EXPECT_TRUE(eval("true or tls.sni matches r\"^(a|aa)+$\"", in));
  EXPECT_FALSE(eval("false and tls.sni matches r\"^(a|aa)+$\"", in));
  EXPECT_EQ(scratch_.regex_aborted(), 0u);
}

// One Program, several threads, one scratch each: the same answers.
TEST(RuleEvalThreads, OneProgramEvaluatedConcurrently) {
  const Program program = compile_ok(
      "client.cert.verified and tls.sni matches r\"^api\\.\" and ip.src in {198.18.0.0/15} and "
      "client.cert.san.dns in {\"api.example.test\"}");
  RuleInput yes = full_input();
  RuleInput no = full_input();
  no.tls_sni = "web.example.test";
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      EvalScratch scratch;
      for (int i = 0; i < 5000; ++i) {
        if (!evaluate(program, yes, scratch) || evaluate(program, no, scratch)) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace mtlsgw::rules
