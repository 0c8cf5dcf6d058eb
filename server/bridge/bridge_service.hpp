#pragma once
// The process-wide side of the bridge: configuration, the TLS client context, metrics, the
// pre-warm registry (CallSid -> bridge opened while the phone rings) and the registry of live
// bridges that GET /calls/{sid} describes.
//
// Threading: built on the main thread at startup; every method is safe from any thread (the
// registries sit behind a mutex; they are touched once per call, never per frame).

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/bridge/bridge_metrics.hpp"
#include "server/bridge/upstream_config.hpp"

namespace callstream::server {
class twilio_rest_client;
}

namespace callstream::server::bridge {

class call_bridge;

class bridge_service : public std::enable_shared_from_this<bridge_service> {
  public:
    // Throws std::runtime_error when a wss:// upstream needs a CA file that cannot be loaded.
    bridge_service(bridge_config config, std::filesystem::path prompts_dir);

    const bridge_config& config() const noexcept { return config_; }
    bridge_metrics& stats() noexcept { return stats_; }
    const std::shared_ptr<boost::asio::ssl::context>& tls() const noexcept { return tls_; }
    const std::filesystem::path& prompts_dir() const noexcept { return prompts_dir_; }

    // The upstream a call asks for (customParameters.bridge, may be empty: --default-bridge).
    // Null and `error` set when there is none; a call can only name configured upstreams.
    const upstream_config* choose(std::string_view requested, std::string& error) const;

    // /twiml or /make-call: open `call_sid`'s upstream now, on the caller's thread (`executor`
    // must be the one running the calling thread). A second pre-warm for the same call is
    // ignored.
    void prewarm(const std::string& call_sid, const upstream_config& upstream,
                 boost::asio::any_io_executor executor);
    // The stream's start: the pre-warmed bridge for `call_sid` if it is for `upstream` and
    // has not failed, else null (a fresh one is then opened).
    std::shared_ptr<call_bridge> adopt(const std::string& call_sid,
                                       const upstream_config& upstream);

    // Shutdown: closes every pre-warmed upstream no stream has adopted (any thread). A
    // pre-warmed bridge holds this service, so one left in the map would keep both alive.
    void abandon_prewarmed();

    void track(const std::string& call_sid, const std::shared_ptr<call_bridge>& bridge);
    void untrack(const std::string& call_sid, const call_bridge* bridge);
    // The JSON object describing the call's bridge, or empty when it has none.
    std::string describe(const std::string& call_sid) const;

    // When set (Twilio credentials configured), the hangup policy ends calls through REST.
    std::shared_ptr<twilio_rest_client> rest;

  private:
    void expire(const std::string& call_sid, const std::shared_ptr<call_bridge>& bridge);

    bridge_config config_;
    std::filesystem::path prompts_dir_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    bridge_metrics stats_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<call_bridge>> prewarmed_;
    std::map<std::string, std::weak_ptr<call_bridge>> live_;
};

} // namespace callstream::server::bridge
