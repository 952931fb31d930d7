#pragma once
// The ordered rule table: {name, expression, action} entries, compiled once
// on the control thread and then shared read-only by every worker (each with
// its own EvalScratch). A table never changes; an update builds a new one.
//
// Evaluation walks the rules in order: a matching `log` rule is recorded and
// the walk goes on; a matching `allow` or `block` rule decides and stops it.
// It runs in two phases so that the order is kept exactly although HTTP
// fields exist only once a request has been read:
//
//   evaluate_connection  after the handshake: walks from rule 0 and stops,
//                        undecided, at the first rule that reads an HTTP
//                        field (Verdict::resume_index).
//   evaluate_request     per HTTP request (input.http_present): walks from
//                        the connection's resume_index on.
//   evaluate_all         once, with the input as it is: for hosts that
//                        forward without HTTP (tcp, proxy_v2), where the HTTP
//                        fields are absent. The same as evaluate_connection
//                        followed by evaluate_request from its resume_index.
//
// A decision of `none` leaves the host's default. Log hits of the connection
// phase belong to the connection, those of a request phase to that request.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule_error.h"
#include "rules/rule_eval.h"
#include "rules/rule_input.h"
#include "rules/rule_program.h"

namespace mtlsgw::rules {

// 4096 rules: far above a hand-written policy, small enough that a log-hit
// bitset is 512 bytes and a table compiles in well under a second.
constexpr std::size_t kMaxRules = 4096;
constexpr std::size_t kMaxRuleNameBytes = 64;
constexpr uint32_t kNoRule = UINT32_MAX;

enum class Action : uint8_t { log, allow, block };
enum class Decision : uint8_t { none, allow, block };

std::string_view to_string(Action action) noexcept;
std::string_view to_string(Decision decision) noexcept;
std::optional<Action> parse_action(std::string_view text) noexcept;

// 1 to 64 characters of [A-Za-z0-9_.-].
bool is_valid_rule_name(std::string_view name) noexcept;

// The indexes of the `log` rules that matched, one bit per rule.
class LogHits {
 public:
  void set(uint32_t index) noexcept { words_[index / 64] |= uint64_t{1} << (index % 64); }
  bool test(uint32_t index) const noexcept {
    return index < kMaxRules && (words_[index / 64] >> (index % 64) & 1) != 0;
  }
  bool empty() const noexcept;
  std::size_t count() const noexcept;
  // The first hit at or after index, or kNoRule:
  //   for (uint32_t i = hits.next(0); i != kNoRule; i = hits.next(i + 1))
  uint32_t next(uint32_t index) const noexcept;

 private:
  std::array<uint64_t, kMaxRules / 64> words_{};
};

struct Verdict {
  Decision decision = Decision::none;
  uint32_t rule_index = kNoRule;  // the deciding rule, when decision is not none
  // evaluate_connection: where evaluate_request must go on from; the table's
  // size when nothing is left for the request phase. Other calls: the size.
  uint32_t resume_index = 0;
  LogHits logged;

  bool decided() const noexcept { return decision != Decision::none; }
};

struct Rule {
  std::string name;
  std::string expression;  // as the operator wrote it
  Action action = Action::log;
  Program program;
};

class RuleTable {
 public:
  RuleTable() = default;
  RuleTable(RuleTable&&) noexcept = default;
  RuleTable& operator=(RuleTable&&) noexcept = default;

  std::size_t size() const noexcept { return rules_.size(); }
  bool empty() const noexcept { return rules_.empty(); }
  const Rule& operator[](std::size_t index) const noexcept { return rules_[index]; }
  std::span<const Rule> rules() const noexcept { return rules_; }
  std::optional<std::size_t> find(std::string_view name) const noexcept;
  bool uses_http() const noexcept { return first_http_rule_ != kNoRule; }

  Verdict evaluate_connection(const RuleInput& input, EvalScratch& scratch) const noexcept;
  Verdict evaluate_request(const RuleInput& input, EvalScratch& scratch,
                           uint32_t start_index) const noexcept;
  Verdict evaluate_all(const RuleInput& input, EvalScratch& scratch) const noexcept;

  // One entry as text, "<name> <action> <expression>", the expression exactly
  // as written (for `rule list` and config dumps).
  std::string render(std::size_t index) const;

 private:
  friend class RuleTableBuilder;
  Verdict walk(const RuleInput& input, EvalScratch& scratch, uint32_t start,
               uint32_t stop) const noexcept;

  std::vector<Rule> rules_;
  uint32_t first_http_rule_ = kNoRule;
};

// Adds rules in order, checking each; build() hands the finished table over.
class RuleTableBuilder {
 public:
  // False with error set (positions in the expression; line 0 for an error
  // in the name or a full table) and the table unchanged.
  bool add(std::string_view name, Action action, std::string_view expression, RuleError& error);
  std::size_t size() const noexcept { return table_.rules_.size(); }
  RuleTable build() &&;

 private:
  RuleTable table_;
};

}  // namespace mtlsgw::rules
