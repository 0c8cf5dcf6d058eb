#pragma once
// The monitor page's files (HTML, CSS, JavaScript modules, AudioWorklet processors), read once
// at startup into memory: a request never touches the file system, and only names found in the
// folder at startup are served, so no path can reach outside it.
//
// Where: --monitor-assets DIR, else beside the binary: <bin>/../share/callstream/monitor (the
// CMake install layout) or <bin>/monitor-assets (the build tree). Startup only, main thread;
// throws std::runtime_error naming every folder tried when none holds index.html.
// Afterwards immutable and read from any thread.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::server::monitor {

struct asset {
    std::string body;
    std::string content_type;
};

class monitor_assets {
  public:
    static monitor_assets load(const std::string& flag_dir);
    const asset* find(std::string_view name) const; // "index.html", "monitor.js", …
    const std::string& dir() const noexcept { return dir_; }

  private:
    std::string dir_;
    std::map<std::string, asset, std::less<>> files_;
};

// The folders load() tries, in order (for the error message and the tests).
std::vector<std::string> asset_dir_candidates(const std::string& flag_dir);

} // namespace callstream::server::monitor
