// The rules language's costs (docs/rules.md, "Cost"): a 20-rule table
// evaluated against one connection and request, one rule compiled, and what
// hostile regular expressions cost (one stopped by the match limit, one the
// limit does not stop).
//
//   ninja -C <build> perf/rules_bench && <build>/perf/rules_bench

#include <benchmark/benchmark.h>

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule_parser.h"
#include "rules/rule_table.h"

namespace mtlsgw::rules {
namespace {

// A plausible policy: revocation and expiry first, network and identity
// checks, logs, then per-path HTTP rules; the client below matches none of
// the deciding rules until the last, so every rule is evaluated.
constexpr std::array<std::pair<std::string_view, std::string_view>, 20> kPolicy{{
    {"block revoked", "client.cert.revoked"},
    {"block expired", "client.cert.presented and client.cert.not_after < 1700000000"},
    {"block old-tls", "tls.version != \"TLSv1.3\" and not ip.src in {198.18.0.0/24}"},
    {"block bad-sni", "not tls.sni ends_with \".example.test\""},
    {"log   all", "true"},
    {"block denylist",
     "client.cert.serial in {\"0A01\" \"0A02\" \"0A03\" \"0A04\" \"0A05\" \"0A06\" \"0A07\" "
     "\"0A08\" \"0A09\" \"0A10\" \"0A11\" \"0A12\" \"0A13\" \"0A14\" \"0A15\" \"0A16\"}"},
    {"block networks", "ip.src in {198.19.0.0/16 198.18.200.0/24 198.18.201.7 198.18.202.0/23}"},
    {"block issuer", "client.cert.issuer_dn != \"CN=Test CA,O=Example\" and client.cert.verified"},
    {"log   spiffe", "client.cert.san.uri starts_with \"spiffe://example.test/ns/prod/\""},
    {"block dev-san", "client.cert.san.dns matches r\"^dev-[0-9]+\\.example\\.test$\""},
    {"block fingerprint",
     "client.cert.fingerprint_sha256 == "
     "\"0000000000000000000000000000000000000000000000000000000000000000\""},
    {"block alpn", "tls.alpn in {\"h3\" \"spdy/3\"} or tls.cipher contains \"CHACHA\""},
    {"block ou", "client.cert.subject_dn matches r\"(^|,)OU=(Contractors|Guests)(,|$)\""},
    {"block admin-writes",
     "http.request.uri.path starts_with \"/admin\" and http.request.method != \"GET\""},
    {"log   uploads", "http.request.method in {\"POST\" \"PUT\"}"},
    {"block scanners", "http.request.uri matches r\"(\\.\\./|%2e%2e|/etc/passwd)\""},
    {"block host-mismatch", "not http.host in {\"api.example.test\" \"api.example.test:443\"}"},
    {"block debug", "http.request.uri.path == \"/debug\" or http.request.uri.path == \"/metrics\""},
    {"block weekend-cn", "client.cert.common_name starts_with \"temp-\""},
    {"allow verified", "client.cert.verified and client.cert.san.dns == \"api.example.test\""},
}};

constexpr std::array<std::string_view, 2> kSanDns = {"api.example.test", "api-1.example.test"};
constexpr std::array<std::string_view, 1> kSanUri = {"spiffe://example.test/ns/prod/sa/api"};

RuleInput request_input() {
  RuleInput in;
  in.tls_sni = "api.example.test";
  in.tls_version = "TLSv1.3";
  in.tls_alpn = "http/1.1";
  in.tls_cipher = "TLS_AES_128_GCM_SHA256";
  in.tls_host = "*.example.test";
  in.ip_src = 0xC6120107;
  in.cert_presented = in.cert_verified = true;
  in.cert_subject_dn = "CN=api-1,OU=Services,O=Example";
  in.cert_issuer_dn = "CN=Test CA,O=Example";
  in.cert_common_name = "api-1";
  in.cert_serial = "7F3A";
  in.cert_fingerprint_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  in.cert_san_dns = kSanDns;
  in.cert_san_uri = kSanUri;
  in.cert_not_before = 1'700'000'000;
  in.cert_not_after = 1'800'000'000;
  in.http_present = true;
  in.http_host = "api.example.test";
  in.http_method = "POST";
  in.http_uri_path = "/v1/items";
  in.http_uri = "/v1/items?limit=5";
  return in;
}

RuleTable policy() {
  RuleTableBuilder builder;
  for (const auto& [label, expression] : kPolicy) {
    const std::string_view action = label.substr(0, label.find(' '));
    std::string name(label.substr(label.rfind(' ') + 1));
    RuleError error;
    if (!builder.add(name, *parse_action(action), expression, error)) {
      throw std::runtime_error(name + ": " + error.to_string());
    }
  }
  return std::move(builder).build();
}

// Both phases, as an `http` host runs them for a connection's first request.
void BM_Table20BothPhases(benchmark::State& state) {
  const RuleTable table = policy();
  EvalScratch scratch;
  const RuleInput in = request_input();
  for (auto _ : state) {
    const Verdict connected = table.evaluate_connection(in, scratch);
    Verdict verdict = table.evaluate_request(in, scratch, connected.resume_index);
    benchmark::DoNotOptimize(verdict);
  }
  const Verdict check = table.evaluate_all(in, scratch);
  if (check.decision != Decision::allow || check.rule_index != 19 || check.logged.count() != 3) {
    state.SkipWithError("the policy did not end at rule 19 with three logs");
  }
  state.counters["rules"] = static_cast<double>(table.size());
}
BENCHMARK(BM_Table20BothPhases);

// The request phase alone (rules 13-19), as for every later request.
void BM_Table20RequestPhase(benchmark::State& state) {
  const RuleTable table = policy();
  EvalScratch scratch;
  const RuleInput in = request_input();
  const uint32_t resume = table.evaluate_connection(in, scratch).resume_index;
  for (auto _ : state) {
    Verdict verdict = table.evaluate_request(in, scratch, resume);
    benchmark::DoNotOptimize(verdict);
  }
  state.counters["resume"] = resume;
}
BENCHMARK(BM_Table20RequestPhase);

void BM_CompileRule(benchmark::State& state) {
  const std::string_view text = kPolicy[12].second;  // a regex rule: PCRE2 and its JIT
  for (auto _ : state) {
    RuleError error;
    auto program = compile(text, error);
    benchmark::DoNotOptimize(program);
  }
}
BENCHMARK(BM_CompileRule);

// A pattern that backtracks exponentially, stopped by kMatchLimit
// (rule_regex.h): the most such a pattern costs per comparison.
void BM_RegexExponential(benchmark::State& state) {
  RuleError error;
  const auto program = compile("tls.sni matches r\"^(a|aa)+$\"", error);
  EvalScratch scratch;
  RuleInput in;
  const std::string subject = std::string(static_cast<std::size_t>(state.range(0)), 'a') + "!";
  in.tls_sni = subject;
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(*program, in, scratch));
  state.counters["aborted"] = benchmark::Counter(static_cast<double>(scratch.regex_aborted()),
                                                 benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_RegexExponential)->Arg(30)->Arg(255)->Unit(benchmark::kMicrosecond);

// What the match limit does not stop: two unbounded repeats retried against
// each other, quadratic in the subject (here an 8 KiB request target, the
// HTTP parser's longest request line, made of "foo"s without a "bar" after).
void BM_RegexQuadratic(benchmark::State& state) {
  RuleError error;
  const auto program = compile("http.request.uri matches r\".*foo.*bar$\"", error);
  EvalScratch scratch;
  RuleInput in;
  std::string uri = "/bar";
  while (uri.size() + 3 <= static_cast<std::size_t>(state.range(0))) uri += "foo";
  in.http_present = true;
  in.http_uri = uri;
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(*program, in, scratch));
  state.counters["aborted"] = benchmark::Counter(static_cast<double>(scratch.regex_aborted()),
                                                 benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_RegexQuadratic)->Arg(1024)->Arg(8192)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mtlsgw::rules

BENCHMARK_MAIN();
