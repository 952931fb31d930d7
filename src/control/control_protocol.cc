#include "control/control_protocol.h"

#include <fmt/format.h>

#include <array>
#include <exception>

namespace mtlsgw::control {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 16> kErrorCodeNames = {
    "parse_error", "bad_request",  "unknown_command", "missing_field",
    "bad_field",   "unknown_field", "bad_pem",        "not_found",
    "exists",      "in_use",       "too_large",       "no_transaction",
    "in_transaction", "forbidden", "busy",            "internal",
};
static_assert(kErrorCodeNames.size() == static_cast<std::size_t>(ErrorCode::internal) + 1);

// The byte offset (0-based) at which the nesting of arrays and objects
// outside strings first exceeds kMaxRequestDepth, if it does.
std::optional<std::size_t> too_deep_at(std::string_view line) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxRequestDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line
// 1, column 5: syntax error ..."; the position goes to `where`, so the
// message keeps what is wrong.
std::string parse_error_message(const char* what) {
  std::string_view text(what);
  if (auto bracket = text.find("] "); bracket != std::string_view::npos) {
    text.remove_prefix(bracket + 2);
  }
  if (text.starts_with("parse error at line ")) {
    if (auto colon = text.find(": "); colon != std::string_view::npos) text.remove_prefix(colon + 2);
  }
  return fmt::format("not JSON: {}", text);
}

std::string dump_line(const json& value) {
  // No indentation: newlines inside strings are escaped, so the text is one
  // line; bad UTF-8 (from a handler, never from a parsed request) becomes
  // U+FFFD instead of an exception.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string join_names(const std::set<std::string, std::less<>>& names) {
  std::string out;
  for (const std::string& name : names) out += fmt::format("{}{}", out.empty() ? "" : ", ", name);
  return out.empty() ? "none" : out;
}

}  // namespace

std::string_view to_string(ErrorCode code) {
  const auto index = static_cast<std::size_t>(code);
  return index < kErrorCodeNames.size() ? kErrorCodeNames[index] : "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) {
  for (std::size_t i = 0; i < kErrorCodeNames.size(); ++i) {
    if (kErrorCodeNames[i] == text) return static_cast<ErrorCode>(i);
  }
  return std::nullopt;
}

std::variant<Request, ErrorInfo> parse_request(std::string_view line, json* id_out) {
  if (auto at = too_deep_at(line)) {
    return ErrorInfo{ErrorCode::parse_error,
                     fmt::format("arrays and objects nested deeper than {} levels", kMaxRequestDepth),
                     fmt::format("byte {}", *at + 1)};
  }
  json document;
  try {
    document = json::parse(line.begin(), line.end());
  } catch (const json::parse_error& e) {
    return ErrorInfo{ErrorCode::parse_error, parse_error_message(e.what()),
                     fmt::format("byte {}", e.byte)};
  } catch (const std::exception& e) {
    // std::bad_alloc on a huge document is the only other way out.
    return ErrorInfo{ErrorCode::internal, fmt::format("cannot parse the request: {}", e.what()), ""};
  }
  if (!document.is_object()) {
    return ErrorInfo{ErrorCode::bad_request,
                     fmt::format("a request is a JSON object, got {}", document.type_name()), ""};
  }
  Request request;
  if (auto it = document.find("id"); it != document.end() && !it->is_null()) {
    if (!it->is_number_integer() && !it->is_string()) {
      return ErrorInfo{ErrorCode::bad_request,
                       fmt::format("id must be an integer or a string, got {}", it->type_name()),
                       "id"};
    }
    request.id = std::move(*it);
    if (id_out != nullptr) *id_out = request.id;
  }
  for (const auto& [key, value] : document.items()) {
    if (key != "id" && key != "command" && key != "args") {
      return ErrorInfo{ErrorCode::bad_request,
                       "unknown field (known here: args, command, id)", key};
    }
  }
  auto command = document.find("command");
  if (command == document.end()) {
    return ErrorInfo{ErrorCode::bad_request, "is required", "command"};
  }
  if (!command->is_string()) {
    return ErrorInfo{ErrorCode::bad_request,
                     fmt::format("expected a string, got {}", command->type_name()), "command"};
  }
  request.command = command->get<std::string>();
  if (request.command.empty()) return ErrorInfo{ErrorCode::bad_request, "is empty", "command"};
  if (auto args = document.find("args"); args != document.end()) {
    if (!args->is_object()) {
      return ErrorInfo{ErrorCode::bad_request,
                       fmt::format("expected an object, got {}", args->type_name()), "args"};
    }
    request.args = std::move(*args);
  } else {
    request.args = json::object();
  }
  return request;
}

