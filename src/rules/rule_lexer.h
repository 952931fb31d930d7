#pragma once
// Tokens of the rules language (docs/rules.md, "Grammar"). The lexer works on
// demand, one token per call, so that errors come out in the order of the
// text: a bad escape late in an expression is not reported before a missing
// operator early in it.
//
// Literal forms, checked here so that the parser sees values only:
//   "..."            escapes \" and \\ only; no control characters
//   r"..." r#"..."#  raw strings (for regular expressions): no escapes, ends
//                    at the quote followed by as many '#' as it opened with
//   -12 345          decimal integers that fit int64
//   198.18.0.1       IPv4 addresses, four decimal octets without leading zeros
//   198.18.0.0/15    IPv4 prefixes, with no bits set after the prefix length

#include <cstdint>
#include <string>
#include <string_view>

#include "rules/rule_error.h"

namespace mtlsgw::rules {

enum class TokenKind : uint8_t {
  end,
  identifier,
  string,
  integer,
  address,
  left_paren,
  right_paren,
  left_brace,
  right_brace,
  comma,
  op_and,            // and &&
  op_or,             // or ||
  op_xor,            // xor ^^
  op_not,            // not !
  op_equal,          // == eq
  op_not_equal,      // != ne
  op_less,           // < lt
  op_less_equal,     // <= le
  op_greater,        // > gt
  op_greater_equal,  // >= ge
  op_contains,
  op_starts_with,
  op_ends_with,
  op_matches,  // matches ~
  op_in,
  kw_true,
  kw_false,
};

struct Token {
  TokenKind kind = TokenKind::end;
  uint32_t offset = 0;  // of its first byte in the expression
  uint32_t length = 0;  // bytes, as written
  std::string text;     // string: the decoded value
  int64_t integer = 0;
  uint32_t address = 0;  // host order
  uint8_t prefix_length = 32;

  bool is_comparison() const noexcept {
    return kind >= TokenKind::op_equal && kind <= TokenKind::op_in;
  }
  bool is_value() const noexcept {
    return kind == TokenKind::string || kind == TokenKind::integer || kind == TokenKind::address ||
           kind == TokenKind::kw_true || kind == TokenKind::kw_false;
  }
};

class Lexer {
 public:
  explicit Lexer(std::string_view source) noexcept : source_(source) {}

  // The next token, or false with error set.
  bool next(Token& token, RuleError& error);

  std::string_view source() const noexcept { return source_; }

 private:
  bool lex_quoted(Token& token, RuleError& error);
  bool lex_raw(Token& token, RuleError& error);
  bool lex_number(Token& token, RuleError& error);
  bool lex_word(Token& token, RuleError& error);
  bool lex_symbol(Token& token, RuleError& error);

  std::string_view source_;
  std::size_t pos_ = 0;
};

// Whether word is one of the language's keywords ("and", "eq", "true", ...).
bool is_keyword(std::string_view word) noexcept;

// How a token reads in a message: end of expression, "and", string "abc",
// number 12, address 198.18.0.0/15, "tls.sni".
std::string describe(const Token& token, std::string_view source);

// The token as written ("==", "eq", "contains"), for "after X" messages.
std::string_view spelling(const Token& token, std::string_view source) noexcept;

}  // namespace mtlsgw::rules
