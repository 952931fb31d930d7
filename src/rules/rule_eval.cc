#include "rules/rule_eval.h"

#include <algorithm>

namespace mtlsgw::rules {
namespace {

class Evaluator {
 public:
  Evaluator(const Program& program, const RuleInput& input, EvalScratch& scratch) noexcept
      : program_(program), input_(input), scratch_(scratch) {}

  // Recursion is bounded by the parser's nesting limit (chains are one node).
  bool node(uint32_t index) const noexcept {
    const Node& n = program_.nodes()[index];
    switch (n.kind) {
      case NodeKind::all:
        for (uint32_t i = 0; i < n.count; ++i) {
          if (!node(program_.children()[n.first + i])) return false;
        }
        return true;
      case NodeKind::any:
        for (uint32_t i = 0; i < n.count; ++i) {
          if (node(program_.children()[n.first + i])) return true;
        }
        return false;
      case NodeKind::odd: {
        bool odd = false;
        for (uint32_t i = 0; i < n.count; ++i) odd ^= node(program_.children()[n.first + i]);
        return odd;
      }
      case NodeKind::negation: return !node(n.first);
      case NodeKind::constant: return n.first != 0;
      case NodeKind::comparison: return comparison(program_.comparisons()[n.first]);
    }
    return false;
  }

 private:
  bool comparison(const Comparison& c) const noexcept {
    const FieldInfo& field = field_info(c.field);
    if (!is_present(field, input_)) return c.negated;
    bool holds = false;
    switch (field.type) {
      case FieldType::string: holds = text(c, input_.*field.text); break;
      case FieldType::string_array:
        for (std::string_view element : input_.*field.list) {
          if (text(c, element)) {
            holds = true;
            break;
          }
        }
        break;
      case FieldType::integer: holds = integer(c, input_.*field.integer); break;
      case FieldType::boolean: holds = (input_.*field.flag) == (c.integer != 0); break;
      case FieldType::address: {
        const uint32_t address = input_.*field.address;
        holds = c.test == Test::address_in_set ? program_.address_set(c.operand).contains(address)
                                               : (address & c.mask) == c.address;
        break;
      }
    }
    return holds != c.negated;
  }

  bool text(const Comparison& c, std::string_view value) const noexcept {
    switch (c.test) {
      case Test::string_equal: return value == program_.string(c.operand);
      case Test::string_contains:
        return value.find(program_.string(c.operand)) != std::string_view::npos;
      case Test::string_starts_with: return value.starts_with(program_.string(c.operand));
      case Test::string_ends_with: return value.ends_with(program_.string(c.operand));
      case Test::string_matches: return program_.regex(c.operand).search(value, scratch_.regex());
      case Test::string_in: {
        const auto set = program_.string_set(c.operand);
        const auto it = std::lower_bound(
            set.begin(), set.end(), value,
            [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
        return it != set.end() && std::string_view(*it) == value;
      }
      default: return false;
    }
  }

  bool integer(const Comparison& c, int64_t value) const noexcept {
    switch (c.test) {
      case Test::integer_equal: return value == c.integer;
      case Test::integer_less: return value < c.integer;
      case Test::integer_less_equal: return value <= c.integer;
      case Test::integer_greater: return value > c.integer;
      case Test::integer_greater_equal: return value >= c.integer;
      case Test::integer_in: {
        const auto set = program_.integer_set(c.operand);
        return std::binary_search(set.begin(), set.end(), value);
      }
      default: return false;
    }
  }

  const Program& program_;
  const RuleInput& input_;
  EvalScratch& scratch_;
};

}  // namespace

bool evaluate(const Program& program, const RuleInput& input, EvalScratch& scratch) noexcept {
  return Evaluator(program, input, scratch).node(program.root());
}

}  // namespace mtlsgw::rules
