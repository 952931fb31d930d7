#include "control/control_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace mtlsgw::control {
namespace {

using nlohmann::json;

ErrorInfo error_of(std::string_view line, json* id = nullptr) {
  auto parsed = parse_request(line, id);
  EXPECT_TRUE(std::holds_alternative<ErrorInfo>(parsed)) << line;
  if (auto* error = std::get_if<ErrorInfo>(&parsed)) return *error;
  return {};
}

Request request_of(std::string_view line) {
  auto parsed = parse_request(line);
  if (auto* error = std::get_if<ErrorInfo>(&parsed)) {
    ADD_FAILURE() << line << ": " << to_string(error->code) << " " << error->message;
    return {};
  }
  return std::get<Request>(parsed);
}

TEST(ControlProtocol, ParsesAFullRequest) {
  Request r = request_of(R"({"id": 7, "command": "host.add", "args": {"name": "a.test"}})");
  EXPECT_EQ(r.id, json(7));
  EXPECT_EQ(r.command, "host.add");
  EXPECT_EQ(r.args, json({{"name", "a.test"}}));
}

TEST(ControlProtocol, IdAndArgsAreOptional) {
  Request r = request_of(R"({"command": "ping"})");
  EXPECT_TRUE(r.id.is_null());
  EXPECT_EQ(r.args, json::object());
  EXPECT_EQ(request_of(R"({"id": "abc", "command": "ping"})").id, json("abc"));
  EXPECT_TRUE(request_of(R"({"id": null, "command": "ping"})").id.is_null());
}

TEST(ControlProtocol, NotJsonIsAParseErrorWithItsByte) {
  ErrorInfo e = error_of(R"({"command": pong})");
  EXPECT_EQ(e.code, ErrorCode::parse_error);
  EXPECT_EQ(e.where, "byte 13");
  EXPECT_NE(e.message.find("not JSON"), std::string::npos) << e.message;
  EXPECT_EQ(error_of("").code, ErrorCode::parse_error);
  EXPECT_EQ(error_of(R"({"command": "ping"} {})").code, ErrorCode::parse_error);
  // Strings must be valid UTF-8 so that answers echoing them stay JSON.
  EXPECT_EQ(error_of("{\"command\": \"\xff\"}").code, ErrorCode::parse_error);
}

TEST(ControlProtocol, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = R"({"command": "x", "args": {"a": )";
  deep += std::string(100, '[');
  ErrorInfo e = error_of(deep);
  EXPECT_EQ(e.code, ErrorCode::parse_error);
  // The two braces before the brackets count: the 63rd bracket is level 65.
  EXPECT_EQ(e.where, "byte " + std::to_string(deep.find('[') + 62 + 1));
  std::string at_limit = R"({"command": "x", "args": {"a": )";
  at_limit += std::string(62, '[') + std::string(62, ']') + "}}";
  EXPECT_TRUE(std::holds_alternative<Request>(parse_request(at_limit)));
}

TEST(ControlProtocol, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string brackets(200, '[');
  Request r = request_of(R"({"command": "x", "args": {"s": ")" + brackets + R"(\"["}})");
  EXPECT_EQ(r.args["s"], json(brackets + "\"["));
}

TEST(ControlProtocol, EnvelopeErrorsAreBadRequests) {
  EXPECT_EQ(error_of("[1, 2]").code, ErrorCode::bad_request);
  EXPECT_EQ(error_of("42").code, ErrorCode::bad_request);
  ErrorInfo missing = error_of(R"({"args": {}})");
  EXPECT_EQ(missing.code, ErrorCode::bad_request);
  EXPECT_EQ(missing.where, "command");
  EXPECT_EQ(error_of(R"({"command": 5})").where, "command");
  EXPECT_EQ(error_of(R"({"command": ""})").where, "command");
  ErrorInfo args = error_of(R"({"command": "ping", "args": [1]})");
  EXPECT_EQ(args.code, ErrorCode::bad_request);
  EXPECT_EQ(args.where, "args");
  ErrorInfo unknown = error_of(R"({"command": "ping", "arg": {}})");
  EXPECT_EQ(unknown.code, ErrorCode::bad_request);
  EXPECT_EQ(unknown.where, "arg");
  EXPECT_EQ(error_of(R"({"id": 1.5, "command": "ping"})").where, "id");
  EXPECT_EQ(error_of(R"({"id": [1], "command": "ping"})").where, "id");
}

TEST(ControlProtocol, EnvelopeErrorsStillEchoAValidId) {
  json id;
  error_of(R"({"id": 9, "command": "ping", "extra": 1})", &id);
  EXPECT_EQ(id, json(9));
  json none;
  error_of(R"({"id": true, "command": "ping"})", &none);
  EXPECT_TRUE(none.is_null());
}

TEST(ControlProtocol, ResponsesAreSingleLinesInEnvelopeOrder) {
  const std::string ok = format_result(json(3), json({{"pem", "line1\nline2\n"}}));
  EXPECT_EQ(ok, R"({"id":3,"ok":true,"result":{"pem":"line1\nline2\n"}})");
  const std::string error =
      format_error(json("x"), ErrorInfo{ErrorCode::not_found, "no host \"a\"", "args.name"});
  EXPECT_EQ(error,
            R"({"id":"x","ok":false,"error":{"code":"not_found","message":"no host \"a\"","where":"args.name"}})");
  EXPECT_EQ(format_result(nullptr, nullptr), R"({"id":null,"ok":true,"result":null})");
}

