#include "rules/rule_error.h"

#include <algorithm>
#include <cstdio>

namespace mtlsgw::rules {
namespace {

struct LineColumn {
  uint32_t line;
  uint32_t column;
};

LineColumn locate(std::string_view source, std::size_t offset) {
  offset = std::min(offset, source.size());
  LineColumn at{1, 1};
  for (std::size_t i = 0; i < offset; ++i) {
    const auto byte = static_cast<unsigned char>(source[i]);
    if (byte == '\n') {
      ++at.line;
      at.column = 1;
    } else if ((byte & 0xC0) != 0x80) {  // not a UTF-8 continuation byte
      ++at.column;
    }
  }
  return at;
}

}  // namespace

std::string quote_for_message(std::string_view text) {
  constexpr std::size_t kShown = 40;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (text[i] == '"' || text[i] == '\\') {
      out += '\\';
      out += text[i];
    } else if (byte < 0x20 || byte == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", byte);
      out += hex;
    } else {
      out += text[i];
    }
  }
  if (text.size() > kShown) out += "...";
  out += '"';
  return out;
}

std::string RuleError::to_string() const {
  if (line == 0) return message;
  return std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

RuleError error_at(std::string_view source, std::size_t offset, std::string message) {
  offset = std::min(offset, source.size());
  const LineColumn at = locate(source, offset);
  return RuleError{static_cast<uint32_t>(offset), at.line, at.column, std::move(message)};
}

RuleError error_without_position(std::string message) {
  return RuleError{0, 0, 0, std::move(message)};
}

std::string position_text(std::string_view source, std::size_t offset) {
  const LineColumn at = locate(source, offset);
  return std::to_string(at.line) + ":" + std::to_string(at.column);
}

}  // namespace mtlsgw::rules
