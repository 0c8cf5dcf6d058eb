#pragma once
// This instance's membership of the cluster (--redis-url): it registers itself and every media
// stream it holds in Redis (server/cluster/registry_keys.hpp), refuses a second socket for a
// call another instance owns, answers requests other instances forward to it over pub/sub and
// forwards ours, serves HAProxy's agent check, and drains on SIGTERM.
//
// Threading: one thread of its own runs an io_context with both Redis connections, the
// heartbeat, the agent and forwarded requests. Network threads only post to it (the call
// registry tells stream_started/stream_stopped, which take one mutex for the local table and
// return), so a Redis
// that is slow or gone never stalls a stream; the calls held here keep running and are
// re-registered when Redis is back.
//
// Redis traffic: per stream start 1 EVAL (claim), per stop 1 EVAL (release), per heartbeat
// (every ttl/5) 1 EVAL; nothing per media frame. Per forwarded request 1 PUBLISH each way.
//
// Lifetime: built and started by the server before its network threads run; stop() (main
// thread, after they end) says goodbye to Redis, waiting at most a second, and joins.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/app/server_context.hpp"
#include "server/calls/call_registry.hpp"
#include "server/cluster/agent_check.hpp"
#include "server/cluster/bus_message.hpp"
#include "server/cluster/redis_client.hpp"

namespace callstream::server {

// Marks a request another instance forwarded (its value: that instance). The routes then answer
// from what this instance holds and never forward again, so a stale registry cannot loop.
inline constexpr std::string_view forwarded_header = "X-Callstream-Forwarded-By";

// How a forwarded request ended.
struct forward_result {
    enum class outcome { answered, gone, timeout, redis_down } what = outcome::redis_down;
    bus_response response; // answered
    std::string detail;    // otherwise: why, for the error body
};

class cluster_node final : public stream_observer,
                           public std::enable_shared_from_this<cluster_node> {
  public:
    // How long a forwarded request waits for the owner's answer before 504.
    static constexpr std::chrono::milliseconds forward_timeout{2000};

    // Checks the configuration (throws std::runtime_error: bad URL or instance id, agent port
    // taken). `http_port` is the bound port, for the default instance id and advertise URL.
    cluster_node(server_context& ctx, std::uint16_t http_port);
    ~cluster_node() override;

    void start();
    void stop();

    void stream_started(std::string_view call_sid, std::string_view stream_sid) override;
    void stream_stopped(std::string_view call_sid, std::string_view stream_sid) override;

    const std::string& instance_id() const noexcept { return id_; }
    redis_client& redis() noexcept { return *commands_; }
    // The command connection, for what keeps its own state in Redis (the parameter store).
    std::shared_ptr<redis_client> redis_connection() const noexcept { return commands_; }
    bool redis_ready() const noexcept { return commands_->ready(); }
    // "Redis at host:6379/0 unavailable: <why>", for 503 bodies.
    std::string redis_unavailable() const;
    std::uint16_t agent_port() const noexcept { return agent_ ? agent_->port() : 0; }

    // The session of a call (by CallSid) or stream (by StreamSid) held here, if any.
    std::shared_ptr<media_session_handle> local_call(std::string_view call_sid) const;
    bool holds_stream(std::string_view stream_sid) const;

    // Sends `req` to instance `inst` and calls `done` (cluster thread) with its answer.
    void forward(std::string inst, bus_request req, std::function<void(forward_result)> done);

    // SIGTERM in cluster mode: the agent says "drain", the registry says "draining"; `finished`
    // runs (cluster thread) once no stream is left or the drain timeout passed.
    void begin_drain(std::function<void()> finished);
    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }

  private:
    struct local_stream {
        std::string call_sid;
        std::weak_ptr<media_session_handle> session;
        bool registered = false;
    };
    struct pending_forward {
        std::function<void(forward_result)> done;
        std::unique_ptr<net::steady_timer> timer;
    };

    void claim(std::string stream_sid);
    void release(std::string call_sid, std::string stream_sid);
    void reregister_all();
    void heartbeat();
    void schedule_heartbeat();
    void on_bus_message(std::string payload);
    net::awaitable<void> serve_forwarded(bus_request req);
    void finish_forward(std::uint64_t id, forward_result result);
    void poll_drain(std::chrono::steady_clock::time_point deadline, std::function<void()> finished);
    std::string call_json(std::string_view call_sid) const;
    std::vector<std::string> registry_keys(std::string_view call_sid,
                                           std::string_view stream_sid) const;

    server_context& ctx_;
    std::string id_;
    std::string advertise_url_;
    std::string started_;
    std::chrono::seconds ttl_;
    net::io_context ioc_{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
    std::thread thread_;
    std::shared_ptr<redis_client> commands_;
    std::shared_ptr<redis_client> subscriber_;
    std::unique_ptr<agent_check> agent_;
    net::steady_timer heartbeat_timer_;
    net::steady_timer drain_timer_;
    std::atomic<bool> draining_{false};
    int heartbeat_mismatches_ = 0; // cluster thread

    mutable std::mutex mutex_;                              // guards streams_
    std::unordered_map<std::string, local_stream> streams_; // by StreamSid

    std::uint64_t next_forward_id_ = 0;                           // cluster thread
    std::unordered_map<std::uint64_t, pending_forward> forwards_; // cluster thread
};

// cluster_node::forward for coroutines on network threads: resumes them on their own executor.
// (The callback is built here, in a plain function: gcc 12 mishandles lambda temporaries inside
// a co_await expression.)
template <typename Token>
auto async_forward(cluster_node& node, std::string inst, bus_request req, Token&& token) {
    return async_call<forward_result>(
        [&node, inst = std::move(inst),
         req = std::move(req)](std::function<void(forward_result)> done) mutable {
            node.forward(std::move(inst), std::move(req), std::move(done));
        },
        std::forward<Token>(token));
}

// A JSON object with "instance" first: {"instance":"cs1","sid":…}. Pure.
std::string with_instance(std::string_view json_object, std::string_view instance);

// Checks an instance id: 1-64 of [A-Za-z0-9._-] (it is a path segment, a HAProxy server name
// and part of Redis keys). Empty string: fine; otherwise the complaint.
std::string instance_id_problem(std::string_view id);

} // namespace callstream::server
