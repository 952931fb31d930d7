// rule add | del | move | list: the ordered rule table (docs/rules.md).

#include <fmt/format.h>

#include <algorithm>

#include "control/commands/command.h"
#include "control/config_writer.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

std::vector<RuleConfig>::iterator find_rule(Config& state, std::string_view name) {
  return std::find_if(state.rules.begin(), state.rules.end(), [&](const RuleConfig& r) { return r.name == name; });
}

// Where a rule goes: "position" (0 is first; the table's size or more is
// last), "before" or "after" another rule's name; at most one of them, and
// the end of the table when none is given. `moving` is the rule being moved
// (its own name cannot be the anchor).
std::optional<size_t> read_position(ArgReader& reader, Config& state, std::string_view moving, bool required) {
  const std::optional<uint64_t> position = reader.uint("position", false, 0, UINT32_MAX);
  const std::optional<std::string> before = reader.string("before", false);
  const std::optional<std::string> after = reader.string("after", false);
  if (!reader.ok()) return std::nullopt;
  const int given = (position ? 1 : 0) + (before ? 1 : 0) + (after ? 1 : 0);
  if (given > 1) {
    reader.fail(ErrorCode::bad_field, before ? "before" : "position", "give one of position, before and after");
    return std::nullopt;
  }
  if (given == 0) {
    if (required) reader.fail(ErrorCode::missing_field, "position", "is required (or before, or after)");
    return required ? std::nullopt : std::optional<size_t>(state.rules.size());
  }
  if (position) return std::min<size_t>(*position, state.rules.size());
  const std::string& anchor = before ? *before : *after;
  const char* key = before ? "before" : "after";
  if (anchor == moving) {
    reader.fail(ErrorCode::bad_field, key, "a rule cannot be placed relative to itself");
    return std::nullopt;
  }
  auto it = find_rule(state, anchor);
  if (it == state.rules.end()) {
    reader.fail(ErrorCode::not_found, key, fmt::format("no rule named \"{}\"", anchor));
    return std::nullopt;
  }
  const auto index = static_cast<size_t>(it - state.rules.begin());
  return before ? index : index + 1;
}

}  // namespace

CommandOutcome rule_add(const json& args, Config& state, const CommandChecks& checks) {
  if (!args.is_object()) return fail(ErrorCode::bad_field, "expected an object", "args");
  json entry = json::object();
  json placement = json::object();
  for (const auto& [key, value] : args.items()) {
    (key == "position" || key == "before" || key == "after" ? placement : entry)[key] = value;
  }
  RuleConfig rule;
  try {
    rule = parse_rule_entry(entry, "args");
  } catch (const ConfigError& e) {
    CommandOutcome out;
    out.error = error_from_config(e);
    return out;
  }
  if (state.find_rule(rule.name) != nullptr) {
    return fail(ErrorCode::exists, fmt::format("a rule named \"{}\" exists", rule.name), "args.name");
  }
  if (checks.rule) {
    if (std::optional<ErrorInfo> error = checks.rule(rule, "args.expression")) {
      CommandOutcome out;
      out.error = std::move(error);
      return out;
    }
  }
  ArgReader reader(placement);
  const std::optional<size_t> at = read_position(reader, state, rule.name, false);
  if (!at || !reader.finish()) return fail(reader);
  CommandOutcome out;
  out.result = rule_to_json(rule);
  out.result["position"] = *at;
  state.rules.insert(state.rules.begin() + static_cast<std::ptrdiff_t>(*at), std::move(rule));
  out.changed = true;
  return out;
}

CommandOutcome rule_del(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("name", true);
  if (!reader.finish()) return fail(reader);
  auto it = find_rule(state, *name);
  if (it == state.rules.end()) return fail(ErrorCode::not_found, fmt::format("no rule named \"{}\"", *name), "args.name");
  state.rules.erase(it);
  CommandOutcome out;
  out.result = {{"name", *name}};
  out.changed = true;
  return out;
}

CommandOutcome rule_move(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("name", true);
  if (!reader.ok()) return fail(reader);
  auto it = find_rule(state, *name);
  if (it == state.rules.end()) return fail(ErrorCode::not_found, fmt::format("no rule named \"{}\"", *name), "args.name");
  RuleConfig rule = std::move(*it);
  const auto from = static_cast<size_t>(it - state.rules.begin());
  state.rules.erase(it);
  const std::optional<size_t> at = read_position(reader, state, rule.name, true);
  if (!at || !reader.finish()) {
    state.rules.insert(state.rules.begin() + static_cast<std::ptrdiff_t>(from), std::move(rule));
    return fail(reader);
  }
  CommandOutcome out;
  out.result = {{"name", rule.name}, {"from", from}, {"position", *at}};
  state.rules.insert(state.rules.begin() + static_cast<std::ptrdiff_t>(*at), std::move(rule));
  out.changed = true;
  return out;
}

CommandOutcome rule_list(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  if (!reader.finish()) return fail(reader);
  CommandOutcome out;
  out.result = json::array();
  for (size_t i = 0; i < state.rules.size(); ++i) {
    json r = rule_to_json(state.rules[i]);
    r["position"] = i;
    out.result.push_back(std::move(r));
  }
  return out;
}

}  // namespace mtlsgw::control
