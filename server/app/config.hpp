#pragma once
// callstream's configuration: command-line flags, each with an environment fallback.
//
// Parsed once at startup on the main thread, then read-only and shared by every thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/resampler.hpp"
#include "server/app/log.hpp"
#include "server/bridge/bridge_flags.hpp"
#include "server/monitor/monitor_flags.hpp"

namespace callstream::server {

struct config {
    // Listening
    std::string host = "0.0.0.0";
    std::uint16_t port = 5050;
    unsigned threads = 0;   // 0: one per core
    std::string public_url; // e.g. https://abc.ngrok-free.app; else derived per request
    std::string tls_cert;   // PEM chain; TLS is offered on the same port when set
    std::string tls_key;

    // Audio
    unsigned dsp_threads = 0; // 0: process inline on the network thread
    std::string resampler = std::string(pipeline::default_resampler_spec);
    std::string default_app = "echo";
    std::string recordings_dir = "recordings";
    std::string prompts_dir = "prompts";

    // Limits
    std::size_t max_message_bytes = 64 * 1024;
    std::size_t outbox_bytes = 512 * 1024;
    std::size_t max_streams = 10000;
    std::size_t max_connections = 20000;
    std::size_t http_header_bytes = 8 * 1024;
    std::size_t http_body_bytes = 64 * 1024;
    std::chrono::seconds handshake_timeout{10};
    std::chrono::seconds idle_timeout{30};
    std::chrono::seconds shutdown_timeout{10};

    // Twilio
    std::string twilio_api_base = "https://api.twilio.com";
    std::string twilio_ca_file;
    std::string twilio_from;
    std::string account_sid;
    std::string auth_token;
    std::string api_key;
    std::string api_secret;
    std::string api_token; // bearer token protecting /make-call
    bool verify_signatures = true;
    std::chrono::milliseconds twilio_timeout{10'000}; // per REST request, connect to last byte

    // Cluster (server/cluster/): off while redis_url is empty
    std::string redis_url;        // redis://[:password@]host:port[/db]
    std::string redis_password;   // CALLSTREAM_REDIS_PASSWORD, when the URL carries none
    std::string instance_id;      // default: host name and port ("web1-5050")
    std::string advertise_url;    // how other instances and operators reach our HTTP port
    std::uint16_t agent_port = 0; // HAProxy agent-check port; 0: off
    std::chrono::seconds drain_timeout{300};
    std::chrono::seconds cluster_ttl{10}; // registry entries of a silent instance expire after
    // Bridge (server/bridge/bridge_flags.hpp): checked at startup by make_bridge_config()
    bridge::bridge_flags bridge;
    // Live monitor (server/monitor/): off unless --monitor
    monitor::monitor_flags monitor;

    // Logging
    log_level level = log_level::info;
    log_format format = log_format::text;
};

struct config_option {
    std::string name;     // "--port"
    std::string env;      // "CALLSTREAM_PORT", or empty
    std::string argument; // "N", or empty for a switch
    std::string help;
    std::function<bool(std::string_view value, config& cfg)> apply; // false: invalid value
};

// Every option callstream understands, in --help order.
const std::vector<config_option>& config_options();

struct config_result {
    bool ok = true;
    bool help = false;
    std::string error;
};

// Reads environment fallbacks first, then flags (flags win). `getenv` is injectable for tests.
// Never throws for bad input: `ok` is false and `error` names the flag or variable and the
// value it refused. Main thread, at startup.
config_result parse_config(int argc, const char* const* argv, config& cfg,
                           const std::function<const char*(const char*)>& getenv_fn);
// The --help text: one line per option with its argument, help and environment variable.
std::string config_help();

} // namespace callstream::server
