#pragma once
// A compiled rule expression: immutable once built, so that any number of
// workers evaluate it at once (rule_eval.h) with no synchronisation.
//
// Layout: a tree of nodes in one vector, children before their parent, the
// root last. "and", "or" and "xor" chains are one node each with all their
// operands as children (a chain of 500 "or"s is one level, not 500), so the
// evaluator's recursion is bounded by the parser's nesting limit. A
// comparison's operand lives in the table of its kind (strings, sets,
// regular expressions), referenced by index.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule_fields.h"
#include "rules/rule_regex.h"

namespace mtlsgw::rules {

enum class Test : uint8_t {
  string_equal,
  string_contains,
  string_starts_with,
  string_ends_with,
  string_matches,
  string_in,
  integer_equal,
  integer_less,
  integer_less_equal,
  integer_greater,
  integer_greater_equal,
  integer_in,
  address_in_prefix,  // == and != on ip.src: a plain address is a /32
  address_in_set,
  flag_is,
};

struct Comparison {
  FieldId field = FieldId::tls_sni;
  Test test = Test::string_equal;
  // "!=": exactly the opposite of "==", also on an absent field (true) and
  // on an array (no element equal).
  bool negated = false;
  uint32_t operand = 0;  // strings, *_in sets or regexes, by test
  int64_t integer = 0;   // integer_* other than _in; flag_is: 0 or 1
  uint32_t address = 0;  // address_in_prefix, already masked
  uint32_t mask = 0;
};

enum class NodeKind : uint8_t {
  all,         // and: children [first, first + count) of Program::children()
  any,         // or
  odd,         // xor: an odd number of children true
  negation,    // not: child first
  constant,    // true / false: first is 1 / 0
  comparison,  // Program::comparisons()[first]
};

struct Node {
  NodeKind kind = NodeKind::constant;
  uint32_t first = 0;
  uint32_t count = 0;
};

// An address set, as one sorted array of networks per prefix length, so
// that a lookup is at most 33 binary searches however large the set.
struct AddressSet {
  struct Group {
    uint32_t mask = 0;
    uint8_t length = 0;
    std::vector<uint32_t> networks;  // sorted, unique
  };
  std::vector<Group> groups;  // longest prefix first

  bool contains(uint32_t address) const noexcept;
};

class Program {
 public:
  Program(Program&&) noexcept = default;
  Program& operator=(Program&&) noexcept = default;

  // Whether the expression reads an HTTP field (such a rule waits for the
  // request phase in RuleTable).
  bool uses_http() const noexcept { return uses_http_; }

  uint32_t root() const noexcept { return root_; }
  std::span<const Node> nodes() const noexcept { return nodes_; }
  std::span<const uint32_t> children() const noexcept { return children_; }
  std::span<const Comparison> comparisons() const noexcept { return comparisons_; }
  const std::string& string(uint32_t i) const noexcept { return strings_[i]; }
  std::span<const std::string> string_set(uint32_t i) const noexcept { return string_sets_[i]; }
  std::span<const int64_t> integer_set(uint32_t i) const noexcept { return integer_sets_[i]; }
  const AddressSet& address_set(uint32_t i) const noexcept { return address_sets_[i]; }
  const Regex& regex(uint32_t i) const noexcept { return regexes_[i]; }

  // The tree written back in the language, canonically: every group in
  // parentheses except the outermost, operators in their symbol form, a
  // bare boolean field as "== true", sets sorted, strings quoted, e.g.
  //   not tls.sni == "a" or (client.cert.verified == true and ip.src == 198.18.0.0/15)
  // It compiles back to the same tree (unless the added parentheses exceed
  // the nesting limit). For tests and debugging; RuleTable keeps the
  // operator's own text.
  std::string canonical_text() const;

 private:
  friend class ProgramBuilder;
  Program() = default;

  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;
  std::vector<Comparison> comparisons_;
  std::vector<std::string> strings_;
  std::vector<std::vector<std::string>> string_sets_;  // sorted, unique
  std::vector<std::vector<int64_t>> integer_sets_;     // sorted, unique
  std::vector<AddressSet> address_sets_;
  std::vector<Regex> regexes_;
  uint32_t root_ = 0;
  bool uses_http_ = false;
};

// Builds a Program bottom-up (what the parser emits as it reads). Every
// add returns the index to refer to the new node or operand by.
class ProgramBuilder {
 public:
  struct Prefix {
    uint32_t address = 0;
    uint8_t length = 32;
  };

  uint32_t constant(bool value);
  uint32_t comparison(const Comparison& comparison);
  uint32_t negation(uint32_t child);
  uint32_t group(NodeKind kind, std::span<const uint32_t> children);

  uint32_t add_string(std::string value);
  uint32_t add_string_set(std::vector<std::string> values);
  uint32_t add_integer_set(std::vector<int64_t> values);
  uint32_t add_address_set(std::span<const Prefix> prefixes);
  uint32_t add_regex(Regex regex);
  std::size_t regex_count() const noexcept { return program_.regexes_.size(); }

  Program finish(uint32_t root) &&;

 private:
  uint32_t add_node(Node node);
  Program program_;
};

uint32_t prefix_mask(uint8_t length) noexcept;

}  // namespace mtlsgw::rules
