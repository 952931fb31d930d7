#include "rules/rule_lexer.h"

#include <array>
#include <charconv>
#include <cstdio>

namespace mtlsgw::rules {
namespace {

struct Keyword {
  std::string_view word;
  TokenKind kind;
};

constexpr std::array<Keyword, 17> kKeywords{{
    {"and", TokenKind::op_and},
    {"or", TokenKind::op_or},
    {"xor", TokenKind::op_xor},
    {"not", TokenKind::op_not},
    {"eq", TokenKind::op_equal},
    {"ne", TokenKind::op_not_equal},
    {"lt", TokenKind::op_less},
    {"le", TokenKind::op_less_equal},
    {"gt", TokenKind::op_greater},
    {"ge", TokenKind::op_greater_equal},
    {"contains", TokenKind::op_contains},
    {"starts_with", TokenKind::op_starts_with},
    {"ends_with", TokenKind::op_ends_with},
    {"matches", TokenKind::op_matches},
    {"in", TokenKind::op_in},
    {"true", TokenKind::kw_true},
    {"false", TokenKind::kw_false},
}};

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_letter(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_word_start(char c) noexcept { return is_letter(c) || c == '_'; }
bool is_word_part(char c) noexcept { return is_word_start(c) || is_digit(c) || c == '.'; }
// What a number or address is taken as up to, so that "12abc" or
// "198.18.0.1.5" is one malformed literal rather than two tokens.
bool is_number_part(char c) noexcept { return is_word_part(c) || c == '/'; }

// A character as a message shows it: "x", or \xNN when not printable ASCII.
std::string show_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("\"") + c + "\"";
  char hex[8];
  std::snprintf(hex, sizeof hex, "\\x%02X", byte);
  return hex;
}

// One to three decimal digits without a leading zero, at most max.
bool parse_small_decimal(std::string_view digits, unsigned max, unsigned& value) noexcept {
  if (digits.empty() || digits.size() > 3) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  value = 0;
  for (char c : digits) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= max;
}

bool parse_address(std::string_view text, uint32_t& address) noexcept {
  address = 0;
  for (int part = 0; part < 4; ++part) {
    const std::size_t dot = part < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return false;
    unsigned octet = 0;
    if (!parse_small_decimal(text.substr(0, dot), 255, octet)) return false;
    address = address << 8 | octet;
    text.remove_prefix(part < 3 ? dot + 1 : dot);
  }
  return text.empty();
}

std::string format_address(uint32_t address) {
  char out[16];
  std::snprintf(out, sizeof out, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xFF,
                (address >> 8) & 0xFF, address & 0xFF);
  return out;
}

}  // namespace

bool Lexer::next(Token& token, RuleError& error) {
  while (pos_ < source_.size() && is_space(source_[pos_])) ++pos_;
  token = Token{};
  token.offset = static_cast<uint32_t>(pos_);
  if (pos_ >= source_.size()) {
    token.kind = TokenKind::end;
    return true;
  }
  const char c = source_[pos_];
  const char after = pos_ + 1 < source_.size() ? source_[pos_ + 1] : '\0';
  bool ok;
  if (c == '"') {
    ok = lex_quoted(token, error);
  } else if (c == 'r' && (after == '"' || after == '#')) {
    ok = lex_raw(token, error);
  } else if (is_digit(c) || (c == '-' && is_digit(after))) {
    ok = lex_number(token, error);
  } else if (is_word_start(c)) {
    ok = lex_word(token, error);
  } else {
    ok = lex_symbol(token, error);
  }
  token.length = static_cast<uint32_t>(pos_ - token.offset);
  return ok;
}

bool Lexer::lex_quoted(Token& token, RuleError& error) {
  const std::size_t start = pos_;
  token.kind = TokenKind::string;
  ++pos_;
  while (pos_ < source_.size()) {
    const char c = source_[pos_];
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (c == '\\') {
      const char escaped = pos_ + 1 < source_.size() ? source_[pos_ + 1] : '\0';
      if (escaped != '"' && escaped != '\\') {
        if (pos_ + 1 >= source_.size()) break;  // unterminated, reported below
        const auto escaped_byte = static_cast<unsigned char>(escaped);
        const std::string shown = escaped_byte >= 0x20 && escaped_byte < 0x7f
                                      ? "\\" + std::string(1, escaped)
                                      : show_char(escaped);
        error = error_at(source_, pos_,
                         "unknown escape " + shown +
                             " in a string: only \\\" and \\\\ are escapes (a raw string "
                             "r\"...\" takes backslashes as they are)");
        return false;
      }
      token.text += escaped;
      pos_ += 2;
      continue;
    }
    if (byte < 0x20 || byte == 0x7f) {
      error = error_at(source_, pos_,
                       "control character " + show_char(c) +
                           " in a string (strings are one line; write the text without it)");
      return false;
    }
    token.text += c;
    ++pos_;
  }
  error = error_at(source_, start, "unterminated string: no closing '\"'");
  return false;
}

bool Lexer::lex_raw(Token& token, RuleError& error) {
  const std::size_t start = pos_;
  token.kind = TokenKind::string;
  ++pos_;  // r
  std::size_t hashes = 0;
  while (pos_ < source_.size() && source_[pos_] == '#') {
    ++hashes;
    ++pos_;
  }
  if (pos_ >= source_.size() || source_[pos_] != '"') {
    error = error_at(
        source_, pos_,
        "expected '\"' to open the raw string started at " + position_text(source_, start) +
            ", found " +
            (pos_ >= source_.size() ? std::string("end of expression") : show_char(source_[pos_])));
    return false;
  }
  ++pos_;
  const std::size_t content = pos_;
  while (pos_ < source_.size()) {
    if (source_[pos_] == '"') {
      std::size_t closing = 0;
      while (closing < hashes && pos_ + 1 + closing < source_.size() &&
             source_[pos_ + 1 + closing] == '#') {
        ++closing;
      }
      if (closing == hashes) {
        token.text.assign(source_.substr(content, pos_ - content));
        pos_ += 1 + hashes;
        return true;
      }
    }
    const auto byte = static_cast<unsigned char>(source_[pos_]);
    if (byte < 0x20 || byte == 0x7f) {
      error = error_at(source_, pos_,
                       "control character " + show_char(source_[pos_]) + " in a raw string");
      return false;
    }
    ++pos_;
  }
  error = error_at(source_, start,
                   "unterminated raw string: no closing '\"" + std::string(hashes, '#') + "'");
  return false;
}

bool Lexer::lex_number(Token& token, RuleError& error) {
  const std::size_t start = pos_;
  if (source_[pos_] == '-') ++pos_;
  while (pos_ < source_.size() && is_number_part(source_[pos_])) ++pos_;
  const std::string_view text = source_.substr(start, pos_ - start);
  if (pos_ < source_.size() && source_[pos_] == ':') {
    error = error_at(source_, start,
                     "IPv6 addresses are not supported (ip.src is an IPv4 address), found " +
                         quote_for_message(source_.substr(start, pos_ + 1 - start)) + "...");
    return false;
  }

  const bool has_dot = text.find('.') != std::string_view::npos;
  if (!has_dot) {
    const char* first = text.data();
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, token.integer);
    if (ec == std::errc() && end == last) {
      token.kind = TokenKind::integer;
      return true;
    }
    if (ec == std::errc::result_out_of_range) {
      error = error_at(source_, start,
                       "integer " + std::string(text) +
                           " is out of range (-9223372036854775808 to 9223372036854775807)");
      return false;
    }
    error = error_at(source_, start, "malformed number " + quote_for_message(text));
    return false;
  }

  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  uint32_t address = 0;
  if (text[0] == '-' || !parse_address(address_text, address)) {
    error = error_at(source_, start,
                     "malformed IPv4 address " + quote_for_message(text) +
                         ": expected four decimal octets 0-255 without leading zeros, "
                         "optionally /0-32");
    return false;
  }
  unsigned length = 32;
  if (slash != std::string_view::npos) {
    const std::string_view length_text = text.substr(slash + 1);
    if (!parse_small_decimal(length_text, 32, length)) {
      error = error_at(source_, start + slash + 1,
                       "malformed prefix length " + quote_for_message(length_text) + " in " +
                           quote_for_message(text) + ": expected 0 to 32");
      return false;
    }
  }
  const uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
  if ((address & ~mask) != 0) {
    error = error_at(source_, start,
                     std::string(text) + " has bits set after its prefix length; the prefix is " +
                         format_address(address & mask) + "/" + std::to_string(length));
    return false;
  }
  token.kind = TokenKind::address;
  token.address = address;
  token.prefix_length = static_cast<uint8_t>(length);
  return true;
}

