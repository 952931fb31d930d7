#pragma once
// The control socket's envelope (docs/control.md): one JSON request object per
// line, one JSON response object per line. This file knows the envelope and
// the error vocabulary, not any command; command handlers read their "args"
// with ArgReader, which names every error by its JSON path.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace mtlsgw::control {

enum class ErrorCode : uint8_t {
  parse_error,      // the line is not JSON; where: "byte N"
  bad_request,      // the envelope is wrong (not an object, command, args, id, unknown field)
  unknown_command,
  missing_field,
  bad_field,        // wrong type or value
  unknown_field,
  bad_pem,
  not_found,
  exists,
  in_use,
  too_large,        // a line over kMaxRequestBytes; the connection is closed after the answer
  no_transaction,
  in_transaction,
  forbidden,        // the peer's credentials are not allowed; the connection is closed
  busy,             // the server has its maximum of clients; the connection is closed
  internal,
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view text);

// A PEM file may be 8 MiB (a CA bundle, a CRL of a large CA) and a request may
// carry a certificate, a key and a CRL: 32 MiB leaves room for all of them
// with JSON's escaping of every newline.
inline constexpr std::size_t kMaxRequestBytes = std::size_t{32} << 20;
// Arrays and objects nested deeper are refused before the JSON is built: no
// command needs more than a few levels, and code that walks a document
// recursively (dump, copies, handlers) would otherwise be driven by the
// client's nesting into a stack overflow.
inline constexpr std::size_t kMaxRequestDepth = 64;

struct Request {
  nlohmann::json id;  // null, an integer or a string
  std::string command;
  nlohmann::json args;  // always an object ({} when the request had none)
};

struct ErrorInfo {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  std::string where;  // a JSON path ("args.name", "args.alpn[2]"), "byte N", or empty
};

// Parses one request line (without its '\n'). Never throws. When id is not
// null it receives the request's id whenever one could be read, also when the
// request is refused, so that the error still echoes it.
std::variant<Request, ErrorInfo> parse_request(std::string_view line,
                                               nlohmann::json* id = nullptr);

// Response lines without the trailing '\n'. A string that is not valid UTF-8
// is written with U+FFFD in place of the bad bytes rather than throwing.
std::string format_result(const nlohmann::json& id, const nlohmann::json& result);
std::string format_error(const nlohmann::json& id, const ErrorInfo& error);

// Reads a command's args field by field. The first error wins and later
// reads return nothing, so a handler can read every field and check error()
// once. Every key read (present or not) is known; finish() refuses the
// others as unknown_field.
class ArgReader {
 public:
  explicit ArgReader(const nlohmann::json& args, std::string prefix = "args");

  std::optional<std::string> string(std::string_view key, bool required);
  // A string that must be one of choices.
  std::optional<std::string> choice(std::string_view key, bool required,
                                    std::initializer_list<std::string_view> choices);
  std::optional<uint64_t> uint(std::string_view key, bool required, uint64_t min = 0,
                               uint64_t max = UINT64_MAX);
  std::optional<bool> boolean(std::string_view key, bool required);
  std::optional<std::vector<std::string>> string_list(std::string_view key, bool required);
  // The field when it is an object; nullptr when absent or refused.
  const nlohmann::json* object(std::string_view key, bool required);
  bool has(std::string_view key);  // marks key as known

  // Records a handler's own verdict on a field (a bad PEM, a name that does
  // not exist) unless an error is already recorded. key empty: the args as a
  // whole.
  void fail(ErrorCode code, std::string_view key, std::string message);

  // Checks for unknown fields; true when no error was recorded.
  bool finish();
  bool ok() const { return !error_.has_value(); }
  const std::optional<ErrorInfo>& error() const { return error_; }
  std::string path(std::string_view key) const;

 private:
  const nlohmann::json* field(std::string_view key, bool required);

  const nlohmann::json& args_;
  std::string prefix_;
  std::set<std::string, std::less<>> known_;
  std::optional<ErrorInfo> error_;
};

}  // namespace mtlsgw::control
