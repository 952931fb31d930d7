#include "ctl/ctl_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

namespace mtlsgw::ctl {
namespace {

Reply reply_of(std::string_view line, int64_t id) {
  std::string error;
  Reply reply = parse_reply(line, id, error);
  EXPECT_EQ(error, "") << line;
  return reply;
}

std::string error_of(std::string_view line, int64_t id) {
  std::string error;
  parse_reply(line, id, error);
  EXPECT_NE(error, "") << line;
  return error;
}

TEST(CtlClient, ReadsResultsAndErrors) {
  Reply ok = reply_of(R"({"id":3,"ok":true,"result":{"b":1,"a":2}})", 3);
  EXPECT_TRUE(ok.ok);
  // The server's key order survives for display.
  EXPECT_EQ(ok.result.begin().key(), "b");
  Reply refused = reply_of(
      R"({"id":3,"ok":false,"error":{"code":"not_found","message":"no host","where":"args.name"}})", 3);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "not_found");
  EXPECT_EQ(refused.message, "no host");
  EXPECT_EQ(refused.where, "args.name");
  // Errors the server raised before it knew the id.
  Reply early = reply_of(
      R"({"id":null,"ok":false,"error":{"code":"forbidden","message":"no","where":""}})", 1);
  EXPECT_EQ(early.code, "forbidden");
}

TEST(CtlClient, RefusesMalformedAnswers) {
  error_of("not json", 1);
  error_of("[1]", 1);
  error_of(R"({"id":1,"result":5})", 1);
  error_of(R"({"id":2,"ok":true,"result":5})", 1);
  error_of(R"({"id":null,"ok":true,"result":5})", 1);
  error_of(R"({"id":1,"ok":true})", 1);
  error_of(R"({"id":1,"ok":false})", 1);
  error_of(R"({"id":1,"ok":false,"error":{"code":5,"message":"x"}})", 1);
  error_of(R"({"id":2,"ok":false,"error":{"code":"x","message":"x"}})", 1);
}

// A server that answers each line after a pause split across writes, then
// closes: the client must put lines together and notice the close.
TEST(CtlClient, CallsOverASocket) {
  char pattern[] = "/tmp/mtlsgwctl-client-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string path = std::string(pattern) + "/s.sock";
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  std::string first_request;
  std::thread server([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    std::string received;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') received += c;
    first_request = received;
    const std::string part1 = R"({"id":1,"ok":true,)";
    const std::string part2 = "\"result\":[1,2]}\n";
    ::send(fd, part1.data(), part1.size(), MSG_NOSIGNAL);
    ::send(fd, part2.data(), part2.size(), MSG_NOSIGNAL);
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') {
    }
    ::close(fd);
  });
  std::string error;
  auto client = ControlClient::connect(path, std::chrono::seconds(30), error);
  ASSERT_NE(client, nullptr) << error;
  Reply reply;
  ASSERT_TRUE(client->call("host.list", nlohmann::json::object(), reply, error)) << error;
  EXPECT_EQ(reply.result, nlohmann::ordered_json::parse("[1,2]"));
  EXPECT_EQ(nlohmann::json::parse(first_request),
            (nlohmann::json{{"id", 1}, {"command", "host.list"}, {"args", nlohmann::json::object()}}));
  EXPECT_FALSE(client->call("ping", nlohmann::json::object(), reply, error));
  EXPECT_NE(error.find("closed the connection"), std::string::npos) << error;
  server.join();
  ::close(listener);
  std::filesystem::remove_all(pattern);
}

TEST(CtlClient, NoServerIsAConnectError) {
  std::string error;
  EXPECT_EQ(ControlClient::connect("/tmp/mtlsgwctl-no-such-dir/s.sock", std::chrono::seconds(1), error),
            nullptr);
  EXPECT_NE(error.find("is the gateway running?"), std::string::npos) << error;
}

}  // namespace
}  // namespace mtlsgw::ctl
