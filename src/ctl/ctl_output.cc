#include "ctl/ctl_output.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace mtlsgw::ctl {
namespace {

// A handler that builds its result with nlohmann::json (keys sorted) would
// otherwise put "name" wherever the alphabet does; it names the row.
constexpr const char* kLeadingKey = "name";

bool is_scalar(const ordered_json& value) { return !value.is_object() && !value.is_array(); }

bool all_objects(const ordered_json& array) {
  return !array.empty() &&
         std::all_of(array.begin(), array.end(), [](const auto& v) { return v.is_object(); });
}

std::string scalar_text(const ordered_json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// A table cell or an inline value: lists of scalars joined, anything deeper
// as compact JSON.
std::string inline_text(const ordered_json& value, const char* separator) {
  if (is_scalar(value)) return scalar_text(value);
  if (value.is_array() && std::all_of(value.begin(), value.end(), is_scalar)) {
    if (value.empty()) return "-";
    std::string out;
    for (const auto& item : value) out += fmt::format("{}{}", out.empty() ? "" : separator, scalar_text(item));
    return out;
  }
  return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

void render_object(std::string& out, const ordered_json& object, std::size_t indent);

void render_value(std::string& out, const std::string& key, const ordered_json& value,
                  std::size_t indent, std::size_t key_width) {
  const std::string pad(indent, ' ');
  const std::string label = key + ":";
  if (value.is_string() && value.get_ref<const std::string&>().find('\n') != std::string::npos) {
    // Multi-line text (a PEM): a block under its key.
    out += fmt::format("{}{}\n", pad, label);
    std::string_view text = value.get_ref<const std::string&>();
    while (!text.empty()) {
      const std::size_t newline = text.find('\n');
      out += fmt::format("{}  {}\n", pad, text.substr(0, newline));
      if (newline == std::string_view::npos) break;
      text.remove_prefix(newline + 1);
    }
  } else if (value.is_object() && !value.empty()) {
    out += fmt::format("{}{}\n", pad, label);
    render_object(out, value, indent + 2);
  } else if (value.is_array() && all_objects(value)) {
    out += fmt::format("{}{}\n", pad, label);
    out += format_table(value, indent + 2);
  } else {
    out += fmt::format("{}{:<{}} {}\n", pad, label, key_width + 1,
                       value.is_object() ? "-" : inline_text(value, ", "));
  }
}

void render_object(std::string& out, const ordered_json& object, std::size_t indent) {
  std::size_t key_width = 0;
  for (const auto& [key, value] : object.items()) key_width = std::max(key_width, key.size());
  if (auto name = object.find(kLeadingKey); name != object.end()) {
    render_value(out, kLeadingKey, *name, indent, key_width);
  }
  for (const auto& [key, value] : object.items()) {
    if (key != kLeadingKey) render_value(out, key, value, indent, key_width);
  }
}

std::string upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

}  // namespace

std::string format_table(const ordered_json& rows, std::size_t indent) {
  const std::string pad(indent, ' ');
  if (rows.empty()) return pad + "(none)\n";
  std::vector<std::string> columns;
  for (const auto& row : rows) {
    if (row.contains(kLeadingKey)) {
      columns.push_back(kLeadingKey);
      break;
    }
  }
  for (const auto& row : rows) {
    for (const auto& [key, value] : row.items()) {
      if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
    }
  }
  std::vector<std::vector<std::string>> cells;
  cells.emplace_back();
  for (const std::string& column : columns) cells.back().push_back(upper(column));
  for (const auto& row : rows) {
    cells.emplace_back();
    for (const std::string& column : columns) {
      auto it = row.find(column);
      cells.back().push_back(it == row.end() ? "-" : inline_text(*it, ","));
    }
  }
  std::vector<std::size_t> widths(columns.size(), 0);
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], line[c].size());
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text = pad;
    for (std::size_t c = 0; c < line.size(); ++c) {
      const bool last = c + 1 == line.size();
      text += last ? line[c] : fmt::format("{:<{}}  ", line[c], widths[c]);
    }
    out += text + "\n";
  }
  return out;
}

std::string format_human(const ordered_json& result) {
  if (result.is_null() || (result.is_boolean() && result.get<bool>())) return "";
  if (result.is_object()) {
    std::string out;
    render_object(out, result, 0);
    return out;
  }
  if (result.is_array()) {
    if (result.empty() || all_objects(result)) return format_table(result);
    std::string out;
    for (const auto& item : result) out += inline_text(item, ", ") + "\n";
    return out;
  }
  return scalar_text(result) + "\n";
}

}  // namespace mtlsgw::ctl
