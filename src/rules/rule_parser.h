#pragma once
// The rules language's parser and type checker (docs/rules.md). One pass:
// each comparison is checked against its field's type as it is read, and the
// program is emitted bottom-up into a ProgramBuilder, so errors come in the
// order of the text and each points at the token at fault.
//
//   expr       := or
//   or         := xor  { ("or"  | "||") xor }
//   xor        := and  { ("xor" | "^^") and }
//   and        := unary { ("and" | "&&") unary }
//   unary      := ("not" | "!") unary | primary
//   primary    := "(" expr ")" | "true" | "false" | field [ comparison ]
//   comparison := op value | "in" "{" value { [","] value } "}"
//
// Precedence, high to low, as in Cloudflare's language: not, and, xor, or.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "rules/rule_error.h"
#include "rules/rule_program.h"

namespace mtlsgw::rules {

// An expression is at most 4 KiB (a rule is a line of configuration, not a
// program). Nesting counts parentheses and "not"s around a point: at 64 the
// recursive parser and evaluator need under 64 KiB of stack (measured at
// -O2: 32 nested "not (... or" groups compile and evaluate on a 64 KiB
// thread stack, not on 48 KiB), far below a thread's 8 MiB. A set holds at
// most 1024 values; larger lists belong in a table of their own, not a rule.
// Each regular expression costs up to a few KiB of compiled and JIT code.
constexpr std::size_t kMaxExpressionBytes = 4096;
constexpr uint32_t kMaxNesting = 64;
constexpr std::size_t kMaxSetValues = 1024;
constexpr std::size_t kMaxRegexes = 16;

// The program for expression, or nothing with error set.
std::optional<Program> compile(std::string_view expression, RuleError& error);

}  // namespace mtlsgw::rules
