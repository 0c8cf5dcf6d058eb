#include "server/bridge/bridge_service.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/app/log.hpp"
#include "server/bridge/call_bridge.hpp"
#include "server/bridge/upstream_socket.hpp"

namespace callstream::server::bridge {

namespace net = boost::asio;

bridge_service::bridge_service(bridge_config config, std::filesystem::path prompts_dir)
    : config_(std::move(config)), prompts_dir_(std::move(prompts_dir)) {
    bool any_tls = false;
    for (const auto& u : config_.upstreams) {
        any_tls = any_tls || parse_ws_url(u.url).tls;
    }
    if (any_tls || !config_.ca_file.empty()) {
        tls_ = make_upstream_tls_context(config_.ca_file);
    }
}

const upstream_config* bridge_service::choose(std::string_view requested,
                                              std::string& error) const {
    const std::string_view name = requested.empty() ? config_.default_bridge : requested;
    if (name.empty()) {
        error = config_.upstreams.empty()
                    ? "app=bridge needs an upstream: start callstream with --bridge NAME=URL"
                    : "app=bridge without a 'bridge' parameter and no --default-bridge";
        return nullptr;
    }
    if (const auto* u = config_.find(name)) {
        return u;
    }
    // Only configured names: a call never makes callstream connect to a URL it supplies.
    error = "unknown bridge '" + std::string(name.substr(0, 64)) + "'";
    return nullptr;
}

void bridge_service::prewarm(const std::string& call_sid, const upstream_config& upstream,
                             net::any_io_executor executor) {
    if (call_sid.empty()) {
        return;
    }
    {
        const std::lock_guard lock(mutex_);
        if (prewarmed_.contains(call_sid) || live_.contains(call_sid)) {
            return; // Twilio retried the webhook, or the stream is already up
        }
    }
    auto bridge = call_bridge::create(shared_from_this(), upstream, executor, call_sid);
    {
        const std::lock_guard lock(mutex_);
        prewarmed_.emplace(call_sid, bridge);
    }
    stats_.prewarm_opened.fetch_add(1, std::memory_order_relaxed);
    log(log_level::debug, "bridge_prewarm", {{"call_sid", call_sid}, {"upstream", upstream.name}});
    auto timer = std::make_shared<net::steady_timer>(executor, config_.prewarm_timeout);
    timer->async_wait(
        [self = shared_from_this(), timer, call_sid,
         weak = std::weak_ptr<call_bridge>(bridge)](const boost::system::error_code&) {
            if (auto b = weak.lock()) {
                self->expire(call_sid, b);
            }
        });
}

void bridge_service::expire(const std::string& call_sid, const std::shared_ptr<call_bridge>& b) {
    {
        const std::lock_guard lock(mutex_);
        auto it = prewarmed_.find(call_sid);
        if (it == prewarmed_.end() || it->second != b) {
            return; // adopted meanwhile
        }
        prewarmed_.erase(it);
    }
    stats_.prewarm_expired.fetch_add(1, std::memory_order_relaxed);
    log(log_level::info, "bridge_prewarm_expired", {{"call_sid", call_sid}});
    b->abandon();
}

void bridge_service::abandon_prewarmed() {
    std::map<std::string, std::shared_ptr<call_bridge>> left;
    {
        const std::lock_guard lock(mutex_);
        left.swap(prewarmed_);
    }
    for (auto& [call_sid, bridge] : left) {
        bridge->abandon();
    }
}

std::shared_ptr<call_bridge> bridge_service::adopt(const std::string& call_sid,
                                                   const upstream_config& upstream) {
    std::shared_ptr<call_bridge> b;
    {
        const std::lock_guard lock(mutex_);
        auto it = prewarmed_.find(call_sid);
        if (it == prewarmed_.end()) {
            return nullptr;
        }
        b = std::move(it->second);
        prewarmed_.erase(it);
    }
    if (&b->upstream() != &upstream || b->failed_before_start()) {
        b->abandon(); // the stream asked for another upstream, or this one already failed
        return nullptr;
    }
    stats_.prewarm_adopted.fetch_add(1, std::memory_order_relaxed);
    return b;
}

void bridge_service::track(const std::string& call_sid, const std::shared_ptr<call_bridge>& b) {
    const std::lock_guard lock(mutex_);
    live_[call_sid] = b;
}

void bridge_service::untrack(const std::string& call_sid, const call_bridge* b) {
    const std::lock_guard lock(mutex_);
    auto it = live_.find(call_sid);
    if (it != live_.end()) {
        auto current = it->second.lock();
        if (!current || current.get() == b) {
            live_.erase(it);
        }
    }
}

std::string bridge_service::describe(const std::string& call_sid) const {
    std::shared_ptr<call_bridge> b;
    {
        const std::lock_guard lock(mutex_);
        if (auto it = live_.find(call_sid); it != live_.end()) {
            b = it->second.lock();
        } else if (auto p = prewarmed_.find(call_sid); p != prewarmed_.end()) {
            b = p->second;
        }
    }
    return b ? b->describe_json() : std::string{};
}

} // namespace callstream::server::bridge
