// libFuzzer target: the control socket's request parser, on whatever bytes a
// local client could send as one line. Beyond not crashing it checks what
// the server relies on: a parsed request has a usable envelope, and every
// answer built from it is one line of JSON that reads back the same.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/control_protocol.h"

namespace {

using mtlsgw::control::ArgReader;
using mtlsgw::control::ErrorInfo;
using mtlsgw::control::Request;
using nlohmann::json;

void check(bool condition) {
  if (!condition) std::abort();
}

void check_answer(const std::string& line) {
  check(line.find('\n') == std::string::npos);
  check(json::accept(line));
}

// Reads each field the way a handler would, by its type, so that every
// ArgReader accessor meets arbitrary values.
void read_like_a_handler(const json& args) {
  ArgReader reader(args);
  for (const auto& [key, value] : args.items()) {
    if (value.is_string()) {
      reader.string(key, true);
    } else if (value.is_number()) {
      reader.uint(key, true, 1, 65535);
    } else if (value.is_boolean()) {
      reader.boolean(key, true);
    } else if (value.is_array()) {
      reader.string_list(key, true);
    } else if (value.is_object()) {
      if (const json* nested = reader.object(key, true)) {
        ArgReader inner(*nested, reader.path(key));
        inner.finish();
      }
    }
  }
  reader.choice("mode", false, {"off", "optional", "required"});
  if (!reader.finish()) check(reader.error().has_value() && !reader.error()->where.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  json id;
  auto parsed = mtlsgw::control::parse_request(line, &id);
  if (const auto* request = std::get_if<Request>(&parsed)) {
    check(!request->command.empty());
    check(request->args.is_object());
    check(request->id.is_null() || request->id.is_number_integer() || request->id.is_string());
    const std::string answer = mtlsgw::control::format_result(request->id, request->args);
    check_answer(answer);
    const json back = json::parse(answer);
    check(back["id"] == request->id);
    check(back["result"] == request->args);
    read_like_a_handler(request->args);
  } else {
    const auto& error = std::get<ErrorInfo>(parsed);
    check(!error.message.empty());
    check_answer(mtlsgw::control::format_error(id, error));
  }
  return 0;
}
