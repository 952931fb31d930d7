#pragma once
// The state directory (--state-dir): every committed state is written there
// and restored at the next start, so that what operators changed through the
// control socket survives a restart.
//
// One file, DIR/state.json, holding the sections the control socket changes
// (cas, hosts, default_host, rules, revocations) in the config file's own
// form with every PEM inline (config_writer.h). Written crash-safely: a
// temporary file in the same directory, fsync, rename over the old one,
// fsync of the directory; a crash leaves the old state or the new one,
// never half of one. The file holds private keys: the directory is made
// 0700 and the file 0600.

#include <optional>
#include <string>

#include "control/config.h"

namespace mtlsgw::control {

class StateStore {
 public:
  // Creates the directory (0700) when it is missing. Null with `error`.
  static std::unique_ptr<StateStore> open(const std::string& directory, std::string& error);

  bool save(const Config& state, std::string& error);

  // The saved state applied over `base` (ports, listeners, tcp and the
  // access log stay base's): nullopt with error empty when nothing was ever
  // saved; nullopt with error set when the file is damaged or no longer
  // loads (a CA or host it holds fails its checks).
  std::optional<Config> restore(const Config& base, std::string& error) const;

  const std::string& path() const noexcept { return file_; }

 private:
  StateStore(std::string directory, std::string file) : directory_(std::move(directory)), file_(std::move(file)) {}
  std::string directory_;
  std::string file_;
};

}  // namespace mtlsgw::control
