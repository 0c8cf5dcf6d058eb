#include "server/bridge/bridge_flags.hpp"

#include <charconv>

#include "pipeline/playback/prompt_loader.hpp"
#include "server/bridge/bridge_options.hpp"
#include "server/bridge/upstream_protocol.hpp"
#include "server/bridge/upstream_socket.hpp"

namespace callstream::server::bridge {
namespace {

// "NAME=REST" -> {NAME, REST}; false without '=' or with an empty side.
bool split_name(std::string_view s, std::string_view& name, std::string_view& rest) {
    const auto eq = s.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 >= s.size()) {
        return false;
    }
    name = s.substr(0, eq);
    rest = s.substr(eq + 1);
    return true;
}

bool valid_name(std::string_view name) {
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return !name.empty() && name.size() <= 64;
}

bool valid_header_name(std::string_view name) {
    for (const char c : name) {
        if (c <= ' ' || c >= 127 || c == ':') {
            return false;
        }
    }
    return !name.empty();
}

config_option list(std::string name, std::string env, std::string arg, std::string help,
                   std::vector<std::string> bridge_flags::*member, bool space_separated_env) {
    return {std::move(name), std::move(env), std::move(arg), std::move(help),
            [member, space_separated_env](std::string_view v, config& c) {
                auto& out = c.bridge.*member;
                if (!space_separated_env) {
                    out.emplace_back(v);
                    return true;
                }
                // CALLSTREAM_BRIDGES holds several entries; a flag holds one (no spaces in URLs).
                while (!v.empty()) {
                    const auto sp = v.find(' ');
                    if (sp != 0) {
                        out.emplace_back(v.substr(0, sp));
                    }
                    v = sp == std::string_view::npos ? std::string_view{} : v.substr(sp + 1);
                }
                return true;
            }};
}

config_option number(std::string name, std::string env, std::string arg, std::string help,
                     long bridge_flags::*member, long min, long max) {
    return {std::move(name), std::move(env), std::move(arg), std::move(help),
            [member, min, max](std::string_view v, config& c) {
                long n = 0;
                const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                if (ec != std::errc{} || p != v.data() + v.size() || n < min || n > max) {
                    return false;
                }
                c.bridge.*member = n;
                return true;
            }};
}

config_option text(std::string name, std::string env, std::string help,
                   std::string bridge_flags::*member) {
    return {std::move(name), std::move(env), "VALUE", std::move(help),
            [member](std::string_view v, config& c) {
                c.bridge.*member = std::string(v);
                return true;
            }};
}

upstream_config* find(std::vector<upstream_config>& v, std::string_view name) {
    for (auto& u : v) {
        if (u.name == name) {
            return &u;
        }
    }
    return nullptr;
}

} // namespace

void add_bridge_options(std::vector<config_option>& o) {
    o.push_back(list("--bridge", "CALLSTREAM_BRIDGES", "NAME=URL",
                     "an upstream for app=bridge: ws:// or wss:// (repeatable; the variable "
                     "holds a space-separated list)",
                     &bridge_flags::bridges, true));
    o.push_back(list("--bridge-protocol", "", "NAME=PROTOCOL",
                     "what the upstream speaks: twilio (default), openai-realtime or audio",
                     &bridge_flags::protocols, false));
    o.push_back(list("--bridge-header", "", "NAME=Header-Name:ENV_VAR",
                     "a request header for the upstream, its value read from ENV_VAR",
                     &bridge_flags::headers, false));
    o.push_back(list("--bridge-on-failure", "", "NAME=POLICY",
                     "hangup (default), prompt:FILE (play it, then hang up) or reconnect",
                     &bridge_flags::on_failure, false));
    o.push_back(list("--bridge-option", "", "NAME=KEY=VALUE",
                     "a protocol setting, e.g. model, voice, instructions, format",
                     &bridge_flags::options, false));
    o.push_back(text("--default-bridge", "CALLSTREAM_DEFAULT_BRIDGE",
                     "the upstream for calls whose start names no 'bridge' parameter",
                     &bridge_flags::default_bridge));
    o.push_back(number("--bridge-lead-ms", "CALLSTREAM_BRIDGE_LEAD_MS", "MS",
                       "upstream audio handed to Twilio ahead of what the caller heard; a clear "
                       "stops the caller's audio within it",
                       &bridge_flags::lead_ms, 20, 1000));
    o.push_back(number("--bridge-connect-timeout-ms", "CALLSTREAM_BRIDGE_CONNECT_TIMEOUT_MS", "MS",
                       "deadline for TCP, TLS and the WebSocket handshake to an upstream",
                       &bridge_flags::connect_timeout_ms, 100, 60000));
    o.push_back(number("--bridge-prewarm-timeout", "CALLSTREAM_BRIDGE_PREWARM_TIMEOUT", "SECONDS",
                       "an upstream opened by /twiml that no stream adopts closes after",
                       &bridge_flags::prewarm_timeout_s, 1, 600));
    o.push_back(number("--bridge-max-buffered-ms", "CALLSTREAM_BRIDGE_MAX_BUFFERED_MS", "MS",
                       "upstream audio allowed ahead of real time before the upstream is failed",
                       &bridge_flags::max_buffered_ms, 1000, 3600000));
    o.push_back(number("--bridge-max-message-bytes", "CALLSTREAM_BRIDGE_MAX_MESSAGE_BYTES", "N",
                       "largest WebSocket message accepted from an upstream",
                       &bridge_flags::max_message_bytes, 1024, 16 * 1024 * 1024));
    o.push_back(text("--bridge-ca-file", "CALLSTREAM_BRIDGE_CA_FILE",
                     "PEM bundle to verify wss:// upstreams with (default: the system store)",
                     &bridge_flags::ca_file));
}

