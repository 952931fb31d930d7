// The built mtlsgwctl against a ControlSocket whose handler fakes a gateway:
// what the binary sends, prints and exits with, as scripts see it.

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "control/control_socket.h"

namespace mtlsgw::control {
namespace {

using nlohmann::json;

struct Seen {
  uint64_t client;
  std::string command;
  json args;
};

// A few commands with gateway-like answers, transactions per client, and a
// log of every request.
class FakeGateway : public RequestHandler {
 public:
  std::string handle(uint64_t client, const Request& request) override {
    std::lock_guard lock(mutex_);
    seen_.push_back({client, request.command, request.args});
    const std::string& c = request.command;
    if (c == "ping" || c == "commit" || c == "abort") {
      if (c != "ping") in_transaction_.erase(client);
      return format_result(request.id, json::object());
    }
    if (c == "begin") {
      if (!in_transaction_.insert(client).second) {
        return format_error(request.id, {ErrorCode::in_transaction, "already in one", ""});
      }
      return format_result(request.id, json::object());
    }
    if (c == "host.add") {
      hosts_.push_back(request.args);
      return format_result(request.id, nullptr);
    }
    if (c == "host.list") {
      json rows = json::array();
      for (const json& host : hosts_) {
        rows.push_back({{"name", host["name"]}, {"mtls", host.value("mtls", "required")}});
      }
      return format_result(request.id, rows);
    }
    if (c == "host.del") {
      return format_error(request.id, {ErrorCode::not_found,
                                       "no host \"" + request.args.value("name", "") + "\"",
                                       "args.name"});
    }
    if (c == "config.dump") return format_result(request.id, json{{"hosts", json::array()}});
    if (c == "stats") return "this is not JSON";
    return format_error(request.id, {ErrorCode::unknown_command, "unknown command " + c, ""});
  }
  void client_closed(uint64_t) override {}

  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  std::mutex mutex_;
  std::vector<Seen> seen_;
  std::vector<json> hosts_;
  std::set<uint64_t> in_transaction_;
};

struct CtlRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

// Runs the binary with args and stdin_text; its output is small, so reading
// stdout to the end before stderr cannot deadlock.
CtlRun run_ctl(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  const char* binary = std::getenv("MTLSGWCTL");
  if (binary == nullptr) {
    ADD_FAILURE() << "MTLSGWCTL is not set (meson test sets it)";
    return {};
  }
  std::vector<std::string> storage{binary};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe";
    return {};
  }
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!stdin_text.empty()) {
    [[maybe_unused]] ssize_t written = ::write(in[1], stdin_text.data(), stdin_text.size());
  }
  ::close(in[1]);
  CtlRun run;
  run.out = read_all(out[0]);
  run.err = read_all(err[0]);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class Mtlsgwctl : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mtlsgwctl-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ControlSocketOptions options;
    options.path = dir_ + "/control.sock";
    std::string error;
    server_ = ControlSocket::open(options, gateway_, error);
    ASSERT_NE(server_, nullptr) << error;
    thread_ = std::thread([this] {
      while (!stop_) server_->poll(std::chrono::milliseconds(20));
    });
    ::setenv("MTLSGW_CONTROL_SOCKET", options.path.c_str(), 1);
    std::ofstream(dir_ + "/cert.pem") << "CERT\n";
    std::ofstream(dir_ + "/key.pem") << "KEY\n";
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_.reset();
    ::unsetenv("MTLSGW_CONTROL_SOCKET");
    std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> commands() {
    std::vector<std::string> out;
    for (const Seen& s : gateway_.seen()) out.push_back(s.command);
    return out;
  }

