#include "rules/rule_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "rules/rule_lexer.h"

namespace mtlsgw::rules {
namespace {

// Thrown once error_ is set; compile() turns it into its return value.
struct ParseFailed {};

bool operator_applies(FieldType type, TokenKind op) noexcept {
  switch (type) {
    case FieldType::string:
    case FieldType::string_array:
      return op == TokenKind::op_equal || op == TokenKind::op_not_equal ||
             op == TokenKind::op_contains || op == TokenKind::op_starts_with ||
             op == TokenKind::op_ends_with || op == TokenKind::op_matches || op == TokenKind::op_in;
    case FieldType::integer:
      return op == TokenKind::op_equal || op == TokenKind::op_not_equal ||
             op == TokenKind::op_less || op == TokenKind::op_less_equal ||
             op == TokenKind::op_greater || op == TokenKind::op_greater_equal ||
             op == TokenKind::op_in;
    case FieldType::address:
      return op == TokenKind::op_equal || op == TokenKind::op_not_equal || op == TokenKind::op_in;
    case FieldType::boolean: return op == TokenKind::op_equal || op == TokenKind::op_not_equal;
  }
  return false;
}

std::string_view operator_list(FieldType type) noexcept {
  switch (type) {
    case FieldType::string:
    case FieldType::string_array: return "==, !=, contains, starts_with, ends_with, matches, in";
    case FieldType::integer: return "==, !=, <, <=, >, >=, in";
    case FieldType::address: return "==, !=, in";
    case FieldType::boolean: return "==, != or none";
  }
  return "";
}

TokenKind value_kind(FieldType type) noexcept {
  switch (type) {
    case FieldType::string:
    case FieldType::string_array: return TokenKind::string;
    case FieldType::integer: return TokenKind::integer;
    case FieldType::address: return TokenKind::address;
    case FieldType::boolean: return TokenKind::kw_true;
  }
  return TokenKind::end;
}

std::string_view value_phrase(FieldType type) noexcept {
  switch (type) {
    case FieldType::string:
    case FieldType::string_array: return "a string";
    case FieldType::integer: return "an integer";
    case FieldType::address: return "an IPv4 address or prefix";
    case FieldType::boolean: return "true or false";
  }
  return "a value";
}

bool value_fits(FieldType type, TokenKind kind) noexcept {
  if (type == FieldType::boolean) return kind == TokenKind::kw_true || kind == TokenKind::kw_false;
  return kind == value_kind(type);
}

Test text_test(TokenKind op) noexcept {
  switch (op) {
    case TokenKind::op_contains: return Test::string_contains;
    case TokenKind::op_starts_with: return Test::string_starts_with;
    case TokenKind::op_ends_with: return Test::string_ends_with;
    case TokenKind::op_matches: return Test::string_matches;
    default: return Test::string_equal;
  }
}

Test integer_test(TokenKind op) noexcept {
  switch (op) {
    case TokenKind::op_less: return Test::integer_less;
    case TokenKind::op_less_equal: return Test::integer_less_equal;
    case TokenKind::op_greater: return Test::integer_greater;
    case TokenKind::op_greater_equal: return Test::integer_greater_equal;
    default: return Test::integer_equal;
  }
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

class Parser {
 public:
  Parser(std::string_view source, RuleError& error)
      : source_(source), lexer_(source), error_(error) {}

  Program run() {
    if (!lexer_.next(token_, error_)) throw ParseFailed{};
    const uint32_t root = parse_or();
    if (token_.kind == TokenKind::right_paren) {
      fail_here("unmatched \")\": no \"(\" before it to close");
    }
    if (token_.kind != TokenKind::end) {
      fail_here("expected \"and\", \"or\", \"xor\" or end of expression" + after_previous() +
                ", found " + found());
    }
    return std::move(builder_).finish(root);
  }

 private:
  [[noreturn]] void fail(uint32_t offset, std::string message) {
    error_ = error_at(source_, offset, std::move(message));
    throw ParseFailed{};
  }
  [[noreturn]] void fail_here(std::string message) { fail(token_.offset, std::move(message)); }

  void advance() {
    previous_ = std::move(token_);
    has_previous_ = true;
    if (!lexer_.next(token_, error_)) throw ParseFailed{};
  }

  std::string at(const Token& token) const { return " at " + position_text(source_, token.offset); }
  std::string after(const Token& token) const {
    return " after " + describe(token, source_) + at(token);
  }
  std::string after_previous() const { return has_previous_ ? after(previous_) : std::string(); }

  // The current token for a message, with a hint when it is a keyword
  // written in capitals.
  std::string found() const {
    std::string text = describe(token_, source_);
    if (token_.kind == TokenKind::identifier) {
      std::string lower(spelling(token_, source_));
      for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      if (is_keyword(lower)) text += " (keywords are lower case: " + quoted(lower) + ")";
    }
    return text;
  }

  void enter(const Token& token) {
    if (++depth_ > kMaxNesting) {
      fail(token.offset, "nesting deeper than " + std::to_string(kMaxNesting) +
                             " levels of parentheses and \"not\"");
    }
  }

  uint32_t parse_or() { return parse_chain(TokenKind::op_or, NodeKind::any, &Parser::parse_xor); }
  uint32_t parse_xor() { return parse_chain(TokenKind::op_xor, NodeKind::odd, &Parser::parse_and); }
  uint32_t parse_and() {
    return parse_chain(TokenKind::op_and, NodeKind::all, &Parser::parse_unary);
  }

  // operand { op operand }, as one node however long the chain.
  uint32_t parse_chain(TokenKind op, NodeKind kind, uint32_t (Parser::*operand)()) {
    const uint32_t first = (this->*operand)();
    if (token_.kind != op) return first;
    std::vector<uint32_t> operands{first};
    while (token_.kind == op) {
      advance();
      operands.push_back((this->*operand)());
    }
    return builder_.group(kind, operands);
  }

  uint32_t parse_unary() {
    if (token_.kind != TokenKind::op_not) return parse_primary();
    enter(token_);
    advance();
    const uint32_t operand = parse_unary();
    --depth_;
    return builder_.negation(operand);
  }

  uint32_t parse_primary() {
    switch (token_.kind) {
      case TokenKind::left_paren: {
        const Token open = token_;
        enter(open);
        advance();
        const uint32_t inner = parse_or();
        if (token_.kind != TokenKind::right_paren) {
          fail_here("expected \"and\", \"or\", \"xor\" or \")\" to close \"(\"" + at(open) +
                    ", found " + found());
        }
        --depth_;
        advance();
        return inner;
      }
      case TokenKind::kw_true:
      case TokenKind::kw_false: {
        const bool value = token_.kind == TokenKind::kw_true;
        advance();
        return builder_.constant(value);
      }
      case TokenKind::identifier: return parse_field();
      default: {
        std::string hint;
        if (token_.is_value()) hint = " (a comparison starts with its field: field == value)";
        fail_here("expected a field, \"not\", \"(\", true or false" + after_previous() +
                  ", found " + found() + hint);
      }
    }
  }

  std::string unknown_field(std::string_view name) const {
    std::string message = "unknown field " + quote_for_message(name);
    if (const auto suggestion = suggest_field(name)) {
      return message + "; did you mean " + quoted(*suggestion) + "?";
    }
    std::string under;
    const std::string group = std::string(name) + ".";
    for (const FieldInfo& field : all_fields()) {
      if (field.name.starts_with(group))
        under += (under.empty() ? "" : ", ") + std::string(field.name);
    }
    if (!under.empty()) return message + "; the fields under it are " + under;
    return message + " (docs/rules.md lists the fields)";
  }

  uint32_t parse_field() {
    const Token field_token = token_;
    const FieldInfo* field = find_field(spelling(field_token, source_));
    if (field == nullptr) fail(field_token.offset, unknown_field(spelling(field_token, source_)));
    advance();

    if (!token_.is_comparison()) {
      // After a boolean field a word is more likely a misspelt "and" than a
      // missing operator: the caller's "expected and, or ..." says so.
      const bool word_after_flag =
          field->type == FieldType::boolean && token_.kind == TokenKind::identifier;
      if (!word_after_flag && (token_.is_value() || token_.kind == TokenKind::identifier ||
                               token_.kind == TokenKind::left_brace)) {
        fail_here("expected an operator" + after(field_token) + ", found " + found());
      }
      if (field->type != FieldType::boolean) {
        fail(field_token.offset, std::string(field->name) + " is " +
                                     std::string(type_phrase(field->type)) +
                                     ", not a boolean: compare it with one of " +
                                     std::string(operator_list(field->type)));
      }
      Comparison comparison{field->id, Test::flag_is};
      comparison.integer = 1;
      return builder_.comparison(comparison);
    }

    const Token op = token_;
    if (!operator_applies(field->type, op.kind)) {
      fail(op.offset, describe(op, source_) + " does not apply to " + std::string(field->name) +
                          ", which is " + std::string(type_phrase(field->type)) +
                          " (its operators: " + std::string(operator_list(field->type)) + ")");
    }
    advance();
    if (op.kind == TokenKind::op_in) return parse_set(*field, op);
    return parse_value(*field, op);
  }

  void expect_value(const FieldInfo& field, const std::string& context) {
    if (!token_.is_value()) {
      const std::string hint = token_.kind == TokenKind::left_brace
                                   ? " (a set of values goes with \"in\")"
                                   : std::string();
      fail_here("expected a value" + context + ", found " + found() + hint);
    }
    if (!value_fits(field.type, token_.kind)) {
      fail_here("expected " + std::string(value_phrase(field.type)) + context + " (" +
                std::string(field.name) + " is " + std::string(type_phrase(field.type)) +
                "), found " + found());
    }
  }

  uint32_t parse_value(const FieldInfo& field, const Token& op) {
    expect_value(field, after(op));
    Comparison comparison{field.id};
    comparison.negated = op.kind == TokenKind::op_not_equal;
    switch (field.type) {
      case FieldType::string:
      case FieldType::string_array:
        comparison.test = text_test(op.kind);
        comparison.operand = comparison.test == Test::string_matches
                                 ? add_regex()
                                 : builder_.add_string(token_.text);
        break;
      case FieldType::integer:
        comparison.test = integer_test(op.kind);
        comparison.integer = token_.integer;
        break;
      case FieldType::address:
        comparison.test = Test::address_in_prefix;
        comparison.mask = prefix_mask(token_.prefix_length);
        comparison.address = token_.address & comparison.mask;
        break;
      case FieldType::boolean:
        comparison.test = Test::flag_is;
        comparison.integer = token_.kind == TokenKind::kw_true ? 1 : 0;
        break;
    }
    advance();
    return builder_.comparison(comparison);
  }

  uint32_t add_regex() {
    if (builder_.regex_count() >= kMaxRegexes) {
      fail_here("more than " + std::to_string(kMaxRegexes) +
                " regular expressions in one expression");
    }
    Regex::CompileError regex_error;
    std::optional<Regex> regex = Regex::compile(token_.text, regex_error);
    if (!regex) {
      fail_here("invalid regular expression: " + regex_error.message + " (at offset " +
                std::to_string(regex_error.pattern_offset) + " of the pattern)");
    }
    return builder_.add_regex(std::move(*regex));
  }

  uint32_t parse_set(const FieldInfo& field, const Token& in) {
    if (token_.kind != TokenKind::left_brace) {
      fail_here("expected \"{\"" + after(in) + ", found " + found());
    }
    const Token open = token_;
    const std::string in_set = " in the set opened" + at(open);
    advance();
    std::vector<std::string> strings;
    std::vector<int64_t> integers;
    std::vector<ProgramBuilder::Prefix> prefixes;
    std::size_t count = 0;
    bool after_comma = false;
    while (token_.kind != TokenKind::right_brace) {
      if (token_.kind == TokenKind::comma) {
        if (count == 0 || after_comma)
          fail_here("expected a value" + after_previous() + ", found \",\"");
        after_comma = true;
        advance();
        continue;
      }
      if (!token_.is_value()) {
        fail_here("expected a value, \",\" or \"}\"" + in_set + ", found " + found());
      }
      expect_value(field, in_set);
      if (++count > kMaxSetValues) {
        fail_here("a set holds at most " + std::to_string(kMaxSetValues) + " values");
      }
      switch (field.type) {
        case FieldType::string:
        case FieldType::string_array: strings.push_back(token_.text); break;
        case FieldType::integer: integers.push_back(token_.integer); break;
        case FieldType::address: prefixes.push_back({token_.address, token_.prefix_length}); break;
        case FieldType::boolean: break;  // operator_applies refused "in" already
      }
      after_comma = false;
      advance();
    }
    if (count == 0) fail_here("empty set: \"in\" needs at least one value");
    if (after_comma) fail_here("expected a value" + after_previous() + ", found \"}\"");
    advance();

    Comparison comparison{field.id};
    switch (field.type) {
      case FieldType::integer:
        comparison.test = Test::integer_in;
        comparison.operand = builder_.add_integer_set(std::move(integers));
        break;
      case FieldType::address:
        comparison.test = Test::address_in_set;
        comparison.operand = builder_.add_address_set(prefixes);
        break;
      default:
        comparison.test = Test::string_in;
        comparison.operand = builder_.add_string_set(std::move(strings));
        break;
    }
    return builder_.comparison(comparison);
  }

  std::string_view source_;
  Lexer lexer_;
  RuleError& error_;
  ProgramBuilder builder_;
  Token token_;
  Token previous_;
  bool has_previous_ = false;
  uint32_t depth_ = 0;
};

}  // namespace

std::optional<Program> compile(std::string_view expression, RuleError& error) {
  if (expression.size() > kMaxExpressionBytes) {
    error = error_at(expression, kMaxExpressionBytes,
                     "expression of " + std::to_string(expression.size()) +
                         " bytes; the limit is " + std::to_string(kMaxExpressionBytes));
    return std::nullopt;
  }
  try {
    return Parser(expression, error).run();
  } catch (const ParseFailed&) {
    return std::nullopt;
  }
}

}  // namespace mtlsgw::rules
