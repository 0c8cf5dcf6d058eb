#pragma once
// Adds the monitor's flags (--monitor, --monitor-assets, --monitor-token-ttl) to the option
// list parse_config() reads. Startup only, main thread.

#include <vector>

#include "server/app/config.hpp"

namespace callstream::server::monitor {

void add_monitor_options(std::vector<config_option>& options);

} // namespace callstream::server::monitor
