#pragma once
// How mtlsgwctl shows a result to a person: objects as aligned "key: value"
// lines, arrays of objects as tables, and nothing for an empty result (the
// caller decides whether to say "ok"). The server's key order is kept
// (ordered_json), so a handler chooses the order of fields and columns,
// except that a "name" field always comes first.

#include <string>

#include <nlohmann/json.hpp>

namespace mtlsgw::ctl {

using ordered_json = nlohmann::ordered_json;

// Text ending in '\n', or empty for null, {} and true.
std::string format_human(const ordered_json& result);

// An array of objects as a table: one column per key ("name" first, then in
// order of first appearance), headers in upper case, a cell "-" for a missing or null field.
std::string format_table(const ordered_json& rows, std::size_t indent = 0);

}  // namespace mtlsgw::ctl
