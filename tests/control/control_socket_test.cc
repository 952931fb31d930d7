#include "control/control_socket.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtlsgw::control {
namespace {

using nlohmann::json;

// Answers each request with its own command, args and client id; a few
// commands misbehave on purpose.
class EchoHandler : public RequestHandler {
 public:
  std::string handle(uint64_t client_id, const Request& request) override {
    ++handled;
    if (request.command == "throw") throw std::runtime_error("handler broke");
    if (request.command == "fail") {
      return format_error(request.id, ErrorInfo{ErrorCode::not_found, "nothing here", "args.name"});
    }
    if (request.command == "size") {
      return format_result(request.id, request.args["pem"].get_ref<const std::string&>().size());
    }
    if (request.command == "big") {
      return format_result(request.id, std::string(request.args.value("bytes", 0u), 'x'));
    }
    return format_result(request.id, json{{"command", request.command},
                                          {"args", request.args},
                                          {"client", client_id}});
  }
  void client_closed(uint64_t client_id) override { closed.push_back(client_id); }

  int handled = 0;
  std::vector<uint64_t> closed;
};

// A connection driven without blocking: pump() writes what the socket takes
// and reads what arrived, so that one thread runs server and clients.
struct TestClient {
  int fd = -1;
  std::string to_send;
  std::size_t to_send_offset = 0;
  std::string received;
  std::size_t newlines = 0;
  bool eof = false;
  int read_error = 0;

  explicit TestClient(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  ~TestClient() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void pump() {
    if (fd < 0) return;
    while (to_send_offset < to_send.size()) {
      const ssize_t n = ::send(fd, to_send.data() + to_send_offset,
                               to_send.size() - to_send_offset, MSG_NOSIGNAL);
      if (n <= 0) break;
      to_send_offset += static_cast<std::size_t>(n);
    }
    if (to_send_offset == to_send.size()) {
      to_send.clear();
      to_send_offset = 0;
    }
    char buffer[65536];
    while (!eof) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        received.append(buffer, static_cast<std::size_t>(n));
        newlines += static_cast<std::size_t>(std::count(buffer, buffer + n, '\n'));
      } else if (n == 0) {
        eof = true;
      } else {
        if (errno != EAGAIN) {
          read_error = errno;
          eof = true;
        }
        break;
      }
    }
  }

  std::vector<json> answers() const {
    std::vector<json> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = received.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(json::parse(received.substr(start, nl - start)));
    }
    return out;
  }
  std::size_t answer_count() const { return newlines; }
};

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mtlsgw-ctl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    options_.path = dir_ + "/control.sock";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    std::string error;
    server_ = ControlSocket::open(options_, handler_, error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // Runs server and clients until done() holds; false if it never does
  // (a generous bound against hanging, not a timing expectation).
  bool pump_until(std::vector<TestClient*> clients, const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      for (TestClient* c : clients) c->pump();
      server_->poll(std::chrono::milliseconds(1));
    }
    return true;
  }

  std::string dir_;
  ControlSocketOptions options_;
  EchoHandler handler_;
  std::unique_ptr<ControlSocket> server_;
};

std::string request(int id, const std::string& command, const json& args = json::object()) {
  return json{{"id", id}, {"command", command}, {"args", args}}.dump() + "\n";
}

TEST_F(ControlSocketTest, ManyClientsWithPipelinedRequestsGetTheirAnswersInOrder) {
  start();
  constexpr int kClients = 40;
  constexpr int kRequests = 50;
  std::vector<std::unique_ptr<TestClient>> clients;
  std::vector<TestClient*> all;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<TestClient>(options_.path));
    for (int r = 0; r < kRequests; ++r) {
      clients.back()->to_send += request(r, "echo", {{"c", c}, {"r", r}});
    }
    all.push_back(clients.back().get());
  }
  ASSERT_TRUE(pump_until(all, [&] {
    for (auto& c : clients) {
      if (c->answer_count() < kRequests) return false;
    }
    return true;
  }));
  std::set<uint64_t> client_ids;
  for (int c = 0; c < kClients; ++c) {
    const auto answers = clients[c]->answers();
    ASSERT_EQ(answers.size(), static_cast<std::size_t>(kRequests));
    for (int r = 0; r < kRequests; ++r) {
      EXPECT_EQ(answers[r]["id"], json(r));
      EXPECT_EQ(answers[r]["ok"], json(true));
      EXPECT_EQ(answers[r]["result"]["args"], json({{"c", c}, {"r", r}}));
    }
    client_ids.insert(answers[0]["result"]["client"].get<uint64_t>());
  }
  EXPECT_EQ(client_ids.size(), static_cast<std::size_t>(kClients));
  EXPECT_EQ(server_->client_count(), static_cast<std::size_t>(kClients));
}

