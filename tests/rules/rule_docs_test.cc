// docs/rules.md against the code: its field table is the registry, its
// error examples are what compile() says, and its example rules build.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "rules/rule_fields.h"
#include "rules/rule_parser.h"
#include "rules/rule_table.h"

namespace mtlsgw::rules {
namespace {

std::vector<std::string> doc_lines() {
  std::ifstream file(MTLSGW_RULES_DOC);
  EXPECT_TRUE(file) << "cannot read " << MTLSGW_RULES_DOC;
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

// The cells of a Markdown table row, trimmed, without their backticks.
std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::size_t start = 1;
  for (std::size_t bar = row.find(" | ", start); start < row.size();
       bar = row.find(" | ", start)) {
    std::string cell = row.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    while (!cell.empty() && (cell.front() == ' ' || cell.front() == '`')) cell.erase(0, 1);
    while (!cell.empty() && (cell.back() == ' ' || cell.back() == '`' || cell.back() == '|')) {
      cell.pop_back();
    }
    out.push_back(cell);
    if (bar == std::string::npos) break;
    start = bar + 3;
  }
  return out;
}

// The rows of the table under a heading.
std::vector<std::vector<std::string>> table_after(const std::vector<std::string>& lines,
                                                  const std::string& heading) {
  std::vector<std::vector<std::string>> rows;
  std::size_t i = 0;
  while (i < lines.size() && lines[i] != heading) ++i;
  while (i < lines.size() && !lines[i].starts_with("| ")) ++i;
  for (i += 2; i < lines.size() && lines[i].starts_with("| "); ++i) rows.push_back(cells(lines[i]));
  return rows;
}

TEST(RuleDocs, FieldTableIsTheRegistry) {
  const auto rows = table_after(doc_lines(), "## Fields");
  std::map<std::string, std::string> documented;
  for (const auto& row : rows) {
    ASSERT_GE(row.size(), 3u);
    documented[row[0]] = row[1];
  }
  EXPECT_EQ(documented.size(), kFieldCount);
  for (const FieldInfo& field : all_fields()) {
    const auto it = documented.find(std::string(field.name));
    ASSERT_NE(it, documented.end()) << field.name << " is not in docs/rules.md";
    EXPECT_EQ(it->second, type_name(field.type)) << field.name;
  }
}

TEST(RuleDocs, ErrorExamplesAreWhatCompileSays) {
  const auto rows = table_after(doc_lines(), "## Errors");
  ASSERT_GE(rows.size(), 5u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 2u);
    RuleError error;
    EXPECT_FALSE(compile(row[0], error)) << row[0];
    EXPECT_EQ(error.to_string(), row[1]) << row[0];
  }
}

TEST(RuleDocs, ExampleRulesBuildATable) {
  const std::vector<std::string> lines = doc_lines();
  std::size_t i = 0;
  while (i < lines.size() && lines[i] != "## Examples") ++i;
  while (i < lines.size() && lines[i] != "```") ++i;
  RuleTableBuilder builder;
  for (++i; i < lines.size() && lines[i] != "```"; ++i) {
    if (lines[i].starts_with("#")) continue;
    std::istringstream line(lines[i]);
    std::string name, action;
    line >> name >> action >> std::ws;
    std::string expression;
    std::getline(line, expression);
    RuleError error;
    ASSERT_TRUE(parse_action(action)) << lines[i];
    EXPECT_TRUE(builder.add(name, *parse_action(action), expression, error))
        << lines[i] << "\n" << error.to_string();
  }
  EXPECT_EQ(builder.size(), 10u);
}

}  // namespace
}  // namespace mtlsgw::rules
