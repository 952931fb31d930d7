#include "rules/rule_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rule_test_support.h"

namespace mtlsgw::rules {
namespace {

using testing::canonical;
using testing::compile_error;
using testing::compile_ok;

TEST(RuleParser, OperatorSynonymsCompileAlike) {
  const std::vector<std::pair<std::string, std::string>> synonyms = {
      {"tls.sni eq \"a\"", "tls.sni == \"a\""},
      {"tls.sni ne \"a\"", "tls.sni != \"a\""},
      {"client.cert.not_after lt 5", "client.cert.not_after < 5"},
      {"client.cert.not_after le 5", "client.cert.not_after <= 5"},
      {"client.cert.not_after gt 5", "client.cert.not_after > 5"},
      {"client.cert.not_after ge 5", "client.cert.not_after >= 5"},
      {"tls.sni ~ \"^a\"", "tls.sni matches \"^a\""},
      {"client.cert.verified && client.cert.presented",
       "client.cert.verified and client.cert.presented"},
      {"client.cert.verified || client.cert.presented",
       "client.cert.verified or client.cert.presented"},
      {"client.cert.verified ^^ client.cert.presented",
       "client.cert.verified xor client.cert.presented"},
      {"!client.cert.verified", "not client.cert.verified"},
      {"ip.src in {198.18.0.1, 198.18.0.2}", "ip.src in {198.18.0.1 198.18.0.2}"},
  };
  for (const auto& [synonym, plain] : synonyms) {
    EXPECT_EQ(canonical(synonym), canonical(plain)) << synonym;
  }
}

TEST(RuleParser, EveryOperatorHasItsCanonicalForm) {
  EXPECT_EQ(canonical("tls.sni == \"a\""), "tls.sni == \"a\"");
  EXPECT_EQ(canonical("tls.sni != \"a\""), "tls.sni != \"a\"");
  EXPECT_EQ(canonical("tls.sni contains \"a\""), "tls.sni contains \"a\"");
  EXPECT_EQ(canonical("tls.sni starts_with \"a\""), "tls.sni starts_with \"a\"");
  EXPECT_EQ(canonical("tls.sni ends_with \"a\""), "tls.sni ends_with \"a\"");
  EXPECT_EQ(canonical("tls.sni ~ \"a+\""), "tls.sni matches \"a+\"");
  EXPECT_EQ(canonical("tls.sni in {\"b\" \"a\" \"b\"}"), "tls.sni in {\"a\" \"b\"}");
  EXPECT_EQ(canonical("client.cert.not_before < 1"), "client.cert.not_before < 1");
  EXPECT_EQ(canonical("client.cert.not_before <= 1"), "client.cert.not_before <= 1");
  EXPECT_EQ(canonical("client.cert.not_before > 1"), "client.cert.not_before > 1");
  EXPECT_EQ(canonical("client.cert.not_before >= 1"), "client.cert.not_before >= 1");
  EXPECT_EQ(canonical("client.cert.not_before in {3 1 2 1}"), "client.cert.not_before in {1 2 3}");
  EXPECT_EQ(canonical("ip.src == 198.18.0.0/15"), "ip.src == 198.18.0.0/15");
  EXPECT_EQ(canonical("ip.src != 198.18.0.7"), "ip.src != 198.18.0.7");
  EXPECT_EQ(canonical("client.cert.revoked"), "client.cert.revoked == true");
  EXPECT_EQ(canonical("client.cert.revoked == false"), "client.cert.revoked == false");
  EXPECT_EQ(canonical("client.cert.revoked != true"), "client.cert.revoked != true");
  EXPECT_EQ(canonical("client.cert.san.dns == \"a\""), "client.cert.san.dns == \"a\"");
  EXPECT_EQ(canonical("true"), "true");
  EXPECT_EQ(canonical("false"), "false");
}

TEST(RuleParser, PrecedenceIsNotAndXorOr) {
  EXPECT_EQ(canonical("not client.cert.verified or client.cert.revoked and client.cert.presented"),
            "not client.cert.verified == true or "
            "(client.cert.revoked == true and client.cert.presented == true)");
  EXPECT_EQ(canonical("client.cert.verified and client.cert.revoked or client.cert.presented"),
            "(client.cert.verified == true and client.cert.revoked == true) or "
            "client.cert.presented == true");
  EXPECT_EQ(canonical("true or false xor true and false"), "true or (false xor (true and false))");
  EXPECT_EQ(canonical("true and false xor true or false"), "((true and false) xor true) or false");
  // not binds to one comparison, not to the rest of the chain.
  EXPECT_EQ(canonical("not tls.sni == \"a\" and true"), "not tls.sni == \"a\" and true");
}

TEST(RuleParser, ParenthesesGroupAndChainsFlatten) {
  EXPECT_EQ(canonical("(true or false) and true"), "(true or false) and true");
  EXPECT_EQ(canonical("not (true or false)"), "not (true or false)");
  EXPECT_EQ(canonical("((((true))))"), "true");
  EXPECT_EQ(canonical("true or false or true or false"), "true or false or true or false");
  const Program chain = compile_ok("true or false or true or false");
  EXPECT_EQ(chain.nodes().size(), 5u);  // four constants and one "or"
  EXPECT_EQ(chain.nodes()[chain.root()].count, 4u);
}

TEST(RuleParser, StringLiteralsAndEscapes) {
  const Program escaped = compile_ok(R"(tls.sni == "a\"b\\c")");
  EXPECT_EQ(escaped.string(0), "a\"b\\c");
  const Program raw = compile_ok(R"(tls.sni == r"a\d+\")");
  EXPECT_EQ(raw.string(0), "a\\d+\\");
  const Program hashed = compile_ok(R"x(tls.sni == r#"say "hi""#)x");
  EXPECT_EQ(hashed.string(0), "say \"hi\"");
  const Program two = compile_ok(R"x(tls.sni == r##"a"#b"##)x");
  EXPECT_EQ(two.string(0), "a\"#b");
  const Program empty = compile_ok(R"(tls.sni == "")");
  EXPECT_EQ(empty.string(0), "");
  const Program utf8 = compile_ok("client.cert.common_name == \"d\xC3\xA9v\"");
  EXPECT_EQ(utf8.string(0), "d\xC3\xA9v");
  // The canonical form escapes what needs it and compiles back.
  EXPECT_EQ(escaped.canonical_text(), R"(tls.sni == "a\"b\\c")");
  EXPECT_EQ(canonical(escaped.canonical_text()), escaped.canonical_text());
}

TEST(RuleParser, IntegerLiterals) {
  EXPECT_EQ(compile_ok("client.cert.not_after == -5").comparisons()[0].integer, -5);
  EXPECT_EQ(compile_ok("client.cert.not_after == 9223372036854775807").comparisons()[0].integer,
            INT64_MAX);
  EXPECT_EQ(compile_ok("client.cert.not_after == -9223372036854775808").comparisons()[0].integer,
            INT64_MIN);
  EXPECT_EQ(compile_ok("client.cert.not_after==0").comparisons()[0].integer, 0);
}

TEST(RuleParser, AddressesAndPrefixes) {
  const Program single = compile_ok("ip.src == 198.18.1.7");
  EXPECT_EQ(single.comparisons()[0].address, 0xC6120107u);
  EXPECT_EQ(single.comparisons()[0].mask, 0xFFFFFFFFu);
  const Program prefix = compile_ok("ip.src == 198.18.0.0/15");
  EXPECT_EQ(prefix.comparisons()[0].address, 0xC6120000u);
  EXPECT_EQ(prefix.comparisons()[0].mask, 0xFFFE0000u);
  EXPECT_EQ(compile_ok("ip.src == 0.0.0.0/0").comparisons()[0].mask, 0u);
  // A set keeps its prefixes grouped by length, longest first.
  EXPECT_EQ(canonical("ip.src in {198.18.0.0/24 198.18.1.7, 198.18.0.0/15 198.18.1.6}"),
            "ip.src in {198.18.1.6 198.18.1.7 198.18.0.0/24 198.18.0.0/15}");
}

TEST(RuleParser, SetsTakeSpacesCommasAndNewlines) {
  EXPECT_EQ(canonical("tls.alpn in {\"h2\",\"http/1.1\"}"), "tls.alpn in {\"h2\" \"http/1.1\"}");
  EXPECT_EQ(canonical("tls.alpn in {\n  \"h2\"\n  \"http/1.1\"\n}"),
            "tls.alpn in {\"h2\" \"http/1.1\"}");
  EXPECT_EQ(canonical("client.cert.not_after in {1, 2 3}"), "client.cert.not_after in {1 2 3}");
  EXPECT_EQ(canonical("client.cert.san.uri in {r\"spiffe://a\"}"),
            "client.cert.san.uri in {\"spiffe://a\"}");
}

TEST(RuleParser, UsesHttpWhenAnyHttpFieldIsRead) {
  EXPECT_FALSE(compile_ok("tls.sni == \"a\" and client.cert.verified").uses_http());
  EXPECT_TRUE(compile_ok("client.cert.verified or http.host == \"a\"").uses_http());
  EXPECT_TRUE(compile_ok("not http.request.method in {\"GET\"}").uses_http());
  EXPECT_TRUE(compile_ok("http.request.uri.path starts_with \"/a\"").uses_http());
  EXPECT_TRUE(compile_ok("http.request.uri contains \"?\"").uses_http());
  EXPECT_FALSE(compile_ok("tls.host == \"*.example.test\"").uses_http());
}

struct BadInput {
  std::string text;
  uint32_t line;
  uint32_t column;
  std::string fragment;
};

TEST(RuleParser, ErrorsPointAtTheTokenAndSayWhatWasExpected) {
  const std::vector<BadInput> cases = {
      {"http.request.uri ==", 1, 20,
       "expected a value after \"==\" at 1:18, found end of expression"},
      {"", 1, 1, "expected a field, \"not\", \"(\", true or false, found end of expression"},
      {"tls.sin == \"a\"", 1, 1, "unknown field \"tls.sin\"; did you mean \"tls.sni\"?"},
      {"TLS.SNI == \"a\"", 1, 1, "did you mean \"tls.sni\"?"},
      {"cf.tls_client_auth.cert_verified", 1, 1, "did you mean \"client.cert.verified\"?"},
      {"client.cert == \"x\"", 1, 1, "the fields under it are client.cert.presented"},
      {"frobnicate == 1", 1, 1, "unknown field \"frobnicate\" (docs/rules.md lists the fields)"},
      {"client.cert.verified\nand ip.src contains \"x\"", 2, 12,
       "\"contains\" does not apply to ip.src, which is an IPv4 address (its operators: ==, "
       "!=, in)"},
      {"client.cert.verified > 3", 1, 22, "\">\" does not apply to client.cert.verified"},
      {"tls.sni < \"b\"", 1, 9, "\"<\" does not apply to tls.sni, which is a string"},
      {"tls.sni in {1 2}", 1, 13,
       "expected a string in the set opened at 1:12 (tls.sni is a string), found number 1"},
      {"tls.sni == 5", 1, 12,
       "expected a string after \"==\" at 1:9 (tls.sni is a string), found number 5"},
      {"client.cert.not_after > \"soon\"", 1, 25,
       "expected an integer after \">\" at 1:23 (client.cert.not_after is an integer), found "
       "string \"soon\""},
      {"client.cert.verified == \"yes\"", 1, 25, "expected true or false after \"==\""},
      {"ip.src == \"198.18.0.1\"", 1, 11, "expected an IPv4 address or prefix"},
      {"tls.sni matches \"(\"", 1, 17, "invalid regular expression: missing closing parenthesis"},
      {"tls.sni == \"abc", 1, 12, "unterminated string"},
      {"tls.sni == \"a\\nb\"", 1, 14, "unknown escape \\n in a string"},
      {"tls.sni == \"a\tb\"", 1, 14, "control character \\x09 in a string"},
      {"tls.sni == r#\"abc\"", 1, 12, "unterminated raw string: no closing '\"#'"},
      {"tls.sni == r#abc", 1, 14, "expected '\"' to open the raw string started at 1:12"},
      {"tls.sni == 'a'", 1, 12, "strings are in double quotes"},
      {"(tls.sni == \"a\"", 1, 16,
       "expected \"and\", \"or\", \"xor\" or \")\" to close \"(\" at 1:1, found end of "
       "expression"},
      {"tls.sni == \"a\")", 1, 15, "unmatched \")\""},
      {"tls.sni == \"a\" tls.alpn == \"h2\"", 1, 16,
       "expected \"and\", \"or\", \"xor\" or end of expression after string \"a\" at 1:12, found "
       "\"tls.alpn\""},
      {"client.cert.verified AND tls.sni == \"a\"", 1, 22,
       "found \"AND\" (keywords are lower case: \"and\")"},
      {"client.cert.verified and", 1, 25,
       "expected a field, \"not\", \"(\", true or false after \"and\" at 1:22, found end of "
       "expression"},
      {"\"a\" == tls.sni", 1, 1, "a comparison starts with its field"},
      {"tls.sni", 1, 1, "tls.sni is a string, not a boolean: compare it with one of ==, !="},
      {"tls.sni \"a\"", 1, 9, "expected an operator after \"tls.sni\" at 1:1, found string \"a\""},
      {"tls.sni == {\"a\"}", 1, 12, "(a set of values goes with \"in\")"},
      {"tls.sni in \"a\"", 1, 12, "expected \"{\" after \"in\" at 1:9, found string \"a\""},
      {"tls.sni in {}", 1, 13, "empty set"},
      {"tls.sni in {\"a\",}", 1, 17, "expected a value after \",\" at 1:16, found \"}\""},
      {"tls.sni in {\"a\",,\"b\"}", 1, 17, "expected a value after \",\" at 1:16, found \",\""},
      {"tls.sni in {,\"a\"}", 1, 13, "expected a value after \"{\" at 1:12, found \",\""},
      {"tls.sni in {\"a\"", 1, 16,
       "expected a value, \",\" or \"}\" in the set opened at 1:12, found end of expression"},
      {"tls.sni = \"a\"", 1, 9, "unexpected \"=\"; did you mean \"==\"?"},
      {"true & false", 1, 6, "unexpected \"&\"; did you mean \"&&\"?"},
      {"tls.sni == \"a\" # note", 1, 16, "unexpected character \"#\""},
      {"ip.src == 198.18.0.1/24", 1, 11,
       "198.18.0.1/24 has bits set after its prefix length; the prefix is 198.18.0.0/24"},
      {"ip.src == 198.18.0.256", 1, 11, "malformed IPv4 address \"198.18.0.256\""},
      {"ip.src == 198.018.0.1", 1, 11, "malformed IPv4 address"},
      {"ip.src == 198.18.0", 1, 11, "malformed IPv4 address"},
      {"ip.src == 198.18.0.0/33", 1, 22, "malformed prefix length \"33\""},
      {"ip.src == 2001:db8::1", 1, 11, "IPv6 addresses are not supported"},
      {"client.cert.not_after < 99999999999999999999", 1, 25, "is out of range"},
      {"client.cert.not_after < 12ab", 1, 25, "malformed number \"12ab\""},
      // Columns count code points: the two-byte e-acute is one column.
      {"tls.sni == \"\xC3\xA9\" and nope", 1, 20, "unknown field \"nope\""},
      {"\xC3\xA9", 1, 1, "unexpected character \\xC3"},
      {std::string("tls.sni == \"a\"\0", 15), 1, 15, "unexpected character \\x00"},
  };
  for (const BadInput& bad : cases) {
    const RuleError error = compile_error(bad.text);
    EXPECT_EQ(error.line, bad.line) << bad.text << " -> " << error.to_string();
    EXPECT_EQ(error.column, bad.column) << bad.text << " -> " << error.to_string();
    EXPECT_NE(error.message.find(bad.fragment), std::string::npos)
        << bad.text << " -> " << error.to_string() << "\n  wanted: " << bad.fragment;
  }
}

TEST(RuleParser, ErrorOffsetAndTextForm) {
  const RuleError error = compile_error("client.cert.verified\n  and nope");
  EXPECT_EQ(error.offset, 27u);
  EXPECT_EQ(error.line, 2u);
  EXPECT_EQ(error.column, 7u);
  EXPECT_EQ(error.to_string(), "2:7: unknown field \"nope\" (docs/rules.md lists the fields)");
}

TEST(RuleParser, NestingIsLimited) {
  const auto nested = [](std::size_t depth) {
    return std::string(depth, '(') + "true" + std::string(depth, ')');
  };
  compile_ok(nested(kMaxNesting));
  const RuleError deep = compile_error(nested(kMaxNesting + 1));
  EXPECT_EQ(deep.column, kMaxNesting + 1);
  EXPECT_NE(deep.message.find("nesting deeper than 64"), std::string::npos) << deep.message;

  std::string nots;
  for (uint32_t i = 0; i < kMaxNesting; ++i) nots += "not ";
  compile_ok(nots + "true");
  EXPECT_NE(compile_error("not " + nots + "true").message.find("nesting"), std::string::npos);

  // Far past the limit the parser stops at the limit, not at the stack's end.
  const RuleError runaway = compile_error(std::string(kMaxExpressionBytes, '('));
  EXPECT_EQ(runaway.column, kMaxNesting + 1);
  const RuleError bangs = compile_error(std::string(kMaxExpressionBytes, '!'));
  EXPECT_EQ(bangs.column, kMaxNesting + 1);
}

TEST(RuleParser, LengthIsLimited) {
  std::string text = "tls.sni == \"";
  text += std::string(kMaxExpressionBytes - text.size() - 1, 'a') + "\"";
  ASSERT_EQ(text.size(), kMaxExpressionBytes);
  compile_ok(text);
  const RuleError error = compile_error(text + " ");
  EXPECT_EQ(error.offset, kMaxExpressionBytes);
  EXPECT_NE(error.message.find("expression of 4097 bytes; the limit is 4096"), std::string::npos);
}

TEST(RuleParser, SetSizeIsLimited) {
  const auto set_of = [](std::size_t n) {
    std::string text = "client.cert.not_after in {";
    for (std::size_t i = 0; i < n; ++i) text += std::to_string(i) + " ";
    return text + "}";
  };
  EXPECT_EQ(compile_ok(set_of(kMaxSetValues)).integer_set(0).size(), kMaxSetValues);
  const RuleError error = compile_error(set_of(kMaxSetValues + 1));
  EXPECT_NE(error.message.find("a set holds at most 1024 values"), std::string::npos);
  // At the 1025th value.
  EXPECT_EQ(error.offset, set_of(kMaxSetValues).size() - 1);
}

TEST(RuleParser, RegexCountIsLimited) {
  std::string text = "tls.sni ~ \"a\"";
  for (std::size_t i = 1; i < kMaxRegexes; ++i) text += " or tls.sni ~ \"a\"";
  compile_ok(text);
  const std::size_t offset = text.size() + 14;
  const RuleError error = compile_error(text + " or tls.sni ~ \"a\"");
  EXPECT_EQ(error.offset, offset);
  EXPECT_NE(error.message.find("more than 16 regular expressions"), std::string::npos);
}

}  // namespace
}  // namespace mtlsgw::rules
