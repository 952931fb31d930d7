#include "control/state_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "control/config_writer.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

constexpr int kStateFormat = 1;

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::unique_ptr<StateStore> StateStore::open(const std::string& directory, std::string& error) {
  if (directory.empty()) {
    error = "the state directory name is empty";
    return nullptr;
  }
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    if (errno != ENOENT || ::mkdir(directory.c_str(), 0700) != 0) {
      error = fmt::format("cannot create the state directory {}: {}", directory, std::strerror(errno));
      return nullptr;
    }
  } else if (!S_ISDIR(st.st_mode)) {
    error = fmt::format("{} is not a directory", directory);
    return nullptr;
  }
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    error = fmt::format("cannot write in the state directory {}: {}", directory, std::strerror(errno));
    return nullptr;
  }
  return std::unique_ptr<StateStore>(new StateStore(directory, directory + "/state.json"));
}

bool StateStore::save(const Config& state, std::string& error) {
  json document = control_sections_to_json(state);
  document["state_format"] = kStateFormat;
  const std::string text = document.dump(1) + "\n";
  const std::string temporary = file_ + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("cannot create {}: {}", temporary, std::strerror(errno));
    return false;
  }
  const bool written = write_all(fd, text) && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!written) {
    error = fmt::format("cannot write {}: {}", temporary, std::strerror(saved_errno));
    ::unlink(temporary.c_str());
    return false;
  }
  if (::rename(temporary.c_str(), file_.c_str()) != 0) {
    error = fmt::format("cannot rename {} to {}: {}", temporary, file_, std::strerror(errno));
    ::unlink(temporary.c_str());
    return false;
  }
  // The rename is durable only once the directory entry is.
  const int dir = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    error = fmt::format("cannot sync the state directory {}: {}", directory_, std::strerror(errno));
    if (dir >= 0) ::close(dir);
    return false;
  }
  ::close(dir);
  return true;
}

std::optional<Config> StateStore::restore(const Config& base, std::string& error) const {
  error.clear();
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    if (errno != ENOENT) error = fmt::format("cannot read {}: {}", file_, std::strerror(errno));
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  json saved;
  try {
    saved = json::parse(text.str());
  } catch (const json::parse_error& e) {
    error = fmt::format("{} is damaged: {}", file_, e.what());
    return std::nullopt;
  }
  if (!saved.is_object() || saved.value("state_format", 0) != kStateFormat) {
    error = fmt::format("{} is not a state file of format {}", file_, kStateFormat);
    return std::nullopt;
  }
  saved.erase("state_format");
  // Through the file parser, so that the restored state passes every check
  // a config file does.
  json whole = config_to_json(base);
  for (const char* section : {"cas", "hosts", "default_host", "rules", "revocations"}) whole.erase(section);
  for (auto& [key, value] : saved.items()) whole[key] = value;
  try {
    return parse_config(whole.dump(), "");
  } catch (const ConfigError& e) {
    error = fmt::format("{}: {}", file_, e.what());
    return std::nullopt;
  }
}

}  // namespace mtlsgw::control