bool Lexer::lex_word(Token& token, RuleError&) {
  const std::size_t start = pos_;
  while (pos_ < source_.size() && is_word_part(source_[pos_])) ++pos_;
  const std::string_view word = source_.substr(start, pos_ - start);
  token.kind = TokenKind::identifier;
  for (const Keyword& keyword : kKeywords) {
    if (keyword.word == word) token.kind = keyword.kind;
  }
  return true;
}

bool Lexer::lex_symbol(Token& token, RuleError& error) {
  const char c = source_[pos_];
  const char after = pos_ + 1 < source_.size() ? source_[pos_ + 1] : '\0';
  auto take = [&](TokenKind kind, std::size_t length) {
    token.kind = kind;
    pos_ += length;
    return true;
  };
  auto doubled = [&](TokenKind kind, const char* hint) {
    if (after == c) return take(kind, 2);
    error = error_at(source_, pos_, "unexpected " + show_char(c) + "; did you mean " + hint + "?");
    return false;
  };
  switch (c) {
    case '(': return take(TokenKind::left_paren, 1);
    case ')': return take(TokenKind::right_paren, 1);
    case '{': return take(TokenKind::left_brace, 1);
    case '}': return take(TokenKind::right_brace, 1);
    case ',': return take(TokenKind::comma, 1);
    case '~': return take(TokenKind::op_matches, 1);
    case '&': return doubled(TokenKind::op_and, "\"&&\"");
    case '|': return doubled(TokenKind::op_or, "\"||\"");
    case '^': return doubled(TokenKind::op_xor, "\"^^\"");
    case '=': return doubled(TokenKind::op_equal, "\"==\"");
    case '!': return after == '=' ? take(TokenKind::op_not_equal, 2) : take(TokenKind::op_not, 1);
    case '<': return after == '=' ? take(TokenKind::op_less_equal, 2) : take(TokenKind::op_less, 1);
    case '>':
      return after == '=' ? take(TokenKind::op_greater_equal, 2) : take(TokenKind::op_greater, 1);
    case '\'':
      error = error_at(source_, pos_, "unexpected \"'\": strings are in double quotes");
      return false;
    default: error = error_at(source_, pos_, "unexpected character " + show_char(c)); return false;
  }
}

bool is_keyword(std::string_view word) noexcept {
  for (const Keyword& keyword : kKeywords) {
    if (keyword.word == word) return true;
  }
  return false;
}

std::string_view spelling(const Token& token, std::string_view source) noexcept {
  if (token.offset >= source.size()) return {};
  return source.substr(token.offset, token.length);
}

std::string describe(const Token& token, std::string_view source) {
  switch (token.kind) {
    case TokenKind::end: return "end of expression";
    case TokenKind::string: return "string " + quote_for_message(token.text);
    case TokenKind::integer: return "number " + std::string(spelling(token, source));
    case TokenKind::address: return "address " + std::string(spelling(token, source));
    default: return quote_for_message(spelling(token, source));
  }
}

}  // namespace mtlsgw::rules
