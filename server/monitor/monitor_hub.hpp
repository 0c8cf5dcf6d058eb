#pragma once
// The live monitor's centre: the taps of this process's running streams, the watchers of
// /monitor/events, and a 10 Hz timer that reads every tap once and sends each watcher the same
// snapshot. The timer runs only while someone watches, and its cost is per tick and per call,
// never per media frame: what the streams do per frame is stream_tap's few relaxed stores.
//
// Threading: open_tap/close_tap run on streams' network threads, add_watcher on a watcher's, the
// timer on the executor given at construction; one mutex guards the tap and watcher lists
// (taken at stream start/stop, watcher join and once per tick). Watchers are told through
// watcher::offer, which must post to their own thread and return at once.
// Ownership: shared by the server context, the timer's handler and the monitor sockets.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/monitor/cluster_view.hpp"
#include "server/monitor/monitor_assets.hpp"
#include "server/monitor/monitor_token.hpp"
#include "server/monitor/stream_tap.hpp"

namespace callstream::server::bridge {
class bridge_service;
}

namespace callstream::server::monitor {

// A /monitor/events socket as the hub sees it.
class watcher {
  public:
    virtual ~watcher() = default;
    // Any thread; the newest snapshot replaces one not yet written (at most 10 a second),
    // except that a `full` one (with the calls' facts) is never replaced by a levels-only one.
    virtual void offer(std::shared_ptr<const std::string> snapshot_json, bool full) = 0;
};

class monitor_hub : public std::enable_shared_from_this<monitor_hub> {
  public:
    static constexpr std::chrono::milliseconds tick{100};

    monitor_hub(boost::asio::any_io_executor timer_executor, token_signer tokens,
                std::shared_ptr<const monitor_assets> assets,
                std::shared_ptr<bridge::bridge_service> bridge, std::string instance_id);

    // Cluster mode (server start-up, before any network thread runs): this instance's id, and
    // the registry's view of the other instances' calls, refreshed while someone watches.
    void set_cluster(std::shared_ptr<cluster_view> view, std::string instance_id);

    const token_signer& tokens() const noexcept { return tokens_; }
    const monitor_assets& assets() const noexcept { return *assets_; }

    // Stream side (its network thread, at start and at close).
    std::shared_ptr<stream_tap> open_tap(call_facts facts);
    void close_tap(const std::shared_ptr<stream_tap>& tap);
    // Null when no running stream has that streamSid.
    std::shared_ptr<stream_tap> find(std::string_view stream_sid) const;
    bool running(const stream_tap& tap) const;

    // Watcher side: held weakly; a watcher that has ended is forgotten at the next tick.
    void add_watcher(const std::shared_ptr<watcher>& w);
    std::size_t watchers() const;

    // full: {"type":"snapshot","at":ms,"instance":…,"calls":[{…}]} (in cluster mode also the
    // other instances' calls, "remote":true, and "cluster":{"ok":…}); else {"type":"levels",
    // "at":ms,"calls":[[…]]}, this instance's levels and counters only. docs/monitor.md lists
    // the fields.
    // Resets the taps' peak readings, so only the timer calls it (and tests).
    std::string snapshot_json(bool full);

  private:
    static constexpr unsigned full_every = 10; // ticks: the calls' facts once a second

    void schedule_tick();
    void append_call(std::string& out, const stream_tap& tap, const stream_tap::reading& r,
                     std::chrono::system_clock::time_point now) const;
    void append_levels(std::string& out, const stream_tap& tap, const stream_tap::reading& r,
                       std::chrono::system_clock::time_point now) const;
    void append_events(std::string& out, const stream_tap& tap,
                       std::chrono::system_clock::time_point now) const;
    void on_tick();
    void append_remote(std::string& out, const cluster_view::state& cluster, bool first,
                       std::chrono::system_clock::time_point now) const;

    boost::asio::steady_timer timer_;
    const token_signer tokens_;
    const std::shared_ptr<const monitor_assets> assets_;
    std::shared_ptr<bridge::bridge_service> bridge_;
    std::string instance_id_;               // set before threads run
    std::shared_ptr<cluster_view> cluster_; // null without --redis-url; set likewise
    std::uint64_t cluster_version_ = 0;     // timer thread: the last one watchers saw
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<stream_tap>> taps_; // by streamSid
    std::vector<std::weak_ptr<watcher>> watchers_;
    bool ticking_ = false;
    bool full_due_ = true;
    unsigned ticks_ = 0;
};

} // namespace callstream::server::monitor
