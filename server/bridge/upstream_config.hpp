#pragma once
// Configuration of the bridge: the upstreams a call may be bridged to (--bridge NAME=URL and
// friends, docs/bridge.md) and the limits every upstream connection obeys.
//
// Built once at startup on the main thread by parse_bridge_flags() (server/bridge/bridge_flags
// .hpp) from the command line and the environment, then read-only and shared by every thread.
// Header values are resolved from the environment at startup, so secrets never appear in argv,
// /calls, /metrics or logs: log only `header_names()`.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callstream::server::bridge {

// What happens to the call when its upstream fails (cannot connect, closes, misbehaves).
struct failure_policy {
    enum class kind : std::uint8_t {
        hangup,    // end the call: REST Status=completed when credentials are set, else close
                   // the media stream (Twilio then runs the TwiML after <Connect>)
        prompt,    // play `prompt_file` (a prompt name inside --prompts-dir), then hang up
        reconnect, // keep the call and reconnect with exponential backoff
    };
    kind action = kind::hangup;
    std::string prompt_file;                      // kind::prompt only
    std::chrono::milliseconds backoff_first{200}; // kind::reconnect: first wait
    std::chrono::milliseconds backoff_max{5000};  // cap of the doubling wait
    unsigned max_attempts = 5;                    // then the policy falls back to hangup
};

struct upstream_config {
    std::string name; // --bridge NAME=URL: what customParameters.bridge names
    std::string url;  // ws://host[:port]/path or wss://host[:port]/path (query allowed)
    std::string protocol = "twilio"; // --bridge-protocol: "twilio" | "openai-realtime" | "audio"
    // --bridge-header NAME=Header-Name:ENV_VAR, resolved: {Header-Name, value of ENV_VAR}.
    std::vector<std::pair<std::string, std::string>> headers;
    failure_policy on_failure;
    // --bridge-option NAME=KEY=VALUE (repeatable): protocol-specific settings, e.g. for
    // openai-realtime "model", "voice", "instructions", "format" (pcmu | pcm24k); for audio
    // "format" (pcmu | l16-8000 | l16-16000 | l16-24000). The protocol validates its own keys
    // in validate_upstream_options() (server/bridge/upstream_protocol.hpp).
    std::vector<std::pair<std::string, std::string>> options;

    // The value of option `key`, or `fallback` when it was not given.
    std::string_view option(std::string_view key, std::string_view fallback = {}) const {
        for (const auto& [k, v] : options) {
            if (k == key) {
                return v;
            }
        }
        return fallback;
    }
    // Header names only (never values), for logs and /calls.
    std::string header_names() const {
        std::string out;
        for (const auto& h : headers) {
            out += out.empty() ? h.first : "," + h.first;
        }
        return out;
    }
};

struct bridge_config {
    std::vector<upstream_config> upstreams; // names are unique
    std::string default_bridge;             // --default-bridge: used when the call names none
    // How far ahead of what the caller has heard callstream hands upstream audio to Twilio.
    // A clear stops what the caller hears within this much audio.
    std::chrono::milliseconds lead{80};
    std::chrono::milliseconds connect_timeout{5000};  // TCP + TLS + WebSocket handshake
    std::chrono::milliseconds prewarm_timeout{30000}; // an unadopted pre-warmed socket closes
    std::size_t max_message_bytes = 256 * 1024;       // one upstream WebSocket message
    std::size_t max_outbox_bytes = 1024 * 1024;       // to the upstream; over: slow upstream
    // Upstream audio buffered ahead of real time; more is "audio faster than real time beyond
    // a bound" and fails the upstream (label too_fast). Bots send replies faster than real
    // time, so this is generous.
    std::chrono::milliseconds max_buffered_audio{120000};
    // Caller audio kept while the protocol is not ready() (BRIDGE.md §1.1.6: ~10 s); older
    // frames are dropped and counted.
    std::size_t max_pending_caller_frames = 500;
    std::string ca_file; // --bridge-ca-file: PEM bundle for wss://; empty: system store

    const upstream_config* find(std::string_view name) const {
        for (const auto& u : upstreams) {
            if (u.name == name) {
                return &u;
            }
        }
        return nullptr;
    }
};

} // namespace callstream::server::bridge