std::string make_bridge_config(const bridge_flags& flags,
                               const std::function<const char*(const char*)>& getenv_fn,
                               const std::string& prompts_dir, bridge_config& out) {
    out = {};
    for (const auto& entry : flags.bridges) {
        std::string_view name;
        std::string_view url;
        if (!split_name(entry, name, url)) {
            return "--bridge '" + entry + "': expected NAME=URL";
        }
        if (!valid_name(name)) {
            return "--bridge '" + entry + "': NAME may hold letters, digits, '-', '_' and '.'";
        }
        if (find(out.upstreams, name) != nullptr) {
            return "--bridge " + std::string(name) + ": declared twice";
        }
        if (const auto parsed = parse_ws_url(url); !parsed.error.empty()) {
            return "--bridge " + std::string(name) + "=" + std::string(url) + ": " + parsed.error;
        }
        upstream_config u;
        u.name = std::string(name);
        u.url = std::string(url);
        out.upstreams.push_back(std::move(u));
    }
    auto upstream_for = [&](std::string_view flag, std::string_view entry, std::string_view& rest,
                            std::string& error) -> upstream_config* {
        std::string_view name;
        if (!split_name(entry, name, rest)) {
            error = std::string(flag) + " '" + std::string(entry) + "': expected NAME=…";
            return nullptr;
        }
        auto* u = find(out.upstreams, name);
        if (u == nullptr) {
            error = std::string(flag) + " " + std::string(name) +
                    ": no such upstream (declare it with --bridge " + std::string(name) + "=URL)";
        }
        return u;
    };
    std::string error;
    std::string_view rest;
    for (const auto& entry : flags.protocols) {
        auto* u = upstream_for("--bridge-protocol", entry, rest, error);
        if (u == nullptr) {
            return error;
        }
        u->protocol = std::string(rest);
    }
    for (const auto& entry : flags.headers) {
        auto* u = upstream_for("--bridge-header", entry, rest, error);
        if (u == nullptr) {
            return error;
        }
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || colon + 1 >= rest.size() ||
            !valid_header_name(rest.substr(0, colon))) {
            return "--bridge-header " + u->name + "=" + std::string(rest) +
                   ": expected Header-Name:ENV_VAR";
        }
        const std::string var(rest.substr(colon + 1));
        const char* value = getenv_fn(var.c_str());
        if (value == nullptr || *value == '\0') {
            // Name the variable, never a value.
            return "--bridge-header " + u->name + ": environment variable " + var + " is not set";
        }
        u->headers.emplace_back(std::string(rest.substr(0, colon)), std::string(value));
    }
    for (const auto& entry : flags.on_failure) {
        auto* u = upstream_for("--bridge-on-failure", entry, rest, error);
        if (u == nullptr) {
            return error;
        }
        if (rest == "hangup") {
            u->on_failure.action = failure_policy::kind::hangup;
        } else if (rest == "reconnect") {
            u->on_failure.action = failure_policy::kind::reconnect;
        } else if (rest.starts_with("prompt:") && rest.size() > 7) {
            u->on_failure.action = failure_policy::kind::prompt;
            u->on_failure.prompt_file = std::string(rest.substr(7));
            pipeline::prompt p;
            if (auto e = pipeline::load_prompt(u->on_failure.prompt_file, prompts_dir, p);
                !e.empty()) {
                return "--bridge-on-failure " + u->name + "=" + std::string(rest) + ": " + e;
            }
        } else {
            return "--bridge-on-failure " + u->name + "=" + std::string(rest) +
                   ": expected hangup, prompt:FILE or reconnect";
        }
    }
    for (const auto& entry : flags.options) {
        auto* u = upstream_for("--bridge-option", entry, rest, error);
        if (u == nullptr) {
            return error;
        }
        const auto eq = rest.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return "--bridge-option " + u->name + "=" + std::string(rest) + ": expected KEY=VALUE";
        }
        u->options.emplace_back(std::string(rest.substr(0, eq)), std::string(rest.substr(eq + 1)));
    }
    for (const auto& u : out.upstreams) {
        if (auto e = validate_upstream(u); !e.empty()) {
            return e;
        }
    }
    out.default_bridge = flags.default_bridge;
    if (!out.default_bridge.empty() && find(out.upstreams, out.default_bridge) == nullptr) {
        return "--default-bridge " + out.default_bridge + ": no such upstream";
    }
    out.lead = std::chrono::milliseconds(flags.lead_ms);
    out.connect_timeout = std::chrono::milliseconds(flags.connect_timeout_ms);
    out.prewarm_timeout = std::chrono::seconds(flags.prewarm_timeout_s);
    out.max_buffered_audio = std::chrono::milliseconds(flags.max_buffered_ms);
    out.max_message_bytes = static_cast<std::size_t>(flags.max_message_bytes);
    out.ca_file = flags.ca_file;
    return {};
}

} // namespace callstream::server::bridge