TEST_F(ControlSocketTest, ARequestSplitAcrossWritesIsAnsweredOnce) {
  start();
  TestClient client(options_.path);
  const std::string line = request(1, "split", {{"text", "abc"}});
  // Byte by byte, each one handled by the server before the next.
  for (std::size_t i = 0; i + 1 < line.size(); ++i) {
    client.to_send = line.substr(i, 1);
    ASSERT_TRUE(pump_until({&client}, [&] { return client.to_send.empty(); }));
    server_->poll(std::chrono::milliseconds(1));
  }
  client.pump();
  EXPECT_EQ(client.answer_count(), 0u);
  client.to_send = "\n";
  ASSERT_TRUE(pump_until({&client}, [&] { return client.answer_count() == 1; }));
  EXPECT_EQ(client.answers()[0]["result"]["args"]["text"], json("abc"));
  EXPECT_EQ(handler_.handled, 1);
}

TEST_F(ControlSocketTest, GarbageIsAnsweredAndTheConnectionLivesOn) {
  start();
  TestClient client(options_.path);
  client.to_send = "hello there\n"
                   "\n  \r\n"                       // blank lines: nothing to answer
                   "[1,2]\n"
                   "{\"id\": 4, \"command\": \"x\", \"bogus\": 1}\n"
                   "{\"id\": 5, \"command\": \"ping\"}\r\n"
                   "{\"id\": 6, \"command\": \"fail\"}\n"
                   "{\"id\": 7, \"command\": \"throw\"}\n"
                   "{\"id\": 8, \"command\": \"ping\"}\n";
  ASSERT_TRUE(pump_until({&client}, [&] { return client.answer_count() == 7; }));
  const auto a = client.answers();
  EXPECT_EQ(a[0]["error"]["code"], "parse_error");
  EXPECT_EQ(a[0]["error"]["where"], "byte 1");
  EXPECT_TRUE(a[0]["id"].is_null());
  EXPECT_EQ(a[1]["error"]["code"], "bad_request");
  EXPECT_EQ(a[2]["error"]["code"], "bad_request");
  EXPECT_EQ(a[2]["error"]["where"], "bogus");
  EXPECT_EQ(a[2]["id"], json(4));
  EXPECT_EQ(a[3]["ok"], json(true));
  EXPECT_EQ(a[3]["id"], json(5));
  EXPECT_EQ(a[4]["error"]["code"], "not_found");
  EXPECT_EQ(a[5]["error"]["code"], "internal");
  EXPECT_EQ(a[5]["error"]["message"], "handler broke");
  EXPECT_EQ(a[6]["ok"], json(true));
  // Envelope errors never reach the handler.
  EXPECT_EQ(handler_.handled, 4);
  EXPECT_FALSE(client.eof);
}

TEST_F(ControlSocketTest, AnOverlongLineIsRefusedAndTheConnectionClosed) {
  options_.max_request_bytes = 4096;
  start();
  // Exactly at the limit still passes.
  std::string at_limit = R"({"id":1,"command":"pad","args":{"p":")";
  at_limit += std::string(4096 - at_limit.size() - 3, 'a') + "\"}}";
  ASSERT_EQ(at_limit.size(), 4096u);
  TestClient fits(options_.path);
  fits.to_send = at_limit + "\n";
  ASSERT_TRUE(pump_until({&fits}, [&] { return fits.answer_count() == 1; }));
  EXPECT_EQ(fits.answers()[0]["ok"], json(true));

  // Unterminated and growing: refused once past the limit, then closed.
  TestClient endless(options_.path);
  endless.to_send = std::string(20000, 'z');
  ASSERT_TRUE(pump_until({&endless}, [&] { return endless.eof; }));
  ASSERT_EQ(endless.answer_count(), 1u);
  EXPECT_EQ(endless.answers()[0]["error"]["code"], "too_large");

  // A complete line over the limit, with a valid request behind it that is
  // not answered any more.
  TestClient whole(options_.path);
  whole.to_send = R"({"command":"x","args":{"p":")" + std::string(5000, 'b') + "\"}}\n" +
                  request(2, "ping");
  ASSERT_TRUE(pump_until({&whole}, [&] { return whole.eof; }));
  ASSERT_EQ(whole.answer_count(), 1u);
  EXPECT_EQ(whole.answers()[0]["error"]["code"], "too_large");
  EXPECT_EQ(handler_.handled, 1);
}

