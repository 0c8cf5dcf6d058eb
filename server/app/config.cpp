#include "server/app/config.hpp"

#include <charconv>
#include <cstdlib>
#include <thread>

#include "server/bridge/bridge_options.hpp"
#include "server/monitor/monitor_options.hpp"

namespace callstream::server {
namespace {

template <typename Int> bool parse_int(std::string_view s, Int& out, Int min, Int max) {
    Int v{};
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || v < min || v > max) {
        return false;
    }
    out = v;
    return true;
}

config_option text(std::string name, std::string env, std::string help,
                   std::string config::*member) {
    return {std::move(name), std::move(env), "VALUE", std::move(help),
            [member](std::string_view v, config& c) {
                c.*member = std::string(v);
                return true;
            }};
}

template <typename Int>
config_option number(std::string name, std::string env, std::string help, Int config::*member,
                     Int min, Int max) {
    return {std::move(name), std::move(env), "N", std::move(help),
            [member, min, max](std::string_view v, config& c) {
                return parse_int(v, c.*member, min, max);
            }};
}

config_option seconds(std::string name, std::string env, std::string help,
                      std::chrono::seconds config::*member) {
    return {std::move(name), std::move(env), "SECONDS", std::move(help),
            [member](std::string_view v, config& c) {
                long n = 0;
                if (!parse_int(v, n, 1L, 86400L)) {
                    return false;
                }
                c.*member = std::chrono::seconds(n);
                return true;
            }};
}

std::vector<config_option> build_options() {
    std::vector<config_option> o;
    o.push_back(text("--host", "CALLSTREAM_HOST", "address to listen on", &config::host));
    o.push_back(number<std::uint16_t>("--port", "CALLSTREAM_PORT",
                                      "port for HTTP, WebSocket and TLS (0: any free port)",
                                      &config::port, 0, 65535));
    o.push_back(number<unsigned>("--threads", "CALLSTREAM_THREADS",
                                 "network threads, each with its own event loop (0: one per core)",
                                 &config::threads, 0, 256));
    o.push_back(text("--public-url", "CALLSTREAM_PUBLIC_URL",
                     "public base URL Twilio reaches us at, e.g. https://abc.ngrok-free.app",
                     &config::public_url));
    o.push_back(text("--tls-cert", "CALLSTREAM_TLS_CERT",
                     "PEM certificate chain; enables wss:// and https:// on the same port",
                     &config::tls_cert));
    o.push_back(text("--tls-key", "CALLSTREAM_TLS_KEY", "PEM private key for --tls-cert",
                     &config::tls_key));
    o.push_back(number<unsigned>("--dsp-threads", "CALLSTREAM_DSP_THREADS",
                                 "audio worker threads (0: process on the network thread)",
                                 &config::dsp_threads, 0, 256));
    o.push_back(text("--resampler", "CALLSTREAM_RESAMPLER",
                     "speex:0..10 or libsamplerate:sinc-fastest|sinc-medium|sinc-best|linear",
                     &config::resampler));
    o.push_back(text("--default-app", "CALLSTREAM_DEFAULT_APP",
                     "processors for streams whose start names no 'app' parameter",
                     &config::default_app));
    o.push_back(text("--recordings-dir", "CALLSTREAM_RECORDINGS_DIR",
                     "where app=record writes WAV, Ogg Opus and JSON files",
                     &config::recordings_dir));
    o.push_back(text("--prompts-dir", "CALLSTREAM_PROMPTS_DIR",
                     "folder of audio files app=play may play", &config::prompts_dir));
    o.push_back(number<std::size_t>("--max-message-bytes", "CALLSTREAM_MAX_MESSAGE_BYTES",
                                    "largest WebSocket message accepted (close 1009 beyond)",
                                    &config::max_message_bytes, 1024, 16 << 20));
    o.push_back(number<std::size_t>("--outbox-bytes", "CALLSTREAM_OUTBOX_BYTES",
                                    "outbound bytes queued per stream before a slow reader is "
                                    "closed with 1008",
                                    &config::outbox_bytes, 4096, 1 << 30));
    o.push_back(number<std::size_t>("--max-streams", "CALLSTREAM_MAX_STREAMS",
                                    "concurrent media streams (upgrade refused with 503 beyond)",
                                    &config::max_streams, 1, 1000000));
    o.push_back(number<std::size_t>("--max-connections", "CALLSTREAM_MAX_CONNECTIONS",
                                    "concurrent TCP connections", &config::max_connections, 1,
                                    1000000));
    o.push_back(number<std::size_t>("--http-header-bytes", "CALLSTREAM_HTTP_HEADER_BYTES",
                                    "largest HTTP request header block", &config::http_header_bytes,
                                    1024, 1 << 20));
    o.push_back(number<std::size_t>("--http-body-bytes", "CALLSTREAM_HTTP_BODY_BYTES",
                                    "largest HTTP request body", &config::http_body_bytes, 0,
                                    16 << 20));
    o.push_back(seconds("--handshake-timeout", "CALLSTREAM_HANDSHAKE_TIMEOUT",
                        "time to receive a request, finish TLS or a WebSocket handshake",
                        &config::handshake_timeout));
    o.push_back(seconds("--idle-timeout", "CALLSTREAM_IDLE_TIMEOUT",
                        "close a stream whose peer sends nothing (not even a pong) this long",
                        &config::idle_timeout));
    o.push_back(seconds("--shutdown-timeout", "CALLSTREAM_SHUTDOWN_TIMEOUT",
                        "on SIGTERM, time streams get to close before the process exits",
                        &config::shutdown_timeout));
    o.push_back(text("--twilio-api-base", "TWILIO_API_BASE",
                     "Twilio REST API base URL (tests point it at a stand-in)",
                     &config::twilio_api_base));
    o.push_back(text("--twilio-ca-file", "TWILIO_CA_FILE",
                     "CA bundle to verify the Twilio API with (default: system store)",
                     &config::twilio_ca_file));
    o.push_back({"--twilio-timeout-ms", "TWILIO_TIMEOUT_MS", "MS",
                 "Twilio REST request timeout: connect, TLS, request and response (10000)",
                 [](std::string_view v, config& c) {
                     long ms = 0;
                     if (!parse_int(v, ms, 1L, 600'000L)) {
                         return false;
                     }
                     c.twilio_timeout = std::chrono::milliseconds(ms);
                     return true;
                 }});
    o.push_back(text("--twilio-from", "TWILIO_FROM", "default caller ID for /make-call",
                     &config::twilio_from));
    o.push_back(text("--twilio-account-sid", "TWILIO_ACCOUNT_SID", "Twilio Account SID (AC...)",
                     &config::account_sid));
    o.push_back(text("--twilio-auth-token", "TWILIO_AUTH_TOKEN",
                     "Twilio auth token: REST auth and webhook signatures (prefer the env var)",
                     &config::auth_token));
    o.push_back(
        text("--twilio-api-key", "TWILIO_API_KEY", "Twilio API key SID (SK...)", &config::api_key));
    o.push_back(text("--twilio-api-secret", "TWILIO_API_SECRET", "Twilio API key secret",
                     &config::api_secret));
    o.push_back(text("--api-token", "CALLSTREAM_API_TOKEN",
                     "bearer token required by /make-call and /calls/...", &config::api_token));
    o.push_back({"--no-verify-signatures", "", "", "do not check X-Twilio-Signature",
                 [](std::string_view, config& c) {
                     c.verify_signatures = false;
                     return true;
                 }});
    o.push_back(text("--redis-url", "CALLSTREAM_REDIS_URL",
                     "redis://[:password@]host:port[/db]: cluster mode (docs/cluster.md)",
                     &config::redis_url));
    o.push_back(text("--redis-password", "CALLSTREAM_REDIS_PASSWORD",
                     "Redis password when --redis-url carries none (prefer the env var)",
                     &config::redis_password));
    o.push_back(text("--instance-id", "CALLSTREAM_INSTANCE_ID",
                     "this instance's name in the cluster, [A-Za-z0-9._-] (default: host-port)",
                     &config::instance_id));
    o.push_back(text("--advertise-url", "CALLSTREAM_ADVERTISE_URL",
                     "how other instances reach this one's HTTP port (default: http://host:port)",
                     &config::advertise_url));
    o.push_back(number<std::uint16_t>("--agent-port", "CALLSTREAM_AGENT_PORT",
                                      "HAProxy agent-check port: 'up N% maxconn:M' or 'drain'",
                                      &config::agent_port, 0, 65535));
    o.push_back(seconds("--drain-timeout", "CALLSTREAM_DRAIN_TIMEOUT",
                        "cluster mode: on SIGTERM, time calls in progress may run on (300)",
                        &config::drain_timeout));
    o.push_back(seconds("--cluster-ttl", "CALLSTREAM_CLUSTER_TTL",
                        "cluster mode: a silent instance's registry entries expire after (10)",
                        &config::cluster_ttl));
    o.push_back({"--log-level", "CALLSTREAM_LOG_LEVEL", "LEVEL", "debug|info|warn|error|off",
                 [](std::string_view v, config& c) { return parse_log_level(v, c.level); }});
    o.push_back({"--log-format", "CALLSTREAM_LOG_FORMAT", "FORMAT", "text|json",
                 [](std::string_view v, config& c) { return parse_log_format(v, c.format); }});
    bridge::add_bridge_options(o);
    monitor::add_monitor_options(o);
    return o;
}

} // namespace

const std::vector<config_option>& config_options() {
    static const std::vector<config_option> options = build_options();
    return options;
}

config_result parse_config(int argc, const char* const* argv, config& cfg,
                           const std::function<const char*(const char*)>& getenv_fn) {
    config_result result;
    const auto& options = config_options();
    for (const auto& opt : options) {
        if (opt.env.empty()) {
            continue;
        }
        if (const char* v = getenv_fn(opt.env.c_str()); v != nullptr && *v != '\0') {
            if (!opt.apply(v, cfg)) {
                return {false, false, "invalid value for " + opt.env + ": '" + v + "'"};
            }
        }
    }
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            result.help = true;
            continue;
        }
        std::string_view value;
        bool has_value = false;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        const config_option* match = nullptr;
        for (const auto& opt : options) {
            if (opt.name == arg) {
                match = &opt;
            }
        }
        if (match == nullptr) {
            return {false, false, "unknown option '" + std::string(arg) + "' (see --help)"};
        }
        if (!match->argument.empty() && !has_value) {
            if (i + 1 >= argc) {
                return {false, false, match->name + " needs a value"};
            }
            value = argv[++i];
        }
        if (!match->apply(value, cfg)) {
            return {false, false,
                    "invalid value for " + match->name + ": '" + std::string(value) + "'"};
        }
    }
    if (cfg.threads == 0) {
        cfg.threads = std::max(1U, std::thread::hardware_concurrency());
    }
    if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
        return {false, false, "--tls-cert and --tls-key go together"};
    }
    return result;
}

std::string config_help() {
    std::string out = "usage: callstream [options]\n\n"
                      "Terminates Twilio Media Streams on one port (HTTP, WebSocket, TLS).\n\n"
                      "options (environment variable in brackets):\n";
    for (const auto& opt : config_options()) {
        std::string left = "  " + opt.name + (opt.argument.empty() ? "" : " " + opt.argument);
        if (left.size() < 32) {
            left.resize(32, ' ');
        } else {
            left += "\n" + std::string(32, ' ');
        }
        out += left + opt.help + (opt.env.empty() ? "" : " [" + opt.env + "]") + "\n";
    }
    out += "  --help                        this text\n";
    return out;
}

} // namespace callstream::server
