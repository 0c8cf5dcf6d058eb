#include "server/monitor/monitor_assets.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace callstream::server::monitor {
namespace {

namespace fs = std::filesystem;

std::string content_type_of(const fs::path& p) {
    const auto ext = p.extension().string();
    if (ext == ".html") {
        return "text/html; charset=utf-8";
    }
    if (ext == ".js" || ext == ".mjs") {
        return "text/javascript; charset=utf-8";
    }
    if (ext == ".css") {
        return "text/css; charset=utf-8";
    }
    if (ext == ".svg") {
        return "image/svg+xml";
    }
    if (ext == ".png") {
        return "image/png";
    }
    return "application/octet-stream";
}

} // namespace

std::vector<std::string> asset_dir_candidates(const std::string& flag_dir) {
    if (!flag_dir.empty()) {
        return {flag_dir};
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return {};
    }
    const fs::path bin = exe.parent_path();
    return {(bin.parent_path() / "share" / "callstream" / "monitor").string(),
            (bin / "monitor-assets").string()};
}

monitor_assets monitor_assets::load(const std::string& flag_dir) {
    std::string tried;
    for (const auto& dir : asset_dir_candidates(flag_dir)) {
        std::error_code ec;
        if (!fs::is_regular_file(fs::path(dir) / "index.html", ec)) {
            tried += (tried.empty() ? "" : ", ") + dir;
            continue;
        }
        monitor_assets a;
        a.dir_ = dir;
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (!entry.is_regular_file()) {
                continue;
            }
            std::ifstream in(entry.path(), std::ios::binary);
            std::ostringstream body;
            body << in.rdbuf();
            a.files_[entry.path().filename().string()] = {body.str(),
                                                          content_type_of(entry.path())};
        }
        return a;
    }
    throw std::runtime_error("--monitor: no index.html for the monitor page in " +
                             (tried.empty() ? std::string("(no folder)") : tried) +
                             "; pass --monitor-assets DIR (the repository's "
                             "server/monitor/assets)");
}

const asset* monitor_assets::find(std::string_view name) const {
    const auto it = files_.find(name);
    return it == files_.end() ? nullptr : &it->second;
}

} // namespace callstream::server::monitor