TEST_F(ControlSocketTest, TheDefaultLimitTakes32MiBRequests) {
  start();
  // Three 8 MiB PEM files in one request pass; 33 MiB without a newline
  // does not.
  EXPECT_EQ(options_.max_request_bytes, std::size_t{32} << 20);
  TestClient big(options_.path);
  big.to_send = request(1, "size", {{"pem", std::string(24 << 20, 'P')}});
  ASSERT_TRUE(pump_until({&big}, [&] { return big.answer_count() == 1; }));
  EXPECT_EQ(big.answers()[0]["result"], json(std::size_t{24} << 20));

  TestClient over(options_.path);
  over.to_send = std::string((33 << 20), '{');
  over.to_send[0] = '"';  // one long string, not deep nesting
  ASSERT_TRUE(pump_until({&over}, [&] { return over.eof; }));
  ASSERT_EQ(over.answer_count(), 1u);
  EXPECT_EQ(over.answers()[0]["error"]["code"], "too_large");
}

TEST_F(ControlSocketTest, AClientThatDisconnectsMidRequestIsForgotten) {
  start();
  {
    TestClient client(options_.path);
    client.to_send = request(1, "first") + R"({"id": 2, "command": "sec)";
    ASSERT_TRUE(pump_until({&client}, [&] { return client.answer_count() == 1; }));
  }
  ASSERT_TRUE(pump_until({}, [&] { return server_->client_count() == 0; }));
  EXPECT_EQ(handler_.handled, 1);
  EXPECT_EQ(handler_.closed.size(), 1u);
}

TEST_F(ControlSocketTest, AHalfClosedClientGetsEveryAnswerBeforeTheClose) {
  start();
  TestClient client(options_.path);
  for (int i = 0; i < 20; ++i) client.to_send += request(i, "ping");
  client.pump();
  ASSERT_TRUE(client.to_send.empty());
  ::shutdown(client.fd, SHUT_WR);
  ASSERT_TRUE(pump_until({&client}, [&] { return client.eof; }));
  EXPECT_EQ(client.answer_count(), 20u);
  EXPECT_EQ(client.read_error, 0);
}

TEST_F(ControlSocketTest, AClientThatDoesNotReadIsDroppedWithoutBlockingOthers) {
  options_.max_pending_output = 256 << 10;
  start();
  TestClient reader(options_.path);
  TestClient sleeper(options_.path);
  // 4 MiB of answers asked for, far more than the socket buffer and the cap.
  std::string requests;
  for (int i = 0; i < 128; ++i) requests += request(i, "big", {{"bytes", 32768}});
  ::send(sleeper.fd, requests.data(), requests.size(), MSG_NOSIGNAL);
  reader.to_send = request(1, "ping");
  // The sleeper never reads: only the reader is pumped.
  ASSERT_TRUE(pump_until({&reader}, [&] {
    return reader.answer_count() == 1 && handler_.closed.size() == 1;
  }));
  EXPECT_EQ(reader.answers()[0]["ok"], json(true));
  sleeper.pump();  // what the kernel had taken, then the end
  ASSERT_TRUE(pump_until({&sleeper}, [&] { return sleeper.eof; }));
  EXPECT_LT(sleeper.answer_count(), 128u);
  reader.to_send = request(2, "ping");
  ASSERT_TRUE(pump_until({&reader}, [&] { return reader.answer_count() == 2; }));
}

TEST_F(ControlSocketTest, ClientsPastTheCapAreTurnedAwayWithALine) {
  options_.max_clients = 2;
  start();
  TestClient a(options_.path);
  TestClient b(options_.path);
  a.to_send = request(1, "ping");
  b.to_send = request(1, "ping");
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return a.answer_count() == 1 && b.answer_count() == 1; }));
  TestClient c(options_.path);
  ASSERT_TRUE(pump_until({&c}, [&] { return c.eof; }));
  ASSERT_EQ(c.answer_count(), 1u);
  EXPECT_EQ(c.answers()[0]["error"]["code"], "busy");
  a.close();
  ASSERT_TRUE(pump_until({}, [&] { return server_->client_count() == 1; }));
  TestClient d(options_.path);
  d.to_send = request(1, "ping");
  ASSERT_TRUE(pump_until({&d}, [&] { return d.answer_count() == 1; }));
  EXPECT_EQ(d.answers()[0]["ok"], json(true));
}