TEST(ControlProtocol, BadUtf8InAnswersIsReplacedNotThrown) {
  const std::string line = format_result(json(1), json("a\xff" "b"));
  EXPECT_EQ(line, "{\"id\":1,\"ok\":true,\"result\":\"a\xEF\xBF\xBD" "b\"}");
}

TEST(ControlProtocol, ErrorCodesHaveStableNames) {
  EXPECT_EQ(to_string(ErrorCode::parse_error), "parse_error");
  EXPECT_EQ(to_string(ErrorCode::in_transaction), "in_transaction");
  EXPECT_EQ(to_string(ErrorCode::internal), "internal");
  for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(error_code_from_string(to_string(code)), code);
  }
  EXPECT_FALSE(error_code_from_string("nope").has_value());
}

TEST(ArgReader, ReadsTypedFields) {
  const json args = {{"name", "a"},  {"port", 443},        {"on", true},
                     {"alpn", {"h2", "http/1.1"}}, {"sub", {{"x", 1}}}, {"mode", "tcp"}};
  ArgReader reader(args);
  EXPECT_EQ(reader.string("name", true), "a");
  EXPECT_EQ(reader.uint("port", true, 1, 65535), 443u);
  EXPECT_EQ(reader.boolean("on", false), true);
  EXPECT_EQ(reader.string_list("alpn", false), (std::vector<std::string>{"h2", "http/1.1"}));
  ASSERT_NE(reader.object("sub", false), nullptr);
  EXPECT_EQ(reader.choice("mode", true, {"tcp", "http"}), "tcp");
  EXPECT_FALSE(reader.string("absent", false).has_value());
  EXPECT_TRUE(reader.finish());
  EXPECT_FALSE(reader.error().has_value());
}

TEST(ArgReader, MissingRequiredField) {
  const json args = json::object();
  ArgReader reader(args);
  EXPECT_FALSE(reader.string("name", true).has_value());
  ASSERT_TRUE(reader.error().has_value());
  EXPECT_EQ(reader.error()->code, ErrorCode::missing_field);
  EXPECT_EQ(reader.error()->where, "args.name");
}

TEST(ArgReader, WrongTypesAndRangesAreBadFields) {
  struct Case {
    json args;
    const char* where;
  };
  const Case cases[] = {
      {{{"n", "1"}}, "args.n"},
      {{{"n", -1}}, "args.n"},
      {{{"n", 70000}}, "args.n"},
      {{{"n", 1.0}}, "args.n"},
  };
  for (const Case& c : cases) {
    ArgReader reader(c.args);
    EXPECT_FALSE(reader.uint("n", true, 1, 65535).has_value());
    ASSERT_TRUE(reader.error().has_value()) << c.args;
    EXPECT_EQ(reader.error()->code, ErrorCode::bad_field);
    EXPECT_EQ(reader.error()->where, c.where);
  }
  const json list = {{"l", {"a", 2}}};
  ArgReader lists(list);
  EXPECT_FALSE(lists.string_list("l", true).has_value());
  EXPECT_EQ(lists.error()->where, "args.l[1]");
  const json flag = {{"b", "true"}};
  ArgReader booleans(flag);
  EXPECT_FALSE(booleans.boolean("b", true).has_value());
  EXPECT_EQ(booleans.error()->code, ErrorCode::bad_field);
  const json mode = {{"m", "udp"}};
  ArgReader choices(mode);
  EXPECT_FALSE(choices.choice("m", true, {"tcp", "http"}).has_value());
  EXPECT_NE(choices.error()->message.find("tcp, http"), std::string::npos);
}

TEST(ArgReader, FirstErrorWins) {
  const json args = {{"a", 1}, {"b", 2}};
  ArgReader reader(args);
  reader.string("a", true);
  reader.string("b", true);
  reader.fail(ErrorCode::bad_pem, "c", "later");
  EXPECT_FALSE(reader.finish());
  EXPECT_EQ(reader.error()->where, "args.a");
}

TEST(ArgReader, FinishFindsUnknownFields) {
  const json args = {{"name", "a"}, {"nmae", "b"}};
  ArgReader reader(args);
  reader.string("name", true);
  reader.uint("port", false);
  EXPECT_FALSE(reader.finish());
  EXPECT_EQ(reader.error()->code, ErrorCode::unknown_field);
  EXPECT_EQ(reader.error()->where, "args.nmae");
  EXPECT_NE(reader.error()->message.find("name, port"), std::string::npos)
      << reader.error()->message;
}

TEST(ArgReader, NestedReadersUseTheirPrefix) {
  const json args = {{"match", {{"depth", "x"}}}};
  ArgReader outer(args);
  const json* match = outer.object("match", true);
  ASSERT_NE(match, nullptr);
  ArgReader inner(*match, outer.path("match"));
  inner.uint("depth", true);
  EXPECT_EQ(inner.error()->where, "args.match.depth");
  const json not_object = 5;
  ArgReader wrong(not_object, "args.x");
  EXPECT_EQ(wrong.error()->code, ErrorCode::bad_field);
  EXPECT_FALSE(wrong.finish());
}

TEST(ArgReader, HandlerVerdictsCarryTheirPath) {
  const json args = {{"cert_pem", "junk"}};
  ArgReader reader(args);
  reader.string("cert_pem", true);
  reader.fail(ErrorCode::bad_pem, "cert_pem", "no CERTIFICATE block");
  EXPECT_FALSE(reader.finish());
  EXPECT_EQ(reader.error()->code, ErrorCode::bad_pem);
  EXPECT_EQ(reader.error()->where, "args.cert_pem");
  EXPECT_TRUE(reader.has("cert_pem"));
}

}  // namespace
}  // namespace mtlsgw::control
