#include "rules/rule_table.h"

#include <algorithm>

#include "rules/rule_parser.h"

namespace mtlsgw::rules {

std::string_view to_string(Action action) noexcept {
  switch (action) {
    case Action::log: return "log";
    case Action::allow: return "allow";
    case Action::block: return "block";
  }
  return "?";
}

std::string_view to_string(Decision decision) noexcept {
  switch (decision) {
    case Decision::none: return "none";
    case Decision::allow: return "allow";
    case Decision::block: return "block";
  }
  return "?";
}

std::optional<Action> parse_action(std::string_view text) noexcept {
  for (Action action : {Action::log, Action::allow, Action::block}) {
    if (to_string(action) == text) return action;
  }
  return std::nullopt;
}

bool is_valid_rule_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxRuleNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool LogHits::empty() const noexcept {
  for (uint64_t word : words_) {
    if (word != 0) return false;
  }
  return true;
}

std::size_t LogHits::count() const noexcept {
  std::size_t n = 0;
  for (uint64_t word : words_) n += static_cast<std::size_t>(std::popcount(word));
  return n;
}

uint32_t LogHits::next(uint32_t index) const noexcept {
  if (index >= kMaxRules) return kNoRule;
  std::size_t word = index / 64;
  uint64_t bits = words_[word] & (~uint64_t{0} << (index % 64));
  while (bits == 0) {
    if (++word == words_.size()) return kNoRule;
    bits = words_[word];
  }
  return static_cast<uint32_t>(word * 64 + static_cast<std::size_t>(std::countr_zero(bits)));
}

std::optional<std::size_t> RuleTable::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name == name) return i;
  }
  return std::nullopt;
}

Verdict RuleTable::walk(const RuleInput& input, EvalScratch& scratch, uint32_t start,
                        uint32_t stop) const noexcept {
  Verdict verdict;
  verdict.resume_index = static_cast<uint32_t>(rules_.size());
  for (uint32_t i = start; i < stop; ++i) {
    const Rule& rule = rules_[i];
    if (!evaluate(rule.program, input, scratch)) continue;
    if (rule.action == Action::log) {
      verdict.logged.set(i);
      continue;
    }
    verdict.decision = rule.action == Action::allow ? Decision::allow : Decision::block;
    verdict.rule_index = i;
    return verdict;
  }
  return verdict;
}

Verdict RuleTable::evaluate_connection(const RuleInput& input,
                                       EvalScratch& scratch) const noexcept {
  const uint32_t stop = std::min(first_http_rule_, static_cast<uint32_t>(rules_.size()));
  Verdict verdict = walk(input, scratch, 0, stop);
  if (!verdict.decided()) verdict.resume_index = stop;
  return verdict;
}

Verdict RuleTable::evaluate_request(const RuleInput& input, EvalScratch& scratch,
                                    uint32_t start_index) const noexcept {
  const auto size = static_cast<uint32_t>(rules_.size());
  return walk(input, scratch, start_index < size ? start_index : size, size);
}

Verdict RuleTable::evaluate_all(const RuleInput& input, EvalScratch& scratch) const noexcept {
  return walk(input, scratch, 0, static_cast<uint32_t>(rules_.size()));
}

std::string RuleTable::render(std::size_t index) const {
  const Rule& rule = rules_[index];
  return rule.name + " " + std::string(to_string(rule.action)) + " " + rule.expression;
}

bool RuleTableBuilder::add(std::string_view name, Action action, std::string_view expression,
                           RuleError& error) {
  if (!is_valid_rule_name(name)) {
    error = error_without_position("invalid rule name " + quote_for_message(name) +
                                   ": 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'");
    return false;
  }
  if (table_.find(name)) {
    error = error_without_position("a rule named \"" + std::string(name) + "\" exists already");
    return false;
  }
  if (table_.rules_.size() >= kMaxRules) {
    error =
        error_without_position("the table holds at most " + std::to_string(kMaxRules) + " rules");
    return false;
  }
  std::optional<Program> program = compile(expression, error);
  if (!program) return false;
  if (program->uses_http() && !table_.uses_http()) {
    table_.first_http_rule_ = static_cast<uint32_t>(table_.rules_.size());
  }
  table_.rules_.push_back(
      Rule{std::string(name), std::string(expression), action, std::move(*program)});
  return true;
}

RuleTable RuleTableBuilder::build() && { return std::move(table_); }

}  // namespace mtlsgw::rules