// Connects as another user (in a child process), sends a ping and reads one
// answer line. The child's exit code says what it got: 0 ok, 10 forbidden,
// other codes for failures along the way.
int connect_as(const std::string& path, uid_t uid, gid_t gid, std::vector<gid_t> groups,
               const std::function<bool()>& pump) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      _exit(2);
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) _exit(3);
    const std::string line = request(1, "ping");
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
      // Refused peers may be closed before the request is written.
    }
    std::string answer;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') answer += c;
    const json parsed = json::parse(answer, nullptr, false);
    if (parsed.is_discarded()) _exit(4);
    if (parsed.value("ok", false)) _exit(0);
    if (parsed["error"]["code"] == "forbidden") _exit(10);
    _exit(5);
  }
  int status = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > give_up) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return -1;
    }
    pump();
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(ControlSocketTest, PeersAreCheckedByTheirCredentials) {
  if (::geteuid() != 0) GTEST_FAIL() << "the peer check test needs root (setuid in a child)";
  options_.allowed_uids = {4242};
  options_.allowed_gids = {4343};
  start();
  // Extra peers open the file to all; SO_PEERCRED decides.
  ::chmod(dir_.c_str(), 0711);
  struct stat info {};
  ASSERT_EQ(::stat(options_.path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0666u);
  auto pump = [&] { return server_->poll(std::chrono::milliseconds(1)); };
  constexpr uid_t kNobody = 65534;
  EXPECT_EQ(connect_as(options_.path, kNobody, kNobody, {}, pump), 10);
  EXPECT_EQ(connect_as(options_.path, 4242, kNobody, {}, pump), 0);
  EXPECT_EQ(connect_as(options_.path, kNobody, 4343, {}, pump), 0);
  EXPECT_EQ(connect_as(options_.path, kNobody, kNobody, {4343}, pump), 0);
  EXPECT_EQ(connect_as(options_.path, kNobody, kNobody, {4344, 4345}, pump), 10);
  // Only the allowed peers reached the handler; the refused ones were never
  // clients.
  EXPECT_EQ(handler_.handled, 3);
}

TEST_F(ControlSocketTest, WithoutExtraPeersTheSocketIsOwnerOnly) {
  options_.path = dir_ + "/run/control.sock";
  start();
  struct stat info {};
  ASSERT_EQ(::stat((dir_ + "/run").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(options_.path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(options_.path));
}

TEST_F(ControlSocketTest, AStaleSocketFileIsReplaced) {
  // A socket bound and closed without unlink, as a killed gateway leaves it.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, options_.path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ::close(fd);
  ASSERT_TRUE(std::filesystem::is_socket(options_.path));
  start();
  TestClient client(options_.path);
  client.to_send = request(1, "ping");
  ASSERT_TRUE(pump_until({&client}, [&] { return client.answer_count() == 1; }));
}

TEST_F(ControlSocketTest, ALiveServerKeepsItsPath) {
  start();
  EchoHandler other;
  std::string error;
  EXPECT_EQ(ControlSocket::open(options_, other, error), nullptr);
  EXPECT_NE(error.find("answers on the control socket"), std::string::npos) << error;
  // The first server is untouched (its probe connection comes and goes).
  TestClient client(options_.path);
  client.to_send = request(1, "ping");
  ASSERT_TRUE(pump_until({&client}, [&] { return client.answer_count() == 1; }));
  EXPECT_TRUE(std::filesystem::is_socket(options_.path));
}

TEST_F(ControlSocketTest, OtherFilesAtThePathAreNotReplaced) {
  { std::ofstream(options_.path) << "precious"; }
  std::string error;
  EXPECT_EQ(ControlSocket::open(options_, handler_, error), nullptr);
  EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
  EXPECT_TRUE(std::filesystem::is_regular_file(options_.path));

  options_.path = dir_ + "/" + std::string(120, 'p');
  EXPECT_EQ(ControlSocket::open(options_, handler_, error), nullptr);
  EXPECT_NE(error.find("longer than"), std::string::npos) << error;
}

TEST_F(ControlSocketTest, DestructionClosesClientsAndRemovesTheFile) {
  start();
  TestClient a(options_.path);
  TestClient b(options_.path);
  a.to_send = request(1, "ping");
  b.to_send = request(1, "ping");
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return a.answer_count() == 1 && b.answer_count() == 1; }));
  server_.reset();
  EXPECT_EQ(handler_.closed.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(options_.path));
  char c;
  EXPECT_EQ(::recv(a.fd, &c, 1, 0), 0);
}

}  // namespace
}  // namespace mtlsgw::control
