#include "server/monitor/monitor_options.hpp"

#include <charconv>

namespace callstream::server::monitor {

void add_monitor_options(std::vector<config_option>& o) {
    o.push_back({"--monitor", "CALLSTREAM_MONITOR", "",
                 "serve the live monitor: GET /monitor, /monitor/events, /monitor/listen "
                 "(docs/monitor.md)",
                 [](std::string_view v, config& c) {
                     // A switch; the environment variable turns it on with 1/true/yes/on.
                     c.monitor.enabled =
                         v.empty() || v == "1" || v == "true" || v == "yes" || v == "on";
                     return true;
                 }});
    o.push_back({"--monitor-assets", "CALLSTREAM_MONITOR_ASSETS", "DIR",
                 "the monitor page's files (default: installed beside the binary)",
                 [](std::string_view v, config& c) {
                     c.monitor.assets_dir = std::string(v);
                     return true;
                 }});
    o.push_back({"--monitor-token-ttl", "CALLSTREAM_MONITOR_TOKEN_TTL", "SECONDS",
                 "lifetime of a token from POST /monitor/token (60)",
                 [](std::string_view v, config& c) {
                     long n = 0;
                     const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                     if (ec != std::errc{} || ptr != v.data() + v.size() || n < 1 || n > 86400) {
                         return false;
                     }
                     c.monitor.token_ttl = std::chrono::seconds(n);
                     return true;
                 }});
}

} // namespace callstream::server::monitor
