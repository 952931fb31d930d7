#pragma once
// A compile error in a rule expression, or in a rule's name when added to a
// table. Line and column are 1-based and point at the offending token; the
// column counts UTF-8 code points (tabs count as one), so that an editor's
// cursor lands on the token. Line 0 means "not in the expression" (a bad
// rule name, a full table): offset and column are then 0 as well.

#include <cstdint>
#include <string>
#include <string_view>

namespace mtlsgw::rules {

struct RuleError {
  uint32_t offset = 0;  // bytes from the start of the expression
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;

  // "1:18: expected ..." (or the message alone when line is 0).
  std::string to_string() const;
};

// An error at a byte offset of source (clamped to its end).
RuleError error_at(std::string_view source, std::size_t offset, std::string message);

// An error that is about no position in the expression.
RuleError error_without_position(std::string message);

// "L:C" of a byte offset, for messages that refer to a second token.
std::string position_text(std::string_view source, std::size_t offset);

// Text in double quotes for a message: quotes, backslashes and control
// characters escaped, cut after 40 bytes with "...".
std::string quote_for_message(std::string_view text);

}  // namespace mtlsgw::rules
