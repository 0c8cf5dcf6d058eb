#pragma once
// The bridge's command-line flags as given (parse_config collects them; one string per
// occurrence), and their checked form, bridge_config. Startup only, main thread.

#include <functional>
#include <string>
#include <vector>

#include "server/bridge/upstream_config.hpp"

namespace callstream::server::bridge {

struct bridge_flags {
    std::vector<std::string> bridges;    // --bridge NAME=URL (CALLSTREAM_BRIDGES, space-separated)
    std::vector<std::string> protocols;  // --bridge-protocol NAME=twilio|openai-realtime|audio
    std::vector<std::string> headers;    // --bridge-header NAME=Header-Name:ENV_VAR
    std::vector<std::string> on_failure; // --bridge-on-failure NAME=hangup|prompt:FILE|reconnect
    std::vector<std::string> options;    // --bridge-option NAME=KEY=VALUE
    std::string default_bridge;          // --default-bridge NAME
    long lead_ms = 80;                   // --bridge-lead-ms
    long connect_timeout_ms = 5000;      // --bridge-connect-timeout-ms
    long prewarm_timeout_s = 30;         // --bridge-prewarm-timeout
    long max_buffered_ms = 120000;       // --bridge-max-buffered-ms
    long max_message_bytes = 256 * 1024; // --bridge-max-message-bytes
    std::string ca_file;                 // --bridge-ca-file
};

// Checks the flags and resolves header values with `getenv_fn`. Returns an error naming the
// flag and the upstream on the first problem, else empty and fills `out`. `prompts_dir` is where
// prompt:FILE must exist.
std::string make_bridge_config(const bridge_flags& flags,
                               const std::function<const char*(const char*)>& getenv_fn,
                               const std::string& prompts_dir, bridge_config& out);

} // namespace callstream::server::bridge
