// Fuzz target for the rules language: any bytes as an expression. It must
// never crash, leak or hit undefined behaviour, and beyond that these must
// hold (a failure aborts, which both libFuzzer and fuzz_driver report):
// - a rejected expression has an error inside the text, with a message;
// - a compiled one evaluates against three fixed inputs, and its canonical
//   text compiles back to the same canonical text and the same answers;
// - "not (" text ")" answers the opposite;
// - in a table, the rule logs exactly when it matched, evaluate_all agrees
//   with the two phases, and render() gives the text back.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "rules/rule_parser.h"
#include "rules/rule_table.h"

namespace {

using namespace mtlsgw::rules;

void check(bool condition, const char* what, std::string_view text) {
  if (condition) return;
  std::fprintf(stderr, "rules_fuzz: %s\nexpression (%zu bytes): %.*s\n", what, text.size(),
               static_cast<int>(std::min<std::size_t>(text.size(), 512)), text.data());
  std::abort();
}

constexpr std::array<std::string_view, 2> kSanDns = {"api.example.test", ""};
constexpr std::array<std::string_view, 3> kSanUri = {"spiffe://example.test/a", "\xFF\x00x",
                                                     "urn:x"};

std::array<RuleInput, 3> make_inputs() {
  std::array<RuleInput, 3> inputs{};
  // 0: a verified client on an HTTP request.
  RuleInput& full = inputs[0];
  full.tls_sni = "api.example.test";
  full.tls_version = "TLSv1.3";
  full.tls_alpn = "h2";
  full.tls_cipher = "TLS_AES_128_GCM_SHA256";
  full.tls_host = "*.example.test";
  full.ip_src = 0xC6120107;
  full.cert_presented = full.cert_verified = true;
  full.cert_subject_dn = "CN=dev-1,O=Devices";
  full.cert_issuer_dn = "CN=CA";
  full.cert_common_name = "dev-1";
  full.cert_serial = "0A1B";
  full.cert_fingerprint_sha256 = "00ff";
  full.cert_ski = "a1";
  full.cert_issuer_ski = "b2";
  full.cert_san_dns = kSanDns;
  full.cert_san_uri = kSanUri;
  full.cert_not_before = 1'700'000'000;
  full.cert_not_after = 1'800'000'000;
  full.http_present = true;
  full.http_host = "api.example.test";
  full.http_method = "GET";
  full.http_uri_path = "/a";
  full.http_uri = "/a?b=c";
  // 1: nothing at all: no certificate, no HTTP.
  // 2: extremes: a revoked certificate, empty and odd text, edge numbers.
  RuleInput& odd = inputs[2];
  odd.tls_sni = std::string_view("a\0b", 3);
  odd.ip_src = 0xFFFFFFFF;
  odd.cert_presented = odd.cert_revoked = true;
  odd.cert_subject_dn = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";  // for hostile patterns
  odd.cert_san_uri = kSanUri;
  odd.cert_not_before = INT64_MIN;
  odd.cert_not_after = INT64_MAX;
  odd.http_present = true;
  return inputs;
}

const std::array<RuleInput, 3>& inputs() {
  static const std::array<RuleInput, 3> kInputs = make_inputs();
  return kInputs;
}

EvalScratch& scratch() {
  static EvalScratch instance;
  return instance;
}

std::array<bool, 3> answers(const Program& program) {
  std::array<bool, 3> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = evaluate(program, inputs()[i], scratch());
  return out;
}

bool is_limit_error(const RuleError& error) {
  return error.message.find("nesting deeper") != std::string::npos ||
         error.message.find("the limit is") != std::string::npos;
}

void check_table(std::string_view text, const std::array<bool, 3>& expected) {
  RuleTableBuilder builder;
  RuleError error;
  check(builder.add("fuzz", Action::log, text, error), "the table refused a compiled rule", text);
  check(builder.add("last", Action::block, "true", error), "the table refused \"true\"", text);
  const RuleTable table = std::move(builder).build();
  check(table.render(0) == "fuzz log " + std::string(text), "render changed the text", text);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Verdict all = table.evaluate_all(inputs()[i], scratch());
    check(all.logged.test(0) == expected[i], "the log rule disagrees with evaluate()", text);
    check(all.decision == Decision::block && all.rule_index == 1, "\"last\" did not decide", text);
    const Verdict first = table.evaluate_connection(inputs()[i], scratch());
    const Verdict second = table.evaluate_request(inputs()[i], scratch(), first.resume_index);
    const bool logged = first.logged.test(0) || second.logged.test(0);
    check(logged == expected[i], "the two phases disagree with evaluate_all", text);
    check(first.decided() || second.decision == Decision::block,
          "the two phases did not reach \"last\"", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  RuleError error;
  const std::optional<Program> program = compile(text, error);
  if (!program) {
    check(!error.message.empty(), "an error without a message", text);
    check(error.offset <= text.size(), "an error past the end", text);
    check(error.line >= 1 && error.column >= 1 && error.column <= error.offset + 1,
          "an error position out of range", text);
    return 0;
  }

  const std::array<bool, 3> expected = answers(*program);

  const std::string canonical = program->canonical_text();
  RuleError again_error;
  const std::optional<Program> again = compile(canonical, again_error);
  if (again) {
    check(again->canonical_text() == canonical, "the canonical text is not stable", text);
    check(answers(*again) == expected, "the canonical text answers differently", text);
    check(again->uses_http() == program->uses_http(), "uses_http changed", text);
  } else {
    check(is_limit_error(again_error), "the canonical text does not compile", text);
  }

  const std::string negated = "not (" + std::string(text) + ")";
  RuleError negated_error;
  if (const std::optional<Program> opposite = compile(negated, negated_error)) {
    const std::array<bool, 3> flipped = answers(*opposite);
    for (std::size_t i = 0; i < flipped.size(); ++i) {
      check(flipped[i] != expected[i], "not (x) is not the opposite of x", text);
    }
  } else {
    check(is_limit_error(negated_error), "not (x) does not compile", text);
  }

  check_table(text, expected);
  return 0;
}