  std::string dir_;
  FakeGateway gateway_;
  std::unique_ptr<ControlSocket> server_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

TEST_F(Mtlsgwctl, OneCommandPrintsItsResult) {
  CtlRun ping = run_ctl({"ping"});
  EXPECT_EQ(ping.exit_code, 0) << ping.err;
  EXPECT_EQ(ping.out, "ok\n");

  CtlRun add = run_ctl({"host", "add", "api.example.test", "--cert", dir_ + "/cert.pem", "--key",
                     dir_ + "/key.pem", "--mtls", "optional"});
  EXPECT_EQ(add.exit_code, 0) << add.err;
  const Seen sent = gateway_.seen().back();
  EXPECT_EQ(sent.command, "host.add");
  EXPECT_EQ(sent.args, (json{{"name", "api.example.test"},
                             {"cert_pem", "CERT\n"},
                             {"key_pem", "KEY\n"},
                             {"mtls", "optional"}}));

  CtlRun list = run_ctl({"host", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out,
            "NAME              MTLS\n"
            "api.example.test  optional\n");
  CtlRun raw = run_ctl({"--json", "host", "list"});
  EXPECT_EQ(raw.out, R"([{"mtls":"optional","name":"api.example.test"}])" "\n");

  CtlRun dump = run_ctl({"config", "dump"});
  EXPECT_EQ(dump.out, "{\n  \"hosts\": []\n}\n");
}

TEST_F(Mtlsgwctl, ARefusalIsExitCodeOneWithTheGatewaysError) {
  CtlRun del = run_ctl({"host", "del", "nope.test"});
  EXPECT_EQ(del.exit_code, 1);
  EXPECT_EQ(del.out, "");
  EXPECT_EQ(del.err, "mtlsgwctl: not_found: no host \"nope.test\" (at args.name)\n");
}

TEST_F(Mtlsgwctl, UsageErrorsSendNothing) {
  CtlRun bad = run_ctl({"host", "add", "a.test"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--cert"), std::string::npos) << bad.err;
  EXPECT_TRUE(gateway_.seen().empty());
}

TEST_F(Mtlsgwctl, TransportFailuresAreExitCodeThree) {
  CtlRun nowhere = run_ctl({"-s", dir_ + "/missing.sock", "ping"});
  EXPECT_EQ(nowhere.exit_code, 3);
  EXPECT_NE(nowhere.err.find("cannot connect"), std::string::npos) << nowhere.err;

  CtlRun garbage = run_ctl({"stats"});
  EXPECT_EQ(garbage.exit_code, 3);
  EXPECT_NE(garbage.err.find("malformed"), std::string::npos) << garbage.err;

  // A listener that never accepts: connected, never answered.
  const std::string silent = dir_ + "/silent.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, silent.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  CtlRun timeout = run_ctl({"-s", silent, "--timeout", "0.2", "ping"});
  EXPECT_EQ(timeout.exit_code, 3);
  EXPECT_NE(timeout.err.find("timed out"), std::string::npos) << timeout.err;
  ::close(fd);
}

TEST_F(Mtlsgwctl, ABatchRunsOnOneConnection) {
  const std::string batch =
      "# provisioning\n"
      "begin\n"
      "host add a.test --cert '" + dir_ + "/cert.pem' --key " + dir_ + "/key.pem\n"
      "host add b.test --cert " + dir_ + "/cert.pem --key " + dir_ + "/key.pem \\\n"
      "    --mtls off\n"
      "commit\n"
      "host list\n";
  CtlRun run = run_ctl({"batch"}, batch);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out,
            "NAME    MTLS\n"
            "a.test  required\n"
            "b.test  off\n");
  const auto seen = gateway_.seen();
  ASSERT_EQ(seen.size(), 5u);
  for (const Seen& s : seen) EXPECT_EQ(s.client, seen[0].client);
  EXPECT_EQ(commands(), (std::vector<std::string>{"begin", "host.add", "host.add", "commit", "host.list"}));

  const std::string file = dir_ + "/batch.txt";
  std::ofstream(file) << "ping\nping\n";
  CtlRun from_file = run_ctl({"--json", "batch", file});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, "{}\n{}\n");
}

TEST_F(Mtlsgwctl, ABatchStopsAtTheFirstErrorAndAbortsItsTransaction) {
  CtlRun run = run_ctl({"batch", "-"},
                    "begin\nping\nhost del nope.test\nping\ncommit\n");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("<stdin>:3: not_found: no host \"nope.test\" (at args.name)"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("transaction aborted"), std::string::npos) << run.err;
  EXPECT_EQ(commands(), (std::vector<std::string>{"begin", "ping", "host.del", "abort"}));
}

TEST_F(Mtlsgwctl, ABatchWithAUsageErrorSendsNothing) {
  CtlRun run = run_ctl({"batch"}, "begin\nping\nhost add a.test --cert\ncommit\n");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.err.rfind("<stdin>:3: mtlsgwctl:", 0), 0u) << run.err;
  CtlRun quote = run_ctl({"batch"}, "ping\nrule add r --expression 'open\n");
  EXPECT_EQ(quote.exit_code, 2);
  EXPECT_NE(quote.err.find("<stdin>:2: unterminated ' quote"), std::string::npos) << quote.err;
  EXPECT_TRUE(gateway_.seen().empty());
}

}  // namespace
}  // namespace mtlsgw::control
