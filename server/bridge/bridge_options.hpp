#pragma once
// The bridge's entries in callstream's option table (server/app/config.cpp calls this once).

#include <vector>

#include "server/app/config.hpp"

namespace callstream::server::bridge {

void add_bridge_options(std::vector<config_option>& options);

} // namespace callstream::server::bridge
