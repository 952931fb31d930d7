#include "rules/rule_program.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace mtlsgw::rules {
namespace {

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string prefix_text(uint32_t address, uint8_t length) {
  char out[24];
  std::snprintf(out, sizeof out, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xFF,
                (address >> 8) & 0xFF, address & 0xFF);
  std::string text = out;
  if (length != 32) text += "/" + std::to_string(length);
  return text;
}

uint8_t mask_length(uint32_t mask) noexcept {
  uint8_t length = 0;
  while (length < 32 && (mask & (0x80000000u >> length)) != 0) ++length;
  return length;
}

template <typename T>
uint32_t append(std::vector<T>& table, T value) {
  table.push_back(std::move(value));
  return static_cast<uint32_t>(table.size() - 1);
}

class CanonicalWriter {
 public:
  explicit CanonicalWriter(const Program& program) : program_(program) {}

  void node(uint32_t index, bool outermost) {
    const Node& n = program_.nodes()[index];
    switch (n.kind) {
      case NodeKind::all:
      case NodeKind::any:
      case NodeKind::odd: {
        const char* joiner = n.kind == NodeKind::all   ? " and "
                             : n.kind == NodeKind::any ? " or "
                                                       : " xor ";
        if (!outermost) out_ += '(';
        for (uint32_t i = 0; i < n.count; ++i) {
          if (i > 0) out_ += joiner;
          node(program_.children()[n.first + i], false);
        }
        if (!outermost) out_ += ')';
        return;
      }
      case NodeKind::negation:
        out_ += "not ";
        node(n.first, false);
        return;
      case NodeKind::constant: out_ += n.first != 0 ? "true" : "false"; return;
      case NodeKind::comparison: comparison(program_.comparisons()[n.first]); return;
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void comparison(const Comparison& c) {
    out_ += field_info(c.field).name;
    out_ += ' ';
    out_ += operator_text(c);
    out_ += ' ';
    switch (c.test) {
      case Test::string_equal:
      case Test::string_contains:
      case Test::string_starts_with:
      case Test::string_ends_with: out_ += quoted(program_.string(c.operand)); return;
      case Test::string_matches: out_ += quoted(program_.regex(c.operand).pattern()); return;
      case Test::string_in: {
        const char* space = "{";
        for (const std::string& value : program_.string_set(c.operand)) {
          out_ += std::exchange(space, " ");
          out_ += quoted(value);
        }
        out_ += '}';
        return;
      }
      case Test::integer_in: {
        const char* space = "{";
        for (int64_t value : program_.integer_set(c.operand)) {
          out_ += std::exchange(space, " ");
          out_ += std::to_string(value);
        }
        out_ += '}';
        return;
      }
      case Test::address_in_set: {
        const char* space = "{";
        for (const AddressSet::Group& group : program_.address_set(c.operand).groups) {
          for (uint32_t network : group.networks) {
            out_ += std::exchange(space, " ");
            out_ += prefix_text(network, group.length);
          }
        }
        out_ += '}';
        return;
      }
      case Test::address_in_prefix: out_ += prefix_text(c.address, mask_length(c.mask)); return;
      case Test::flag_is: out_ += c.integer != 0 ? "true" : "false"; return;
      default: out_ += std::to_string(c.integer); return;
    }
  }

  static const char* operator_text(const Comparison& c) {
    switch (c.test) {
      case Test::string_equal:
      case Test::integer_equal:
      case Test::address_in_prefix:
      case Test::flag_is: return c.negated ? "!=" : "==";
      case Test::string_contains: return "contains";
      case Test::string_starts_with: return "starts_with";
      case Test::string_ends_with: return "ends_with";
      case Test::string_matches: return "matches";
      case Test::string_in:
      case Test::integer_in:
      case Test::address_in_set: return "in";
      case Test::integer_less: return "<";
      case Test::integer_less_equal: return "<=";
      case Test::integer_greater: return ">";
      case Test::integer_greater_equal: return ">=";
    }
    return "?";
  }

  const Program& program_;
  std::string out_;
};

}  // namespace

uint32_t prefix_mask(uint8_t length) noexcept {
  return length == 0 ? 0 : ~uint32_t{0} << (32 - std::min<uint8_t>(length, 32));
}

bool AddressSet::contains(uint32_t address) const noexcept {
  for (const Group& group : groups) {
    if (std::binary_search(group.networks.begin(), group.networks.end(), address & group.mask)) {
      return true;
    }
  }
  return false;
}

std::string Program::canonical_text() const {
  CanonicalWriter writer(*this);
  writer.node(root_, true);
  return writer.take();
}

uint32_t ProgramBuilder::add_node(Node node) { return append(program_.nodes_, node); }

uint32_t ProgramBuilder::constant(bool value) {
  return add_node(Node{NodeKind::constant, value ? 1u : 0u, 0});
}

uint32_t ProgramBuilder::comparison(const Comparison& comparison) {
  if (field_info(comparison.field).presence == Presence::http) program_.uses_http_ = true;
  const uint32_t index = append(program_.comparisons_, comparison);
  return add_node(Node{NodeKind::comparison, index, 0});
}

uint32_t ProgramBuilder::negation(uint32_t child) {
  return add_node(Node{NodeKind::negation, child, 0});
}

uint32_t ProgramBuilder::group(NodeKind kind, std::span<const uint32_t> children) {
  if (kind != NodeKind::all && kind != NodeKind::any && kind != NodeKind::odd) {
    throw std::logic_error("ProgramBuilder::group: not a group kind");
  }
  const auto first = static_cast<uint32_t>(program_.children_.size());
  program_.children_.insert(program_.children_.end(), children.begin(), children.end());
  return add_node(Node{kind, first, static_cast<uint32_t>(children.size())});
}

uint32_t ProgramBuilder::add_string(std::string value) {
  return append(program_.strings_, std::move(value));
}

uint32_t ProgramBuilder::add_string_set(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return append(program_.string_sets_, std::move(values));
}

uint32_t ProgramBuilder::add_integer_set(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return append(program_.integer_sets_, std::move(values));
}

uint32_t ProgramBuilder::add_address_set(std::span<const Prefix> prefixes) {
  AddressSet set;
  for (int length = 32; length >= 0; --length) {
    AddressSet::Group group;
    group.length = static_cast<uint8_t>(length);
    group.mask = prefix_mask(group.length);
    for (const Prefix& prefix : prefixes) {
      if (prefix.length == length) group.networks.push_back(prefix.address & group.mask);
    }
    if (group.networks.empty()) continue;
    std::sort(group.networks.begin(), group.networks.end());
    group.networks.erase(std::unique(group.networks.begin(), group.networks.end()),
                         group.networks.end());
    set.groups.push_back(std::move(group));
  }
  return append(program_.address_sets_, std::move(set));
}

uint32_t ProgramBuilder::add_regex(Regex regex) {
  return append(program_.regexes_, std::move(regex));
}

Program ProgramBuilder::finish(uint32_t root) && {
  program_.root_ = root;
  return std::move(program_);
}

}  // namespace mtlsgw::rules
