#pragma once
// The other instances' calls, for the monitor of a cluster (--redis-url). The cluster registry
// already keeps every live call in Redis (cs:calls:{inst}, server/cluster/registry_keys.hpp);
// the monitor reads it with one EVAL (list_calls_script) at most refresh_every, only while
// someone watches, never per media frame. A remote call shows what the registry holds (from,
// to, started, app, its instance); its level meters stay on the instance that owns it.
//
// Threading: refresh() and current() may be called from any thread (the hub's timer calls
// them); the reply is handled on the Redis client's own thread (the cluster node's), so a slow
// or absent Redis never blocks a network thread. One mutex guards the last result.
// Errors: a failed or refused EVAL keeps no remote calls and says why (state::error); the
// local list does not depend on it.
// Ownership: shared by the monitor hub; holds the Redis client (shared) and hands its reply
// handler only a weak pointer to itself, so nothing pending keeps either alive at shutdown.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::server {
class redis_client;
}

namespace callstream::server::monitor {

// One call another instance holds, as its registry entry describes it.
struct remote_call {
    std::string instance;
    std::string call_sid;
    std::string stream_sid; // its running stream (the last one not stopped)
    std::string from;
    std::string to;
    std::string app;            // the stream's processor chain
    std::int64_t started_ms{0}; // unix ms (second precision, as the registry stores it)
};

// The calls in list_calls_script's reply (each a call's JSON with "instance") that `own` does
// not hold, in reply order. Entries that are not such JSON are skipped. Pure.
std::vector<remote_call> parse_remote_calls(const std::vector<std::string>& entries,
                                            std::string_view own);

class cluster_view : public std::enable_shared_from_this<cluster_view> {
  public:
    static constexpr std::chrono::milliseconds refresh_every{500};

    struct state {
        bool ok = false;   // the last refresh answered
        std::string error; // otherwise: why ("Redis at 127.0.0.1:6379/0 unavailable: …")
        std::shared_ptr<const std::vector<remote_call>> calls; // never null
        std::uint64_t version = 0; // grows when `ok`, `error` or the set of calls changes
    };

    cluster_view(std::shared_ptr<redis_client> redis, std::string own_instance);

    // Asks Redis again unless a request is in flight or the last one is younger than
    // refresh_every. Returns at once.
    void refresh();
    state current() const;

  private:
    void settle(bool ok, std::string error, std::vector<remote_call> calls);

    const std::shared_ptr<redis_client> redis_;
    const std::string own_;
    mutable std::mutex mutex_;
    state state_;
    bool in_flight_ = false;
    std::chrono::steady_clock::time_point asked_{};
};

} // namespace callstream::server::monitor
