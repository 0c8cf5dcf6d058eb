#pragma once
// The live monitor's command-line flags (parse_config fills them; server/monitor/ reads them at
// startup). Plain data; main thread at startup, read-only afterwards.

#include <chrono>
#include <string>

namespace callstream::server::monitor {

struct monitor_flags {
    bool enabled = false;               // --monitor: off means every /monitor* path is 404
    std::string assets_dir;             // --monitor-assets: the page's files; empty: next to
                                        // the binary (see monitor_assets.hpp)
    std::chrono::seconds token_ttl{60}; // --monitor-token-ttl: lifetime of a monitor token
};

} // namespace callstream::server::monitor
