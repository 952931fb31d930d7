#pragma once
// Evaluating a compiled Program against one input. No allocation, no
// exceptions, no locks: the Program is read-only, and what a match writes
// lives in the caller's EvalScratch, one per worker (or per thread).
//
// Semantics (docs/rules.md, "Evaluation"):
// - A comparison on an absent field is false; "!=" on one is true, being
//   exactly "not ==".
// - A comparison on an array is true when it holds for any element; "!="
//   is true when no element equals (also for an empty array).
// - and / or stop at the first operand that decides them.

#include <cstdint>

#include "rules/rule_input.h"
#include "rules/rule_program.h"
#include "rules/rule_regex.h"

namespace mtlsgw::rules {

class EvalScratch {
 public:
  EvalScratch() = default;  // allocates the regex match state; throws std::bad_alloc
  EvalScratch(const EvalScratch&) = delete;
  EvalScratch& operator=(const EvalScratch&) = delete;

  RegexScratch& regex() noexcept { return regex_; }
  // Regex matches stopped by a limit (rule_regex.h), since construction.
  uint64_t regex_aborted() const noexcept { return regex_.aborted(); }

 private:
  RegexScratch regex_;
};

bool evaluate(const Program& program, const RuleInput& input, EvalScratch& scratch) noexcept;

}  // namespace mtlsgw::rules