std::string format_result(const json& id, const json& result) {
  // Written piecewise so that a large result (a config dump) is not copied
  // into an envelope object first.
  std::string line = "{\"id\":";
  line += dump_line(id);
  line += ",\"ok\":true,\"result\":";
  line += dump_line(result);
  line += '}';
  return line;
}

std::string format_error(const json& id, const ErrorInfo& error) {
  json body = json::object();
  body["code"] = std::string(to_string(error.code));
  body["message"] = error.message;
  body["where"] = error.where;
  std::string line = "{\"id\":";
  line += dump_line(id);
  line += ",\"ok\":false,\"error\":";
  line += dump_line(body);
  line += '}';
  return line;
}

ArgReader::ArgReader(const json& args, std::string prefix)
    : args_(args), prefix_(std::move(prefix)) {
  if (!args_.is_object()) {
    error_ = ErrorInfo{ErrorCode::bad_field,
                       fmt::format("expected an object, got {}", args_.type_name()), prefix_};
  }
}

std::string ArgReader::path(std::string_view key) const {
  if (key.empty()) return prefix_;
  if (prefix_.empty()) return std::string(key);
  return fmt::format("{}.{}", prefix_, key);
}

void ArgReader::fail(ErrorCode code, std::string_view key, std::string message) {
  if (!error_) error_ = ErrorInfo{code, std::move(message), path(key)};
}

const json* ArgReader::field(std::string_view key, bool required) {
  known_.emplace(key);
  if (error_) return nullptr;
  auto it = args_.find(key);
  if (it == args_.end()) {
    if (required) fail(ErrorCode::missing_field, key, "is required");
    return nullptr;
  }
  return &*it;
}

bool ArgReader::has(std::string_view key) {
  known_.emplace(key);
  return args_.is_object() && args_.contains(key);
}

std::optional<std::string> ArgReader::string(std::string_view key, bool required) {
  const json* value = field(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    fail(ErrorCode::bad_field, key, fmt::format("expected a string, got {}", value->type_name()));
    return std::nullopt;
  }
  return value->get<std::string>();
}

std::optional<std::string> ArgReader::choice(std::string_view key, bool required,
                                             std::initializer_list<std::string_view> choices) {
  auto value = string(key, required);
  if (!value) return std::nullopt;
  std::string names;
  for (std::string_view choice : choices) {
    if (choice == *value) return value;
    names += fmt::format("{}{}", names.empty() ? "" : ", ", choice);
  }
  fail(ErrorCode::bad_field, key, fmt::format("\"{}\" is not one of {}", *value, names));
  return std::nullopt;
}

std::optional<uint64_t> ArgReader::uint(std::string_view key, bool required, uint64_t min,
                                        uint64_t max) {
  const json* value = field(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) {
    fail(ErrorCode::bad_field, key, fmt::format("expected an integer, got {}", value->type_name()));
    return std::nullopt;
  }
  const bool negative = !value->is_number_unsigned() && value->get<int64_t>() < 0;
  const uint64_t v = negative ? 0 : value->get<uint64_t>();
  if (negative || v < min || v > max) {
    fail(ErrorCode::bad_field, key,
         fmt::format("{} is out of range [{}, {}]", value->dump(), min, max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> ArgReader::boolean(std::string_view key, bool required) {
  const json* value = field(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    fail(ErrorCode::bad_field, key, fmt::format("expected a boolean, got {}", value->type_name()));
    return std::nullopt;
  }
  return value->get<bool>();
}

std::optional<std::vector<std::string>> ArgReader::string_list(std::string_view key,
                                                               bool required) {
  const json* value = field(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_array()) {
    fail(ErrorCode::bad_field, key,
         fmt::format("expected an array of strings, got {}", value->type_name()));
    return std::nullopt;
  }
  std::vector<std::string> out;
  out.reserve(value->size());
  for (std::size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string()) {
      fail(ErrorCode::bad_field, fmt::format("{}[{}]", key, i),
           fmt::format("expected a string, got {}", item.type_name()));
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

const json* ArgReader::object(std::string_view key, bool required) {
  const json* value = field(key, required);
  if (value == nullptr) return nullptr;
  if (!value->is_object()) {
    fail(ErrorCode::bad_field, key, fmt::format("expected an object, got {}", value->type_name()));
    return nullptr;
  }
  return value;
}

bool ArgReader::finish() {
  if (error_) return false;
  for (const auto& [key, value] : args_.items()) {
    if (!known_.contains(key)) {
      fail(ErrorCode::unknown_field, key,
           fmt::format("unknown field (known here: {})", join_names(known_)));
      return false;
    }
  }
  return true;
}

}  // namespace mtlsgw::control
